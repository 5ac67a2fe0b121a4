//! The knowledge review page: `GET /knowledge` lists the pending proposals, each beside the
//! existing notes it may duplicate (`engine::knowledge::Review`, as `steward knowledge show`);
//! `POST /knowledge/ID/accept` writes the note later runs select, `POST /knowledge/ID/reject`
//! records the reason. Both are refused for a caller descending from a run's agent (an accepted
//! note reaches prompts unfenced) and checked for CSRF; who decided is `web:<session>`.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::session::Session;
use super::{UiState, peer, templates};
use crate::engine::knowledge::{KnowledgeStore, Review};
use crate::engine::run::Definitions;

/// The longest reject reason kept.
const MAX_REASON: usize = 2000;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct KnowledgeForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// `GET /knowledge`.
pub(super) async fn page(State(state): State<UiState>, session: Session) -> Response {
    let cfg = state.shared.config();
    let reviews = tokio::task::spawn_blocking(move || -> Result<Vec<Review>, String> {
        let pending = KnowledgeStore::open(&cfg.state_dir)
            .and_then(|s| s.list(false))
            .map_err(|e| e.to_string())?;
        let defs = Definitions::load(&cfg).map_err(|e| e.to_string())?;
        Ok(pending
            .into_iter()
            .map(|p| Review::of(p, &defs.notes))
            .collect())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match reviews {
        Ok(reviews) => {
            let mut ctx = templates::context(Some(&session));
            ctx.insert("reviews", &reviews);
            state.render("knowledge.html", &ctx)
        }
        Err(e) => state.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(&session),
            "Knowledge",
            &format!("cannot read the proposals: {e}"),
        ),
    }
}

/// Refused for the agent's process tree, then the CSRF checks.
fn admit(
    state: &UiState,
    peer_addr: SocketAddr,
    headers: &HeaderMap,
    session: &Session,
    form: &KnowledgeForm,
    what: &str,
) -> Option<Response> {
    if let Some(why) = peer::agent_caller(peer_addr, &state.shared.ledger.tmp_dir()) {
        state.shared.event(
            "ui_refused",
            serde_json::json!({"session": session.who(), "request": what, "reason": why}),
        );
        let msg = format!("refused: {why}; a run's agent has no route to the knowledge review");
        return Some(state.message(StatusCode::FORBIDDEN, Some(session), "Refused", &msg));
    }
    state.refuse_post(headers, session, form.csrf.as_deref(), what)
}

/// `POST /knowledge/ID/accept`.
pub(super) async fn accept(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<KnowledgeForm>,
) -> Response {
    let what = format!("accept knowledge {id}");
    if let Some(refused) = admit(&state, peer_addr, &headers, &session, &form, &what) {
        return refused;
    }
    let who = session.who();
    let cfg = state.shared.config();
    match KnowledgeStore::open(&cfg.state_dir).and_then(|s| s.accept(&id, &who)) {
        Ok(p) => {
            let note = p.decision.as_ref().and_then(|d| d.note.clone());
            state.shared.event(
                "knowledge_accepted",
                serde_json::json!({"proposal": p.id, "by": who, "note": note}),
            );
            Redirect::to("/knowledge").into_response()
        }
        Err(e) => state.message(
            StatusCode::CONFLICT,
            Some(&session),
            "Not accepted",
            &e.to_string(),
        ),
    }
}

/// `POST /knowledge/ID/reject` (form field `reason`, required).
pub(super) async fn reject(
    State(state): State<UiState>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<KnowledgeForm>,
) -> Response {
    let what = format!("reject knowledge {id}");
    if let Some(refused) = admit(&state, peer_addr, &headers, &session, &form, &what) {
        return refused;
    }
    let reason: String = form
        .reason
        .as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_REASON)
        .collect();
    let who = session.who();
    let cfg = state.shared.config();
    match KnowledgeStore::open(&cfg.state_dir).and_then(|s| s.reject(&id, &who, &reason)) {
        Ok(p) => {
            state.shared.event(
                "knowledge_rejected",
                serde_json::json!({"proposal": p.id, "by": who, "reason": reason}),
            );
            Redirect::to("/knowledge").into_response()
        }
        Err(e) => {
            let status = if e.is_usage() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            state.message(status, Some(&session), "Not rejected", &e.to_string())
        }
    }
}
