//! `/services/haproxy/transactions[/{id}]`: start on a version, list, inspect, delete, commit.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::objects::{check_version, reload};
use super::params::Params;
use super::{ApiError, Shared};
use crate::store::StoreError;
use crate::transactions::Status;

pub async fn list(State(app): State<Shared>, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let wanted = match params.text("status") {
        None => None,
        Some("failed") => Some(Status::Failed),
        Some("in_progress") => Some(Status::InProgress),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "query parameter 'status': expected failed or in_progress, got {:?}",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let current = app.store.current()?.version();
    let items: Vec<Value> = app
        .transactions
        .list()
        .into_iter()
        .filter(|t| wanted.is_none_or(|w| t.status_at(current) == w))
        .map(|t| t.to_json(current))
        .collect();
    Ok(Json(Value::Array(items)).into_response())
}

pub async fn start(State(app): State<Shared>, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let version = params.integer("version")?.ok_or_else(|| {
        ApiError::bad_request(
            "query parameter 'version' is required: the configuration version to work on",
        )
    })?;
    let _guard = app.store.lock().await;
    let snap = app.store.current()?;
    check_version(version, snap.version())?;
    let t = app.transactions.start(&snap.doc)?;
    Ok((StatusCode::CREATED, Json(t.to_json(snap.version()))).into_response())
}

pub async fn get(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let t = app.transactions.get(&id)?;
    let current = app.store.current()?.version();
    Ok(Json(t.to_json(current)).into_response())
}

pub async fn delete(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let _guard = app.store.lock().await;
    app.transactions.delete(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Commits: the copy becomes the next version if the configuration has not moved on since the
/// transaction started (else 409) and haproxy accepts it (else 400, and the transaction is
/// marked failed with haproxy's message).
pub async fn commit(
    State(app): State<Shared>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let force = params.flag("force_reload")?;
    let guard = app.store.lock().await;
    let t = app.transactions.get(&id)?;
    if t.status != Status::InProgress {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("transaction {id} is {}: start a new one", t.status.as_str()),
        ));
    }
    let snap = app.store.current()?;
    if t.is_outdated(snap.version()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "transaction {id} is outdated: it was started on version {}, the configuration is now at version {}; start a new transaction",
                t.version,
                snap.version()
            ),
        ));
    }
    let mut doc = app.transactions.document(&t)?;
    doc.version = snap.version() + 1;
    let committed = match app.store.commit(&guard, doc).await {
        Ok(s) => s,
        Err(StoreError::Invalid(message)) => {
            app.transactions.fail(&t, &message)?;
            return Err(StoreError::Invalid(message).into());
        }
        Err(e) => return Err(e.into()),
    };
    app.transactions.delete(&id)?;
    drop(guard);
    let body = serde_json::json!({"id": id, "_version": committed.version(), "status": Status::Success.as_str()});
    Ok(reload(&app, force).await?.respond(false, Some(body)))
}
