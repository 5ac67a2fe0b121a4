//! A change made by someone else (a push CI reviewed), filed as a change record so that it is
//! applied, verified and rolled back like an agent's: a worktree of the workspace at the pushed
//! commit on `steward/<run-id>`, the diff against the push's base, the profile's static checks
//! and artefacts, the rollback target. steward's diff check is not applied to it: the commits
//! are a human's, reviewed and classified before this (a protected file makes the push risky).

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::base::redact::Redactor;
use crate::config::{Config, Profile};

use super::diff::DiffLimits;
use super::diff_files::record_files;
use super::git::ChangeGit;
use super::profile::{self, ProfileEnv, ProfileError};
use super::record::{CHANGE_FORMAT, ChangeRecord, ChangeState, Transition};
use super::store::{ChangeStore, StoreError};
use super::worktree::{Worktree, WorktreeError};

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error(
        "`steward ci --apply` needs `[change] profile` in steward.toml: how this workspace is applied"
    )]
    NoProfile,
    #[error("the workspace {} is at {found}, not at the pushed commit {head}: check it out first", workspace.display())]
    NotAtHead {
        workspace: PathBuf,
        found: String,
        head: String,
    },
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the rollback target: {0}")]
    Target(#[from] ProfileError),
}

/// What is filed.
pub struct Proposal<'a> {
    pub run_id: &'a str,
    pub goal: &'a str,
    pub subject: &'a str,
    pub intent: String,
    /// The push's base and head, resolved to commit ids.
    pub base: &'a str,
    pub head: &'a str,
    /// `Pending` for an operator, `Approved` when the review already decided (a clean push).
    pub state: ChangeState,
    pub by: &'a str,
    pub note: String,
}

/// Files `p` under the workspace's `[change]` profile. A profile's static checks that fail make
/// the record `invalid` (with their output): nothing is applied.
pub async fn file(
    cfg: &Config,
    redactor: &Redactor,
    p: Proposal<'_>,
) -> Result<ChangeRecord, ProposeError> {
    let profile_kind = cfg.change.profile.ok_or(ProposeError::NoProfile)?;
    let path_env = cfg.change_path();
    let git = ChangeGit::new(path_env)?;
    let root = cfg.state_dir.join("worktrees");
    let wt = Worktree::create(&git, &cfg.workspace, &root, p.run_id).await?;
    if wt.base != p.head {
        let found = wt.base.clone();
        let workspace = wt.workspace.clone();
        let _ = wt.remove(true).await;
        return Err(ProposeError::NotAtHead {
            workspace,
            found,
            head: p.head.to_string(),
        });
    }
    let wt = wt.with_base(p.base);
    let diff = wt.diff(DiffLimits::default()).await?;
    let files = record_files(&diff);
    let env = ProfileEnv {
        cfg: &cfg.change,
        path_env,
        redactor,
    };
    let report = profile::static_checks(&env, profile_kind, &wt.path, &files, 0).await;
    let passed = report.validations.iter().all(|v| v.passed);
    let target = profile::rollback_target(&env, profile_kind, &wt.path, p.base, &files).await?;
    let (state, note) = if passed {
        (p.state, p.note)
    } else {
        (
            ChangeState::Invalid,
            "the profile's static checks failed".to_string(),
        )
    };
    let now = OffsetDateTime::now_utc();
    let record = ChangeRecord {
        format: CHANGE_FORMAT,
        id: ChangeRecord::new_id(),
        state,
        run: p.run_id.to_string(),
        goal: p.goal.to_string(),
        subject: p.subject.to_string(),
        intent: p.intent,
        workspace: wt.workspace.clone(),
        workspace_branch: wt.workspace_branch().await?,
        base: p.base.to_string(),
        branch: wt.branch.clone(),
        head: p.head.to_string(),
        worktree: wt.path.clone(),
        diff_sha256: diff.diff_sha256.clone(),
        files,
        profile: profile_kind,
        edit: Vec::new(),
        validate: Vec::new(),
        apply: (profile_kind == Profile::Command).then(|| cfg.change.apply.clone()),
        rollback: (profile_kind == Profile::Command).then(|| cfg.change.rollback.clone()),
        validation: report.validations,
        repair_rounds: 0,
        artefacts: report.artefacts,
        blast_radius: report.blast_radius,
        rollback_target: target,
        post_checks: cfg.change.post_checks.clone(),
        created: now,
        expires: now + time::Duration::hours(cfg.change.ttl_hours.min(24 * 365) as i64),
        reason: note.clone(),
        steps: Vec::new(),
        reboot_needed: false,
        history: vec![Transition {
            at: now,
            to: state,
            by: p.by.to_string(),
            note,
        }],
    };
    ChangeStore::open(&cfg.state_dir)?.create(&record)?;
    Ok(record)
}
