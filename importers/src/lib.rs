//! Bank statement parsers for Fundtrail: CSV exports of Chinese banks (GBK, preambles,
//! Chinese headers, total rows), ISO 20022 camt.053/camt.054 and SWIFT MT940, each turned
//! into a stream of normalised transactions.
//!
//! This crate knows nothing about the database or HTTP: it reads bytes and yields values or
//! errors that name their line (or XML path). It is an empty skeleton until the
//! bank-statement work lands; the workspace builds and tests it from the start so the layout
//! is fixed.
