//! The permission-prompt service behind `mcp__steward__approval_prompt`, free of MCP types.
//!
//! claude calls it for every tool call that would otherwise prompt (in a wait run: the calls
//! steward's hook left undecided because the policy requires approval). The answer is decided
//! with the run's compiled policy; an approval-required call is filed as a pending action and the
//! call blocks until an operator approves or rejects it, or the wait times out. Every answer is
//! appended to the run's audit log, and every failure is a denial: claude runs nothing on a
//! `deny`, and fails closed on anything it cannot parse (reference §5.3).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::base::ledger;
use crate::defs::policy::{AuditEntry, Permission, Policy, PolicyDecision};
use crate::engine::approval::{Action, ActionState, Executor, Store};
use crate::engine::boundary::{self, AUDIT_FILE, HookContext, POLICY_FILE};

/// How often the action store is read while a call waits for an operator.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How the audit reasons of the prompt tool's final answers mark an operator's decision; read back
/// by [`approved_and_ran`] and [`unapproved_action`] (the judge needs to know what ran).
const RAN: &str = "; the agent runs it (action ";
const REJECTED: &str = "rejected action ";
const NO_DECISION: &str = "no decision in time on action ";
const NOT_APPROVED: &str = "not approved; it was not run";

/// Why a wait-mode action ended without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unapproved {
    /// An operator rejected it (or it ended in another state than approved).
    Rejected,
    /// Nobody decided within the wait.
    Expired,
}

/// Whether an audit reason is the prompt tool letting an operator-approved call run.
pub fn approved_and_ran(reason: &str) -> bool {
    reason.starts_with("approval prompt: approved by ") && reason.contains(RAN)
}

/// The action id and why, when an audit reason is the prompt tool denying a call because its
/// action was not approved.
pub fn unapproved_action(reason: &str) -> Option<(String, Unapproved)> {
    let id_after = |marker: &str| {
        reason.split_once(marker).map(|(_, rest)| {
            rest.split([':', ' ', ','])
                .next()
                .unwrap_or_default()
                .to_string()
        })
    };
    if let Some(id) = id_after(REJECTED) {
        return Some((id, Unapproved::Rejected));
    }
    if let Some(id) = id_after(NO_DECISION) {
        return Some((id, Unapproved::Expired));
    }
    if reason.contains(NOT_APPROVED) {
        return id_after("steward: action ").map(|id| (id, Unapproved::Rejected));
    }
    None
}

/// The arguments claude passes to a permission-prompt tool.
#[derive(Debug, Clone, Deserialize)]
pub struct PromptRequest {
    pub tool_name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub tool_use_id: Option<String>,
}

/// The answer, serialised as the JSON text claude expects from the tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "behavior", rename_all = "lowercase")]
pub enum PromptAnswer {
    Allow {
        /// Always the original input: steward approves what was asked, never a rewrite.
        #[serde(rename = "updatedInput")]
        updated_input: Value,
    },
    Deny {
        message: String,
    },
}

impl PromptAnswer {
    fn deny(message: impl Into<String>) -> PromptAnswer {
        PromptAnswer::Deny {
            message: message.into(),
        }
    }

    /// The tool result's text. Serialising this enum cannot fail; the fallback is a denial anyway.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"behavior":"deny","message":"steward could not encode its answer"}"#.to_string()
        })
    }
}

/// Why the prompt could not decide (the call is then denied); the messages are those of the
/// underlying errors.
#[derive(Debug, thiserror::Error)]
enum PromptError {
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Policy(#[from] crate::defs::policy::PolicyError),
    #[error(transparent)]
    File(#[from] boundary::FileError),
    #[error(transparent)]
    Approval(#[from] crate::engine::approval::ApprovalError),
}

/// Answers one prompt-tool call. `arguments` is the raw `tools/call` arguments object.
pub async fn answer(run_dir: &Path, arguments: Value, poll: Duration) -> PromptAnswer {
    let request = match serde_json::from_value::<PromptRequest>(arguments.clone()) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("steward approval prompt: malformed arguments: {e}");
            let entry = audit_entry(&arguments, None, "error", None, &message);
            return audited(run_dir, entry, PromptAnswer::deny(message));
        }
    };
    let (answer, entry) = match decide(run_dir, &request, poll).await {
        Ok(done) => done,
        Err(e) => {
            let message = format!("steward approval prompt could not decide, so it denies: {e}");
            let entry = entry_for(&request, "error", None, &message);
            (PromptAnswer::deny(message), entry)
        }
    };
    audited(run_dir, entry, answer)
}

/// Appends the entry; an answer that cannot be audited becomes a denial.
fn audited(run_dir: &Path, entry: AuditEntry, answer: PromptAnswer) -> PromptAnswer {
    match append(run_dir, &entry) {
        Ok(()) => answer,
        Err(e) => PromptAnswer::deny(format!(
            "steward approval prompt could not write the audit log, so it denies: {e}"
        )),
    }
}

fn append(run_dir: &Path, entry: &AuditEntry) -> Result<(), PromptError> {
    Ok(ledger::append_line(
        &run_dir.join(AUDIT_FILE),
        &entry.to_line(),
    )?)
}

async fn decide(
    run_dir: &Path,
    req: &PromptRequest,
    poll: Duration,
) -> Result<(PromptAnswer, AuditEntry), PromptError> {
    let policy = Policy::from_file(&run_dir.join(POLICY_FILE))?;
    let cwd = policy.workspace.clone();
    let decision = crate::defs::policy::decide_tool(&policy, &req.tool_name, &req.input, &cwd);
    let rule = decision.rule.clone();
    match decision.decision {
        Permission::Allow => Ok((
            PromptAnswer::Allow {
                updated_input: req.input.clone(),
            },
            entry_for(req, "allow", rule, &prefixed(&decision.reason)),
        )),
        Permission::Deny => {
            let message = format!("steward policy: {}", decision.reason);
            Ok((
                PromptAnswer::deny(message.clone()),
                entry_for(req, "deny", rule, &prefixed(&message)),
            ))
        }
        Permission::Approve => wait_for_operator(run_dir, req, &decision, poll).await,
    }
}

fn prefixed(reason: &str) -> String {
    format!("approval prompt: {reason}")
}

/// Files the action and blocks until it is decided or the wait runs out.
async fn wait_for_operator(
    run_dir: &Path,
    req: &PromptRequest,
    decision: &PolicyDecision,
    poll: Duration,
) -> Result<(PromptAnswer, AuditEntry), PromptError> {
    let ctx = HookContext::read(run_dir)?;
    let filed = boundary::file_action(&ctx, decision, &req.input, Executor::Agent, &ctx.checks)?;
    let id = filed.action.id.clone();
    let rule = decision.rule.clone();
    // Recorded before the wait, so the audit log shows what the run is blocked on.
    append(
        run_dir,
        &entry_for(
            req,
            "approve",
            rule.clone(),
            &prefixed(&format!(
                "{}; waiting up to {} s for an operator{} (waiting as {id})",
                decision.reason,
                ctx.approval_timeout_secs,
                boundary::shared_with(&filed, &ctx.subject)
            )),
        ),
    )?;
    let store = Store::open(&ctx.state_dir)?;
    let deadline = Instant::now() + Duration::from_secs(ctx.approval_timeout_secs);
    loop {
        let action = store.get(&id)?;
        if action.state != ActionState::Pending {
            return settle(&store, req, rule, action);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(poll).await;
    }
    // Expire it so that a late approval cannot be mistaken for one that ran. If a decision
    // landed in between, the expiry fails and that decision stands.
    let gave_up = format!(
        "no decision within the {} s the waiting run allowed",
        ctx.approval_timeout_secs
    );
    match store.expire(&id, &gave_up) {
        Ok(_) => {
            let message = format!(
                "steward: {NO_DECISION}{id} (waited {} s); `{}` was not run. \
                 Do not retry it; list it under proposed actions in your report.",
                ctx.approval_timeout_secs,
                decision.argv.clone().unwrap_or_default().join(" ")
            );
            Ok((
                PromptAnswer::deny(message.clone()),
                entry_for(req, "deny", rule, &prefixed(&message)),
            ))
        }
        Err(_) => {
            let action = store.get(&id)?;
            settle(&store, req, rule, action)
        }
    }
}

/// Turns a decided action into the answer.
fn settle(
    store: &Store,
    req: &PromptRequest,
    rule: Option<String>,
    action: Action,
) -> Result<(PromptAnswer, AuditEntry), PromptError> {
    let who = action
        .decision
        .as_ref()
        .map(|d| d.by.clone())
        .unwrap_or_else(|| "nobody".to_string());
    let note = action.decision.as_ref().and_then(|d| d.note.clone());
    match action.state {
        ActionState::Approved => {
            // Closed before claude runs it, so that steward's executor never runs it as well.
            store.hand_over(&action.id)?;
            let reason = format!(
                "approved by {who}{}{RAN}{} done)",
                note.map(|n| format!(" ({n})")).unwrap_or_default(),
                action.id
            );
            Ok((
                PromptAnswer::Allow {
                    updated_input: req.input.clone(),
                },
                entry_for(req, "allow", rule, &prefixed(&reason)),
            ))
        }
        ActionState::Rejected => {
            let message = format!(
                "steward: an operator ({who}) {REJECTED}{}: {}. It was not run; do not \
                 retry it.",
                action.id,
                note.as_deref().unwrap_or("no reason given")
            );
            Ok((
                PromptAnswer::deny(message.clone()),
                entry_for(req, "deny", rule, &prefixed(&message)),
            ))
        }
        other => {
            let message = format!("steward: action {} is {other}, {NOT_APPROVED}", action.id);
            Ok((
                PromptAnswer::deny(message.clone()),
                entry_for(req, "deny", rule, &prefixed(&message)),
            ))
        }
    }
}

fn entry_for(
    req: &PromptRequest,
    decision: &str,
    rule: Option<String>,
    reason: &str,
) -> AuditEntry {
    let mut e = audit_entry(&req.input, req.tool_use_id.clone(), decision, rule, reason);
    e.tool = req.tool_name.clone();
    e
}

fn audit_entry(
    input: &Value,
    tool_use_id: Option<String>,
    decision: &str,
    rule: Option<String>,
    reason: &str,
) -> AuditEntry {
    AuditEntry {
        time: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "unknown".to_string()),
        session_id: None,
        tool_use_id,
        tool: "?".to_string(),
        input: input.clone(),
        decision: decision.to_string(),
        rule,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::goal::ApprovalMode;
    use serde_json::json;

    const POLL: Duration = Duration::from_millis(20);

    fn setup(dir: &Path, timeout_secs: u64) -> std::path::PathBuf {
        let policy = Policy::build(
            "g",
            &crate::defs::policy::GoalPolicy {
                allow: vec!["uptime".into()],
                approve: vec!["touch FILE".into()],
                read: vec!["{workspace}".into()],
                ..Default::default()
            },
            dir,
        )
        .unwrap();
        policy.to_file(&dir.join(POLICY_FILE)).unwrap();
        let state = dir.join("state");
        ledger::write_json(
            &dir.join(boundary::HOOK_CONTEXT_FILE),
            &HookContext {
                state_dir: state.clone(),
                run_id: "r1".into(),
                goal: "g".into(),
                subject: "host".into(),
                signal_fingerprint: None,
                state_fingerprint: "fp".into(),
                checks: vec![],
                known_checks: vec![],
                action_ttl_secs: 3600,
                approval: ApprovalMode::Wait,
                approval_timeout_secs: timeout_secs,
            },
        )
        .unwrap();
        state
    }

    fn call(command: &str) -> Value {
        json!({"tool_name": "Bash", "input": {"command": command, "description": "d"}, "tool_use_id": "t1"})
    }

    fn decisions(dir: &Path) -> Vec<String> {
        boundary::read_audit(dir)
            .unwrap()
            .into_iter()
            .map(|e| e.decision)
            .collect()
    }

    #[tokio::test]
    async fn allow_and_deny_are_immediate_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path(), 60);
        let a = answer(dir.path(), call("uptime"), POLL).await;
        assert_eq!(
            a,
            PromptAnswer::Allow {
                updated_input: call("uptime")["input"].clone()
            }
        );
        let a = answer(dir.path(), call("rm -rf /"), POLL).await;
        assert!(matches!(a, PromptAnswer::Deny { .. }), "{a:?}");
        assert_eq!(decisions(dir.path()), ["allow", "deny"]);
        // The wire format claude parses.
        let text: Value = serde_json::from_str(&a.to_text()).unwrap();
        assert_eq!(text["behavior"], "deny");
    }

    #[tokio::test]
    async fn bad_arguments_and_a_missing_policy_deny() {
        let dir = tempfile::tempdir().unwrap();
        let a = answer(dir.path(), json!({"input": {}}), POLL).await;
        assert!(matches!(a, PromptAnswer::Deny { .. }));
        let a = answer(dir.path(), call("uptime"), POLL).await;
        assert!(matches!(a, PromptAnswer::Deny { .. }));
        assert_eq!(decisions(dir.path()), ["error", "error"]);
    }

    async fn decide_while_waiting(
        dir: &Path,
        state: &Path,
        decide: impl FnOnce(&Store, &str),
    ) -> PromptAnswer {
        let marker = format!("touch {}/m", dir.display());
        let waiting = tokio::spawn({
            let dir = dir.to_path_buf();
            async move { answer(&dir, call(&marker), POLL).await }
        });
        let store = Store::open(state).unwrap();
        let id = loop {
            if let Some(a) = store.list().unwrap().into_iter().next() {
                break a.id;
            }
            tokio::time::sleep(POLL).await;
        };
        decide(&store, &id);
        waiting.await.unwrap()
    }

    #[tokio::test]
    async fn an_approval_allows_the_original_input_and_closes_the_action() {
        let dir = tempfile::tempdir().unwrap();
        let state = setup(dir.path(), 60);
        let a = decide_while_waiting(dir.path(), &state, |s, id| {
            s.approve(id, "alice", None, "fp").unwrap();
        })
        .await;
        assert!(matches!(a, PromptAnswer::Allow { .. }), "{a:?}");
        let action = &Store::open(&state).unwrap().list().unwrap()[0];
        assert_eq!(action.state, ActionState::Done);
        assert_eq!(action.executor, Executor::Agent);
        assert_eq!(decisions(dir.path()), ["approve", "allow"]);
    }

    #[tokio::test]
    async fn a_rejection_denies_with_the_note() {
        let dir = tempfile::tempdir().unwrap();
        let state = setup(dir.path(), 60);
        let a = decide_while_waiting(dir.path(), &state, |s, id| {
            s.reject(id, "bob", Some("not now".into())).unwrap();
        })
        .await;
        match a {
            PromptAnswer::Deny { message } => assert!(message.contains("not now"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(decisions(dir.path()), ["approve", "deny"]);
    }

    #[tokio::test]
    async fn no_decision_in_time_denies_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let state = setup(dir.path(), 1);
        let marker = format!("touch {}/m", dir.path().display());
        let a = answer(dir.path(), call(&marker), POLL).await;
        match a {
            PromptAnswer::Deny { message } => assert!(message.contains("no decision in time")),
            other => panic!("{other:?}"),
        }
        let action = &Store::open(&state).unwrap().list().unwrap()[0];
        assert_eq!(action.state, ActionState::Expired);
    }

    #[tokio::test]
    async fn an_action_steward_will_run_is_not_run_by_the_agent_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = setup(dir.path(), 60);
        let marker = format!("touch {}/m", dir.path().display());
        let store = Store::open(&state).unwrap();
        store
            .file(crate::engine::approval::Proposal {
                subject: "host".into(),
                signal_fingerprint: None,
                argv: vec!["touch".into(), format!("{}/m", dir.path().display())],
                rationale: "queued earlier".into(),
                checks: vec![],
                state_fingerprint: "fp".into(),
                goal: "g".into(),
                run_id: None,
                rule: "touch FILE".into(),
                ttl: Duration::from_secs(60),
                executor: Executor::Steward,
            })
            .unwrap();
        let a = answer(dir.path(), call(&marker), POLL).await;
        assert!(matches!(a, PromptAnswer::Deny { .. }), "{a:?}");
    }
}
