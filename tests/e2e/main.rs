//! End-to-end tests: a real server per test, driven over HTTP like a user's session.

mod auth;
mod cli;
mod cli_scripting;
mod concurrency;
mod crash;
mod demo;
mod format;
mod import;
mod ledger;
mod openapi;
mod paying_twice;
mod readme;
mod reconcile;
mod registry;
mod report_html;
mod scenarios;
mod statement_checks;
mod statements;
mod tamper;
