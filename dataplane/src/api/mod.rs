//! The HTTP API: routes under `/v2`, basic authentication, and the spec's error shape
//! (`{"code": N, "message": "..."}`) for every failure, including unknown paths and bad
//! query strings.

mod errors;
mod ha;
mod misc;
mod objects;
mod params;
mod transactions;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

pub use errors::ApiError;

use crate::auth::Authenticator;
use crate::ha::Pair;
use crate::reload::Reloader;
use crate::store::Store;
use crate::transactions::Transactions;

/// Everything a handler needs.
pub struct App {
    pub store: Store,
    pub transactions: Transactions,
    pub reloader: Reloader,
    pub auth: Authenticator,
    /// This node's half of an HA pair (`ha:` in the settings).
    pub ha: Option<Pair>,
}

pub type Shared = Arc<App>;

/// Largest request body: a whole haproxy.cfg for `POST …/raw` (100 000 services fit).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

pub fn router(app: Shared) -> Router {
    let cfg = "/v2/services/haproxy/configuration";
    Router::new()
        .route("/v2/info", get(misc::info))
        .route("/v2/specification", get(misc::specification))
        .route(&format!("{cfg}/version"), get(misc::version))
        .route(
            &format!("{cfg}/raw"),
            get(misc::get_raw).post(misc::post_raw),
        )
        .route(
            &format!("{cfg}/frontends"),
            get(objects::list_frontends).post(objects::create_frontend),
        )
        .route(
            &format!("{cfg}/frontends/{{name}}"),
            get(objects::get_frontend)
                .put(objects::replace_frontend)
                .delete(objects::delete_frontend),
        )
        .route(
            &format!("{cfg}/backends"),
            get(objects::list_backends).post(objects::create_backend),
        )
        .route(
            &format!("{cfg}/backends/{{name}}"),
            get(objects::get_backend)
                .put(objects::replace_backend)
                .delete(objects::delete_backend),
        )
        .route(
            &format!("{cfg}/servers"),
            get(objects::list_servers).post(objects::create_server),
        )
        .route(
            &format!("{cfg}/servers/{{name}}"),
            get(objects::get_server)
                .put(objects::replace_server)
                .delete(objects::delete_server),
        )
        .route(
            &format!("{cfg}/binds"),
            get(objects::list_binds).post(objects::create_bind),
        )
        .route(
            &format!("{cfg}/binds/{{name}}"),
            get(objects::get_bind)
                .put(objects::replace_bind)
                .delete(objects::delete_bind),
        )
        .route(
            "/v2/services/haproxy/transactions",
            get(transactions::list).post(transactions::start),
        )
        .route(
            "/v2/services/haproxy/transactions/{id}",
            get(transactions::get)
                .put(transactions::commit)
                .delete(transactions::delete),
        )
        .route("/v2/services/haproxy/reloads", get(misc::reloads))
        .route("/v2/services/haproxy/reloads/{id}", get(misc::reload_one))
        .route("/ha/status", get(ha::status))
        .route("/ha/replica", put(ha::replica))
        .fallback(|req: Request| async {
            drain(req).await;
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such path in the Data Plane API v2",
            )
        })
        .method_not_allowed_fallback(|req: Request| async {
            drain(req).await;
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this path",
            )
        })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            ha::refuse_writes_on_backup,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(bounded_time))
        .layer(middleware::from_fn(access_log))
        .with_state(app)
}

/// 401 unless the request carries the credentials of a user of the configured userlist; in an
/// HA pair, `/ha/replica` takes only the pair's credentials and `/ha/status` either.
async fn authenticate(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let users = match app.store.current() {
        Ok(snap) => snap.users.clone(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let path = req.uri().path();
    let (pair_ok, users_allowed) = match &app.ha {
        Some(pair) if path.starts_with("/ha/") => (pair.authorizes(given), path != "/ha/replica"),
        _ => (false, true),
    };
    if pair_ok || (users_allowed && app.auth.check(&users, given)) {
        return next.run(req).await;
    }
    drain(req).await;
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication required: HTTP basic auth with a user of the Data Plane API's userlist",
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"HAProxy Data Plane API\""),
    );
    resp
}

/// The longest a request may take, body upload included: a commit's `haproxy -c` (60 s at most)
/// and a forced reload (120 s at most) fit; a client trickling its body does not hold a
/// connection slot for longer.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(200);

async fn bounded_time(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response()
        }
    }
}

/// Reads and drops the body of a request answered without it (401, 404, 405): a client that
/// sends the whole body before reading the answer would otherwise see the connection reset
/// instead of the answer. Bounded like any body.
async fn drain(req: Request) {
    let _ = axum::body::to_bytes(req.into_body(), MAX_BODY).await;
}

/// One line per request on stdout (the journal): method, path, status, time, except a
/// successful `GET /ha/status`. No query string, header or body is logged, so no credential can
/// reach the log.
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().chars().take(200).collect::<String>();
    let resp = next.run(req).await;
    // The pair's heartbeat (the MASTER asks every second) would drown the journal.
    if path == "/ha/status" && method == axum::http::Method::GET && resp.status().is_success() {
        return resp;
    }
    println!(
        "{method} {path} {} {:.1}ms",
        resp.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    resp
}
