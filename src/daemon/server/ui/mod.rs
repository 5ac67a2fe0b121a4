//! The web page served by `steward serve`: server-rendered HTML (tera), a little JavaScript for
//! live updates, everything embedded in the binary. Off unless a UI token is configured; then
//! its routes are merged into the daemon's HTTP app, so the listener's connection caps and
//! timeouts hold for them too.
//!
//! Security (see README "The web page"): a login with the UI token makes a session
//! ([`session::Session`], the extractor every page takes); every state change is a POST checked
//! by [`UiState::refuse_post`] (Origin, `Sec-Fetch-Site`, the session's CSRF token); every answer
//! carries a strict Content-Security-Policy and no page is cached or framed.

mod approvals;
mod bench;
mod chart;
pub(in crate::daemon::server) mod csrf;
mod decide;
mod knowledge;
pub(in crate::daemon::server) mod limit;
mod live;
mod login;
pub(in crate::daemon::server) mod page_work;
mod peer;
pub(in crate::daemon::server) mod run_cache;
mod run_page;
pub(in crate::daemon::server) mod runs;
mod runs_table;
pub(in crate::daemon::server) mod session;
mod signals;
pub(in crate::daemon::server) mod templates;
pub(in crate::daemon::server) mod token;

use std::sync::Arc;

use axum::Router as HttpRouter;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use subtle::ConstantTimeEq;

use super::ServeError;
use super::auth::{TokenDigest, Tokens, digest};
use super::shared::Shared;
use crate::config::Config;
use session::Session;

/// The largest form a page posts (a reject reason is the longest field).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What the page keeps for the daemon's life: its templates, sessions, login limiter and token.
pub(in crate::daemon::server) struct Ui {
    pub tera: tera::Tera,
    pub sessions: session::Sessions,
    pub logins: limit::Limiter,
    token: TokenDigest,
    /// Slots of `/live` connections.
    pub live_slots: Arc<tokio::sync::Semaphore>,
    /// Turns true when the daemon stops: the live streams end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// `serve.public_url` at start: the allowed origin behind a proxy, and `Secure` cookies.
    pub public_url: Option<String>,
    /// Finished runs' pages, drawn once (see [`run_cache`]).
    pub run_pages: run_cache::RunPageCache,
    /// Executions and applies the page started, waited for when the daemon stops.
    pub work: page_work::PageWork,
}

impl Ui {
    /// The page for this configuration: `None` without a UI token; an error (stopping the start)
    /// for a token that is unreadable, short or a webhook's, or templates that do not parse.
    pub fn open(cfg: &Config, webhooks: &Tokens) -> Result<Option<Ui>, ServeError> {
        let Some(path) = token::ui_token_path(cfg) else {
            tracing::info!(
                "no UI token (serve.ui_token_file, $STEWARD_UI_TOKEN_FILE, credential ui-token): \
                 the web page is off"
            );
            return Ok(None);
        };
        let token = token::load(&path, &webhooks.configured())?;
        let tera = templates::engine().map_err(|e| ServeError::UiToken {
            path: path.clone(),
            message: format!("the page cannot start: {e}"),
        })?;
        tracing::info!(token_file = %path.display(), "the web page is on");
        Ok(Some(Ui {
            tera,
            sessions: session::Sessions::default(),
            logins: limit::Limiter::default(),
            live_slots: Arc::new(tokio::sync::Semaphore::new(live::MAX_LIVE)),
            stopping: tokio::sync::watch::Sender::new(false),
            token,
            public_url: cfg.serve.public_url.clone(),
            run_pages: run_cache::RunPageCache::default(),
            work: page_work::PageWork::default(),
        }))
    }

    /// A page on an https public URL gets `Secure` cookies.
    pub fn secure_cookie(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The given login token is the UI token (constant time, over digests: the length is
    /// hidden too).
    pub fn token_matches(&self, given: &str) -> bool {
        bool::from(digest(given.trim().as_bytes()).ct_eq(&self.token))
    }
}

/// The state every page handler gets: the daemon's and the page's.
#[derive(Clone)]
pub(in crate::daemon::server) struct UiState {
    pub shared: Arc<Shared>,
    pub ui: Arc<Ui>,
}

impl UiState {
    /// A page with the layout's context for `session`.
    pub fn render(&self, name: &str, ctx: &tera::Context) -> Response {
        templates::render(&self.ui.tera, name, ctx)
    }

    /// A short page saying why a request was refused (or what happened), with a status.
    pub fn message(
        &self,
        status: StatusCode,
        session: Option<&Session>,
        heading: &str,
        message: &str,
    ) -> Response {
        let mut ctx = templates::context(session);
        ctx.insert("heading", heading);
        ctx.insert("message", message);
        ctx.insert("error", &!status.is_success());
        let mut res = self.render("message.html", &ctx);
        if res.status() == StatusCode::OK {
            *res.status_mut() = status;
        }
        res
    }

    /// Every state-changing POST passes this first: the request comes from this page
    /// (`Sec-Fetch-Site`, `Origin`) and carries the session's CSRF token. `Some`: the answer
    /// refusing it (403), the refusal recorded (`ui_refused`).
    pub fn refuse_post(
        &self,
        headers: &HeaderMap,
        session: &Session,
        csrf: Option<&str>,
        what: &str,
    ) -> Option<Response> {
        let checked = csrf::check_headers(headers, self.ui.public_url.as_deref())
            .and_then(|()| csrf::check_token(csrf, &session.csrf));
        let e = checked.err()?;
        self.shared.event(
            "ui_refused",
            serde_json::json!({"session": session.who(), "request": what,
                "reason": e.to_string()}),
        );
        Some(self.message(
            StatusCode::FORBIDDEN,
            Some(session),
            "Refused",
            &e.to_string(),
        ))
    }
}

/// The page's routes, when the page is on. Each area adds its routes here.
pub(in crate::daemon::server) fn router(shared: Arc<Shared>) -> Option<HttpRouter> {
    let ui = shared.ui.clone()?;
    let state = UiState { shared, ui };
    let pages = HttpRouter::new()
        .merge(runs::routes())
        .merge(signals::routes())
        .route("/assets/{name}", get(templates::asset))
        .merge(login::routes())
        .route("/approvals", get(approvals::page))
        .route("/runs/{id}", get(run_page::page))
        .route("/live", get(live::live))
        .route("/actions/{id}/approve", post(decide::approve_action))
        .route("/actions/{id}/reject", post(decide::reject_action))
        .route("/changes/{id}/approve", post(decide::approve_change))
        .route("/changes/{id}/reject", post(decide::reject_change))
        .route("/knowledge", get(knowledge::page))
        .route("/knowledge/{id}/accept", post(knowledge::accept))
        .route("/knowledge/{id}/reject", post(knowledge::reject));
    let pages = bench::wrap(pages, &state)
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state);
    Some(pages)
}

/// Every page's answer: scripts, styles, images and forms from this origin only, never framed,
/// no referrer to other sites, nothing cached but the assets (which set their own).
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
             object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
