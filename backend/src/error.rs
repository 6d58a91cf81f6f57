//! Errors with stable codes. Every failure a client can cause maps to an [`ErrorCode`] whose
//! snake_case name is part of the API contract; the HTTP status follows from the code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident = $name:literal => $status:literal,)+) => {
        /// The stable error codes. Clients match on these; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        pub enum ErrorCode {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The snake_case name, as serialized.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name),+ }
            }

            /// The HTTP status for this code.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status),+ }
            }
        }
    };
}

error_codes! {
    // 400: the request itself is malformed.
    InvalidJson = "invalid_json" => 400,
    InvalidQuery = "invalid_query" => 400,
    InvalidPath = "invalid_path" => 400,
    // 401: who are you?
    Unauthorized = "unauthorized" => 401,
    Unsigned = "unsigned" => 401,
    BadSignature = "bad_signature" => 401,
    UnknownKey = "unknown_key" => 401,
    KeyNotValid = "key_not_valid" => 401,
    StaleSignature = "stale_signature" => 401,
    // 403: you may not.
    Forbidden = "forbidden" => 403,
    SignerMismatch = "signer_mismatch" => 403,
    KindNotAllowed = "kind_not_allowed" => 403,
    WrongHolder = "wrong_holder" => 403,
    // 404
    NotFound = "not_found" => 404,
    // 409: conflicts with what is already recorded.
    ReplayedSubmission = "replayed_submission" => 409,
    Overdraw = "overdraw" => 409,
    AlreadyReversed = "already_reversed" => 409,
    AlreadyConfirmed = "already_confirmed" => 409,
    SourceAlreadyDrawn = "source_already_drawn" => 409,
    AlreadyPaid = "already_paid" => 409,
    DuplicateReference = "duplicate_reference" => 409,
    DuplicateRecipient = "duplicate_recipient" => 409,
    AlreadyExists = "already_exists" => 409,
    NotReady = "not_ready" => 409,
    // 413
    PayloadTooLarge = "payload_too_large" => 413,
    // 429: slow down (the public endpoints).
    RateLimited = "rate_limited" => 429,
    // 422: well-formed but invalid.
    InvalidField = "invalid_field" => 422,
    InvalidAmount = "invalid_amount" => 422,
    AmountNotPositive = "amount_not_positive" => 422,
    AmountTooPrecise = "amount_too_precise" => 422,
    AmountTooLarge = "amount_too_large" => 422,
    AmountNotCanonical = "amount_not_canonical" => 422,
    AmountMismatch = "amount_mismatch" => 422,
    InvalidIdNumber = "invalid_id_number" => 422,
    InvalidPeriod = "invalid_period" => 422,
    InvalidValueDate = "invalid_value_date" => 422,
    InvalidReference = "invalid_reference" => 422,
    EntryNotCanonical = "entry_not_canonical" => 422,
    UnknownSource = "unknown_source" => 422,
    NotDrawable = "not_drawable" => 422,
    UnknownOrg = "unknown_org" => 422,
    UnknownProgram = "unknown_program" => 422,
    UnknownRecipient = "unknown_recipient" => 422,
    RecipientNotPayable = "recipient_not_payable" => 422,
    RecipientNotInOffice = "recipient_not_in_office" => 422,
    NotAChildOrg = "not_a_child_org" => 422,
    ProgramMismatch = "program_mismatch" => 422,
    BatchTooLarge = "batch_too_large" => 422,
    EmptyBatch = "empty_batch" => 422,
    UnknownAccount = "unknown_account" => 422,
    UnknownFormat = "unknown_format" => 422,
    BadStatementRow = "bad_statement_row" => 422,
    StatementUnbalanced = "statement_unbalanced" => 422,
    DigestMismatch = "digest_mismatch" => 422,
    // 500/503: ours, never the client's.
    Internal = "internal" => 500,
    Unavailable = "unavailable" => 503,
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
    /// Where in an uploaded file: `line 17`, or an XML path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// The most problems one response lists; beyond that the count says how many more.
pub const PROBLEMS_LISTED_MAX: usize = 100;

/// An application error: the first problem, and for batches every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub first: Box<Problem>,
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
        AppError::from(Problem {
            error,
            message: message.into(),
            field: None,
            item: None,
            location: None,
        })
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
        assert!(
            !problems.is_empty(),
            "a batch error needs at least one problem"
        );
        let total = problems.len();
        problems.truncate(PROBLEMS_LISTED_MAX);
        AppError {
            first: Box::new(problems[0].clone()),
            problems,
            problems_total: total,
        }
    }

    /// The same error under another code.
    pub fn with_code(mut self, code: ErrorCode) -> AppError {
        self.first.error = code;
        if let Some(p) = self.problems.first_mut() {
            p.error = code;
        }
        self
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
        AppError {
            first: Box::new(p.clone()),
            problems: vec![p],
            problems_total: 1,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> AppError {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::NotFound => AppError::not_found("record"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => AppError::new(
                ErrorCode::AlreadyExists,
                format!("already exists: {}", info.message()),
            ),
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
        AppError::new(
            ErrorCode::Unavailable,
            "no database connection available; try again",
        )
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
    /// Where in an uploaded file, where the error came from one (`line 17`, an XML path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For batches and files: every problem found (up to 100).
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
            location: e.first.location.clone(),
            errors: if e.problems_total > 1 {
                e.problems.clone()
            } else {
                Vec::new()
            },
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
    fn every_code_serializes_as_its_name_and_round_trips() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), *code);
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn codes_serialize_as_snake_case_with_their_status() {
        assert_eq!(
            ErrorCode::ReplayedSubmission.as_str(),
            "replayed_submission"
        );
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
                location: None,
            })
            .collect();
        let e = AppError::batch(problems);
        let body = ErrorBody::from(&e);
        assert_eq!(body.errors.len(), PROBLEMS_LISTED_MAX);
        assert_eq!(body.errors_total, Some(150));
        assert_eq!(body.item, Some(0));
    }
}
