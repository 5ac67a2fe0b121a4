//! `GET /live[?run=ID]`: server-sent events for the page's in-place updates. Each connection
//! tails the event log (today's `events/YYYY-MM-DD.jsonl`, from its end when it connects) and
//! sends an `update` for every run, action and change event, named and with its ids only (the
//! page fetches itself again for the rest); with `?run=ID` it also watches that run's stage and
//! sends `stage` when it moves or the run ends. Connections are bounded ([`MAX_LIVE`]; past it
//! 503), kept alive with comments, and end when the daemon stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::UiState;
use super::session::Session;

/// Live connections at most (each holds a connection slot of the listener too).
pub(in crate::daemon::server) const MAX_LIVE: usize = 32;
/// How often a connection looks at the event log and its run.
const POLL: Duration = Duration::from_millis(500);
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Event kinds the page follows.
const FOLLOWED: [&str; 3] = ["run_", "action_", "change_"];

#[derive(Debug, serde::Deserialize)]
pub(super) struct LiveQuery {
    run: Option<String>,
}

/// One connection's place in the event log and in its run.
struct Tail {
    events_dir: PathBuf,
    file: String,
    offset: u64,
    run: Option<RunWatch>,
    pending: VecDeque<Event>,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

struct RunWatch {
    id: String,
    dir: PathBuf,
    last: (String, bool),
}

fn day_file(now: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}.jsonl",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// The run's stage (`run.json`) and whether it has a result.
fn run_stage(dir: &std::path::Path) -> (String, bool) {
    let stage = std::fs::read(dir.join("run.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["stage"].as_str().map(str::to_string))
        .unwrap_or_default();
    (stage, dir.join("result.json").exists())
}

/// The ids an `update` carries: what changed, never the event's data.
fn update_of(line: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(line).ok()?;
    let kind = v["kind"].as_str()?;
    if !FOLLOWED.iter().any(|p| kind.starts_with(p)) {
        return None;
    }
    let data = json!({"kind": kind, "run": v["run"], "action": v["action"], "change": v["change"]});
    Some(Event::default().event("update").data(data.to_string()))
}

impl Tail {
    /// New complete lines of the event log since the last look.
    fn read_log(&mut self) {
        let today = day_file(OffsetDateTime::now_utc());
        if today != self.file {
            self.file = today;
            self.offset = 0;
        }
        let Ok(mut f) = std::fs::File::open(self.events_dir.join(&self.file)) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        // Only whole lines: a line still being written is read next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        self.offset += end as u64 + 1;
        for line in String::from_utf8_lossy(&buf[..end]).lines() {
            if let Some(e) = update_of(line) {
                self.pending.push_back(e);
            }
        }
    }

    fn read_run(&mut self) {
        let Some(w) = &mut self.run else { return };
        let now = run_stage(&w.dir);
        if now != w.last {
            let data = json!({"run": w.id, "stage": now.0, "finished": now.1});
            self.pending
                .push_back(Event::default().event("stage").data(data.to_string()));
            w.last = now;
        }
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Tail)> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some((Ok(e), self));
            }
            if *self.stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = self.stop.wait_for(|s| *s) => return None,
            }
            self.read_log();
            self.read_run();
        }
    }
}

/// `GET /live`.
pub(super) async fn live(
    State(state): State<UiState>,
    _session: Session,
    Query(q): Query<LiveQuery>,
) -> Response {
    let Ok(slot) = state.ui.live_slots.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_LIVE} live connections are open: reload later"),
        )
            .into_response();
    };
    let ledger = &state.shared.ledger;
    let events_dir = ledger.root().join("events");
    let file = day_file(OffsetDateTime::now_utc());
    let offset = std::fs::metadata(events_dir.join(&file)).map_or(0, |m| m.len());
    let run = q
        .run
        .filter(|id| super::run_page::plausible_id(id))
        .map(|id| {
            let dir = ledger.runs_dir().join(&id);
            let last = run_stage(&dir);
            RunWatch { id, dir, last }
        });
    let tail = Tail {
        events_dir,
        file,
        offset,
        run,
        pending: VecDeque::from([Event::default().event("hello").data("{}")]),
        stop: state.ui.stopping.subscribe(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(tail, Tail::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_run_action_and_change_events_become_updates() {
        assert!(update_of(r#"{"kind":"action_executed","action":"a1","run":"r"}"#).is_some());
        assert!(update_of(r#"{"kind":"run_finished","run":"r"}"#).is_some());
        assert!(update_of(r#"{"kind":"ui_login_failed","peer":"x"}"#).is_none());
        assert!(update_of("not json").is_none());
    }
}
