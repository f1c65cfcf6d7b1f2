//! `/info`, `/specification`, the configuration's version and raw text, and reloads.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::objects::{check_version, readable, reload, replicate, versioned, with_replication};
use super::params::Params;
use super::{ApiError, Shared};
use crate::auth::Users;
use crate::cfg::Document;

const SPECIFICATION: &str = include_str!(concat!(env!("OUT_DIR"), "/specification.json"));

pub async fn info() -> Response {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let hostname = read("/proc/sys/kernel/hostname").trim().to_string();
    let uptime = read("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|s| s as i64);
    let rss_kib: i64 = read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Json(json!({
        "api": {"version": format!("haproxy-dataplaneapi {}", crate::VERSION)},
        "system": {
            "hostname": hostname,
            "time": now_ms,
            "uptime": uptime,
            "cpu_info": {"num_cpus": cpus},
            "mem_info": {"dataplaneapi_memory": rss_kib * 1024},
            "os_string": std::env::consts::OS,
        }
    }))
    .into_response()
}

pub async fn specification() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], SPECIFICATION).into_response()
}

pub async fn version(State(app): State<Shared>, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let doc = readable(&app, &params)?;
    Ok(Json(json!(doc.version)).into_response())
}

pub async fn get_raw(State(app): State<Shared>, q: RawQuery) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    if params.get("version").is_some() {
        // The spec lists `version` here; the real server ignores it for a read too.
        params.integer("version")?;
    }
    let doc = readable(&app, &params)?;
    Ok(versioned(doc.version, json!(doc.render())))
}

/// Replaces the whole configuration with the body (text/plain).
pub async fn post_raw(
    State(app): State<Shared>,
    q: RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(q)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the configuration is not UTF-8 text"))?;
    let mut doc = Document::parse(text);
    let userlist = app.store.userlist();
    if Users::from_document(&doc, userlist).is_empty() {
        return Err(ApiError::bad_request(format!(
            "the configuration has no user in 'userlist {userlist}': nobody could use the Data Plane API afterwards"
        )));
    }
    let skip_version = params.flag("skip_version")?;
    let skip_reload = params.flag("skip_reload")?;
    let only_validate = params.flag("only_validate")?;
    let force = params.flag("force_reload")?;
    let version = params.integer("version")?;
    let guard = app.store.lock().await;
    let snap = app.store.current()?;
    match (skip_version, version) {
        (true, _) => {}
        (false, Some(v)) => check_version(v, snap.version())?,
        (false, None) => {
            return Err(ApiError::bad_request(
                "query parameter 'version' is required unless skip_version=true",
            ));
        }
    }
    doc.version = snap.version() + 1;
    if only_validate {
        app.store.validate_only(&guard, &doc).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!("the configuration is valid")),
        )
            .into_response());
    }
    let committed = app.store.commit(&guard, doc).await?;
    drop(guard);
    let text = json!(committed.doc.render());
    if skip_reload {
        let replication = replicate(&app).await;
        let resp = (StatusCode::CREATED, Json(text)).into_response();
        return Ok(with_replication(resp, replication.as_ref()));
    }
    Ok(reload(&app, force).await?.respond(true, Some(text)))
}

pub async fn reloads(State(app): State<Shared>) -> Response {
    let items: Vec<Value> = app.reloader.list().iter().map(|r| r.to_json()).collect();
    Json(Value::Array(items)).into_response()
}

pub async fn reload_one(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.reloader
        .get(&id)
        .map(|r| Json(r.to_json()).into_response())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("reload {id} not found")))
}
