//! How a run ended, and the exit code each ending maps to. The same codes are used with and
//! without `--json`.

use serde::{Deserialize, Serialize};

/// The final outcome of a run, derived by steward (not claimed by the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything holds; nothing needed doing.
    Ok,
    /// Something was wrong and the agent fixed it.
    Fixed,
    /// Deterministic checks were green: no model call was made.
    NoAction,
    /// Stopped before the agent could act (static/preflight check, boundary not proven).
    Aborted,
    /// The agent failed, or a post-action check or invariant failed.
    Failed,
    /// A human must decide: the agent needs attention, proposes actions, or flapping was detected.
    Escalated,
    /// Still in progress (only in a record of a run that has not finished).
    Running,
    /// Stopped by a signal (SIGINT, SIGTERM) before it could finish: nothing after the stage it
    /// was in ran.
    Cancelled,
    /// The steward process that ran it died (killed, OOM) before it finished; recorded by the
    /// next steward that started.
    Crashed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fixed => "fixed",
            Outcome::NoAction => "no_action",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "failed",
            Outcome::Escalated => "escalated",
            Outcome::Running => "running",
            Outcome::Cancelled => "cancelled",
            Outcome::Crashed => "crashed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Process exit codes. Documented in the README; stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitKind {
    /// 0: ok, fixed or no action needed.
    Ok,
    /// 1: steward itself failed (I/O, state directory, internal error).
    Error,
    /// 2: bad usage or configuration (also clap's own usage errors).
    Usage,
    /// 3: aborted before the agent acted.
    Aborted,
    /// 4: the agent failed (API error, timeout, budget, turns, crash, malformed output).
    AgentFailed,
    /// 5: steward's checks failed after the agent.
    ValidationFailed,
    /// 6: a human must decide.
    NeedsHuman,
    /// 7: a trigger's signal was not run because of steward's own limits (a rate limit, the
    /// daily budget); nothing was checked or changed, and a later signal may run.
    Limited,
    /// 130: stopped by SIGINT (128 + 2, as a shell reports it).
    Interrupted,
    /// 143: stopped by SIGTERM (128 + 15).
    Terminated,
    /// 129: stopped by SIGHUP (the terminal went away; 128 + 1).
    HungUp,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Ok => 0,
            ExitKind::Error => 1,
            ExitKind::Usage => 2,
            ExitKind::Aborted => 3,
            ExitKind::AgentFailed => 4,
            ExitKind::ValidationFailed => 5,
            ExitKind::NeedsHuman => 6,
            ExitKind::Limited => 7,
            ExitKind::Interrupted => 130,
            ExitKind::Terminated => 143,
            ExitKind::HungUp => 129,
        }
    }

    /// The kind for a raw exit code (the hook's codes are 0 and 2).
    pub fn from_code(code: u8) -> ExitKind {
        match code {
            0 => ExitKind::Ok,
            2 => ExitKind::Usage,
            3 => ExitKind::Aborted,
            4 => ExitKind::AgentFailed,
            5 => ExitKind::ValidationFailed,
            6 => ExitKind::NeedsHuman,
            7 => ExitKind::Limited,
            130 => ExitKind::Interrupted,
            143 => ExitKind::Terminated,
            129 => ExitKind::HungUp,
            _ => ExitKind::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExitKind::Ok => "ok",
            ExitKind::Error => "error",
            ExitKind::Usage => "usage",
            ExitKind::Aborted => "aborted",
            ExitKind::AgentFailed => "agent_failed",
            ExitKind::ValidationFailed => "validation_failed",
            ExitKind::NeedsHuman => "needs_human",
            ExitKind::Limited => "limited",
            ExitKind::Interrupted => "interrupted",
            ExitKind::Terminated => "terminated",
            ExitKind::HungUp => "hung_up",
        }
    }
}
