//! What both benchmarks set up before measuring: a database with a bureau PROV, an office
//! TOWN below it, program `BENCH` (100.00 a month), registered recipients, and a budget and an
//! allocation to TOWN big enough for every payment — all through the same signed calls users
//! make.

// Each benchmark compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use fundtrail::crypto::{PersonalDataKeys, SigningKey};
use fundtrail::db::DbConn;
use fundtrail::domain::{EntryKind, Role};
use fundtrail::ledger::append::append;
use fundtrail::ledger::{EntryBody, ENTRIES_PURPOSE};
use fundtrail::signing::sign_locally;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// The benchmarks' program code.
pub const PROGRAM: &str = "BENCH";
/// Every payment's amount.
pub const AMOUNT: &str = "100.00";
/// Recipients registered per signed request.
const REGISTER_BATCH: usize = 10_000;

/// `name` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status, in bytes (0 where unavailable).
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Peak resident memory so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// The bank account recipient `i` registers.
pub fn recipient_account(i: usize) -> String {
    format!("622848{i:013}")
}

/// The set-up ledger.
pub struct Ledger {
    /// Holds the database; dropped at the end of the run.
    pub tmp: tempfile::TempDir,
    pub db: PathBuf,
    pub conn: DbConn,
    pub pii: PersonalDataKeys,
    pub town: SigningKey,
    pub pseudonyms: Vec<String>,
    /// The allocation TOWN pays from.
    pub alloc_seq: i64,
    pub today: String,
    pub period: String,
    /// Seconds spent registering the recipients.
    pub register_s: f64,
}

/// Sets up a ledger with `recipients_n` recipients and money for `payments_n` payments.
pub fn ledger(recipients_n: usize, payments_n: usize) -> Ledger {
    let tmp = tempfile::tempdir().expect("temp dir");
    let db = tmp.path().join("bench.db");
    let made = fundtrail::config::init(&db).expect("init");
    let admin = SigningKey::load(&made.operator_key_path).unwrap();
    let mut conn = fundtrail::config::open_existing(&db).unwrap();
    let pii = fundtrail::config::load_master_key(&db)
        .unwrap()
        .personal_data_keys();
    let prov = SigningKey::generate("PROV");
    let town = SigningKey::generate("TOWN");
    for (key, role, parent) in [
        (&prov, Role::FinanceBureau, None),
        (&town, Role::LocalOffice, Some("PROV")),
    ] {
        let payload = json!({"code": key.org, "name": key.org, "role": role, "parent": parent, "public_key": key.public_key_b64()});
        let (v, now) = sign_locally(&mut conn, &admin, "POST /api/v1/orgs", payload).unwrap();
        fundtrail::service::orgs::create(&mut conn, &v, now).unwrap();
    }
    let year = chrono::Datelike::year(&chrono::Utc::now());
    let today = chrono::Utc::now().date_naive().to_string();
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let program = json!({"code": PROGRAM, "name": "bench", "fiscal_year": year, "standard_amount": AMOUNT, "period_granularity": "month"});
    let (v, now) = sign_locally(&mut conn, &prov, "POST /api/v1/programs", program).unwrap();
    fundtrail::service::programs::create(&mut conn, &v, now).unwrap();

    let started = Instant::now();
    let mut pseudonyms = Vec::with_capacity(recipients_n);
    for chunk_start in (0..recipients_n).step_by(REGISTER_BATCH) {
        let list: Vec<_> = (chunk_start..(chunk_start + REGISTER_BATCH).min(recipients_n))
            .map(|i| {
                let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
                    + chrono::Days::new((i / 1000) as u64);
                let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), i % 1000);
                let id = format!("{first17}{}", fundtrail::idcard::check_char(&first17).unwrap());
                json!({"name": format!("R{i}"), "id_number": id, "bank_account": recipient_account(i)})
            })
            .collect();
        let (v, now) = sign_locally(
            &mut conn,
            &town,
            "POST /api/v1/recipients",
            json!({ "recipients": list }),
        )
        .unwrap();
        pseudonyms.extend(
            fundtrail::service::recipients::register(&mut conn, &pii, &v, now)
                .unwrap()
                .pseudonyms,
        );
    }
    assert_eq!(pseudonyms.len(), recipients_n);
    let register_s = started.elapsed().as_secs_f64();

    let total = format!("{}.00", payments_n * 100 + 100);
    let budget = EntryBody::new(
        EntryKind::Budget,
        PROGRAM,
        &year.to_string(),
        &total,
        "BUD",
        &today,
    )
    .to("PROV");
    let append_one = |conn: &mut DbConn, body: EntryBody| {
        let (v, now) =
            sign_locally(conn, &prov, ENTRIES_PURPOSE, json!({ "entries": [body] })).unwrap();
        append(conn, &v, now).unwrap().first_seq
    };
    let budget_seq = append_one(&mut conn, budget);
    let alloc_seq = append_one(
        &mut conn,
        EntryBody::new(
            EntryKind::Allocation,
            PROGRAM,
            &period,
            &total,
            "ALC",
            &today,
        )
        .source(budget_seq)
        .from("PROV")
        .to("TOWN"),
    );
    Ledger {
        tmp,
        db,
        conn,
        pii,
        town,
        pseudonyms,
        alloc_seq,
        today,
        period,
        register_s,
    }
}
