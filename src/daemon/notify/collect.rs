//! From the record to notices. Nothing in the run path waits on this: it reads what steward
//! already wrote.
//!
//! - The event log from a persisted cursor (`STATE/notify/cursor.json`: day file and byte
//!   offset; whole lines only): `run_finished` (escalated → `escalation`, failed → `run_failed`,
//!   and the run's `result.json` for a rollback that ran → `rollback_done`/`rollback_failed`),
//!   the router's `escalation` for flapping (→ `flapping`), `operator_notice` for the daily
//!   budget (→ `budget_exhausted`), `event_log_recovered` (→ `daemon_degraded`, when the
//!   outage could not be told while it lasted).
//! - The approval store: every pending action (→ `action_pending`).
//! - The change store: pending changes (→ `change_pending`), rolled back or failed ones
//!   (→ `rollback_done`/`rollback_failed`) since notifications started.
//!
//! The first pass on a state directory starts an hour back, so that configuring a target does
//! not send the whole history, while what just happened is still told.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::NotifyError;
use super::message::{About, Notice};
use super::outbox::Outbox;
use crate::base::ledger::{self, Event};
use crate::config::Config;
use crate::engine::approval::{ActionState, Store};
use crate::engine::change::record::ChangeState;
use crate::engine::change::store::ChangeStore;

/// At most this much of the event log is read per pass (the rest the next pass).
const MAX_READ: u64 = 8 * 1024 * 1024;

/// Where the last pass stopped reading the event log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    /// The day file (`2026-11-30.jsonl`) and the byte offset of the first unread line.
    file: String,
    offset: u64,
    /// Notifications started here: records from before are not told (pending ones are).
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
}

/// Every notice the record holds now; the outbox drops the ones already queued.
pub fn collect(cfg: &Config, outbox: &Outbox) -> Result<Vec<Notice>, NotifyError> {
    let path = outbox.root().join("cursor.json");
    let mut cursor = match ledger::read_json::<Cursor>(&path) {
        Ok(c) => c,
        Err(ledger::LedgerError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Cursor {
                file: String::new(),
                offset: 0,
                since: OffsetDateTime::now_utc() - time::Duration::hours(1),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let mut notices = from_events(&cfg.state_dir, &mut cursor)?;
    notices.extend(from_actions(&cfg.state_dir)?);
    notices.extend(from_changes(&cfg.state_dir, cursor.since)?);
    ledger::write_json(&path, &cursor)?;
    Ok(notices)
}

/// The event log's lines after the cursor, as notices; moves the cursor past them.
fn from_events(state: &Path, cursor: &mut Cursor) -> Result<Vec<Notice>, NotifyError> {
    let dir = state.join("events");
    let mut files: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".jsonl") && *n >= cursor.file)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(NotifyError::Read { path: dir, source }),
    };
    files.sort();
    let mut out = Vec::new();
    for name in files {
        if name != cursor.file {
            cursor.file = name.clone();
            cursor.offset = 0;
        }
        let (lines, read) = read_lines(&dir.join(&name), cursor.offset)?;
        cursor.offset += read;
        for line in lines {
            let Ok(event) = serde_json::from_str::<Event>(&line) else {
                continue;
            };
            if event.time >= cursor.since {
                out.extend(notice_of(state, &event));
            }
        }
    }
    Ok(out)
}

/// Whole lines from `offset` (at most [`MAX_READ`] bytes) and how many bytes they took.
fn read_lines(path: &PathBuf, offset: u64) -> Result<(Vec<String>, u64), NotifyError> {
    let err = |source| NotifyError::Read {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    f.seek(SeekFrom::Start(offset)).map_err(err)?;
    let mut buf = Vec::new();
    f.take(MAX_READ).read_to_end(&mut buf).map_err(err)?;
    // A line still being written has no newline yet: the next pass reads it.
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&buf[..end]);
    Ok((text.lines().map(str::to_string).collect(), end as u64))
}

fn field<'a>(event: &'a Event, key: &str) -> &'a str {
    event.data.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// The notices one event stands for.
fn notice_of(state: &Path, event: &Event) -> Vec<Notice> {
    match event.kind.as_str() {
        "run_finished" => run_notices(state, event),
        "escalation" if field(event, "cause") == "flapping" => vec![flapping(event)],
        "operator_notice" if field(event, "cause") == "daily_budget" => vec![budget(event)],
        "event_log_recovered" => vec![degraded_recovered(event)],
        _ => Vec::new(),
    }
}

fn run_notices(state: &Path, event: &Event) -> Vec<Notice> {
    let Some(run) = event.run.clone() else {
        return Vec::new();
    };
    let goal = field(event, "goal");
    let reason = field(event, "reason");
    let mut out = Vec::new();
    let (kind, severity, verb) = match field(event, "outcome") {
        "escalated" => ("escalation", "critical", "escalated"),
        "failed" => ("run_failed", "warning", "failed"),
        _ => ("", "", ""),
    };
    if !kind.is_empty() {
        out.push(Notice {
            event: kind.into(),
            severity,
            key: format!("{kind}-{run}"),
            summary: format!("run {run} of goal {goal} {verb}: {reason}"),
            about: About::Run(run.clone()),
            subject: None,
            command: format!("steward runs show {run}"),
        });
    }
    out.extend(run_rollback(state, &run, goal));
    out
}

/// A rollback that ran in the run: done when its command exited 0, else failed.
fn run_rollback(state: &Path, run: &str, goal: &str) -> Option<Notice> {
    let path = state.join("runs").join(run).join("result.json");
    let result: serde_json::Value = ledger::read_json(&path).ok()?;
    // `"rollback": null` when no rollback was decided.
    let rb = result.get("rollback").filter(|r| r.is_object())?;
    if rb.get("decision").and_then(|d| d.as_str()).unwrap_or("ran") != "ran" {
        return None;
    }
    let ok = rb.get("exit_code").and_then(|c| c.as_i64()) == Some(0)
        && rb.get("error").is_none_or(|e| e.is_null())
        && !rb
            .get("timed_out")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
    let (kind, severity, what) = if ok {
        ("rollback_done", "warning", "rolled back")
    } else {
        ("rollback_failed", "critical", "rollback FAILED")
    };
    let why = rb.get("reason").and_then(|r| r.as_str()).unwrap_or("");
    Some(Notice {
        event: kind.into(),
        severity,
        key: format!("{kind}-{run}"),
        summary: format!("run {run} of goal {goal}: {what}: {why}"),
        about: About::Run(run.to_string()),
        subject: None,
        command: format!("steward runs show {run}"),
    })
}

fn flapping(event: &Event) -> Notice {
    let subject = field(event, "subject");
    let stamp = event.time.unix_timestamp();
    let key_subject: String = crate::engine::approval::action_id(&[subject.to_string()]);
    Notice {
        event: "flapping".into(),
        severity: "warning",
        key: format!("flapping-{key_subject}-{stamp}"),
        summary: format!(
            "{subject} is flapping: {}; escalated to a human, no run",
            field(event, "reason")
        ),
        about: About::Host,
        subject: Some(subject.to_string()),
        command: "steward runs list".into(),
    }
}

fn budget(event: &Event) -> Notice {
    let day = event.time.date();
    Notice {
        event: "budget_exhausted".into(),
        severity: "warning",
        key: format!("budget_exhausted-{day}"),
        summary: format!(
            "the daily budget is exhausted: {}; no run starts until 00:00 UTC",
            field(event, "reason")
        ),
        about: About::Host,
        subject: None,
        command: "steward runs list".into(),
    }
}

/// The outage is over but was not told while it lasted (the outbox could not be written).
fn degraded_recovered(event: &Event) -> Notice {
    let since = field(event, "since");
    Notice {
        event: "daemon_degraded".into(),
        severity: "critical",
        key: format!("daemon_degraded-{}", since.replace([':', '+'], "_")),
        summary: format!(
            "steward serve was degraded since {since} ({}); it recovered",
            field(event, "reason")
        ),
        about: About::Host,
        subject: None,
        command: "journalctl -u steward".into(),
    }
}

/// The daemon is degraded now (from its health, not the record: a full disk cannot record it).
pub fn degraded_now(reason: &str, since: OffsetDateTime) -> Notice {
    let stamp = since.unix_timestamp();
    Notice {
        event: "daemon_degraded".into(),
        severity: "critical",
        key: format!("daemon_degraded-{stamp}"),
        summary: format!("steward serve is degraded: {reason}"),
        about: About::Host,
        subject: None,
        command: "journalctl -u steward".into(),
    }
}

/// A job has waited or run longer than `serve.stuck_secs`: the queue is stuck (a run that does
/// not end) or so backlogged that work is hours late. Told once per job.
pub fn queue_stuck(job: &str, subject: &str, what: &str, secs: i64) -> Notice {
    Notice {
        event: "daemon_degraded".into(),
        severity: "critical",
        key: format!("queue_stuck-{job}"),
        summary: format!(
            "steward serve's queue is stuck: job {job} ({subject}) has been {what} for {} min",
            secs / 60
        ),
        about: About::Host,
        subject: Some(subject.to_string()),
        command: "journalctl -u steward".into(),
    }
}

fn from_actions(state: &Path) -> Result<Vec<Notice>, NotifyError> {
    let store = Store::open(state)?;
    Ok(store
        .list()?
        .into_iter()
        .filter(|a| a.state == ActionState::Pending)
        .map(|a| Notice {
            event: "action_pending".into(),
            severity: "warning",
            key: format!("action_pending-{}", a.id),
            summary: format!(
                "action {} waits for approval until {}: {} ({})",
                a.id,
                a.expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                a.argv.join(" "),
                a.rationale
            ),
            command: format!("steward actions approve {}", a.id),
            subject: Some(a.subject),
            about: About::Action(a.id),
        })
        .collect())
}

fn from_changes(state: &Path, since: OffsetDateTime) -> Result<Vec<Notice>, NotifyError> {
    let store = ChangeStore::open(state)?;
    let mut out = Vec::new();
    for c in store.list()? {
        let changed = c.history.last().map_or(c.created, |t| t.at);
        let (kind, severity, what) = match c.state {
            ChangeState::Pending => ("change_pending", "warning", "waits for approval"),
            ChangeState::RolledBack if changed >= since => {
                ("rollback_done", "warning", "was rolled back")
            }
            ChangeState::Failed if changed >= since => (
                "rollback_failed",
                "critical",
                "FAILED applying or rolling back",
            ),
            _ => continue,
        };
        let reason = if c.reason.is_empty() {
            c.intent.clone()
        } else {
            c.reason.clone()
        };
        out.push(Notice {
            event: kind.into(),
            severity,
            key: format!("{kind}-{}", c.id),
            summary: format!("change {} ({}) {what}: {reason}", c.id, c.goal),
            command: format!("steward changes show {}", c.id),
            subject: Some(c.subject),
            about: About::Change(c.id),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::ledger::Ledger;

    fn setup() -> (tempfile::TempDir, Config, Outbox, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            state_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let outbox = Outbox::open(dir.path()).unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        (dir, cfg, outbox, ledger)
    }

    fn events(notices: &[Notice]) -> Vec<(&str, &str)> {
        notices
            .iter()
            .map(|n| (n.event.as_str(), n.key.as_str()))
            .collect()
    }

    #[test]
    fn the_event_log_yields_each_event_once_from_the_cursor() {
        let (dir, cfg, outbox, ledger) = setup();
        let run = ledger.create_run("incident").unwrap();
        run.write_json(
            "result.json",
            &serde_json::json!({"rollback": {"decision": "ran", "exit_code": 1,
                "reason": "a check regressed"}}),
        )
        .unwrap();
        let ok_run = ledger.create_run("health-check").unwrap();
        ok_run
            .write_json("result.json", &serde_json::json!({"rollback": null}))
            .unwrap();
        let finished = |id: &str, outcome: &str| {
            ledger
                .event(
                    "run_finished",
                    Some(id),
                    serde_json::json!({"goal": "g", "outcome": outcome, "reason": "r"}),
                )
                .unwrap()
        };
        finished(&run.id, "escalated");
        finished(&ok_run.id, "no_action");
        ledger
            .event(
                "escalation",
                None,
                serde_json::json!({"cause": "flapping", "subject": "nginx", "reason": "3 in 10 min"}),
            )
            .unwrap();
        ledger
            .event(
                "operator_notice",
                None,
                serde_json::json!({"cause": "daily_budget", "reason": "spent 5.1 of 5"}),
            )
            .unwrap();
        ledger
            .event(
                "event_log_recovered",
                None,
                serde_json::json!({"since": "2026-11-30T10:00:00Z", "reason": "disk full"}),
            )
            .unwrap();
        let got = collect(&cfg, &outbox).unwrap();
        let kinds: Vec<&str> = events(&got).iter().map(|(e, _)| *e).collect();
        assert_eq!(
            kinds,
            [
                "escalation",
                "rollback_failed",
                "flapping",
                "budget_exhausted",
                "daemon_degraded"
            ],
            "{got:#?}"
        );
        assert_eq!(got[0].key, format!("escalation-{}", run.id));
        assert_eq!(got[0].command, format!("steward runs show {}", run.id));
        // The cursor moved past them: the next pass sees only what is new.
        assert!(collect(&cfg, &outbox).unwrap().is_empty());
        finished(&ok_run.id, "failed");
        let got = collect(&cfg, &outbox).unwrap();
        assert_eq!(
            events(&got),
            [("run_failed", format!("run_failed-{}", ok_run.id).as_str())]
        );
        drop(dir);
    }

    #[test]
    fn a_line_still_being_written_waits_for_the_next_pass() {
        let (dir, cfg, outbox, _ledger) = setup();
        let now = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let day = dir.path().join("events").join("2099-01-01.jsonl");
        let line = format!(
            "{{\"time\":\"{now}\",\"kind\":\"run_finished\",\"run\":\"r1\",\"outcome\":\"escalated\"}}"
        );
        std::fs::write(&day, &line[..20]).unwrap();
        assert!(collect(&cfg, &outbox).unwrap().is_empty());
        std::fs::write(&day, format!("{line}\n")).unwrap();
        let got = collect(&cfg, &outbox).unwrap();
        assert_eq!(events(&got), [("escalation", "escalation-r1")]);
    }
}
