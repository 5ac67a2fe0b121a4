//! Verifying a change with the checks runs use (`defs/check`): the change's post-checks and its
//! goal's invariants, observed once before anything is applied, after applying, and after a
//! rollback.
//!
//! After applying, every post-check must pass, and every invariant that held before must still
//! hold (an invariant already failing before is reported, not blamed on the change). After a
//! rollback, every check that passed before applying must pass again: the host is back where it
//! was, as far as the checks can see. A post-check that failed before (the change was to make it
//! pass) is not required after the rollback.

use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use crate::base::redact::Redactor;
use crate::defs::check::{self, CheckDef, CheckEnv, CheckResult};
use crate::defs::definitions::Definitions;
use crate::engine::change::record::{ChangeRecord, Step};

/// The pause between two observations while a host settles.
pub(super) const SETTLE_RETRY: Duration = Duration::from_secs(1);

/// The checks of one change, resolved before anything is applied (an unknown name is found
/// while nothing has changed).
#[derive(Debug, Clone)]
pub(super) struct Checks {
    post: Vec<CheckDef>,
    invariants: Vec<CheckDef>,
}

/// What the checks saw at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Observed {
    post: Vec<CheckResult>,
    invariants: Vec<CheckResult>,
}

/// The post-checks by name, the invariants from the change's goal.
pub(super) fn resolve(defs: &Definitions, rec: &ChangeRecord) -> Result<Checks, String> {
    let post = defs
        .checks
        .select(&rec.post_checks)
        .map_err(|e| format!("its post-checks: {e}"))?;
    let goal = defs
        .goal(&rec.goal)
        .map_err(|e| format!("its goal `{}` (for the invariants): {e}", rec.goal))?;
    let invariants = defs
        .checks
        .select(&goal.checks.invariants)
        .map_err(|e| format!("the invariants of goal `{}`: {e}", rec.goal))?;
    Ok(Checks { post, invariants })
}

impl Checks {
    pub(super) fn is_empty(&self) -> bool {
        self.post.is_empty() && self.invariants.is_empty()
    }

    /// Observes until `holds` says the observation is good or `settle` has passed (every
    /// [`SETTLE_RETRY`]): a service just (re)started may need a moment to answer. Returns the
    /// last observation and how many were made.
    pub(super) async fn observe_settled(
        &self,
        env: &CheckEnv,
        redactor: &Redactor,
        settle: Duration,
        holds: impl Fn(&Observed) -> bool,
    ) -> (Observed, u32) {
        let deadline = Instant::now() + settle;
        let mut attempts = 1;
        let mut seen = self.observe(env, redactor).await;
        while !holds(&seen) && Instant::now() + SETTLE_RETRY <= deadline {
            tokio::time::sleep(SETTLE_RETRY).await;
            attempts += 1;
            seen = self.observe(env, redactor).await;
        }
        (seen, attempts)
    }

    pub(super) async fn observe(&self, env: &CheckEnv, redactor: &Redactor) -> Observed {
        let run = |defs: &[CheckDef]| {
            let defs = defs.to_vec();
            async move {
                check::run_checks_in(&defs, env)
                    .await
                    .iter()
                    .map(|r| r.redacted(redactor))
                    .collect::<Vec<_>>()
            }
        };
        let (post, invariants) = tokio::join!(run(&self.post), run(&self.invariants));
        Observed { post, invariants }
    }
}

fn passed(results: &[CheckResult], name: &str) -> bool {
    results
        .iter()
        .any(|r| r.name == name && !r.status.is_failure())
}

/// After applying: the failing post-checks and the invariants that held before and fail now.
pub(super) fn failures_after_apply(before: &Observed, after: &Observed) -> Vec<String> {
    let mut failed: Vec<String> = after
        .post
        .iter()
        .filter(|r| r.status.is_failure())
        .map(|r| format!("post-check `{}` {}", r.name, r.status.as_str()))
        .collect();
    failed.extend(
        after
            .invariants
            .iter()
            .filter(|r| r.status.is_failure() && passed(&before.invariants, &r.name))
            .map(|r| {
                format!(
                    "invariant `{}` {} (it held before)",
                    r.name,
                    r.status.as_str()
                )
            }),
    );
    failed
}

/// After a rollback: the checks that passed before applying and fail now.
pub(super) fn failures_after_rollback(before: &Observed, after: &Observed) -> Vec<String> {
    let again = |now: &[CheckResult], then: &[CheckResult], kind: &str| {
        now.iter()
            .filter(|r| r.status.is_failure() && passed(then, &r.name))
            .map(|r| {
                format!(
                    "{kind} `{}` {} (it passed before the change)",
                    r.name,
                    r.status.as_str()
                )
            })
            .collect::<Vec<_>>()
    };
    let mut failed = again(&after.post, &before.post, "post-check");
    failed.extend(again(&after.invariants, &before.invariants, "invariant"));
    failed
}

/// The observation as a recorded step: the results, and what failed by the step's rule.
pub(super) fn step(
    what: &str,
    started: OffsetDateTime,
    clock: Instant,
    seen: &Observed,
    attempts: u32,
    failed: &[String],
) -> Step {
    Step {
        what: what.to_string(),
        argv: Vec::new(),
        started,
        duration_ms: clock.elapsed().as_millis() as u64,
        ok: failed.is_empty(),
        exit_code: None,
        output: failed.join("; "),
        checks: Some(serde_json::json!({
            "post": seen.post,
            "invariants": seen.invariants,
            "failed": failed,
            "attempts": attempts,
        })),
    }
}
