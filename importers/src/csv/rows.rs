//! From rows of cells to records, whatever the rows came from (a CSV line, a spreadsheet
//! row): preamble and header, data rows, total rows, the running balance, and the statement's
//! facts at the end. One [`Rows`] per statement; its source pushes rows, then pops what they
//! yielded.

use std::borrow::Cow;
use std::collections::VecDeque;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::cells::{
    cell_amount, cell_date, is_total_row, parse_currency, parse_direction, preamble_account,
    preamble_period, return_marker, split_counterparty, AsCell, Cell,
};
use super::chain::Chain;
use super::header::{AmountSource, Header};
use crate::error::{quote, ErrorKind, ParseError};
use crate::model::{CsvProfile, Location, Options, Record, Statement, Transaction};

/// How many rows may precede the header.
pub(crate) const PREAMBLE_ROWS_MAX: u32 = 100;

/// The state of one statement being read.
pub(crate) struct Rows {
    profile: CsvProfile,
    options: Options,
    header: Option<Header>,
    header_line: u64,
    preamble_rows: u32,
    preamble_account: Option<String>,
    /// The period a preamble line states (`起止日期: … 至 …`).
    period: (Option<NaiveDate>, Option<NaiveDate>),
    rows: u64,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// `None` = no row yet; `Some(None)` = rows disagree.
    currency: Option<Option<String>>,
    /// The rows' own account column, the same way: a file with an account column but no
    /// preamble is a statement of the account its rows name.
    row_account: Option<Option<String>>,
    chain: Chain,
    out: VecDeque<Result<Record, ParseError>>,
}

/// A data row as read: the transaction and its stated balance.
type Read = Option<Result<(Transaction, Option<Decimal>), ParseError>>;

impl Rows {
    pub(crate) fn new(profile: CsvProfile, options: &Options) -> Rows {
        Rows {
            profile,
            options: options.clone(),
            header: None,
            header_line: 0,
            preamble_rows: 0,
            preamble_account: None,
            period: (None, None),
            rows: 0,
            from: None,
            to: None,
            currency: None,
            row_account: None,
            chain: Chain::new(profile == CsvProfile::Icbc),
            out: VecDeque::new(),
        }
    }

    pub(crate) fn has_header(&self) -> bool {
        self.header.is_some()
    }

    /// The next record or row error, if one is ready.
    pub(crate) fn pop(&mut self) -> Option<Result<Record, ParseError>> {
        self.out.pop_front()
    }

    /// Reads one row starting at `line`. An `Err` is fatal: the stream ends after what is
    /// queued (no header in the first rows, too many rows).
    pub(crate) fn push<C: AsCell>(&mut self, cells: &[C], line: u64) -> Result<(), ParseError> {
        // Taken out for the row and put back: a clone per row costs a parse-only pass ~10%.
        let Some(header) = self.header.take() else {
            return self.preamble(cells, line);
        };
        let read = self.row(&header, cells, line);
        self.header = Some(header);
        let Some(read) = read else {
            return Ok(());
        };
        self.count(line)?;
        match read {
            Ok((t, balance)) => {
                if self.header.as_ref().is_some_and(|h| h.balance.is_some()) {
                    self.chain.row(line, t.booking_date, t.amount, balance);
                    // Breaks concern earlier rows: they come before this row's transaction.
                    self.out.extend(self.chain.take_errors().map(Err));
                }
                self.note(&t);
                self.out.push_back(Ok(Record::Transaction(t)));
            }
            Err(e) => self.unreadable(e),
        }
        Ok(())
    }

    /// A row its source could not make cells of (bad bytes, too long). After the header it is
    /// a data row that failed; before, only the error is passed on.
    pub(crate) fn push_error(&mut self, e: ParseError, line: u64) -> Result<(), ParseError> {
        if self.header.is_some() {
            self.count(line)?;
            self.unreadable(e);
        } else {
            self.out.push_back(Err(e));
        }
        Ok(())
    }

    /// Ends the statement: queues its facts (or, without a header, a `bad_header` error).
    pub(crate) fn finish(&mut self) {
        if self.header.is_none() {
            self.out.push_back(Err(ParseError::new(
                ErrorKind::BadHeader,
                "no header row with a date and an amount column was found",
            )));
            return;
        }
        let (opening_balance, closing_balance) = self.chain.finish();
        self.out.extend(self.chain.take_errors().map(Err));
        // A period the preamble states wins; it may be wider than the rows (quiet days).
        let (mut from, mut to) = self.period;
        if from.zip(to).is_some_and(|(f, t)| f > t) {
            (from, to) = (None, None);
        }
        let statement = Statement {
            location: Location::Line(self.header_line),
            account: self
                .default_account()
                .or_else(|| self.row_account.clone().flatten())
                .unwrap_or_default(),
            statement_id: None,
            currency: self.currency.clone().flatten(),
            from_date: from.or(self.from),
            to_date: to.or(self.to),
            opening_balance,
            closing_balance,
        };
        self.out.push_back(Ok(Record::Statement(statement)));
    }

    fn preamble<C: AsCell>(&mut self, cells: &[C], line: u64) -> Result<(), ParseError> {
        let texts: Vec<Cow<str>> = cells.iter().map(|c| c.as_cell().text()).collect();
        if let Some(h) = Header::recognise(&texts) {
            if self.profile == CsvProfile::Generic && h.profile() != CsvProfile::Generic {
                // Chinese headers imply RMB even if the caller chose Generic.
                self.profile = h.profile();
                self.chain = Chain::new(self.profile == CsvProfile::Icbc);
            }
            self.header = Some(h);
            self.header_line = line;
            return Ok(());
        }
        if self.preamble_account.is_none() {
            self.preamble_account = preamble_account(&texts);
        }
        if self.period == (None, None) {
            self.period = preamble_period(&texts);
        }
        self.preamble_rows += 1;
        if self.preamble_rows >= PREAMBLE_ROWS_MAX {
            return Err(ParseError::new(
                ErrorKind::BadHeader,
                format!(
                    "no header row with a date and an amount column in the first {PREAMBLE_ROWS_MAX} rows"
                ),
            ));
        }
        Ok(())
    }

    fn count(&mut self, line: u64) -> Result<(), ParseError> {
        self.rows += 1;
        if self.rows > self.options.limits.rows_max {
            return Err(ParseError::new(
                ErrorKind::TooLarge,
                format!("more than {} rows", self.options.limits.rows_max),
            )
            .at(Location::Line(line)));
        }
        Ok(())
    }

    fn unreadable(&mut self, e: ParseError) {
        self.chain.gap();
        self.out.extend(self.chain.take_errors().map(Err));
        self.out.push_back(Err(e));
    }

    /// Keeps the statement-wide facts a transaction adds to.
    fn note(&mut self, t: &Transaction) {
        self.from = Some(self.from.map_or(t.booking_date, |d| d.min(t.booking_date)));
        self.to = Some(self.to.map_or(t.booking_date, |d| d.max(t.booking_date)));
        self.row_account = match self.row_account.take() {
            None => Some(Some(t.account.clone())),
            Some(Some(a)) if a == t.account => Some(Some(a)),
            Some(_) => Some(None),
        };
        self.currency = match self.currency.take() {
            None => Some(Some(t.currency.clone())),
            Some(Some(c)) if c == t.currency => Some(Some(c)),
            Some(_) => Some(None),
        };
    }

    fn default_account(&self) -> Option<String> {
        self.preamble_account
            .clone()
            .or_else(|| self.options.account.clone())
    }

    /// Reads a data row; `None` for blank and total rows.
    fn row<C: AsCell>(&self, header: &Header, cells: &[C], line: u64) -> Read {
        let loc = Location::Line(line);
        let texts: Vec<Option<Cow<str>>> = cells.iter().map(|c| c.as_cell().cleaned()).collect();
        if texts.iter().all(Option::is_none) || is_total_row(&texts) {
            return None;
        }
        let max = self.options.limits.field_bytes_max;
        for (i, c) in texts.iter().enumerate() {
            if c.as_ref().is_some_and(|c| c.len() > max) {
                return Some(Err(ParseError::new(
                    ErrorKind::FieldTooLong,
                    format!("the cell is longer than {max} bytes"),
                )
                .at(loc)
                .field(header.field_name(i))));
            }
        }
        let get = |i: Option<usize>| i.and_then(|i| texts.get(i)).and_then(|c| c.as_deref());
        let cell = |i: usize| cells.get(i).map_or(Cell::Empty, AsCell::as_cell);
        let err = |code, field: &str, msg: String| {
            Some(Err(ParseError::new(code, msg).at(loc.clone()).field(field)))
        };

        let Some(date_text) = get(Some(header.date)) else {
            return err(
                ErrorKind::MissingField,
                "booking_date",
                "the date is empty".into(),
            );
        };
        let Some(booking_date) = cell_date(&cell(header.date), date_text) else {
            return err(
                ErrorKind::BadDate,
                "booking_date",
                format!("{} is not a date", quote(date_text)),
            );
        };
        let value_date = match (header.value_date, get(header.value_date)) {
            (Some(i), Some(v)) => match cell_date(&cell(i), v) {
                Some(d) => Some(d),
                None => {
                    return err(
                        ErrorKind::BadDate,
                        "value_date",
                        format!("{} is not a date", quote(v)),
                    )
                }
            },
            _ => None,
        };

        let read = |i: Option<usize>| -> Result<Option<Decimal>, String> {
            let Some(i) = i else { return Ok(None) };
            let text = get(Some(i));
            cell_amount(&cell(i), text)
                .map_err(|()| format!("{} is not an amount", quote(text.unwrap_or(""))))
        };
        let mut amount = None;
        for source in &header.amounts {
            let value = match source {
                AmountSource::Signed(i) => read(Some(*i)),
                AmountSource::Split { income, expense } => match (read(*income), read(*expense)) {
                    (Err(m), _) | (_, Err(m)) => Err(m),
                    (Ok(Some(a)), Ok(Some(b))) if !a.is_zero() && !b.is_zero() => {
                        Err(format!("both income {a} and expense {b} are filled in"))
                    }
                    (Ok(Some(a)), Ok(Some(b))) if a.is_zero() => Ok(Some(-b)),
                    (Ok(Some(a)), _) => Ok(Some(a)),
                    (Ok(None), Ok(b)) => Ok(b.map(|b| -b)),
                },
            };
            match value {
                Err(m) => return err(ErrorKind::BadAmount, "amount", m),
                Ok(Some(v)) => {
                    amount = Some(v);
                    break;
                }
                Ok(None) => {}
            }
        }
        let Some(mut amount) = amount else {
            return err(
                ErrorKind::MissingField,
                "amount",
                "no amount in this row".into(),
            );
        };
        if let Some(marker) = get(header.direction) {
            match parse_direction(marker) {
                Some(true) => amount = -amount.abs(),
                Some(false) => {}
                None => {
                    return err(
                        ErrorKind::BadAmount,
                        "direction",
                        format!(
                            "{} is neither debit (借/支) nor credit (贷/收)",
                            quote(marker)
                        ),
                    )
                }
            }
        }

        // Published samples mask balances (`xx,yyyy.zz`): without a digit it states nothing.
        let balance = match get(header.balance) {
            Some(b) if !b.chars().any(|c| c.is_ascii_digit()) => None,
            Some(_) => match read(header.balance) {
                Ok(b) => b,
                Err(m) => return err(ErrorKind::BadAmount, "balance", m),
            },
            None => None,
        };

        let currency = match header.currency.iter().find_map(|&i| get(Some(i))) {
            Some(c) => match parse_currency(c) {
                Some(c) => c,
                None => {
                    return err(
                        ErrorKind::BadCurrency,
                        "currency",
                        format!("{} is not a currency", quote(c)),
                    )
                }
            },
            None => match self.profile.default_currency() {
                Some(c) => c.to_string(),
                None => {
                    return err(
                        ErrorKind::MissingField,
                        "currency",
                        "no currency in this row".into(),
                    )
                }
            },
        };

        let mut counterparty_name = get(header.cp_name).map(str::to_string);
        let mut counterparty_account = get(header.cp_account).map(str::to_string);
        if let Some(combined) = get(header.cp_combined) {
            let (name, account) = split_counterparty(combined);
            counterparty_name = counterparty_name.or(name);
            counterparty_account = counterparty_account.or(account);
        }
        // ABC writes 0000000000 as the journal number of interest bookings: it identifies
        // nothing, and two such rows must not look like one transaction.
        let bank_txn_id = get(header.bank_txn_id)
            .filter(|id| !id.chars().all(|c| c == '0'))
            .map(str::to_string);
        let account = get(header.account)
            .map(str::to_string)
            .or_else(|| self.default_account())
            .unwrap_or_default();

        let text = get(header.text).map(str::to_string);
        Some(Ok((
            Transaction {
                location: loc,
                account,
                booking_date,
                value_date,
                amount,
                currency,
                counterparty_name,
                counterparty_account,
                reference: get(header.reference).map(str::to_string),
                bank_txn_id,
                return_reason: return_marker(amount, text.as_deref()),
                text,
                reversal: false,
            },
            balance,
        )))
    }
}
