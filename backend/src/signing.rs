//! The signed-request envelope that every write carries, and its verification.
//!
//! A client signs, with its org's Ed25519 key, the canonical JSON (RFC 8785) of:
//!
//! ```text
//! {"domain":"fundtrail/signed-request/v1","key_id":…,"nonce":…,"org":…,
//!  "payload_sha256":<hex SHA-256 of the payload's canonical JSON>,
//!  "purpose":"POST /api/v1/entries","signed_at":"2026-11-24T20:06:35Z"}
//! ```
//!
//! `purpose` names the endpoint so that a payload signed for one cannot be replayed at
//! another; the nonce is recorded and never accepted twice. The server operator holds no
//! office's private key, so it cannot forge an office's entries. See docs/ledger-format.md.

use crate::auth::Actor;
use crate::canonical::{to_canonical_bytes, CanonicalError};
use crate::crypto::{self, SigningKey};
use crate::db::DbConn;
use crate::domain::{format_micros, parse_time, Micros};
use crate::error::{AppError, AppResult, ErrorCode};
use diesel::prelude::*;
use fundtrail_schema::rows::{NewSubmission, OrgKeyRow};
use fundtrail_schema::schema::{org_keys, submissions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// The domain separator in every signed message.
pub const SIGNING_DOMAIN: &str = "fundtrail/signed-request/v1";
/// How far a client's `signed_at` may be from the server's clock. Bounds how long a captured
/// request stays interesting; nonces stop replays within the window.
pub const SIGNED_AT_SKEW_MAX_MICROS: Micros = 15 * 60 * 1_000_000;
/// Nonces are 16 to 64 URL-safe characters.
pub const NONCE_BYTES_MIN: usize = 16;
pub const NONCE_BYTES_MAX: usize = 64;

/// A write request: the payload and the author org's signature over it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// The request proper; its shape depends on the endpoint.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Code of the org that signs (must be the token's org).
    pub org: String,
    /// Id of the signing key, `ed25519:<16 hex>`.
    pub key_id: String,
    /// Fresh random string (16-64 of `A-Za-z0-9-_`), never reused.
    pub nonce: String,
    /// When the client signed, RFC 3339.
    pub signed_at: String,
    /// Ed25519 signature over the signing message, standard base64.
    pub signature: String,
}

/// The exact bytes that are signed.
pub fn signing_message(
    purpose: &str,
    org: &str,
    key_id: &str,
    nonce: &str,
    signed_at: &str,
    payload_sha256: &[u8; 32],
) -> Vec<u8> {
    let message = json!({
        "domain": SIGNING_DOMAIN,
        "purpose": purpose,
        "org": org,
        "key_id": key_id,
        "nonce": nonce,
        "signed_at": signed_at,
        "payload_sha256": hex::encode(payload_sha256),
    });
    to_canonical_bytes(&message).expect("the signing message holds only strings")
}

/// SHA-256 of the payload's canonical JSON.
pub fn payload_digest(payload: &Value) -> Result<[u8; 32], CanonicalError> {
    Ok(crypto::sha256(&to_canonical_bytes(payload)?))
}

impl SignedRequest {
    /// Signs `payload` for `purpose` with `key`, now, with a fresh nonce.
    pub fn sign(
        key: &SigningKey,
        purpose: &str,
        payload: Value,
    ) -> Result<SignedRequest, CanonicalError> {
        let signed_at = format_micros(crate::domain::now_micros());
        Self::sign_with(key, purpose, payload, &crypto::new_nonce(), &signed_at)
    }

    /// Signs with a given nonce and time (tests and tools).
    pub fn sign_with(
        key: &SigningKey,
        purpose: &str,
        payload: Value,
        nonce: &str,
        signed_at: &str,
    ) -> Result<SignedRequest, CanonicalError> {
        let digest = payload_digest(&payload)?;
        let message = signing_message(purpose, &key.org, &key.key_id, nonce, signed_at, &digest);
        Ok(SignedRequest {
            payload,
            org: key.org.clone(),
            key_id: key.key_id.clone(),
            nonce: nonce.to_string(),
            signed_at: signed_at.to_string(),
            signature: crypto::b64(&key.sign(&message)),
        })
    }
}

/// A request whose signature checked out, ready to be recorded with the write it carries.
#[derive(Debug, Clone)]
pub struct Verified {
    pub actor: Actor,
    pub key_id: String,
    pub nonce: String,
    pub purpose: String,
    pub signed_at: String,
    pub payload_sha256: [u8; 32],
    pub signature: Vec<u8>,
    pub payload: Value,
}

impl Verified {
    /// Deserializes the payload into the endpoint's type; unknown or missing fields are a
    /// client error naming the place.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> AppResult<T> {
        // From a borrowed Value: a batch payload is megabytes, so no clone.
        T::deserialize(&self.payload).map_err(|e| {
            AppError::new(ErrorCode::InvalidJson, format!("payload: {e}")).field("payload")
        })
    }
}

/// Checks that `request` was signed for `purpose` by a currently valid key of the actor's
/// own org. Does not write; [`record`] stores the nonce in the write's transaction.
pub fn verify(
    conn: &mut DbConn,
    actor: &Actor,
    purpose: &str,
    request: SignedRequest,
    now: Micros,
) -> AppResult<Verified> {
    if request.org != actor.org_code {
        return Err(AppError::new(
            ErrorCode::SignerMismatch,
            format!(
                "signed for org {} but the token belongs to {}",
                request.org, actor.org_code
            ),
        )
        .field("org"));
    }
    let nonce_ok = (NONCE_BYTES_MIN..=NONCE_BYTES_MAX).contains(&request.nonce.len())
        && request
            .nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !nonce_ok {
        return Err(AppError::invalid(
            "nonce",
            "nonce must be 16-64 characters of A-Za-z0-9-_",
        ));
    }
    let signed_at = parse_time(&request.signed_at).ok_or_else(|| {
        AppError::invalid(
            "signed_at",
            "signed_at must be an RFC 3339 time such as 2026-11-24T08:00:00Z",
        )
    })?;
    if (signed_at - now).abs() > SIGNED_AT_SKEW_MAX_MICROS {
        return Err(AppError::new(
            ErrorCode::StaleSignature,
            format!(
                "signed_at {} is more than 15 minutes from the server's time {}; check the clock and sign again",
                request.signed_at,
                format_micros(now)
            ),
        )
        .field("signed_at"));
    }
    let key: Option<OrgKeyRow> = org_keys::table
        .filter(org_keys::key_id.eq(&request.key_id))
        .select(OrgKeyRow::as_select())
        .first(conn)
        .optional()?;
    let key = match key {
        Some(k) if k.org_id == actor.org_id => k,
        _ => {
            return Err(AppError::new(
                ErrorCode::UnknownKey,
                format!(
                    "key {} is not registered for org {}",
                    request.key_id, actor.org_code
                ),
            )
            .field("key_id"))
        }
    };
    if now < key.valid_from || key.valid_until.is_some_and(|until| now >= until) {
        return Err(AppError::new(
            ErrorCode::KeyNotValid,
            format!(
                "key {} is not valid now (retired or not yet valid)",
                request.key_id
            ),
        )
        .field("key_id"));
    }
    let digest = payload_digest(&request.payload)
        .map_err(|e| AppError::new(ErrorCode::InvalidJson, e.to_string()).field("payload"))?;
    let signature = crypto::b64_decode(&request.signature)
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::BadSignature,
                "signature must be 64 bytes in standard base64",
            )
            .field("signature")
        })?;
    let message = signing_message(
        purpose,
        &request.org,
        &request.key_id,
        &request.nonce,
        &request.signed_at,
        &digest,
    );
    if !crypto::verify_signature(&key.public_key, &message, &signature) {
        return Err(AppError::new(
            ErrorCode::BadSignature,
            format!(
                "the signature does not verify for {purpose} with key {}",
                request.key_id
            ),
        )
        .field("signature"));
    }
    let seen: i64 = submissions::table
        .filter(submissions::nonce.eq(&request.nonce))
        .count()
        .get_result(conn)?;
    if seen > 0 {
        return Err(replayed(&request.nonce));
    }
    Ok(Verified {
        actor: actor.clone(),
        key_id: request.key_id,
        nonce: request.nonce,
        purpose: purpose.to_string(),
        signed_at: request.signed_at,
        payload_sha256: digest,
        signature,
        payload: request.payload,
    })
}

fn replayed(nonce: &str) -> AppError {
    AppError::new(
        ErrorCode::ReplayedSubmission,
        format!(
            "a submission with nonce {nonce} was already accepted; sign again with a fresh nonce"
        ),
    )
    .field("nonce")
}

/// Records the submission inside the caller's write transaction and returns its id. A nonce
/// accepted meanwhile by a concurrent request makes this fail, rolling the write back.
pub fn record(conn: &mut DbConn, verified: &Verified, recorded_at: Micros) -> AppResult<i64> {
    let row = NewSubmission {
        nonce: &verified.nonce,
        org_id: verified.actor.org_id,
        key_id: &verified.key_id,
        purpose: &verified.purpose,
        payload_sha256: &verified.payload_sha256,
        signed_at: &verified.signed_at,
        signature: &verified.signature,
        recorded_at,
    };
    match diesel::insert_into(submissions::table)
        .values(&row)
        .returning(submissions::id)
        .get_result(conn)
    {
        Ok(id) => Ok(id),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(replayed(&verified.nonce)),
        Err(e) => Err(e.into()),
    }
}

/// Signs `payload` for `purpose` with `key` and verifies it exactly as the HTTP handler does:
/// for local tools (the demo loader, benchmarks) that write through the same code path
/// without the network in between. Returns the verified request and the time it was checked.
pub fn sign_locally(
    conn: &mut DbConn,
    key: &SigningKey,
    purpose: &str,
    payload: Value,
) -> AppResult<(Verified, Micros)> {
    let request = SignedRequest::sign(key, purpose, payload)
        .map_err(|e| AppError::invalid("payload", e.to_string()))?;
    verify_locally(conn, purpose, request)
}

/// The server's half of [`sign_locally`]: verifies a request signed elsewhere (another
/// thread, as a client would) as the HTTP handler does, acting as the signing org.
pub fn verify_locally(
    conn: &mut DbConn,
    purpose: &str,
    request: SignedRequest,
) -> AppResult<(Verified, Micros)> {
    let actor = Actor::for_org(conn, &request.org)?;
    let now = crate::domain::now_micros();
    Ok((verify(conn, &actor, purpose, request, now)?, now))
}
