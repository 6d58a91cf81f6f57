//! `TestApp`: a real Fundtrail server on a loopback port over a fresh database, and helpers so
//! that tests read like a user's session ("the county office allocates 500.00 to the town").

pub mod browser;

use chrono::Datelike;
use fundtrail::client::Client;
use fundtrail::crypto::SigningKey;
use fundtrail::db::DbConn;
use fundtrail::domain::{EntryKind, Role};
use fundtrail::error::AppError;
use fundtrail::ledger::append::AppendOutcome;
use fundtrail::ledger::verify::{self, DbCopy, VerifyReport};
use fundtrail::ledger::EntryBody;
use fundtrail::signing::SignedRequest;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// An org as a test drives it: its code, API token and private key.
#[derive(Clone)]
pub struct Org {
    pub code: String,
    pub token: String,
    pub key: Arc<SigningKey>,
}

/// A running service over its own temporary database.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub base: String,
    /// The operator's admin org, created by `init`.
    pub admin: Org,
    agent: ureq::Agent,
}

/// A response as raw status and JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The stable error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// The `fundtrail` binary that `make test` builds before running the tests.
pub fn fundtrail_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/fundtrail");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --bins` first (make test does)",
        bin.display()
    );
    bin
}

/// The current fiscal year, month period and today's date: entries in tests are "now".
pub fn year() -> i32 {
    chrono::Utc::now().year()
}
pub fn period() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}
pub fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// The `n`-th synthetic but valid resident ID number (GB 11643 checksum).
pub fn id_number(n: u32) -> String {
    let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
        + chrono::Days::new(u64::from(n / 1000));
    let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), n % 1000);
    let check = fundtrail::idcard::check_char(&first17).unwrap();
    format!("{first17}{check}")
}

impl TestApp {
    /// Initialises a database in a temp dir and serves it on 127.0.0.1 at a free port.
    pub fn spawn() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("fundtrail.db");
        let made = fundtrail::config::init(&db_path).expect("init");
        let admin_key = SigningKey::load(&made.operator_key_path).expect("operator key");
        let base = serve(&db_path);
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        TestApp {
            admin: Org {
                code: fundtrail::config::OPERATOR_CODE.into(),
                token: made.operator_token,
                key: Arc::new(admin_key),
            },
            dir,
            db_path,
            base,
            agent,
        }
    }

    /// A second server over the same database: another process, as far as locking goes.
    pub fn second_server(&self) -> String {
        serve(&self.db_path)
    }

    /// The CLI's HTTP client acting as `org`.
    pub fn client(&self, org: &Org) -> Client {
        Client::new(&self.base, Some(org.token.clone()))
    }

    /// A direct connection to the database.
    pub fn conn(&self) -> DbConn {
        fundtrail::config::open_existing(&self.db_path).expect("open database")
    }

    /// GET with an optional token.
    pub fn get(&self, token: Option<&str>, path: &str) -> Reply {
        reply(bearer(self.agent.get(format!("{}{path}", self.base)), token).call())
    }

    /// POST a raw JSON body with an optional token.
    pub fn post(&self, token: Option<&str>, path: &str, body: &Value) -> Reply {
        reply(bearer(self.agent.post(format!("{}{path}", self.base)), token).send_json(body))
    }

    /// POST raw bytes (for malformed JSON).
    pub fn post_bytes(&self, token: &str, path: &str, body: &[u8]) -> Reply {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "application/json");
        reply(req.send(body))
    }

    /// Signs `payload` for `POST path` as `org` and posts it with the org's token.
    pub fn post_signed(&self, org: &Org, path: &str, payload: Value) -> Reply {
        let req =
            SignedRequest::sign(&org.key, &format!("POST {path}"), payload).expect("signable");
        self.post(Some(&org.token), path, &serde_json::to_value(req).unwrap())
    }

    /// The admin registers an org with a fresh key and issues it a token.
    pub fn create_org(&self, code: &str, role: Role, parent: Option<&str>) -> Org {
        let key = SigningKey::generate(code);
        let r = self.post_signed(
            &self.admin,
            "/api/v1/orgs",
            json!({"code": code, "name": format!("{code} 测试机构"), "role": role, "parent": parent, "public_key": key.public_key_b64()}),
        );
        assert_eq!(r.status, 201, "create org {code}: {:?}", r.body);
        let r = self.post_signed(
            &self.admin,
            &format!("/api/v1/orgs/{code}/tokens"),
            json!({"label": "test"}),
        );
        assert_eq!(r.status, 201, "token for {code}: {:?}", r.body);
        Org {
            code: code.into(),
            token: r.body["token"].as_str().unwrap().into(),
            key: Arc::new(key),
        }
    }

    /// `bureau` registers a monthly CNY program for this year with a 780.00 standard.
    pub fn create_program(&self, bureau: &Org, code: &str) {
        let r = self.post_signed(
            bureau,
            "/api/v1/programs",
            json!({"code": code, "name": "城乡低保", "fiscal_year": year(), "standard_amount": "780.00", "period_granularity": "month"}),
        );
        assert_eq!(r.status, 201, "create program: {:?}", r.body);
    }

    /// `office` registers recipients with ID numbers `first..first+n`; returns pseudonyms.
    pub fn register_recipients(&self, office: &Org, first: u32, n: u32) -> Vec<String> {
        let list: Vec<Value> = (first..first + n)
            .map(|i| json!({"name": format!("测试{i}"), "id_number": id_number(i), "bank_account": format!("622848{:013}", i)}))
            .collect();
        let r = self.post_signed(office, "/api/v1/recipients", json!({ "recipients": list }));
        assert_eq!(r.status, 201, "register: {:?}", r.body);
        serde_json::from_value(r.body["pseudonyms"].clone()).unwrap()
    }

    /// Appends `bodies` as one signed batch by `org`, through the CLI's client.
    pub fn append(&self, org: &Org, bodies: Vec<EntryBody>) -> Result<AppendOutcome, AppError> {
        self.client(org)
            .post_signed("/api/v1/entries", &org.key, json!({ "entries": bodies }))
    }

    /// `org` registers `account` as one of its CNY program accounts.
    pub fn register_account(&self, org: &Org, account: &str) {
        let r = self.post_signed(
            org,
            "/api/v1/bank-accounts",
            json!({"org": org.code, "account": account, "currency": "CNY", "label": "低保资金专户"}),
        );
        assert_eq!(r.status, 201, "register account: {:?}", r.body);
    }

    /// Uploads a statement file as `org` the way `fundtrail import` does: the file is the
    /// body, the signed manifest (its SHA-256 and size) the header.
    pub fn upload(&self, org: &Org, file_name: &str, file: &[u8]) -> Reply {
        self.upload_with(org, file_name, file, file, None)
    }

    /// Uploads `sent` under a manifest signed for `signed` (the same bytes, unless a test
    /// alters the body after signing).
    pub fn upload_with(
        &self,
        org: &Org,
        file_name: &str,
        signed: &[u8],
        sent: &[u8],
        account: Option<&str>,
    ) -> Reply {
        let manifest = json!({
            "file_sha256": hex::encode(fundtrail::crypto::sha256(signed)),
            "size_bytes": signed.len(),
            "file_name": file_name,
            "format": "auto",
            "account": account,
        });
        let req = SignedRequest::sign(&org.key, "POST /api/v1/statements", manifest).unwrap();
        let header = fundtrail::crypto::b64(serde_json::to_string(&req).unwrap().as_bytes());
        let r = self
            .agent
            .post(format!("{}/api/v1/statements", self.base))
            .header("authorization", &format!("Bearer {}", org.token))
            .header("fundtrail-signature", &header)
            .header("content-type", "application/octet-stream");
        reply(r.send(sent))
    }

    /// Verifies the chain straight from the database file.
    pub fn verify_db(&self) -> VerifyReport {
        let mut conn = self.conn();
        verify::verify(&mut DbCopy::new(&mut conn), &mut |_| {}).expect("verification ran")
    }

    /// Row counts of every table and the chain head: equal snapshots mean nothing was written.
    pub fn snapshot(&self) -> Vec<(String, i64)> {
        use diesel::prelude::*;
        use diesel::sql_types::BigInt;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        let mut out = Vec::new();
        for table in [
            "orgs",
            "org_keys",
            "api_tokens",
            "submissions",
            "programs",
            "recipients",
            "personal_data_reads",
            "ledger_entries",
            "ledger_funds",
            "bank_accounts",
            "statements",
            "statement_sections",
            "bank_rows",
        ] {
            let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
                .get_result(&mut conn)
                .unwrap();
            out.push((table.to_string(), c.n));
        }
        let c: Count =
            diesel::sql_query("SELECT coalesce(sum(remaining_minor), 0) AS n FROM ledger_funds")
                .get_result(&mut conn)
                .unwrap();
        out.push(("remaining_total".into(), c.n));
        out
    }
}

fn bearer<B>(req: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => req.header("authorization", &format!("Bearer {t}")),
        None => req,
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("the server answers");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Starts a server over `db_path` on a free loopback port in a background thread.
fn serve(db_path: &std::path::Path) -> String {
    let state = fundtrail::server::state(db_path).expect("server state");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            fundtrail::server::build(state, listener, 2)
                .expect("server")
                .await
                .expect("server ran");
        })
    });
    format!("http://{addr}")
}

/// A small province: bureau PROV owns program P and budgets 1,000,000.00; it allocates to
/// CITY, CITY to county office CNTY, CNTY to towns TOWN and TOWN2; an inspector AUD.
pub struct Tree {
    pub app: TestApp,
    pub prov: Org,
    pub city: Org,
    pub county: Org,
    pub town: Org,
    pub town2: Org,
    pub auditor: Org,
    pub budget_seq: i64,
    pub city_seq: i64,
    pub county_seq: i64,
    /// The allocation TOWN holds (10,000.00).
    pub town_seq: i64,
    pub recipients: Vec<String>,
}

pub const PROGRAM: &str = "DIBAO-T";

/// Shorthand for a body in program P this period, dated today.
pub fn body(kind: EntryKind, amount: &str, reference: &str) -> EntryBody {
    EntryBody::new(kind, PROGRAM, &period(), amount, reference, &today())
}

impl Tree {
    pub fn build() -> Tree {
        let app = TestApp::spawn();
        let prov = app.create_org("PROV", Role::FinanceBureau, None);
        let city = app.create_org("CITY", Role::FinanceBureau, Some("PROV"));
        let county = app.create_org("CNTY", Role::LocalOffice, Some("CITY"));
        let town = app.create_org("TOWN", Role::LocalOffice, Some("CNTY"));
        let town2 = app.create_org("TOWN2", Role::LocalOffice, Some("CNTY"));
        let auditor = app.create_org("AUD", Role::Inspector, None);
        app.create_program(&prov, PROGRAM);
        let recipients = app.register_recipients(&town, 1, 20);
        let yearly = EntryBody::new(
            EntryKind::Budget,
            PROGRAM,
            &year().to_string(),
            "1000000.00",
            "BUD-1",
            &today(),
        )
        .to("PROV");
        let budget_seq = app.append(&prov, vec![yearly]).expect("budget").first_seq;
        let city_seq = app
            .append(
                &prov,
                vec![body(EntryKind::Allocation, "100000.00", "ALC-CITY")
                    .source(budget_seq)
                    .from("PROV")
                    .to("CITY")],
            )
            .unwrap()
            .first_seq;
        let county_seq = app
            .append(
                &city,
                vec![body(EntryKind::Allocation, "50000.00", "ALC-CNTY")
                    .source(city_seq)
                    .from("CITY")
                    .to("CNTY")],
            )
            .unwrap()
            .first_seq;
        let town_seq = app
            .append(
                &county,
                vec![body(EntryKind::Allocation, "10000.00", "ALC-TOWN")
                    .source(county_seq)
                    .from("CNTY")
                    .to("TOWN")],
            )
            .unwrap()
            .first_seq;
        Tree {
            app,
            prov,
            city,
            county,
            town,
            town2,
            auditor,
            budget_seq,
            city_seq,
            county_seq,
            town_seq,
            recipients,
        }
    }

    /// A disbursement by TOWN to its `i`-th recipient from its allocation.
    pub fn payment(&self, i: usize, amount: &str, reference: &str) -> EntryBody {
        body(EntryKind::Disbursement, amount, reference)
            .source(self.town_seq)
            .from("TOWN")
            .recipient(&self.recipients[i])
    }
}
