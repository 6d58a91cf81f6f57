//! The running balance column: each row's balance must be the balance before it plus its
//! amount, and the chain's ends give the statement's opening and closing balances.
//!
//! Exports list rows oldest first or newest first (ICBC), and some list a day's rows the other
//! way round from the days (the demo's ICBC files: days newest first, a day's bookings oldest
//! first). So the rows are taken in *runs* of one booking date:
//!
//! * the days' direction is that of the first change of date (for an export sorted by date,
//!   that of its first and last rows), and runs are linked in that direction;
//! * within a run, the order is the one in which its balances chain, counting the breaks each
//!   way; on a tie (one row, or breaks either way), the days' direction, or when the whole
//!   file is one day, the profile's (ICBC newest first, others oldest first).
//!
//! A run is held (line, amount, balance: 48 bytes a row) until it ends, at most
//! [`RUN_HELD_MAX`] rows: a longer run is decided on its first rows and the rest streams.
//! A break is reported at the later row of the pair (the one whose balance does not follow),
//! once, and the chain goes on from that row's stated balance. A row without a balance (empty
//! or masked, as published samples are) or one that could not be read is not checked, nor is
//! the next one against it. Errors about a run come when it ends, after its transactions.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::{ErrorKind, ParseError};
use crate::model::Location;

/// How many rows of one booking date are held to decide their order.
pub(crate) const RUN_HELD_MAX: usize = 4096;

/// A row the chain can check: its balance is known.
#[derive(Debug, Clone, Copy)]
struct Link {
    line: u64,
    amount: Decimal,
    balance: Decimal,
}

/// A row in the chain; `None` for one without a balance or that could not be read.
type Slot = Option<Link>;

/// The order of a run's rows in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The file lists them as they were booked.
    Forward,
    /// The file lists the latest first.
    Reverse,
}

/// One booking date's rows, in file order.
#[derive(Default)]
struct Run {
    date: Option<NaiveDate>,
    order: Option<Order>,
    /// Held rows while the order is open.
    held: Vec<Slot>,
    /// The first and the latest row in file order (outer `None`: no row yet).
    first: Option<Slot>,
    last: Option<Slot>,
}

impl Run {
    /// (earliest, latest) booked row.
    fn ends(&self, order: Order) -> (Slot, Slot) {
        let (first, last) = (self.first.flatten(), self.last.flatten());
        match order {
            Order::Forward => (first, last),
            Order::Reverse => (last, first),
        }
    }
}

/// The checker; rows go in with [`Chain::row`] / [`Chain::gap`], errors come out of
/// [`Chain::take_errors`], and [`Chain::finish`] gives (opening, closing).
pub(crate) struct Chain {
    /// The order when nothing else decides (ICBC exports are newest first).
    newest_first: bool,
    first_date: Option<NaiveDate>,
    /// Whether later days come later in the file; known from the first change of date.
    days_forward: Option<bool>,
    run: Run,
    /// The (earliest, latest) rows of the run before, in file order.
    before: Option<(Slot, Slot)>,
    /// The statement's earliest and latest booked rows.
    oldest: Option<Slot>,
    newest: Option<Slot>,
    errors: Vec<ParseError>,
}

impl Chain {
    pub(crate) fn new(newest_first: bool) -> Chain {
        Chain {
            newest_first,
            first_date: None,
            days_forward: None,
            run: Run::default(),
            before: None,
            oldest: None,
            newest: None,
            errors: Vec::new(),
        }
    }

    /// A row that was read: its booking date, amount and stated balance.
    pub(crate) fn row(
        &mut self,
        line: u64,
        date: NaiveDate,
        amount: Decimal,
        balance: Option<Decimal>,
    ) {
        match self.run.date {
            Some(d) if d != date => {
                let first = self.first_date.unwrap_or(d);
                if self.days_forward.is_none() && date != first {
                    self.days_forward = Some(date > first);
                }
                self.end_run();
            }
            _ => {}
        }
        self.first_date.get_or_insert(date);
        self.run.date = Some(date);
        let slot = balance.map(|balance| Link {
            line,
            amount,
            balance,
        });
        self.add(slot);
    }

    /// A row that could not be read: nothing is checked across it.
    pub(crate) fn gap(&mut self) {
        self.add(None);
    }

    /// Errors found so far (about rows already handed out).
    pub(crate) fn take_errors(&mut self) -> std::vec::Drain<'_, ParseError> {
        self.errors.drain(..)
    }

    /// Ends the last run; returns the opening balance (before the oldest row) and the
    /// closing balance (after the newest), where those rows state one.
    pub(crate) fn finish(&mut self) -> (Option<Decimal>, Option<Decimal>) {
        self.end_run();
        let opening = self
            .oldest
            .flatten()
            .and_then(|l| l.balance.checked_sub(l.amount));
        let closing = self.newest.flatten().map(|l| l.balance);
        (opening, closing)
    }

    fn add(&mut self, slot: Slot) {
        let run = &mut self.run;
        run.first.get_or_insert(slot);
        match run.order {
            None => {
                run.held.push(slot);
                if run.held.len() >= RUN_HELD_MAX {
                    let order = self.decide();
                    self.settle(order);
                }
            }
            Some(order) => {
                if let Some(prev) = run.last {
                    self.errors.extend(pair(order, prev, slot));
                }
            }
        }
        self.run.last = Some(slot);
    }

    /// The order with fewer breaks among the held rows. The link to the run before is left
    /// out: an order that put an unreadable row at the run's edge would escape that check.
    fn decide(&self) -> Order {
        let breaks = |order: Order| {
            self.run
                .held
                .windows(2)
                .filter(|w| pair(order, w[0], w[1]).is_some())
                .count()
        };
        let (forward, reverse) = (breaks(Order::Forward), breaks(Order::Reverse));
        if forward != reverse {
            return if forward < reverse {
                Order::Forward
            } else {
                Order::Reverse
            };
        }
        match self.days_forward {
            Some(true) => Order::Forward,
            Some(false) => Order::Reverse,
            None if self.newest_first => Order::Reverse,
            None => Order::Forward,
        }
    }

    /// Checks the held rows in `order` and streams the rest of the run.
    fn settle(&mut self, order: Order) {
        self.run.order = Some(order);
        let held = std::mem::take(&mut self.run.held);
        for w in held.windows(2) {
            self.errors.extend(pair(order, w[0], w[1]));
        }
    }

    /// The break between this run (in `order`) and the run before, if any.
    fn across(&self, order: Order) -> Option<ParseError> {
        let (before_oldest, before_newest) = self.before?;
        let (oldest, newest) = self.run.ends(order);
        if self.days_forward == Some(false) {
            check(newest, before_oldest)
        } else {
            check(before_newest, oldest)
        }
    }

    fn end_run(&mut self) {
        if self.run.first.is_none() {
            return;
        }
        let order = match self.run.order {
            Some(o) => o,
            None => {
                let o = self.decide();
                self.settle(o);
                o
            }
        };
        self.errors.extend(self.across(order));
        let (oldest, newest) = self.run.ends(order);
        if self.days_forward == Some(false) {
            self.newest.get_or_insert(newest);
            self.oldest = Some(oldest);
        } else {
            self.oldest.get_or_insert(oldest);
            self.newest = Some(newest);
        }
        self.before = Some((oldest, newest));
        self.run = Run::default();
    }
}

/// Checks two neighbours in file order, given the order of their run.
fn pair(order: Order, first: Slot, second: Slot) -> Option<ParseError> {
    match order {
        Order::Forward => check(first, second),
        Order::Reverse => check(second, first),
    }
}

/// The break, if `later`'s balance is not `earlier`'s plus `later`'s amount.
fn check(earlier: Slot, later: Slot) -> Option<ParseError> {
    let (x, y) = (earlier?, later?);
    // Past Decimal's range is no balance a bank states; such a file breaks elsewhere too.
    let expected = x.balance.checked_add(y.amount)?;
    if expected == y.balance {
        return None;
    }
    Some(
        ParseError::new(
            ErrorKind::Unbalanced,
            format!(
                "balance {} stated, {} + {} = {} expected",
                grouped(y.balance),
                grouped(x.balance),
                grouped(y.amount),
                grouped(expected)
            ),
        )
        .at(Location::Line(y.line))
        .field("balance"),
    )
}

/// Money as statements print it: thousands grouped, at least two decimals (`-1,355.89`).
pub(crate) fn grouped(d: Decimal) -> String {
    let mut d = d;
    if d.scale() < 2 {
        d.rescale(2);
    }
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = String::with_capacity(text.len() + text.len() / 3 + 1);
    if d.is_sign_negative() && !d.is_zero() {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    /// Feeds (line, day, amount, balance) rows; returns the lines that break and the ends.
    fn run(
        newest_first: bool,
        rows: &[(u64, u32, &str, Option<&str>)],
    ) -> (Vec<u64>, Option<Decimal>, Option<Decimal>) {
        let mut c = Chain::new(newest_first);
        let mut lines = Vec::new();
        for &(line, d, amount, balance) in rows {
            if d == 0 {
                c.gap();
            } else {
                c.row(line, day(d), dec(amount), balance.map(dec));
            }
            lines.extend(c.take_errors().map(|e| line_of(&e)));
        }
        let (o, cl) = c.finish();
        lines.extend(c.take_errors().map(|e| line_of(&e)));
        lines.sort();
        (lines, o, cl)
    }

    fn line_of(e: &ParseError) -> u64 {
        match e.location {
            Some(Location::Line(l)) => l,
            _ => panic!("{e:?}"),
        }
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(dec("-1355.89")), "-1,355.89");
        assert_eq!(grouped(dec("1234567")), "1,234,567.00");
        assert_eq!(grouped(dec("999.5")), "999.50");
        assert_eq!(grouped(dec("-0")), "0.00");
        assert_eq!(grouped(dec("0.001")), "0.001");
    }

    #[test]
    fn oldest_first_chains_and_breaks_once_per_jump() {
        let rows = [
            (2, 1, "100", Some("1100")),
            (3, 2, "-10", Some("1090")),
            (4, 3, "-10", Some("1000")), // 80 missing: breaks
            (5, 4, "5", Some("1005")),   // follows the stated 1000
        ];
        assert_eq!(
            run(false, &rows),
            (vec![4], Some(dec("1000")), Some(dec("1005")))
        );
    }

    #[test]
    fn newest_first_with_days_in_booking_order() {
        // Days newest first, each day's bookings oldest first (the demo's ICBC files).
        let rows = [
            (10, 20, "-5", Some("85")),
            (11, 13, "-10", Some("100")),
            (12, 13, "-10", Some("90")),
            (13, 6, "10", Some("110")),
        ];
        assert_eq!(
            run(true, &rows),
            (vec![], Some(dec("100")), Some(dec("85")))
        );
        // The same rows strictly newest first also chain.
        let rows = [
            (10, 20, "-5", Some("85")),
            (11, 13, "-10", Some("90")),
            (12, 13, "-10", Some("100")),
            (13, 6, "10", Some("110")),
        ];
        assert_eq!(
            run(false, &rows),
            (vec![], Some(dec("100")), Some(dec("85")))
        );
    }

    #[test]
    fn one_day_is_ordered_by_its_balances_else_by_the_profile() {
        let oldest_first = [(2, 1, "-1", Some("9")), (3, 1, "-2", Some("7"))];
        assert_eq!(
            run(true, &oldest_first),
            (vec![], Some(dec("10")), Some(dec("7")))
        );
        let newest_first = [(2, 1, "-2", Some("7")), (3, 1, "-1", Some("9"))];
        assert_eq!(
            run(false, &newest_first),
            (vec![], Some(dec("10")), Some(dec("7")))
        );
        // +5 then -5 chains both ways: the profile decides.
        let both = [(2, 1, "5", Some("15")), (3, 1, "-5", Some("10"))];
        assert_eq!(run(false, &both).1, Some(dec("10")));
        assert_eq!(run(true, &both).1, Some(dec("15")));
    }

    #[test]
    fn rows_without_a_balance_or_unreadable_are_not_checked_across() {
        let rows = [
            (2, 1, "1", Some("11")),
            (3, 2, "1", None),
            (4, 3, "1", Some("50")),
            (5, 0, "0", None), // unreadable
            (6, 4, "1", Some("99")),
        ];
        assert_eq!(
            run(false, &rows),
            (vec![], Some(dec("10")), Some(dec("99")))
        );
        // An unreadable oldest or newest row leaves the balance unknown.
        let rows = [(2, 0, "0", None), (3, 1, "1", Some("11"))];
        assert_eq!(run(false, &rows), (vec![], None, Some(dec("11"))));
    }

    #[test]
    fn a_long_day_is_decided_on_its_first_rows_and_streams() {
        let mut rows = Vec::new();
        let mut balance = Decimal::from(1_000_000);
        for i in 0..(RUN_HELD_MAX as u64 + 100) {
            balance -= Decimal::ONE;
            let b = if i == RUN_HELD_MAX as u64 + 50 {
                balance + Decimal::TEN // one stated wrong: breaks twice
            } else {
                balance
            };
            rows.push((i + 2, 1, "-1", Some(b.to_string())));
        }
        let rows: Vec<(u64, u32, &str, Option<&str>)> = rows
            .iter()
            .map(|(l, d, a, b)| (*l, *d, *a, b.as_deref()))
            .collect();
        let (breaks, opening, closing) = run(true, &rows);
        let at = RUN_HELD_MAX as u64 + 52;
        assert_eq!(breaks, vec![at, at + 1]);
        assert_eq!(opening, Some(dec("1000000")));
        assert_eq!(closing, Some(balance));
    }
}
