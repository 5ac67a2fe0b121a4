//! `steward validate [--phase P] [--goal G] [--json]`: run checks without the agent.
//!
//! With a goal, each phase runs the checks the goal's `[checks]` table names. Without one, a phase
//! runs the checks tagged with the phase's name (`static`, `preflight`, `post`, `invariant`), and
//! no phase at all runs every check.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::base::outcome::ExitKind;

use super::exec::{CheckEnv, run_checks_in};
use super::{CheckDef, CheckResult, CheckSet, CheckStatus, GoalChecks, Phase, tally};

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `None` when every check ran without phase selection.
    pub phase: Option<Phase>,
    pub ok: bool,
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValidateReport {
    /// False when any check failed or errored, or a selection was invalid; the CLI exits
    /// non-zero then. `unavailable` does not make it false.
    pub ok: bool,
    pub phases: Vec<PhaseReport>,
    /// Selection problems (an unknown check name in the goal), one message each.
    pub errors: Vec<String>,
    /// Results by status across all phases.
    pub counts: BTreeMap<&'static str, usize>,
}

impl ValidateReport {
    /// `ok` → 0; an invalid selection (unknown check name) is a usage error (2); a failing
    /// check is a validation failure (5).
    pub fn exit_kind(&self) -> ExitKind {
        if !self.errors.is_empty() {
            ExitKind::Usage
        } else if self.ok {
            ExitKind::Ok
        } else {
            ExitKind::ValidationFailed
        }
    }

    /// Human-readable lines, one per check, for the non-JSON CLI output.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.errors {
            out.push(format!("error: {e}"));
        }
        for p in &self.phases {
            let label = p.phase.map(|p| p.as_str()).unwrap_or("all");
            for r in &p.results {
                let mut line = format!(
                    "[{label}] {:<11} {} — {} ({} ms)",
                    r.status.as_str(),
                    r.name,
                    r.description,
                    r.duration_ms
                );
                if r.status != CheckStatus::Pass
                    && let Some(d) = &r.detail
                {
                    line.push_str(&format!(": {d}"));
                }
                out.push(line);
            }
        }
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        out.push(format!(
            "{}: {}",
            if self.ok { "ok" } else { "FAILED" },
            if counts.is_empty() {
                "no checks".to_string()
            } else {
                counts.join(", ")
            }
        ));
        out
    }
}

/// Runs the selected checks with steward's own PATH and working directory.
pub async fn validate(
    checks: &CheckSet,
    phase: Option<Phase>,
    goal_checks: Option<&GoalChecks>,
) -> ValidateReport {
    validate_in(checks, phase, goal_checks, &CheckEnv::default()).await
}

/// `validate` with an explicit environment (the CLI passes the config's PATH and workspace).
pub async fn validate_in(
    checks: &CheckSet,
    phase: Option<Phase>,
    goal_checks: Option<&GoalChecks>,
    env: &CheckEnv,
) -> ValidateReport {
    let mut errors = Vec::new();
    let mut plan: Vec<(Option<Phase>, Vec<CheckDef>)> = Vec::new();
    match (goal_checks, phase) {
        (Some(goal), _) => {
            let phases = phase
                .map(|p| vec![p])
                .unwrap_or_else(|| Phase::ALL.to_vec());
            for p in phases {
                match checks.for_phase(goal, p) {
                    Ok(defs) => plan.push((Some(p), defs)),
                    Err(e) => errors.push(format!("phase {p}: {e}")),
                }
            }
        }
        (None, Some(p)) => match checks.select(&[format!("tag:{}", p.as_str())]) {
            Ok(defs) => plan.push((Some(p), defs)),
            Err(e) => errors.push(format!("phase {p}: {e}")),
        },
        (None, None) => plan.push((None, checks.checks.clone())),
    }
    let mut phases = Vec::new();
    // Phases run in order (static before preflight…), the checks of one phase concurrently.
    for (p, defs) in plan {
        let results = run_checks_in(&defs, env).await;
        let ok = !results.iter().any(|r| r.status.is_failure());
        phases.push(PhaseReport {
            phase: p,
            ok,
            results,
        });
    }
    let all: Vec<CheckResult> = phases.iter().flat_map(|p| p.results.clone()).collect();
    ValidateReport {
        ok: errors.is_empty() && phases.iter().all(|p| p.ok),
        phases,
        errors,
        counts: tally(&all),
    }
}
