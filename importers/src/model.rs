//! Normalised records that every parser yields, and the knobs that bound a parse.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where in the input a record or an error comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// 1-based line in the decoded file (CSV: the line where the row starts; MT940: the line
    /// of the `:61:` or `:20:` tag; Excel: the sheet's row number, as Excel shows it).
    Line(u64),
    /// Element path in an XML file, with 1-based indexes among same-named siblings below the
    /// message element, e.g. `/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]/NtryDtls[1]/TxDtls[2]`.
    XmlPath(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::XmlPath(p) => write!(f, "{p}"),
        }
    }
}

/// One booked movement on a bank account, in the form the ledger consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Where the transaction was read.
    pub location: Location,
    /// The statement's own account (IBAN, account or card number, possibly masked); empty
    /// when neither the file nor [`Options::account`] names it.
    pub account: String,
    /// Booking (entry) date.
    pub booking_date: NaiveDate,
    /// Value date, when the format carries one.
    pub value_date: Option<NaiveDate>,
    /// Signed amount: negative = money leaving the account.
    pub amount: Decimal,
    /// ISO 4217 code (Chinese currency names are mapped, e.g. 人民币 → `CNY`).
    pub currency: String,
    /// The other party's name.
    pub counterparty_name: Option<String>,
    /// The other party's account (kept as text: masked numbers such as `1234****9876`).
    pub counterparty_account: Option<String>,
    /// Payment reference: EndToEndId (camt), customer reference (MT940), 附言 (CSV).
    pub reference: Option<String>,
    /// The bank's own id for the transaction (AcctSvcrRef, bank reference, 交易流水号).
    pub bank_txn_id: Option<String>,
    /// Free text (remittance information, 摘要, `:86:`).
    pub text: Option<String>,
    /// The bank marks this booking as the reversal of an earlier one.
    pub reversal: bool,
    /// Return reason code (camt `RtrInf/Rsn/Cd`).
    pub return_reason: Option<String>,
}

/// Facts about one statement (one `Stmt`/`Ntfctn`, one MT940 message, one CSV file).
///
/// Every parser yields a statement *after* its transactions, because MT940 only states the
/// closing balance at the end and the parsers never buffer a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Where the statement starts (CSV: the header line).
    pub location: Location,
    /// The statement's account; empty when unknown.
    pub account: String,
    /// The bank's statement id (camt `Stmt/Id`, MT940 `:28C:` or else `:20:`).
    pub statement_id: Option<String>,
    /// Account currency.
    pub currency: Option<String>,
    /// First day covered (camt `FrToDt`, MT940 opening-balance date, CSV earliest row).
    pub from_date: Option<NaiveDate>,
    /// Last day covered (camt `FrToDt`, MT940 closing-balance date, CSV latest row).
    pub to_date: Option<NaiveDate>,
    /// Signed opening booked balance.
    pub opening_balance: Option<Decimal>,
    /// Signed closing booked balance.
    pub closing_balance: Option<Decimal>,
}

/// One item of a parse stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// Statement facts; yielded after the statement's transactions.
    Statement(Statement),
    /// A transaction.
    Transaction(Transaction),
}

/// Column profile of a CSV export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsvProfile {
    /// English headers (`date`, `amount`, `currency`, `counterparty_name`, ...).
    Generic,
    /// 工商银行 ICBC: preamble, padded cells, 收入/支出 columns, 人民币合计 total row.
    Icbc,
    /// 农业银行 ABC: signed amounts, 对手信息 (name and account in one cell).
    Abc,
    /// 招商银行 CMB: thousands separators, 对手信息.
    Cmb,
    /// Any other Chinese bank export with the usual headers (交易日期, 交易金额, 对方户名 ...).
    Chinese,
}

impl CsvProfile {
    /// Chinese exports are in RMB unless a currency column says otherwise.
    pub(crate) fn default_currency(self) -> Option<&'static str> {
        match self {
            CsvProfile::Generic => None,
            _ => Some("CNY"),
        }
    }
}

/// A statement file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// CSV with the given column profile.
    Csv(CsvProfile),
    /// An Excel workbook (.xlsx, or .xls of Excel 97–2003) whose first sheet with a header
    /// row is read with the same column profiles as CSV; see [`crate::excel`].
    /// [`crate::detect`] cannot see the header cells (they are compressed), so it gives
    /// `Excel(CsvProfile::Generic)`, and with `Generic` the header row picks the bank's
    /// profile, as it does for CSV.
    Excel(CsvProfile),
    /// ISO 20022 camt.053 bank-to-customer statement (any version).
    Camt053,
    /// ISO 20022 camt.054 debit/credit notification (any version).
    Camt054,
    /// SWIFT MT940 customer statement.
    Mt940,
}

/// Character encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 if the first 64 KiB are valid UTF-8 (a BOM is skipped), else GB18030.
    #[default]
    Auto,
    /// UTF-8.
    Utf8,
    /// GB18030, a superset of GBK and GB2312.
    Gb18030,
}

/// Upper bounds on what a parse accepts; exceeding one yields a `too_large` or
/// `field_too_long` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum bytes read from the input (fatal).
    pub file_bytes_max: u64,
    /// Maximum data rows / entries / `:61:` lines (fatal).
    pub rows_max: u64,
    /// Maximum bytes of one field (CSV cell, XML text, MT940 field with continuation lines).
    /// Lines and XML tokens are bounded by a multiple of it (fatal when exceeded).
    pub field_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file_bytes_max: 1 << 30,
            rows_max: 5_000_000,
            field_bytes_max: 4096,
        }
    }
}

/// Everything a parse can be told besides the format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Bounds on the input.
    pub limits: Limits,
    /// CSV character encoding (ignored by camt, which is UTF-8, Excel, whose cells are
    /// Unicode, and MT940, see [`crate::mt940`]).
    pub encoding: Encoding,
    /// Account to use when the file does not name one (most CSV exports).
    pub account: Option<String>,
}
