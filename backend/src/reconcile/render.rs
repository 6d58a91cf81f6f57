//! Renders a reconciliation [`Report`] for people: a flat CSV of the findings (for Excel) and one
//! self-contained, printable HTML page (for an inspector's file), in Chinese or English.
//!
//! Both are pure functions of the report and the language, like the JSON: the same report gives
//! the same bytes. The HTML page fetches nothing when viewed (inline CSS, no scripts, no external
//! fonts or images, and a Content-Security-Policy that forbids loading anything), so it can be
//! archived and opened offline years later and shows exactly what was handed out.

use super::report::{
    BankRowEvidence, ComplaintEvidence, Finding, FindingType, FunnelNode, LedgerEvidence,
    ProgramSummary, Report, Rule, Severity, StatementEvidence,
};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::str::FromStr;

/// The language of a rendered report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Simplified Chinese, the default: the users are Chinese offices and inspectors.
    #[default]
    ZhCn,
    En,
}

impl Lang {
    /// Parses `zh-CN`, `zh` or `en`, ignoring case (`zh_cn` too, as some clients send it).
    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zh-cn" | "zh_cn" | "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The BCP 47 tag, as used in `<html lang>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    fn text(self) -> &'static Text {
        match self {
            Lang::ZhCn => &ZH,
            Lang::En => &EN,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The localized name of a finding type.
pub fn finding_type_label(t: FindingType, lang: Lang) -> &'static str {
    lang.text().types[type_index(t)].0
}

/// One sentence saying what a finding type means, localized.
pub fn finding_type_explanation(t: FindingType, lang: Lang) -> &'static str {
    lang.text().types[type_index(t)].1
}

/// The localized name of a severity.
pub fn severity_label(s: Severity, lang: Lang) -> &'static str {
    let t = lang.text();
    match s {
        Severity::High => t.sev_high,
        Severity::Medium => t.sev_medium,
        Severity::Low => t.sev_low,
    }
}

fn type_index(t: FindingType) -> usize {
    FindingType::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every type is in ALL")
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// The UTF-8 byte order mark: without it Excel reads a CSV as the local ANSI code page and
/// garbles Chinese text.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes the findings as a flat table, one finding per row, for Excel: BOM, a localized header,
/// CRLF line endings (RFC 4180, what Excel writes itself).
///
/// Columns: type, type label, severity, program, period, org, amount, currency,
/// payment_reference, recipient, rule, parameter, threshold, observed, detail, ledger evidence,
/// bank evidence, complaints. Codes (type, severity, entry kinds) stay the stable snake_case
/// names in both languages so that a filter built on one export works on another.
pub fn write_csv(report: &Report, lang: Lang, out: &mut dyn Write) -> io::Result<()> {
    let t = lang.text();
    out.write_all(UTF8_BOM)?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(BufWriter::new(out));
    w.write_record(t.csv_headers)?;
    // Reused across rows: thousands of findings without an allocation per evidence column.
    let (mut ledger, mut bank, mut complaints) = (String::new(), String::new(), String::new());
    for f in &report.findings {
        ledger.clear();
        bank.clear();
        complaints.clear();
        for (i, e) in f.evidence.ledger.iter().enumerate() {
            sep(&mut ledger, i);
            ledger_text(&mut ledger, e);
        }
        for (i, b) in f.evidence.bank_rows.iter().enumerate() {
            sep(&mut bank, i);
            bank_text(&mut bank, b);
        }
        for (i, st) in f.evidence.statements.iter().enumerate() {
            sep(&mut bank, i + f.evidence.bank_rows.len());
            statement_text(&mut bank, st);
        }
        for (i, c) in f.evidence.complaints.iter().enumerate() {
            sep(&mut complaints, i);
            complaint_text(&mut complaints, c, t);
        }
        let rule = &f.evidence.rule;
        let detail = detail_text(f, lang);
        let row: [&str; 18] = [
            f.finding_type.as_str(),
            finding_type_label(f.finding_type, lang),
            f.severity.as_str(),
            &f.program,
            opt(&f.period),
            &f.org,
            &f.amount,
            &f.currency,
            opt(&f.payment_reference),
            opt(&f.recipient),
            &rule.name,
            opt(&rule.parameter),
            opt(&rule.threshold),
            opt(&rule.observed),
            &detail,
            &ledger,
            &bank,
            &complaints,
        ];
        for cell in row {
            w.write_field(defuse_formula(cell).as_bytes())?;
        }
        w.write_record(None::<&[u8]>)?;
    }
    w.flush()?;
    Ok(())
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn sep(buf: &mut String, i: usize) {
    if i > 0 {
        buf.push_str("; ");
    }
}

/// `#12 disbursement DB-1 780.00 2026-11-10`
fn ledger_text(buf: &mut String, e: &LedgerEvidence) {
    use fmt::Write as _;
    let _ = write!(
        buf,
        "#{} {} {} {} {}",
        e.seq, e.kind, e.reference, e.amount, e.value_date
    );
}

/// `file.csv line 7 2026-11-11 -780.00`
fn bank_text(buf: &mut String, b: &BankRowEvidence) {
    use fmt::Write as _;
    let _ = write!(
        buf,
        "{} {} {} {}",
        b.file_name, b.location, b.booking_date, b.amount
    );
}

/// `statement 3 TWN.csv line 1 account 1508… 2026-11-01..2026-11-24 opening 100.00 closing 80.00`
fn statement_text(buf: &mut String, s: &StatementEvidence) {
    use fmt::Write as _;
    let _ = write!(
        buf,
        "statement {} {} {} account {} {}..{} opening {} closing {}",
        s.statement_id,
        s.file_name,
        s.location,
        s.account,
        s.from_date,
        s.to_date,
        s.opening_balance.as_deref().unwrap_or("-"),
        s.closing_balance.as_deref().unwrap_or("-")
    );
}

/// `#3 not_received 2026-11-20`, `#4 wrong_amount 2026-11-21 received 700.00`
fn complaint_text(buf: &mut String, c: &ComplaintEvidence, t: &Text) {
    use fmt::Write as _;
    let _ = write!(buf, "#{} {} {}", c.complaint_id, c.kind, c.filed_on);
    if let Some(a) = &c.amount_received {
        let _ = write!(buf, " {} {a}", t.received_word);
    }
}

/// Prefixes `'` to a cell Excel would run as a formula (`=`, `+`, `-`, `@`, tab, CR first):
/// file names and org names come from uploads, and a spreadsheet is where an inspector opens
/// them. Plain signed numbers (`-780.00`) are left alone so they stay numbers.
fn defuse_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    if risky && Decimal::from_str(cell).is_err() {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/// HTML-escapes its text as it is written (`& < > " '`), so no escaped copy is built.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // The escaped bytes are ASCII, so `i` is always a char boundary.
            f.write_str(&s[last..i])?;
            f.write_str(rep)?;
            last = i + 1;
        }
        f.write_str(&s[last..])
    }
}

/// Escapes an optional string, `—` when absent.
struct EscOpt<'a>(&'a Option<String>);

impl fmt::Display for EscOpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => Esc(s).fmt(f),
            None => f.write_str("—"),
        }
    }
}

/// Print-friendly, self-contained styles. Severity and "does not hold" are always spelled out
/// in text; colour and borders only repeat it, since a print may drop backgrounds or be grey.
const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", system-ui, sans-serif; font-size: 14px; line-height: 1.45; color: #111; background: #fff; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #333; padding-bottom: .15em; margin-top: 1.6em; }
h3 { font-size: 1.1em; margin: 1.2em 0 .3em; }
p.explain { margin: .2em 0 .6em; color: #333; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .5em 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
.mono, .hash { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.hash { word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border: 1px solid #999; padding: .25em .45em; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.org { overflow-wrap: anywhere; min-width: 14em; }
.orgname { color: #444; }
.sev { font-weight: 700; white-space: nowrap; }
.sev-high { color: #a00; }
.sev-medium { color: #850; }
.fail { color: #a00; font-weight: 700; }
.none { font-size: 1.1em; padding: .6em; border: 1px solid #999; }
ul.ev { margin: 0; padding-left: 1.1em; }
ul.ev li { margin: 0; }
.evk { font-weight: 600; }
.small { font-size: .9em; color: #333; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { font-size: 9pt; margin: 0; max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  p.explain { break-after: avoid; page-break-after: avoid; }
  table { page-break-inside: auto; }
  thead { display: table-header-group; }
  tr, td, th { break-inside: avoid; page-break-inside: avoid; }
  th { background: none; border-bottom: 2px solid #000; }
  .sev-high, .sev-medium, .fail { color: #000; }
  section.group { break-before: auto; }
}
"#;

/// Writes one self-contained HTML page for the report: scope and ledger state, the summary per
/// program (and where the money went missing), the funnel tree and its checks, then the findings
/// grouped by type with their evidence.
///
/// Findings are written row by row, so a report with many thousands of findings is streamed, not
/// built as one string.
pub fn write_html(report: &Report, lang: Lang, out: &mut dyn Write) -> io::Result<()> {
    let mut w = BufWriter::new(out);
    let t = lang.text();
    let risk = RiskIndex::build(report);
    write_head(&mut w, report, lang, t)?;
    write_scope(&mut w, report, t)?;
    write_summary(&mut w, report, t, &risk)?;
    write_funnel(&mut w, report, t)?;
    write_findings(&mut w, report, lang, t)?;
    writeln!(w, "</body>\n</html>")?;
    w.flush()
}

fn write_head(w: &mut dyn Write, report: &Report, lang: Lang, t: &Text) -> io::Result<()> {
    let title_scope = report.params.program.as_deref().unwrap_or(t.all_programs);
    writeln!(w, "<!DOCTYPE html>")?;
    writeln!(w, "<html lang=\"{}\">", lang.as_str())?;
    writeln!(w, "<head>\n<meta charset=\"utf-8\">")?;
    // Belt and braces for "fetches nothing": even a bug that let markup through could not load
    // a script, image, font or stylesheet from anywhere.
    writeln!(
        w,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
    )?;
    writeln!(
        w,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        w,
        "<title>{} — {} — {}</title>",
        Esc(t.title),
        Esc(title_scope),
        Esc(&report.params.as_of)
    )?;
    writeln!(w, "<style>{CSS}</style>\n</head>\n<body>")?;
    writeln!(w, "<h1>{}</h1>", Esc(t.title))
}

fn write_scope(w: &mut dyn Write, report: &Report, t: &Text) -> io::Result<()> {
    let p = &report.params;
    let s = &report.ledger_state;
    writeln!(w, "<section id=\"scope\">")?;
    writeln!(w, "<dl class=\"meta\">")?;
    let or_all = |v: &Option<String>, all: &'static str| -> String {
        v.clone().unwrap_or_else(|| all.to_string())
    };
    let rows: [(&str, String, &str); 11] = [
        (t.program, or_all(&p.program, t.all_programs), ""),
        (t.period, or_all(&p.period, t.all_periods), ""),
        (t.org_scope, or_all(&p.org, t.whole_tree), ""),
        (t.as_of, p.as_of.clone(), ""),
        (
            t.p_hold_days_max,
            p.hold_days_max.to_string(),
            "hold_days_max",
        ),
        (
            t.p_unconfirmed_days_max,
            p.unconfirmed_days_max.to_string(),
            "unconfirmed_days_max",
        ),
        (
            t.p_amount_tolerance,
            p.amount_tolerance.clone(),
            "amount_tolerance",
        ),
        (
            t.p_recipients_per_account_max,
            p.recipients_per_account_max.to_string(),
            "recipients_per_account_max",
        ),
        (t.ledger_seq, s.seq.to_string(), ""),
        (t.bank_rows, s.bank_rows.to_string(), ""),
        (t.complaints_filed, s.complaints.to_string(), ""),
    ];
    for (label, value, code) in &rows {
        write!(w, "<dt>{}", Esc(label))?;
        if !code.is_empty() {
            write!(w, " <span class=\"mono small\">{}</span>", Esc(code))?;
        }
        writeln!(w, "</dt><dd>{}</dd>", Esc(value))?;
    }
    writeln!(
        w,
        "<dt>{}</dt><dd class=\"hash\" data-ledger=\"head_hash\">{}</dd>",
        Esc(t.head_hash),
        Esc(&s.head_hash)
    )?;
    writeln!(
        w,
        "<dt>{}</dt><dd>{}</dd>",
        Esc(t.report_version),
        report.report_version
    )?;
    writeln!(w, "</dl>")?;
    writeln!(w, "<p class=\"small\">{}</p>", Esc(t.recompute_note))?;
    writeln!(w, "</section>")
}

/// Amount at risk and finding count per (program, org), summed from the findings: the funnel
/// carries unexplained money per node but not what the findings put at risk.
struct RiskIndex<'a> {
    by_org: HashMap<(&'a str, &'a str), (Decimal, i64)>,
}

impl<'a> RiskIndex<'a> {
    fn build(report: &'a Report) -> RiskIndex<'a> {
        let mut by_org: HashMap<(&str, &str), (Decimal, i64)> = HashMap::new();
        for f in &report.findings {
            let e = by_org
                .entry((f.program.as_str(), f.org.as_str()))
                .or_default();
            e.0 += dec(&f.amount);
            e.1 += 1;
        }
        RiskIndex { by_org }
    }

    /// The orgs of `program` with the most at risk, largest first, ties by org code.
    fn top(&self, program: &str, n: usize) -> Vec<(&'a str, Decimal, i64)> {
        let mut v: Vec<_> = self
            .by_org
            .iter()
            .filter(|((p, _), (amount, _))| *p == program && !amount.is_zero())
            .map(|((_, org), (amount, count))| (*org, *amount, *count))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// A report amount as a decimal; the report only carries valid decimals, and a malformed one
/// must not stop an inspector from reading the rest, so it counts as zero in rankings.
fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

/// Org display name from the funnel (findings only carry the code).
fn org_names(report: &Report) -> HashMap<&str, &str> {
    report
        .funnel
        .iter()
        .map(|n| (n.org.as_str(), n.org_name.as_str()))
        .collect()
}

fn write_summary(
    w: &mut dyn Write,
    report: &Report,
    t: &Text,
    risk: &RiskIndex<'_>,
) -> io::Result<()> {
    writeln!(w, "<section id=\"summary\">\n<h2>{}</h2>", Esc(t.summary))?;
    if report.summary.is_empty() {
        writeln!(w, "<p class=\"none\">{}</p>", Esc(t.no_programs))?;
        return writeln!(w, "</section>");
    }
    writeln!(w, "<table class=\"summary\">\n<thead><tr>")?;
    write!(w, "<th>{}</th><th>{}</th>", Esc(t.program), Esc(t.currency))?;
    for h in [
        t.received,
        t.disbursed,
        t.confirmed,
        t.returned,
        t.held,
        t.reached_recipients,
        t.unexplained,
        t.amount_at_risk,
        t.findings_count,
    ] {
        write!(w, "<th class=\"num\">{}</th>", Esc(h))?;
    }
    writeln!(w, "</tr></thead>\n<tbody>")?;
    for s in &report.summary {
        write_summary_row(w, s)?;
    }
    writeln!(w, "</tbody>\n</table>")?;

    let names = org_names(report);
    for s in &report.summary {
        write_where(w, report, s, t, risk, &names)?;
    }
    writeln!(w, "</section>")
}

fn write_summary_row(w: &mut dyn Write, s: &ProgramSummary) -> io::Result<()> {
    let p = Esc(&s.program);
    write!(
        w,
        "<tr data-program=\"{p}\"><td><span class=\"mono\">{p}</span> {}</td><td>{}</td>",
        Esc(&s.program_name),
        Esc(&s.currency)
    )?;
    let findings = s.findings.to_string();
    let cells: [(&str, &str); 9] = [
        ("received", &s.received),
        ("disbursed", &s.disbursed),
        ("confirmed", &s.confirmed),
        ("returned", &s.returned),
        ("held", &s.held),
        ("reached_recipients", &s.reached_recipients),
        ("unexplained", &s.unexplained),
        ("amount_at_risk", &s.amount_at_risk),
        ("findings", &findings),
    ];
    // Tools and tests read each figure back by `data-summary`; its text is the JSON string.
    for (field, value) in cells {
        write!(
            w,
            "<td class=\"num\" data-summary=\"{p}.{field}\">{}</td>",
            Esc(value)
        )?;
    }
    writeln!(w, "</tr>")
}

/// "Where": the nodes with the most unexplained money and the orgs with the most at risk.
fn write_where(
    w: &mut dyn Write,
    report: &Report,
    s: &ProgramSummary,
    t: &Text,
    risk: &RiskIndex<'_>,
    names: &HashMap<&str, &str>,
) -> io::Result<()> {
    const TOP: usize = 5;
    let mut unexplained: Vec<&FunnelNode> = report
        .funnel
        .iter()
        .filter(|n| n.program == s.program && !dec(&n.unexplained).is_zero())
        .collect();
    unexplained.sort_by(|a, b| {
        dec(&b.unexplained)
            .cmp(&dec(&a.unexplained))
            .then_with(|| a.org.cmp(&b.org))
    });
    unexplained.truncate(TOP);
    let at_risk = risk.top(&s.program, TOP);

    writeln!(
        w,
        "<h3>{} <span class=\"mono\">{}</span> {}</h3>",
        Esc(t.where_title),
        Esc(&s.program),
        Esc(&s.program_name)
    )?;
    writeln!(
        w,
        "<table class=\"where\">\n<thead><tr><th class=\"num\">#</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th></tr></thead>\n<tbody>",
        Esc(t.top_unexplained),
        Esc(t.unexplained),
        Esc(t.top_at_risk),
        Esc(t.amount_at_risk),
        Esc(t.findings_count)
    )?;
    let rows = unexplained.len().max(at_risk.len());
    if rows == 0 {
        writeln!(
            w,
            "<tr><td colspan=\"6\">{}</td></tr>",
            Esc(t.nothing_unexplained)
        )?;
    }
    for i in 0..rows {
        write!(w, "<tr><td class=\"num\">{}</td>", i + 1)?;
        match unexplained.get(i) {
            Some(n) => write!(
                w,
                "<td class=\"org\"><span class=\"mono\">{}</span> <span class=\"orgname\">{}</span></td><td class=\"num\">{}</td>",
                Esc(&n.org),
                Esc(&n.org_name),
                Esc(&n.unexplained)
            )?,
            None => write!(w, "<td></td><td></td>")?,
        }
        match at_risk.get(i) {
            Some((org, amount, count)) => write!(
                w,
                "<td class=\"org\"><span class=\"mono\">{}</span> <span class=\"orgname\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
                Esc(org),
                Esc(names.get(org).copied().unwrap_or("")),
                amount,
                count
            )?,
            None => write!(w, "<td></td><td></td><td></td>")?,
        }
        writeln!(w, "</tr>")?;
    }
    writeln!(w, "</tbody>\n</table>")
}

fn write_funnel(w: &mut dyn Write, report: &Report, t: &Text) -> io::Result<()> {
    writeln!(w, "<section id=\"funnel\">\n<h2>{}</h2>", Esc(t.funnel))?;
    writeln!(w, "<p class=\"explain\">{}</p>", Esc(t.funnel_explain))?;
    if report.funnel.is_empty() {
        writeln!(w, "<p class=\"none\">{}</p>", Esc(t.no_funnel))?;
    }
    // One table per program: amounts of different programs (and currencies) do not add up.
    let mut programs: Vec<&str> = Vec::new();
    for n in &report.funnel {
        if !programs.contains(&n.program.as_str()) {
            programs.push(&n.program);
        }
    }
    for program in programs {
        let currency = report
            .funnel
            .iter()
            .find(|n| n.program == program)
            .map(|n| n.currency.as_str())
            .unwrap_or("");
        writeln!(
            w,
            "<h3><span class=\"mono\">{}</span> ({})</h3>",
            Esc(program),
            Esc(currency)
        )?;
        writeln!(
            w,
            "<table class=\"funnel\">\n<thead><tr><th>{}</th>",
            Esc(t.org)
        )?;
        for h in [
            t.received,
            t.passed_down,
            t.disbursed,
            t.confirmed,
            t.returned,
            t.held,
            t.unexplained,
            t.subtree_unexplained,
            t.findings_count,
        ] {
            write!(w, "<th class=\"num\">{}</th>", Esc(h))?;
        }
        writeln!(w, "</tr></thead>\n<tbody>")?;
        for n in report.funnel.iter().filter(|n| n.program == program) {
            // Indentation shows the tree; the depth is a number, so the style is safe. Tenths of
            // an em in integers: no float formatting in a byte-stable output.
            let tenths = 4 + 14 * n.depth.min(40);
            write!(
                w,
                "<tr data-org=\"{}\"><td class=\"org\" style=\"padding-left:{}.{}em\">{}<span class=\"mono\">{}</span> <span class=\"orgname\">{}</span></td>",
                Esc(&n.org),
                tenths / 10,
                tenths % 10,
                if n.depth > 0 { "└ " } else { "" },
                Esc(&n.org),
                Esc(&n.org_name)
            )?;
            for v in [
                &n.received,
                &n.passed_down,
                &n.disbursed,
                &n.confirmed,
                &n.returned,
                &n.held,
                &n.unexplained,
                &n.subtree.unexplained,
            ] {
                write!(w, "<td class=\"num\">{}</td>", Esc(v))?;
            }
            writeln!(w, "<td class=\"num\">{}</td></tr>", n.findings)?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }

    writeln!(w, "<h3>{}</h3>", Esc(t.checks))?;
    if report.checks.is_empty() {
        writeln!(w, "<p class=\"none\">{}</p>", Esc(t.no_checks))?;
    } else {
        writeln!(
            w,
            "<table class=\"checks\">\n<thead><tr><th>{}</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
            Esc(t.program),
            Esc(t.check),
            Esc(t.checked),
            Esc(t.result),
            Esc(t.first_failure)
        )?;
        for c in &report.checks {
            let meaning = match c.check.as_str() {
                "node" => t.check_node,
                "tree" => t.check_tree,
                _ => "",
            };
            let (class, verdict) = if c.holds {
                ("", t.holds)
            } else {
                (" class=\"fail\"", t.does_not_hold)
            };
            writeln!(
                w,
                "<tr data-check=\"{}.{}\"><td class=\"mono\">{}</td><td><span class=\"mono\">{}</span> {}</td><td class=\"num\">{}</td><td{class}>{}</td><td class=\"mono\">{}</td></tr>",
                Esc(&c.program),
                Esc(&c.check),
                Esc(&c.program),
                Esc(&c.check),
                Esc(meaning),
                c.checked,
                Esc(verdict),
                EscOpt(&c.first_failure)
            )?;
        }
        writeln!(w, "</tbody>\n</table>")?;
    }
    writeln!(w, "</section>")
}

fn write_findings(w: &mut dyn Write, report: &Report, lang: Lang, t: &Text) -> io::Result<()> {
    writeln!(w, "<section id=\"findings\">\n<h2>{}</h2>", Esc(t.findings))?;
    if report.findings.is_empty() {
        writeln!(
            w,
            "<p class=\"none\" data-findings=\"none\">{}</p>",
            Esc(t.no_findings)
        )?;
        return writeln!(w, "</section>");
    }
    // Counted in one pass; grouping below walks the list once per type present rather than
    // trusting the sort order, so an unsorted list still groups correctly.
    let mut groups = [GroupTotal::default(); FindingType::ALL.len()];
    for f in &report.findings {
        groups[type_index(f.finding_type)].add(f);
    }
    let names = org_names(report);
    for ty in FindingType::ALL {
        let group = groups[type_index(ty)];
        if group.count == 0 {
            continue;
        }
        writeln!(
            w,
            "<section class=\"group\" data-group=\"{}\">",
            ty.as_str()
        )?;
        write!(
            w,
            "<h3>{} <span class=\"mono small\">{}</span> — {} {}",
            Esc(finding_type_label(ty, lang)),
            ty.as_str(),
            Esc(t.findings_count),
            group.count
        )?;
        // A total only makes sense in one currency; programs in several have none.
        if let (Some(currency), false) = (group.currency, group.mixed) {
            write!(
                w,
                ", {} {} {}",
                Esc(t.amount_sum),
                group.amount,
                Esc(currency)
            )?;
        }
        writeln!(w, "</h3>")?;
        writeln!(
            w,
            "<p class=\"explain\">{}</p>",
            Esc(finding_type_explanation(ty, lang))
        )?;
        writeln!(w, "<table class=\"findings\">\n<thead><tr>")?;
        write!(
            w,
            "<th class=\"num\">#</th><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>",
            Esc(t.severity),
            Esc(t.program),
            Esc(t.org),
            Esc(t.amount),
            Esc(t.payment_reference),
            Esc(t.recipient),
            Esc(t.rule),
            Esc(t.detail),
            Esc(t.evidence)
        )?;
        writeln!(w, "</tr></thead>\n<tbody>")?;
        for (i, f) in report
            .findings
            .iter()
            .filter(|f| f.finding_type == ty)
            .enumerate()
        {
            write_finding(w, i + 1, f, lang, t, &names)?;
        }
        writeln!(w, "</tbody>\n</table>\n</section>")?;
    }
    writeln!(w, "</section>")
}

/// Count and total amount of one finding type.
#[derive(Clone, Copy, Default)]
struct GroupTotal<'a> {
    count: usize,
    amount: Decimal,
    currency: Option<&'a str>,
    /// Findings in more than one currency: no total is shown.
    mixed: bool,
}

impl<'a> GroupTotal<'a> {
    fn add(&mut self, f: &'a Finding) {
        self.count += 1;
        self.amount += dec(&f.amount);
        match self.currency {
            None => self.currency = Some(&f.currency),
            Some(c) if c != f.currency => self.mixed = true,
            Some(_) => {}
        }
    }
}

fn write_finding(
    w: &mut dyn Write,
    n: usize,
    f: &Finding,
    lang: Lang,
    t: &Text,
    names: &HashMap<&str, &str>,
) -> io::Result<()> {
    write!(
        w,
        "<tr data-finding=\"{}\" data-severity=\"{}\"><td class=\"num\">{n}</td><td class=\"sev sev-{}\">{}</td>",
        f.finding_type.as_str(),
        f.severity.as_str(),
        f.severity.as_str(),
        Esc(severity_label(f.severity, lang))
    )?;
    write!(w, "<td><span class=\"mono\">{}</span>", Esc(&f.program))?;
    if let Some(p) = &f.period {
        write!(w, "<br>{}", Esc(p))?;
    }
    write!(
        w,
        "</td><td class=\"org\"><span class=\"mono\">{}</span>",
        Esc(&f.org)
    )?;
    if let Some(name) = names.get(f.org.as_str()) {
        write!(w, "<br><span class=\"orgname\">{}</span>", Esc(name))?;
    }
    write!(
        w,
        "</td><td class=\"num\">{} {}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>",
        Esc(&f.amount),
        Esc(&f.currency),
        EscOpt(&f.payment_reference),
        EscOpt(&f.recipient)
    )?;
    write_rule(w, &f.evidence.rule, t)?;
    write!(w, "</td><td>{}</td><td>", Esc(&detail_text(f, lang)))?;
    write_evidence(w, f, t)?;
    writeln!(w, "</td></tr>")
}

/// The finding's one-sentence explanation in `lang`. The JSON keeps the English sentence the
/// engine wrote; a Chinese page says the same from the finding's own figures.
pub fn detail_text(f: &Finding, lang: Lang) -> String {
    if lang == Lang::En {
        return f.detail.clone();
    }
    let rule = &f.evidence.rule;
    let observed = rule.observed.as_deref().unwrap_or("");
    let threshold = rule.threshold.as_deref().unwrap_or("");
    let amount = &f.amount;
    match f.finding_type {
        FindingType::HeldTooLong => {
            format!("该笔拨款仍有 {amount} 元滞留 {observed} 天（允许 {threshold} 天）")
        }
        FindingType::Unconfirmed => {
            format!("发放 {observed} 天后仍无银行确认（允许 {threshold} 天）")
        }
        FindingType::AmountMismatch => {
            format!("银行实际划转金额与账面发放金额相差 {amount} 元")
        }
        FindingType::UnrecordedOutflow => {
            format!("资金专户支出 {amount} 元，账本中没有对应记录")
        }
        FindingType::DuplicatePayment => {
            format!("同一对象在同一项目、同一期间被发放 {observed} 次")
        }
        FindingType::SharedAccount => {
            format!("{observed} 名发放对象使用同一银行账户（允许 {threshold} 名）")
        }
        FindingType::GhostRecipient => match rule.name.as_str() {
            "ghost_recipient.deceased" => format!("发放时该对象已登记死亡（自 {observed} 起）"),
            "ghost_recipient.suspended" => format!("发放时该对象已暂停享受（自 {observed} 起）"),
            _ => "发放对象不在登记册中".into(),
        },
        FindingType::AccountMismatch => "银行入账账户与对象登记的账户不一致".into(),
        FindingType::ReturnedNotRecredited => {
            format!("银行退汇 {amount} 元，账本未记录退回")
        }
        FindingType::StatementGap => {
            let accounts = f.evidence.statements.first().map(|s| s.account.as_str());
            let account = accounts.unwrap_or("");
            match rule.name.as_str() {
                "statement_gap.uncovered_days" => format!(
                    "账户 {account} 在 {observed} 期间没有对账单覆盖，前后余额相差 {amount} 元"
                ),
                _ => format!("账户 {account} 的期初余额与上期期末余额不符，相差 {amount} 元"),
            }
        }
        FindingType::EntitlementMismatch => {
            format!("发放金额与应享标准相差 {amount} 元")
        }
        FindingType::Integrity => format!("账本记录 {observed} 校验失败：{}", f.detail),
        FindingType::Complaint => match rule.name.as_str() {
            "complaint.wrong_amount" => format!("群众反映到账金额不符，差额 {amount} 元"),
            _ => "群众反映未收到该笔款项".into(),
        },
    }
}

fn write_rule(w: &mut dyn Write, r: &Rule, t: &Text) -> io::Result<()> {
    write!(w, "<span class=\"mono\">{}</span>", Esc(&r.name))?;
    if let Some(p) = &r.parameter {
        let label = param_label(p, t);
        write!(
            w,
            "<br>{} <span class=\"mono small\">{}</span>",
            Esc(label),
            Esc(p)
        )?;
    }
    if let Some(th) = &r.threshold {
        write!(w, "<br>{}: {}", Esc(t.threshold), Esc(th))?;
    }
    if let Some(o) = &r.observed {
        write!(w, "<br>{}: <strong>{}</strong>", Esc(t.observed), Esc(o))?;
    }
    Ok(())
}

fn param_label(p: &str, t: &Text) -> &'static str {
    match p {
        "hold_days_max" => t.p_hold_days_max,
        "unconfirmed_days_max" => t.p_unconfirmed_days_max,
        "amount_tolerance" => t.p_amount_tolerance,
        "recipients_per_account_max" => t.p_recipients_per_account_max,
        _ => "",
    }
}

/// The localized name of a ledger entry kind, or "" when it would only repeat the code.
fn entry_kind_label(kind: &str, t: &Text) -> &'static str {
    t.entry_kinds
        .iter()
        .find(|(k, label)| *k == kind && *label != kind)
        .map(|(_, label)| *label)
        .unwrap_or("")
}

fn write_evidence(w: &mut dyn Write, f: &Finding, t: &Text) -> io::Result<()> {
    let e = &f.evidence;
    if e.ledger.is_empty()
        && e.bank_rows.is_empty()
        && e.complaints.is_empty()
        && e.statements.is_empty()
    {
        return write!(w, "—");
    }
    write!(w, "<ul class=\"ev\">")?;
    for l in &e.ledger {
        write!(
            w,
            "<li data-seq=\"{}\"><span class=\"evk\">{}</span> #{} {} <span class=\"mono\">{}</span> {} {} {}</li>",
            l.seq,
            Esc(t.ev_ledger),
            l.seq,
            Esc(entry_kind_label(&l.kind, t)),
            Esc(&l.kind),
            Esc(&l.reference),
            Esc(&l.amount),
            Esc(&l.value_date)
        )?;
    }
    for b in &e.bank_rows {
        write!(
            w,
            "<li><span class=\"evk\">{}</span> <span class=\"mono\">{}</span> {} {} {}",
            Esc(t.ev_bank),
            Esc(&b.file_name),
            Esc(&b.location),
            Esc(&b.booking_date),
            Esc(&b.amount)
        )?;
        let extras = [
            (t.counterparty, &b.counterparty_name),
            (t.account, &b.counterparty_account),
            (t.reference, &b.reference),
        ];
        for (label, value) in extras {
            if let Some(v) = value {
                write!(w, "; {} {}", Esc(label), Esc(v))?;
            }
        }
        write!(
            w,
            " <span class=\"small\">({} {})</span></li>",
            Esc(t.statement),
            b.statement_id
        )?;
    }
    for s in &e.statements {
        write!(
            w,
            "<li><span class=\"evk\">{}</span> <span class=\"mono\">{}</span> {} {} {}..{}; {} {} {} {} <span class=\"small\">({} {})</span></li>",
            Esc(t.statement),
            Esc(&s.file_name),
            Esc(&s.location),
            Esc(&s.account),
            Esc(&s.from_date),
            Esc(&s.to_date),
            Esc(t.opening),
            Esc(s.opening_balance.as_deref().unwrap_or("—")),
            Esc(t.closing),
            Esc(s.closing_balance.as_deref().unwrap_or("—")),
            Esc(t.statement),
            s.statement_id
        )?;
    }
    for c in &e.complaints {
        let kind = match c.kind.as_str() {
            "not_received" => t.c_not_received,
            "wrong_amount" => t.c_wrong_amount,
            _ => "",
        };
        write!(
            w,
            "<li><span class=\"evk\">{}</span> #{} {} <span class=\"mono\">{}</span> {}",
            Esc(t.ev_complaint),
            c.complaint_id,
            Esc(kind),
            Esc(&c.kind),
            Esc(&c.filed_on)
        )?;
        if let Some(a) = &c.amount_received {
            write!(w, "; {} {}", Esc(t.received_word), Esc(a))?;
        }
        write!(w, "</li>")?;
    }
    write!(w, "</ul>")
}

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

/// Every piece of text a rendering uses, in one language; codes stay as they are.
struct Text {
    title: &'static str,
    all_programs: &'static str,
    all_periods: &'static str,
    whole_tree: &'static str,
    program: &'static str,
    period: &'static str,
    org_scope: &'static str,
    as_of: &'static str,
    p_hold_days_max: &'static str,
    p_unconfirmed_days_max: &'static str,
    p_amount_tolerance: &'static str,
    p_recipients_per_account_max: &'static str,
    ledger_seq: &'static str,
    head_hash: &'static str,
    bank_rows: &'static str,
    complaints_filed: &'static str,
    report_version: &'static str,
    recompute_note: &'static str,
    summary: &'static str,
    no_programs: &'static str,
    currency: &'static str,
    received: &'static str,
    passed_down: &'static str,
    disbursed: &'static str,
    confirmed: &'static str,
    returned: &'static str,
    held: &'static str,
    reached_recipients: &'static str,
    unexplained: &'static str,
    subtree_unexplained: &'static str,
    amount_at_risk: &'static str,
    findings_count: &'static str,
    where_title: &'static str,
    top_unexplained: &'static str,
    top_at_risk: &'static str,
    nothing_unexplained: &'static str,
    org: &'static str,
    funnel: &'static str,
    funnel_explain: &'static str,
    no_funnel: &'static str,
    checks: &'static str,
    no_checks: &'static str,
    check: &'static str,
    checked: &'static str,
    result: &'static str,
    first_failure: &'static str,
    check_node: &'static str,
    check_tree: &'static str,
    holds: &'static str,
    does_not_hold: &'static str,
    findings: &'static str,
    no_findings: &'static str,
    amount_sum: &'static str,
    severity: &'static str,
    amount: &'static str,
    payment_reference: &'static str,
    recipient: &'static str,
    rule: &'static str,
    threshold: &'static str,
    observed: &'static str,
    detail: &'static str,
    evidence: &'static str,
    ev_ledger: &'static str,
    ev_bank: &'static str,
    ev_complaint: &'static str,
    statement: &'static str,
    opening: &'static str,
    closing: &'static str,
    counterparty: &'static str,
    account: &'static str,
    reference: &'static str,
    received_word: &'static str,
    c_not_received: &'static str,
    c_wrong_amount: &'static str,
    sev_high: &'static str,
    sev_medium: &'static str,
    sev_low: &'static str,
    /// Label and one-sentence explanation, in [`FindingType::ALL`] order.
    types: [(&'static str, &'static str); FindingType::ALL.len()],
    entry_kinds: [(&'static str, &'static str); 6],
    csv_headers: [&'static str; 18],
}

static ZH: Text = Text {
    title: "资金核查报告",
    all_programs: "全部项目",
    all_periods: "全部期间",
    whole_tree: "全部机构",
    program: "项目",
    period: "期间",
    org_scope: "机构范围",
    as_of: "核查截止日",
    p_hold_days_max: "允许滞留天数",
    p_unconfirmed_days_max: "允许未确认天数",
    p_amount_tolerance: "金额容差",
    p_recipients_per_account_max: "单一账户最多对象数",
    ledger_seq: "账本序号（最后一条）",
    head_hash: "账本链头哈希",
    bank_rows: "银行流水行数",
    complaints_filed: "群众投诉数",
    report_version: "报告格式版本",
    recompute_note: "本报告由上述账本状态和参数计算得出：任何持有账本副本的人，用相同参数对同一序号和链头哈希重新核查，都应得到完全相同的结果。",
    summary: "摘要",
    no_programs: "范围内没有项目。",
    currency: "币种",
    received: "收到资金",
    passed_down: "下拨",
    disbursed: "发放",
    confirmed: "银行确认",
    returned: "退汇",
    held: "结存",
    reached_recipients: "到达群众",
    unexplained: "无法解释",
    subtree_unexplained: "含下级无法解释",
    amount_at_risk: "风险金额",
    findings_count: "问题数",
    where_title: "问题集中在哪里：",
    top_unexplained: "无法解释金额最多",
    top_at_risk: "风险金额最多",
    nothing_unexplained: "没有无法解释的资金，也没有风险金额。",
    org: "机构",
    funnel: "资金流向（逐级）",
    funnel_explain: "每个机构一行，按层级缩进：收到 + 退汇 = 下拨 + 发放 + 结存；无法解释 = 逾期未确认、确认金额差额、无账本记录的银行支出及对账单之间的余额差。",
    no_funnel: "范围内没有机构。",
    checks: "平衡校验",
    no_checks: "没有校验结果。",
    check: "校验",
    checked: "校验数",
    result: "结果",
    first_failure: "首个不平衡处",
    check_node: "每个节点：收到 + 退汇 = 下拨 + 发放 + 结存",
    check_tree: "整棵树：根节点收到 = 发放 − 退汇 + 结存",
    holds: "成立",
    does_not_hold: "不成立",
    findings: "发现的问题",
    no_findings: "未发现问题：在上述范围和参数下，所有规则均未触发。",
    amount_sum: "金额合计",
    severity: "严重程度",
    amount: "金额",
    payment_reference: "支付编号",
    recipient: "对象（化名）",
    rule: "规则",
    threshold: "阈值",
    observed: "实际值",
    detail: "说明",
    evidence: "证据",
    ev_ledger: "账本",
    ev_bank: "银行流水",
    ev_complaint: "投诉",
    statement: "对账单",
    opening: "期初余额",
    closing: "期末余额",
    counterparty: "对方户名",
    account: "账号",
    reference: "附言",
    received_word: "实收",
    c_not_received: "未收到",
    c_wrong_amount: "金额不对",
    sev_high: "高",
    sev_medium: "中",
    sev_low: "低",
    types: [
        ("数据完整性", "哈希、签名或链接校验未通过：账本数据可能被篡改。"),
        ("账外支出", "资金从项目银行账户流出，但账本上没有对应的记录。"),
        ("退汇未入账", "银行已退回的款项没有在账本上重新入账。"),
        ("对账单不连续", "同一账户前后两期对账单接不上：有日期没有对账单覆盖，或期初余额与上期期末余额不符，资金可能在这期间流出。"),
        ("金额不符", "银行实际支付的金额与账本记录的发放金额不一致（可能被截留）。"),
        ("账户不符", "银行入账的账户或户名与对象登记的账户不一致。"),
        ("虚假或不应享受对象", "发放对象不存在、已死亡、已停发，或身份证号校验不通过。"),
        ("重复发放", "同一对象在同一项目、同一期间被发放了不止一次。"),
        ("多人共用账户", "多名对象的款项打入了同一个银行账户。"),
        ("标准不符", "发放金额与该对象应享受的项目标准不符。"),
        ("未获银行确认", "发放后超过允许天数仍未获得银行确认。"),
        ("资金滞留", "机构收到资金后超过允许天数仍未下拨或发放。"),
        ("群众投诉", "群众反映没有收到款项或金额不对。"),
    ],
    entry_kinds: [
        ("budget", "预算"),
        ("allocation", "下拨"),
        ("disbursement", "发放"),
        ("confirmation", "银行确认"),
        ("return", "退汇"),
        ("reversal", "冲正"),
    ],
    csv_headers: [
        "类型",
        "类型名称",
        "严重程度",
        "项目",
        "期间",
        "机构",
        "金额",
        "币种",
        "支付编号",
        "对象（化名）",
        "规则",
        "参数",
        "阈值",
        "实际值",
        "说明",
        "账本证据",
        "银行流水证据",
        "投诉",
    ],
};

static EN: Text = Text {
    title: "Reconciliation report",
    all_programs: "all programs",
    all_periods: "all periods",
    whole_tree: "whole tree",
    program: "Program",
    period: "Period",
    org_scope: "Org scope",
    as_of: "As of",
    p_hold_days_max: "Max days an org may hold money",
    p_unconfirmed_days_max: "Max days a payment may wait for the bank",
    p_amount_tolerance: "Amount tolerance",
    p_recipients_per_account_max: "Max recipients per bank account",
    ledger_seq: "Ledger sequence (last entry)",
    head_hash: "Ledger head hash",
    bank_rows: "Bank statement rows",
    complaints_filed: "Complaints filed",
    report_version: "Report format version",
    recompute_note: "This report was computed from the ledger state and parameters above: anyone holding a copy of the ledger can run the same parameters against the same sequence number and head hash and must get exactly the same result.",
    summary: "Summary",
    no_programs: "No program in scope.",
    currency: "Currency",
    received: "Received",
    passed_down: "Passed down",
    disbursed: "Disbursed",
    confirmed: "Confirmed by bank",
    returned: "Returned",
    held: "Held",
    reached_recipients: "Reached recipients",
    unexplained: "Unexplained",
    subtree_unexplained: "Unexplained incl. below",
    amount_at_risk: "Amount at risk",
    findings_count: "Findings",
    where_title: "Where:",
    top_unexplained: "Most unexplained",
    top_at_risk: "Most at risk",
    nothing_unexplained: "No unexplained money and nothing at risk.",
    org: "Org",
    funnel: "Funnel (the tree)",
    funnel_explain: "One row per org, indented by depth: received + returned = passed down + disbursed + held; unexplained = overdue unconfirmed payments, confirmed-amount differences, bank outflows with no ledger entry and balance differences between statements.",
    no_funnel: "No org in scope.",
    checks: "Funnel checks",
    no_checks: "No checks.",
    check: "Check",
    checked: "Checked",
    result: "Result",
    first_failure: "First failure",
    check_node: "each node: received + returned = passed down + disbursed + held",
    check_tree: "whole tree: root received = disbursed − returned + held",
    holds: "holds",
    does_not_hold: "DOES NOT HOLD",
    findings: "Findings",
    no_findings: "No findings: no rule fired for this scope and these parameters.",
    amount_sum: "total",
    severity: "Severity",
    amount: "Amount",
    payment_reference: "Payment reference",
    recipient: "Recipient (pseudonym)",
    rule: "Rule",
    threshold: "threshold",
    observed: "observed",
    detail: "Detail",
    evidence: "Evidence",
    ev_ledger: "ledger",
    ev_bank: "bank",
    ev_complaint: "complaint",
    statement: "statement",
    opening: "opening",
    closing: "closing",
    counterparty: "counterparty",
    account: "account",
    reference: "reference",
    received_word: "received",
    c_not_received: "not received",
    c_wrong_amount: "wrong amount",
    sev_high: "High",
    sev_medium: "Medium",
    sev_low: "Low",
    types: [
        ("Integrity", "A hash, signature or chain link does not verify: the ledger data may have been altered."),
        ("Unrecorded outflow", "Money left a program bank account with no ledger entry behind it."),
        ("Returned, not re-credited", "The bank returned a payment and the money did not come back on the ledger."),
        ("Statement gap", "Consecutive statements of one account do not join: days no statement covers, or an opening balance that is not the previous closing balance; money can leave unseen in between."),
        ("Amount mismatch", "The bank paid less (or more) than the ledger says was disbursed, a sign of skimming."),
        ("Account mismatch", "The bank credited an account or name other than the recipient's registered one."),
        ("Ghost recipient", "The recipient is unknown, deceased, suspended, or has an invalid ID number checksum."),
        ("Duplicate payment", "The same recipient was paid more than once for the same program and period."),
        ("Shared account", "Many recipients were paid into one bank account."),
        ("Entitlement mismatch", "The amount differs from the program's standard for that recipient."),
        ("Unconfirmed", "A payment has had no bank confirmation within the allowed days."),
        ("Held too long", "An org received money and has not passed it on within the allowed days."),
        ("Citizen complaint", "A recipient reported non-receipt or a wrong amount."),
    ],
    entry_kinds: [
        ("budget", "budget"),
        ("allocation", "allocation"),
        ("disbursement", "disbursement"),
        ("confirmation", "confirmation"),
        ("return", "return"),
        ("reversal", "reversal"),
    ],
    csv_headers: [
        "type",
        "type label",
        "severity",
        "program",
        "period",
        "org",
        "amount",
        "currency",
        "payment_reference",
        "recipient",
        "rule",
        "parameter",
        "threshold",
        "observed",
        "detail",
        "ledger evidence",
        "bank evidence",
        "complaints",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::report::{
        Evidence, FunnelCheck, LedgerState, Params, SubtreeTotals, REPORT_VERSION,
    };

    const EVIL: &str = "<script>alert(1)</script>";

    fn node(
        org: &str,
        name: &str,
        parent: Option<&str>,
        depth: u32,
        unexplained: &str,
    ) -> FunnelNode {
        FunnelNode {
            program: "DIBAO".into(),
            currency: "CNY".into(),
            org: org.into(),
            org_name: name.into(),
            parent: parent.map(Into::into),
            depth,
            received: "10000.00".into(),
            passed_down: "0.00".into(),
            disbursed: "1560.00".into(),
            confirmed: "1480.00".into(),
            returned: "0.00".into(),
            held: "8440.00".into(),
            unexplained: unexplained.into(),
            subtree: SubtreeTotals {
                disbursed: "1560.00".into(),
                confirmed: "1480.00".into(),
                returned: "0.00".into(),
                held: "8440.00".into(),
                unexplained: unexplained.into(),
            },
            findings: 1,
        }
    }

    fn finding(t: FindingType, org: &str, amount: &str, detail: &str) -> Finding {
        Finding {
            finding_type: t,
            severity: Severity::High,
            program: "DIBAO".into(),
            period: Some("2026-11".into()),
            org: org.into(),
            amount: amount.into(),
            currency: "CNY".into(),
            payment_reference: Some("DB-1".into()),
            recipient: Some("R-7f3a".into()),
            detail: detail.into(),
            evidence: Evidence {
                rule: Rule {
                    name: t.as_str().into(),
                    parameter: None,
                    threshold: None,
                    observed: None,
                },
                ledger: vec![],
                bank_rows: vec![],
                complaints: vec![],
                statements: vec![],
            },
        }
    }

    /// A small report: one program, a three-level tree (one org with a hostile name), and
    /// findings of four types deliberately out of order.
    fn sample() -> Report {
        let mut mismatch = finding(
            FindingType::AmountMismatch,
            "TOWN",
            "80.00",
            "银行实际划转金额与账面发放金额相差 80.00 元",
        );
        mismatch.evidence.rule = Rule {
            name: "amount_mismatch".into(),
            parameter: Some("amount_tolerance".into()),
            threshold: Some("0.00".into()),
            observed: Some("80.00".into()),
        };
        mismatch.evidence.ledger = vec![
            LedgerEvidence {
                seq: 12,
                kind: "disbursement".into(),
                reference: "DB-1".into(),
                amount: "780.00".into(),
                value_date: "2026-11-10".into(),
            },
            LedgerEvidence {
                seq: 40,
                kind: "confirmation".into(),
                reference: "DB-1".into(),
                amount: "700.00".into(),
                value_date: "2026-11-11".into(),
            },
        ];
        mismatch.evidence.bank_rows = vec![BankRowEvidence {
            statement_id: 3,
            file_name: "工行-2026-11.csv".into(),
            location: "line 7".into(),
            booking_date: "2026-11-11".into(),
            amount: "-700.00".into(),
            counterparty_name: Some("张三".into()),
            counterparty_account: Some("6228480000000000007".into()),
            reference: Some("DB-1".into()),
        }];
        let mut held = finding(FindingType::HeldTooLong, EVIL, "8440.00", "held 45 days");
        held.severity = Severity::Medium;
        held.payment_reference = None;
        held.recipient = None;
        held.evidence.rule = Rule {
            name: "held_too_long".into(),
            parameter: Some("hold_days_max".into()),
            threshold: Some("30".into()),
            observed: Some("45".into()),
        };
        let mut complaint = finding(FindingType::Complaint, "TOWN", "780.00", "not received");
        complaint.severity = Severity::Low;
        complaint.evidence.complaints = vec![
            ComplaintEvidence {
                complaint_id: 3,
                kind: "not_received".into(),
                amount_received: None,
                filed_on: "2026-11-20".into(),
            },
            ComplaintEvidence {
                complaint_id: 4,
                kind: "wrong_amount".into(),
                amount_received: Some("700.00".into()),
                filed_on: "2026-11-21".into(),
            },
        ];
        let integrity = finding(
            FindingType::Integrity,
            "PROV",
            "0.00",
            "chain breaks at #41",
        );
        Report {
            report_version: REPORT_VERSION,
            ledger_state: LedgerState {
                seq: 41,
                head_hash: "ab".repeat(32),
                bank_rows: 9,
                complaints: 2,
            },
            params: Params {
                program: Some("DIBAO".into()),
                period: Some("2026-11".into()),
                org: None,
                as_of: "2026-12-01".into(),
                hold_days_max: 30,
                unconfirmed_days_max: 10,
                amount_tolerance: "0.00".into(),
                recipients_per_account_max: 3,
            },
            summary: vec![ProgramSummary {
                program: "DIBAO".into(),
                program_name: "城乡低保".into(),
                currency: "CNY".into(),
                received: "100000.00".into(),
                disbursed: "1560.00".into(),
                confirmed: "1480.00".into(),
                returned: "0.00".into(),
                held: "98440.00".into(),
                reached_recipients: "1480.00".into(),
                unexplained: "80.00".into(),
                findings: 4,
                amount_at_risk: "9300.00".into(),
            }],
            funnel: vec![
                node("PROV", "省财政厅", None, 0, "0.00"),
                node(EVIL, EVIL, Some("PROV"), 1, "0.00"),
                node("TOWN", "城关镇", Some(EVIL), 2, "80.00"),
            ],
            checks: vec![
                FunnelCheck {
                    program: "DIBAO".into(),
                    check: "node".into(),
                    checked: 3,
                    holds: true,
                    first_failure: None,
                },
                FunnelCheck {
                    program: "DIBAO".into(),
                    check: "tree".into(),
                    checked: 1,
                    holds: false,
                    first_failure: Some("TOWN".into()),
                },
            ],
            findings: vec![complaint, held, mismatch, integrity],
        }
    }

    fn csv_of(r: &Report, lang: Lang) -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(r, lang, &mut out).unwrap();
        out
    }

    fn html_of(r: &Report, lang: Lang) -> String {
        let mut out = Vec::new();
        write_html(r, lang, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lang_parses_tags_case_insensitively() {
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("ZH-cn"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("zh"), Some(Lang::ZhCn));
        assert_eq!(Lang::parse("EN"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::default(), Lang::ZhCn);
        assert_eq!(Lang::ZhCn.as_str(), "zh-CN");
        assert_eq!(Lang::En.as_str(), "en");
    }

    #[test]
    fn every_type_and_severity_has_distinct_labels_in_both_languages() {
        for lang in [Lang::ZhCn, Lang::En] {
            let labels: std::collections::HashSet<_> = FindingType::ALL
                .iter()
                .map(|t| finding_type_label(*t, lang))
                .collect();
            assert_eq!(labels.len(), FindingType::ALL.len(), "{lang}");
            for t in FindingType::ALL {
                assert!(!finding_type_explanation(t, lang).is_empty());
            }
            for s in [Severity::High, Severity::Medium, Severity::Low] {
                assert!(!severity_label(s, lang).is_empty());
            }
        }
        assert_eq!(
            finding_type_label(FindingType::HeldTooLong, Lang::ZhCn),
            "资金滞留"
        );
        assert_eq!(
            finding_type_label(FindingType::HeldTooLong, Lang::En),
            "Held too long"
        );
        assert_eq!(
            finding_type_label(FindingType::GhostRecipient, Lang::ZhCn),
            "虚假或不应享受对象"
        );
        assert_eq!(
            finding_type_label(FindingType::Complaint, Lang::ZhCn),
            "群众投诉"
        );
    }

    #[test]
    fn every_type_has_a_chinese_sentence_and_english_keeps_the_engines() {
        for t in FindingType::ALL {
            let f = finding(t, "TOWN", "12.00", "an English sentence");
            assert_eq!(detail_text(&f, Lang::En), "an English sentence");
            let zh = detail_text(&f, Lang::ZhCn);
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{t:?}: {zh}"
            );
            assert_ne!(zh, f.detail);
        }
    }

    #[test]
    fn csv_starts_with_bom_and_parses_back_row_for_row() {
        let r = sample();
        let bytes = csv_of(&r, Lang::ZhCn);
        assert!(bytes.starts_with(UTF8_BOM));
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        // One line ending throughout: every \n is part of a \r\n.
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
        assert_eq!(text.matches("\r\n").count(), 1 + r.findings.len());

        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap(), ZH.csv_headers.as_slice());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), r.findings.len());
        for (row, f) in rows.iter().zip(&r.findings) {
            assert_eq!(row.len(), 18);
            assert_eq!(&row[0], f.finding_type.as_str());
            assert_eq!(&row[1], finding_type_label(f.finding_type, Lang::ZhCn));
            assert_eq!(&row[6], f.amount);
            assert_eq!(&row[14], detail_text(f, Lang::ZhCn));
        }
        // The amount mismatch (third in the list), all columns.
        let m = &rows[2];
        let expected = [
            "amount_mismatch",
            "金额不符",
            "high",
            "DIBAO",
            "2026-11",
            "TOWN",
            "80.00",
            "CNY",
            "DB-1",
            "R-7f3a",
            "amount_mismatch",
            "amount_tolerance",
            "0.00",
            "80.00",
            "银行实际划转金额与账面发放金额相差 80.00 元",
            "#12 disbursement DB-1 780.00 2026-11-10; #40 confirmation DB-1 700.00 2026-11-11",
            "工行-2026-11.csv line 7 2026-11-11 -700.00",
            "",
        ];
        assert_eq!(m.iter().collect::<Vec<_>>(), expected);
        assert_eq!(
            &rows[0][17],
            "#3 not_received 2026-11-20; #4 wrong_amount 2026-11-21 实收 700.00"
        );
        // Missing optional values are empty cells.
        assert_eq!(&rows[1][8], "");
        assert_eq!(&rows[1][5], EVIL);
    }

    #[test]
    fn csv_headers_follow_the_language_and_formulas_are_defused() {
        let mut r = sample();
        r.findings[0].org = "=HYPERLINK(\"x\")".into();
        r.findings[0].amount = "-5.00".into();
        let bytes = csv_of(&r, Lang::En);
        let mut reader = csv::Reader::from_reader(&bytes[3..]);
        assert_eq!(reader.headers().unwrap(), EN.csv_headers.as_slice());
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[1], "Citizen complaint");
        assert_eq!(&first[5], "'=HYPERLINK(\"x\")");
        assert_eq!(&first[6], "-5.00", "a signed number stays a number");
    }

    #[test]
    fn csv_of_no_findings_is_the_header_only() {
        let mut r = sample();
        r.findings.clear();
        let bytes = csv_of(&r, Lang::ZhCn);
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert_eq!(text, format!("{}\r\n", ZH.csv_headers.join(",")));
    }

    #[test]
    fn html_escapes_every_dynamic_string() {
        let html = html_of(&sample(), Lang::En);
        assert!(!html.contains("<script"), "raw markup leaked");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("data-org=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert_eq!(
            Esc("a&b<c>d\"e'f").to_string(),
            "a&amp;b&lt;c&gt;d&quot;e&#39;f"
        );
        assert_eq!(Esc("城关镇").to_string(), "城关镇");
    }

    #[test]
    fn html_fetches_nothing() {
        for lang in [Lang::ZhCn, Lang::En] {
            let html = html_of(&sample(), lang).to_ascii_lowercase();
            for banned in [
                "<script", "http://", "https://", "src=", "href=", "<link", "@import", "url(",
                "<img", "<iframe", "<object",
            ] {
                assert!(!html.contains(banned), "{lang}: found {banned}");
            }
            assert!(html.contains("@media print"));
            assert!(html.contains("content-security-policy"));
        }
    }

    #[test]
    fn html_speaks_the_chosen_language() {
        let zh = html_of(&sample(), Lang::ZhCn);
        assert!(zh.contains("<html lang=\"zh-CN\">"));
        for label in [
            "资金核查报告",
            "资金滞留",
            "金额不符",
            "群众投诉",
            "数据完整性",
            "到达群众",
            "高",
            "不成立",
        ] {
            assert!(zh.contains(label), "zh lacks {label}");
        }
        assert!(!zh.contains("Held too long"));
        let en = html_of(&sample(), Lang::En);
        assert!(en.contains("<html lang=\"en\">"));
        for label in [
            "Reconciliation report",
            "Held too long",
            "Amount mismatch",
            "Citizen complaint",
            "Integrity",
            "Reached recipients",
            "High",
            "DOES NOT HOLD",
        ] {
            assert!(en.contains(label), "en lacks {label}");
        }
        assert!(!en.contains("资金滞留"));
    }

    #[test]
    fn html_names_the_ledger_state_and_parameters() {
        let html = html_of(&sample(), Lang::En);
        assert!(html.contains(&"ab".repeat(32)));
        assert!(html.contains("<dd>41</dd>"));
        assert!(html.contains("<dd>2026-12-01</dd>"));
        assert!(html.contains("hold_days_max"));
    }

    #[test]
    fn html_summary_figures_are_machine_findable() {
        let r = sample();
        let html = html_of(&r, Lang::ZhCn);
        let s = &r.summary[0];
        for (field, value) in [
            ("received", s.received.clone()),
            ("reached_recipients", s.reached_recipients.clone()),
            ("unexplained", s.unexplained.clone()),
            ("amount_at_risk", s.amount_at_risk.clone()),
            ("findings", s.findings.to_string()),
        ] {
            let needle = format!("data-summary=\"DIBAO.{field}\">{value}<");
            assert!(html.contains(&needle), "missing {needle}");
        }
        // Summary before the tree, the tree before the findings.
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("id=\"summary\"") < at("id=\"funnel\""));
        assert!(at("id=\"funnel\"") < at("id=\"findings\""));
        // "Where": TOWN has all the unexplained money; the hostile org has the most at risk.
        let summary = &html[at("id=\"summary\"")..at("id=\"funnel\"")];
        assert!(summary.contains("TOWN"));
        assert!(summary.contains("8440.00"));
        let risk_col = &summary[summary.find("class=\"where\"").unwrap()..];
        let evil_risk = risk_col.find("8440.00").unwrap();
        let town_risk = risk_col.find("860.00").unwrap();
        assert!(evil_risk < town_risk, "largest amount at risk first");
        assert!(
            !summary.contains("PROV"),
            "nothing at risk or unexplained at PROV"
        );
    }

    #[test]
    fn html_funnel_has_a_row_per_node_indented_by_depth() {
        let html = html_of(&sample(), Lang::En);
        assert_eq!(html.matches("<tr data-org=").count(), 3);
        let row = |org: &str| {
            let start = html.find(&format!("<tr data-org=\"{org}\"")).unwrap();
            &html[start..start + html[start..].find("</tr>").unwrap()]
        };
        assert!(row("PROV").contains("padding-left:0.4em"));
        assert!(row("TOWN").contains("padding-left:3.2em"));
        assert!(row("TOWN").contains(">80.00<"));
        assert!(html.contains("data-check=\"DIBAO.tree\""));
    }

    #[test]
    fn html_groups_findings_by_type_in_report_order() {
        let html = html_of(&sample(), Lang::En);
        let order: Vec<usize> = ["integrity", "amount_mismatch", "held_too_long", "complaint"]
            .iter()
            .map(|t| html.find(&format!("data-group=\"{t}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(html.matches("data-group=").count(), 4);
        assert_eq!(html.matches("<tr data-finding=").count(), 4);
        // Each finding sits in its own group.
        let group = |t: &str| {
            let start = html.find(&format!("data-group=\"{t}\"")).unwrap();
            &html[start..start + html[start..].find("</section>").unwrap()]
        };
        assert!(group("amount_mismatch").contains("data-finding=\"amount_mismatch\""));
        assert!(!group("amount_mismatch").contains("data-finding=\"complaint\""));
        // Evidence is spelled out: ledger seqs, the bank file and line, the complaints.
        let m = group("amount_mismatch");
        for needle in [
            "#12",
            "#40",
            "工行-2026-11.csv",
            "line 7",
            "-700.00",
            "amount_tolerance",
            "80.00",
        ] {
            assert!(m.contains(needle), "{needle}");
        }
        let c = group("complaint");
        assert!(c.contains("#3") && c.contains("not received") && c.contains("700.00"));
    }

    #[test]
    fn html_says_so_when_there_are_no_findings() {
        let mut r = sample();
        r.findings.clear();
        let zh = html_of(&r, Lang::ZhCn);
        assert!(zh.contains("data-findings=\"none\""));
        assert!(zh.contains("未发现问题"));
        assert!(!zh.contains("data-group="));
        assert!(html_of(&r, Lang::En).contains("No findings"));
    }

    #[test]
    fn thousands_of_findings_render_row_for_row() {
        let mut r = sample();
        let template = r.findings[2].clone();
        r.findings = (0..5000)
            .map(|i| {
                let mut f = template.clone();
                f.finding_type = FindingType::ALL[i % FindingType::ALL.len()];
                f.payment_reference = Some(format!("DB-{i}"));
                f
            })
            .collect();
        let html = html_of(&r, Lang::ZhCn);
        assert_eq!(html.matches("<tr data-finding=").count(), 5000);
        assert_eq!(html.matches("data-group=").count(), FindingType::ALL.len());
        let bytes = csv_of(&r, Lang::ZhCn);
        assert_eq!(
            csv::Reader::from_reader(&bytes[3..]).records().count(),
            5000
        );
    }

    #[test]
    fn group_totals_are_per_currency() {
        let mut r = sample();
        let html = html_of(&r, Lang::En);
        assert!(html.contains("total 80.00 CNY"));
        let mut other = r.findings[2].clone();
        other.currency = "USD".into();
        r.findings.push(other);
        let html = html_of(&r, Lang::En);
        assert!(!html.contains("total 160.00"), "no sum across currencies");
    }

    #[test]
    fn rendering_is_deterministic() {
        let r = sample();
        assert_eq!(html_of(&r, Lang::ZhCn), html_of(&r, Lang::ZhCn));
        assert_eq!(csv_of(&r, Lang::En), csv_of(&r, Lang::En));
    }
}
