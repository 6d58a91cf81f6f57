//! Reconciliation as its users meet it: an inspector starts a job over the demo province,
//! watches it finish and reads the report in three formats; the same report comes out of an
//! offline copy of the database byte for byte; offices reach only their own subtree; a
//! recipient checks a payment and complains, and the complaint becomes a finding.

use fundtrail_e2e::{fundtrail_bin, Reply, TestApp};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PROGRAM: &str = "DIBAO-2026";
const AS_OF: &str = "2026-12-31";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

/// A server with the demo loaded; returns it and a function giving an org's token.
pub(crate) fn demo_app() -> (TestApp, impl Fn(&str) -> String) {
    let app = TestApp::spawn();
    let summary = fundtrail::demo::load(&app.db_path, &fixtures()).expect("demo loads");
    assert!(summary.loaded);
    let creds = summary.credentials_dir;
    (app, move |org: &str| {
        std::fs::read_to_string(creds.join(org).join("token"))
            .expect("demo token")
            .trim()
            .to_string()
    })
}

/// Polls a job until it is done (or failed) and returns its last view.
pub(crate) fn wait_for(app: &TestApp, token: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = app.get(Some(token), &format!("/api/v1/reconciliations/{id}"));
        assert_eq!(r.status, 200, "{:?}", r.body);
        let status = r.body["status"].as_str().unwrap_or("").to_string();
        if status == "done" || status == "failed" {
            return r.body;
        }
        assert!(Instant::now() < deadline, "job {id} stuck: {:?}", r.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET returning raw bytes and the content type.
pub(crate) fn get_raw(app: &TestApp, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(format!("{}{path}", app.base))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .expect("request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (status, content_type, body)
}

fn of_type<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["type"] == kind)
        .collect()
}

#[test]
fn an_inspector_runs_a_job_and_an_offline_copy_gives_the_same_bytes() {
    let (app, token) = demo_app();
    let inspector = token("AUDIT-PROV");
    let started = app.post(
        Some(&inspector),
        "/api/v1/reconciliations",
        &json!({"program": PROGRAM, "as_of": AS_OF}),
    );
    assert_eq!(started.status, 202, "{:?}", started.body);
    let id = started.body["id"].as_i64().unwrap();
    assert!(["queued", "running"].contains(&started.body["status"].as_str().unwrap()));
    assert_eq!(
        started.body["params"]["hold_days_max"], 30,
        "defaults filled in"
    );
    let done = wait_for(&app, &inspector, id);
    assert_eq!(done["status"], "done", "{done:?}");
    assert_eq!(done["progress"]["percent"], 100);

    let (status, content_type, json_bytes) = get_raw(
        &app,
        &inspector,
        &format!("/api/v1/reconciliations/{id}/report"),
    );
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(
        done["report_sha256"].as_str().unwrap(),
        hex::encode(fundtrail::crypto::sha256(&json_bytes))
    );
    let report: Value = serde_json::from_slice(&json_bytes).unwrap();
    assert_eq!(report["ledger_state"]["seq"], done["ledger_seq"]);
    assert_eq!(report["params"]["as_of"], AS_OF);

    // The demo's known exceptions (fixtures/demo/statements/README.md), each with evidence.
    let outflow = of_type(&report, "unrecorded_outflow");
    assert_eq!(outflow.len(), 1);
    assert_eq!(outflow[0]["org"], "TWN-AP-CG");
    assert_eq!(outflow[0]["amount"], "5000.00");
    let row = &outflow[0]["evidence"]["bank_rows"][0];
    assert_eq!(row["file_name"], "TWN-AP-CG.icbc.gbk.csv");
    assert!(row["location"].as_str().unwrap().starts_with("line "));
    let short = of_type(&report, "amount_mismatch");
    assert_eq!(short.len(), 1);
    assert_eq!(short[0]["amount"], "80.00");
    let kinds: Vec<&str> = short[0]["evidence"]["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["disbursement", "confirmation"]);
    assert_eq!(
        short[0]["evidence"]["bank_rows"].as_array().unwrap().len(),
        1
    );
    let unconfirmed = of_type(&report, "unconfirmed");
    assert_eq!(unconfirmed.len(), 1);
    assert_eq!(
        unconfirmed[0]["payment_reference"],
        "DB202611-TWN-HY-JK-0034"
    );
    assert_eq!(unconfirmed[0]["evidence"]["rule"]["threshold"], "15");
    assert_eq!(unconfirmed[0]["evidence"]["rule"]["observed"], "51");
    // The funnel adds up, and its root received the budget.
    assert!(report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["holds"] == true));
    assert_eq!(report["funnel"][0]["org"], "FIN-PROV");
    assert_eq!(report["summary"][0]["received"], "3600000.00");

    // The same state and parameters offline: a copy of the database file, no keys.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.db");
    {
        use diesel::connection::SimpleConnection;
        let mut conn = app.conn();
        let fundtrail::db::DbConn::Sqlite(c) = &mut conn;
        c.batch_execute(&format!("VACUUM INTO '{}'", copy.display()))
            .unwrap();
    }
    let out = copy_dir.path().join("report.json");
    let status = std::process::Command::new(fundtrail_bin())
        .args(["--db", copy.to_str().unwrap(), "reconcile"])
        .args(["--program", PROGRAM, "--as-of", AS_OF, "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(&out).unwrap() == json_bytes,
        "the offline report differs from the server's"
    );

    // CSV for Excel: BOM, then a header and one line per finding.
    let (status, content_type, csv) = get_raw(
        &app,
        &inspector,
        &format!("/api/v1/reconciliations/{id}/report?format=csv"),
    );
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"));
    assert!(csv.starts_with(b"\xEF\xBB\xBF"));
    let rows = csv::Reader::from_reader(&csv[3..]).records().count();
    assert_eq!(rows, report["findings"].as_array().unwrap().len());
    let (status, content_type, html) = get_raw(
        &app,
        &inspector,
        &format!("/api/v1/reconciliations/{id}/report?format=html&lang=en"),
    );
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"));
    assert!(String::from_utf8(html).unwrap().contains("<html"));
    let bad = app.get(
        Some(&inspector),
        &format!("/api/v1/reconciliations/{id}/report?format=pdf"),
    );
    assert_eq!((bad.status, bad.code()), (400, "invalid_query"));

    // The CLI against the server: a job, polled, the report written to a file.
    let html_out = copy_dir.path().join("report.html");
    let status = std::process::Command::new(fundtrail_bin())
        .args(["reconcile", "--server", &app.base, "--token", &inspector])
        .args(["--program", PROGRAM, "--as-of", AS_OF, "--format", "html"])
        .arg("-o")
        .arg(&html_out)
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(&html_out).unwrap();
    assert!(page.contains("lang=\"zh-CN\""), "zh-CN is the default");

    // Another org's job is not there for a township, in the list or by id.
    let town = token("TWN-AP-SX");
    let other = app.get(Some(&town), &format!("/api/v1/reconciliations/{id}"));
    assert_eq!((other.status, other.code()), (404, "not_found"));
    let listed = app.get(Some(&town), "/api/v1/reconciliations");
    assert_eq!(
        (listed.status, listed.body.as_array().map(Vec::len)),
        (200, Some(0))
    );
    // The inspector's list has both jobs (this one and the CLI's), newest first.
    let listed = app.get(Some(&inspector), "/api/v1/reconciliations");
    let ids: Vec<i64> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1] && ids.contains(&id));
}

#[test]
fn offices_reconcile_only_their_own_subtree_and_bad_parameters_name_their_field() {
    let (app, token) = demo_app();
    let town = token("TWN-AP-CG");
    let outside = app.post(
        Some(&town),
        "/api/v1/reconciliations",
        &json!({"org": "FIN-PROV"}),
    );
    assert_eq!((outside.status, outside.code()), (403, "forbidden"));
    let own = app.post(Some(&town), "/api/v1/reconciliations", &json!({}));
    assert_eq!(own.status, 202, "{:?}", own.body);
    assert_eq!(
        own.body["params"]["org"], "TWN-AP-CG",
        "its own subtree by default"
    );
    let county = token("MCA-DZ-AP");
    let below = app.post(
        Some(&county),
        "/api/v1/reconciliations",
        &json!({"org": "TWN-AP-CG"}),
    );
    assert_eq!(below.status, 202);
    let cases: [(Value, u16, &str, &str); 5] = [
        (
            json!({"period": "2026-13"}),
            422,
            "invalid_period",
            "period",
        ),
        (
            json!({"program": "NOPE"}),
            422,
            "unknown_program",
            "program",
        ),
        (
            json!({"as_of": "31/12/2026"}),
            422,
            "invalid_field",
            "as_of",
        ),
        (
            json!({"amount_tolerance": "-1"}),
            422,
            "invalid_field",
            "amount_tolerance",
        ),
        (json!({"hold_days": 3}), 400, "invalid_json", ""),
    ];
    let inspector = token("AUDIT-PROV");
    for (body, status, code, field) in cases {
        let r: Reply = app.post(Some(&inspector), "/api/v1/reconciliations", &body);
        assert_eq!((r.status, r.code()), (status, code), "{body}: {:?}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field);
        }
    }
    let none = app.post(None, "/api/v1/reconciliations", &json!({}));
    assert_eq!(none.status, 401);
    // A job that fails to start wrote nothing: only the two accepted jobs exist.
    use diesel::prelude::*;
    let jobs: i64 = fundtrail_schema::schema::reconciliations::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(jobs, 2);
    let done = wait_for(&app, &town, own.body["id"].as_i64().unwrap());
    assert_eq!(done["status"], "done");
}

#[test]
fn a_recipient_checks_a_payment_and_a_complaint_becomes_a_finding() {
    let (app, token) = demo_app();
    // The first line of fixtures/demo/payroll-2026-11.csv, as the recipient knows it.
    let (id_number, reference) = ("360721194911012986", "DB202611-TWN-AP-CG-0001");
    let ask = |id: &str, reference: &str| {
        app.post(
            None,
            "/api/v1/public/payment-status",
            &json!({"program": PROGRAM, "reference": reference, "id_number": id}),
        )
    };
    let seen = ask(id_number, reference);
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(seen.body["status"], "confirmed");
    assert_eq!(seen.body["amount"], "520.00");
    assert_eq!(seen.body["confirmed_amount"], "520.00");
    assert!(seen.body.get("recipient").is_none() && !seen.body.to_string().contains(id_number));
    // Someone else's ID number learns nothing: the same 404 as a reference that does not exist.
    let stranger = fundtrail_e2e::id_number(7);
    let wrong = ask(&stranger, reference);
    let missing = ask(id_number, "DB202611-NOPE");
    assert_eq!((wrong.status, wrong.code()), (404, "not_found"));
    assert_eq!(wrong.body, missing.body);
    let invalid = ask("360721194911012987", reference);
    assert_eq!(
        (
            invalid.status,
            invalid.code(),
            invalid.body["field"].as_str()
        ),
        (422, "invalid_id_number", Some("id_number"))
    );

    let complain = |kind: &str, received: Option<&str>| {
        app.post(
            None,
            "/api/v1/public/complaints",
            &json!({"program": PROGRAM, "reference": reference, "id_number": id_number, "kind": kind, "amount_received": received}),
        )
    };
    let same_amount = complain("wrong_amount", Some("520.00"));
    assert_eq!(
        (same_amount.status, same_amount.code()),
        (422, "invalid_field")
    );
    let filed = complain("not_received", None);
    assert_eq!(filed.status, 201, "{:?}", filed.body);
    let again = complain("not_received", None);
    assert_eq!(again.status, 200);
    assert_eq!(again.body["already_filed"], true);
    assert_eq!(again.body["complaint_id"], filed.body["complaint_id"]);

    let inspector = token("AUDIT-PROV");
    let today = chrono::Utc::now().date_naive().to_string();
    let started = app.post(
        Some(&inspector),
        "/api/v1/reconciliations",
        &json!({"program": PROGRAM, "org": "TWN-AP-CG", "as_of": today}),
    );
    let id = started.body["id"].as_i64().unwrap();
    assert_eq!(wait_for(&app, &inspector, id)["status"], "done");
    let report = app.get(
        Some(&inspector),
        &format!("/api/v1/reconciliations/{id}/report"),
    );
    let complaints = of_type(&report.body, "complaint");
    assert_eq!(complaints.len(), 1, "{:?}", report.body["findings"]);
    assert_eq!(complaints[0]["payment_reference"], reference);
    assert_eq!(complaints[0]["amount"], "520.00");
    assert_eq!(complaints[0]["org"], "TWN-AP-CG");
    assert_eq!(
        complaints[0]["evidence"]["complaints"][0]["complaint_id"],
        filed.body["complaint_id"]
    );

    // The public endpoints are rate-limited per address: the burst runs out within a few more.
    let limited = (0..20)
        .map(|_| ask(id_number, reference))
        .find(|r| r.status == 429)
        .expect("rate limit never hit");
    assert_eq!(limited.code(), "rate_limited");
}

#[test]
fn a_restart_marks_a_running_job_interrupted_and_runs_the_queued_ones() {
    use diesel::prelude::*;
    use fundtrail_schema::schema::{orgs, reconciliations};
    let (app, token) = demo_app();
    let inspector = token("AUDIT-PROV");
    // As a service that stopped would leave them: one job mid-run, one waiting.
    let mut conn = app.conn();
    let org: i64 = orgs::table
        .filter(orgs::code.eq("AUDIT-PROV"))
        .select(orgs::id)
        .first(&mut conn)
        .unwrap();
    let params = serde_json::to_string(&json!({
        "program": PROGRAM, "period": null, "org": null, "as_of": AS_OF, "hold_days_max": 30,
        "unconfirmed_days_max": 15, "amount_tolerance": "0.00", "recipients_per_account_max": 3
    }))
    .unwrap();
    let mut insert = |status: &str| -> i64 {
        diesel::insert_into(reconciliations::table)
            .values((
                reconciliations::requested_by_org_id.eq(org),
                reconciliations::params.eq(&params),
                reconciliations::status.eq(status),
                reconciliations::created_at.eq(1),
            ))
            .returning(reconciliations::id)
            .get_result(&mut conn)
            .unwrap()
    };
    let (running, queued) = (insert("running"), insert("queued"));
    // A second server process over the same file starts its worker.
    let restarted = app.second_server();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = |id: i64| -> Value {
        agent
            .get(format!("{restarted}/api/v1/reconciliations/{id}"))
            .header("authorization", &format!("Bearer {inspector}"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    let interrupted = get(running);
    assert_eq!(interrupted["status"], "failed");
    assert_eq!(interrupted["error"]["code"], "interrupted");
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(queued)["status"] != "done" {
        assert!(Instant::now() < deadline, "{:?}", get(queued));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(queued)["findings"].as_i64().unwrap() > 0);
}
