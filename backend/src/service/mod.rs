//! Registry writes and reads outside the ledger: orgs, keys, tokens, programs, recipients.
//! Functions take a connection and an authenticated actor (and for writes a verified signed
//! request); HTTP handlers and local tools (init, demo) call the same functions.

pub mod orgs;
pub mod programs;
pub mod recipients;

use crate::error::{AppError, AppResult};

/// Checks a code (org, program): 2-32 of `A-Z 0-9 - _`.
pub fn check_code(field: &str, code: &str) -> AppResult<()> {
    let ok = (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            field,
            format!("`{code}` is not a code: use 2-32 of A-Z, 0-9, - and _"),
        ))
    }
}

/// Checks a human-readable name: 1 to `chars_max` characters, no control characters.
pub fn check_text(field: &str, text: &str, chars_max: usize) -> AppResult<()> {
    let n = text.chars().count();
    if n == 0 || n > chars_max || text.chars().any(char::is_control) || text.trim() != text {
        Err(AppError::invalid(field, format!("{field} must be 1-{chars_max} characters without control characters or surrounding spaces")))
    } else {
        Ok(())
    }
}
