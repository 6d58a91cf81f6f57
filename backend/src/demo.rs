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
//!
//! The [`Loader`]'s steps are public so that `make bench` can time them one by one, each in a
//! process of its own: every step streams its CSVs (a province's million rows never sit in
//! memory), and a loader [`Loader::open`]ed on a database loaded by another process finds the
//! org keys in the credentials folder and what each org received on the ledger.

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
use std::collections::HashMap;
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

/// One scenario directory, its `scenario.json` read.
#[derive(Debug)]
pub struct ScenarioDir {
    path: PathBuf,
    file: ScenarioFile,
}

impl ScenarioDir {
    /// Reads `path/scenario.json`.
    pub fn open(path: &Path) -> AppResult<ScenarioDir> {
        let json = path.join("scenario.json");
        let text = std::fs::read_to_string(&json)
            .map_err(|e| AppError::internal(format!("{}: {e}", json.display())))?;
        let file = serde_json::from_str(&text)
            .map_err(|e| AppError::internal(format!("{}: {e}", json.display())))?;
        Ok(ScenarioDir {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The program's code.
    pub fn program(&self) -> &str {
        &self.file.program.code
    }

    /// The bank statement files, each office's main statement before a later, overlapping one.
    pub fn statement_files(&self) -> AppResult<Vec<PathBuf>> {
        let dir = self.path.join("statements");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(list) => list
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x != "md"))
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort_by_key(|p| {
            let name = file_name(p);
            (name.contains("late"), name)
        });
        Ok(files)
    }

    fn payroll_files(&self) -> AppResult<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map_err(|e| AppError::internal(format!("{}: {e}", self.path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = file_name(p);
                n.starts_with("payroll-") && n.ends_with(".csv")
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
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

/// A CSV file read one row at a time, fields found by header name.
struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    headers: HashMap<String, usize>,
    record: csv::StringRecord,
}

/// One row of a [`CsvRows`]; a column the file lacks reads as empty.
struct Row<'a> {
    headers: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|i| self.record.get(*i))
            .unwrap_or("")
    }
    /// The column, or `None` when empty or absent.
    fn opt(&self, name: &str) -> Option<&str> {
        Some(self.get(name)).filter(|v| !v.is_empty())
    }
}

impl CsvRows {
    fn open(path: &Path) -> AppResult<CsvRows> {
        let bad = |e: csv::Error| AppError::internal(format!("{}: {e}", path.display()));
        let mut reader = csv::Reader::from_path(path).map_err(bad)?;
        let headers = reader
            .headers()
            .map_err(bad)?
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        Ok(CsvRows {
            path: path.to_path_buf(),
            reader,
            headers,
            record: csv::StringRecord::new(),
        })
    }

    /// Absent files have no rows.
    fn open_if_present(path: &Path) -> AppResult<Option<CsvRows>> {
        if path.exists() {
            Self::open(path).map(Some)
        } else {
            Ok(None)
        }
    }

    fn next(&mut self) -> AppResult<Option<Row<'_>>> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| AppError::internal(format!("{}: {e}", self.path.display())))?;
        Ok(more.then_some(Row {
            headers: &self.headers,
            record: &self.record,
        }))
    }
}

fn amount(text: &str) -> AppResult<String> {
    parse_amount_lenient(text, 2)
        .map(|m| format_minor(m, 2))
        .map_err(|e| AppError::internal(format!("demo amount {text}: {e}")))
}

fn append_as(
    conn: &mut DbConn,
    key: &SigningKey,
    bodies: &[EntryBody],
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
    let mut conn = config::open_existing(db_path)?;
    let first = CsvRows::open(&fixtures.join("orgs.csv"))?
        .next()?
        .map(|r| r.get("code").to_string())
        .unwrap_or_default();
    let present: i64 = orgs_table::table
        .filter(orgs_table::code.eq(&first))
        .count()
        .get_result(&mut conn)?;
    if present > 0 {
        return Ok(DemoSummary {
            loaded: false,
            orgs: 0,
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
    let mut loader = Loader::open(db_path)?;
    let (mut orgs, mut recipients) = (0, 0);
    let mut dir = fixtures.to_path_buf();
    loop {
        let scenario = ScenarioDir::open(&dir)?;
        orgs += loader.orgs(&mut conn, &scenario)?;
        recipients += loader.register(&mut conn, &scenario)?;
        loader.allocate(&mut conn, &scenario)?;
        loader.disburse(&mut conn, &scenario)?;
        loader.correct(&mut conn, &scenario)?;
        loader.import(&mut conn, &scenario, &mut |_| {})?;
        loader.complaints(&mut conn, &scenario)?;
        dir = dir.join("scenario");
        if !dir.join("orgs.csv").exists() {
            break;
        }
    }
    let head = crate::ledger::read::head(&mut conn)?;
    Ok(DemoSummary {
        loaded: true,
        orgs,
        recipients,
        entries: head.seq,
        credentials_dir,
    })
}

/// Loads scenario directories step by step, each org signing with its own key.
pub struct Loader {
    operator: SigningKey,
    keys: crate::crypto::PersonalDataKeys,
    files: crate::filestore::FileStore,
    /// Org keys made by [`Loader::orgs`] or read back from `credentials_dir`.
    org_keys: HashMap<String, SigningKey>,
    credentials_dir: PathBuf,
    /// (program, org) -> the seq of the budget or allocation the org received, which it draws on.
    received: HashMap<(String, String), i64>,
}

impl Loader {
    /// A loader over an initialised database (its operator key, master key and file store).
    pub fn open(db_path: &Path) -> AppResult<Loader> {
        let master = config::load_master_key(db_path)?;
        Ok(Loader {
            operator: SigningKey::load(&data_dir(db_path).join("operator.key"))
                .map_err(AppError::internal)?,
            keys: master.personal_data_keys(),
            files: crate::filestore::FileStore::open(
                &config::files_dir(db_path),
                master.file_store_secret(),
            )
            .map_err(|e| AppError::internal(format!("statement file store: {e}")))?,
            org_keys: HashMap::new(),
            credentials_dir: data_dir(db_path).join("demo"),
            received: HashMap::new(),
        })
    }

    /// The org keys for a client thread: those at hand, and any other read from the
    /// credentials folder.
    fn keyring(&self) -> KeyRing<'_> {
        KeyRing {
            known: &self.org_keys,
            loaded: HashMap::new(),
            dir: &self.credentials_dir,
        }
    }

    fn key_of(&mut self, code: &str) -> AppResult<&SigningKey> {
        if !self.org_keys.contains_key(code) {
            let path = self.credentials_dir.join(code).join("key");
            let key = SigningKey::load(&path)
                .map_err(|e| AppError::internal(format!("demo org {code}: {e}")))?;
            self.org_keys.insert(code.to_string(), key);
        }
        Ok(&self.org_keys[code])
    }

    fn id_pseudonym(&self, id_number: &str) -> AppResult<String> {
        let id =
            crate::idcard::validate(id_number).map_err(|e| AppError::internal(e.to_string()))?;
        Ok(self.keys.pseudonym(&id))
    }

    /// The seq of the latest budget or allocation `org` received in `program`.
    fn received(&mut self, conn: &mut DbConn, program: &str, org: &str) -> AppResult<i64> {
        let key = (program.to_string(), org.to_string());
        if let Some(seq) = self.received.get(&key) {
            return Ok(*seq);
        }
        use fundtrail_schema::schema::programs as pr;
        let program_id: i64 = pr::table
            .filter(pr::code.eq(program))
            .select(pr::id)
            .first(conn)?;
        let org_id: i64 = orgs_table::table
            .filter(orgs_table::code.eq(org))
            .select(orgs_table::id)
            .first(conn)?;
        let seq = received_seq(conn, program_id, org_id)?;
        let seq = seq.ok_or_else(|| {
            AppError::internal(format!("{org} has received nothing in {program}"))
        })?;
        self.received.insert(key, seq);
        Ok(seq)
    }

    /// Orgs (each with a fresh key and token written to the credentials folder), the program,
    /// and the offices' program bank accounts. Returns how many orgs it created.
    pub fn orgs(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let mut rows = CsvRows::open(&dir.path.join("orgs.csv"))?;
        let mut created = 0;
        while let Some(row) = rows.next()? {
            let code = row.get("code").to_string();
            let key = SigningKey::generate(&code);
            let payload = json!({"code": code, "name": row.get("name"), "role": row.get("role"),
                "parent": row.opt("parent"), "public_key": key.public_key_b64()});
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
            created += 1;
        }

        let p = &dir.file.program;
        let payload = json!({
            "code": p.code, "name": p.name, "fiscal_year": p.fiscal_year, "currency": p.currency,
            "standard_amount": p.standard_amount, "period_granularity": p.period_granularity
        });
        let owner = p.owner.clone();
        submit(
            conn,
            self.key_of(&owner)?,
            "POST /api/v1/programs",
            payload,
            programs::create,
        )?;

        if let Some(mut rows) = CsvRows::open_if_present(&dir.path.join("accounts.csv"))? {
            while let Some(a) = rows.next()? {
                let office = a.get("org").to_string();
                let payload = json!({"org": office, "account": a.get("account"),
                    "currency": a.get("currency"), "label": a.get("label")});
                submit(
                    conn,
                    self.key_of(&office)?,
                    crate::statements::accounts::ACCOUNTS_PURPOSE,
                    payload,
                    crate::statements::accounts::register,
                )?;
            }
        }
        Ok(created)
    }

    /// Recipients, registered by their offices in signed batches (`POST /api/v1/recipients`),
    /// their personal data sealed. A batch ends at the batch limit or where the office changes.
    /// Returns how many were registered.
    pub fn register(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let path = dir.path.join("recipients.csv");
        let mut keyring = self.keyring();
        let keys = &self.keys;
        let mut registered = 0;
        client_server(
            |send| {
                let mut rows = CsvRows::open(&path)?;
                let mut batch: Vec<Value> = Vec::with_capacity(BATCH_MAX);
                let mut office = String::new();
                loop {
                    let row = rows.next()?;
                    let next_office = row.as_ref().map(|r| r.get("office"));
                    if !batch.is_empty()
                        && (next_office != Some(&office) || batch.len() == BATCH_MAX)
                    {
                        let payload = json!({ "recipients": std::mem::take(&mut batch) });
                        let request = sign(keyring.get(&office)?, RECIPIENTS_PURPOSE, payload)?;
                        if !send(request) {
                            return Ok(());
                        }
                    }
                    let Some(r) = row else { return Ok(()) };
                    if office != r.get("office") {
                        office = r.get("office").to_string();
                    }
                    let mut item = json!({
                        "name": r.get("name"), "id_number": r.get("id_number"),
                        "bank_account": r.get("bank_account"), "bank_name": r.get("bank_name"),
                        "status": r.get("status"), "status_date": r.opt("status_date"),
                    });
                    if let Some(e) = r.opt("entitlement") {
                        item["entitlement"] = json!(e);
                    }
                    batch.push(item);
                }
            },
            |request| {
                let (v, now) = signing::verify_locally(conn, RECIPIENTS_PURPOSE, request)?;
                registered += recipients::register(conn, keys, &v, now)?.pseudonyms.len();
                Ok(())
            },
        )?;
        Ok(registered)
    }

    /// The budget and the allocations down the tree; each org draws on what it received.
    /// Returns how many entries it appended.
    pub fn allocate(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let program = dir.program().to_string();
        let mut rows = CsvRows::open(&dir.path.join("allocations.csv"))?;
        let mut appended = 0;
        while let Some(a) = rows.next()? {
            let (from, to) = (a.get("from").to_string(), a.get("to").to_string());
            let kind = if from.is_empty() {
                EntryKind::Budget
            } else {
                EntryKind::Allocation
            };
            let body = EntryBody::new(
                kind,
                &program,
                a.get("period"),
                &amount(a.get("amount"))?,
                a.get("reference"),
                a.get("value_date"),
            )
            .memo(a.get("memo"))
            .to(&to);
            let (author, body) = if from.is_empty() {
                (to.clone(), body)
            } else {
                let source = self.received(conn, &program, &from)?;
                (from.clone(), body.from(&from).source(source))
            };
            let key = self.key_of(&author)?;
            let out = append_as(conn, key, &[body])?;
            self.received.insert((program.clone(), to), out.first_seq);
            appended += 1;
        }
        Ok(appended)
    }

    /// The payroll (`payroll-*.csv`), in signed batches per office, each drawing on what the
    /// office received. A batch ends at the batch limit or where the office changes. Returns
    /// how many disbursements it appended.
    pub fn disburse(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let program = dir.program().to_string();
        let (period, pay_date) = (dir.file.period.clone(), dir.file.pay_date.clone());
        // What each office draws on, looked up before the client thread starts.
        let directory = crate::ledger::read::Directory::load(conn)?;
        let program_id = directory
            .program_by_code(&program)
            .ok_or_else(|| AppError::internal(format!("program {program} is not registered")))?
            .id;
        let mut sources = HashMap::new();
        for org in directory.orgs() {
            if let Some(seq) = received_seq(conn, program_id, org.id)? {
                sources.insert(org.code.clone(), seq);
            }
        }
        let files = dir.payroll_files()?;
        let mut keyring = self.keyring();
        let keys = &self.keys;
        let mut appended = 0;
        client_server(
            |send| {
                for file in &files {
                    let mut rows = CsvRows::open(file)?;
                    let mut batch: Vec<EntryBody> = Vec::with_capacity(BATCH_MAX);
                    let (mut office, mut source) = (String::new(), 0);
                    loop {
                        let row = rows.next()?;
                        let next_office = row.as_ref().map(|r| r.get("office"));
                        if !batch.is_empty()
                            && (next_office != Some(&office) || batch.len() == BATCH_MAX)
                        {
                            let payload = json!({ "entries": &batch });
                            batch.clear();
                            if !send(sign(keyring.get(&office)?, ENTRIES_PURPOSE, payload)?) {
                                return Ok(());
                            }
                        }
                        let Some(row) = row else { break };
                        if office != row.get("office") {
                            office = row.get("office").to_string();
                            source = *sources.get(&office).ok_or_else(|| {
                                AppError::internal(format!("{office} has no allocation"))
                            })?;
                        }
                        let id = crate::idcard::validate(row.get("id_number"))
                            .map_err(|e| AppError::internal(e.to_string()))?;
                        batch.push(
                            EntryBody::new(
                                EntryKind::Disbursement,
                                &program,
                                &period,
                                &amount(row.get("amount"))?,
                                row.get("reference"),
                                row.opt("value_date").unwrap_or(&pay_date),
                            )
                            .from(&office)
                            .source(source)
                            .recipient(&keys.pseudonym(&id))
                            .memo(row.get("memo")),
                        );
                    }
                }
                Ok(())
            },
            |request| {
                let (v, now) = signing::verify_locally(conn, ENTRIES_PURPOSE, request)?;
                appended += append(conn, &v, now)?.count;
                Ok(())
            },
        )?;
        Ok(appended)
    }

    /// Corrections (reverse the mistaken payment, pay the right amount) and the registry news
    /// that arrives after the money went out (a death reported late). Returns the entries
    /// appended.
    pub fn correct(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let program = dir.program().to_string();
        let period = dir.file.period.clone();
        let date = dir
            .file
            .correction_date
            .clone()
            .unwrap_or_else(|| dir.file.pay_date.clone());
        let mut appended = 0;
        if let Some(mut rows) = CsvRows::open_if_present(&dir.path.join("corrections.csv"))? {
            while let Some(c) = rows.next()? {
                let office = c.get("office").to_string();
                let wrong = c.get("reverse_reference").to_string();
                let (seq, amount_minor) = paid(conn, &program, &wrong)?;
                let reversal = EntryBody::new(
                    EntryKind::Reversal,
                    &program,
                    &period,
                    &format_minor(amount_minor, 2),
                    &format!("{wrong}-REV"),
                    &date,
                )
                .source(seq)
                .memo("更正：金额录入错误");
                let repay = EntryBody::new(
                    EntryKind::Disbursement,
                    &program,
                    &period,
                    &amount(c.get("amount"))?,
                    c.get("reference"),
                    &date,
                )
                .from(&office)
                .source(self.received(conn, &program, &office)?)
                .recipient(&self.id_pseudonym(c.get("id_number"))?)
                .memo(c.get("memo"));
                let key = self.key_of(&office)?;
                append_as(conn, key, &[reversal])?;
                let key = self.key_of(&office)?;
                append_as(conn, key, &[repay])?;
                appended += 2;
            }
        }
        if let Some(mut rows) = CsvRows::open_if_present(&dir.path.join("status-updates.csv"))? {
            while let Some(u) = rows.next()? {
                let pseudonym = self.id_pseudonym(u.get("id_number"))?;
                let path = format!("POST /api/v1/recipients/{pseudonym}/status");
                let payload =
                    json!({"status": u.get("status"), "status_date": u.get("status_date")});
                let office = u.get("office").to_string();
                submit(conn, self.key_of(&office)?, &path, payload, |c, v, now| {
                    recipients::set_status(c, v, &pseudonym, now)
                })?;
            }
        }
        Ok(appended)
    }

    /// The bank statements, each uploaded by the office it is named after (`statements/`), as
    /// `POST /api/v1/statements` would import it. `progress` gets each file's bytes read.
    /// Returns how many files it imported.
    pub fn import(
        &mut self,
        conn: &mut DbConn,
        dir: &ScenarioDir,
        progress: &mut dyn FnMut(u64),
    ) -> AppResult<usize> {
        let accounts = match CsvRows::open_if_present(&dir.path.join("accounts.csv"))? {
            Some(mut rows) => {
                let mut map = HashMap::new();
                while let Some(a) = rows.next()? {
                    map.insert(a.get("org").to_string(), a.get("account").to_string());
                }
                map
            }
            None => HashMap::new(),
        };
        let files = dir.statement_files()?;
        for path in &files {
            let name = file_name(path);
            let office = name.split('.').next().unwrap_or_default().to_string();
            self.key_of(&office)?;
            crate::statements::import::import_local(
                conn,
                &self.keys,
                &self.files,
                &self.org_keys[&office],
                crate::statements::import::LocalFile {
                    path,
                    format: "auto",
                    account: accounts.get(&office).map(String::as_str),
                },
                progress,
            )?;
        }
        Ok(files.len())
    }

    /// Complaints, as the recipients would file them: dated (`filed_on`, else two weeks after
    /// pay day) so that a report as of a given day sees the same complaints whenever run.
    /// Returns how many were filed.
    pub fn complaints(&mut self, conn: &mut DbConn, dir: &ScenarioDir) -> AppResult<usize> {
        let pay_date = crate::domain::parse_date(&dir.file.pay_date)
            .ok_or_else(|| AppError::internal("scenario pay_date is not a date"))?;
        let Some(mut rows) = CsvRows::open_if_present(&dir.path.join("complaints.csv"))? else {
            return Ok(0);
        };
        let mut filed = 0;
        while let Some(c) = rows.next()? {
            let filed_on = match c.opt("filed_on") {
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
                program: dir.program().to_string(),
                reference: c.get("reference").to_string(),
                id_number: c.get("id_number").to_string(),
                kind: c.get("kind").to_string(),
                amount_received: c.opt("amount_received").map(str::to_string),
            };
            crate::reconcile::complaints::file(conn, &self.keys, &req, "demo", filed_at)?;
            filed += 1;
        }
        Ok(filed)
    }
}

/// The purpose `POST /api/v1/recipients` signs.
const RECIPIENTS_PURPOSE: &str = "POST /api/v1/recipients";

/// Signed requests a client thread may have ready ahead of the server side.
const CLIENT_AHEAD_MAX: usize = 2;

/// Org keys as a client thread sees them.
struct KeyRing<'a> {
    known: &'a HashMap<String, SigningKey>,
    loaded: HashMap<String, SigningKey>,
    dir: &'a Path,
}

impl KeyRing<'_> {
    fn get(&mut self, code: &str) -> AppResult<&SigningKey> {
        if let Some(key) = self.known.get(code) {
            return Ok(key);
        }
        if !self.loaded.contains_key(code) {
            let key = SigningKey::load(&self.dir.join(code).join("key"))
                .map_err(|e| AppError::internal(format!("demo org {code}: {e}")))?;
            self.loaded.insert(code.to_string(), key);
        }
        Ok(&self.loaded[code])
    }
}

fn sign(key: &SigningKey, purpose: &str, payload: Value) -> AppResult<signing::SignedRequest> {
    signing::SignedRequest::sign(key, purpose, payload)
        .map_err(|e| AppError::invalid("payload", e.to_string()))
}

/// Runs `client` — reading the files, building and signing requests, as an office's machine
/// does — on a thread of its own, while `server` verifies and writes each request here, so the
/// two overlap as they do across a network. `client` gets a `send` that returns false once the
/// server side has stopped. The server's error wins over the client's.
fn client_server<C, S>(client: C, mut server: S) -> AppResult<()>
where
    C: FnOnce(&mut dyn FnMut(signing::SignedRequest) -> bool) -> AppResult<()> + Send,
    S: FnMut(signing::SignedRequest) -> AppResult<()>,
{
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(CLIENT_AHEAD_MAX);
        let client = scope.spawn(move || client(&mut |request| tx.send(request).is_ok()));
        let mut served = Ok(());
        for request in rx.iter() {
            if let Err(e) = server(request) {
                served = Err(e);
                break;
            }
        }
        drop(rx);
        let sent = client
            .join()
            .unwrap_or_else(|_| Err(AppError::internal("the client thread panicked")));
        served.and(sent)
    })
}

/// The seq of the latest budget or allocation org `org_id` received in program `program_id`
/// (on the narrow `to_org_id` index: given the program alone, SQLite walks all its entries).
fn received_seq(conn: &mut DbConn, program_id: i64, org_id: i64) -> AppResult<Option<i64>> {
    use fundtrail_schema::schema::ledger_entries as le;
    Ok(le::table
        .filter(le::to_org_id.eq(org_id))
        .filter(le::program_id.eq(program_id))
        .filter(le::kind.eq_any(["budget", "allocation"]))
        .select(diesel::dsl::max(le::seq))
        .first(conn)?)
}

/// The seq and amount of the payment `reference` in `program`.
fn paid(conn: &mut DbConn, program: &str, reference: &str) -> AppResult<(i64, i64)> {
    use fundtrail_schema::schema::{ledger_entries as le, programs as pr};
    le::table
        .inner_join(pr::table)
        .filter(pr::code.eq(program))
        .filter(le::reference.eq(reference))
        .select((le::seq, le::amount_minor))
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::internal(format!("correction of an unknown payment {reference}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &SigningKey, i: usize) -> signing::SignedRequest {
        sign(key, "test", json!({ "i": i })).unwrap()
    }

    #[test]
    fn the_server_sides_error_stops_the_client_and_wins() {
        let key = SigningKey::generate("OFFICE");
        let mut sent = 0;
        let mut served = Vec::new();
        let result = client_server(
            |send| {
                for i in 0..1000 {
                    sent += 1;
                    if !send(request(&key, i)) {
                        return Err(AppError::internal("client saw the server stop"));
                    }
                }
                Ok(())
            },
            |r| {
                served.push(r.payload["i"].as_u64().unwrap());
                if served.len() == 3 {
                    return Err(AppError::internal("disk full"));
                }
                Ok(())
            },
        );
        assert_eq!(result.unwrap_err().to_string(), "internal: disk full");
        assert_eq!(served, [0, 1, 2], "requests are served in order");
        assert!(
            sent <= 3 + CLIENT_AHEAD_MAX + 1,
            "the client stopped soon after: sent {sent}"
        );
    }

    #[test]
    fn the_client_sides_error_is_returned_after_what_it_sent_is_served() {
        let key = SigningKey::generate("OFFICE");
        let mut served = 0;
        let result = client_server(
            |send| {
                for i in 0..5 {
                    assert!(send(request(&key, i)));
                }
                Err(AppError::internal("payroll.csv: line 7: bad amount"))
            },
            |_| {
                served += 1;
                Ok(())
            },
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "internal: payroll.csv: line 7: bad amount"
        );
        assert_eq!(served, 5);
    }
}
