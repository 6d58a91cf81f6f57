//! ISO 20022 camt.053 (statements) and camt.054 (debit/credit notifications), any version.
//!
//! Elements are matched by local name, so the namespace version (`camt.053.001.02` ...
//! `.08`) does not matter; the v8 `Pty` wrapper around party names is understood. The file
//! is read with quick-xml's streaming reader; nothing but the current entry's facts is kept.
//!
//! Mapping (one [`Transaction`] per `TxDtls`, or per `Ntry` without details):
//! * amount: the entry's `Amt`, negative for `DBIT`. An entry with several `TxDtls` (a batch)
//!   yields one transaction per `TxDtls` that states its own amount in the entry's currency
//!   (`AmtDtls/TxAmt/Amt`, else `TxDtls/Amt`). `TxDtls` without such an amount cannot be
//!   split, so they are folded into one transaction for the rest of the entry amount. With a
//!   single `TxDtls` the entry amount is used: it is the booked amount in account currency
//!   (camt053.v8's sample has `TxDtls/Amt` = 0 SEK on an 8.85 EUR entry).
//! * reference: `EndToEndId` unless `NOTPROVIDED`; bank_txn_id: the details' `AcctSvcrRef`,
//!   else their `TxId`, else the entry's `AcctSvcrRef` (shared by a batch's transactions); counterparty: `Cdtr`/`CdtrAcct` for a debit, `Dbtr`/`DbtrAcct` for
//!   a credit; text: the `Ustrd` lines joined by a space, else the structured creditor
//!   references, else `AddtlTxInf`, else `AddtlNtryInf` (not for batch items: it follows the
//!   details in the file); reversal: `RvslInd`; return_reason: `RtrInf/Rsn/Cd` (or `Prtry`).
//! * Entries whose status is not `BOOK` (pending, information only) are skipped: they are not
//!   money on the account yet and reappear as booked in a later statement.
//! * Dates: the date part as written (`2014-12-31T13:15:00+01:00` → 2014-12-31).
//!
//! Malformed XML ends the stream after its error; a bad entry yields an error and parsing
//! continues.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};

use chrono::NaiveDate;
use quick_xml::events::{BytesStart, Event};
use rust_decimal::Decimal;

use crate::error::{from_io, quote, ErrorKind, ParseError};
use crate::io::{parse_iso_date_prefix, parse_plain_decimal, Limited};
use crate::model::{Location, Options, Record, Statement, Transaction};

/// Deeper nesting than this is refused (camt needs about 12 levels).
const DEPTH_MAX: usize = 64;

/// Which message a format expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Statement,
    Notification,
}

impl Kind {
    fn message(self) -> &'static str {
        match self {
            Kind::Statement => "BkToCstmrStmt",
            Kind::Notification => "BkToCstmrDbtCdtNtfctn",
        }
    }
    fn container(self) -> &'static str {
        match self {
            Kind::Statement => "Stmt",
            Kind::Notification => "Ntfctn",
        }
    }
}

/// Parses a camt.053 or camt.054 document.
pub(crate) fn parse<'a, R: Read + 'a>(
    input: R,
    kind: Kind,
    options: &Options,
) -> Box<dyn Iterator<Item = Result<Record, ParseError>> + 'a> {
    let limits = options.limits;
    let gap = limits.field_bytes_max.saturating_mul(4).max(4096);
    let limited = Limited::new(input, limits.file_bytes_max, gap, b"<>");
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(limited));
    reader.config_mut().check_end_names = true;
    Box::new(CamtIter {
        reader,
        buf: Vec::new(),
        kind,
        options: options.clone(),
        stack: Vec::new(),
        text: String::new(),
        text_overflow: false,
        seen_root: false,
        stmt: None,
        entry: None,
        tx: None,
        bal: None,
        out: VecDeque::new(),
        rows: 0,
        done: false,
    })
}

struct Frame {
    name: String,
    index: u32,
    children: Vec<(String, u32)>,
    ccy: Option<String>,
}

#[derive(Default)]
struct Stmt {
    path: String,
    id: Option<String>,
    account: Option<String>,
    currency: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    opening: Option<Decimal>,
    previous_closing: Option<Decimal>,
    closing: Option<Decimal>,
    balance_currency: Option<String>,
}

#[derive(Default)]
struct Bal {
    code: Option<String>,
    amount: Option<Decimal>,
    ccy: Option<String>,
    debit: bool,
}

#[derive(Default)]
struct Entry {
    path: String,
    amount: Option<Decimal>,
    ccy: Option<String>,
    debit: Option<bool>,
    reversal: bool,
    status: Option<String>,
    booking: Option<NaiveDate>,
    value: Option<NaiveDate>,
    acct_svcr_ref: Option<String>,
    addtl: Option<String>,
    error: Option<ParseError>,
    tx_count: u32,
    first_tx: Option<Tx>,
    /// Sum of the batch items emitted with their own amounts.
    emitted: Decimal,
    rest: Option<Rest>,
}

/// Batch items without their own amount, folded into one transaction.
#[derive(Default)]
struct Rest {
    reference: Agreed,
    cp_name: Agreed,
    cp_account: Agreed,
    return_reason: Agreed,
    texts: String,
}

/// A value that all folded items agree on (or not).
#[derive(Default)]
enum Agreed {
    #[default]
    Unset,
    Same(Option<String>),
    Differs,
}

impl Agreed {
    fn add(&mut self, v: &Option<String>) {
        *self = match std::mem::take(self) {
            Agreed::Unset => Agreed::Same(v.clone()),
            Agreed::Same(s) if &s == v => Agreed::Same(s),
            _ => Agreed::Differs,
        }
    }
    fn get(&self) -> Option<String> {
        match self {
            Agreed::Same(s) => s.clone(),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Tx {
    path: String,
    e2e: Option<String>,
    acct_svcr_ref: Option<String>,
    tx_id: Option<String>,
    amt: Option<(Decimal, Option<String>)>,
    amt_dtls: Option<(Decimal, Option<String>)>,
    debit: Option<bool>,
    dbtr_nm: Option<String>,
    dbtr_acct: Option<String>,
    cdtr_nm: Option<String>,
    cdtr_acct: Option<String>,
    ustrd: Vec<String>,
    cdtr_refs: Vec<String>,
    addtl: Option<String>,
    return_reason: Option<String>,
    error: Option<ParseError>,
}

impl Tx {
    fn reference(&self) -> Option<String> {
        self.e2e
            .clone()
            .filter(|r| !r.eq_ignore_ascii_case("NOTPROVIDED"))
    }
    fn counterparty(&self, debit: bool) -> (Option<String>, Option<String>) {
        if debit {
            (self.cdtr_nm.clone(), self.cdtr_acct.clone())
        } else {
            (self.dbtr_nm.clone(), self.dbtr_acct.clone())
        }
    }
    fn text(&self) -> Option<String> {
        if !self.ustrd.is_empty() {
            Some(self.ustrd.join(" "))
        } else if !self.cdtr_refs.is_empty() {
            Some(self.cdtr_refs.join(" "))
        } else {
            self.addtl.clone()
        }
    }
    /// The most specific id: a batch entry's `AcctSvcrRef` is shared by all its
    /// transactions, so a transaction's own `TxId` comes before it.
    fn bank_txn_id(&self, entry: &Entry) -> Option<String> {
        self.acct_svcr_ref
            .clone()
            .or_else(|| self.tx_id.clone())
            .or_else(|| entry.acct_svcr_ref.clone())
    }
}

/// Which field an element's text goes to.
enum Target {
    StmtId,
    StmtAccount,
    StmtCcy,
    StmtFrom,
    StmtTo,
    BalCode,
    BalAmt,
    BalCdtDbt,
    NtryAmt,
    NtryCdtDbt,
    NtryRvsl,
    NtrySts,
    NtryBookg,
    NtryVal,
    NtryRef,
    NtryAddtl,
    TxE2e,
    TxAcctSvcrRef,
    TxId,
    TxAmt,
    TxAmtDtls,
    TxCdtDbt,
    TxDbtrNm,
    TxDbtrAcct,
    TxCdtrNm,
    TxCdtrAcct,
    TxUstrd,
    TxCdtrRef,
    TxAddtl,
    TxRtr,
}

struct CamtIter<R: BufRead> {
    reader: quick_xml::Reader<R>,
    buf: Vec<u8>,
    kind: Kind,
    options: Options,
    stack: Vec<Frame>,
    text: String,
    text_overflow: bool,
    seen_root: bool,
    stmt: Option<Stmt>,
    entry: Option<Entry>,
    tx: Option<Tx>,
    bal: Option<Bal>,
    out: VecDeque<Result<Record, ParseError>>,
    rows: u64,
    done: bool,
}

fn rel_is(stack: &[Frame], from: usize, pattern: &[&str]) -> bool {
    stack.len() == from + pattern.len()
        && stack[from..].iter().zip(pattern).all(|(f, p)| f.name == *p)
}

impl<R: BufRead> CamtIter<R> {
    fn path(&self) -> String {
        let mut p = String::new();
        for (depth, f) in self.stack.iter().enumerate() {
            p.push('/');
            p.push_str(&f.name);
            // Document and the message element occur once; below them indexes matter.
            if depth >= 2 {
                p.push_str(&format!("[{}]", f.index));
            }
        }
        p
    }

    fn here(&self) -> Location {
        Location::XmlPath(self.path())
    }

    fn fatal(&mut self, e: ParseError) {
        self.out.push_back(Err(e));
        self.done = true;
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), ParseError> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        if self.stack.len() >= DEPTH_MAX {
            return Err(ParseError::new(
                ErrorKind::TooLarge,
                format!("elements are nested deeper than {DEPTH_MAX} levels"),
            )
            .at(self.here()));
        }
        let index = match self.stack.last_mut() {
            Some(parent) => {
                match parent.children.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, c)) => {
                        *c = c.saturating_add(1);
                        *c
                    }
                    None => {
                        // A hostile file could use endless distinct names; they are bounded
                        // by the file size, and real camt has a few dozen.
                        parent.children.push((name.clone(), 1));
                        1
                    }
                }
            }
            None => 1,
        };
        let ccy = if name == "Amt" {
            e.try_get_attribute("Ccy")
                .ok()
                .flatten()
                .and_then(|a| a.unescape_value().ok().map(|v| v.trim().to_string()))
        } else {
            None
        };
        self.stack.push(Frame {
            name,
            index,
            children: Vec::new(),
            ccy,
        });
        self.text.clear();
        self.text_overflow = false;
        let depth = self.stack.len();
        let name = self.stack[depth - 1].name.as_str();
        match depth {
            1 => {
                if name != "Document" || self.seen_root {
                    return Err(ParseError::new(
                        ErrorKind::UnknownFormat,
                        format!("expected a camt Document, found <{name}>"),
                    ));
                }
                self.seen_root = true;
            }
            2 if name != self.kind.message() => {
                return Err(ParseError::new(
                    ErrorKind::UnknownFormat,
                    format!(
                        "expected <{}> in this format, found <{name}>",
                        self.kind.message()
                    ),
                )
                .at(self.here()));
            }
            3 if name == self.kind.container() => {
                self.stmt = Some(Stmt {
                    path: self.path(),
                    ..Stmt::default()
                });
            }
            4 if self.stmt.is_some() && name == "Ntry" => {
                self.entry = Some(Entry {
                    path: self.path(),
                    ..Entry::default()
                });
            }
            4 if self.stmt.is_some() && name == "Bal" => self.bal = Some(Bal::default()),
            6 if self.entry.is_some() && name == "TxDtls" && self.stack[4].name == "NtryDtls" => {
                self.tx = Some(Tx {
                    path: self.path(),
                    ..Tx::default()
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn target(&self) -> Option<Target> {
        let s = &self.stack;
        let in_container = s.len() > 3 && s[2].name == self.kind.container();
        if !in_container {
            return None;
        }
        if s[3].name == "Ntry" {
            if s.len() > 6 && s[4].name == "NtryDtls" && s[5].name == "TxDtls" {
                return self.tx_target();
            }
            let t = |p: &[&str]| rel_is(s, 4, p);
            return Some(if t(&["Amt"]) {
                Target::NtryAmt
            } else if t(&["CdtDbtInd"]) {
                Target::NtryCdtDbt
            } else if t(&["RvslInd"]) {
                Target::NtryRvsl
            } else if t(&["Sts"]) || t(&["Sts", "Cd"]) {
                Target::NtrySts
            } else if t(&["BookgDt", "Dt"]) || t(&["BookgDt", "DtTm"]) {
                Target::NtryBookg
            } else if t(&["ValDt", "Dt"]) || t(&["ValDt", "DtTm"]) {
                Target::NtryVal
            } else if t(&["AcctSvcrRef"]) {
                Target::NtryRef
            } else if t(&["AddtlNtryInf"]) {
                Target::NtryAddtl
            } else {
                return None;
            });
        }
        let t = |p: &[&str]| rel_is(s, 3, p);
        Some(if t(&["Id"]) {
            Target::StmtId
        } else if t(&["Acct", "Id", "IBAN"]) || t(&["Acct", "Id", "Othr", "Id"]) {
            Target::StmtAccount
        } else if t(&["Acct", "Ccy"]) {
            Target::StmtCcy
        } else if t(&["FrToDt", "FrDtTm"]) {
            Target::StmtFrom
        } else if t(&["FrToDt", "ToDtTm"]) {
            Target::StmtTo
        } else if t(&["Bal", "Tp", "CdOrPrtry", "Cd"]) {
            Target::BalCode
        } else if t(&["Bal", "Amt"]) {
            Target::BalAmt
        } else if t(&["Bal", "CdtDbtInd"]) {
            Target::BalCdtDbt
        } else {
            return None;
        })
    }

    fn tx_target(&self) -> Option<Target> {
        let s = &self.stack;
        let t = |p: &[&str]| rel_is(s, 6, p);
        let party = |role: &str, what: &[&str]| {
            let mut direct = vec!["RltdPties", role];
            direct.extend_from_slice(what);
            let mut wrapped = vec!["RltdPties", role, "Pty"];
            wrapped.extend_from_slice(what);
            t(&direct) || t(&wrapped)
        };
        let account = |role: &str| {
            t(&["RltdPties", role, "Id", "IBAN"]) || t(&["RltdPties", role, "Id", "Othr", "Id"])
        };
        Some(if t(&["Refs", "EndToEndId"]) {
            Target::TxE2e
        } else if t(&["Refs", "AcctSvcrRef"]) {
            Target::TxAcctSvcrRef
        } else if t(&["Refs", "TxId"]) {
            Target::TxId
        } else if t(&["Amt"]) {
            Target::TxAmt
        } else if t(&["AmtDtls", "TxAmt", "Amt"]) {
            Target::TxAmtDtls
        } else if t(&["CdtDbtInd"]) {
            Target::TxCdtDbt
        } else if party("Dbtr", &["Nm"]) {
            Target::TxDbtrNm
        } else if account("DbtrAcct") {
            Target::TxDbtrAcct
        } else if party("Cdtr", &["Nm"]) {
            Target::TxCdtrNm
        } else if account("CdtrAcct") {
            Target::TxCdtrAcct
        } else if t(&["RmtInf", "Ustrd"]) {
            Target::TxUstrd
        } else if t(&["RmtInf", "Strd", "CdtrRefInf", "Ref"]) {
            Target::TxCdtrRef
        } else if t(&["AddtlTxInf"]) {
            Target::TxAddtl
        } else if t(&["RtrInf", "Rsn", "Cd"]) || t(&["RtrInf", "Rsn", "Prtry"]) {
            Target::TxRtr
        } else {
            return None;
        })
    }

    /// Attaches a non-fatal error to the innermost transaction or entry being read, or emits
    /// it at once when it concerns the statement itself.
    fn soft_error(&mut self, e: ParseError) {
        if let Some(tx) = self.tx.as_mut() {
            tx.error.get_or_insert(e);
        } else if let Some(entry) = self.entry.as_mut() {
            entry.error.get_or_insert(e);
        } else {
            self.out.push_back(Err(e));
        }
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let depth = self.stack.len();
        if let Some(target) = self.target() {
            let field = self
                .stack
                .last()
                .map(|f| f.name.clone())
                .unwrap_or_default();
            if self.text_overflow {
                let e = ParseError::new(
                    ErrorKind::FieldTooLong,
                    format!(
                        "the text is longer than {} bytes",
                        self.options.limits.field_bytes_max
                    ),
                )
                .at(self.here())
                .field(field);
                self.soft_error(e);
            } else {
                self.apply(target, &field);
            }
        }
        let name = self
            .stack
            .last()
            .map(|f| f.name.clone())
            .unwrap_or_default();
        match depth {
            6 if name == "TxDtls" && self.tx.is_some() => self.close_tx(),
            4 if name == "Ntry" && self.entry.is_some() => self.close_entry(),
            4 if name == "Bal" => self.close_bal(),
            3 if self.stmt.is_some() => self.close_stmt(),
            _ => {}
        }
        self.stack.pop();
        self.text.clear();
        self.text_overflow = false;
        Ok(())
    }

    fn apply(&mut self, target: Target, field: &str) {
        let v = self.text.trim().to_string();
        let ccy = self.stack.last().and_then(|f| f.ccy.clone());
        let here = self.here();
        let opt = || (!v.is_empty()).then(|| v.clone());
        let amount = || {
            parse_plain_decimal(&v)
                .filter(|d| !d.is_sign_negative())
                .ok_or_else(|| {
                    ParseError::new(
                        ErrorKind::BadAmount,
                        format!("{} is not an amount", quote(&v)),
                    )
                    .at(here.clone())
                    .field(field)
                })
        };
        let date = || {
            parse_iso_date_prefix(&v).ok_or_else(|| {
                ParseError::new(ErrorKind::BadDate, format!("{} is not a date", quote(&v)))
                    .at(here.clone())
                    .field(field)
            })
        };
        let debit = || match v.as_str() {
            "DBIT" => Ok(true),
            "CRDT" => Ok(false),
            _ => Err(ParseError::new(
                ErrorKind::MalformedXml,
                format!("{} is neither CRDT nor DBIT", quote(&v)),
            )
            .at(here.clone())
            .field(field)),
        };
        let result: Result<(), ParseError> = (|| {
            match target {
                Target::StmtId => self.stmt_mut().id = opt(),
                Target::StmtAccount => self.stmt_mut().account = opt(),
                Target::StmtCcy => self.stmt_mut().currency = opt(),
                Target::StmtFrom => self.stmt_mut().from = Some(date()?),
                Target::StmtTo => self.stmt_mut().to = Some(date()?),
                Target::BalCode => self.bal_mut().code = opt(),
                Target::BalAmt => {
                    let a = amount()?;
                    let bal = self.bal_mut();
                    bal.amount = Some(a);
                    bal.ccy = ccy;
                }
                Target::BalCdtDbt => self.bal_mut().debit = debit()?,
                Target::NtryAmt => {
                    let a = amount()?;
                    let e = self.entry_mut();
                    e.amount = Some(a);
                    e.ccy = ccy;
                }
                Target::NtryCdtDbt => self.entry_mut().debit = Some(debit()?),
                Target::NtryRvsl => self.entry_mut().reversal = v == "true" || v == "1",
                Target::NtrySts => self.entry_mut().status = opt(),
                Target::NtryBookg => self.entry_mut().booking = Some(date()?),
                Target::NtryVal => self.entry_mut().value = Some(date()?),
                Target::NtryRef => self.entry_mut().acct_svcr_ref = opt(),
                Target::NtryAddtl => self.entry_mut().addtl = opt(),
                Target::TxE2e => self.tx_mut().e2e = opt(),
                Target::TxAcctSvcrRef => self.tx_mut().acct_svcr_ref = opt(),
                Target::TxId => self.tx_mut().tx_id = opt(),
                Target::TxAmt => self.tx_mut().amt = Some((amount()?, ccy)),
                Target::TxAmtDtls => self.tx_mut().amt_dtls = Some((amount()?, ccy)),
                Target::TxCdtDbt => self.tx_mut().debit = Some(debit()?),
                Target::TxDbtrNm => self.tx_mut().dbtr_nm = opt(),
                Target::TxDbtrAcct => self.tx_mut().dbtr_acct = opt(),
                Target::TxCdtrNm => self.tx_mut().cdtr_nm = opt(),
                Target::TxCdtrAcct => self.tx_mut().cdtr_acct = opt(),
                Target::TxUstrd | Target::TxCdtrRef => {
                    let max = self.options.limits.field_bytes_max;
                    let tx = self.tx_mut();
                    let list = if matches!(target, Target::TxUstrd) {
                        &mut tx.ustrd
                    } else {
                        &mut tx.cdtr_refs
                    };
                    let used: usize = list.iter().map(|s| s.len() + 1).sum();
                    if used + v.len() > max {
                        return Err(ParseError::new(
                            ErrorKind::FieldTooLong,
                            format!("the remittance information is longer than {max} bytes"),
                        )
                        .at(here.clone())
                        .field(field));
                    }
                    if !v.is_empty() {
                        list.push(v.clone());
                    }
                }
                Target::TxAddtl => self.tx_mut().addtl = opt(),
                Target::TxRtr => self.tx_mut().return_reason = opt(),
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.soft_error(e);
        }
    }

    fn stmt_mut(&mut self) -> &mut Stmt {
        self.stmt.get_or_insert_with(Stmt::default)
    }
    fn bal_mut(&mut self) -> &mut Bal {
        self.bal.get_or_insert_with(Bal::default)
    }
    fn entry_mut(&mut self) -> &mut Entry {
        self.entry.get_or_insert_with(Entry::default)
    }
    fn tx_mut(&mut self) -> &mut Tx {
        self.tx.get_or_insert_with(Tx::default)
    }

    fn close_bal(&mut self) {
        let Some(bal) = self.bal.take() else { return };
        let Some(stmt) = self.stmt.as_mut() else {
            return;
        };
        let Some(amount) = bal.amount else { return };
        let signed = if bal.debit { -amount } else { amount };
        let slot = match bal.code.as_deref() {
            Some("OPBD") => &mut stmt.opening,
            Some("PRCD") => &mut stmt.previous_closing,
            Some("CLBD") => &mut stmt.closing,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(signed);
            if stmt.balance_currency.is_none() {
                stmt.balance_currency = bal.ccy;
            }
        }
    }

    fn close_stmt(&mut self) {
        if self.done {
            return;
        }
        let Some(stmt) = self.stmt.take() else { return };
        let account = stmt
            .account
            .clone()
            .or_else(|| self.options.account.clone());
        let Some(account) = account else {
            self.out.push_back(Err(ParseError::new(
                ErrorKind::MissingField,
                "the statement names no account (Acct/Id)",
            )
            .at(Location::XmlPath(stmt.path))
            .field("account")));
            return;
        };
        self.out.push_back(Ok(Record::Statement(Statement {
            location: Location::XmlPath(stmt.path),
            account,
            statement_id: stmt.id,
            currency: stmt.currency.or(stmt.balance_currency),
            from_date: stmt.from,
            to_date: stmt.to,
            opening_balance: stmt.opening.or(stmt.previous_closing),
            closing_balance: stmt.closing,
        })));
    }

    fn close_tx(&mut self) {
        if self.done {
            return;
        }
        let Some(tx) = self.tx.take() else { return };
        let Some(entry) = self.entry.as_mut() else {
            return;
        };
        entry.tx_count = entry.tx_count.saturating_add(1);
        match entry.tx_count {
            1 => entry.first_tx = Some(tx),
            2 => {
                if let Some(first) = entry.first_tx.take() {
                    self.batch_item(first);
                }
                self.batch_item(tx);
            }
            _ => self.batch_item(tx),
        }
    }

    fn booked(entry: &Entry) -> bool {
        entry.status.as_deref().is_none_or(|s| s == "BOOK")
    }

    /// One `TxDtls` of an entry that has several.
    fn batch_item(&mut self, tx: Tx) {
        let Some(entry) = self.entry.as_ref() else {
            return;
        };
        if !Self::booked(entry) {
            return;
        }
        if let Some(e) = tx.error {
            self.push_row(Err(e));
            return;
        }
        let entry_ccy = entry.ccy.clone();
        let own = [&tx.amt_dtls, &tx.amt]
            .into_iter()
            .flatten()
            .find(|(_, c)| c.is_none() || entry_ccy.is_none() || *c == entry_ccy);
        let debit = tx.debit.or(entry.debit).unwrap_or(false);
        match own {
            Some((amount, ccy)) => {
                let signed = if debit { -*amount } else { *amount };
                let ccy = ccy.clone().or(entry_ccy);
                let result = self.build(&tx, Some(signed), ccy, None, tx.path.clone());
                if let Some(e) = self.entry.as_mut() {
                    e.emitted += signed;
                }
                self.emit(result);
            }
            None => {
                let max = self.options.limits.field_bytes_max;
                let Some(entry) = self.entry.as_mut() else {
                    return;
                };
                let rest = entry.rest.get_or_insert_with(Rest::default);
                rest.reference.add(&tx.reference());
                let (name, account) = tx.counterparty(debit);
                rest.cp_name.add(&name);
                rest.cp_account.add(&account);
                rest.return_reason.add(&tx.return_reason);
                if let Some(t) = tx.text() {
                    if rest.texts.len() + t.len() + 3 <= max {
                        if !rest.texts.is_empty() {
                            rest.texts.push_str(" | ");
                        }
                        rest.texts.push_str(&t);
                    }
                }
            }
        }
    }

    fn emit(&mut self, result: Result<Transaction, ParseError>) {
        self.push_row(result.map(Record::Transaction));
    }

    /// Queues one transaction (or its error), unless that exceeds `rows_max`, which ends the
    /// stream.
    fn push_row(&mut self, item: Result<Record, ParseError>) {
        if self.done {
            return;
        }
        self.rows += 1;
        if self.rows > self.options.limits.rows_max {
            let e = ParseError::new(
                ErrorKind::TooLarge,
                format!("more than {} transactions", self.options.limits.rows_max),
            )
            .at(self.here());
            self.fatal(e);
        } else {
            self.out.push_back(item);
        }
    }

    /// Builds a transaction from an entry and (optionally) one of its details.
    fn build(
        &self,
        tx: &Tx,
        signed: Option<Decimal>,
        ccy: Option<String>,
        text_fallback: Option<String>,
        path: String,
    ) -> Result<Transaction, ParseError> {
        let here = Location::XmlPath(path);
        let entry = self.entry.as_ref();
        let missing = |field: &str, what: &str| {
            ParseError::new(ErrorKind::MissingField, format!("the entry has no {what}"))
                .at(here.clone())
                .field(field)
        };
        let signed = signed.ok_or_else(|| missing("Amt", "amount"))?;
        let booking = entry
            .and_then(|e| e.booking.or(e.value))
            .ok_or_else(|| missing("BookgDt", "booking date"))?;
        let currency = ccy.ok_or_else(|| missing("Ccy", "currency"))?;
        let account = self
            .stmt
            .as_ref()
            .and_then(|s| s.account.clone())
            .or_else(|| self.options.account.clone())
            .ok_or_else(|| missing("account", "account (Acct/Id) in its statement"))?;
        let debit = signed.is_sign_negative();
        let (counterparty_name, counterparty_account) = tx.counterparty(debit);
        Ok(Transaction {
            location: here,
            account,
            booking_date: booking,
            value_date: entry.and_then(|e| e.value),
            amount: signed,
            currency,
            counterparty_name,
            counterparty_account,
            reference: tx.reference(),
            bank_txn_id: entry.and_then(|e| tx.bank_txn_id(e)),
            text: tx.text().or(text_fallback),
            reversal: entry.is_some_and(|e| e.reversal),
            return_reason: tx.return_reason.clone(),
        })
    }

    fn close_entry(&mut self) {
        if self.done {
            return;
        }
        let Some(mut entry) = self.entry.take() else {
            return;
        };
        if !Self::booked(&entry) {
            return;
        }
        let first = entry.first_tx.take();
        let rest = entry.rest.take();
        let path = entry.path.clone();
        let signed = entry
            .amount
            .map(|a| if entry.debit == Some(true) { -a } else { a });
        let ccy = entry.ccy.clone();
        let addtl = entry.addtl.clone();
        let batch = entry.tx_count >= 2;
        let emitted = entry.emitted;
        let error = entry.error.take();
        // Put the entry back so that `build` sees its dates and references.
        self.entry = Some(entry);
        if let Some(e) = error {
            self.push_row(Err(e));
        } else if !batch {
            let (tx, path) = match first {
                Some(tx) => {
                    let p = tx.path.clone();
                    (tx, p)
                }
                None => (Tx::default(), path),
            };
            if let Some(e) = tx.error.clone() {
                self.push_row(Err(e));
            } else {
                let result = self.build(&tx, signed, ccy, addtl, path);
                self.emit(result);
            }
        } else if let Some(rest) = rest {
            // Details without their own amounts: the remaining entry amount, once.
            let remaining = signed.map(|s| s - emitted);
            let tx = Tx {
                e2e: rest.reference.get(),
                return_reason: rest.return_reason.get(),
                addtl: (!rest.texts.is_empty()).then_some(rest.texts),
                ..Tx::default()
            };
            let mut result = self.build(&tx, remaining, ccy, addtl, path);
            if let Ok(t) = result.as_mut() {
                t.counterparty_name = rest.cp_name.get();
                t.counterparty_account = rest.cp_account.get();
            }
            self.emit(result);
        } else if let Some(s) = signed {
            if s != emitted {
                self.push_row(Err(ParseError::new(
                    ErrorKind::BadAmount,
                    format!("the details add up to {emitted} but the entry amount is {s}"),
                )
                .at(Location::XmlPath(path))
                .field("Amt")));
            }
        }
        self.entry = None;
    }

    fn step(&mut self) {
        self.buf.clear();
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(ev) => ev.into_owned(),
            Err(e) => {
                let pe = match &e {
                    quick_xml::Error::Io(io) => from_io(io),
                    other => ParseError::new(ErrorKind::MalformedXml, other.to_string()),
                };
                let here = self.here();
                self.fatal(pe.at_opt(Some(here)));
                return;
            }
        };
        let result =
            match event {
                Event::Start(e) => self.open(&e),
                Event::Empty(e) => self.open(&e).and_then(|()| self.close()),
                Event::End(_) => self.close(),
                Event::Text(t) => match t.decode() {
                    Ok(s) => {
                        self.push_text(&s);
                        Ok(())
                    }
                    Err(_) => Err(ParseError::new(ErrorKind::BadEncoding, "text is not UTF-8")
                        .at(self.here())),
                },
                Event::CData(t) => match std::str::from_utf8(&t) {
                    Ok(s) => {
                        self.push_text(s);
                        Ok(())
                    }
                    Err(_) => Err(ParseError::new(ErrorKind::BadEncoding, "text is not UTF-8")
                        .at(self.here())),
                },
                Event::GeneralRef(r) => {
                    let resolved = if r.is_char_ref() {
                        r.resolve_char_ref().ok().flatten()
                    } else {
                        // `&*r`, not `r.as_ref()`: other crates' `AsRef` impls for `[u8]`
                        // (typed-path, under calamine's zip) make that ambiguous.
                        match &*r {
                            b"amp" => Some('&'),
                            b"lt" => Some('<'),
                            b"gt" => Some('>'),
                            b"quot" => Some('"'),
                            b"apos" => Some('\''),
                            _ => None,
                        }
                    };
                    match resolved {
                        Some(c) => {
                            self.push_text(c.encode_utf8(&mut [0; 4]));
                            Ok(())
                        }
                        None => Err(ParseError::new(
                            ErrorKind::MalformedXml,
                            format!(
                                "unknown entity {}",
                                quote(&String::from_utf8_lossy(r.as_ref()))
                            ),
                        )
                        .at(self.here())),
                    }
                }
                Event::Eof => {
                    if !self.stack.is_empty() {
                        Err(ParseError::new(
                            ErrorKind::MalformedXml,
                            "the file ends inside an element",
                        )
                        .at(self.here()))
                    } else if !self.seen_root {
                        Err(ParseError::new(
                            ErrorKind::MalformedXml,
                            "no XML document found",
                        ))
                    } else {
                        self.done = true;
                        Ok(())
                    }
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => Ok(()),
            };
        if let Err(e) = result {
            self.fatal(e);
        }
    }

    fn push_text(&mut self, s: &str) {
        if self.text.len() + s.len() > self.options.limits.field_bytes_max {
            self.text_overflow = true;
        } else {
            self.text.push_str(s);
        }
    }
}

impl<R: BufRead> Iterator for CamtIter<R> {
    type Item = Result<Record, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.out.is_empty() && !self.done {
            self.step();
        }
        self.out.pop_front()
    }
}
