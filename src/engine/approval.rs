//! Pending actions: what the policy marked approval-required becomes a record a human approves or
//! rejects, and steward's executor runs an approved argv itself, without a shell.
//!
//! Records live in `STATE/actions/<state>/<id>.json`; a state change writes the new file then
//! removes the old one, so a crash leaves the action in one state or both (then the later state
//! wins), never in none. Every change happens under `actions/.lock` (flock), so a hook filing,
//! an operator approving and the router expiring never interleave.
//!
//! An action is one command on this host: its id derives from the argv alone, and the same
//! argv proposed for several subjects (three alerts, one `systemctl restart nginx.service`) is
//! one action with several contributions, approved and run once (see [`contribution`]).

pub mod contribution;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::ledger::{self, LedgerError};
use crate::base::redact::Redactor;

pub use contribution::{Contribution, Resolution};

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
        "the same command is already open as action {id} for {} to run",
        match executor {
            Executor::Steward => "steward's executor",
            Executor::Agent => "another waiting run",
        }
    )]
    OtherExecutor { id: String, executor: Executor },
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

pub use crate::defs::goal::ApprovalMode;

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
    /// The fingerprint of the signal the proposing run acts on (an alert's), so that the alert
    /// resolving can withdraw the proposal.
    pub signal_fingerprint: Option<String>,
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
pub struct OperatorDecision {
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
    /// The first contribution's subject, rationale and run (every one is in `contributions`).
    pub subject: String,
    pub argv: Vec<String>,
    pub rationale: String,
    /// Post-action checks: every contributing goal's, each once.
    pub checks: Vec<String>,
    /// The state the latest proposal saw, of the latest proposal's goal: approval re-checks it.
    pub state_fingerprint: String,
    pub goal: String,
    pub run_id: Option<String>,
    pub rule: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// How often the same command was proposed while this action was open.
    pub proposals: u32,
    pub decision: Option<OperatorDecision>,
    pub execution: Option<Execution>,
    /// Absent in records written before wait mode existed: those are steward's to run.
    #[serde(default)]
    pub executor: Executor,
    /// Who proposed it: one entry per (subject, run). Records written before actions were
    /// shared have none; reading them fills in the one their top-level fields describe.
    #[serde(default)]
    pub contributions: Vec<Contribution>,
    /// Contributions withdrawn because their alert resolved while others still needed the action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<Contribution>,
    /// Why steward expired it (lifetime over, the waiting run gave up, every alert resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_reason: Option<String>,
}

impl Action {
    /// Every subject the action was proposed for (still contributing), each once, in order.
    pub fn subjects(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.contributions {
            if !out.contains(&c.subject.as_str()) {
                out.push(&c.subject);
            }
        }
        out
    }

    /// Fills in what older records lack (a single contribution from the top-level fields).
    fn normalized(mut self) -> Action {
        if self.contributions.is_empty() && self.resolved.is_empty() {
            self.contributions.push(Contribution {
                subject: self.subject.clone(),
                signal_fingerprint: None,
                rationale: self.rationale.clone(),
                goal: self.goal.clone(),
                run_id: self.run_id.clone(),
                at: self.created,
            });
        }
        self
    }
}

/// One command on this host is one action: the id derives from the argv alone, so the same
/// restart proposed for three subjects is filed, approved and run once. (Before shared actions
/// the subject was part of the id; such open records are still found by their argv.)
pub fn action_id(argv: &[String]) -> String {
    let mut parts: Vec<&str> = vec!["action"];
    parts.extend(argv.iter().map(String::as_str));
    format!("act-{}", crate::base::signal::fingerprint(&parts))
}

/// A fingerprint of observed state (e.g. check statuses): order-independent, timing-free.
pub fn state_fingerprint(observations: &[(String, String)]) -> String {
    let mut sorted: Vec<String> = observations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    sorted.sort();
    let refs: Vec<&str> = sorted.iter().map(String::as_str).collect();
    crate::base::signal::fingerprint(&refs)
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What filing a proposal did.
#[derive(Debug, Clone, Serialize)]
pub struct Filed {
    pub action: Action,
    /// False when the same command was already open: the proposal joined it.
    pub new: bool,
}

/// Holds `actions/.lock` until dropped.
struct StoreLock {
    _flock: nix::fcntl::Flock<std::fs::File>,
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

    /// The directory of each state: an action changes state by moving between them, so their
    /// modification times tell a reader whether any action changed.
    pub fn state_dirs(state_dir: &Path) -> Vec<PathBuf> {
        let root = state_dir.join("actions");
        ActionState::ALL
            .iter()
            .map(|s| root.join(s.as_str()))
            .collect()
    }

    /// Every change to the store happens under this lock. Never taken twice by one caller: a
    /// second `flock` in the same process would wait for the first forever.
    fn lock(&self) -> Result<StoreLock, ApprovalError> {
        let path = self.root.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LedgerError::Write {
                path: path.clone(),
                source,
            })?;
        let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, e)| LedgerError::Write {
                path,
                source: std::io::Error::from(e),
            },
        )?;
        Ok(StoreLock { _flock: flock })
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
                match ledger::read_json::<Action>(&p) {
                    Ok(a) => found = Some(a.normalized()),
                    // Moved on to a later state between the look and the read (readers do not
                    // take the lock): the later state's file is read next.
                    Err(LedgerError::Read { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        found.ok_or_else(|| ApprovalError::Unknown(id.to_string()))
    }

    /// The actions in one state's directory (current names only, not dated history).
    fn read_state(&self, state: ActionState) -> Result<Vec<Action>, ApprovalError> {
        let dir = self.root.join(state.as_str());
        let entries = std::fs::read_dir(&dir).map_err(|source| LedgerError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
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
                out.push(ledger::read_json::<Action>(&p)?.normalized());
            }
        }
        Ok(out)
    }

    /// All actions, pending first then by creation time. Open actions past expiry are expired
    /// here, so every reader sees the same truth.
    pub fn list(&self) -> Result<Vec<Action>, ApprovalError> {
        let _lock = self.lock()?;
        let mut out = Vec::new();
        for s in ActionState::ALL {
            out.extend(self.read_state(s)?);
        }
        let now = OffsetDateTime::now_utc();
        let mut result = Vec::with_capacity(out.len());
        for a in out {
            if a.state.is_open() && a.expires <= now {
                result.push(self.expire_for_age(a)?);
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

    fn expire_for_age(&self, mut a: Action) -> Result<Action, ApprovalError> {
        a.expired_reason = Some(format!(
            "no decision before it expired at {}",
            a.expires
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ));
        self.move_to(a, ActionState::Expired)
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

    /// The open action for this argv, whatever its id: records filed before actions were shared
    /// carry a per-subject id, and a proposal of the same command joins them too.
    fn open_with_argv(&self, argv: &[String]) -> Result<Option<Action>, ApprovalError> {
        let now = OffsetDateTime::now_utc();
        for state in [ActionState::Approved, ActionState::Pending] {
            if let Some(a) = self
                .read_state(state)?
                .into_iter()
                .find(|a| a.argv == argv && a.expires > now)
            {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Files a proposal, or joins it to the open action for the same argv (adding its subject
    /// and rationale as a contribution).
    pub fn file(&self, p: Proposal) -> Result<Filed, ApprovalError> {
        if p.argv.is_empty() {
            return Err(ApprovalError::EmptyArgv);
        }
        let _lock = self.lock()?;
        let now = OffsetDateTime::now_utc();
        let ttl = time::Duration::try_from(p.ttl).unwrap_or(time::Duration::HOUR);
        if let Some(existing) = self.open_with_argv(&p.argv)? {
            // A command steward's executor will run must not also be run by a waiting agent (or
            // the reverse): refused, and not joined.
            if existing.executor != p.executor {
                return Err(ApprovalError::OtherExecutor {
                    id: existing.id,
                    executor: existing.executor,
                });
            }
            let state = existing.state;
            let joined = contribution::join(existing, &p, now, ttl);
            return Ok(Filed {
                action: self.move_to(joined, state)?,
                new: false,
            });
        }
        let id = action_id(&p.argv);
        match self.get(&id) {
            Ok(old) if old.state.is_open() => {
                // Open but past its expiry: expire it, keep it under a dated name, file anew.
                let old = self.expire_for_age(old)?;
                self.keep_dated(&old)?;
            }
            // A decided or expired proposal of the same command: keep it under a dated name and
            // file the new one fresh.
            Ok(old) => self.keep_dated(&old)?,
            Err(ApprovalError::Unknown(_)) => {}
            Err(e) => return Err(e),
        }
        let action = contribution::first(id.clone(), p, now, ttl);
        ledger::write_json(&self.path(ActionState::Pending, &id), &action)?;
        Ok(Filed { action, new: true })
    }

    fn keep_dated(&self, old: &Action) -> Result<(), ApprovalError> {
        let stamp = old.created.unix_timestamp();
        let from = self.path(old.state, &old.id);
        let to = self
            .root
            .join(old.state.as_str())
            .join(format!("{}.{stamp}.json", old.id));
        std::fs::rename(&from, &to).map_err(|source| LedgerError::Write { path: from, source })?;
        Ok(())
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
        let _lock = self.lock()?;
        let mut a = self.pending(id)?;
        if a.state_fingerprint != current_fingerprint {
            return Err(ApprovalError::Stale {
                id: id.to_string(),
                was: a.state_fingerprint.clone(),
                now: current_fingerprint.to_string(),
            });
        }
        a.decision = Some(OperatorDecision {
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
        let _lock = self.lock()?;
        let mut a = self.pending(id)?;
        a.decision = Some(OperatorDecision {
            by: by.to_string(),
            at: OffsetDateTime::now_utc(),
            note,
        });
        self.move_to(a, ActionState::Rejected)
    }

    /// A waiting run took an approved action over: its agent runs the call, so the action is
    /// closed as `done` without an execution record.
    pub fn hand_over(&self, id: &str) -> Result<Action, ApprovalError> {
        let _lock = self.lock()?;
        let a = self.get(id)?;
        if a.state != ActionState::Approved {
            return Err(ApprovalError::NotApproved {
                id: id.to_string(),
                state: a.state,
            });
        }
        self.move_to(a, ActionState::Done)
    }

    /// Steward gives up on a pending action (a waiting run's time ran out): it can no longer be
    /// approved. `reason` is recorded on it.
    pub fn expire(&self, id: &str, reason: &str) -> Result<Action, ApprovalError> {
        let _lock = self.lock()?;
        let mut a = self.get(id)?;
        if a.state != ActionState::Pending {
            return Err(ApprovalError::NotPending {
                id: id.to_string(),
                state: a.state,
            });
        }
        a.expired_reason = Some(reason.to_string());
        self.move_to(a, ActionState::Expired)
    }

    /// An alert resolved: withdraws the contributions of runs that acted on it from pending
    /// actions steward's executor would run. An action left with no contribution expires with
    /// `reason`; one that other subjects still need stays pending without it. Approved and
    /// decided actions, and actions a waiting run holds, are untouched.
    pub fn resolve(
        &self,
        signal_fingerprint: &str,
        subject: &str,
        reason: &str,
    ) -> Result<Resolution, ApprovalError> {
        let _lock = self.lock()?;
        let mut done = Resolution::default();
        for a in self.read_state(ActionState::Pending)? {
            if a.executor != Executor::Steward {
                continue;
            }
            match contribution::withdraw(a, signal_fingerprint, subject, reason) {
                contribution::Withdrawn::Untouched => {}
                contribution::Withdrawn::Narrowed(a) => {
                    done.narrowed.push(a.id.clone());
                    self.move_to(a, ActionState::Pending)?;
                }
                contribution::Withdrawn::Expired(a) => {
                    done.expired.push(a.id.clone());
                    self.move_to(a, ActionState::Expired)?;
                }
            }
        }
        Ok(done)
    }

    /// The run ids open (pending or approved) actions point at: records that must outlive
    /// their runs' retention.
    pub fn open_run_ids(&self) -> Result<Vec<String>, ApprovalError> {
        let mut ids = Vec::new();
        for state in [ActionState::Pending, ActionState::Approved] {
            for a in self.read_state(state)? {
                let runs = a
                    .contributions
                    .iter()
                    .chain(&a.resolved)
                    .filter_map(|c| c.run_id.clone())
                    .chain(a.run_id.clone());
                for r in runs {
                    if !ids.contains(&r) {
                        ids.push(r);
                    }
                }
            }
        }
        Ok(ids)
    }

    /// The run that waits on its wait-mode actions ended (cancelled, crashed): the ones still
    /// open (pending, or approved but not yet taken over) can no longer be run by it, so they
    /// expire. Returns their ids.
    pub fn expire_for_run(&self, run_id: &str) -> Result<Vec<String>, ApprovalError> {
        let _lock = self.lock()?;
        let mut ids = Vec::new();
        let open = [ActionState::Pending, ActionState::Approved];
        for a in open
            .into_iter()
            .map(|s| self.read_state(s))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
        {
            if a.executor == Executor::Agent
                && a.state.is_open()
                && a.run_id.as_deref() == Some(run_id)
            {
                ids.push(self.move_to(a, ActionState::Expired)?.id);
            }
        }
        Ok(ids)
    }

    /// The action if it can still be approved: pending and not past its expiry (an expired one
    /// is moved to `expired` and reported as such).
    pub fn approvable(&self, id: &str) -> Result<Action, ApprovalError> {
        let _lock = self.lock()?;
        self.pending(id)
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
            self.expire_for_age(a)?;
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
            Err(e) => exec.error = Some(e.to_string()),
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
        let _lock = self.lock()?;
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
) -> Result<crate::base::exec::Output, crate::base::exec::ExecError> {
    crate::base::exec::run(&crate::base::exec::Command {
        argv,
        path_env,
        cwd: None,
        timeout,
        stdout_cap: OUTPUT_CAP,
        stderr_tail: OUTPUT_CAP,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(argv: &[&str]) -> Proposal {
        Proposal {
            subject: "unit:nginx.service".into(),
            signal_fingerprint: Some("fp-nginx".into()),
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
        let expired = s.expire(&b.id, "the run gave up").unwrap();
        assert_eq!(expired.state, ActionState::Expired);
        assert_eq!(expired.expired_reason.as_deref(), Some("the run gave up"));
        assert!(matches!(
            s.expire(&b.id, "again").unwrap_err(),
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

    fn for_subject(argv: &[&str], subject: &str, fp: &str, run: &str) -> Proposal {
        Proposal {
            subject: subject.into(),
            signal_fingerprint: Some(fp.into()),
            rationale: format!("{subject} is down"),
            run_id: Some(run.into()),
            ..proposal(argv)
        }
    }

    #[tokio::test]
    async fn the_same_argv_for_three_subjects_is_one_action_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let restart =
            ["touch", &dir.path().join("restarted").display().to_string()].map(String::from);
        let argv: Vec<&str> = restart.iter().map(String::as_str).collect();
        let mut ids = Vec::new();
        for (subject, fp, run) in [
            ("A/h1", "fa", "r1"),
            ("B/h1", "fb", "r2"),
            ("C/h1", "fc", "r3"),
        ] {
            let mut p = for_subject(&argv, subject, fp, run);
            p.checks = vec![format!("check-{subject}")];
            ids.push(s.file(p).unwrap().action.id);
        }
        // The same subject from the same run again: one more proposal, no new contribution.
        s.file(for_subject(&argv, "A/h1", "fa", "r1")).unwrap();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let list = s.list().unwrap();
        assert_eq!(list.len(), 1, "{list:#?}");
        let a = &list[0];
        assert_eq!(a.subjects(), ["A/h1", "B/h1", "C/h1"]);
        assert_eq!(a.proposals, 4);
        assert_eq!(a.contributions[1].rationale, "B/h1 is down");
        assert_eq!(a.checks, ["check-A/h1", "check-B/h1", "check-C/h1"]);
        assert_eq!(a.id, action_id(&a.argv));

        let fp = a.state_fingerprint.clone();
        s.approve(&a.id, "alice", None, &fp).unwrap();
        let r = Redactor::default();
        let (action, exec) = s
            .execute(&a.id, Duration::from_secs(5), "/usr/bin:/bin", &r)
            .await
            .unwrap();
        s.finish(action, exec, vec![], true).unwrap();
        // Approving once ran it once; nothing else is left to approve.
        assert!(matches!(
            s.approve(&a.id, "alice", None, &fp).unwrap_err(),
            ApprovalError::NotPending { .. }
        ));
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn a_record_from_before_shared_actions_is_read_and_joined() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        // Written by an older steward: a per-subject id, no contributions, no reasons.
        let old_id = "act-0123456789abcdef";
        let now = OffsetDateTime::now_utc();
        let rfc = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let old = serde_json::json!({
            "id": old_id, "state": "pending", "subject": "unit:nginx.service",
            "argv": ["systemctl", "restart", "nginx"], "rationale": "it is down", "checks": [],
            "state_fingerprint": "sf", "goal": "incident", "run_id": "r0",
            "rule": "systemctl restart UNIT", "created": rfc(now),
            "expires": rfc(now + time::Duration::HOUR), "proposals": 1,
            "decision": null, "execution": null
        });
        std::fs::write(
            dir.path().join(format!("actions/pending/{old_id}.json")),
            old.to_string(),
        )
        .unwrap();
        let a = s.get(old_id).unwrap();
        assert_eq!(a.subjects(), ["unit:nginx.service"]);
        assert_eq!(a.contributions[0].run_id.as_deref(), Some("r0"));
        // The same command for another subject joins the old record under its old id.
        let filed = s
            .file(for_subject(
                &["systemctl", "restart", "nginx"],
                "Nginx/h1",
                "fn",
                "r1",
            ))
            .unwrap();
        assert!(!filed.new);
        assert_eq!(filed.action.id, old_id);
        assert_eq!(filed.action.subjects(), ["unit:nginx.service", "Nginx/h1"]);
        assert_eq!(s.list().unwrap().len(), 1);
    }

    #[test]
    fn a_resolved_alert_withdraws_its_contribution_and_expires_what_nobody_needs() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let shared = ["systemctl", "restart", "nginx"];
        s.file(for_subject(&shared, "A/h1", "fa", "r1")).unwrap();
        let id = s
            .file(for_subject(&shared, "B/h1", "fb", "r2"))
            .unwrap()
            .action
            .id;
        let only_a = s
            .file(for_subject(
                &["systemctl", "restart", "php"],
                "A/h1",
                "fa",
                "r1",
            ))
            .unwrap()
            .action;
        let approved = s
            .file(for_subject(
                &["systemctl", "restart", "db"],
                "A/h1",
                "fa",
                "r1",
            ))
            .unwrap()
            .action;
        s.approve(&approved.id, "alice", None, &approved.state_fingerprint)
            .unwrap();
        let mut waiting = for_subject(&["systemctl", "restart", "x"], "A/h1", "fa", "r1");
        waiting.executor = Executor::Agent;
        let waiting = s.file(waiting).unwrap().action;

        let r = s.resolve("fa", "A/h1", "alert A/h1 resolved").unwrap();
        assert_eq!(r.expired, [only_a.id.as_str()]);
        assert_eq!(r.narrowed, [id.as_str()]);
        let narrowed = s.get(&id).unwrap();
        assert_eq!(narrowed.state, ActionState::Pending);
        assert_eq!(narrowed.subjects(), ["B/h1"]);
        assert_eq!(narrowed.subject, "B/h1");
        assert_eq!(narrowed.resolved[0].subject, "A/h1");
        let expired = s.get(&only_a.id).unwrap();
        assert_eq!(expired.state, ActionState::Expired);
        assert_eq!(
            expired.expired_reason.as_deref(),
            Some("alert A/h1 resolved")
        );
        // An operator's approval stands; a waiting run's action is the run's to settle.
        assert_eq!(s.get(&approved.id).unwrap().state, ActionState::Approved);
        assert_eq!(s.get(&waiting.id).unwrap().state, ActionState::Pending);

        let r = s.resolve("fb", "B/h1", "alert B/h1 resolved").unwrap();
        assert_eq!(r.expired, [id.as_str()]);
        assert_eq!(s.get(&id).unwrap().state, ActionState::Expired);
        // Nothing left to withdraw.
        assert_eq!(
            s.resolve("fb", "B/h1", "again").unwrap(),
            Resolution::default()
        );
    }

    #[test]
    fn a_command_for_another_executor_is_refused_not_joined() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let queued = s
            .file(for_subject(&["true"], "A", "fa", "r1"))
            .unwrap()
            .action;
        let mut waiting = for_subject(&["true"], "B", "fb", "r2");
        waiting.executor = Executor::Agent;
        let err = s.file(waiting).unwrap_err();
        assert!(
            err.to_string().contains("for steward's executor to run"),
            "{err}"
        );
        assert_eq!(s.get(&queued.id).unwrap().contributions.len(), 1);
    }

    #[test]
    fn concurrent_proposals_of_one_command_file_one_action() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let state = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let s = Store::open(&state).unwrap();
                    let subject = format!("S{i}");
                    s.file(for_subject(&["true"], &subject, &subject, "r"))
                        .unwrap()
                })
            })
            .collect();
        let filed: Vec<Filed> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(filed.iter().filter(|f| f.new).count(), 1);
        let list = Store::open(dir.path()).unwrap().list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].contributions.len(), 8);
    }
}
