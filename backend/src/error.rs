//! Errors with stable codes. Every failure a client can cause maps to an [`ErrorCode`] whose
//! snake_case name is part of the API contract; the HTTP status follows from the code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The stable error codes. Clients match on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400: the request itself is malformed.
    InvalidJson,
    InvalidQuery,
    InvalidPath,
    // 401: who are you?
    Unauthorized,
    Unsigned,
    BadSignature,
    UnknownKey,
    KeyNotValid,
    StaleSignature,
    // 403: you may not.
    Forbidden,
    SignerMismatch,
    KindNotAllowed,
    WrongHolder,
    // 404
    NotFound,
    // 409: conflicts with what is already recorded.
    ReplayedSubmission,
    Overdraw,
    AlreadyReversed,
    SourceAlreadyDrawn,
    DuplicateReference,
    DuplicateRecipient,
    AlreadyExists,
    // 413
    PayloadTooLarge,
    // 422: well-formed but invalid.
    InvalidField,
    InvalidAmount,
    AmountNotPositive,
    AmountTooPrecise,
    AmountTooLarge,
    AmountNotCanonical,
    AmountMismatch,
    InvalidIdNumber,
    InvalidPeriod,
    InvalidValueDate,
    InvalidReference,
    EntryNotCanonical,
    UnknownSource,
    NotDrawable,
    UnknownOrg,
    UnknownProgram,
    UnknownRecipient,
    RecipientNotPayable,
    RecipientNotInOffice,
    NotAChildOrg,
    ProgramMismatch,
    BatchTooLarge,
    EmptyBatch,
    // 500/503: ours, never the client's.
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status for this code.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidQuery | InvalidPath => 400,
            Unauthorized | Unsigned | BadSignature | UnknownKey | KeyNotValid | StaleSignature => 401,
            Forbidden | SignerMismatch | KindNotAllowed | WrongHolder => 403,
            NotFound => 404,
            ReplayedSubmission | Overdraw | AlreadyReversed | SourceAlreadyDrawn
            | DuplicateReference | DuplicateRecipient | AlreadyExists => 409,
            PayloadTooLarge => 413,
            Internal => 500,
            Unavailable => 503,
            _ => 422,
        }
    }

    /// The snake_case name, as serialized.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One thing wrong with a request, located as precisely as we can: the `item` of a batch
/// (0-based) and the `field` within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    pub error: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
}

/// The most problems one response lists; beyond that the count says how many more.
pub const PROBLEMS_LISTED_MAX: usize = 100;

/// An application error: the first problem, and for batches every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub first: Problem,
    pub problems: Vec<Problem>,
    pub problems_total: usize,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.first.error.as_str(), self.first.message)?;
        if let Some(item) = self.first.item {
            write!(f, " (item {item}")?;
            if let Some(field) = &self.first.field {
                write!(f, ", field {field}")?;
            }
            write!(f, ")")?;
        } else if let Some(field) = &self.first.field {
            write!(f, " (field {field})")?;
        }
        if self.problems_total > 1 {
            write!(f, " and {} more problem(s)", self.problems_total - 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> AppError {
        AppError::from(Problem { error, message: message.into(), field: None, item: None })
    }

    /// Attaches the field that caused the error.
    pub fn field(mut self, field: impl Into<String>) -> AppError {
        let field = field.into();
        self.first.field = Some(field.clone());
        if let Some(p) = self.problems.first_mut() {
            p.field = Some(field);
        }
        self
    }

    /// A batch error listing every problem (at most [`PROBLEMS_LISTED_MAX`]).
    pub fn batch(mut problems: Vec<Problem>) -> AppError {
        assert!(!problems.is_empty(), "a batch error needs at least one problem");
        let total = problems.len();
        problems.truncate(PROBLEMS_LISTED_MAX);
        AppError { first: problems[0].clone(), problems, problems_total: total }
    }

    pub fn code(&self) -> ErrorCode {
        self.first.error
    }

    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Unauthorized, message)
    }
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::InvalidField, message).field(field)
    }
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Internal, message)
    }
}

impl From<Problem> for AppError {
    fn from(p: Problem) -> AppError {
        AppError { first: p.clone(), problems: vec![p], problems_total: 1 }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> AppError {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::NotFound => AppError::not_found("record"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                AppError::new(ErrorCode::AlreadyExists, format!("already exists: {}", info.message()))
            }
            Error::DatabaseError(DatabaseErrorKind::Unknown, info)
                if info.message().contains("locked") || info.message().contains("busy") =>
            {
                AppError::new(ErrorCode::Unavailable, "the database is busy; try again")
            }
            _ => {
                tracing::error!(error = %e, "database error");
                AppError::internal("database error")
            }
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> AppError {
        tracing::error!(error = %e, "connection pool error");
        AppError::new(ErrorCode::Unavailable, "no database connection available; try again")
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub error: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// The field that caused it, where one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The 0-based item of a batch that caused it, where one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// For batches: every problem found (up to 100).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Problem>,
    /// How many problems in all, where more were found than listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_total: Option<usize>,
}

impl From<&AppError> for ErrorBody {
    fn from(e: &AppError) -> ErrorBody {
        ErrorBody {
            error: e.first.error,
            message: e.first.message.clone(),
            field: e.first.field.clone(),
            item: e.first.item,
            errors: if e.problems_total > 1 { e.problems.clone() } else { Vec::new() },
            errors_total: (e.problems_total > e.problems.len()).then_some(e.problems_total),
        }
    }
}

impl actix_web::ResponseError for AppError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.first.error.status())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        actix_web::HttpResponse::build(self.status_code()).json(ErrorBody::from(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_snake_case_with_their_status() {
        assert_eq!(ErrorCode::ReplayedSubmission.as_str(), "replayed_submission");
        assert_eq!(ErrorCode::ReplayedSubmission.status(), 409);
        assert_eq!(ErrorCode::AmountTooPrecise.as_str(), "amount_too_precise");
        assert_eq!(ErrorCode::AmountTooPrecise.status(), 422);
        assert_eq!(ErrorCode::InvalidJson.status(), 400);
        assert_eq!(ErrorCode::WrongHolder.status(), 403);
    }

    #[test]
    fn batch_errors_keep_count_beyond_the_listed_problems() {
        let problems: Vec<Problem> = (0..150)
            .map(|i| Problem {
                error: ErrorCode::Overdraw,
                message: "x".into(),
                field: None,
                item: Some(i),
            })
            .collect();
        let e = AppError::batch(problems);
        let body = ErrorBody::from(&e);
        assert_eq!(body.errors.len(), PROBLEMS_LISTED_MAX);
        assert_eq!(body.errors_total, Some(150));
        assert_eq!(body.item, Some(0));
    }
}
