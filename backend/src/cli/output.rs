//! How commands print. One convention: for people, a table or a short line on stdout; with
//! `--json`, the same facts as one JSON document for scripts; errors on stderr, with their
//! stable code, and exit status 1. Positions in input files are always 1-based lines (the
//! header is line 1), never a batch's 0-based item.

use crate::error::{AppError, Problem};
use crate::ledger::append::AppendOutcome;
use crate::ledger::EntryBody;
use serde_json::{json, Value};
use unicode_width::UnicodeWidthStr;

/// Writes `text` to stdout. A reader that went away (`| head`) ends the output quietly
/// instead of a panic, as it would for any Unix tool.
pub(super) fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {e}");
        }
    }
}

/// Prints `v` as pretty JSON on stdout.
pub(super) fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(text) => emit(&format!("{text}\n")),
        // Our own types always serialize; say so rather than print nothing.
        Err(e) => eprintln!("error: internal: cannot print JSON: {e}"),
    }
}

/// A table for people: columns padded to their widest cell (by display width, so Chinese
/// names line up), numbers right-aligned.
pub(super) struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns by header; a header starting with `>` is right-aligned (the `>` is dropped).
    pub(super) fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.trim_start_matches('>')).collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(super) fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.width());
            }
        }
        let mut text = String::new();
        let mut line = |cells: Vec<&str>| {
            let last = cells.len().saturating_sub(1);
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                let pad = " ".repeat(widths[i].saturating_sub(c.width()));
                match (self.right[i], i == last) {
                    (true, _) => out.push_str(&format!("{pad}{c}")),
                    (false, true) => out.push_str(c),
                    (false, false) => out.push_str(&format!("{c}{pad}")),
                }
                if i != last {
                    out.push_str("  ");
                }
            }
            text.push_str(out.trim_end());
            text.push('\n');
        };
        line(self.headers.clone());
        for r in &self.rows {
            line(r.iter().map(String::as_str).collect());
        }
        emit(&text);
    }
}

/// An optional value for a table cell (`-` when absent).
pub(super) fn or_dash(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The entries of an accepted batch as `--json` prints them: what was signed, and where the
/// ledger put it. `lines` gives each entry's roster line, when it came from one.
pub(super) fn entries_json(bodies: &[EntryBody], out: &AppendOutcome, lines: &[u64]) -> Vec<Value> {
    bodies
        .iter()
        .zip(&out.entries)
        .enumerate()
        .map(|(i, (b, e))| {
            let mut v = json!({
                "seq": e.seq,
                "kind": b.kind,
                "program": b.program,
                "period": b.period,
                "amount": b.amount,
                "reference": e.reference,
                "source": b.source,
                "from": b.from,
                "to": b.to,
                "recipient": b.recipient,
                "value_date": b.value_date,
                "memo": b.memo,
                "hash": e.hash,
                "batch": out.batch,
            });
            if let Some(line) = lines.get(i) {
                v["line"] = json!(line);
            }
            v
        })
        .collect()
}

/// `#12`, or `#12-#14` for a run of seqs.
pub(super) fn seq_range(first: i64, last: i64) -> String {
    if first == last {
        format!("#{first}")
    } else {
        format!("#{first}-#{last}")
    }
}

fn located(p: &Problem) -> String {
    let mut at = Vec::new();
    if let Some(l) = &p.location {
        if !p.message.contains(l.as_str()) {
            at.push(l.clone());
        }
    }
    if let Some(i) = p.item {
        at.push(format!("item {i}"));
    }
    if let Some(f) = &p.field {
        at.push(format!("field {f}"));
    }
    if at.is_empty() {
        String::new()
    } else {
        format!(" ({})", at.join(", "))
    }
}

/// Writes `e` to stderr: the first problem, then every further one on its own line.
pub(super) fn print_error(e: &AppError) {
    let more = if e.problems_total > 1 {
        format!(" and {} more problem(s)", e.problems_total - 1)
    } else {
        String::new()
    };
    eprintln!(
        "error: {}: {}{}{more}",
        e.first.error.as_str(),
        e.first.message,
        located(&e.first)
    );
    for p in e.problems.iter().skip(1) {
        eprintln!("  {}: {}{}", p.error.as_str(), p.message, located(p));
    }
    if e.problems_total > e.problems.len() {
        eprintln!(
            "  … {} more not listed",
            e.problems_total - e.problems.len()
        );
    }
}

/// A warning about the columns of an input file that were not understood.
pub(super) fn warn_unknown_columns(file: &std::path::Path, unknown: &[String], reads: &str) {
    if !unknown.is_empty() {
        eprintln!(
            "warning: {}: column(s) not understood and not used: {} (this command reads {reads})",
            file.display(),
            unknown.join(", ")
        );
    }
}
