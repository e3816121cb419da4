//! Why an `/api/` request failed, and the status and JSON body each reason gets.

use super::super::HttpAnswer;

/// Why an `/api/` request got no data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The path or query is malformed: a bad escape, a number that does not parse.
    #[error("{0}")]
    BadRequest(String),
    /// No such route, topic, partition or group.
    #[error("{0}")]
    NotFound(String),
    /// Refused on purpose (records while an ACL authorizer is configured).
    #[error("{0}")]
    Forbidden(String),
    /// The data directory is still opening.
    #[error("not ready: opening the data directory")]
    NotReady,
    /// Reading the log or encoding the answer failed.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Internal(_) => 500,
            ApiError::NotReady => 503,
        }
    }

    /// The answer: the status and `{"error": "<message>"}`.
    pub fn into_answer(self) -> HttpAnswer {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        HttpAnswer::json(self.status(), body)
    }
}
