//! Fundtrail: public welfare money from the budget line to each citizen's bank account, on a
//! signed, hash-chained, append-only ledger. See ARCHITECTURE.md for the map.

pub mod canonical;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod idcard;
pub mod money;
pub mod auth;
pub mod signing;
pub mod ledger;
pub mod service;
pub mod api;
pub mod config;
pub mod client;
pub mod roster;
pub mod server;
pub mod demo;
pub mod cli;
