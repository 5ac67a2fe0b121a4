//! `GET /approvals`: what waits for an operator. Pending actions (argv, rationale, checks, the
//! state fingerprint, expiry, the run that filed them) and pending changes (the diff read back
//! from git as `steward changes show` reads it, validation, blast radius, rollback target,
//! expiry). `?action=ID` and `?change=ID` show one item in any state (notification links point
//! there). Reading changes nothing but what the stores do themselves: an item past its expiry
//! is shown expired.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::session::Session;
use super::{UiState, templates};
use crate::config::Config;
use crate::engine::approval::{Action, ActionState, Executor, Store};
use crate::engine::change::approve::Checker;
use crate::engine::change::diff::{DiffLimits, diff_between};
use crate::engine::change::record::{BlastRadius, ChangeRecord, ChangeState};
use crate::engine::change::store::ChangeStore;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Which {
    action: Option<String>,
    change: Option<String>,
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Who runs an approved action, as the CLI says it.
pub(super) fn who_runs(a: &Action) -> String {
    match a.executor {
        Executor::Steward => "steward's executor (no shell, clean environment)".into(),
        Executor::Agent => format!(
            "the waiting run {}: its agent runs the call",
            a.run_id.as_deref().unwrap_or("?")
        ),
    }
}

/// An action as the templates read it: the record plus what the page shows beside it.
pub(super) fn action_view(a: &Action) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("who_runs".into(), who_runs(a).into());
        m.insert("subjects".into(), json!(a.subjects()));
        m.insert(
            "is_pending".into(),
            (a.state == ActionState::Pending).into(),
        );
        m.insert("expires_text".into(), rfc3339(a.expires).into());
        m.insert("created_text".into(), rfc3339(a.created).into());
    }
    v
}

/// One line of a diff with its class (`add`, `del`, `hunk`, `meta` or none).
fn diff_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            let class = if l.starts_with("+++") || l.starts_with("---") || l.starts_with("diff ") {
                "meta"
            } else if l.starts_with('+') {
                "add"
            } else if l.starts_with('-') {
                "del"
            } else if l.starts_with("@@") {
                "hunk"
            } else {
                ""
            };
            json!({"class": class, "text": l})
        })
        .collect()
}

/// The blast radius in words, one line per part the planning found (an empty list is "nothing
/// recorded", never "nothing will happen" unless a note says so).
fn blast_lines(b: &BlastRadius) -> Vec<String> {
    let mut lines = Vec::new();
    if !b.units.is_empty() {
        lines.push(format!("units: {}", b.units.join(", ")));
    }
    for (job, counts) in &b.nomad {
        let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        lines.push(format!("nomad job {job}: {}", counts.join(", ")));
    }
    for (file, services) in &b.compose_services {
        lines.push(format!("compose {file}: recreates {}", services.join(", ")));
    }
    lines.extend(b.notes.iter().cloned());
    lines
}

/// A change as the templates read it: the record plus its diff as git has it now.
pub(super) async fn change_view(cfg: &Config, store: &ChangeStore, rec: &ChangeRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    let diff = match Checker::new(cfg, store) {
        Ok(checker) => diff_between(
            checker.git(),
            &rec.workspace,
            &rec.base,
            &rec.head,
            DiffLimits::default(),
        )
        .await
        .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Value::Object(m) = &mut v {
        m.insert(
            "is_pending".into(),
            (rec.state == ChangeState::Pending).into(),
        );
        m.insert("expires_text".into(), rfc3339(rec.expires).into());
        m.insert("blast_lines".into(), blast_lines(&rec.blast_radius).into());
        // The record leaves empty lists out; the template reads them as lists.
        m.insert(
            "steps".into(),
            serde_json::to_value(&rec.steps).unwrap_or_default(),
        );
        m.insert(
            "rollback_text".into(),
            serde_json::to_string(&rec.rollback_target)
                .unwrap_or_default()
                .into(),
        );
        match &diff {
            Ok(d) => {
                m.insert("diff_lines".into(), diff_lines(&d.text).into());
                m.insert("diff_truncated".into(), d.truncated.into());
                let matches = rec.diff_sha256.is_empty() || d.diff_sha256 == rec.diff_sha256;
                m.insert("diff_matches".into(), matches.into());
            }
            Err(e) => {
                m.insert("diff_error".into(), e.clone().into());
            }
        }
    }
    v
}

/// `GET /approvals[?action=ID|?change=ID]`.
pub(super) async fn page(
    State(state): State<UiState>,
    session: Session,
    Query(which): Query<Which>,
) -> Response {
    let cfg = state.shared.config();
    let now = OffsetDateTime::now_utc();
    let mut ctx = templates::context(Some(&session));
    let actions = match Store::open(&cfg.state_dir).and_then(|s| {
        let all = s.list()?;
        Ok(match &which.action {
            Some(id) => all.into_iter().filter(|a| &a.id == id).collect::<Vec<_>>(),
            None if which.change.is_some() => Vec::new(),
            None => all
                .into_iter()
                .filter(|a| a.state == ActionState::Pending && a.expires > now)
                .collect(),
        })
    }) {
        Ok(list) => list,
        Err(e) => {
            let why = format!("cannot read the actions: {e}");
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Approvals",
                &why,
            );
        }
    };
    let changes = match pending_changes(&cfg, &which, now) {
        Ok(c) => c,
        Err(why) => {
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Approvals",
                &why,
            );
        }
    };
    let mut change_views = Vec::new();
    if let Ok(store) = ChangeStore::open(&cfg.state_dir) {
        for rec in &changes {
            change_views.push(change_view(&cfg, &store, rec).await);
        }
    }
    let single = which.action.is_some() || which.change.is_some();
    if single && actions.is_empty() && changes.is_empty() {
        return state.message(
            StatusCode::NOT_FOUND,
            Some(&session),
            "Approvals",
            "no such action or change",
        );
    }
    ctx.insert("single", &single);
    ctx.insert(
        "actions",
        &actions.iter().map(action_view).collect::<Vec<_>>(),
    );
    ctx.insert("changes", &change_views);
    state.render("approvals.html", &ctx)
}

/// Pending changes (expired ones moved first), or the one asked for in any state.
fn pending_changes(
    cfg: &Config,
    which: &Which,
    now: OffsetDateTime,
) -> Result<Vec<ChangeRecord>, String> {
    let store = ChangeStore::open(&cfg.state_dir).map_err(|e| e.to_string())?;
    store
        .expire_due(now)
        .map_err(|e| format!("cannot expire changes: {e}"))?;
    if let Some(id) = &which.change {
        return Ok(store.get(id).ok().into_iter().collect());
    }
    if which.action.is_some() {
        return Ok(Vec::new());
    }
    let all = store
        .list()
        .map_err(|e| format!("cannot read the changes: {e}"))?;
    Ok(all
        .into_iter()
        .filter(|r| r.state == ChangeState::Pending)
        .collect())
}
