//! Runs a dead steward left without a result. At the start of `steward serve` (before its jobs are
//! recovered) and of every run (once it holds the host lock), each run whose steward is gone
//! (its run lock is free, see [`crate::engine::liveness`]) is closed: whatever of its process tree still
//! runs is killed, its wait-mode actions expire, and it gets a `result.json` with outcome
//! `crashed` and a `run_finished` event. Its cost counts against the daily budget: claude's own
//! report when the transcript has one, else the run's budget cap (an upper bound).

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::base::ledger::{Ledger, RunDir};
use crate::base::outcome::{ExitKind, Outcome};
use crate::engine::agent::process;
use crate::engine::run::{CostSource, RunError, RunMeta, RunResult};

/// One crashed run this process recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub run: String,
    pub goal: String,
    /// Processes of its tree that were still running and were killed now.
    pub killed: Vec<u32>,
    pub cost_usd: f64,
    pub actions_expired: Vec<String>,
}

/// Stages in which claude may have been running, for records written before `run.json` named
/// claude's process tree.
const AGENT_STAGES: &[&str] = &["agent", "validation", "rollback", "done"];

/// Closes every run a dead steward left. A run that cannot be closed (its `run.json` unreadable)
/// is left as it is and named in the error log; the others are still closed.
pub fn recover_crashed(ledger: &Ledger) -> Result<Vec<Recovered>, RunError> {
    let mut done = Vec::new();
    for id in ledger.run_ids()? {
        let run = ledger.run(&id)?;
        if run.exists("result.json") {
            continue;
        }
        let meta: RunMeta = match run.read_json("run.json") {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(run = %id, "a run without a result cannot be recovered: {e}");
                continue;
            }
        };
        // Taken, or someone (its own steward, another recoverer) has it.
        let Some(_claim) = crate::engine::liveness::claim_dead(&run, meta.pid) else {
            continue;
        };
        done.push(close(ledger, &run, &meta)?);
    }
    Ok(done)
}

/// [`recover_crashed`] for callers that go on whatever happens: failures are logged.
pub fn recover_logged(ledger: &Ledger) -> Vec<Recovered> {
    match recover_crashed(ledger) {
        Ok(done) => {
            for r in &done {
                tracing::warn!(run = %r.run, goal = %r.goal, killed = ?r.killed,
                    "recorded a run whose steward died as crashed");
            }
            done
        }
        Err(e) => {
            tracing::error!("cannot recover runs a dead steward left: {e}");
            Vec::new()
        }
    }
}

/// A change a dead steward was applying is `failed` (the host may be in neither state), loudly.
/// Only while holding the host lock: a live apply holds it, so what is found `applying` then was
/// left by a steward that died.
pub fn recover_changes(ledger: &Ledger, _host_lock: &crate::base::ledger::LockGuard) {
    let moved = crate::engine::change::store::ChangeStore::open(ledger.root())
        .and_then(|store| crate::engine::change::apply::recover_applying(&store));
    match moved {
        Ok(ids) => {
            for id in ids {
                tracing::error!(change = %id, "a dead steward was applying this change: marked failed, a human must look");
            }
        }
        Err(e) => tracing::error!("cannot recover changes a dead steward was applying: {e}"),
    }
}

fn close(ledger: &Ledger, run: &RunDir, meta: &RunMeta) -> Result<Recovered, RunError> {
    let killed = meta
        .agent
        .as_ref()
        .map(process::end_tree)
        .unwrap_or_default();
    if let Some(tree) = &meta.agent {
        // Its private HOME outlived it; only ever one under steward's own scratch directory.
        if tree.home.starts_with(ledger.tmp_dir()) {
            let _ = std::fs::remove_dir_all(&tree.home);
        }
    }
    crate::engine::run_config::forget(&run.path);
    let store = crate::engine::approval::Store::open(ledger.root())?;
    let actions_expired = store.expire_for_run(&run.id)?;
    let audit = crate::engine::boundary::read_audit(&run.path)?;
    let agent_started = meta.agent.is_some()
        || (run.exists("claude-argv.json") && AGENT_STAGES.contains(&meta.stage.as_str()));
    let reported = last_result_line(&run.file("transcript.jsonl"));
    let (cost_usd, cost_source) = match (&reported, agent_started) {
        (Some(r), _) => (
            r.get("total_cost_usd")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            CostSource::Reported,
        ),
        (None, true) => (budget_cap(run), CostSource::BudgetCap),
        (None, false) => (0.0, CostSource::NotStarted),
    };
    let (source, subject) = signal_of(run);
    let finished = last_sign_of_life(&run.path).unwrap_or_else(OffsetDateTime::now_utc);
    let mut reason = format!(
        "steward (pid {}) died during stage `{}` without recording a result; found by pid {}",
        meta.pid,
        meta.stage,
        std::process::id()
    );
    if !killed.is_empty() {
        let pids: Vec<String> = killed.iter().map(u32::to_string).collect();
        reason.push_str(&format!(
            "; it left {} process(es) running, killed now: {}",
            killed.len(),
            pids.join(" ")
        ));
    }
    if cost_source == CostSource::BudgetCap {
        reason.push_str(&format!(
            "; claude never reported its cost, so the run is charged its budget cap (${cost_usd:.2})"
        ));
    }
    if !actions_expired.is_empty() {
        reason.push_str(&format!(
            "; wait-mode action(s) expired: {}",
            actions_expired.join(", ")
        ));
    }
    let exit = ExitKind::Error;
    let result = RunResult {
        id: run.id.clone(),
        goal: meta.goal.clone(),
        source,
        subject,
        outcome: Outcome::Crashed,
        exit,
        exit_code: exit.code(),
        reason: reason.clone(),
        started: meta.started,
        finished,
        duration_ms: u64::try_from((finished - meta.started).whole_milliseconds()).unwrap_or(0),
        agent_started,
        cost_usd,
        cost_source: Some(cost_source),
        num_turns: reported
            .as_ref()
            .and_then(|r| r.get("num_turns"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        permission_denials: Vec::new(),
        policy_denials: crate::engine::run::policy_denials(&audit),
        actions_filed: crate::engine::run::queued_actions(&audit),
        actions_expired: actions_expired.clone(),
        hook_errors: crate::engine::run::count_hook_errors(&audit),
        failure: None,
        verdict: run.read_json("verdict.json").ok(),
        failed_checks: Vec::new(),
        regressions: Vec::new(),
        state_changes: Vec::new(),
        rollback: None,
        change: None,
        session_id: session_of(run),
        claude_exit_code: None,
    };
    run.write_json("result.json", &result)?;
    crate::engine::catalog::record(ledger, &result);
    ledger.event(
        "run_finished",
        Some(&run.id),
        serde_json::json!({
            "goal": result.goal, "outcome": result.outcome, "reason": result.reason,
            "cost_usd": result.cost_usd, "cost_source": result.cost_source,
            "duration_ms": result.duration_ms, "denials": 0,
            "agent_started": result.agent_started, "killed": killed,
            "actions_expired": actions_expired,
        }),
    )?;
    Ok(Recovered {
        run: run.id.clone(),
        goal: meta.goal.clone(),
        killed,
        cost_usd,
        actions_expired,
    })
}

/// claude's last `result` line in the transcript, if it wrote one before steward died.
fn last_result_line(transcript: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(transcript).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("type").and_then(Value::as_str) == Some("result"))
}

/// The run's `--max-budget-usd`: claude stops itself there (overshooting by at most one call).
fn budget_cap(run: &RunDir) -> f64 {
    run.read_json::<Value>("agent-spec.json")
        .ok()
        .and_then(|spec| spec.get("budget_usd").and_then(Value::as_f64))
        .unwrap_or(0.0)
}

fn signal_of(run: &RunDir) -> (String, String) {
    match run.read_json::<crate::base::signal::Signal>("signal.json") {
        Ok(s) => (s.source.as_str().to_string(), s.subject),
        Err(_) => ("unknown".into(), "unknown".into()),
    }
}

fn session_of(run: &RunDir) -> String {
    run.read_json::<Value>("agent-spec.json")
        .ok()
        .and_then(|spec| {
            spec.get("session_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// When the run last wrote anything: the nearest thing to the time it died.
fn last_sign_of_life(dir: &Path) -> Option<OffsetDateTime> {
    let newest: SystemTime = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        // Opening the lock to claim the run may have created it just now.
        .filter(|e| e.file_name() != crate::engine::liveness::LOCK_FILE)
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()?;
    Some(OffsetDateTime::from(newest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run directory as a steward that died during `stage` would leave it.
    fn dead_run(ledger: &Ledger, stage: &str, transcript: Option<&str>) -> RunDir {
        let run = ledger.create_run("g").unwrap();
        let meta = RunMeta {
            id: run.id.clone(),
            goal: "g".into(),
            stage: stage.into(),
            started: OffsetDateTime::now_utc() - time::Duration::seconds(5),
            pid: std::process::id(),
            vars: Default::default(),
            agent: None,
        };
        run.write_json("run.json", &meta).unwrap();
        // Its steward held the lock and is gone: the lock file exists, nobody holds it.
        drop(crate::engine::liveness::hold(&run).unwrap());
        run.write_json(
            "agent-spec.json",
            &serde_json::json!({"budget_usd": 0.4, "session_id": "s-1"}),
        )
        .unwrap();
        run.write_text("claude-argv.json", "[]").unwrap();
        if let Some(t) = transcript {
            run.write_text("transcript.jsonl", t).unwrap();
        }
        run
    }

    #[test]
    fn a_recovered_run_enters_the_run_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut catalog = crate::engine::catalog::Catalog::open(&ledger).unwrap();
        let dead = dead_run(&ledger, "agent", None);
        crate::engine::run_config::write(&dead.path, &crate::config::Config::default()).unwrap();
        assert_eq!(recover_crashed(&ledger).unwrap().len(), 1);
        // The crashed run's config snapshot (its literal secrets) is gone with it.
        assert!(!dead.exists(crate::engine::run_config::RUN_CONFIG_FILE));
        catalog.refresh().unwrap();
        let entry = catalog
            .get(&dead.id)
            .expect("the crashed run is in the catalog");
        assert_eq!(entry.outcome, "crashed");
        assert_eq!(entry.cost_usd, 0.4);
    }

    #[test]
    fn a_dead_run_is_recorded_crashed_once_with_what_it_spent() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let reported = dead_run(
            &ledger,
            "validation",
            Some(
                "{\"type\":\"system\"}\n{\"type\":\"result\",\"total_cost_usd\":0.031,\"num_turns\":3}\n",
            ),
        );
        let unreported = dead_run(&ledger, "agent", Some("{\"type\":\"system\"}\n"));
        let early = dead_run(&ledger, "checks", None);
        let live = dead_run(&ledger, "agent", None);
        let _held = crate::engine::liveness::hold(&live).unwrap();

        let done = recover_crashed(&ledger).unwrap();
        assert_eq!(done.len(), 3, "{done:?}");
        let result = |run: &RunDir| run.read_json::<RunResult>("result.json").unwrap();
        let r = result(&reported);
        assert_eq!((r.outcome, r.exit), (Outcome::Crashed, ExitKind::Error));
        assert_eq!(
            (r.cost_usd, r.cost_source),
            (0.031, Some(CostSource::Reported))
        );
        assert_eq!(r.num_turns, 3);
        assert!(
            r.reason.contains("during stage `validation`"),
            "{}",
            r.reason
        );
        assert_eq!(r.session_id, "s-1");
        let r = result(&unreported);
        assert_eq!(
            (r.cost_usd, r.cost_source),
            (0.4, Some(CostSource::BudgetCap))
        );
        assert!(r.reason.contains("budget cap ($0.40)"), "{}", r.reason);
        let r = result(&early);
        assert_eq!(
            (r.cost_usd, r.cost_source),
            (0.0, Some(CostSource::NotStarted))
        );
        assert!(!r.agent_started);
        assert!(!live.exists("result.json"), "a live run was closed");
        // Recorded once: a second pass finds nothing, and there is one event per run.
        assert!(recover_crashed(&ledger).unwrap().is_empty());
        let events = std::fs::read_dir(dir.path().join("events"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<String>();
        assert_eq!(
            events.matches("\"outcome\":\"crashed\"").count(),
            3,
            "{events}"
        );
        // The daily budget sees the spend.
        let spent =
            crate::engine::run_index::spent_on_day(&ledger, OffsetDateTime::now_utc()).unwrap();
        assert!((spent - 0.431).abs() < 1e-9, "{spent}");
    }
}
