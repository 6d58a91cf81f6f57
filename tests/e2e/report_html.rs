//! The printable HTML reconciliation report, opened in a real headless browser: what the
//! browser shows must be the JSON report's figures, every finding type present must show its
//! group, hostile org names must stay text, and the page must print.

use fundtrail::reconcile::render::{finding_type_label, write_html, Lang};
use fundtrail::reconcile::report::Report;
use fundtrail_e2e::browser;
use serde_json::{json, Value};
use std::path::Path;

const EVIL: &str = "<script>alert(1)</script>";

/// A report as the JSON API hands it out: two programs, a tree with a hostile org name, and
/// findings of several types.
fn report_json() -> Value {
    let finding = |ty: &str, program: &str, org: &str, amount: &str| {
        json!({
            "type": ty, "severity": "high", "program": program, "period": "2026-11", "org": org,
            "amount": amount, "currency": "CNY", "payment_reference": "DB-1", "recipient": "R-7f3a",
            "detail": format!("{ty} at {org}: 银行实付与账本不符"),
            "evidence": {
                "rule": {"name": ty, "parameter": "amount_tolerance", "threshold": "0.00", "observed": amount},
                "ledger": [{"seq": 12, "kind": "disbursement", "reference": "DB-1", "amount": "780.00", "value_date": "2026-11-10"}],
                "bank_rows": [{"statement_id": 3, "file_name": "工行-2026-11.csv", "location": "line 7", "booking_date": "2026-11-11",
                               "amount": "-700.00", "counterparty_name": "张三", "counterparty_account": null, "reference": "DB-1"}],
                "complaints": [{"complaint_id": 3, "kind": "not_received", "amount_received": null, "filed_on": "2026-11-20"}]
            }
        })
    };
    let node = |program: &str,
                org: &str,
                name: &str,
                parent: Option<&str>,
                depth: u32,
                unexplained: &str| {
        json!({
            "program": program, "currency": "CNY", "org": org, "org_name": name, "parent": parent, "depth": depth,
            "received": "50000.00", "passed_down": "10000.00", "disbursed": "1560.00", "confirmed": "1480.00",
            "returned": "0.00", "held": "38440.00", "unexplained": unexplained,
            "subtree": {"disbursed": "1560.00", "confirmed": "1480.00", "returned": "0.00", "held": "38440.00", "unexplained": unexplained},
            "findings": 1
        })
    };
    let summary = |program: &str,
                   name: &str,
                   received: &str,
                   reached: &str,
                   unexplained: &str,
                   at_risk: &str,
                   n: i64| {
        json!({
            "program": program, "program_name": name, "currency": "CNY", "received": received,
            "disbursed": "1560.00", "confirmed": "1480.00", "returned": "0.00", "held": "98440.00",
            "reached_recipients": reached, "unexplained": unexplained, "findings": n, "amount_at_risk": at_risk
        })
    };
    json!({
        "report_version": 1,
        "ledger_state": {"seq": 4242, "head_hash": "9f".repeat(32), "bank_rows": 120, "complaints": 3},
        "params": {"program": null, "period": "2026-11", "org": null, "as_of": "2026-12-01", "hold_days_max": 30,
                   "unconfirmed_days_max": 10, "amount_tolerance": "0.00", "recipients_per_account_max": 3},
        "summary": [
            summary("DIBAO-T", "城乡低保", "1000000.00", "1480.00", "80.00", "12345.67", 4),
            summary("GAOLING", "高龄津贴 & <补贴>", "250000.50", "0.00", "0.00", "780.00", 1),
        ],
        "funnel": [
            node("DIBAO-T", "PROV", "省财政厅", None, 0, "0.00"),
            node("DIBAO-T", EVIL, EVIL, Some("PROV"), 1, "0.00"),
            node("DIBAO-T", "TOWN", "城关镇", Some(EVIL), 2, "80.00"),
            node("GAOLING", "PROV", "省财政厅", None, 0, "0.00"),
        ],
        "checks": [
            {"program": "DIBAO-T", "check": "node", "checked": 3, "holds": true, "first_failure": null},
            {"program": "DIBAO-T", "check": "tree", "checked": 1, "holds": true, "first_failure": null},
            {"program": "GAOLING", "check": "node", "checked": 1, "holds": true, "first_failure": null},
        ],
        "findings": [
            finding("unrecorded_outflow", "DIBAO-T", "TOWN", "5000.00"),
            finding("amount_mismatch", "DIBAO-T", "TOWN", "80.00"),
            finding("duplicate_payment", "DIBAO-T", EVIL, "6485.67"),
            finding("held_too_long", "DIBAO-T", "TOWN", "780.00"),
            finding("complaint", "GAOLING", "PROV", "780.00"),
        ]
    })
}

/// The text of the element carrying `data-summary="{key}"` in a serialized DOM.
fn summary_value<'a>(dom: &'a str, key: &str) -> &'a str {
    let attr = format!("data-summary=\"{key}\"");
    let at = dom
        .find(&attr)
        .unwrap_or_else(|| panic!("the rendered page has no {attr}"));
    let rest = &dom[at + attr.len()..];
    let text = &rest[rest.find('>').expect("tag closes") + 1..];
    &text[..text.find('<').expect("element closes")]
}

/// Every headline figure of every program, as the browser shows it, is the JSON's value.
fn assert_summary_shown(dom: &str, report: &Value, lang: &str) {
    for s in report["summary"].as_array().unwrap() {
        let program = s["program"].as_str().unwrap();
        for field in [
            "received",
            "reached_recipients",
            "unexplained",
            "amount_at_risk",
            "findings",
        ] {
            let expected = match &s[field] {
                Value::String(v) => v.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                summary_value(dom, &format!("{program}.{field}")),
                expected,
                "{lang}: {program}.{field}"
            );
        }
    }
}

fn render(report: &Report, lang: Lang, dir: &Path) -> std::path::PathBuf {
    let path = dir.join(format!("report.{}.html", lang.as_str()));
    let mut file = std::fs::File::create(&path).unwrap();
    write_html(report, lang, &mut file).unwrap();
    path
}

#[test]
fn the_browser_shows_the_json_figures_every_finding_group_and_prints() {
    let json = report_json();
    let report: Report = serde_json::from_value(json.clone()).expect("a valid report");
    let dir = tempfile::tempdir().unwrap();
    for lang in [Lang::ZhCn, Lang::En] {
        let page = render(&report, lang, dir.path());
        let dom = browser::rendered_text(&page);
        assert!(
            dom.contains(&format!("<html lang=\"{}\"", lang.as_str())),
            "{lang}: the browser did not load the page:\n{dom}"
        );

        // Every headline figure, as the browser shows it, is the JSON's string.
        assert_summary_shown(&dom, &json, lang.as_str());

        // Every finding type present has its group, localized, and a row per finding.
        for f in &report.findings {
            let ty = f.finding_type;
            assert!(
                dom.contains(&format!("data-group=\"{}\"", ty.as_str())),
                "{lang}: no group for {}",
                ty.as_str()
            );
            assert!(dom.contains(finding_type_label(ty, lang)), "{lang}: {ty:?}");
        }
        assert_eq!(
            dom.matches("data-finding=\"").count(),
            report.findings.len()
        );
        let types: std::collections::BTreeSet<_> =
            report.findings.iter().map(|f| f.finding_type).collect();
        assert_eq!(dom.matches("data-group=\"").count(), types.len());
        // One funnel row per node.
        assert_eq!(dom.matches("<tr data-org=\"").count(), report.funnel.len());

        // The hostile name stayed text: the browser built no script element from it.
        assert!(!dom.contains("<script"), "{lang}: markup injected");
        assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(dom.contains("高龄津贴 &amp; &lt;补贴&gt;"));
        assert!(dom.contains(&"9f".repeat(32)), "the ledger head is named");

        let pdf = browser::print_to_pdf(&page);
        assert!(pdf.starts_with(b"%PDF-"), "{lang}: not a PDF");
        assert!(
            pdf.len() > 10_000,
            "{lang}: a {}-byte PDF is too small to hold the report",
            pdf.len()
        );
    }
}

#[test]
fn the_browser_shows_no_findings_clearly() {
    let mut json = report_json();
    json["findings"] = json!([]);
    let report: Report = serde_json::from_value(json).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dom = browser::rendered_text(&render(&report, Lang::En, dir.path()));
    assert!(dom.contains("data-findings=\"none\""));
    assert!(dom.contains("No findings"));
    assert!(!dom.contains("data-group=\""));
}

/// The whole way: the demo province reconciled by a job on a real server, its HTML report
/// fetched and opened in the browser, showing what the JSON report of the same job holds.
#[test]
fn a_real_report_shows_its_json_summary_in_the_browser() {
    use super::reconcile::{demo_app, get_raw, wait_for};
    let (app, token) = demo_app();
    let inspector = token("AUDIT-PROV");
    let started = app.post(
        Some(&inspector),
        "/api/v1/reconciliations",
        &serde_json::json!({"as_of": "2026-12-31"}),
    );
    let id = started.body["id"].as_i64().unwrap();
    assert_eq!(wait_for(&app, &inspector, id)["status"], "done");
    let path = format!("/api/v1/reconciliations/{id}/report");
    let (_, _, json) = get_raw(&app, &inspector, &path);
    let report: Value = serde_json::from_slice(&json).unwrap();
    let (status, _, html) = get_raw(&app, &inspector, &format!("{path}?format=html"));
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let dom = fundtrail_e2e::browser::rendered_text(&page);
    assert_eq!(
        report["summary"].as_array().unwrap().len(),
        2,
        "the 低保 program and the generated scenario"
    );
    assert_summary_shown(&dom, &report, "zh-CN");
    // Every finding the JSON lists is on the page, under its group.
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(dom.matches("data-finding=\"").count(), findings.len());
}
