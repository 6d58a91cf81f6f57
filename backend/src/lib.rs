//! Fundtrail: public welfare money from the budget line to each citizen's bank account, on a
//! signed, hash-chained, append-only ledger. See ARCHITECTURE.md for the map.

pub mod api;
pub mod auth;
pub mod canonical;
pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod filestore;
pub mod idcard;
pub mod ledger;
pub mod money;
pub mod reconcile;
pub mod roster;
pub mod server;
pub mod service;
pub mod signing;
pub mod statements;
