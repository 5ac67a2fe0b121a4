//! `steward actions approve`: an approved action checked against the state it was proposed
//! for, then run by steward's executor under the host lock (or handed to the run waiting on it).

use std::time::Duration;

use crate::base::cancel::Cancel;
use crate::base::ledger::Ledger;
use crate::base::outcome::Outcome;
use crate::config::Config;
use crate::defs::check::{self, CheckResult};
use crate::engine::approval::{Action, ActionState, ApprovalError, Executor, Store};
use crate::engine::liveness::{self, Life};
use crate::engine::memory::Memory;

use super::checks::{ChecksBefore, checks_before};
use super::{Definitions, RunError, RunMeta, check_env, host_lock, redactor};

/// How long an approval waits for a run holding the host lock to end.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A wait-mode action is only worth approving while its run waits on it. When that run's
/// steward is gone, the action expires here, with an error that says why.
fn waiting_run_alive(ledger: &Ledger, store: &Store, action: &Action) -> Result<(), RunError> {
    let Some(run_id) = action.run_id.as_deref() else {
        return Ok(());
    };
    let life = match ledger.run(run_id) {
        Ok(run) => match run.read_json::<RunMeta>("run.json") {
            Ok(meta) => liveness::life(&run, meta.pid),
            Err(_) => return Ok(()),
        },
        Err(_) => Life::Crashed {
            reason: "its record is gone".into(),
        },
    };
    if matches!(life, Life::Running | Life::Unknown { .. }) {
        return Ok(());
    }
    if action.state == ActionState::Pending {
        store.expire(
            &action.id,
            &format!("its run {run_id} is {}", life.as_str()),
        )?;
    }
    Err(ApprovalError::RunEnded {
        id: action.id.clone(),
        run: run_id.to_string(),
        state: life.as_str().to_string(),
    }
    .into())
}

/// `steward actions approve`: the state must still be what the proposal saw, then steward's
/// executor runs the argv (no shell) under the host lock, runs the action's checks, and records
/// the outcome, in the action and in effectiveness memory. An action a run is waiting on is only
/// approved (returned in state `approved`): the waiting run's agent runs it.
pub async fn approve_and_execute(
    cfg: &Config,
    id: &str,
    by: &str,
    note: Option<String>,
    timeout: Duration,
) -> Result<Action, RunError> {
    let store = Store::open(&cfg.state_dir)?;
    let action = store.get(id)?;
    let defs = Definitions::load(cfg)?;
    let redactor = redactor(cfg);
    let env = check_env(cfg);
    // The same checks, re-run now, must give the same statuses as when it was proposed.
    let current = match defs.goal(&action.goal) {
        Ok(goal) => checks_before(&defs, &goal, &env, &redactor)
            .await?
            .fingerprint(),
        Err(_) => ChecksBefore::default().fingerprint(),
    };
    let ledger = Ledger::open(&cfg.state_dir)?;
    if action.executor == Executor::Agent {
        // An approval nobody is waiting for would never run: the run ended (cancelled, crashed).
        waiting_run_alive(&ledger, &store, &action)?;
        // A run is blocked on this decision and holds the host lock; its agent runs the command
        // inside that run, so approving only records the decision.
        let approved = store.approve(id, by, note, &current)?;
        ledger.event(
            "action_approved",
            action.run_id.as_deref(),
            serde_json::json!({"action": id, "by": by, "executor": "agent"}),
        )?;
        return Ok(approved);
    }
    // Waited for on the runtime: a blocking wait would stall the other tasks on its thread.
    let purpose = format!("action {id}");
    let _lock = host_lock::wait(&ledger, &purpose, LOCK_WAIT, &Cancel::never()).await?;
    store.approve(id, by, note, &current)?;
    ledger.event(
        "action_approved",
        action.run_id.as_deref(),
        serde_json::json!({"action": id, "by": by}),
    )?;
    let (action, exec) = store
        .execute(id, timeout, &cfg.claude.path, &redactor)
        .await?;
    let selected = defs.checks.select(&action.checks)?;
    let results: Vec<CheckResult> = check::run_checks_in(&selected, &env)
        .await
        .iter()
        .map(|r| r.redacted(&redactor))
        .collect();
    let passed = !results.iter().any(|r| r.status.is_failure());
    let results_json = results
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let done = store.finish(action, exec, results_json, passed)?;
    let outcome = if done.state == ActionState::Done {
        Outcome::Fixed
    } else {
        Outcome::Failed
    };
    // Every subject it was proposed for is remembered as attempted (one run, one outcome).
    let memory = Memory::open(&cfg.state_dir);
    for subject in done.subjects() {
        memory.record_now(subject, &done.argv.join(" "), outcome)?;
    }
    ledger.event(
        "action_executed",
        done.run_id.as_deref(),
        serde_json::json!({"action": id, "state": done.state, "argv": done.argv}),
    )?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::engine::approval::Proposal;

    /// On a single-thread runtime the task that releases the host lock must run while the
    /// approval waits for it: a wait that blocked the thread would hold it for its whole 30 s
    /// and end `Busy`.
    #[test]
    fn an_approval_waits_for_the_host_lock_without_blocking_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            workspace: dir.path().to_path_buf(),
            state_dir: dir.path().join("state"),
            ..Config::default()
        };
        let store = Store::open(&cfg.state_dir).unwrap();
        let filed = store
            .file(Proposal {
                subject: "host:test".into(),
                signal_fingerprint: None,
                argv: vec!["true".into()],
                rationale: "a test".into(),
                checks: vec![],
                state_fingerprint: ChecksBefore::default().fingerprint(),
                goal: "no-such-goal".into(),
                run_id: None,
                rule: "true".into(),
                ttl: Duration::from_secs(3600),
                executor: Executor::Steward,
            })
            .unwrap();
        let held = Ledger::open(&cfg.state_dir)
            .unwrap()
            .lock("another run", Duration::ZERO)
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (approved, waited) = rt.block_on(async {
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(held);
            });
            let started = Instant::now();
            let approved = approve_and_execute(
                &cfg,
                &filed.action.id,
                "tester",
                None,
                Duration::from_secs(10),
            )
            .await;
            release.await.unwrap();
            (approved, started.elapsed())
        });
        let done = approved.unwrap();
        assert_eq!(done.state, ActionState::Done, "{done:?}");
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    }
}
