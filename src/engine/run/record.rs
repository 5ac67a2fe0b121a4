//! What a run writes down: `run.json` as it goes, `result.json` when it ends (with the rollback
//! it did or skipped), the plan a dry run shows, and the sentence an agent failure is told as.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::base::outcome::{ExitKind, Outcome};
use crate::defs::check::CheckResult;
use crate::defs::policy::ClaudeRules;
use crate::defs::probe::ProbeResult;
use crate::engine::agent::{AgentFailure, AgentOutcome, AgentVerdict, Denial};

/// `result.json`: the summary of a run, written when it ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub id: String,
    pub goal: String,
    pub source: String,
    pub subject: String,
    pub outcome: Outcome,
    pub exit: ExitKind,
    pub exit_code: u8,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
    pub duration_ms: u64,
    /// Whether claude was started at all (deterministic-first and aborted runs skip it).
    pub agent_started: bool,
    /// What the run is charged against the daily budget; `cost_source` says where it came from.
    pub cost_usd: f64,
    /// Absent in records written before it existed (those are claude's report, or 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<CostSource>,
    pub num_turns: u32,
    pub permission_denials: Vec<Denial>,
    /// Calls steward's own policy hook denied or queued (from the audit log).
    #[serde(default)]
    pub policy_denials: usize,
    /// Pending actions filed during the run.
    #[serde(default)]
    pub actions_filed: Vec<String>,
    /// Wait-mode actions the run was waiting on when it was cancelled or crashed: expired, since
    /// nothing will run them now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_expired: Vec<String>,
    /// Calls steward's hook failed to decide (each was blocked); see the audit log.
    #[serde(default)]
    pub hook_errors: usize,
    pub failure: Option<AgentFailure>,
    pub verdict: Option<AgentVerdict>,
    #[serde(default)]
    pub failed_checks: Vec<String>,
    #[serde(default)]
    pub regressions: Vec<String>,
    /// The calls of the agent that could change state (see `judge::acts`): what a `fixed` and a
    /// rollback rest on.
    #[serde(default)]
    pub state_changes: Vec<String>,
    /// Whether the goal's rollback ran, and why (absent: the goal has none, or the agent never
    /// ran).
    #[serde(default)]
    pub rollback: Option<RollbackRecord>,
    /// The change set the run filed (goals with `[change]`), if it filed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeSummary>,
    pub session_id: String,
    pub claude_exit_code: Option<i32>,
}

/// A change set in a run's record: enough to find it (`steward changes show ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub id: String,
    pub state: crate::engine::change::record::ChangeState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub files: usize,
    pub diff_sha256: String,
}

impl ChangeSummary {
    pub fn of(r: &crate::engine::change::record::ChangeRecord) -> ChangeSummary {
        ChangeSummary {
            id: r.id.clone(),
            state: r.state,
            reason: r.reason.clone(),
            files: r.files.len(),
            diff_sha256: r.diff_sha256.clone(),
        }
    }
}

/// Where a run's `cost_usd` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// claude's result line (`total_cost_usd`, the CLI's own estimate).
    Reported,
    /// claude was never started: nothing was spent.
    NotStarted,
    /// claude ran but ended without a result line (killed at a timeout, interrupted while
    /// waiting for the API): what it spent is not known, and 0 is recorded.
    Unreported,
    /// The run crashed before claude reported its cost: charged at the run's budget cap
    /// (`--max-budget-usd`), an upper bound, so that a crash loop cannot spend past the daily
    /// budget unseen.
    BudgetCap,
}

impl CostSource {
    pub fn of(agent: Option<&AgentOutcome>) -> CostSource {
        match agent {
            None => CostSource::NotStarted,
            Some(a) if a.cost_reported => CostSource::Reported,
            // Stopped before spawning (a bad spec): nothing ran.
            Some(a) if matches!(a.failure, Some(AgentFailure::Spawn { .. })) => {
                CostSource::NotStarted
            }
            Some(_) => CostSource::Unreported,
        }
    }
}

/// The rollback decision of a run, and what the command did when it ran. Records written before
/// the decision was recorded only exist for rollbacks that ran, hence the defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRecord {
    #[serde(default = "RollbackDecision::ran")]
    pub decision: RollbackDecision,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackDecision {
    Ran,
    Skipped,
}

impl RollbackDecision {
    fn ran() -> RollbackDecision {
        RollbackDecision::Ran
    }
}

impl RollbackRecord {
    pub(super) fn skipped(argv: &[String], reason: String) -> RollbackRecord {
        RollbackRecord {
            decision: RollbackDecision::Skipped,
            reason,
            argv: argv.to_vec(),
            exit_code: None,
            timed_out: false,
            output: String::new(),
            error: None,
        }
    }

    /// A rollback that ran and exited 0 in time.
    pub fn succeeded(&self) -> bool {
        self.decision == RollbackDecision::Ran
            && self.exit_code == Some(0)
            && !self.timed_out
            && self.error.is_none()
    }

    /// One line for an operator: ran or skipped, the command, its result, why.
    pub fn describe(&self) -> String {
        let cmd = if self.argv.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{}`", self.argv.join(" "))
        };
        match self.decision {
            RollbackDecision::Skipped => format!("skipped {cmd}: {}", self.reason),
            RollbackDecision::Ran => {
                let result = match (&self.error, self.timed_out, self.exit_code) {
                    (Some(e), _, _) => format!("could not run: {e}"),
                    (None, true, _) => "timed out".to_string(),
                    (None, false, Some(0)) => "exit 0, succeeded".to_string(),
                    (None, false, Some(c)) => format!("exit {c}, failed"),
                    (None, false, None) => "killed by a signal, failed".to_string(),
                };
                if self.reason.is_empty() {
                    format!("ran {cmd}: {result}")
                } else {
                    format!("ran {cmd}: {result}; because {}", self.reason)
                }
            }
        }
    }
}

/// `run.json`: written at the start and after each stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub goal: String,
    pub stage: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// The steward process running it. Whether it is alive is proven by the run's lock
    /// (`run.lock`, see [`crate::engine::liveness`]), not by this pid.
    pub pid: u32,
    /// The variables the goal was rendered with (redacted).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// claude's process tree once started: what a later steward ends if this one dies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::engine::agent::process::Tree>,
}

/// What a dry run shows.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub goal: String,
    pub prompt: String,
    pub argv: Vec<String>,
    pub rules: ClaudeRules,
    pub context: Vec<ProbeResult>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RunReport {
    Done(Box<RunResult>),
    Planned(Box<Plan>),
}

impl RunReport {
    pub fn exit(&self) -> ExitKind {
        match self {
            RunReport::Done(r) => r.exit,
            RunReport::Planned(_) => ExitKind::Ok,
        }
    }
}

pub fn describe_failure(f: &AgentFailure) -> String {
    match f {
        AgentFailure::Spawn { message } => format!("could not start claude: {message}"),
        AgentFailure::ApiError { status, message } => match status {
            Some(s) => format!("API error {s}: {message}"),
            None => format!("API error: {message}"),
        },
        AgentFailure::MaxTurns { message } => format!("max turns: {message}"),
        AgentFailure::Budget { message } => format!("budget exhausted: {message}"),
        AgentFailure::Timeout { after_secs } => format!("timed out after {after_secs} s"),
        AgentFailure::Crash {
            exit_code,
            signal,
            stderr,
        } => format!(
            "claude crashed (exit {}, signal {}): {}",
            exit_code.map_or("-".into(), |c| c.to_string()),
            signal.map_or("-".into(), |s| s.to_string()),
            stderr.trim()
        ),
        AgentFailure::NoResult { exit_code } => format!(
            "claude ended without a result line (exit {})",
            exit_code.map_or("-".into(), |c| c.to_string())
        ),
        AgentFailure::Malformed { message } => format!("malformed output: {message}"),
        AgentFailure::NoVerdict { message } => format!("no structured verdict: {message}"),
        AgentFailure::BoundaryNotProven { message } => format!("boundary not proven: {message}"),
        AgentFailure::Execution { message } => format!("error during execution: {message}"),
        AgentFailure::Cancelled { signal, killed } => format!(
            "cancelled by {signal}: claude {}",
            if *killed {
                "was killed"
            } else {
                "was interrupted and ended within its grace"
            }
        ),
    }
}
