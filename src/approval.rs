//! Pending actions: what the policy marked approval-required becomes a record a human approves or
//! rejects, and steward's executor runs an approved argv itself, without a shell.
//!
//! Records live in `STATE/actions/<state>/<id>.json`; a state change writes the new file then
//! removes the old one, so a crash leaves the action in one state or both (then the later state
//! wins), never in none.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ledger::{self, LedgerError};
use crate::redact::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("no action `{0}`")]
    Unknown(String),
    #[error("action `{id}` is {state}, not pending")]
    NotPending { id: String, state: ActionState },
    #[error("action `{id}` expired at {expired}")]
    Expired { id: String, expired: String },
    #[error(
        "action `{id}` is stale: the state it was proposed against changed (was {was}, now {now}); ask for a fresh proposal"
    )]
    Stale {
        id: String,
        was: String,
        now: String,
    },
    #[error("action `{id}` is {state}, not approved")]
    NotApproved { id: String, state: ActionState },
    #[error("action has an empty argv")]
    EmptyArgv,
    #[error("action `{0}` belongs to a waiting run: its agent runs it, not steward's executor")]
    RunByAgent(String),
    #[error(
        "action `{id}` was waiting in run {run}, which is {state}: nothing would run it, so it \
         expired; ask for a fresh proposal"
    )]
    RunEnded {
        id: String,
        run: String,
        state: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    Pending,
    Approved,
    Rejected,
    Done,
    Failed,
    Expired,
}

impl ActionState {
    pub const ALL: [ActionState; 6] = [
        ActionState::Pending,
        ActionState::Approved,
        ActionState::Rejected,
        ActionState::Done,
        ActionState::Failed,
        ActionState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Pending => "pending",
            ActionState::Approved => "approved",
            ActionState::Rejected => "rejected",
            ActionState::Done => "done",
            ActionState::Failed => "failed",
            ActionState::Expired => "expired",
        }
    }

    fn is_open(self) -> bool {
        matches!(self, ActionState::Pending | ActionState::Approved)
    }
}

impl std::fmt::Display for ActionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a goal's approval-required calls reach a human.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// The hook denies the call now and files it; on approval steward's executor runs it.
    #[default]
    Queue,
    /// The run blocks in steward's permission-prompt tool until an operator decides; on approval
    /// the agent's own tool runs it.
    Wait,
}

/// Who runs an approved action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// `steward actions approve` runs the argv itself (queue mode).
    #[default]
    Steward,
    /// A run is waiting on it: approving only records the decision, the waiting agent runs the
    /// call, and the action is then `done` with no execution record (steward did not run it).
    Agent,
}

/// What the agent (through the policy) proposed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub subject: String,
    pub argv: Vec<String>,
    pub rationale: String,
    /// Post-action checks the executor runs after the command.
    pub checks: Vec<String>,
    /// Fingerprint of the state the proposal was made against (see `state_fingerprint`).
    pub state_fingerprint: String,
    pub goal: String,
    pub run_id: Option<String>,
    /// The policy rule that required approval.
    pub rule: String,
    pub ttl: Duration,
    pub executor: Executor,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
    /// Post-action check results, as recorded by the checker.
    pub checks: Vec<serde_json::Value>,
    pub checks_passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub state: ActionState,
    pub subject: String,
    pub argv: Vec<String>,
    pub rationale: String,
    pub checks: Vec<String>,
    pub state_fingerprint: String,
    pub goal: String,
    pub run_id: Option<String>,
    pub rule: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// How often the same proposal arrived while this one was open.
    pub proposals: u32,
    pub decision: Option<Decision>,
    pub execution: Option<Execution>,
    /// Absent in records written before wait mode existed: those are steward's to run.
    #[serde(default)]
    pub executor: Executor,
}

/// The same subject and argv always give the same id, so a proposal is never filed twice.
pub fn action_id(subject: &str, argv: &[String]) -> String {
    let mut parts: Vec<&str> = vec!["action", subject];
    parts.extend(argv.iter().map(String::as_str));
    format!("act-{}", crate::signal::fingerprint(&parts))
}

/// A fingerprint of observed state (e.g. check statuses): order-independent, timing-free.
pub fn state_fingerprint(observations: &[(String, String)]) -> String {
    let mut sorted: Vec<String> = observations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    sorted.sort();
    let refs: Vec<&str> = sorted.iter().map(String::as_str).collect();
    crate::signal::fingerprint(&refs)
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What filing a proposal did.
#[derive(Debug, Clone, Serialize)]
pub struct Filed {
    pub action: Action,
    /// False when the same proposal was already open: it was not filed again.
    pub new: bool,
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, ApprovalError> {
        let root = state_dir.join("actions");
        for s in ActionState::ALL {
            let dir = root.join(s.as_str());
            std::fs::create_dir_all(&dir)
                .map_err(|source| LedgerError::Write { path: dir, source })?;
        }
        Ok(Store { root })
    }

    fn path(&self, state: ActionState, id: &str) -> PathBuf {
        self.root.join(state.as_str()).join(format!("{id}.json"))
    }

    /// Finds an action by id; when a crash left it in two states, the later one wins.
    pub fn get(&self, id: &str) -> Result<Action, ApprovalError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(ApprovalError::Unknown(id.to_string()));
        }
        let mut found: Option<Action> = None;
        for s in ActionState::ALL {
            let p = self.path(s, id);
            if p.exists() {
                let a: Action = ledger::read_json(&p)?;
                found = Some(a);
            }
        }
        found.ok_or_else(|| ApprovalError::Unknown(id.to_string()))
    }

    /// All actions, pending first then by creation time. Open actions past expiry are expired
    /// here, so every reader sees the same truth.
    pub fn list(&self) -> Result<Vec<Action>, ApprovalError> {
        let mut out = Vec::new();
        for s in ActionState::ALL {
            let dir = self.root.join(s.as_str());
            let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
                path: dir.clone(),
                source,
            })?;
            for e in entries {
                let e = e.map_err(|source| LedgerError::Read {
                    path: dir.clone(),
                    source,
                })?;
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) == Some("json")
                    && p.file_stem()
                        .and_then(|x| x.to_str())
                        .is_some_and(|stem| !stem.contains('.'))
                {
                    out.push(ledger::read_json::<Action>(&p)?);
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        let mut result = Vec::with_capacity(out.len());
        for a in out {
            if a.state.is_open() && a.expires <= now {
                result.push(self.move_to(a, ActionState::Expired)?);
            } else {
                result.push(a);
            }
        }
        result.sort_by(|a, b| {
            (a.state != ActionState::Pending, a.created)
                .cmp(&(b.state != ActionState::Pending, b.created))
        });
        Ok(result)
    }

    fn move_to(&self, mut action: Action, to: ActionState) -> Result<Action, ApprovalError> {
        let from = action.state;
        action.state = to;
        ledger::write_json(&self.path(to, &action.id), &action)?;
        if from != to {
            let old = self.path(from, &action.id);
            std::fs::remove_file(&old)
                .map_err(|source| LedgerError::Write { path: old, source })?;
        }
        Ok(action)
    }

    /// Files a proposal, unless the same one (same subject and argv) is already open.
    pub fn file(&self, p: Proposal) -> Result<Filed, ApprovalError> {
        if p.argv.is_empty() {
            return Err(ApprovalError::EmptyArgv);
        }
        let id = action_id(&p.subject, &p.argv);
        let now = OffsetDateTime::now_utc();
        match self.get(&id) {
            Ok(mut existing) if existing.state.is_open() && existing.expires > now => {
                existing.proposals += 1;
                let state = existing.state;
                let existing = self.move_to(existing, state)?;
                return Ok(Filed {
                    action: existing,
                    new: false,
                });
            }
            Ok(old) => {
                // A decided or expired proposal of the same command: keep it under a dated name and
                // file the new one fresh.
                let stamp = old.created.unix_timestamp();
                let from = self.path(old.state, &id);
                let to = self
                    .root
                    .join(old.state.as_str())
                    .join(format!("{id}.{stamp}.json"));
                std::fs::rename(&from, &to)
                    .map_err(|source| LedgerError::Write { path: from, source })?;
            }
            Err(ApprovalError::Unknown(_)) => {}
            Err(e) => return Err(e),
        }
        let ttl = time::Duration::try_from(p.ttl).unwrap_or(time::Duration::HOUR);
        let action = Action {
            id: id.clone(),
            state: ActionState::Pending,
            subject: p.subject,
            argv: p.argv,
            rationale: p.rationale,
            checks: p.checks,
            state_fingerprint: p.state_fingerprint,
            goal: p.goal,
            run_id: p.run_id,
            rule: p.rule,
            created: now,
            expires: now + ttl,
            proposals: 1,
            decision: None,
            execution: None,
            executor: p.executor,
        };
        ledger::write_json(&self.path(ActionState::Pending, &id), &action)?;
        Ok(Filed { action, new: true })
    }

    /// Approves a pending action. `current_fingerprint` is the state observed now; if it differs
    /// from the one the proposal was made against, the action is stale and cannot be approved.
    pub fn approve(
        &self,
        id: &str,
        by: &str,
        note: Option<String>,
        current_fingerprint: &str,
    ) -> Result<Action, ApprovalError> {
        let mut a = self.pending(id)?;
        if a.state_fingerprint != current_fingerprint {
            return Err(ApprovalError::Stale {
                id: id.to_string(),
                was: a.state_fingerprint.clone(),
                now: current_fingerprint.to_string(),
            });
        }
        a.decision = Some(Decision {
            by: by.to_string(),
            at: OffsetDateTime::now_utc(),
            note,
        });
        self.move_to(a, ActionState::Approved)
    }

    pub fn reject(
        &self,
        id: &str,
        by: &str,
        note: Option<String>,
    ) -> Result<Action, ApprovalError> {
        let mut a = self.pending(id)?;
        a.decision = Some(Decision {
            by: by.to_string(),
            at: OffsetDateTime::now_utc(),
            note,
        });
        self.move_to(a, ActionState::Rejected)
    }

    /// A waiting run took an approved action over: its agent runs the call, so the action is
    /// closed as `done` without an execution record.
    pub fn hand_over(&self, id: &str) -> Result<Action, ApprovalError> {
        let a = self.get(id)?;
        if a.state != ActionState::Approved {
            return Err(ApprovalError::NotApproved {
                id: id.to_string(),
                state: a.state,
            });
        }
        self.move_to(a, ActionState::Done)
    }

    /// A waiting run gave up on a pending action: it can no longer be approved.
    pub fn expire(&self, id: &str) -> Result<Action, ApprovalError> {
        let a = self.get(id)?;
        if a.state != ActionState::Pending {
            return Err(ApprovalError::NotPending {
                id: id.to_string(),
                state: a.state,
            });
        }
        self.move_to(a, ActionState::Expired)
    }

    /// The run that waits on its wait-mode actions ended (cancelled, crashed): the ones still
    /// open (pending, or approved but not yet taken over) can no longer be run by it, so they
    /// expire. Returns their ids.
    pub fn expire_for_run(&self, run_id: &str) -> Result<Vec<String>, ApprovalError> {
        let mut ids = Vec::new();
        for a in self.list()? {
            if a.executor == Executor::Agent
                && a.state.is_open()
                && a.run_id.as_deref() == Some(run_id)
            {
                ids.push(self.move_to(a, ActionState::Expired)?.id);
            }
        }
        Ok(ids)
    }

    fn pending(&self, id: &str) -> Result<Action, ApprovalError> {
        let a = self.get(id)?;
        if a.state != ActionState::Pending {
            return Err(ApprovalError::NotPending {
                id: id.to_string(),
                state: a.state,
            });
        }
        if a.expires <= OffsetDateTime::now_utc() {
            let expired = a.expires.to_string();
            self.move_to(a, ActionState::Expired)?;
            return Err(ApprovalError::Expired {
                id: id.to_string(),
                expired,
            });
        }
        Ok(a)
    }

    /// Runs an approved action's argv (no shell), with a timeout that kills its process group.
    /// The caller runs the post-action checks and hands them to `finish`.
    pub async fn execute(
        &self,
        id: &str,
        timeout: Duration,
        path_env: &str,
        redactor: &Redactor,
    ) -> Result<(Action, Execution), ApprovalError> {
        let a = self.get(id)?;
        if a.state != ActionState::Approved {
            return Err(ApprovalError::NotApproved {
                id: id.to_string(),
                state: a.state,
            });
        }
        // Running it here too would run the command twice.
        if a.executor == Executor::Agent {
            return Err(ApprovalError::RunByAgent(id.to_string()));
        }
        let started = OffsetDateTime::now_utc();
        let clock = std::time::Instant::now();
        let mut exec = Execution {
            started,
            duration_ms: 0,
            exit_code: None,
            timed_out: false,
            stdout: String::new(),
            stderr: String::new(),
            error: None,
            checks: Vec::new(),
            checks_passed: false,
        };
        match run_argv(&a.argv, timeout, path_env).await {
            Ok(out) => {
                exec.exit_code = out.exit_code();
                exec.timed_out = out.timed_out();
                exec.stdout = redactor.redact(&out.stdout);
                exec.stderr = redactor.redact(&out.stderr);
                if out.timed_out() {
                    exec.error = Some(out.describe(timeout));
                }
            }
            Err(e) => exec.error = Some(e),
        }
        exec.duration_ms = clock.elapsed().as_millis() as u64;
        Ok((a, exec))
    }

    /// Records the execution and its checks, and moves the action to done or failed.
    pub fn finish(
        &self,
        mut action: Action,
        mut exec: Execution,
        checks: Vec<serde_json::Value>,
        checks_passed: bool,
    ) -> Result<Action, ApprovalError> {
        exec.checks = checks;
        exec.checks_passed = checks_passed;
        let ok =
            exec.error.is_none() && !exec.timed_out && exec.exit_code == Some(0) && checks_passed;
        action.execution = Some(exec);
        self.move_to(
            action,
            if ok {
                ActionState::Done
            } else {
                ActionState::Failed
            },
        )
    }
}

const OUTPUT_CAP: usize = 64 * 1024;

/// Runs an argv without a shell, with a clean environment, in its own process group that is
/// killed when the command ends or times out.
pub async fn run_argv(
    argv: &[String],
    timeout: Duration,
    path_env: &str,
) -> Result<crate::exec::Output, String> {
    crate::exec::run(&crate::exec::Command {
        argv,
        path_env,
        cwd: None,
        timeout,
        stdout_cap: OUTPUT_CAP,
        stderr_tail: OUTPUT_CAP,
    })
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(argv: &[&str]) -> Proposal {
        Proposal {
            subject: "unit:nginx.service".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            rationale: "it is down".into(),
            checks: vec![],
            state_fingerprint: state_fingerprint(&[("nginx".into(), "fail".into())]),
            goal: "incident".into(),
            run_id: Some("r1".into()),
            rule: "systemctl restart UNIT".into(),
            ttl: Duration::from_secs(3600),
            executor: Executor::Steward,
        }
    }

    #[test]
    fn the_same_proposal_is_never_filed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = s
            .file(proposal(&["systemctl", "restart", "nginx"]))
            .unwrap();
        let b = s
            .file(proposal(&["systemctl", "restart", "nginx"]))
            .unwrap();
        assert!(a.new);
        assert!(!b.new);
        assert_eq!(a.action.id, b.action.id);
        assert_eq!(b.action.proposals, 2);
        let c = s.file(proposal(&["systemctl", "restart", "sshd"])).unwrap();
        assert_ne!(a.action.id, c.action.id);
        assert_eq!(s.list().unwrap().len(), 2);
    }

    #[test]
    fn approve_records_who_and_refuses_stale_or_decided() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let p = proposal(&["true"]);
        let fp = p.state_fingerprint.clone();
        let a = s.file(p).unwrap().action;
        let err = s.approve(&a.id, "alice", None, "different").unwrap_err();
        assert!(matches!(err, ApprovalError::Stale { .. }), "{err}");
        let ok = s.approve(&a.id, "alice", Some("go".into()), &fp).unwrap();
        assert_eq!(ok.state, ActionState::Approved);
        assert_eq!(ok.decision.as_ref().unwrap().by, "alice");
        assert!(matches!(
            s.approve(&a.id, "bob", None, &fp).unwrap_err(),
            ApprovalError::NotPending { .. }
        ));
        assert!(matches!(
            s.reject(&a.id, "bob", None).unwrap_err(),
            ApprovalError::NotPending { .. }
        ));
    }

    #[test]
    fn expired_actions_cannot_be_approved() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut p = proposal(&["true"]);
        p.ttl = Duration::ZERO;
        let fp = p.state_fingerprint.clone();
        let a = s.file(p).unwrap().action;
        let err = s.approve(&a.id, "alice", None, &fp).unwrap_err();
        assert!(matches!(err, ApprovalError::Expired { .. }), "{err}");
        assert_eq!(s.get(&a.id).unwrap().state, ActionState::Expired);
    }

    #[tokio::test]
    async fn executor_runs_only_approved_argv_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let marker = dir.path().join("ran; echo injected");
        let p = proposal(&["touch", marker.to_str().unwrap()]);
        let fp = p.state_fingerprint.clone();
        let a = s.file(p).unwrap().action;
        let r = Redactor::default();
        assert!(matches!(
            s.execute(&a.id, Duration::from_secs(5), "/usr/bin:/bin", &r)
                .await
                .unwrap_err(),
            ApprovalError::NotApproved { .. }
        ));
        s.approve(&a.id, "alice", None, &fp).unwrap();
        let (action, exec) = s
            .execute(&a.id, Duration::from_secs(5), "/usr/bin:/bin", &r)
            .await
            .unwrap();
        assert_eq!(exec.exit_code, Some(0));
        // The whole argv element is one file name: no shell split it.
        assert!(marker.exists());
        let done = s.finish(action, exec, vec![], true).unwrap();
        assert_eq!(done.state, ActionState::Done);
        assert_eq!(s.get(&a.id).unwrap().state, ActionState::Done);
    }

    #[test]
    fn a_waiting_run_hands_over_or_expires_its_action() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut p = proposal(&["touch", "/tmp/x"]);
        p.executor = Executor::Agent;
        let fp = p.state_fingerprint.clone();
        let a = s.file(p).unwrap().action;
        assert_eq!(a.executor, Executor::Agent);
        assert!(matches!(
            s.hand_over(&a.id).unwrap_err(),
            ApprovalError::NotApproved { .. }
        ));
        s.approve(&a.id, "alice", None, &fp).unwrap();
        let done = s.hand_over(&a.id).unwrap();
        assert_eq!(done.state, ActionState::Done);
        assert!(done.execution.is_none());

        let mut p = proposal(&["touch", "/tmp/y"]);
        p.executor = Executor::Agent;
        let b = s.file(p).unwrap().action;
        assert_eq!(s.expire(&b.id).unwrap().state, ActionState::Expired);
        assert!(matches!(
            s.expire(&b.id).unwrap_err(),
            ApprovalError::NotPending { .. }
        ));
    }

    #[test]
    fn a_run_that_ended_expires_only_its_own_open_wait_actions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let file = |argv: &[&str], run: &str, executor: Executor| {
            let mut p = proposal(argv);
            p.run_id = Some(run.into());
            p.executor = executor;
            let fp = p.state_fingerprint.clone();
            (s.file(p).unwrap().action, fp)
        };
        let (waiting, _) = file(&["touch", "/tmp/a"], "r1", Executor::Agent);
        let (approved, fp) = file(&["touch", "/tmp/b"], "r1", Executor::Agent);
        s.approve(&approved.id, "alice", None, &fp).unwrap();
        let (queued, _) = file(&["touch", "/tmp/c"], "r1", Executor::Steward);
        let (other, _) = file(&["touch", "/tmp/d"], "r2", Executor::Agent);
        let mut expired = s.expire_for_run("r1").unwrap();
        expired.sort();
        let mut want = vec![waiting.id.clone(), approved.id.clone()];
        want.sort();
        assert_eq!(expired, want);
        assert_eq!(s.get(&approved.id).unwrap().state, ActionState::Expired);
        // A queue-mode action outlives its run by design; another run's action is not touched.
        assert_eq!(s.get(&queued.id).unwrap().state, ActionState::Pending);
        assert_eq!(s.get(&other.id).unwrap().state, ActionState::Pending);
        assert!(s.expire_for_run("r1").unwrap().is_empty());
    }

    #[tokio::test]
    async fn executor_times_out_and_fails() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let p = proposal(&["sleep", "30"]);
        let fp = p.state_fingerprint.clone();
        let a = s.file(p).unwrap().action;
        s.approve(&a.id, "alice", None, &fp).unwrap();
        let r = Redactor::default();
        let (action, exec) = s
            .execute(&a.id, Duration::from_millis(300), "/usr/bin:/bin", &r)
            .await
            .unwrap();
        assert!(exec.timed_out);
        let failed = s.finish(action, exec, vec![], true).unwrap();
        assert_eq!(failed.state, ActionState::Failed);
    }
}
