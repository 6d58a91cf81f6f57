//! `statement_gap`: consecutive statements of one account must join. Money can leave a
//! program account on days no imported statement covers, and a statement whose opening
//! balance is not the previous closing balance says that money moved where nobody saw it.
//!
//! The rule, per account, over its statement sections in date order (pure, so it is tested
//! here on its own):
//! * Sections that overlap an earlier one by more than a day are not compared: the overlap is
//!   the duplicate check's business (rows already imported), and a balance at the start of a
//!   day inside another statement is not something either statement states.
//! * A section that starts on the day the covered days end is the next statement when banks
//!   date the opening balance with the previous closing day (MT940 `:60F:`, camt `FrDtTm` of
//!   midnight): it joins when its opening is that closing, or the balance before that day's
//!   rows (an export that starts on the same day again); otherwise it is a balance jump.
//! * A section that starts after the covered days is compared with the section that covers
//!   the last of them. With both balances stated, it is a finding when the opening differs
//!   from that closing (the jump is the amount unexplained), whether or not days lie between:
//!   equal balances across uncovered days show no money moved there, and an export whose
//!   period is only its rows' dates leaves such "gaps" on every quiet day.
//! * Without a stated balance on either side nothing proves the uncovered days quiet, so any
//!   uncovered day is a finding (amount unknown, reported as 0).

use chrono::{Days, NaiveDate};

/// One statement section as the rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub account_id: i64,
    /// The imported file (`statements.id`) the section is part of.
    pub statement_id: i64,
    /// `statement_sections.id`: the import order breaks ties.
    pub id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub opening_minor: Option<i64>,
    pub closing_minor: Option<i64>,
}

/// Two sections of one account that do not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Indexes into the (sorted) sections: the one covering the last day before, the next.
    pub before: usize,
    pub after: usize,
    /// Days neither covers, first and last, if any.
    pub uncovered: Option<(NaiveDate, NaiveDate)>,
    /// The next opening minus the previous closing, when both are stated.
    pub jump_minor: Option<i64>,
}

/// Sorts `sections` by account, then dates, and returns where they do not join.
/// `last_day_minor` tells what a section's rows booked on its last day add up to; it is asked
/// only about a section that a later one starts on the last day of and does not join plainly.
pub fn find(
    sections: &mut [Section],
    last_day_minor: &mut dyn FnMut(&Section) -> Option<i64>,
) -> Vec<Gap> {
    sections.sort_by_key(|s| (s.account_id, s.from, s.to, s.id));
    let mut gaps = Vec::new();
    let mut start = 0;
    while start < sections.len() {
        let account = sections[start].account_id;
        let end = start
            + sections[start..]
                .iter()
                .take_while(|s| s.account_id == account)
                .count();
        account_gaps(sections, start, end, last_day_minor, &mut gaps);
        start = end;
    }
    gaps
}

fn account_gaps(
    sections: &[Section],
    start: usize,
    end: usize,
    last_day_minor: &mut dyn FnMut(&Section) -> Option<i64>,
    gaps: &mut Vec<Gap>,
) {
    debug_assert!(start < end && end <= sections.len());
    // The section that covers the latest day seen so far; its closing is the balance then.
    let mut reach = start;
    for next in start + 1..end {
        let (prev, s) = (&sections[reach], &sections[next]);
        let stated = prev.closing_minor.zip(s.opening_minor);
        // A jump too large for i64 is still a jump, not "no balance stated".
        let jump_minor = stated.map(|(closing, opening)| opening.saturating_sub(closing));
        if s.from > prev.to {
            let uncovered = (s.from > prev.to + Days::new(1))
                .then(|| (prev.to + Days::new(1), s.from - Days::new(1)));
            let breaks = match jump_minor {
                Some(jump) => jump != 0,
                None => uncovered.is_some(),
            };
            if breaks {
                gaps.push(Gap {
                    before: reach,
                    after: next,
                    uncovered,
                    jump_minor,
                });
            }
        } else if s.from == prev.to && s.to > prev.to && jump_minor.is_some_and(|j| j != 0) {
            let (closing, opening) = stated.expect("a jump needs both balances");
            let before_day = last_day_minor(prev).and_then(|sum| closing.checked_sub(sum));
            if before_day != Some(opening) {
                gaps.push(Gap {
                    before: reach,
                    after: next,
                    uncovered: None,
                    jump_minor,
                });
            }
        }
        // Later sections reach further, or as far: then the later one (the next page of a
        // statement split in two, `:28C:` 12/002 after 12/001) holds the balance of that day,
        // unless it states none.
        let s = &sections[next];
        let prev = &sections[reach];
        if s.to > prev.to
            || (s.to == prev.to && (s.closing_minor.is_some() || prev.closing_minor.is_none()))
        {
            reach = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn section(id: i64, from: u32, to: u32, opening: Option<i64>, closing: Option<i64>) -> Section {
        Section {
            account_id: 1,
            statement_id: id,
            id,
            from: day(from),
            to: day(to),
            opening_minor: opening,
            closing_minor: closing,
        }
    }

    #[test]
    fn statements_that_join_give_nothing() {
        let mut s = vec![
            section(2, 16, 30, Some(500), Some(200)),
            section(1, 1, 15, Some(1000), Some(500)),
        ];
        assert!(find(&mut s, &mut |_| None).is_empty());
        assert_eq!(s[0].id, 1, "sorted by date");
    }

    #[test]
    fn a_day_left_out_with_money_moving_is_one_gap_with_its_amount() {
        let mut s = vec![
            section(1, 1, 24, Some(1000), Some(500)),
            section(2, 26, 30, Some(200), Some(200)),
        ];
        let gaps = find(&mut s, &mut |_| None);
        assert_eq!(
            gaps,
            [Gap {
                before: 0,
                after: 1,
                uncovered: Some((day(25), day(25))),
                jump_minor: Some(-300),
            }]
        );
    }

    #[test]
    fn a_balance_jump_between_adjoining_statements_is_a_gap_without_days() {
        let mut s = vec![
            section(1, 1, 15, Some(1000), Some(500)),
            section(2, 16, 30, Some(450), Some(450)),
        ];
        let gaps = find(&mut s, &mut |_| None);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].uncovered, None);
        assert_eq!(gaps[0].jump_minor, Some(-50));
    }

    #[test]
    fn uncovered_days_whose_balances_join_are_quiet_days() {
        let mut s = vec![
            section(1, 1, 10, Some(1000), Some(500)),
            section(2, 20, 30, Some(500), Some(400)),
        ];
        assert!(find(&mut s, &mut |_| None).is_empty());
    }

    #[test]
    fn uncovered_days_without_balances_are_a_gap_of_unknown_amount() {
        let mut s = vec![
            section(1, 1, 10, None, None),
            section(2, 20, 30, Some(500), Some(400)),
        ];
        let gaps = find(&mut s, &mut |_| None);
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].uncovered, Some((day(11), day(19))));
        assert_eq!(gaps[0].jump_minor, None);
    }

    #[test]
    fn overlapping_statements_are_not_compared_but_the_furthest_one_is_joined_to_the_next() {
        let mut s = vec![
            section(1, 1, 20, Some(1000), Some(100)),
            // Overlaps the first: its odd opening is not compared.
            section(2, 10, 25, Some(7), Some(100)),
            // Joins the statement reaching the 25th.
            section(3, 26, 30, Some(90), Some(90)),
        ];
        let gaps = find(&mut s, &mut |_| None);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!((gaps[0].before, gaps[0].after), (1, 2));
        assert_eq!(gaps[0].jump_minor, Some(-10));
    }

    #[test]
    fn a_statement_opening_on_the_last_day_covered_joins_either_way_banks_date_it() {
        // MT940: the opening balance is dated with the previous closing day.
        let mut s = vec![
            section(1, 1, 15, Some(1000), Some(500)),
            section(2, 15, 30, Some(500), Some(400)),
        ];
        assert!(find(&mut s, &mut |_| panic!("not asked when it joins plainly")).is_empty());
        // An export starting on the 15th again opens before that day's rows (-300).
        let mut s = vec![
            section(1, 1, 15, Some(1000), Some(500)),
            section(2, 15, 30, Some(800), Some(400)),
        ];
        assert!(find(&mut s, &mut |p| (p.id == 1).then_some(-300)).is_empty());
        // Neither: money moved unseen.
        let gaps = find(&mut s, &mut |_| Some(-100));
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].uncovered, gaps[0].jump_minor), (None, Some(300)));
    }

    #[test]
    fn a_jump_too_large_for_i64_is_still_a_jump() {
        let mut s = vec![
            section(1, 1, 15, Some(0), Some(i64::MIN)),
            section(2, 16, 30, Some(i64::MAX), Some(i64::MAX)),
        ];
        let gaps = find(&mut s, &mut |_| None);
        assert_eq!(gaps[0].jump_minor, Some(i64::MAX));
    }

    #[test]
    fn the_second_page_of_a_statement_is_what_the_next_one_joins() {
        let mut s = vec![
            section(1, 14, 15, Some(100), Some(200)),
            section(2, 14, 15, Some(200), Some(300)),
            section(3, 15, 20, Some(300), Some(250)),
        ];
        assert!(find(&mut s, &mut |_| None).is_empty());
    }

    #[test]
    fn accounts_are_separate() {
        let mut s = vec![
            section(1, 1, 15, Some(1000), Some(500)),
            Section {
                account_id: 2,
                ..section(2, 16, 30, Some(0), Some(0))
            },
        ];
        assert!(find(&mut s, &mut |_| None).is_empty());
    }
}
