//! The rollback stage: the goal's rollback command runs when the judge asks for it, and the
//! decision is recorded either way (a skipped rollback says why).

use std::time::Duration;

use crate::base::cancel::{Cancel, Request};
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::goal::Goal;
use crate::engine::judge::Judgement;

use super::recorder::Recorder;
use super::{RollbackDecision, RollbackRecord, RunError};

/// Runs or skips the goal's rollback as `judgement` decides, and says in its reason what the
/// rollback did. `Ok(Err(stop))`: an urgent stop ended the rollback midway.
pub(super) async fn rollback(
    rec: &mut Recorder<'_>,
    cfg: &Config,
    goal: &Goal,
    redactor: &Redactor,
    judgement: &mut Judgement,
    cancel: &Cancel,
) -> Result<Result<Option<RollbackRecord>, Request>, RunError> {
    let record = match goal.checks.rollback.as_deref() {
        Some(argv) if !argv.is_empty() && judgement.rollback => {
            rec.stage("rollback")?;
            let mut record = match cancel.or_urgent(run_rollback(argv, cfg, redactor)).await {
                Ok(r) => r,
                // A half-done rollback is worse than a finished one: only an urgent stop ends it.
                Err(stop) => return Ok(Err(stop)),
            };
            record.reason = judgement.rollback_reason.clone();
            // A rollback is never success, and one that failed leaves the host in doubt.
            judgement.reason = format!(
                "{}; rollback {}",
                judgement.reason,
                if record.succeeded() {
                    "ran and succeeded"
                } else {
                    "ran and FAILED (see `steward runs show`)"
                }
            );
            Some(record)
        }
        Some(argv) if !argv.is_empty() => Some(RollbackRecord::skipped(
            argv,
            judgement.rollback_reason.clone(),
        )),
        // No rollback command: worth recording only when one would have run.
        _ if judgement.rollback => Some(RollbackRecord::skipped(
            &[],
            format!(
                "the goal has no `rollback` command; one would have run: {}",
                judgement.rollback_reason
            ),
        )),
        _ => None,
    };
    Ok(Ok(record))
}

async fn run_rollback(argv: &[String], cfg: &Config, redactor: &Redactor) -> RollbackRecord {
    let out =
        crate::engine::approval::run_argv(argv, Duration::from_secs(300), &cfg.claude.path).await;
    match out {
        Ok(o) => RollbackRecord {
            decision: RollbackDecision::Ran,
            reason: String::new(),
            argv: argv.to_vec(),
            exit_code: o.exit_code(),
            timed_out: o.timed_out(),
            output: redactor.redact(&format!("{}{}", o.stdout, o.stderr)),
            error: None,
        },
        Err(e) => RollbackRecord {
            decision: RollbackDecision::Ran,
            reason: String::new(),
            argv: argv.to_vec(),
            exit_code: None,
            timed_out: false,
            output: String::new(),
            error: Some(e.to_string()),
        },
    }
}
