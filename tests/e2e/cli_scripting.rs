//! The CLI as a script drives it: the real binary against a real server, its `--json` read
//! with serde_json and checked against what the server holds; rosters whose columns it must
//! name or refuse; positions always given as the file's 1-based lines.

use fundtrail_e2e::{fundtrail_bin, id_number, period, today, year, Org, Tree, PROGRAM};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One run of the binary.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "stderr: {}\nstdout: {}",
            self.stderr,
            self.stdout
        );
        self
    }
    fn failed(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(1),
            "stderr: {}\nstdout: {}",
            self.stderr,
            self.stdout
        );
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// The org's private key as a file, as the clerk keeps it.
fn key_file(t: &Tree, org: &Org) -> PathBuf {
    let path = t.app.dir.path().join(format!("{}.key", org.code));
    if !path.exists() {
        org.key.save(&path).unwrap();
    }
    path
}

/// Runs `fundtrail ARGS` as `org`, through the environment as a clerk's shell would set it,
/// in the test's own directory and with no database configured.
fn fundtrail(t: &Tree, org: &Org, args: &[&str]) -> Run {
    run_in(
        t.app.dir.path(),
        &t.app.base,
        &org.token,
        &key_file(t, org),
        args,
    )
}

fn run_in(dir: &Path, server: &str, token: &str, key: &Path, args: &[&str]) -> Run {
    let out = Command::new(fundtrail_bin())
        .args(args)
        .env("FUNDTRAIL_SERVER", server)
        .env("FUNDTRAIL_TOKEN", token)
        .env("FUNDTRAIL_KEY", key)
        .env_remove("FUNDTRAIL_DB")
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(t: &Tree, name: &str, text: &str) -> String {
    let path = t.app.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// TOWN's disbursements as the server lists them, by seq.
fn town_payments(t: &Tree) -> Vec<Value> {
    let r = t.app.get(
        Some(&t.town.token),
        "/api/v1/entries?kind=disbursement&org=TOWN&limit=1000",
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["entries"].as_array().unwrap().clone()
}

fn disburse_args<'a>(roster: &'a str, seq: &'a str, p: &'a str) -> Vec<&'a str> {
    vec![
        "disburse",
        "--program",
        PROGRAM,
        "--period",
        p,
        "--source",
        seq,
        "--roster",
        roster,
    ]
}

#[test]
fn a_roster_names_its_unknown_columns_and_pays_with_its_own_references() {
    let t = Tree::build();
    let roster = write(
        &t,
        "roster.csv",
        &format!(
            "身份证号,姓名,payment_reference,金额,村组,联系电话\n\
             {},张一,PR-2026-001,780,一组,138\n\
             {},张二,PR-2026-002,\"1,050.50\",二组,139\n\
             {},张三,PR-2026-003,650,三组,137\n",
            id_number(1),
            id_number(2),
            id_number(3)
        ),
    );
    let (seq, p, day) = (t.town_seq.to_string(), period(), today());
    let mut args = disburse_args(&roster, &seq, &p);
    args.extend(["--value-date", &day, "--json"]);
    let run = fundtrail(&t, &t.town, &args);
    run.ok();
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("村组, 联系电话"),
        "the unknown columns are named: {}",
        run.stderr
    );
    let out = run.json();
    assert_eq!(
        out["unknown_columns"],
        serde_json::json!(["村组", "联系电话"])
    );
    assert_eq!(out["ignored_columns"], serde_json::json!(["姓名"]));
    assert_eq!(out["reference_column"], "payment_reference");
    assert_eq!(
        (out["recorded"].as_u64(), out["complete"].as_bool()),
        (Some(3), Some(true))
    );
    let entries = out["entries"].as_array().unwrap();
    let by_line: Vec<(u64, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["reference"].as_str().unwrap(),
                e["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_line,
        vec![
            (2, "PR-2026-001", "780.00"),
            (3, "PR-2026-002", "1050.50"),
            (4, "PR-2026-003", "650.00")
        ]
    );
    // The ledger holds exactly those entries, under the roster's references.
    let on_server = town_payments(&t);
    assert_eq!(on_server.len(), 3);
    for (mine, theirs) in entries.iter().zip(&on_server) {
        for field in [
            "seq",
            "reference",
            "amount",
            "hash",
            "recipient",
            "kind",
            "batch",
        ] {
            assert_eq!(mine[field], theirs[field], "{field}");
        }
    }
    assert_eq!(entries[0]["recipient"], t.recipients[0].as_str());

    // For people: a short line, never JSON.
    let roster2 = write(
        &t,
        "roster2.csv",
        &format!("id_number,amount,ref\n{},10,PR-2026-004\n", id_number(4)),
    );
    let args = disburse_args(&roster2, &seq, &p);
    let run = fundtrail(&t, &t.town, &args);
    run.ok();
    assert!(
        run.stdout.starts_with("recorded 1 disbursements from")
            && run.stdout.contains("references: from column ref"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert_eq!(town_payments(&t)[3]["reference"], "PR-2026-004");
}

#[test]
fn an_unusable_reference_column_is_refused_by_line_and_column_and_nothing_is_written() {
    let t = Tree::build();
    let long = "R".repeat(36);
    let roster = write(
        &t,
        "roster.csv",
        &format!(
            "身份证号,金额,参考号\n{a},1,DB-1\n{b},1,DB-1\n{c},1,\n{d},1,{long}\n{e},1,付款1\n",
            a = id_number(1),
            b = id_number(2),
            c = id_number(3),
            d = id_number(4),
            e = id_number(5),
        ),
    );
    let before = t.app.snapshot();
    let (seq, p) = (t.town_seq.to_string(), period());
    let run = fundtrail(&t, &t.town, &disburse_args(&roster, &seq, &p));
    run.failed();
    for (line, what) in [
        (3, "is also on line 2"),
        (4, "no reference on this row"),
        (5, "1-35 characters"),
        (6, "1-35 characters"),
    ] {
        let at = format!("line {line}, column 参考号: ");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&at) && l.contains(what)),
            "line {line} ({what}) in: {}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("--from-line"), "{}", run.stderr);
    assert_eq!(t.app.snapshot(), before, "nothing was written");
}

#[test]
fn every_write_command_prints_json_matching_what_the_server_holds() {
    let t = Tree::build();
    let dir = t.app.dir.path();
    let admin = &t.app.admin;

    // keygen: the public key to register, and the key file.
    let new_key = dir.join("NEWTWN.key");
    let k = fundtrail(
        &t,
        admin,
        &[
            "keygen",
            "--org",
            "NEWTWN",
            "-o",
            new_key.to_str().unwrap(),
            "--json",
        ],
    );
    let k = k.ok().json();
    assert!(new_key.is_file());
    let public_key = k["public_key"].as_str().unwrap().to_string();

    // org create, then the server's view of the org.
    let o = fundtrail(
        &t,
        admin,
        &[
            "org",
            "create",
            "NEWTWN",
            "--name",
            "新镇",
            "--role",
            "local_office",
            "--parent",
            "CNTY",
            "--public-key",
            &public_key,
            "--json",
        ],
    );
    let o = o.ok().json();
    let server = t.app.get(Some(&admin.token), "/api/v1/orgs/NEWTWN");
    assert_eq!(server.status, 200);
    for field in ["code", "name", "role", "parent", "created_at"] {
        assert_eq!(o[field], server.body[field], "{field}");
    }
    assert_eq!(
        (o["role"].as_str(), o["parent"].as_str()),
        (Some("local_office"), Some("CNTY"))
    );
    let keys = t.app.get(Some(&admin.token), "/api/v1/orgs/NEWTWN/keys");
    assert_eq!(keys.body[0]["key_id"], k["key_id"]);

    // token create: the token printed works.
    let tok = fundtrail(
        &t,
        admin,
        &["token", "create", "NEWTWN", "--label", "clerk", "--json"],
    );
    let tok = tok.ok().json();
    assert_eq!(
        (tok["org"].as_str(), tok["label"].as_str()),
        (Some("NEWTWN"), Some("clerk"))
    );
    let me = t
        .app
        .get(Some(tok["token"].as_str().unwrap()), "/api/v1/orgs/NEWTWN");
    assert_eq!(me.status, 200, "the printed token authenticates");

    // key add and retire: the org rotates its own key, signing with the one it has.
    let as_newtwn = |args: &[&str]| {
        run_in(
            dir,
            &t.app.base,
            tok["token"].as_str().unwrap(),
            &new_key,
            args,
        )
    };
    let second = fresh_key("NEWTWN");
    let added = as_newtwn(&[
        "key",
        "add",
        "NEWTWN",
        "--public-key",
        &second.public_key_b64(),
        "--json",
    ]);
    let added = added.ok().json();
    assert_eq!(added["key_id"], second.key_id.as_str());
    let first_key = k["key_id"].as_str().unwrap();
    let retired = as_newtwn(&["key", "retire", "NEWTWN", first_key, "--json"]);
    let retired = retired.ok().json();
    let keys = t.app.get(Some(&admin.token), "/api/v1/orgs/NEWTWN/keys");
    let on_server = |id: &Value| {
        keys.body
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == *id)
            .cloned()
            .unwrap()
    };
    assert_eq!(added, on_server(&added["key_id"]));
    assert!(retired["valid_until"].is_string(), "{retired}");
    assert_eq!(retired, on_server(&k["key_id"]));

    // program create, as the provincial bureau.
    let y = year().to_string();
    let prog = fundtrail(
        &t,
        &t.prov,
        &[
            "program",
            "create",
            "GAOLING-T",
            "--name",
            "高龄津贴",
            "--fiscal-year",
            &y,
            "--standard-amount",
            "100",
            "--period-granularity",
            "quarter",
            "--json",
        ],
    );
    let prog = prog.ok().json();
    let server = t.app.get(Some(&t.prov.token), "/api/v1/programs/GAOLING-T");
    assert_eq!(prog, server.body);
    assert_eq!(prog["period_granularity"], "quarter");

    // account add, as the town.
    let acct = fundtrail(
        &t,
        &t.town,
        &[
            "account",
            "add",
            "--org",
            "TOWN",
            "--account",
            "6222 0000 7777",
            "--label",
            "低保专户",
            "--json",
        ],
    );
    let acct = acct.ok().json();
    let server = t
        .app
        .get(Some(&t.town.token), "/api/v1/bank-accounts?org=TOWN");
    assert_eq!(acct, server.body[0]);
    assert_eq!(acct["account"], "622200007777");
    // ... and for people, a table (not JSON).
    let list = fundtrail(&t, &t.town, &["account", "list"]);
    assert!(list.ok().stdout.starts_with("org"), "{}", list.stdout);
    assert!(list.stdout.contains("622200007777") && !list.stdout.contains('{'));

    // budget and allocate: the entries, with what the ledger says about them.
    let entry = |seq: &Value| {
        let r = t
            .app
            .get(Some(&t.prov.token), &format!("/api/v1/entries/{seq}"));
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["entry"].clone()
    };
    let b = fundtrail(
        &t,
        &t.prov,
        &[
            "budget",
            "--program",
            PROGRAM,
            "--period",
            &y,
            "--amount",
            "2000",
            "--reference",
            "BUD-2",
            "--json",
        ],
    );
    let b = b.ok().json();
    let e = &b["entries"][0];
    let server = entry(&e["seq"]);
    for field in ["seq", "kind", "reference", "amount", "hash", "to"] {
        assert_eq!(e[field], server[field], "{field}");
    }
    assert_eq!(
        (e["kind"].as_str(), e["amount"].as_str()),
        (Some("budget"), Some("2000.00"))
    );
    assert_eq!(b["head_hash"], server["hash"]);
    let budget_seq = e["seq"].to_string();
    let a = fundtrail(
        &t,
        &t.prov,
        &[
            "allocate",
            "--program",
            PROGRAM,
            "--period",
            &period(),
            "--amount",
            "500",
            "--source",
            &budget_seq,
            "--to",
            "CITY",
            "--json",
        ],
    );
    let a = a.ok().json();
    let e = &a["entries"][0];
    let server = entry(&e["seq"]);
    for field in [
        "seq",
        "kind",
        "reference",
        "amount",
        "hash",
        "source",
        "to",
        "from",
    ] {
        assert_eq!(e[field], server[field], "{field}");
    }

    // reverse: the reversal, and the reversed entry now says so.
    let alloc_seq = e["seq"].to_string();
    let r = fundtrail(
        &t,
        &t.prov,
        &["reverse", &alloc_seq, "--memo", "错拨", "--json"],
    );
    let r = r.ok().json();
    let rev = &r["entries"][0];
    assert_eq!(rev["kind"], "reversal");
    assert_eq!(rev["source"], e["seq"]);
    assert_eq!(entry(&rev["seq"])["hash"], rev["hash"]);
    assert_eq!(entry(&e["seq"])["reversed_by"], rev["seq"]);

    // recipients register: each row's pseudonym with its line; a blank line counts as one.
    let csv = write(
        &t,
        "new.csv",
        &format!(
            "姓名,身份证号,银行账号,开户行\n新户一,{},6228480000000301,中国农业银行\n\n新户二,{},6228480000000302,中国农业银行\n",
            id_number(301),
            id_number(302)
        ),
    );
    let reg = fundtrail(
        &t,
        &t.town,
        &["recipients", "register", "--csv", &csv, "--json"],
    );
    let reg = reg.ok().json();
    assert_eq!(reg["registered"], 2);
    let rows = reg["recipients"].as_array().unwrap();
    assert_eq!(
        (rows[0]["line"].as_u64(), rows[1]["line"].as_u64()),
        (Some(2), Some(4))
    );
    let resolved = t.app.post(
        Some(&t.town.token),
        "/api/v1/recipients/resolve",
        &serde_json::json!({"id_numbers": [id_number(301), id_number(302)]}),
    );
    assert_eq!(resolved.body["pseudonyms"][0], rows[0]["pseudonym"]);
    assert_eq!(resolved.body["pseudonyms"][1], rows[1]["pseudonym"]);
}

/// A fresh key for `org`, not yet registered.
fn fresh_key(org: &str) -> fundtrail::crypto::SigningKey {
    fundtrail::crypto::SigningKey::generate(org)
}

#[test]
fn recipients_status_and_resolve_work_by_pseudonym_or_id_number() {
    let t = Tree::build();
    let id3 = id_number(3);
    let r = fundtrail(
        &t,
        &t.town,
        &["recipients", "resolve", "--id-number", &id3, "--json"],
    );
    let r = r.ok().json();
    assert_eq!(r["recipients"][0]["pseudonym"], t.recipients[2].as_str());
    // For people, a table; for an ID that is not one of ours, null and exit 1.
    let unknown = id_number(999);
    let r = fundtrail(
        &t,
        &t.town,
        &[
            "recipients",
            "resolve",
            "--id-number",
            &id3,
            "--id-number",
            &unknown,
            "--json",
        ],
    );
    let out = r.failed().json();
    assert!(out["recipients"][1]["pseudonym"].is_null());
    assert!(r.stderr.contains("unknown_recipient"), "{}", r.stderr);
    // The ID number is named masked, never in full.
    assert!(!r.stderr.contains(unknown.as_str()), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&fundtrail::statements::mask_account(&unknown)),
        "{}",
        r.stderr
    );
    let human = fundtrail(&t, &t.town, &["recipients", "resolve", "--id-number", &id3]);
    assert!(
        human.ok().stdout.contains(&t.recipients[2]),
        "{}",
        human.stdout
    );

    let view = |p: &str| {
        t.app
            .get(Some(&t.town.token), &format!("/api/v1/recipients/{p}"))
            .body
    };
    let day = today();
    let s = fundtrail(
        &t,
        &t.town,
        &[
            "recipients",
            "status",
            "--id-number",
            &id3,
            "--status",
            "deceased",
            "--date",
            &day,
            "--json",
        ],
    );
    let s = s.ok().json();
    let server = view(&t.recipients[2]);
    assert_eq!(
        (server["status"].as_str(), server["status_date"].as_str()),
        (Some("deceased"), Some(day.as_str()))
    );
    assert_eq!(s, server);

    let p4 = t.recipients[3].clone();
    let s = fundtrail(
        &t,
        &t.town,
        &[
            "recipients",
            "status",
            &p4,
            "--status",
            "suspended",
            "--date",
            &day,
        ],
    );
    assert!(s.ok().stdout.contains("is now suspended"), "{}", s.stdout);
    assert_eq!(view(&p4)["status"], "suspended");
    fundtrail(
        &t,
        &t.town,
        &["recipients", "status", &p4, "--status", "active"],
    )
    .ok();
    assert_eq!(view(&p4)["status"], "active");
    assert!(view(&p4)["status_date"].is_null());

    // A deceased status needs its date: refused before anything is sent.
    let before = t.app.snapshot();
    let s = fundtrail(
        &t,
        &t.town,
        &["recipients", "status", &p4, "--status", "deceased"],
    );
    assert!(s.failed().stderr.contains("--date"), "{}", s.stderr);
    assert_eq!(t.app.snapshot(), before);
    assert_eq!(view(&p4)["status"], "active");
}

#[test]
fn a_refused_row_is_named_by_its_line_and_the_resume_hint_points_at_it() {
    let t = Tree::build();
    let day = today();
    // Recipient 3 died today: a payment dated today is refused by the server (item 0 of the
    // second batch), which the CLI must call line 4.
    fundtrail(
        &t,
        &t.town,
        &[
            "recipients",
            "status",
            &t.recipients[2],
            "--status",
            "deceased",
            "--date",
            &day,
        ],
    )
    .ok();
    // Five rows (lines 2-6) paying these recipients; the third (line 4) is the deceased one
    // unless replaced.
    let rows = |ids: [u32; 5]| {
        let mut text = String::from("id_number,amount\n");
        for i in ids {
            text.push_str(&format!("{},10\n", id_number(i)));
        }
        text
    };
    let roster = write(&t, "roster.csv", &rows([1, 2, 3, 4, 5]));
    let (seq, p) = (t.town_seq.to_string(), period());
    let mut args = disburse_args(&roster, &seq, &p);
    args.extend(["--value-date", &day, "--batch-size", "2", "--json"]);
    let run = fundtrail(&t, &t.town, &args);
    run.failed();
    assert!(
        run.stderr
            .contains("recipient_not_payable: roster line 4: "),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("item 0"),
        "no 0-based items: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("fix roster line(s) 4 and resume with --from-line 4"),
        "{}",
        run.stderr
    );
    let out = run.json();
    assert_eq!(
        (out["complete"].as_bool(), out["resume_from_line"].as_u64()),
        (Some(false), Some(4))
    );
    let lines: Vec<u64> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3]);
    assert_eq!(town_payments(&t).len(), 2);

    // The clerk fixes line 4 and resumes there: lines 4-6 are paid, 2-3 not again.
    let fixed = write(&t, "roster.csv", &rows([1, 2, 6, 4, 5]));
    let mut args = disburse_args(&fixed, &seq, &p);
    args.extend(["--value-date", &day, "--from-line", "4", "--json"]);
    let out = fundtrail(&t, &t.town, &args).ok().json();
    let lines: Vec<u64> = out["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 6]);
    assert_eq!(town_payments(&t).len(), 5);

    // In one batch (of recipients not paid yet), nothing is written: the hint says to run
    // again, not to resume.
    let roster = write(&t, "again.csv", &rows([7, 8, 3, 9, 10]));
    let mut args = disburse_args(&roster, &seq, &p);
    args.extend(["--value-date", &day]);
    let run = fundtrail(&t, &t.town, &args);
    run.failed();
    assert!(
        run.stderr
            .contains("nothing was recorded: fix roster line(s) 4 and run the command again"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("--from-line"), "{}", run.stderr);
    assert_eq!(town_payments(&t).len(), 5);
}

#[test]
fn no_resume_hint_after_a_refusal_that_is_not_about_the_rows() {
    let t = Tree::build();
    let roster = write(
        &t,
        "roster.csv",
        &format!(
            "id_number,amount\n{},10\n{},10\n",
            id_number(1),
            id_number(2)
        ),
    );
    let (seq, p) = (t.town_seq.to_string(), period());
    let args = disburse_args(&roster, &seq, &p);
    // A token the server does not know.
    let bad = run_in(
        t.app.dir.path(),
        &t.app.base,
        "not-a-token",
        &key_file(&t, &t.town),
        &args,
    );
    bad.failed();
    assert!(bad.stderr.contains("unauthorized"), "{}", bad.stderr);
    // A key the server never registered: refused at the first batch.
    let stray = t.app.dir.path().join("stray.key");
    fresh_key("TOWN").save(&stray).unwrap();
    let unsigned = run_in(t.app.dir.path(), &t.app.base, &t.town.token, &stray, &args);
    unsigned.failed();
    assert!(
        unsigned.stderr.contains("unknown_key"),
        "{}",
        unsigned.stderr
    );
    assert!(
        unsigned.stderr.contains("nothing was recorded"),
        "{}",
        unsigned.stderr
    );
    // A --source the town does not hold is about the command's arguments, not the rows.
    let mut wrong = disburse_args(&roster, "1", &p);
    wrong.push("--batch-size");
    wrong.push("1");
    let wrong_source = fundtrail(&t, &t.town, &wrong);
    wrong_source.failed();
    assert!(
        wrong_source.stderr.contains("--source"),
        "{}",
        wrong_source.stderr
    );
    for run in [&bad, &unsigned, &wrong_source] {
        assert!(!run.stderr.contains("--from-line"), "{}", run.stderr);
        assert!(!run.stderr.contains("fix roster"), "{}", run.stderr);
    }
    assert!(town_payments(&t).is_empty());
}

#[test]
fn every_unknown_recipient_of_a_roster_is_named() {
    let t = Tree::build();
    let roster = write(
        &t,
        "roster.csv",
        &format!(
            "id_number,amount\n{},10\n{},10\n{},10\n{},10\n",
            id_number(1),
            id_number(901),
            id_number(2),
            id_number(902)
        ),
    );
    let before = t.app.snapshot();
    let (seq, p) = (t.town_seq.to_string(), period());
    let run = fundtrail(&t, &t.town, &disburse_args(&roster, &seq, &p));
    run.failed();
    for line in [3, 5] {
        assert!(
            run.stderr.contains(&format!(
                "line {line}: this ID number is not a registered recipient of TOWN"
            )),
            "line {line}: {}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("line 2:") && !run.stderr.contains("line 4:"),
        "{}",
        run.stderr
    );
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn a_refused_registration_names_the_line_not_the_item() {
    let t = Tree::build();
    // Line 4 (after a blank line 3) is someone TOWN registered already: item 1 of the request.
    let csv = write(
        &t,
        "new.csv",
        &format!(
            "name,id_number,bank_account\n新户,{},6228480000000401\n\n老户,{},6228480000000001\n",
            id_number(401),
            id_number(1)
        ),
    );
    let before = t.app.snapshot();
    let run = fundtrail(&t, &t.town, &["recipients", "register", "--csv", &csv]);
    run.failed();
    assert!(run.stderr.contains("duplicate_recipient"), "{}", run.stderr);
    assert!(run.stderr.contains("new.csv line 4: "), "{}", run.stderr);
    assert!(!run.stderr.contains("item 1"), "{}", run.stderr);
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn typed_values_are_checked_by_the_cli_with_the_allowed_values_listed() {
    let t = Tree::build();
    let admin = &t.app.admin;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["org", "create", "CNTY2", "--name", "县", "--role", "county"],
            &["admin", "finance_bureau", "local_office", "inspector"],
        ),
        (
            &["entries", "--kind", "payment"],
            &["disbursement", "reversal"],
        ),
        (&["reconcile", "--format", "pdf"], &["json", "csv", "html"]),
        (&["reconcile", "--lang", "fr"], &["zh-CN", "en"]),
        (
            &[
                "recipients",
                "status",
                "R1",
                "--status",
                "dead",
                "--date",
                "2026-01-01",
            ],
            &["active", "suspended", "deceased"],
        ),
        (
            &[
                "program",
                "create",
                "P2",
                "--name",
                "x",
                "--fiscal-year",
                "2026",
                "--standard-amount",
                "1",
                "--period-granularity",
                "week",
            ],
            &["month", "quarter", "year"],
        ),
        (
            &["import", "x.csv", "--format", "word"],
            &["csv-icbc", "mt940"],
        ),
    ];
    let before = t.app.snapshot();
    for (args, allowed) in cases {
        let run = fundtrail(&t, admin, args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("possible values"),
            "{args:?}: {}",
            run.stderr
        );
        for v in *allowed {
            assert!(run.stderr.contains(v), "{args:?} lists {v}: {}", run.stderr);
        }
        assert!(!run.stderr.contains("invalid_json"), "{}", run.stderr);
    }
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn db_is_taken_only_by_commands_that_open_one_and_recheck_says_it_needs_it() {
    let t = Tree::build();
    let elsewhere = tempfile::tempdir().unwrap();
    let key = key_file(&t, &t.auditor);
    // FUNDTRAIL_SERVER is set, the default database does not exist here: say what is needed.
    let run = run_in(
        elsewhere.path(),
        &t.app.base,
        &t.auditor.token,
        &key,
        &["statement", "recheck", "1"],
    );
    run.failed();
    assert!(run.stderr.contains("give --db PATH"), "{}", run.stderr);
    assert!(run.stderr.contains("FUNDTRAIL_SERVER"), "{}", run.stderr);
    // --db on a command that talks to a server: refused, before or after the command.
    let db = t.app.db_path.to_str().unwrap();
    let before = run_in(
        elsewhere.path(),
        &t.app.base,
        &t.auditor.token,
        &key,
        &["--db", db, "org", "list"],
    );
    before.failed();
    assert!(
        before
            .stderr
            .contains("--db is for the commands that open a database"),
        "{}",
        before.stderr
    );
    let after = run_in(
        elsewhere.path(),
        &t.app.base,
        &t.auditor.token,
        &key,
        &["org", "list", "--db", db],
    );
    assert_eq!(after.code, Some(2), "{}", after.stderr);
    // Where it applies, before or after the command.
    for args in [["--db", db, "verify"], ["verify", "--db", db]] {
        let run = run_in(elsewhere.path(), &t.app.base, &t.auditor.token, &key, &args);
        assert!(run.ok().stdout.starts_with("ok: "), "{}", run.stdout);
    }
    let help = run_in(
        elsewhere.path(),
        &t.app.base,
        &t.auditor.token,
        &key,
        &["org", "list", "--help"],
    );
    assert!(!help.ok().stdout.contains("--db"), "{}", help.stdout);
    let help = run_in(
        elsewhere.path(),
        &t.app.base,
        &t.auditor.token,
        &key,
        &["statement", "recheck", "--help"],
    );
    assert!(help.ok().stdout.contains("--db"), "{}", help.stdout);
}
