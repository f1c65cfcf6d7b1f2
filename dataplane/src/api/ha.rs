//! The HA pair's endpoints (not in the Data Plane API's spec): `GET /ha/status` (API users or
//! the pair) and `PUT /ha/replica` (the pair only), and the refusal of writes on the BACKUP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, Shared, drain};
use crate::ha::Role;
use crate::ha::replicate::{self, Replica};

fn pair(app: &Shared) -> Result<&crate::ha::Pair, ApiError> {
    app.ha.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this node is not one of an HA pair (no ha: section in its configuration)",
        )
    })
}

pub async fn status(State(app): State<Shared>) -> Result<Response, ApiError> {
    let pair = pair(&app)?;
    let snap = app.store.current()?;
    Ok(Json(pair.status(&snap.doc)).into_response())
}

pub async fn replica(
    State(app): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let pair = pair(&app)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let replica: Replica = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not a replica: {e}")))?;
    let (version, digest) = replicate::receive(&app, pair, replica).await?;
    Ok(Json(json!({"version": version, "digest": digest})).into_response())
}

/// On the BACKUP of a pair, every change (POST, PUT, DELETE, PATCH of the Data Plane API) is
/// refused with 503 naming the MASTER; reads pass.
pub async fn refuse_writes_on_backup(
    State(app): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(pair) = &app.ha
        && !read
        && !req.uri().path().starts_with("/ha/")
        && pair.role() == Role::Backup
    {
        drain(req).await;
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, pair.not_master_message())
            .into_response();
    }
    next.run(req).await
}
