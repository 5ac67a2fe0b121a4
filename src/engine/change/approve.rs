//! Approving and rejecting a change (issue 12, item 7): an approval is bound to exactly what
//! was proposed. Before a change becomes `approved`, steward re-checks that it is still pending
//! and not expired, that its branch still points at its head and the diff still hashes to
//! `diff_sha256`, that the workspace's HEAD is still its base and has no uncommitted changes to
//! tracked files, that its worktree is untouched, and that the profile's static checks still
//! build or plan the same artefacts (`findings.rs`). Anything else moves it to `stale` (or
//! `expired`) with the reason. When only the workspace's HEAD moved, the change is replayed onto
//! the new HEAD in a new worktree and judged again (`rebase.rs`); if it passes, it is filed as a
//! new pending change that needs its own approval, and the old one is `stale`.
//!
//! The git state cannot be locked; the record can. The findings are gathered first, then the
//! move to `approved` happens under the store's lock only if the record is still the one that
//! was checked, so two approvals (or an approval and a rejection) cannot both win.

use std::path::Path;

use time::OffsetDateTime;

use crate::base::redact::Redactor;
use crate::config::Config;

use super::git::ChangeGit;
use super::profile::ProfileEnv;
use super::prune;
use super::record::{ChangeRecord, ChangeState};
use super::store::{ChangeStore, StoreError};
use super::worktree::{BRANCH_PREFIX, WorktreeError};

mod findings;
mod rebase;

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] WorktreeError),
    #[error("change `{id}` expired at {at} before it was approved; it is now `expired`")]
    Expired { id: String, at: String },
    /// A check refused the change; the caller records it (never shown as such).
    #[error("{0}")]
    Refused(Problem),
    #[error(
        "change `{id}` was rejected, but its worktree or branch could not be removed: {source}"
    )]
    Cleanup {
        id: String,
        source: Box<WorktreeError>,
    },
}

impl ApproveError {
    /// The operator's to fix or decide (a wrong id, a change not pending, expired): not a
    /// failure of steward's.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ApproveError::Store(StoreError::Unknown(_) | StoreError::WrongState { .. })
                | ApproveError::Expired { .. }
                | ApproveError::Refused(_)
        )
    }
}

/// Why a change cannot be approved as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Its time is up.
    Expired { at: OffsetDateTime },
    /// The workspace's HEAD is no longer the base: a rebase may save it.
    HeadMoved { from: String, to: String },
    /// Anything else, with the reason the record keeps.
    Stale(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Expired { at } => write!(f, "it expired at {}", rfc3339(*at)),
            Problem::HeadMoved { from, to } => {
                write!(f, "workspace HEAD moved from {from} to {to}")
            }
            Problem::Stale(why) => f.write_str(why),
        }
    }
}

/// What an approval came to.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Every check passed; the change is `approved` and may be applied.
    Approved(ChangeRecord),
    /// A check failed; the change is now `stale` or `expired`, its `reason` says why.
    Refused(ChangeRecord),
    /// The workspace moved on and the change replayed cleanly onto it: `old` is `stale`, `new`
    /// is a pending change that needs its own approval.
    Rebased {
        old: ChangeRecord,
        new: Box<ChangeRecord>,
    },
}

/// A rejection and what was cleaned up after it.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub change: ChangeRecord,
    /// The change's worktree was removed (false: it was gone already).
    pub worktree_removed: bool,
    /// Its `steward/` branch was deleted (false: gone already, or not steward's).
    pub branch_deleted: bool,
}

/// What re-checking a change needs: the configuration, the store, steward's git and the
/// profile's environment.
pub struct Checker<'a> {
    pub cfg: &'a Config,
    pub store: &'a ChangeStore,
    git: ChangeGit,
    path_env: String,
    redactor: Redactor,
}

impl<'a> Checker<'a> {
    pub fn new(cfg: &'a Config, store: &'a ChangeStore) -> Result<Checker<'a>, ApproveError> {
        let path_env = cfg.change_path().to_string();
        Ok(Checker {
            cfg,
            store,
            git: ChangeGit::new(&path_env)?,
            path_env,
            redactor: Redactor::new(cfg.known_secrets()),
        })
    }

    pub fn git(&self) -> &ChangeGit {
        &self.git
    }

    fn profile_env(&self) -> ProfileEnv<'_> {
        ProfileEnv {
            cfg: &self.cfg.change,
            path_env: &self.path_env,
            redactor: &self.redactor,
        }
    }
}

/// The change, if it can still be approved: pending and not expired. A change whose time is up
/// is moved to `expired` here.
pub fn approvable(
    store: &ChangeStore,
    id: &str,
    now: OffsetDateTime,
) -> Result<ChangeRecord, ApproveError> {
    let rec = store.get(id)?;
    if rec.state != ChangeState::Pending {
        return Err(StoreError::WrongState {
            id: id.to_string(),
            state: rec.state,
            wanted: ChangeState::Pending.as_str().to_string(),
        }
        .into());
    }
    if rec.expires <= now {
        let at = rec.expires;
        mark(store, id, &Problem::Expired { at })?;
        return Err(ApproveError::Expired {
            id: id.to_string(),
            at: rfc3339(at),
        });
    }
    Ok(rec)
}

/// Re-checks the change and approves it (by `by`), or records why it cannot be.
pub async fn approve(checker: &Checker<'_>, id: &str, by: &str) -> Result<Verdict, ApproveError> {
    let store = checker.store;
    let rec = approvable(store, id, OffsetDateTime::now_utc())?;
    match findings::first_problem(checker, &rec).await? {
        None => {}
        Some(Problem::HeadMoved { from, to }) => {
            return rebase::rebase_or_refuse(checker, &rec, &from, &to).await;
        }
        Some(problem) => return Ok(Verdict::Refused(mark(store, id, &problem)?)),
    }
    let note = "re-checked: workspace HEAD at the base, branch at the head, the same diff and \
                artefacts";
    let approved = store.transition(
        id,
        &[ChangeState::Pending],
        ChangeState::Approved,
        by,
        note,
        |locked| still_as_checked(locked, &rec, OffsetDateTime::now_utc()),
    );
    match approved {
        Ok(r) => Ok(Verdict::Approved(r)),
        Err(ApproveError::Refused(problem)) => Ok(Verdict::Refused(mark(store, id, &problem)?)),
        Err(e) => Err(e),
    }
}

/// Under the lock: the record is still the one the findings were gathered for, and its time is
/// not up.
fn still_as_checked(
    locked: &ChangeRecord,
    checked: &ChangeRecord,
    now: OffsetDateTime,
) -> Result<(), ApproveError> {
    if locked.expires <= now {
        let at = locked.expires;
        return Err(ApproveError::Refused(Problem::Expired { at }));
    }
    let same = locked.base == checked.base
        && locked.head == checked.head
        && locked.branch == checked.branch
        && locked.diff_sha256 == checked.diff_sha256
        && locked.artefacts == checked.artefacts
        && locked.worktree == checked.worktree;
    if !same {
        let why = "the change record was rewritten while it was being checked".to_string();
        return Err(ApproveError::Refused(Problem::Stale(why)));
    }
    Ok(())
}

/// Moves a pending change to `expired` or `stale`, the problem as its reason.
fn mark(store: &ChangeStore, id: &str, problem: &Problem) -> Result<ChangeRecord, ApproveError> {
    let to = match problem {
        Problem::Expired { .. } => ChangeState::Expired,
        Problem::HeadMoved { .. } | Problem::Stale(_) => ChangeState::Stale,
    };
    let note = match problem {
        Problem::Expired { at } => {
            format!("expired at {} before anyone approved it", rfc3339(*at))
        }
        other => other.to_string(),
    };
    Ok(
        store.transition::<StoreError>(
            id,
            &[ChangeState::Pending],
            to,
            "steward",
            &note,
            |_| Ok(()),
        )?,
    )
}

/// Rejects a pending change (by `by`, with `note`), then removes its worktree and deletes its
/// branch when that is steward's (`steward/…`): a rejected proposal leaves nothing behind in the
/// repository; the record keeps what it was.
pub async fn reject(
    checker: &Checker<'_>,
    id: &str,
    by: &str,
    note: &str,
) -> Result<Rejected, ApproveError> {
    let change = checker.store.transition::<ApproveError>(
        id,
        &[ChangeState::Pending],
        ChangeState::Rejected,
        by,
        note,
        |_| Ok(()),
    )?;
    let (worktree_removed, branch_deleted) = remove_worktree(checker.git(), &change)
        .await
        .map_err(|e| ApproveError::Cleanup {
            id: id.to_string(),
            source: Box::new(e),
        })?;
    Ok(Rejected {
        change,
        worktree_removed,
        branch_deleted,
    })
}

/// Removes the change's worktree and its branch, if they are steward's: a worktree directly in
/// steward's worktrees directory, named as its branch `steward/<name>` says (`prune` checks it).
pub(crate) async fn remove_worktree(
    git: &ChangeGit,
    change: &ChangeRecord,
) -> Result<(bool, bool), WorktreeError> {
    let name = change
        .worktree
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ours = change.branch.strip_prefix(BRANCH_PREFIX) == Some(name);
    let root = change.worktree.parent().unwrap_or(Path::new("/"));
    if !ours || !change.workspace.is_dir() {
        return Ok((false, false));
    }
    let pruned = prune::prune(git, &change.workspace, root, |run| run == name, true).await?;
    Ok((!pruned.worktrees.is_empty(), !pruned.branches.is_empty()))
}

/// A time for people: RFC 3339 to the second.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests;
