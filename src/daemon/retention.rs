//! Retention: `steward runs prune --older-than 30d` and the daemon's daily `[retention]` pass.
//!
//! A run directory older than the cutoff (by the start time its record gives) is removed unless
//! something still needs it:
//! - an open (pending or approved) action points at it: its operator will want the evidence;
//! - an active (queued or running) job points at it;
//! - it has no result yet and the process that wrote it is alive (a run in progress);
//! - its record cannot be read, so its age is unknown.
//!
//! Decided actions keep their run id after the run is gone (`runs show` then says there is no
//! such run). Event log days (`events/YYYY-MM-DD.jsonl`) that ended before the cutoff are removed
//! too: they are the routing and job record of the same period, and so are container crash
//! incidents that died before the cutoff. Each pass (but a dry run) is
//! recorded as a `runs_pruned` event, whether or not it removed anything. Then
//! [`prune_change_branches`] deletes the `steward/` branches of the closed change sets whose runs
//! went (`engine/change/branch_retention.rs`).

use serde::Serialize;
use time::OffsetDateTime;

use crate::base::ledger::{Ledger, LedgerError, RunDir};
use crate::daemon::queue::Queue;
use crate::engine::change::branch_retention::{self, BranchesPruned};
use crate::engine::change::git::ChangeGit;
use crate::engine::change::store::ChangeStore;
use crate::engine::incident::store::IncidentStore;
use crate::engine::run::history::HistoryError;
use crate::engine::run::{RunMeta, RunResult};

/// A run older than the cutoff that was kept, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub id: String,
    pub reason: String,
}

/// What a pass removed (or, in a dry run, would remove) and kept.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    pub dry_run: bool,
    /// Runs removed.
    pub removed: Vec<String>,
    /// Runs older than the cutoff that were kept.
    pub kept: Vec<Kept>,
    /// Event log day files removed.
    pub event_days_removed: Vec<String>,
    /// Container crash incidents (`STATE/incidents/`) that died before the cutoff.
    pub incidents_removed: Vec<String>,
    /// The `steward/` branches of closed change sets whose runs were removed
    /// ([`prune_change_branches`]).
    pub change_branches: BranchesPruned,
}

/// Removes what is older than `older_than` (see the module doc).
pub fn prune(
    ledger: &Ledger,
    queue: &Queue,
    older_than: time::Duration,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<Pruned, HistoryError> {
    let cutoff = now - older_than;
    let actions = crate::engine::approval::Store::open(ledger.root())?.open_run_ids()?;
    let changes = crate::engine::change::store::ChangeStore::open(ledger.root())?.open_run_ids()?;
    let jobs: Vec<String> = queue
        .list()
        .map_err(|e| LedgerError::Corrupt {
            path: queue.dir().to_path_buf(),
            message: e.to_string(),
        })?
        .into_iter()
        .filter_map(|j| j.run_id)
        .collect();
    let mut pruned = Pruned {
        cutoff,
        dry_run,
        removed: Vec::new(),
        kept: Vec::new(),
        event_days_removed: Vec::new(),
        incidents_removed: Vec::new(),
        change_branches: BranchesPruned::default(),
    };
    for id in ledger.run_ids()? {
        let run = ledger.run(&id)?;
        let started = match age_of(&run) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(reason) => {
                pruned.kept.push(Kept { id, reason });
                continue;
            }
        };
        if started >= cutoff {
            continue;
        }
        let keep = if actions.contains(&id) {
            Some("an open action points at it".to_string())
        } else if changes.contains(&id) {
            Some("an open change set points at it".to_string())
        } else if jobs.contains(&id) {
            Some("an active job points at it".to_string())
        } else {
            in_progress(&run)
        };
        if let Some(reason) = keep {
            pruned.kept.push(Kept { id, reason });
            continue;
        }
        if !dry_run {
            remove_dir(&run)?;
        }
        pruned.removed.push(id);
    }
    pruned.event_days_removed = prune_events(ledger, cutoff, dry_run)?;
    pruned.incidents_removed = IncidentStore::new(ledger.root()).prune(
        Some(cutoff),
        crate::engine::incident::store::MAX_INCIDENTS,
        dry_run,
    )?;
    if !dry_run {
        // Removed runs leave the run catalog (its next reader drops them).
        crate::engine::catalog::forget(ledger, &pruned.removed);
    }
    if !dry_run {
        ledger.event(
            "runs_pruned",
            None,
            serde_json::json!({
                "cutoff": cutoff.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "removed": pruned.removed,
                "kept": pruned.kept,
                "event_days_removed": pruned.event_days_removed,
                "incidents_removed": pruned.incidents_removed.len(),
            }),
        )?;
    }
    Ok(pruned)
}

/// Why the branch pass after [`prune`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum BranchPassError {
    #[error("the change store: {0}")]
    Store(#[from] crate::engine::change::store::StoreError),
    #[error("git: {0}")]
    Git(#[from] crate::engine::change::worktree::WorktreeError),
    #[error("the event log: {0}")]
    Ledger(#[from] LedgerError),
}

/// After [`prune`]: deletes the branches of the closed change sets whose runs it removed
/// (`engine/change/branch_retention.rs`), recorded as a `change_branches_pruned` event when it
/// deleted or kept any. `path_env` is the PATH git is found on.
pub async fn prune_change_branches(
    ledger: &Ledger,
    path_env: &str,
    pruned: &mut Pruned,
) -> Result<(), BranchPassError> {
    if pruned.removed.is_empty() {
        return Ok(());
    }
    let store = ChangeStore::open(ledger.root())?;
    let git = ChangeGit::new(path_env)?;
    let branches = branch_retention::prune(&store, &git, &pruned.removed, pruned.dry_run).await?;
    let nothing = branches.deleted.is_empty() && branches.kept.is_empty();
    if !pruned.dry_run && !nothing {
        ledger.event(
            "change_branches_pruned",
            None,
            serde_json::json!({"deleted": branches.deleted, "kept": branches.kept}),
        )?;
    }
    pruned.change_branches = branches;
    Ok(())
}

/// When the run started; `Ok(None)` for a directory whose record is not written yet (a run
/// being created), `Err(why)` for a record that cannot be read.
fn age_of(run: &RunDir) -> Result<Option<OffsetDateTime>, String> {
    if run.exists("result.json") {
        return run
            .read_json::<RunResult>("result.json")
            .map(|r| Some(r.started))
            .map_err(|e| format!("its record is unreadable, so its age is unknown: {e}"));
    }
    if !run.exists("run.json") {
        return Ok(None);
    }
    run.read_json::<RunMeta>("run.json")
        .map(|m| Some(m.started))
        .map_err(|e| format!("its record is unreadable, so its age is unknown: {e}"))
}

/// A run without a result whose process is alive is still being written.
fn in_progress(run: &RunDir) -> Option<String> {
    if run.exists("result.json") {
        return None;
    }
    let meta = run.read_json::<RunMeta>("run.json").ok()?;
    let pid = i32::try_from(meta.pid).ok()?;
    // Signal 0 checks that the process exists; EPERM means it exists under another user.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(format!(
            "it has no result and its process (pid {pid}) is alive: in progress"
        )),
        Err(_) => None,
    }
}

fn remove_dir(run: &RunDir) -> Result<(), LedgerError> {
    match std::fs::remove_dir_all(&run.path) {
        Ok(()) => Ok(()),
        // Another pass removed it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LedgerError::Write {
            path: run.path.clone(),
            source,
        }),
    }
}

/// Event day files whose whole day ended before the cutoff.
fn prune_events(
    ledger: &Ledger,
    cutoff: OffsetDateTime,
    dry_run: bool,
) -> Result<Vec<String>, LedgerError> {
    let dir = ledger.root().join("events");
    let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
        path: dir.clone(),
        source,
    })?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LedgerError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(day) = name
            .strip_suffix(".jsonl")
            .and_then(|d| time::Date::parse(d, &format).ok())
        else {
            continue;
        };
        let Some(next) = day.next_day() else { continue };
        if next.midnight().assume_utc() > cutoff {
            continue;
        }
        if !dry_run {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(LedgerError::Write { path, source }),
            }
        }
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::approval::{Executor, Proposal, Store};

    fn write_run(ledger: &Ledger, id: &str, started: OffsetDateTime, pid: u32, finished: bool) {
        let dir = ledger.runs_dir().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = RunMeta {
            id: id.into(),
            goal: "g".into(),
            stage: if finished { "done" } else { "agent" }.into(),
            started,
            pid,
            vars: Default::default(),
            agent: None,
        };
        crate::base::ledger::write_json(&dir.join("run.json"), &meta).unwrap();
        if finished {
            let mut result: serde_json::Value = serde_json::json!({
                "id": id, "goal": "g", "source": "manual", "subject": "g", "outcome": "ok",
                "exit": "ok", "exit_code": 0, "reason": "r",
                "started": started.format(&time::format_description::well_known::Rfc3339).unwrap(),
                "finished": started.format(&time::format_description::well_known::Rfc3339).unwrap(),
                "duration_ms": 1, "agent_started": false, "cost_usd": 0.0, "num_turns": 0,
                "permission_denials": [], "failure": null, "verdict": null,
                "session_id": "", "claude_exit_code": null
            });
            result["actions_filed"] = serde_json::json!([]);
            crate::base::ledger::write_json(&dir.join("result.json"), &result).unwrap();
        }
    }

    #[test]
    fn old_runs_go_unless_something_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let queue = Queue::open(dir.path()).unwrap();
        let now = OffsetDateTime::now_utc();
        let old = now - time::Duration::days(40);
        write_run(&ledger, "old-done", old, 1, true);
        write_run(&ledger, "old-with-action", old, 1, true);
        write_run(&ledger, "old-with-change", old, 1, true);
        let mut change = crate::engine::change::record::ChangeRecord::sample(
            crate::engine::change::record::ChangeState::Pending,
            now,
        );
        change.run = "old-with-change".into();
        crate::engine::change::store::ChangeStore::open(dir.path())
            .unwrap()
            .create(&change)
            .unwrap();
        write_run(&ledger, "old-in-progress", old, std::process::id(), false);
        write_run(&ledger, "new-done", now, 1, true);
        std::fs::create_dir(ledger.runs_dir().join("old-unreadable")).unwrap();
        std::fs::write(ledger.runs_dir().join("old-unreadable/result.json"), "{").unwrap();
        Store::open(dir.path())
            .unwrap()
            .file(Proposal {
                subject: "s".into(),
                signal_fingerprint: None,
                argv: vec!["true".into()],
                rationale: "r".into(),
                checks: vec![],
                state_fingerprint: "f".into(),
                goal: "g".into(),
                run_id: Some("old-with-action".into()),
                rule: "true".into(),
                ttl: std::time::Duration::from_secs(3600),
                executor: Executor::Steward,
            })
            .unwrap();
        let old_day = (now - time::Duration::days(40)).date();
        let old_events = format!(
            "{:04}-{:02}-{:02}.jsonl",
            old_day.year(),
            u8::from(old_day.month()),
            old_day.day()
        );
        std::fs::write(dir.path().join("events").join(&old_events), "{}\n").unwrap();

        let dry = prune(&ledger, &queue, time::Duration::days(30), now, true).unwrap();
        assert_eq!(dry.removed, ["old-done"]);
        assert!(
            ledger.runs_dir().join("old-done").exists(),
            "a dry run removed it"
        );

        let p = prune(&ledger, &queue, time::Duration::days(30), now, false).unwrap();
        assert_eq!(p.removed, ["old-done"]);
        assert_eq!(p.event_days_removed, [old_events.as_str()]);
        let kept: Vec<(&str, &str)> = p
            .kept
            .iter()
            .map(|k| (k.id.as_str(), k.reason.as_str()))
            .collect();
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(
            kept.iter()
                .any(|(id, r)| *id == "old-with-change" && r.contains("open change set"))
        );
        assert!(
            kept.iter()
                .any(|(id, r)| *id == "old-in-progress" && r.contains("in progress"))
        );
        assert!(
            kept.iter()
                .any(|(id, r)| *id == "old-with-action" && r.contains("open action"))
        );
        assert!(
            kept.iter()
                .any(|(id, r)| *id == "old-unreadable" && r.contains("unreadable"))
        );
        assert!(!ledger.runs_dir().join("old-done").exists());
        assert!(ledger.runs_dir().join("new-done").exists());
        assert!(!dir.path().join("events").join(&old_events).exists());
        // Recorded, in today's event log.
        let today = std::fs::read_dir(dir.path().join("events"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<String>();
        assert!(today.contains("\"runs_pruned\""), "{today}");
    }
}
