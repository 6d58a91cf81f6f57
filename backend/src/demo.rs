//! The demo: a 城乡低保 program at a provincial finance bureau, allocated through two cities
//! and four county offices to eight townships that pay a month of benefits, with one
//! correction. Loaded from `fixtures/demo/` through the same signed-request and service
//! calls the HTTP API makes, each org signing with its own freshly generated key.

use crate::config::{self, data_dir};
use crate::crypto::SigningKey;
use crate::db::DbConn;
use crate::domain::{EntryKind, Micros};
use crate::error::{AppError, AppResult};
use crate::ledger::append::{append, AppendOutcome};
use crate::ledger::{EntryBody, ENTRIES_PURPOSE};
use crate::money::{format_minor, parse_amount_lenient};
use crate::service::{orgs, programs, recipients};
use crate::signing::{self, Verified};
use diesel::prelude::*;
use fundtrail_schema::schema::orgs as orgs_table;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The demo program's code.
pub const PROGRAM: &str = "DIBAO-2026";
const PERIOD: &str = "2026-11";
const PAY_DATE: &str = "2026-11-10";
const CORRECTION_DATE: &str = "2026-11-12";

/// What loading did.
#[derive(Debug)]
pub struct DemoSummary {
    /// False when the demo was already there and nothing was written.
    pub loaded: bool,
    pub orgs: usize,
    pub recipients: usize,
    pub entries: i64,
    /// `<data dir>/demo`: one folder per org with its `token` and `key`.
    pub credentials_dir: PathBuf,
}

fn submit<T>(
    conn: &mut DbConn,
    key: &SigningKey,
    purpose: &str,
    payload: Value,
    write: impl FnOnce(&mut DbConn, &Verified, Micros) -> AppResult<T>,
) -> AppResult<T> {
    let (verified, now) = signing::sign_locally(conn, key, purpose, payload)?;
    write(conn, &verified, now)
}

fn read_csv(path: &Path) -> AppResult<Vec<HashMap<String, String>>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

fn amount(text: &str) -> AppResult<String> {
    parse_amount_lenient(text, 2)
        .map(|m| format_minor(m, 2))
        .map_err(|e| AppError::internal(format!("demo amount {text}: {e}")))
}

fn append_as(
    conn: &mut DbConn,
    key: &SigningKey,
    bodies: Vec<EntryBody>,
) -> AppResult<AppendOutcome> {
    submit(
        conn,
        key,
        ENTRIES_PURPOSE,
        json!({ "entries": bodies }),
        append,
    )
}

/// Loads the demo into `db_path` (initialising it if needed). Does nothing if already loaded.
pub fn load(db_path: &Path, fixtures: &Path) -> AppResult<DemoSummary> {
    if !config::is_initialized(db_path)? {
        config::init(db_path)?;
    }
    let credentials_dir = data_dir(db_path).join("demo");
    let org_rows = read_csv(&fixtures.join("orgs.csv"))?;
    let mut conn = config::open_existing(db_path)?;
    let first = org_rows
        .first()
        .map(|r| r["code"].clone())
        .unwrap_or_default();
    let present: i64 = orgs_table::table
        .filter(orgs_table::code.eq(&first))
        .count()
        .get_result(&mut conn)?;
    if present > 0 {
        return Ok(DemoSummary {
            loaded: false,
            orgs: org_rows.len(),
            recipients: 0,
            entries: 0,
            credentials_dir,
        });
    }
    // Never mix demo orgs and money into a database that is in real use.
    let others: i64 = orgs_table::table
        .filter(orgs_table::code.ne(config::OPERATOR_CODE))
        .count()
        .get_result(&mut conn)?;
    if others > 0 {
        return Err(AppError::new(
            crate::error::ErrorCode::AlreadyExists,
            format!(
                "{} already holds {others} orgs that are not the demo's; the demo loads only into a fresh database",
                db_path.display()
            ),
        ));
    }
    let operator =
        SigningKey::load(&data_dir(db_path).join("operator.key")).map_err(AppError::internal)?;
    let keys = config::load_master_key(db_path)?.personal_data_keys();

    // Orgs, each with its own key and token written next to the database.
    let mut org_keys: HashMap<String, SigningKey> = HashMap::new();
    for row in &org_rows {
        let code = row["code"].clone();
        let key = SigningKey::generate(&code);
        let parent = Some(row["parent"].clone()).filter(|p| !p.is_empty());
        let payload = json!({"code": code, "name": row["name"], "role": row["role"], "parent": parent, "public_key": key.public_key_b64()});
        submit(
            &mut conn,
            &operator,
            "POST /api/v1/orgs",
            payload,
            orgs::create,
        )?;
        let path = format!("POST /api/v1/orgs/{code}/tokens");
        let issued = submit(
            &mut conn,
            &operator,
            &path,
            json!({"label": "demo"}),
            |c, v, now| orgs::create_token(c, v, &code, now),
        )?;
        let dir = credentials_dir.join(&code);
        let io =
            |e: std::io::Error| AppError::internal(format!("cannot write {}: {e}", dir.display()));
        key.save(&dir.join("key")).map_err(io)?;
        crate::crypto::write_secret_file(
            &dir.join("token"),
            format!("{}\n", issued.token).as_bytes(),
        )
        .map_err(io)?;
        org_keys.insert(code, key);
    }
    let key_of = |code: &str| {
        org_keys
            .get(code)
            .ok_or_else(|| AppError::internal(format!("demo org {code} missing")))
    };

    let program = json!({
        "code": PROGRAM, "name": "城乡居民最低生活保障（城乡低保）", "fiscal_year": 2026, "currency": "CNY",
        "standard_amount": "780.00", "period_granularity": "month"
    });
    submit(
        &mut conn,
        key_of("FIN-PROV")?,
        "POST /api/v1/programs",
        program,
        programs::create,
    )?;

    // Recipients, registered by their township offices.
    let mut by_office: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let recipient_rows = read_csv(&fixtures.join("recipients.csv"))?;
    for r in &recipient_rows {
        let status_date = Some(r["status_date"].clone()).filter(|d| !d.is_empty());
        by_office
            .entry(r["office"].clone())
            .or_default()
            .push(json!({
                "name": r["name"], "id_number": r["id_number"], "bank_account": r["bank_account"],
                "bank_name": r["bank_name"], "status": r["status"], "status_date": status_date,
            }));
    }
    for (office, list) in by_office {
        let k = key_of(&office)?;
        submit(
            &mut conn,
            k,
            "POST /api/v1/recipients",
            json!({"recipients": list}),
            |c, v, now| recipients::register(c, &keys, v, now),
        )?;
    }

    // The budget and the allocations down the tree; each org draws on what it received.
    let mut received: HashMap<String, i64> = HashMap::new();
    for a in read_csv(&fixtures.join("allocations.csv"))? {
        let (from, to) = (a["from"].as_str(), a["to"].as_str());
        let body = EntryBody::new(
            if from.is_empty() {
                EntryKind::Budget
            } else {
                EntryKind::Allocation
            },
            PROGRAM,
            &a["period"],
            &amount(&a["amount"])?,
            &a["reference"],
            &a["value_date"],
        )
        .memo(&a["memo"])
        .to(to);
        let (author, body) = if from.is_empty() {
            (to, body)
        } else {
            let source = *received
                .get(from)
                .ok_or_else(|| AppError::internal(format!("{from} has received nothing")))?;
            (from, body.from(from).source(source))
        };
        let out = append_as(&mut conn, key_of(author)?, vec![body])?;
        received.insert(to.to_string(), out.first_seq);
    }

    // A month of payroll, one signed batch per township office.
    let mut payroll: BTreeMap<String, Vec<EntryBody>> = BTreeMap::new();
    for p in read_csv(&fixtures.join("payroll-2026-11.csv"))? {
        let office = p["office"].clone();
        let source = *received
            .get(&office)
            .ok_or_else(|| AppError::internal(format!("{office} has no allocation")))?;
        let id = crate::idcard::validate(&p["id_number"])
            .map_err(|e| AppError::internal(e.to_string()))?;
        payroll.entry(office.clone()).or_default().push(
            EntryBody::new(
                EntryKind::Disbursement,
                PROGRAM,
                PERIOD,
                &amount(&p["amount"])?,
                &p["reference"],
                PAY_DATE,
            )
            .from(&office)
            .source(source)
            .recipient(&keys.pseudonym(&id))
            .memo(&p["memo"]),
        );
    }
    let mut paid: HashMap<String, (i64, String)> = HashMap::new();
    for (office, bodies) in payroll {
        let amounts: HashMap<String, String> = bodies
            .iter()
            .map(|b| (b.reference.clone(), b.amount.clone()))
            .collect();
        for e in append_as(&mut conn, key_of(&office)?, bodies)?.entries {
            let a = amounts[&e.reference].clone();
            paid.insert(e.reference, (e.seq, a));
        }
    }

    // Corrections: reverse the mistaken payment, pay the right amount.
    for c in read_csv(&fixtures.join("corrections.csv"))? {
        let office = c["office"].as_str();
        let (seq, wrong_amount) = paid
            .get(&c["reverse_reference"])
            .cloned()
            .ok_or_else(|| AppError::internal("correction of an unknown payment"))?;
        let id = crate::idcard::validate(&c["id_number"])
            .map_err(|e| AppError::internal(e.to_string()))?;
        let reversal = EntryBody::new(
            EntryKind::Reversal,
            PROGRAM,
            PERIOD,
            &wrong_amount,
            &format!("{}-REV", c["reverse_reference"]),
            CORRECTION_DATE,
        )
        .source(seq)
        .memo("更正：金额录入错误");
        append_as(&mut conn, key_of(office)?, vec![reversal])?;
        let repay = EntryBody::new(
            EntryKind::Disbursement,
            PROGRAM,
            PERIOD,
            &amount(&c["amount"])?,
            &c["reference"],
            CORRECTION_DATE,
        )
        .from(office)
        .source(received[office])
        .recipient(&keys.pseudonym(&id))
        .memo(&c["memo"]);
        append_as(&mut conn, key_of(office)?, vec![repay])?;
    }
    // The townships' program accounts and their November bank statements, which confirm the
    // payments and show the exceptions (see fixtures/demo/statements/README.md).
    let mut account_of: HashMap<String, String> = HashMap::new();
    for a in read_csv(&fixtures.join("accounts.csv"))? {
        let office = a["org"].clone();
        submit(
            &mut conn,
            key_of(&office)?,
            crate::statements::accounts::ACCOUNTS_PURPOSE,
            json!({"org": office, "account": a["account"], "currency": a["currency"], "label": a["label"]}),
            crate::statements::accounts::register,
        )?;
        account_of.insert(office, a["account"].clone());
    }
    let master = config::load_master_key(db_path)?;
    let files =
        crate::filestore::FileStore::open(&config::files_dir(db_path), master.file_store_secret())
            .map_err(|e| AppError::internal(format!("statement file store: {e}")))?;
    let dir = fixtures.join("statements");
    let mut statements: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| AppError::internal(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .collect();
    // Each office's main statement before the later, overlapping one.
    statements.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        (name.contains("late"), name)
    });
    for path in statements {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let office = name.split('.').next().unwrap_or_default().to_string();
        crate::statements::import::import_local(
            &mut conn,
            &keys,
            &files,
            key_of(&office)?,
            crate::statements::import::LocalFile {
                path: &path,
                format: "auto",
                account: account_of.get(&office).map(String::as_str),
            },
            &mut |_| {},
        )?;
    }

    let head = crate::ledger::read::head(&mut conn)?;
    Ok(DemoSummary {
        loaded: true,
        orgs: org_rows.len(),
        recipients: recipient_rows.len(),
        entries: head.seq,
        credentials_dir,
    })
}
