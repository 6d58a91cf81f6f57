//! Helpers shared by the integration tests.
#![allow(dead_code)]

use fundtrail_importers::{
    parse_bytes, Format, Options, ParseError, Record, Statement, Transaction,
};
use rust_decimal::Decimal;

/// Reads a file of the shared bank samples (`/work/shared/bank-samples`, the sibling of the
/// repository).
pub fn sample(rel: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/bank-samples/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn sample_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&sample(rel)).expect("expected-json parses")
}

/// Everything a parse yielded, sorted by kind.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Result<Record, ParseError>>,
    pub txs: Vec<Transaction>,
    pub stmts: Vec<Statement>,
    pub errors: Vec<ParseError>,
}

pub fn parse_with(bytes: &[u8], format: Format, options: &Options) -> Parsed {
    let records = parse_bytes(bytes, format, options);
    let mut p = Parsed::default();
    for r in &records {
        match r {
            Ok(Record::Transaction(t)) => p.txs.push(t.clone()),
            Ok(Record::Statement(s)) => p.stmts.push(s.clone()),
            Err(e) => p.errors.push(e.clone()),
        }
    }
    p.records = records;
    p
}

pub fn parse(bytes: &[u8], format: Format) -> Parsed {
    parse_with(bytes, format, &Options::default())
}

pub fn dec(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}
