//! The HTTP client the CLI uses: bearer token, signed writes, errors read back as
//! [`AppError`]s with their codes.

use crate::crypto::SigningKey;
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::ledger::read::EntryPage;
use crate::ledger::rules::OrgFacts;
use crate::ledger::verify::{KeyView, LedgerCopy, Reference};
use crate::service::orgs::OrgView;
use crate::service::programs::ProgramView;
use crate::signing::SignedRequest;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Largest response body the client reads (a page of 1000 entries is well under 2 MiB).
const RESPONSE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest raw body (a reconciliation report as HTML or CSV).
const RAW_RESPONSE_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// A connection to a Fundtrail server.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

#[derive(Deserialize)]
struct WireError {
    error: String,
    message: String,
    field: Option<String>,
    item: Option<usize>,
    location: Option<String>,
    #[serde(default)]
    errors: Vec<WireProblem>,
    errors_total: Option<usize>,
}

#[derive(Deserialize)]
struct WireProblem {
    error: String,
    message: String,
    field: Option<String>,
    item: Option<usize>,
    location: Option<String>,
}

fn code_of(name: &str) -> ErrorCode {
    serde_json::from_value(Value::String(name.to_string())).unwrap_or(ErrorCode::Internal)
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn read<T: DeserializeOwned>(
        &self,
        what: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> AppResult<T> {
        let mut resp = resp.map_err(|e| {
            AppError::new(
                ErrorCode::Unavailable,
                format!("cannot reach {}: {e}", self.base),
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .read_to_string()
            .map_err(|e| {
                AppError::new(
                    ErrorCode::Unavailable,
                    format!("{what}: reading the response failed: {e}"),
                )
            })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|e| AppError::internal(format!("{what}: unexpected response: {e}")));
        }
        match serde_json::from_str::<WireError>(&text) {
            Ok(w) => {
                let mut problems: Vec<Problem> = w
                    .errors
                    .into_iter()
                    .map(|p| Problem {
                        error: code_of(&p.error),
                        message: p.message,
                        field: p.field,
                        item: p.item,
                        location: p.location,
                    })
                    .collect();
                if problems.is_empty() {
                    problems.push(Problem {
                        error: code_of(&w.error),
                        message: w.message,
                        field: w.field,
                        item: w.item,
                        location: w.location,
                    });
                }
                let mut err = AppError::batch(problems);
                err.problems_total = err.problems_total.max(w.errors_total.unwrap_or(0));
                Err(err)
            }
            Err(_) => Err(AppError::internal(format!(
                "{what}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ))),
        }
    }

    fn authorized<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// GET `path` with `query` pairs.
    pub fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> AppResult<T> {
        let mut req = self.authorized(self.agent.get(self.url(path)));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        self.read(path, req.call())
    }

    /// GET `path` and return the body's bytes as they are (reports as CSV or HTML).
    pub fn get_raw(&self, path: &str, query: &[(&str, String)]) -> AppResult<Vec<u8>> {
        let mut req = self.authorized(self.agent.get(self.url(path)));
        for (k, v) in query {
            req = req.query(*k, v);
        }
        let mut resp = req.call().map_err(|e| {
            AppError::new(
                ErrorCode::Unavailable,
                format!("cannot reach {}: {e}", self.base),
            )
        })?;
        if !resp.status().is_success() {
            // The error body is the usual JSON: decode it the usual way.
            return self.read::<Value>(path, Ok(resp)).map(|_| Vec::new());
        }
        resp.body_mut()
            .with_config()
            .limit(RAW_RESPONSE_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| {
                AppError::new(
                    ErrorCode::Unavailable,
                    format!("{path}: reading the response failed: {e}"),
                )
            })
    }

    /// POST a plain JSON body (reads such as `recipients/resolve`).
    pub fn post_json<T: DeserializeOwned>(&self, path: &str, body: &Value) -> AppResult<T> {
        let req = self.authorized(self.agent.post(self.url(path)));
        self.read(path, req.send_json(body))
    }

    /// Signs `payload` for `POST path` with `key` and sends it.
    pub fn post_signed<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &SigningKey,
        payload: Value,
    ) -> AppResult<T> {
        let purpose = format!("POST {path}");
        let req = SignedRequest::sign(key, &purpose, payload)
            .map_err(|e| AppError::invalid("payload", e.to_string()))?;
        let body = serde_json::to_value(&req).expect("a signed request serializes");
        self.post_json(path, &body)
    }

    /// Sends `file` as the body of a signed `POST path` whose payload (`manifest`) names it; the
    /// signed request goes in the `Fundtrail-Signature` header. The file streams from disk;
    /// `sent` is called with the bytes sent so far.
    pub fn post_file_signed<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &SigningKey,
        manifest: Value,
        file: &std::path::Path,
        sent: &mut dyn FnMut(u64),
    ) -> AppResult<T> {
        let purpose = format!("POST {path}");
        let req = SignedRequest::sign(key, &purpose, manifest)
            .map_err(|e| AppError::invalid("payload", e.to_string()))?;
        let header = crate::crypto::b64(
            serde_json::to_string(&req)
                .expect("a signed request serializes")
                .as_bytes(),
        );
        let f = std::fs::File::open(file).map_err(|e| {
            AppError::invalid("file", format!("cannot read {}: {e}", file.display()))
        })?;
        let mut reader = Progress {
            inner: std::io::BufReader::with_capacity(1 << 16, f),
            sent: 0,
            report: sent,
        };
        let request = self
            .authorized(self.agent.post(self.url(path)))
            .header(crate::api::statements::SIGNATURE_HEADER, &header)
            .header("content-type", "application/octet-stream");
        self.read(path, request.send(ureq::SendBody::from_reader(&mut reader)))
    }
}

/// A reader that reports how much has been read.
struct Progress<'a, R> {
    inner: R,
    sent: u64,
    report: &'a mut dyn FnMut(u64),
}

impl<R: std::io::Read> std::io::Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        (self.report)(self.sent);
        Ok(n)
    }
}

impl LedgerCopy for Client {
    fn reference(&mut self) -> AppResult<Reference> {
        let orgs: Vec<OrgView> = self.get("/api/v1/orgs", &[])?;
        let programs: Vec<ProgramView> = self.get("/api/v1/programs", &[])?;
        let keys: Vec<KeyView> = self.get("/api/v1/keys", &[])?;
        let mut r = Reference::default();
        for o in orgs {
            r.orgs.insert(
                o.code.clone(),
                OrgFacts {
                    code: o.code,
                    role: o.role,
                    parent: o.parent,
                },
            );
        }
        for p in programs {
            r.programs.insert(p.code, (p.owner, p.minor_units));
        }
        for k in keys {
            r.keys.insert(k.key_id.clone(), k);
        }
        Ok(r)
    }

    fn page(&mut self, after: i64) -> AppResult<EntryPage> {
        let limit = crate::ledger::read::PAGE_ENTRIES_MAX;
        self.get(
            "/api/v1/entries",
            &[("after", after.to_string()), ("limit", limit.to_string())],
        )
    }
}
