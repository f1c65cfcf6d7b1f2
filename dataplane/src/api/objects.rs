//! Frontends, backends, servers (`?backend=`) and binds (`?frontend=`): list, get, create,
//! replace, delete — in a transaction (`transaction_id`) or straight on the configuration
//! (`version`, then a reload).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::params::Params;
use super::{ApiError, Shared};
use std::sync::Arc;

use crate::cfg::{Document, Kind, ModelError, model};
use crate::ha::replicate::Replication;
use crate::store::Snapshot;
use crate::transactions::{Status, Transaction};

/// The configuration a read sees: the current file (shared, not copied) or a transaction's copy.
pub(super) enum Readable {
    Current(Arc<Snapshot>),
    Transaction(Document),
}

impl std::ops::Deref for Readable {
    type Target = Document;

    fn deref(&self) -> &Document {
        match self {
            Readable::Current(snap) => &snap.doc,
            Readable::Transaction(doc) => doc,
        }
    }
}

/// The configuration to read: a transaction's copy (`transaction_id`) or the current file.
pub(super) fn readable(app: &Shared, params: &Params) -> Result<Readable, ApiError> {
    match params.text("transaction_id") {
        Some(id) => {
            let t = app.transactions.get(id)?;
            Ok(Readable::Transaction(app.transactions.document(&t)?))
        }
        None => Ok(Readable::Current(app.store.current()?)),
    }
}

/// `{"_version": N, "data": …}` with the `Configuration-Version` header.
pub(super) fn versioned(version: u64, data: Value) -> Response {
    let mut resp = Json(json!({"_version": version, "data": data})).into_response();
    resp.headers_mut().insert(
        HeaderName::from_static("configuration-version"),
        HeaderValue::from(version),
    );
    resp
}

/// How a change was applied.
pub(super) enum Applied {
    InTransaction,
    /// Committed and reloaded (`force_reload=true`); in an HA pair, whether the peer has it.
    Reloaded(Option<Replication>),
    /// Committed; the reload with this id follows after the reload delay.
    ReloadRequested(String, Option<Replication>),
}

impl Applied {
    /// The answer to a write: `created` picks 201 over 200 for a forced reload.
    pub(super) fn respond(self, created: bool, body: Option<Value>) -> Response {
        let (status, reload_id, replication) = match self {
            Applied::InTransaction => (StatusCode::ACCEPTED, None, None),
            Applied::ReloadRequested(id, r) => (StatusCode::ACCEPTED, Some(id), r),
            Applied::Reloaded(r) if body.is_none() => (StatusCode::NO_CONTENT, None, r),
            Applied::Reloaded(r) if created => (StatusCode::CREATED, None, r),
            Applied::Reloaded(r) => (StatusCode::OK, None, r),
        };
        let mut resp = match body {
            Some(b) => (status, Json(b)).into_response(),
            None => status.into_response(),
        };
        if let Some(id) = reload_id
            && let Ok(v) = HeaderValue::from_str(&id)
        {
            resp.headers_mut()
                .insert(HeaderName::from_static("reload-id"), v);
        }
        with_replication(resp, replication.as_ref())
    }
}

/// Where a write goes, from `transaction_id` / `version` (exactly one of them, as the real
/// server requires).
enum Target {
    Transaction(Transaction),
    Configuration { version: i64, force: bool },
}

fn target(app: &Shared, params: &Params) -> Result<Target, ApiError> {
    let version = params.integer("version")?;
    let force = params.flag("force_reload")?;
    match (params.text("transaction_id"), version) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "both version and transaction specified, specify only one",
        )),
        (None, None) => Err(ApiError::bad_request(
            "version or transaction not specified, specify only one",
        )),
        (Some(id), None) => {
            let t = app.transactions.get(id)?;
            if t.status != Status::InProgress {
                return Err(ApiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    format!("transaction {id} is {}: start a new one", t.status.as_str()),
                ));
            }
            Ok(Target::Transaction(t))
        }
        (None, Some(version)) => Ok(Target::Configuration { version, force }),
    }
}

/// 409 unless `version` is the configuration's current one.
pub(super) fn check_version(given: i64, current: u64) -> Result<(), ApiError> {
    if u64::try_from(given).ok() == Some(current) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "version mismatch: the configuration is at version {current}, the request is for version {given}"
            ),
        ))
    }
}

/// Applies `change` where the parameters say, checking and committing a configuration change.
pub(super) async fn apply<T>(
    app: &Shared,
    params: &Params,
    change: impl FnOnce(&mut Document) -> Result<T, ApiError>,
) -> Result<(T, Applied), ApiError> {
    let target = target(app, params)?;
    let guard = app.store.lock().await;
    match target {
        Target::Transaction(t) => {
            let mut doc = app.transactions.document(&t)?;
            let out = change(&mut doc)?;
            app.transactions.save_document(&t, &doc)?;
            Ok((out, Applied::InTransaction))
        }
        Target::Configuration { version, force } => {
            let snap = app.store.current()?;
            check_version(version, snap.version())?;
            let mut doc = snap.doc.clone();
            let out = change(&mut doc)?;
            doc.version = snap.version() + 1;
            app.store.commit(&guard, doc).await?;
            drop(guard);
            Ok((out, reload(app, force).await?))
        }
    }
}

/// In an HA pair, `X-Ha-Replication: in-sync` or `peer-behind; <reason>`.
pub(super) fn with_replication(mut resp: Response, replication: Option<&Replication>) -> Response {
    if let Some(r) = replication
        && let Ok(v) = HeaderValue::from_str(&r.header_value())
    {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-ha-replication"), v);
    }
    resp
}

/// After a commit: the peer of an HA pair gets it (awaited), then the reload.
pub(super) async fn reload(app: &Shared, force: bool) -> Result<Applied, ApiError> {
    let replication = replicate(app).await;
    if force {
        // 400, as the real server answers a failed reload; the file keeps the committed version
        // (haproxy -c accepted it), and the reload's record says why haproxy did not load it.
        app.reloader.force().await.map_err(|m| {
            eprintln!("haproxy-dataplaneapi: forced reload failed: {m}");
            ApiError::bad_request(format!(
                "the configuration was committed, but reloading haproxy failed: {m}"
            ))
        })?;
        Ok(Applied::Reloaded(replication))
    } else {
        Ok(Applied::ReloadRequested(
            app.reloader.request(),
            replication,
        ))
    }
}

/// Pushes the configuration just committed to the HA peer and waits for its answer (None
/// without a pair).
pub(super) async fn replicate(app: &Shared) -> Option<Replication> {
    match &app.ha {
        Some(pair) => Some(pair.push(&app.store, true).await),
        None => None,
    }
}

pub(super) fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn parent_key(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Server => Some("backend"),
        Kind::Bind => Some("frontend"),
        _ => None,
    }
}

fn parent(kind: Kind, params: &Params) -> Option<String> {
    parent_key(kind)
        .and_then(|k| params.text(k))
        .map(String::from)
}

async fn list(app: Shared, kind: Kind, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let doc = readable(&app, &params)?;
    let items = model::list(&doc, kind, parent(kind, &params).as_deref())?;
    Ok(versioned(doc.version, Value::Array(items)))
}

async fn get_one(app: Shared, kind: Kind, name: String, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let doc = readable(&app, &params)?;
    let item = model::get(&doc, kind, &name, parent(kind, &params).as_deref())?;
    Ok(versioned(doc.version, item))
}

async fn create(
    app: Shared,
    kind: Kind,
    q: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let data = json_body(body)?;
    let p = parent(kind, &params);
    let (item, applied) = apply(&app, &params, |doc| {
        Ok(model::create(doc, kind, &data, p.as_deref())?)
    })
    .await?;
    Ok(applied.respond(true, Some(item)))
}

async fn replace(
    app: Shared,
    kind: Kind,
    name: String,
    q: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let data = json_body(body)?;
    let p = parent(kind, &params);
    let (item, applied) = apply(&app, &params, |doc| {
        Ok(model::replace(doc, kind, &name, &data, p.as_deref())?)
    })
    .await?;
    Ok(applied.respond(false, Some(item)))
}

async fn delete(app: Shared, kind: Kind, name: String, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let p = parent(kind, &params);
    let ((), applied) = apply(&app, &params, |doc| {
        model::delete(doc, kind, &name, p.as_deref()).map_err(|e: ModelError| e.into())
    })
    .await?;
    Ok(applied.respond(false, None))
}

/// The five handlers of one kind, as axum wants them (one function per route and method).
macro_rules! handlers {
    ($kind:expr, $list:ident, $get:ident, $create:ident, $replace:ident, $delete:ident) => {
        pub async fn $list(State(app): State<Shared>, q: RawQuery) -> Result<Response, ApiError> {
            list(app, $kind, q).await
        }
        pub async fn $get(
            State(app): State<Shared>,
            Path(name): Path<String>,
            q: RawQuery,
        ) -> Result<Response, ApiError> {
            get_one(app, $kind, name, q).await
        }
        pub async fn $create(
            State(app): State<Shared>,
            q: RawQuery,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            create(app, $kind, q, body).await
        }
        pub async fn $replace(
            State(app): State<Shared>,
            Path(name): Path<String>,
            q: RawQuery,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            replace(app, $kind, name, q, body).await
        }
        pub async fn $delete(
            State(app): State<Shared>,
            Path(name): Path<String>,
            q: RawQuery,
        ) -> Result<Response, ApiError> {
            delete(app, $kind, name, q).await
        }
    };
}

handlers!(
    Kind::Frontend,
    list_frontends,
    get_frontend,
    create_frontend,
    replace_frontend,
    delete_frontend
);
handlers!(
    Kind::Backend,
    list_backends,
    get_backend,
    create_backend,
    replace_backend,
    delete_backend
);
handlers!(
    Kind::Server,
    list_servers,
    get_server,
    create_server,
    replace_server,
    delete_server
);
handlers!(
    Kind::Bind,
    list_binds,
    get_bind,
    create_bind,
    replace_bind,
    delete_bind
);
