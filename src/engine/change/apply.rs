//! Applying an approved change, verifying it, and rolling it back when it does not verify: the
//! orchestration around the profiles' steps (`profile::{apply, finish, rollback}`), under
//! steward's host lock.
//!
//! The order, every step recorded in the change (and saved) as it finishes:
//! 1. refused while nothing has changed: the change is not `approved`, its checks do not resolve,
//!    another steward holds the host lock (the change stays `approved`); the workspace is not at
//!    the change's base (nor at its head already, as for a push), on its branch, clean
//!    (→ `stale`);
//! 2. `check_before`: the post-checks and invariants, observed before anything is applied;
//! 3. `compose`/`nixos`/`nomad`: the workspace's branch is fast-forwarded to the change, then
//!    the profile applies from the workspace; `command`: the goal's `apply` runs in the change's
//!    worktree;
//! 4. `verify` (see `verify.rs`), then `profile::finish`; `command`: the workspace is
//!    fast-forwarded now → `applied`;
//! 5. anything failed (or a stop was asked for): roll back — `command`: `rollback` in a
//!    temporary detached checkout of the base; the others: `git reset --keep BASE` in the
//!    workspace, then the profile's rollback there — and `verify_rollback`. Verified →
//!    `rolled_back` (exit 5, never 0); the rollback or its verification failed → `failed`, with
//!    an `operator_notice` event: the host may be in neither state.
//!
//! A graceful stop lets the running step finish, then rolls back; an urgent one kills the step,
//! records it and stops (`failed`). A crash leaves `applying`: [`recover_applying`].

mod verify;
mod workspace;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::base::cancel::{Cancel, StopSignal};
use crate::base::ledger::{Ledger, LedgerError, LockGuard};
use crate::base::outcome::ExitKind;
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::change::Profile;
use crate::defs::check::CheckEnv;
use crate::defs::definitions::Definitions;
use crate::engine::run::{check_env, redactor};

use super::git::ChangeGit;
use super::profile::{self, ProfileEnv, ProfileError};
use super::record::{ChangeRecord, ChangeState, Step};
use super::store::{ChangeStore, StoreError};
use super::worktree::WorktreeError;
use verify::{Checks, Observed};

/// How long applying waits for a run holding the host lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// Who moves a change while applying it.
const BY: &str = "steward";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot load the definitions: {0}")]
    Definitions(String),
    #[error("change `{id}` cannot be verified, so it is not applied: {detail}")]
    Checks { id: String, detail: String },
    #[error("cannot look at the workspace of change `{id}`: {source}")]
    Git { id: String, source: WorktreeError },
    #[error("stopped by {signal} before change `{id}` was applied: it is still approved")]
    Cancelled { id: String, signal: StopSignal },
}

impl ApplyError {
    /// The exit code of a refusal: nothing was applied.
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            ApplyError::Store(StoreError::Unknown(_) | StoreError::WrongState { .. })
            | ApplyError::Checks { .. } => ExitKind::Usage,
            ApplyError::Cancelled { signal, .. } => signal.exit_kind(),
            _ => ExitKind::Error,
        }
    }
}

/// The exit code a change's state maps to: `applied` 0; `rolled_back` 5 (a rollback is never
/// success); `failed` 6 (a human must look); a refused change (`stale`, `expired`, `rejected`,
/// `invalid`) 2; a change that has not ended 1.
pub fn exit_kind(rec: &ChangeRecord) -> ExitKind {
    match rec.state {
        ChangeState::Applied => ExitKind::Ok,
        ChangeState::RolledBack => ExitKind::ValidationFailed,
        ChangeState::Failed => ExitKind::NeedsHuman,
        ChangeState::Stale
        | ChangeState::Expired
        | ChangeState::Rejected
        | ChangeState::Invalid => ExitKind::Usage,
        ChangeState::Pending | ChangeState::Approved | ChangeState::Applying => ExitKind::Error,
    }
}

/// What a crash left `applying` is `failed`: nobody knows how far it got but its steps. Returns
/// the ids moved (startup recovery tells the operator). Call it holding the host lock: an apply
/// in progress holds it, so only a change whose steward died is moved.
pub fn recover_applying(store: &ChangeStore) -> Result<Vec<String>, StoreError> {
    let mut moved = Vec::new();
    for rec in store.list()? {
        if rec.state != ChangeState::Applying {
            continue;
        }
        let note = "steward stopped while applying: the host may be in neither the old state nor \
                    the new one; its steps say how far it got; a human must look";
        match store.transition::<StoreError>(
            &rec.id,
            &[ChangeState::Applying],
            ChangeState::Failed,
            BY,
            note,
            |_| Ok(()),
        ) {
            Ok(_) => moved.push(rec.id),
            Err(StoreError::WrongState { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

/// Applies the approved change `id`, verifies it and rolls it back if it does not verify. The
/// returned record is in its final state (`applied`, `rolled_back`, `failed` or `stale`); an
/// error means nothing was applied and the change is still `approved`.
pub async fn apply(cfg: &Config, id: &str, cancel: &Cancel) -> Result<ChangeRecord, ApplyError> {
    let store = ChangeStore::open(&cfg.state_dir)?;
    let rec = store.get(id)?;
    if rec.state != ChangeState::Approved {
        return Err(StoreError::WrongState {
            id: id.to_string(),
            state: rec.state,
            wanted: ChangeState::Approved.as_str().to_string(),
        }
        .into());
    }
    let defs = Definitions::load(cfg).map_err(|e| ApplyError::Definitions(e.to_string()))?;
    let checks = verify::resolve(&defs, &rec).map_err(|detail| ApplyError::Checks {
        id: id.to_string(),
        detail,
    })?;
    let ledger = Ledger::open(&cfg.state_dir)?;
    let lock = host_lock(&ledger, id, cancel).await?;
    crate::engine::recover::recover_changes(&ledger, &lock);
    let git_error = |source| ApplyError::Git {
        id: id.to_string(),
        source,
    };
    let path_env = cfg.change_path().to_string();
    let git = ChangeGit::new(&path_env).map_err(git_error)?;
    let rec = store.get(id)?;
    if let Some(why) = not_ready(&git, &rec).await.map_err(git_error)? {
        let stale = store.transition::<StoreError>(
            id,
            &[ChangeState::Approved],
            ChangeState::Stale,
            BY,
            &why,
            |_| Ok(()),
        )?;
        ledger.event("change_stale", Some(&stale.run), event(&stale))?;
        return Ok(stale);
    }
    if let Some(r) = cancel.requested() {
        return Err(ApplyError::Cancelled {
            id: id.to_string(),
            signal: r.signal,
        });
    }
    let rec = store.transition::<StoreError>(
        id,
        &[ChangeState::Approved],
        ChangeState::Applying,
        BY,
        "",
        |_| Ok(()),
    )?;
    ledger.event("change_applying", Some(&rec.run), event(&rec))?;
    let mut applier = Applier {
        store,
        git,
        rec,
        checks,
        redactor: redactor(cfg),
        check_env: check_env(cfg),
        path_env,
        cfg,
        cancel,
        before: Observed::default(),
    };
    let end = applier.run().await;
    let done = applier.end(&ledger, end)?;
    if done.state == ChangeState::Applied {
        forget_worktree(&done, cfg.change_path()).await;
    }
    Ok(done)
}

/// An applied change's commit is in the workspace's history now: its worktree and branch have
/// nothing left to keep (a change rolled back or failed keeps both, for the human who looks).
/// A failure to remove them is logged; the change stands applied.
async fn forget_worktree(done: &ChangeRecord, path_env: &str) {
    let removed = match ChangeGit::new(path_env) {
        Ok(git) => super::approve::remove_worktree(&git, done).await,
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::warn!(change = %done.id, "applied, but its worktree could not be removed: {e}");
    }
}

/// Why the change cannot be applied now although it was approved (it becomes `stale`).
async fn not_ready(git: &ChangeGit, rec: &ChangeRecord) -> Result<Option<String>, WorktreeError> {
    if rec.profile == Profile::Command && !rec.worktree.is_dir() {
        return Ok(Some(format!(
            "the change's worktree {} is gone: its `apply` has nowhere to run",
            rec.worktree.display()
        )));
    }
    workspace::not_at_base(git, rec).await
}

/// The host lock, waited for without blocking the runtime (a stop request ends the wait).
async fn host_lock(ledger: &Ledger, id: &str, cancel: &Cancel) -> Result<LockGuard, ApplyError> {
    let purpose = format!("change {id}");
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match ledger.lock(&purpose, Duration::ZERO) {
            Ok(guard) => return Ok(guard),
            Err(LedgerError::Busy { .. }) if Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(stop) = cancel.or_stop(tokio::time::sleep(LOCK_RETRY)).await {
            return Err(ApplyError::Cancelled {
                id: id.to_string(),
                signal: stop.signal,
            });
        }
    }
}

fn event(rec: &ChangeRecord) -> serde_json::Value {
    serde_json::json!({"change": rec.id, "state": rec.state, "reason": rec.reason})
}

/// How applying ended.
enum End {
    /// Verified; `note` says what did not go to plan afterwards (empty if nothing).
    Applied {
        note: String,
    },
    RolledBack {
        why: String,
    },
    /// `alarm`: the host may be in neither state (the operator is told).
    Failed {
        why: String,
        alarm: bool,
    },
}

/// One change being applied: what it needs, and its record as far as it got.
struct Applier<'a> {
    cfg: &'a Config,
    store: ChangeStore,
    git: ChangeGit,
    rec: ChangeRecord,
    checks: Checks,
    redactor: Redactor,
    check_env: CheckEnv,
    path_env: String,
    cancel: &'a Cancel,
    before: Observed,
}

impl Applier<'_> {
    fn env(&self) -> ProfileEnv<'_> {
        ProfileEnv {
            cfg: &self.cfg.change,
            path_env: &self.path_env,
            redactor: &self.redactor,
        }
    }

    /// Appends finished steps to the record and saves it, so a crash shows how far it got. A
    /// failed save is logged and the work goes on (a rollback must not stop for it); the final
    /// transition reports it.
    fn record(&mut self, mut steps: Vec<Step>) {
        self.rec.steps.append(&mut steps);
        if let Err(e) = self.store.update(&self.rec) {
            tracing::error!(change = %self.rec.id, "cannot save the change's steps: {e}");
        }
    }

    fn settle(&self) -> Duration {
        Duration::from_secs(self.cfg.change.settle_secs)
    }

    /// Where the profile applies: the change's worktree (`command`) or the live workspace.
    fn apply_dir(&self) -> PathBuf {
        match self.rec.profile {
            Profile::Command => self.rec.worktree.clone(),
            _ => self.rec.workspace.clone(),
        }
    }

    async fn run(&mut self) -> End {
        let started = OffsetDateTime::now_utc();
        let clock = Instant::now();
        self.before = self.checks.observe(&self.check_env, &self.redactor).await;
        let step = verify::step("check_before", started, clock, &self.before, 1, &[]);
        self.record(vec![step]);
        if self.rec.profile != Profile::Command {
            let step = workspace::fast_forward(&self.git, &self.rec).await;
            let ok = step.ok;
            self.record(vec![step]);
            if !ok {
                return self
                    .nothing_applied("fast-forwarding the workspace to the change failed")
                    .await;
            }
        }
        if let Some(end) = self.apply_step().await {
            return end;
        }
        if let Some(end) = self.verify_step().await {
            return end;
        }
        if let Some(end) = self.finish_step().await {
            return end;
        }
        let mut note = if self.checks.is_empty() {
            "applied, but nothing verified it: the change has no post-checks and its goal no \
             invariants"
                .to_string()
        } else {
            String::new()
        };
        if self.rec.profile == Profile::Command {
            let step = workspace::fast_forward(&self.git, &self.rec).await;
            if !step.ok {
                note = "applied and verified, but the workspace could not be fast-forwarded to \
                        the change (see the fast_forward step): the repository does not say \
                        what runs"
                    .to_string();
            }
            self.record(vec![step]);
        }
        End::Applied { note }
    }

    /// The profile's apply; `Some` when it did not succeed (and what came of it).
    async fn apply_step(&mut self) -> Option<End> {
        let dir = self.apply_dir();
        let mut steps = Vec::new();
        let env = self.env();
        let result = self
            .cancel
            .or_urgent(profile::apply(&env, &self.rec, &dir, &mut steps))
            .await;
        let ran = !steps.is_empty();
        match result {
            Ok(Ok(())) => {
                self.record(steps);
                self.stop_requested("applying").await
            }
            Ok(Err(e @ ProfileError::Unsupported { .. })) if !ran => {
                Some(self.nothing_applied(&e.to_string()).await)
            }
            Ok(Err(e)) => {
                self.record(steps);
                Some(self.roll_back(format!("applying failed: {e}")).await)
            }
            Err(stop) => {
                steps.push(killed("apply", stop.signal));
                self.record(steps);
                Some(urgent_stop("the apply step", stop.signal))
            }
        }
    }

    /// A graceful stop asked for while a step ran: roll back now.
    async fn stop_requested(&mut self, during: &str) -> Option<End> {
        let stop = self.cancel.requested()?;
        Some(
            self.roll_back(format!("stopped by {} while {during}", stop.signal))
                .await,
        )
    }

    async fn verify_step(&mut self) -> Option<End> {
        let started = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let before = &self.before;
        let holds = |seen: &Observed| verify::failures_after_apply(before, seen).is_empty();
        let seen = self
            .cancel
            .or_urgent(self.checks.observe_settled(
                &self.check_env,
                &self.redactor,
                self.settle(),
                holds,
            ))
            .await;
        let (seen, attempts) = match seen {
            Ok(seen) => seen,
            Err(stop) => {
                self.record(vec![killed("verify", stop.signal)]);
                return Some(urgent_stop("verifying", stop.signal));
            }
        };
        let failed = verify::failures_after_apply(&self.before, &seen);
        let step = verify::step("verify", started, clock, &seen, attempts, &failed);
        self.record(vec![step]);
        if !failed.is_empty() {
            let why = format!("verification failed: {}", failed.join("; "));
            return Some(self.roll_back(why).await);
        }
        self.stop_requested("verifying").await
    }

    async fn finish_step(&mut self) -> Option<End> {
        let dir = self.apply_dir();
        let mut steps = Vec::new();
        let env = self.env();
        let result = self
            .cancel
            .or_urgent(profile::finish(&env, &self.rec, &dir, &mut steps))
            .await;
        match result {
            Ok(Ok(())) => {
                // The new system is the boot default now: a changed kernel, initrd or modules
                // only take effect at the next boot, and the record says so.
                if self.rec.profile == Profile::Nixos {
                    self.rec.reboot_needed = profile::nixos::reboot_needed();
                }
                self.record(steps);
                None
            }
            Ok(Err(e)) => {
                self.record(steps);
                Some(self.roll_back(format!("finishing failed: {e}")).await)
            }
            Err(stop) => {
                steps.push(killed("finish", stop.signal));
                self.record(steps);
                Some(urgent_stop("finishing", stop.signal))
            }
        }
    }

    /// The profile refused before running anything: the workspace goes back to the base, and
    /// the change is `failed` (nothing on the host changed, which the reason says).
    async fn nothing_applied(&mut self, why: &str) -> End {
        if self.rec.profile != Profile::Command {
            let step = workspace::reset_to_base(&self.git, &self.rec).await;
            let ok = step.ok;
            self.record(vec![step]);
            if !ok {
                return End::Failed {
                    why: format!(
                        "{why}; nothing was applied to the host, but returning the workspace to \
                         the base failed (see the reset_workspace step)"
                    ),
                    alarm: true,
                };
            }
        }
        End::Failed {
            why: format!("nothing was applied: {why}"),
            alarm: false,
        }
    }

    async fn roll_back(&mut self, why: String) -> End {
        match self.rollback_and_verify().await {
            Ok(()) => End::RolledBack { why },
            Err(what) => End::Failed {
                why: format!(
                    "ROLLBACK FAILED: {what}. The host may be in neither the old state nor the \
                     new one: a human must look at it now. (It was rolled back because {why}.)"
                ),
                alarm: true,
            },
        }
    }

    /// Rolls back and verifies the rollback; `Err` says what failed.
    async fn rollback_and_verify(&mut self) -> Result<(), String> {
        let checkout = self.rollback_dir().await?;
        let dir = match &checkout {
            Some(c) => c.path().to_path_buf(),
            None => self.rec.workspace.clone(),
        };
        let mut steps = Vec::new();
        let env = self.env();
        let result = self
            .cancel
            .or_urgent(profile::rollback(&env, &self.rec, &dir, &mut steps))
            .await;
        if let Err(stop) = &result {
            steps.push(killed("rollback", stop.signal));
        }
        self.record(steps);
        if let Some(c) = checkout {
            let step = workspace::remove_checkout(&self.git, &self.rec, c.path()).await;
            self.record(vec![step]);
        }
        match result {
            Err(stop) => {
                return Err(format!(
                    "an urgent stop ({}) killed the rollback",
                    stop.signal
                ));
            }
            Ok(Err(e)) => return Err(format!("the rollback failed: {e}")),
            Ok(Ok(())) => {}
        }
        self.verify_rollback().await
    }

    /// Where the rollback runs: a fresh checkout of the base (`command`), or the workspace
    /// returned to the base (`None`).
    async fn rollback_dir(&mut self) -> Result<Option<tempfile::TempDir>, String> {
        if self.rec.profile == Profile::Command {
            let parent = self.cfg.state_dir.join("rollback-checkouts");
            let (step, dir) = workspace::checkout_base(&self.git, &self.rec, &parent).await;
            self.record(vec![step]);
            return dir
                .map(Some)
                .ok_or_else(|| "checking out the base for the rollback failed".to_string());
        }
        let step = workspace::reset_to_base(&self.git, &self.rec).await;
        let ok = step.ok;
        self.record(vec![step]);
        if ok {
            Ok(None)
        } else {
            Err("returning the workspace to the base (`git reset --keep`) failed".to_string())
        }
    }

    async fn verify_rollback(&mut self) -> Result<(), String> {
        let started = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let before = &self.before;
        let holds = |seen: &Observed| verify::failures_after_rollback(before, seen).is_empty();
        let seen = self
            .cancel
            .or_urgent(self.checks.observe_settled(
                &self.check_env,
                &self.redactor,
                self.settle(),
                holds,
            ))
            .await;
        let (seen, attempts) = match seen {
            Ok(seen) => seen,
            Err(stop) => {
                self.record(vec![killed("verify_rollback", stop.signal)]);
                return Err(format!(
                    "an urgent stop ({}) killed the rollback's verification",
                    stop.signal
                ));
            }
        };
        let failed = verify::failures_after_rollback(&self.before, &seen);
        let step = verify::step("verify_rollback", started, clock, &seen, attempts, &failed);
        self.record(vec![step]);
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the rollback ran but its verification failed: {}",
                failed.join("; ")
            ))
        }
    }

    /// Files the final state, with the events that tell about it.
    fn end(self, ledger: &Ledger, end: End) -> Result<ChangeRecord, ApplyError> {
        let (to, why, alarm) = match end {
            End::Applied { note } => (ChangeState::Applied, note, false),
            End::RolledBack { why } => (
                ChangeState::RolledBack,
                format!("rolled back because {why}; the rollback verified"),
                false,
            ),
            End::Failed { why, alarm } => (ChangeState::Failed, why, alarm),
        };
        let steps = self.rec.steps.clone();
        let done = self.store.transition::<StoreError>(
            &self.rec.id,
            &[ChangeState::Applying],
            to,
            BY,
            &why,
            |r| {
                r.steps = steps;
                Ok(())
            },
        )?;
        ledger.event("change_apply_ended", Some(&done.run), event(&done))?;
        if alarm {
            ledger.event(
                "operator_notice",
                Some(&done.run),
                serde_json::json!({
                    "cause": "change_rollback_failed", "change": done.id,
                    "workspace": done.workspace, "reason": done.reason,
                }),
            )?;
        }
        Ok(done)
    }
}

/// An urgent stop killed a step: nothing more runs, no rollback.
fn urgent_stop(during: &str, signal: StopSignal) -> End {
    End::Failed {
        why: format!(
            "an urgent stop ({signal}) killed {during}; nothing was rolled back. The host may be \
             in neither the old state nor the new one: a human must look at it now"
        ),
        alarm: true,
    }
}

/// The record of a step an urgent stop killed.
fn killed(what: &str, signal: StopSignal) -> Step {
    workspace::failed_step(
        what,
        format!("killed by an urgent stop ({signal}) before it finished"),
    )
}
