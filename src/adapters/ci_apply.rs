//! `steward ci --apply`: the CI path as a deploy path. The review's decision becomes a change
//! record for the pushed commits, applied through the workspace's `[change] profile` like any
//! approved change (verified, rolled back on failure):
//! - `deploy` (clean): filed approved by the review and applied;
//! - `needs_approval` because the push needs a reboot: applied the same way, and the record says
//!   a reboot is needed;
//! - any other `needs_approval` (risky, no classification, a protected file): filed `pending`
//!   for an operator (`steward changes approve`);
//! - `failed`: nothing is filed.

use crate::base::cancel::Cancel;
use crate::base::outcome::ExitKind;
use crate::config::Config;
use crate::engine::change::apply::{self, ApplyError};
use crate::engine::change::propose::{self, Proposal, ProposeError};
use crate::engine::change::record::{ChangeRecord, ChangeState};
use crate::engine::change::store::{ChangeStore, StoreError};
use crate::engine::run::RunResult;

use super::ci::{Change, CiVerdict, Classification, DeployDecision, short};

#[derive(Debug, thiserror::Error)]
pub enum CiApplyError {
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CiApplyError {
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            CiApplyError::Propose(ProposeError::NoProfile | ProposeError::NotAtHead { .. }) => {
                ExitKind::Usage
            }
            CiApplyError::Apply(e) => e.exit_kind(),
            _ => ExitKind::Error,
        }
    }
}

/// What `--apply` did with the decision.
#[derive(Debug)]
pub struct Applied {
    /// The change filed (and, for a deploy, applied); `None` when the decision was `failed`.
    pub change: Option<ChangeRecord>,
    /// The exit the whole step ends with.
    pub exit: ExitKind,
}

/// Files (and where the decision allows, applies) the push.
pub async fn apply_push(
    cfg: &Config,
    change: &Change,
    run: &RunResult,
    decision: &CiVerdict,
    cancel: &Cancel,
) -> Result<Applied, CiApplyError> {
    let reboot = decision.classification == Some(Classification::NeedsReboot);
    let deploy = match decision.decision {
        DeployDecision::Failed => {
            return Ok(Applied {
                change: None,
                exit: decision.exit,
            });
        }
        DeployDecision::Deploy => true,
        DeployDecision::NeedsApproval => reboot,
    };
    let by = format!("ci:{}", run.id);
    let proposal = Proposal {
        run_id: &run.id,
        goal: &run.goal,
        subject: &run.subject,
        intent: format!("deploy {}..{}", short(&change.base), short(&change.head)),
        base: &change.base,
        head: &change.head,
        state: if deploy {
            ChangeState::Approved
        } else {
            ChangeState::Pending
        },
        by: &by,
        note: decision.reason.clone(),
    };
    let redactor = crate::engine::run::redactor(cfg);
    let filed = propose::file(cfg, &redactor, proposal).await?;
    if filed.state != ChangeState::Approved {
        let exit = match filed.state {
            ChangeState::Pending => ExitKind::NeedsHuman,
            _ => ExitKind::Aborted,
        };
        return Ok(Applied {
            change: Some(filed),
            exit,
        });
    }
    let mut done = apply::apply(cfg, &filed.id, cancel).await?;
    if reboot && done.state == ChangeState::Applied && !done.reboot_needed {
        // The reviewer said the push needs a reboot; the record keeps that, whatever the
        // profile could tell.
        done.reboot_needed = true;
        ChangeStore::open(&cfg.state_dir)?.update(&done)?;
    }
    let exit = apply::exit_kind(&done);
    Ok(Applied {
        change: Some(done),
        exit,
    })
}
