//! The HTTP side: the webhooks (auth, content type and size checked before anything is parsed),
//! `daemon.sock`'s `/signals`, `/healthz` and `/metrics`, and the two axum apps.

use std::sync::Arc;
use std::time::Duration;

use axum::Router as HttpRouter;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::text::encode;

use super::auth::{self, Endpoint};
use super::payload::{alertmanager_signals, generic_signal};
use super::routing::Answer;
use super::shared::Shared;
use crate::base::signal::Signal;

/// A JSON answer with a status.
fn answer(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    answer(status, serde_json::json!({"error": reason.into()}))
}

/// Auth, content type and size: everything a webhook checks before it parses anything.
async fn admit(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, Response> {
    let Some(token) = shared.token(endpoint) else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no webhook token is configured for this endpoint: it refuses every request",
        ));
    };
    let bad_request = |e: auth::Repeated| refuse(StatusCode::BAD_REQUEST, e.to_string());
    let credentials =
        auth::single(headers, &header::AUTHORIZATION, "Authorization").map_err(bad_request)?;
    if !auth::authorized(credentials, &token) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong credentials (Authorization: Bearer TOKEN)",
        ));
    }
    let json = auth::single(headers, &header::CONTENT_TYPE, "Content-Type")
        .map_err(bad_request)?
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ));
    }
    let serve = shared.config().serve.clone();
    let limit = serve.max_body_bytes;
    let too_big = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_big());
    }
    // A body trickled in a byte at a time would hold its connection (and descriptor) for ever.
    let deadline = Duration::from_secs(serve.body_timeout_secs);
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b.to_vec()),
        // Past the limit, or the client went away; either way nothing is routed.
        Ok(Err(_)) => Err(too_big()),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (serve.body_timeout_secs)",
                deadline.as_secs()
            ),
        )),
    }
}

async fn decisions(shared: Arc<Shared>, signals: Vec<Signal>) -> Response {
    #[derive(serde::Serialize)]
    struct Reply {
        accepted: usize,
        decisions: Vec<Answer>,
    }
    let accepted = signals.len();
    let Some(decisions) = shared.submit(signals).await else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "routing stopped unexpectedly",
        );
    };
    // A 5xx makes Alertmanager retry; merged repeats make that harmless.
    let status = if decisions.iter().any(Answer::failed) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    answer(
        status,
        Reply {
            accepted,
            decisions,
        },
    )
}

async fn hook_alertmanager(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match admit(&shared, Endpoint::Alertmanager, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match alertmanager_signals(&bytes) {
        Ok(signals) => decisions(shared, signals).await,
        Err(reason) => refuse(StatusCode::BAD_REQUEST, reason),
    }
}

async fn hook_generic(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match admit(&shared, Endpoint::Generic, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match generic_signal(&bytes) {
        Ok(signal) => decisions(shared, vec![signal]).await,
        Err(reason) => refuse(StatusCode::BAD_REQUEST, reason),
    }
}

/// `POST /signals` on the local socket: a trigger's whole signal. The socket's file mode (owner
/// only, in the state directory) is the authentication.
async fn local_signal(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Signal>(&body) {
        Ok(signal) => decisions(shared, vec![signal.bounded()]).await,
        Err(e) => refuse(StatusCode::BAD_REQUEST, format!("not a signal: {e}")),
    }
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(t) = shared.health.degraded() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "degraded", "reason": t.reason,
                "since": t.since.format(&time::format_description::well_known::Rfc3339).ok(),
                "failed_writes": t.failed,
                "queue_depth": shared.queue_depth().ok()}),
        );
    }
    match shared.queue_depth() {
        Ok(n) => answer(
            StatusCode::OK,
            serde_json::json!({"status": "ok", "queue_depth": n}),
        ),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "error", "error": e.to_string()}),
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(n) = shared.queue_depth() {
        shared
            .metrics
            .depth
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    shared.metrics.scrape(&shared.ledger);
    let mut text = String::new();
    if encode(&mut text, &shared.metrics.registry).is_err() {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(super) fn app(shared: Arc<Shared>) -> HttpRouter {
    let hooks = HttpRouter::new()
        .route("/hooks/alertmanager", post(hook_alertmanager))
        .route("/hooks/generic", post(hook_generic))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(shared.clone());
    // The web page, only when a UI token is configured.
    match super::ui::router(shared) {
        Some(pages) => hooks.merge(pages),
        None => hooks,
    }
}

pub(super) fn local_app(shared: Arc<Shared>) -> HttpRouter {
    HttpRouter::new()
        .route("/signals", post(local_signal))
        .route("/healthz", get(healthz))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        .with_state(shared)
}
