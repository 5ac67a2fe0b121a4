//! `GET /login`, `POST /login` (form field `token`) and `POST /logout`. A failed login is
//! recorded (`ui_login_failed`, without what was typed) and counts toward the rate limits; a
//! limited one is answered 429 with `Retry-After` before the token is compared.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Form;
use axum::Router as HttpRouter;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::session::{self, COOKIE, LIFETIME, Session};
use super::{UiState, csrf, templates};

pub(super) fn routes() -> HttpRouter<UiState> {
    HttpRouter::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
}

#[derive(Debug, serde::Deserialize)]
struct Next {
    next: Option<String>,
}

fn next_or_root(next: Option<&str>) -> String {
    next.and_then(session::local_path)
        .unwrap_or("/")
        .to_string()
}

fn login_form(state: &UiState, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let mut ctx = templates::context(None);
    ctx.insert("next", next);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    templates::render_status(&state.ui.tera, "login.html", &ctx, status)
}

async fn login_page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = next_or_root(q.next.as_deref());
    let live =
        session::cookie_value(&headers).and_then(|c| state.ui.sessions.get(&c, Instant::now()));
    if live.is_some() {
        return Redirect::to(&next).into_response();
    }
    login_form(&state, StatusCode::OK, &next, None)
}

#[derive(Debug, serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<UiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = next_or_root(form.next.as_deref());
    let now = Instant::now();
    let peer_text = peer.ip().to_string();
    // Login CSRF: a foreign page must not log the browser in to a session of its choosing.
    if let Err(e) = csrf::check_headers(&headers, state.ui.public_url.as_deref()) {
        state.shared.event(
            "ui_login_failed",
            serde_json::json!({"peer": peer_text, "reason": e.to_string()}),
        );
        return login_form(&state, StatusCode::FORBIDDEN, &next, Some(&e.to_string()));
    }
    if let Err(secs) = state.ui.logins.check(peer.ip(), now) {
        state.shared.event(
            "ui_login_failed",
            serde_json::json!({"peer": peer_text, "reason": "rate limited",
                "retry_after_secs": secs}),
        );
        let why = format!("too many failed logins: try again in {secs} s");
        let mut res = login_form(&state, StatusCode::TOO_MANY_REQUESTS, &next, Some(&why));
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return res;
    }
    if !state.ui.token_matches(&form.token) {
        state.ui.logins.failed(peer.ip(), now);
        state.shared.event(
            "ui_login_failed",
            serde_json::json!({"peer": peer_text, "reason": "wrong token"}),
        );
        return login_form(&state, StatusCode::UNAUTHORIZED, &next, Some("wrong token"));
    }
    let (cookie, session) = match state.ui.sessions.create(now) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot make a session: {e}");
            return login_form(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                &next,
                Some("cannot make a session (no randomness)"),
            );
        }
    };
    state.shared.event(
        "ui_login",
        serde_json::json!({"session": session.who(), "peer": peer_text}),
    );
    let mut res = Redirect::to(&next).into_response();
    set_cookie(
        &mut res,
        &cookie_header(&state, &cookie, LIFETIME.as_secs()),
    );
    res
}

fn cookie_header(state: &UiState, value: &str, max_age: u64) -> String {
    let secure = if state.ui.secure_cookie() {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn set_cookie(res: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
}

#[derive(Debug, serde::Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    State(state): State<UiState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = state.refuse_post(&headers, &session, form.csrf.as_deref(), "logout") {
        return refused;
    }
    if let Some(c) = session::cookie_value(&headers) {
        state.ui.sessions.remove(&c);
    }
    state
        .shared
        .event("ui_logout", serde_json::json!({"session": session.who()}));
    let mut res = Redirect::to("/login").into_response();
    set_cookie(&mut res, &cookie_header(&state, "", 0));
    res
}
