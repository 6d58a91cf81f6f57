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
mod reconcile;
mod registry;
mod report_html;
mod scenarios;
mod statements;
mod tamper;
