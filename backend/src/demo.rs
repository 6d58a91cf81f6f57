//! The demo: a 城乡低保 program at a provincial finance bureau, allocated through two cities
//! and four county offices to eight townships that pay a month of benefits, with one
//! correction and bank statements in seven formats (`fixtures/demo/`); and under the same
//! province a generated 高龄津贴 scenario with one or two cases of every leakage type
//! (`fixtures/demo/scenario/`, from `fundtrail-scenario`). Any directory in this layout loads
//! the same way, through the same signed-request and service calls the HTTP API makes, each
//! org signing with its own freshly generated key.
//!
//! Layout: `scenario.json` (program, period, pay date), `orgs.csv`, `recipients.csv`,
//! `allocations.csv`, `payroll-*.csv`, and optionally `corrections.csv`,
//! `status-updates.csv` (applied after the payments), `accounts.csv` + `statements/`,
//! `complaints.csv` (filed as the recipients would), and `scenario/` (loaded next).

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
/// The generated scenario's program code (under the same province).
pub const SCENARIO_PROGRAM: &str = "GAOLING-2026";

/// Recipients or payments per signed request (the API's batch limit).
const BATCH_MAX: usize = 10_000;

/// `scenario.json`: what the CSVs do not say.
#[derive(Debug, serde::Deserialize)]
struct ScenarioFile {
    period: String,
    pay_date: String,
    correction_date: Option<String>,
    program: ProgramFile,
}

#[derive(Debug, serde::Deserialize)]
struct ProgramFile {
    code: String,
    name: String,
    fiscal_year: i32,
    currency: String,
    standard_amount: String,
    period_granularity: String,
    owner: String,
}

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
    let master = config::load_master_key(db_path)?;
    let mut loader = Loader {
        operator: SigningKey::load(&data_dir(db_path).join("operator.key"))
            .map_err(AppError::internal)?,
        keys: master.personal_data_keys(),
        files: crate::filestore::FileStore::open(
            &config::files_dir(db_path),
            master.file_store_secret(),
        )
        .map_err(|e| AppError::internal(format!("statement file store: {e}")))?,
        org_keys: HashMap::new(),
        credentials_dir: credentials_dir.clone(),
        recipients: 0,
    };
    let mut orgs = 0;
    let mut dir = fixtures.to_path_buf();
    loop {
        orgs += loader.load_dir(&mut conn, &dir)?;
        dir = dir.join("scenario");
        if !dir.join("orgs.csv").exists() {
            break;
        }
    }
    let head = crate::ledger::read::head(&mut conn)?;
    Ok(DemoSummary {
        loaded: true,
        orgs,
        recipients: loader.recipients,
        entries: head.seq,
        credentials_dir,
    })
}

/// Loads scenario directories, keeping every org's key across them.
struct Loader {
    operator: SigningKey,
    keys: crate::crypto::PersonalDataKeys,
    files: crate::filestore::FileStore,
    org_keys: HashMap<String, SigningKey>,
    credentials_dir: PathBuf,
    recipients: usize,
}

impl Loader {
    fn key_of(&self, code: &str) -> AppResult<&SigningKey> {
        self.org_keys
            .get(code)
            .ok_or_else(|| AppError::internal(format!("demo org {code} missing")))
    }

    fn id_pseudonym(&self, id_number: &str) -> AppResult<String> {
        let id =
            crate::idcard::validate(id_number).map_err(|e| AppError::internal(e.to_string()))?;
        Ok(self.keys.pseudonym(&id))
    }

    /// Loads one directory; returns how many orgs it created.
    fn load_dir(&mut self, conn: &mut DbConn, dir: &Path) -> AppResult<usize> {
        let path = dir.join("scenario.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
        let scenario: ScenarioFile = serde_json::from_str(&text)
            .map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
        let program = scenario.program.code.clone();

        // Orgs, each with its own key and token written next to the database.
        let org_rows = read_csv(&dir.join("orgs.csv"))?;
        for row in &org_rows {
            let code = row["code"].clone();
            let key = SigningKey::generate(&code);
            let parent = Some(row["parent"].clone()).filter(|p| !p.is_empty());
            let payload = json!({"code": code, "name": row["name"], "role": row["role"], "parent": parent, "public_key": key.public_key_b64()});
            submit(
                conn,
                &self.operator,
                "POST /api/v1/orgs",
                payload,
                orgs::create,
            )?;
            let path = format!("POST /api/v1/orgs/{code}/tokens");
            let issued = submit(
                conn,
                &self.operator,
                &path,
                json!({"label": "demo"}),
                |c, v, now| orgs::create_token(c, v, &code, now),
            )?;
            let cred = self.credentials_dir.join(&code);
            let io = |e: std::io::Error| {
                AppError::internal(format!("cannot write {}: {e}", cred.display()))
            };
            key.save(&cred.join("key")).map_err(io)?;
            crate::crypto::write_secret_file(
                &cred.join("token"),
                format!("{}\n", issued.token).as_bytes(),
            )
            .map_err(io)?;
            self.org_keys.insert(code, key);
        }

        let p = &scenario.program;
        let payload = json!({
            "code": p.code, "name": p.name, "fiscal_year": p.fiscal_year, "currency": p.currency,
            "standard_amount": p.standard_amount, "period_granularity": p.period_granularity
        });
        submit(
            conn,
            self.key_of(&p.owner)?,
            "POST /api/v1/programs",
            payload,
            programs::create,
        )?;

        // Recipients, registered by their offices.
        let mut by_office: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let recipient_rows = read_csv(&dir.join("recipients.csv"))?;
        for r in &recipient_rows {
            let status_date = Some(r["status_date"].clone()).filter(|d| !d.is_empty());
            let entitlement = r.get("entitlement").filter(|e| !e.is_empty());
            let mut item = json!({
                "name": r["name"], "id_number": r["id_number"], "bank_account": r["bank_account"],
                "bank_name": r["bank_name"], "status": r["status"], "status_date": status_date,
            });
            if let Some(e) = entitlement {
                item["entitlement"] = json!(e);
            }
            by_office.entry(r["office"].clone()).or_default().push(item);
        }
        self.recipients += recipient_rows.len();
        for (office, list) in by_office {
            for chunk in list.chunks(BATCH_MAX) {
                let keys = &self.keys;
                submit(
                    conn,
                    self.key_of(&office)?,
                    "POST /api/v1/recipients",
                    json!({"recipients": chunk}),
                    |c, v, now| recipients::register(c, keys, v, now),
                )?;
            }
        }

        // The budget and the allocations down the tree; each org draws on what it received.
        let mut received: HashMap<String, i64> = HashMap::new();
        for a in read_csv(&dir.join("allocations.csv"))? {
            let (from, to) = (a["from"].as_str(), a["to"].as_str());
            let kind = if from.is_empty() {
                EntryKind::Budget
            } else {
                EntryKind::Allocation
            };
            let body = EntryBody::new(
                kind,
                &program,
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
            let out = append_as(conn, self.key_of(author)?, vec![body])?;
            received.insert(to.to_string(), out.first_seq);
        }

        // The payroll, in signed batches per office.
        let mut payroll: BTreeMap<String, Vec<EntryBody>> = BTreeMap::new();
        let mut payroll_files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| AppError::internal(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("payroll-") && n.ends_with(".csv"))
            })
            .collect();
        payroll_files.sort();
        for file in payroll_files {
            for row in read_csv(&file)? {
                let office = row["office"].clone();
                let source = *received
                    .get(&office)
                    .ok_or_else(|| AppError::internal(format!("{office} has no allocation")))?;
                let date = row
                    .get("value_date")
                    .filter(|d| !d.is_empty())
                    .unwrap_or(&scenario.pay_date);
                let body = EntryBody::new(
                    EntryKind::Disbursement,
                    &program,
                    &scenario.period,
                    &amount(&row["amount"])?,
                    &row["reference"],
                    date,
                )
                .from(&office)
                .source(source)
                .recipient(&self.id_pseudonym(&row["id_number"])?)
                .memo(&row["memo"]);
                payroll.entry(office).or_default().push(body);
            }
        }
        let mut paid: HashMap<String, (i64, String)> = HashMap::new();
        for (office, bodies) in payroll {
            for chunk in bodies.chunks(BATCH_MAX) {
                let amounts: HashMap<String, String> = chunk
                    .iter()
                    .map(|b| (b.reference.clone(), b.amount.clone()))
                    .collect();
                for e in append_as(conn, self.key_of(&office)?, chunk.to_vec())?.entries {
                    let a = amounts[&e.reference].clone();
                    paid.insert(e.reference, (e.seq, a));
                }
            }
        }

        // Corrections: reverse the mistaken payment, pay the right amount.
        let corrections = dir.join("corrections.csv");
        let correction_date = scenario
            .correction_date
            .as_deref()
            .unwrap_or(&scenario.pay_date);
        for c in read_csv_if_present(&corrections)? {
            let office = c["office"].as_str();
            let (seq, wrong_amount) = paid
                .get(&c["reverse_reference"])
                .cloned()
                .ok_or_else(|| AppError::internal("correction of an unknown payment"))?;
            let reversal = EntryBody::new(
                EntryKind::Reversal,
                &program,
                &scenario.period,
                &wrong_amount,
                &format!("{}-REV", c["reverse_reference"]),
                correction_date,
            )
            .source(seq)
            .memo("更正：金额录入错误");
            append_as(conn, self.key_of(office)?, vec![reversal])?;
            let repay = EntryBody::new(
                EntryKind::Disbursement,
                &program,
                &scenario.period,
                &amount(&c["amount"])?,
                &c["reference"],
                correction_date,
            )
            .from(office)
            .source(received[office])
            .recipient(&self.id_pseudonym(&c["id_number"])?)
            .memo(&c["memo"]);
            append_as(conn, self.key_of(office)?, vec![repay])?;
        }

        // Registry news that arrives after the money went out (a death reported late).
        for u in read_csv_if_present(&dir.join("status-updates.csv"))? {
            let pseudonym = self.id_pseudonym(&u["id_number"])?;
            let path = format!("POST /api/v1/recipients/{pseudonym}/status");
            submit(
                conn,
                self.key_of(&u["office"])?,
                &path,
                json!({"status": u["status"], "status_date": u["status_date"]}),
                |c, v, now| recipients::set_status(c, v, &pseudonym, now),
            )?;
        }

        // The offices' program accounts and their bank statements.
        let mut account_of: HashMap<String, String> = HashMap::new();
        for a in read_csv_if_present(&dir.join("accounts.csv"))? {
            let office = a["org"].clone();
            submit(
                conn,
                self.key_of(&office)?,
                crate::statements::accounts::ACCOUNTS_PURPOSE,
                json!({"org": office, "account": a["account"], "currency": a["currency"], "label": a["label"]}),
                crate::statements::accounts::register,
            )?;
            account_of.insert(office, a["account"].clone());
        }
        let statements_dir = dir.join("statements");
        let mut statements: Vec<PathBuf> = match std::fs::read_dir(&statements_dir) {
            Ok(list) => list
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x != "md"))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Each office's main statement before a later, overlapping one.
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
                conn,
                &self.keys,
                &self.files,
                self.key_of(&office)?,
                crate::statements::import::LocalFile {
                    path: &path,
                    format: "auto",
                    account: account_of.get(&office).map(String::as_str),
                },
                &mut |_| {},
            )?;
        }

        // Complaints, as the recipients would file them: dated (`filed_on`, else two weeks after
        // pay day) so that a report as of a given day sees the same complaints whenever run.
        let pay_date = crate::domain::parse_date(&scenario.pay_date)
            .ok_or_else(|| AppError::internal("scenario pay_date is not a date"))?;
        for c in read_csv_if_present(&dir.join("complaints.csv"))? {
            let filed_on = match c.get("filed_on").filter(|d| !d.is_empty()) {
                Some(d) => crate::domain::parse_date(d)
                    .ok_or_else(|| AppError::internal(format!("complaint filed_on {d}")))?,
                None => pay_date + chrono::Days::new(14),
            };
            let filed_at = filed_on
                .and_hms_opt(12, 0, 0)
                .expect("noon exists")
                .and_utc()
                .timestamp_micros();
            let req = crate::reconcile::complaints::ComplaintRequest {
                program: program.clone(),
                reference: c["reference"].clone(),
                id_number: c["id_number"].clone(),
                kind: c["kind"].clone(),
                amount_received: c.get("amount_received").filter(|a| !a.is_empty()).cloned(),
            };
            crate::reconcile::complaints::file(conn, &self.keys, &req, "demo", filed_at)?;
        }
        Ok(org_rows.len())
    }
}

fn read_csv_if_present(path: &Path) -> AppResult<Vec<HashMap<String, String>>> {
    if path.exists() {
        read_csv(path)
    } else {
        Ok(Vec::new())
    }
}
