//! The page's decisions: `POST /actions/ID/approve|reject` and `POST /changes/ID/approve|reject`.
//! Each is refused (403, recorded) for a caller that descends from a run's agent, then checked
//! for CSRF. Approving takes two POSTs: the first answers a confirmation page showing exactly
//! what will run, with a binding of what was shown (the action's argv and state fingerprint, the
//! change's diff digest); only the second, carrying `confirm` and that binding, approves, and
//! it refuses if the item changed in between. The work (executing the action, re-checking and
//! applying the change) runs in the daemon through the same services as the CLI, as a
//! background task: the POST answers a redirect at once. Who decided is `web:<session>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::approvals::{action_view, change_view};
use super::session::Session;
use super::{UiState, peer, templates};
use crate::config::Config;
use crate::engine::approval::{Action, Store};
use crate::engine::change::apply;
use crate::engine::change::approve::{self, Checker, Verdict};
use crate::engine::change::store::ChangeStore;

/// How long an approved action's command may run (the CLI's default).
const ACTION_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest reject reason kept.
const MAX_REASON: usize = 2000;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct DecideForm {
    csrf: Option<String>,
    confirm: Option<String>,
    binding: Option<String>,
    reason: Option<String>,
}

/// What the confirmation page showed of an action: its argv, fingerprint and executor.
fn action_binding(a: &Action) -> String {
    let mut h = Sha256::new();
    for arg in &a.argv {
        h.update(arg.as_bytes());
        h.update([0]);
    }
    h.update(a.state_fingerprint.as_bytes());
    h.update([0]);
    h.update(format!("{:?}", a.executor).as_bytes());
    hex::encode(h.finalize())
}

/// The checks every decision passes first: not the agent, same origin, the session's token.
fn admit(
    state: &UiState,
    peer_addr: SocketAddr,
    headers: &HeaderMap,
    session: &Session,
    form: &DecideForm,
    what: &str,
) -> Option<Response> {
    let homes = state.shared.ledger.tmp_dir();
    if let Some(why) = peer::agent_caller(peer_addr, &homes) {
        state.shared.event(
            "ui_refused",
            serde_json::json!({"session": session.who(), "request": what, "reason": why}),
        );
        let msg = format!("refused: {why}; a run's agent has no route to an approval");
        return Some(state.message(StatusCode::FORBIDDEN, Some(session), "Refused", &msg));
    }
    state.refuse_post(headers, session, form.csrf.as_deref(), what)
}

fn reason_of(form: &DecideForm) -> Result<String, &'static str> {
    let reason = form.reason.as_deref().unwrap_or("").trim();
    if reason.is_empty() {
        return Err("a rejection needs a reason: it is recorded with the decision");
    }
    Ok(reason.chars().take(MAX_REASON).collect())
}

/// A decision that failed in the background is recorded; the page shows the item's state.
fn failed(state: &UiState, who: &str, what: String, e: impl std::fmt::Display) {
    let why = e.to_string();
    tracing::error!("{what} by {who}: {why}");
    state.shared.event(
        "ui_decision_failed",
        serde_json::json!({"by": who, "request": what, "reason": why}),
    );
}

pub(super) async fn approve_action(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let what = format!("approve action {id}");
    if let Some(refused) = admit(&state, peer_addr, &headers, &session, &form, &what) {
        return refused;
    }
    let cfg = state.shared.config();
    let action = match Store::open(&cfg.state_dir).and_then(|s| s.approvable(&id)) {
        Ok(a) => a,
        Err(e) => {
            return state.message(
                StatusCode::CONFLICT,
                Some(&session),
                "Not approved",
                &e.to_string(),
            );
        }
    };
    let binding = action_binding(&action);
    if form.confirm.is_none() {
        let mut ctx = templates::context(Some(&session));
        ctx.insert("action", &action_view(&action));
        ctx.insert("binding", &binding);
        return state.render("confirm_action.html", &ctx);
    }
    if form.binding.as_deref() != Some(binding.as_str()) {
        let msg = format!(
            "not approved: action {id} changed since the confirmation was shown (its command, \
             state fingerprint or executor); review it again"
        );
        return state.message(StatusCode::CONFLICT, Some(&session), "Not approved", &msg);
    }
    let who = session.who();
    let task_state = state.clone();
    tokio::spawn(async move {
        let _running = task_state.ui.work.enter().await;
        let done = crate::engine::run::approve_and_execute(&cfg, &id, &who, None, ACTION_TIMEOUT);
        if let Err(e) = done.await {
            failed(&task_state, &who, format!("approve action {id}"), e);
        }
    });
    Redirect::to(&format!(
        "/approvals?action={}",
        super::session::encode_component(&action.id)
    ))
    .into_response()
}

/// A rejection's checks ([`admit`]) and its reason, or the page that refuses it.
fn admit_rejection(
    state: &UiState,
    peer_addr: SocketAddr,
    headers: &HeaderMap,
    session: &Session,
    form: &DecideForm,
    what: &str,
) -> Result<String, Box<Response>> {
    if let Some(refused) = admit(state, peer_addr, headers, session, form, what) {
        return Err(Box::new(refused));
    }
    reason_of(form).map_err(|why| {
        Box::new(state.message(StatusCode::BAD_REQUEST, Some(session), "Not rejected", why))
    })
}

pub(super) async fn reject_action(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let what = format!("reject action {id}");
    let reason = match admit_rejection(&state, peer_addr, &headers, &session, &form, &what) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let cfg = state.shared.config();
    let who = session.who();
    match Store::open(&cfg.state_dir).and_then(|s| s.reject(&id, &who, Some(reason.clone()))) {
        Ok(a) => {
            state.shared.event(
                "action_rejected",
                serde_json::json!({"action": a.id, "by": who, "note": reason}),
            );
            Redirect::to(&format!(
                "/approvals?action={}",
                super::session::encode_component(&a.id)
            ))
            .into_response()
        }
        Err(e) => state.message(
            StatusCode::CONFLICT,
            Some(&session),
            "Not rejected",
            &e.to_string(),
        ),
    }
}

pub(super) async fn approve_change(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let what = format!("approve change {id}");
    if let Some(refused) = admit(&state, peer_addr, &headers, &session, &form, &what) {
        return refused;
    }
    let cfg = state.shared.config();
    let found = ChangeStore::open(&cfg.state_dir)
        .map_err(|e| e.to_string())
        .and_then(|store| {
            approve::approvable(&store, &id, OffsetDateTime::now_utc())
                .map(|rec| (store, rec))
                .map_err(|e| e.to_string())
        });
    let (store, rec) = match found {
        Ok(x) => x,
        Err(e) => return state.message(StatusCode::CONFLICT, Some(&session), "Not approved", &e),
    };
    if form.confirm.is_none() {
        let mut ctx = templates::context(Some(&session));
        let view = change_view(&cfg, &store, &rec).await;
        ctx.insert("change", &view);
        // The card's own names (it is included in the list's loop too).
        ctx.insert("c", &view);
        ctx.insert("confirming", &true);
        ctx.insert("binding", &rec.diff_sha256);
        return state.render("confirm_change.html", &ctx);
    }
    if rec.diff_sha256.is_empty() || form.binding.as_deref() != Some(rec.diff_sha256.as_str()) {
        let msg = format!(
            "not approved: change {id}'s diff is not the one the confirmation showed; review it again"
        );
        return state.message(StatusCode::CONFLICT, Some(&session), "Not approved", &msg);
    }
    let who = session.who();
    let task_state = state.clone();
    tokio::spawn(async move { approve_and_apply(task_state, cfg, id, who).await });
    Redirect::to(&format!(
        "/approvals?change={}",
        super::session::encode_component(&rec.id)
    ))
    .into_response()
}

/// The CLI's path for a change: re-check and approve, then apply (under the host lock,
/// verified, rolled back when it does not verify). Each step records itself.
async fn approve_and_apply(state: UiState, cfg: Arc<Config>, id: String, who: String) {
    let _running = state.ui.work.enter().await;
    let what = format!("approve change {id}");
    let store = match ChangeStore::open(&cfg.state_dir) {
        Ok(s) => s,
        Err(e) => return failed(&state, &who, what, e),
    };
    let verdict = match Checker::new(&cfg, &store) {
        Ok(checker) => approve::approve(&checker, &id, &who).await,
        Err(e) => Err(e),
    };
    match verdict {
        Ok(Verdict::Approved(rec)) => {
            if let Err(e) = apply::apply(&cfg, &rec.id, state.ui.work.cancel()).await {
                failed(&state, &who, format!("apply change {id}"), e);
            }
        }
        Ok(Verdict::Refused(rec)) => failed(
            &state,
            &who,
            what,
            format!("{} is now {}: {}", rec.id, rec.state.as_str(), rec.reason),
        ),
        Ok(Verdict::Rebased { old, new }) => failed(
            &state,
            &who,
            what,
            format!(
                "{} is stale ({}); the change was replayed as {}, which needs its own approval",
                old.id, old.reason, new.id
            ),
        ),
        Err(e) => failed(&state, &who, what, e),
    }
}

pub(super) async fn reject_change(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let what = format!("reject change {id}");
    let reason = match admit_rejection(&state, peer_addr, &headers, &session, &form, &what) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let cfg = state.shared.config();
    let who = session.who();
    let store = match ChangeStore::open(&cfg.state_dir) {
        Ok(s) => s,
        Err(e) => {
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Not rejected",
                &e.to_string(),
            );
        }
    };
    let done = match Checker::new(&cfg, &store) {
        Ok(checker) => approve::reject(&checker, &id, &who, &reason).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(r) => Redirect::to(&format!(
            "/approvals?change={}",
            super::session::encode_component(&r.change.id)
        ))
        .into_response(),
        Err(e) => state.message(
            StatusCode::CONFLICT,
            Some(&session),
            "Not rejected",
            &e.to_string(),
        ),
    }
}
