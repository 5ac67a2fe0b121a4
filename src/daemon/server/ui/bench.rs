//! A bench-only switch for `bench/ui.py`: with `STEWARD_BENCH_STATIC_DIR=DIR` in its environment,
//! `steward serve` also answers `GET /bench/static/NAME` with the file `DIR/NAME` (read once, then
//! served from memory, behind the same session check and headers as every page), and every page's
//! answer carries `Server-Timing: app;dur=MS` (the time from the request reaching the page's
//! router to its answer being built). The benchmark saves the runs page and a run's page as
//! files there, so the static answer has exactly their size and goes through the same process,
//! listener, session lookup and middleware: what differs is only the page's own work (the
//! catalog query and the template). Unset (always, outside the benchmark), none of this exists.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router as HttpRouter;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::UiState;
use super::session::Session;

const VAR: &str = "STEWARD_BENCH_STATIC_DIR";

#[derive(Clone, Default)]
struct Cache {
    dir: PathBuf,
    files: Arc<Mutex<HashMap<String, axum::body::Bytes>>>,
}

/// The page's router with the bench's route and timing, when the switch is set.
pub(super) fn wrap(pages: HttpRouter<UiState>, state: &UiState) -> HttpRouter<UiState> {
    let Some(dir) = std::env::var_os(VAR).map(PathBuf::from) else {
        return pages;
    };
    tracing::warn!(dir = %dir.display(), "{VAR} is set: bench-only static pages and Server-Timing are on");
    let cache = Cache {
        dir,
        ..Cache::default()
    };
    let statics = HttpRouter::new()
        .route("/bench/static/{name}", get(static_page))
        .layer(axum::Extension(cache));
    pages
        .merge(statics)
        .layer(axum::middleware::from_fn_with_state(state.clone(), timing))
}

async fn timing(State(_): State<UiState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut res = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

async fn static_page(
    _session: Session,
    axum::Extension(cache): axum::Extension<Cache>,
    Path(name): Path<String>,
) -> Response {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    }
    let mut files = cache.files.lock().unwrap_or_else(|p| p.into_inner());
    let body = match files.get(&name) {
        Some(b) => b.clone(),
        None => match std::fs::read(cache.dir.join(&name)) {
            Ok(bytes) => files.entry(name).or_insert(bytes.into()).clone(),
            Err(_) => return (StatusCode::NOT_FOUND, "no such page").into_response(),
        },
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
