//! `steward hook pre-tool-use --policy FILE` as a library service. Claude Code treats a hook that
//! crashes, times out or prints bad JSON as "no opinion" (it fails open), so this fails closed by
//! its own design: every error and even a panic becomes exit code 2, which Claude does honour.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PolicyError;
use super::bash::check_command;
use super::files::check_tool;
use super::model::{Permission, Policy, PolicyDecision};

/// Why the hook could not decide; it blocks the call (exit 2) with this as the reason.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("malformed hook input: {0}")]
    Malformed(serde_json::Error),
    #[error("hook event `{0}` is not PreToolUse")]
    NotPreToolUse(String),
    #[error("Bash call without a `command` string")]
    NoCommand,
}

/// What the CLI prints and exits with, plus what it records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookAnswer {
    /// 0 with a JSON decision on stdout, or 2 (blocked) with a reason on stderr.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The decision, when one was reached; `Approve` means the caller files a pending action.
    pub decision: Option<PolicyDecision>,
    /// One line for the run's `audit.jsonl`; present even when the hook failed.
    pub audit: AuditEntry,
}

/// One line of a run's `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tool_use_id: Option<String>,
    pub tool: String,
    pub input: Value,
    /// `allow`, `deny`, `approve`, or `error` when the hook could not decide (then it blocked).
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
    pub reason: String,
}

impl AuditEntry {
    /// The entry as one audit line, with token shapes in the input and the reason redacted: a
    /// Write's content or a command's argument can carry a secret, and the audit log is read by
    /// operators and kept with the run.
    pub fn to_line(&self) -> String {
        let redactor = crate::base::redact::Redactor::new(Vec::new());
        let mut entry = self.clone();
        redactor.redact_json(&mut entry.input);
        entry.reason = redactor.redact(&entry.reason);
        serde_json::to_string(&entry).unwrap_or_default()
    }
}

/// The fields of Claude's PreToolUse input steward uses; others are ignored.
#[derive(Debug, Deserialize)]
struct HookInput {
    tool_name: String,
    #[serde(default)]
    tool_input: Value,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    hook_event_name: Option<String>,
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Decides one PreToolUse call from the compiled policy file and Claude's stdin JSON.
pub fn hook_decision(policy_file: &Path, stdin_json: &[u8]) -> HookAnswer {
    fail_closed(stdin_json, || {
        decide_file(policy_file, stdin_json).map_err(|e| e.to_string())
    })
}

fn decide_file(
    policy_file: &Path,
    stdin_json: &[u8],
) -> Result<(PolicyDecision, AuditEntry), HookError> {
    let policy = Policy::from_file(policy_file)?;
    decide(&policy, stdin_json)
}

/// [`hook_decision`] in a forked child (see isolate.rs): a crash, an abort or a decision over
/// its time budget blocks the call with the reason instead of silencing the hook. Only for a
/// single-threaded process: the hook's own.
pub fn hook_decision_isolated(policy_file: &Path, stdin_json: &[u8]) -> HookAnswer {
    match super::isolate::decide_in_child(super::isolate::DECISION_BUDGET, || {
        hook_decision(policy_file, stdin_json)
    }) {
        Ok(answer) => answer,
        Err(e) => fail_closed(stdin_json, || Err(e.to_string())),
    }
}

/// Decides with an already loaded policy (tests, and a long-lived caller).
pub fn hook_decision_with(policy: &Policy, stdin_json: &[u8]) -> HookAnswer {
    fail_closed(stdin_json, || {
        decide(policy, stdin_json).map_err(|e| e.to_string())
    })
}

/// Runs `f`; an `Err` or a panic becomes a blocking answer (exit 2). Public so the panic path is
/// testable without planting a panic in the decision code. The error is the reason as text, not
/// a type: it is data for the audit line and stderr, and callers in other layers (the
/// boundary's size limit) and tests bring their own reasons.
pub fn fail_closed<F>(stdin_json: &[u8], f: F) -> HookAnswer
where
    F: FnOnce() -> Result<(PolicyDecision, AuditEntry), String>,
{
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let error = match outcome {
        Ok(Ok((decision, audit))) => return answer(decision, audit),
        Ok(Err(e)) => e,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            format!("internal error (panic: {msg})")
        }
    };
    let input: Value = serde_json::from_slice(stdin_json).unwrap_or(Value::Null);
    let reason = format!("steward policy hook could not decide, so the call is blocked: {error}");
    HookAnswer {
        exit_code: 2,
        stdout: String::new(),
        stderr: format!("{reason}\n"),
        decision: None,
        audit: AuditEntry {
            time: now(),
            session_id: input
                .get("session_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            tool_use_id: input
                .get("tool_use_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            tool: input
                .get("tool_name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            input: input.get("tool_input").cloned().unwrap_or(Value::Null),
            decision: "error".to_string(),
            rule: None,
            reason,
        },
    }
}

/// Decides one tool call of any kind (for callers other than the hook, e.g. a permission-prompt
/// tool). A Bash call without a command string is denied.
pub fn decide_tool(policy: &Policy, tool: &str, tool_input: &Value, cwd: &Path) -> PolicyDecision {
    match tool {
        "Bash" => match tool_input.get("command").and_then(Value::as_str) {
            Some(cmd) => check_command(policy, cmd, cwd),
            None => PolicyDecision::deny("Bash call without a `command` string"),
        },
        _ => check_tool(policy, tool, tool_input, cwd),
    }
}

fn decide(policy: &Policy, stdin_json: &[u8]) -> Result<(PolicyDecision, AuditEntry), HookError> {
    let input: HookInput = serde_json::from_slice(stdin_json).map_err(HookError::Malformed)?;
    if let Some(ev) = &input.hook_event_name
        && ev != "PreToolUse"
    {
        return Err(HookError::NotPreToolUse(ev.clone()));
    }
    let cwd = match input.cwd.as_deref() {
        Some(c) if c.starts_with('/') => PathBuf::from(c),
        _ => policy.workspace.clone(),
    };
    let decision = match input.tool_name.as_str() {
        "Bash" => match input.tool_input.get("command").and_then(Value::as_str) {
            Some(cmd) => check_command(policy, cmd, &cwd),
            None => return Err(HookError::NoCommand),
        },
        tool => check_tool(policy, tool, &input.tool_input, &cwd),
    };
    let audit = AuditEntry {
        time: now(),
        session_id: input.session_id,
        tool_use_id: input.tool_use_id,
        tool: input.tool_name,
        input: input.tool_input,
        decision: match decision.decision {
            Permission::Allow => "allow",
            Permission::Approve => "approve",
            Permission::Deny => "deny",
        }
        .to_string(),
        rule: decision.rule.clone(),
        reason: decision.reason.clone(),
    };
    Ok((decision, audit))
}

fn answer(decision: PolicyDecision, audit: AuditEntry) -> HookAnswer {
    let (permission, reason) = match decision.decision {
        Permission::Allow => ("allow", decision.reason.clone()),
        Permission::Deny => ("deny", format!("steward policy: {}", decision.reason)),
        // Claude cannot wait for a human inside one tool call: deny now, and the caller files the
        // pending action so an operator can approve it and steward's executor runs it.
        Permission::Approve => (
            "deny",
            format!(
                "steward policy: {}. It was not run: the action was queued for a human to \
                 approve. Do not retry it; list it under proposed actions in your report.",
                decision.reason
            ),
        ),
    };
    let out = json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": permission,
            "permissionDecisionReason": reason,
        }
    });
    HookAnswer {
        exit_code: 0,
        stdout: out.to_string(),
        stderr: String::new(),
        decision: Some(decision),
        audit,
    }
}
