//! `GET /runs/ID`: one run as an incident report, from the same record `steward runs show`
//! reads (`engine::run::report::show_run`): the signal, the checks before and after per phase,
//! each tool call with its policy decision and output, the verdict, the actions and change
//! filed, the rollback and the cost. A run still going is marked live: `/assets/live.js`
//! refreshes the report in place when its stage changes or it ends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::run_cache::RunPageCache;
use super::session::Session;
use super::{UiState, templates};
use crate::engine::approval::Store;
use crate::engine::run::report::{RunDetail, show_run};

/// A run id is a directory name steward made: nothing that walks out of `runs/`.
pub(super) fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && !id.starts_with('.')
}

/// The checks of one phase, for the template.
fn phase(name: &str, when: &str, checks: &Value) -> Option<Value> {
    let list = checks.as_array().filter(|l| !l.is_empty())?;
    Some(json!({"phase": name, "when": when, "checks": list}))
}

/// The record as the template reads it: phases in order, tool inputs as text, liveness.
fn view(detail: &RunDetail) -> Value {
    let mut v = serde_json::to_value(detail).unwrap_or(Value::Null);
    let before = &v["checks_before"];
    let after = &v["checks_after"];
    let phases: Vec<Value> = [
        phase("static", "before", &before["static_"]),
        phase("preflight", "before", &before["preflight"]),
        phase("invariants", "before", &before["invariants"]),
        phase("post", "before", &before["post"]),
        phase("invariants", "after", &after["invariants"]),
        phase("post", "after", &after["post"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    let running = detail.result.is_none() && detail.outcome == "running";
    if let Value::Object(m) = &mut v {
        m.insert("phases".into(), phases.into());
        m.insert("running".into(), running.into());
        m.insert(
            "signal_text".into(),
            serde_json::to_string_pretty(&detail.signal)
                .unwrap_or_default()
                .into(),
        );
        if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
            for c in calls.iter_mut() {
                let text = match c["input"]["command"].as_str() {
                    Some(cmd) => cmd.to_string(),
                    None => serde_json::to_string_pretty(&c["input"]).unwrap_or_default(),
                };
                c["input_text"] = text.into();
            }
        }
    }
    v
}

/// `GET /runs/ID`.
pub(super) async fn page(
    State(state): State<UiState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if !plausible_id(&id) {
        return state.message(StatusCode::NOT_FOUND, Some(&session), "Run", "no such run");
    }
    let ledger = &state.shared.ledger;
    let run_dir = ledger.runs_dir().join(&id);
    if !run_dir.is_dir() {
        return state.message(StatusCode::NOT_FOUND, Some(&session), "Run", "no such run");
    }
    let cache = &state.ui.run_pages;
    let stamp = RunPageCache::stamp(&run_dir, &Store::state_dirs(ledger.root()));
    if let Some(html) = stamp
        .as_ref()
        .and_then(|s| cache.get(&id, s, &session.csrf))
    {
        return Html(html).into_response();
    }
    let detail = match show_run(ledger, &id) {
        Ok(d) => d,
        Err(e) => {
            let why = format!("cannot read run {id}: {e}");
            return state.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&session),
                "Run",
                &why,
            );
        }
    };
    let mut ctx = templates::context(Some(&session));
    ctx.insert("run", &view(&detail));
    let Some(stamp) = stamp else {
        return state.render("run.html", &ctx);
    };
    // Drawn once with the marker in the token's place, kept, and served with this session's.
    ctx.insert("csrf", cache.marker());
    match state.ui.tera.render("run.html", &ctx) {
        Ok(html) => {
            cache.put(&id, stamp, &html);
            Html(html.replace(cache.marker(), &session.csrf)).into_response()
        }
        Err(_) => {
            ctx.insert("csrf", &session.csrf);
            state.render("run.html", &ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_stay_inside_the_runs_directory() {
        assert!(plausible_id("20261130T101500Z-health-check-1a2b"));
        for bad in ["", "..", "../etc", "a/b", ".hidden", "a b"] {
            assert!(!plausible_id(bad), "{bad}");
        }
    }
}
