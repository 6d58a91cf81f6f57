//! End-to-end tests: a real server per test, driven over HTTP like a user's session.

mod auth;
mod cli;
mod concurrency;
mod crash;
mod demo;
mod format;
mod import;
mod ledger;
mod openapi;
mod registry;
mod statements;
mod tamper;
