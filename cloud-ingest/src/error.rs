//! The service's one error type. Every handler, extractor and storage call
//! returns it, and it alone decides what a client sees: each variant maps to
//! one HTTP status and a JSON body `{"error": "...", "detail": "..."}`.
//!
//! Decision: internal failures (storage, I/O, configuration) are logged here,
//! at the single point where they become responses, and the client only ever
//! gets a generic `internal` body, so no SQL, path or patient data leaks out.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything that can go wrong in the ingest service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: no `Authorization: Bearer` header, an unknown token, or a revoked
    /// one. The three are indistinguishable to the client on purpose.
    #[error("missing, unknown or revoked bearer token")]
    Unauthenticated,
    /// 403: a valid token asked for something its role or patient scope does
    /// not cover.
    #[error("this token may not do that: {0}")]
    Forbidden(&'static str),
    /// 404: the named thing does not exist (CLI: an unknown clinician or
    /// patient).
    #[error("not found: {0}")]
    NotFound(String),
    /// 400: the request or command was malformed; the text names the field.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// 400: an imported CSV file had bad rows; each is listed in the body's
    /// `rows` and nothing was stored.
    #[error("invalid CSV: {} bad row(s)", .0.len())]
    InvalidCsv(Vec<BadRow>),
    /// 409: the thing to create exists already (e.g. a clinician name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 400: a body that is not a valid protocol message; the text names
    /// the field (and, for binary, the byte offset), never a value.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// 413: the body is over the size limit (after decompression too).
    #[error("body too large: {0}")]
    TooLarge(String),
    /// 415: an unknown `Content-Type` or `Content-Encoding`.
    #[error("unsupported media: {0}")]
    UnsupportedMedia(String),
    /// 429: the token spent its request budget; retry after a short wait.
    #[error("rate limit exceeded for this token")]
    RateLimited,
    /// 500: the database failed. Logged, never echoed.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// 500: the PostgreSQL database failed: its SQLSTATE and message only,
    /// never the DETAIL (which can quote row values). Logged, never echoed.
    #[error("postgres: {0}")]
    Postgres(String),
    /// 500: a blocking storage task died (panicked or was cancelled).
    #[error("storage task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// 500 (or exit status 1 at start): the service cannot start or run as
    /// configured, e.g. plain HTTP on a public address, unreadable TLS files.
    #[error("configuration: {0}")]
    Config(String),
    /// 500: an internal invariant failed (a stored row that does not
    /// parse back). Logged, never echoed.
    #[error("internal: {0}")]
    Internal(String),
    /// 500 (or exit status 1 at start): an I/O failure outside the database.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        // A server error's DETAIL and HINT can quote the failing row (a
        // patient's name): keep the code and the message, drop the rest.
        match e.as_db_error() {
            Some(db) => Error::Postgres(format!("{} ({})", db.message(), db.code().code())),
            // Connection, TLS and protocol failures: the chain of causes
            // (e.g. an untrusted certificate) says what to fix.
            None => {
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                Error::Postgres(text)
            }
        }
    }
}

/// The crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Serialize)]
struct Body {
    error: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<Vec<BadRow>>,
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthenticated => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::InvalidInput(_) | Error::InvalidCsv(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Error::Malformed(_) => StatusCode::BAD_REQUEST,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Storage(_)
            | Error::Postgres(_)
            | Error::Task(_)
            | Error::Config(_)
            | Error::Internal(_)
            | Error::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::InvalidInput(_) => "invalid_input",
            Error::InvalidCsv(_) => "invalid_csv",
            Error::Conflict(_) => "conflict",
            Error::RateLimited => "rate_limited",
            Error::Malformed(_) => "malformed",
            Error::TooLarge(_) => "too_large",
            Error::UnsupportedMedia(_) => "unsupported_media",
            Error::Storage(_)
            | Error::Postgres(_)
            | Error::Task(_)
            | Error::Config(_)
            | Error::Internal(_)
            | Error::Io(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = if status.is_server_error() {
            // The only place internal errors are logged. Storage messages
            // carry SQL text at most, never bound values, so no PHI.
            tracing::error!(error = %self, "internal error");
            "internal error; see the service log".to_owned()
        } else {
            self.to_string()
        };
        let rows = match &self {
            Error::InvalidCsv(rows) => Some(rows.clone()),
            _ => None,
        };
        let mut response = (
            status,
            Json(Body {
                error: self.code(),
                detail,
                rows,
            }),
        )
            .into_response();
        if matches!(self, Error::Unauthenticated) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if matches!(self, Error::RateLimited) {
            // A token's bucket refills within a second at any configured
            // rate a phone would get; the SDK waits exactly this long.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Any error answer not already in the documented shape — a body-limit 413,
/// a path, query or method refused by the router, a timeout — rewritten as
/// `{error, detail}` by its status. The replacement never carries the
/// original text, which may quote what the client sent. HTML (the
/// dashboard) and JSON (including FHIR's) answers pass through.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let documented = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json") || ct.starts_with("text/html"));
    if documented {
        return response;
    }
    let (error, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("too_large", "the body is larger than this service accepts")
        }
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media",
            "the body's media type is not accepted here",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        s if s.is_server_error() => ("internal", "internal error; see the service log"),
        _ => (
            "invalid_input",
            "the request's path, query, headers or body could not be read",
        ),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let body = Json(Body {
        error,
        detail: detail.to_owned(),
        rows: None,
    });
    let mut out = (status, body).into_response();
    // Keep headers such as Allow or Retry-After; the body's type is ours.
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// The last resort when a handler panics: the documented JSON 500, logged
/// without the panic's message (it may hold request data).
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Error::Internal("a request handler panicked".into()).into_response()
}

/// Detail of a query string that could not be read (axum's own text quotes
/// the query, so it is not echoed).
pub const UNREADABLE_QUERY: &str =
    "the query string could not be read (check names, times and numbers)";

/// Detail of a form body that could not be read.
pub const UNREADABLE_FORM: &str = "the form could not be read";

/// What is wrong with one row of an imported file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowProblem {
    /// The row could not be split into fields (e.g. a stray quote).
    Malformed {
        /// The CSV reader's explanation.
        detail: String,
    },
    /// The `time` field is not an RFC 3339 date-time.
    BadTime,
    /// The `glucose_mgdl` field is not a finite number.
    BadGlucose,
    /// The glucose is a number but outside [`crate::validate::PLAUSIBLE_MG_DL`].
    ImplausibleGlucose,
    /// The time is outside the window [`crate::validate::check_time`]
    /// accepts (before 2000, or past the server's clock and its skew).
    ImplausibleTime {
        /// `too_old` or `future_time`.
        reason: &'static str,
    },
}

/// One bad row: its 1-based line in the file (line 1 is the header).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRow {
    /// Line number in the file.
    pub line: usize,
    /// What is wrong.
    #[serde(flatten)]
    pub problem: RowProblem,
}
