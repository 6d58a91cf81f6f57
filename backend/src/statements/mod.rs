//! Bank statements: the program bank accounts orgs hold, uploading a statement file for one,
//! matching its rows to disbursements as `confirmation` and `return` entries, and reading the
//! result back. Parsing is `fundtrail_importers`'; this module decides what the ledger makes
//! of the rows.
//!
//! An upload is signed like every write, but its payload is a small [`Manifest`] naming the
//! file by SHA-256 and size; the file itself is the HTTP body. The import is one write
//! transaction: every row is stored (masked, with a keyed tag of the counterparty account),
//! matched, and the matches become ledger entries carried by the upload's submission, or the
//! whole file is refused with every bad row listed.

pub mod accounts;
pub mod import;
pub mod read;
pub mod recheck;
pub mod show;

use crate::error::{AppError, AppResult, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest statement file accepted, in bytes.
pub const STATEMENT_BYTES_MAX: u64 = 1 << 30;
/// Longest file name kept with a statement, in bytes.
pub const FILE_NAME_BYTES_MAX: usize = 255;
/// A weak match (account + amount, no reference) accepts a booking this many days before or
/// after the payment's value date.
pub const MATCH_WINDOW_DAYS: i64 = 7;
/// A return without the payment's reference is matched to a payment made at most this many
/// days before it.
pub const RETURN_WINDOW_DAYS: i64 = 62;

/// What an uploader signs for `POST /api/v1/statements`: the file (by digest and size) and how
/// to read it. Every key is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Lower-case hex SHA-256 of the file's bytes.
    pub file_sha256: String,
    pub size_bytes: u64,
    /// The file's name (no directories), for people; also a hint for format detection.
    pub file_name: String,
    /// `auto` or a format name (see `fundtrail import --help`).
    pub format: String,
    /// The statement's account, for files that do not name it (most CSV exports).
    pub account: Option<String>,
}

impl Manifest {
    /// Checks the fields a server can check before reading the file.
    pub fn validate(&self) -> AppResult<[u8; 32]> {
        let digest: [u8; 32] = hex::decode(&self.file_sha256)
            .ok()
            .and_then(|d| d.try_into().ok())
            .filter(|_| self.file_sha256.bytes().all(|b| !b.is_ascii_uppercase()))
            .ok_or_else(|| {
                AppError::invalid("file_sha256", "file_sha256 is 64 lower-case hex digits")
            })?;
        if self.size_bytes > STATEMENT_BYTES_MAX {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("statement files are limited to {STATEMENT_BYTES_MAX} bytes"),
            )
            .field("size_bytes"));
        }
        if self.file_name.is_empty()
            || self.file_name.len() > FILE_NAME_BYTES_MAX
            || self
                .file_name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(AppError::invalid(
                "file_name",
                format!("file_name is a plain file name of 1-{FILE_NAME_BYTES_MAX} bytes"),
            ));
        }
        show::format_by_name(&self.format).map_err(|e| {
            AppError::new(ErrorCode::UnknownFormat, e.first.message).field("format")
        })?;
        if let Some(a) = &self.account {
            if normalize_account(a).is_empty() {
                return Err(AppError::invalid(
                    "account",
                    "account has no letters or digits",
                ));
            }
        }
        Ok(digest)
    }
}

/// An account number as stored and compared: ASCII letters and digits, upper-case (the same
/// normalisation as the recipients' account tags).
pub fn normalize_account(account: &str) -> String {
    account
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A counterparty account as people may see it: the first and last four characters.
///
/// ```
/// use fundtrail::statements::mask_account;
/// assert_eq!(mask_account("6228 4872 7693 1098 027"), "6228***********8027");
/// assert_eq!(mask_account("12345"), "*****");
/// ```
pub fn mask_account(account: &str) -> String {
    let n = normalize_account(account);
    let len = n.chars().count();
    if len <= 8 {
        return "*".repeat(len);
    }
    let head: String = n.chars().take(4).collect();
    let tail: String = n.chars().skip(len - 4).collect();
    format!("{head}{}{tail}", "*".repeat(len - 8))
}

/// A counterparty name as people may see it: the first character.
///
/// ```
/// use fundtrail::statements::mask_name;
/// assert_eq!(mask_name("柯玉玉"), "柯**");
/// ```
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().min(8);
            format!("{first}{}", "*".repeat(rest))
        }
    }
}

/// Decimals of an ISO 4217 currency (2 unless listed).
pub fn currency_minor_units(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            file_sha256: "ab".repeat(32),
            size_bytes: 10,
            file_name: "s.csv".into(),
            format: "auto".into(),
            account: None,
        }
    }

    #[test]
    fn manifest_checks_name_each_field() {
        assert!(manifest().validate().is_ok());
        type Change = fn(&mut Manifest);
        let cases: [(Change, &str); 5] = [
            (|m| m.file_sha256 = "AB".repeat(32), "file_sha256"),
            (|m| m.size_bytes = STATEMENT_BYTES_MAX + 1, "size_bytes"),
            (|m| m.file_name = "../x.csv".into(), "file_name"),
            (|m| m.format = "pdf".into(), "format"),
            (|m| m.account = Some(" - ".into()), "account"),
        ];
        for (change, field) in cases {
            let mut m = manifest();
            change(&mut m);
            let err = m.validate().unwrap_err();
            assert_eq!(err.first.field.as_deref(), Some(field), "{err}");
        }
    }

    #[test]
    fn masks_keep_only_what_people_need() {
        assert_eq!(mask_account("ab-12"), "****");
        assert_eq!(
            mask_account("DE89 3704 0044 0532 0130 00"),
            "DE89**************3000"
        );
        assert_eq!(mask_name(" 李四 "), "李*");
        assert_eq!(mask_name(""), "");
        assert_eq!(normalize_account("6222-0212 34x"), "6222021234X");
    }
}
