//! The spec's error answer: a status code and `{"code": N, "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cfg::ModelError;
use crate::store::StoreError;
use crate::transactions::TransactionError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A failure of this machine (disk, haproxy missing): logged, and answered 500.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        eprintln!("haproxy-dataplaneapi: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let status = match e {
            ModelError::NotFound(_) => StatusCode::NOT_FOUND,
            ModelError::AlreadyExists(_) => StatusCode::CONFLICT,
            ModelError::Invalid { .. } => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<TransactionError> for ApiError {
    fn from(e: TransactionError) -> Self {
        match e {
            TransactionError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            TransactionError::TooMany(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
            }
            TransactionError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}
