//! The boundary around one run: the `--settings` steward gives claude (a SessionStart hook that
//! proves they loaded, and a PreToolUse hook that runs steward itself), and the hook service:
//! decide by the run's compiled policy, append every decision to the run's audit log, and file
//! approval-required calls as pending actions.
//!
//! The hook is on claude's path for every tool call, so it stays synchronous and small: no async
//! runtime, no config loading.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::base::ledger;
use crate::defs::policy::{AuditEntry, HookAnswer, Permission};
use crate::engine::approval::{ApprovalMode, Executor, Filed, Proposal, Store};

/// Audit entries of a wait run that record a step, not a decision: the hook handing the call to
/// the prompt tool, and the prompt tool starting to wait. Neither denied anything.
pub fn is_intermediate(entry: &AuditEntry) -> bool {
    entry.decision == "approve"
        && (entry.reason.contains("(left to the approval prompt")
            || entry.reason.contains("(waiting as "))
}

/// The pending action an audit entry filed, queued (hook) or waited on (prompt tool).
pub fn filed_action(entry: &AuditEntry) -> Option<String> {
    if entry.decision != "approve" {
        return None;
    }
    ["(queued as ", "(waiting as "].iter().find_map(|marker| {
        entry
            .reason
            .rsplit_once(marker)
            .map(|(_, id)| id.trim_end_matches(')').to_string())
    })
}

/// The audit reason of a tool call found in the transcript that ran without a hook decision.
pub const RAN_WITHOUT_HOOK: &str = "the call ran without a decision of steward's hook";

/// The run directory's files the hook reads and writes.
pub const POLICY_FILE: &str = "policy.json";
pub const HOOK_CONTEXT_FILE: &str = "hook-context.json";
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Largest PreToolUse input the hook decides on (a Write of a file this large is not
/// reviewable either); anything longer is blocked without a decision being attempted.
pub const MAX_HOOK_INPUT: usize = 8 * 1024 * 1024;
/// The hook reads at most this much, to name an oversized call in the audit log.
pub const MAX_HOOK_READ: usize = 64 * 1024 * 1024;

/// Seconds claude gives the hook. It answers in milliseconds; the margin is for a loaded host.
pub const HOOK_TIMEOUT_SECS: u64 = 30;

/// The window in which two failed attempts of the same action escalate the third.
pub const ESCALATION_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Settings passed with `--settings`. A settings object that fails claude's schema is dropped
/// silently, which is why the SessionStart nonce must be seen in the stream before anything runs.
pub fn claude_settings(nonce: &str, steward_exe: &Path, run_dir: &Path) -> serde_json::Value {
    let hook = format!(
        "{} hook pre-tool-use --run-dir {}",
        shell_quote(&steward_exe.display().to_string()),
        shell_quote(&run_dir.display().to_string())
    );
    json!({
        "includeGitInstructions": false,
        "hooks": {
            "SessionStart": [{
                "hooks": [{"type": "command", "command": format!("echo {nonce}"), "timeout": 10}]
            }],
            "PreToolUse": [{
                "matcher": "*",
                "hooks": [{"type": "command", "command": hook, "timeout": HOOK_TIMEOUT_SECS}]
            }]
        }
    })
}

/// Claude runs hook commands through `/bin/sh -c`; single quotes make every path one word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the hook needs besides the policy to file a pending action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookContext {
    pub state_dir: PathBuf,
    pub run_id: String,
    pub goal: String,
    pub subject: String,
    /// The fingerprint of the run's signal: an alert resolving withdraws what the run proposed.
    #[serde(default)]
    pub signal_fingerprint: Option<String>,
    /// Fingerprint of the state the run saw (check statuses), carried into each proposal.
    pub state_fingerprint: String,
    /// The goal's post-action checks, run by the executor after an approved action.
    pub checks: Vec<String>,
    /// Every check the run's definitions hold: the names a `propose_action` may add to its
    /// action's checks (`engine/proposal_checks.rs`). Absent (an older run): none may be added.
    #[serde(default)]
    pub known_checks: Vec<String>,
    pub action_ttl_secs: u64,
    /// Queue (deny now, file) or wait (leave the call to steward's permission-prompt tool).
    #[serde(default)]
    pub approval: ApprovalMode,
    /// How long the prompt tool waits for an operator in wait mode.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_secs: u64,
}

pub use crate::defs::goal::DEFAULT_APPROVAL_TIMEOUT_SECS;

fn default_approval_timeout() -> u64 {
    DEFAULT_APPROVAL_TIMEOUT_SECS
}

impl HookContext {
    pub fn read(run_dir: &Path) -> Result<HookContext, ledger::LedgerError> {
        ledger::read_json(&run_dir.join(HOOK_CONTEXT_FILE))
    }
}

/// `steward hook pre-tool-use --run-dir DIR`: decide, audit, file. Never fails open: anything
/// that goes wrong, including a failed audit write, blocks the call (exit 2).
pub fn pre_tool_use(run_dir: &Path, stdin_json: &[u8]) -> HookAnswer {
    if stdin_json.len() > MAX_HOOK_INPUT {
        let summary = oversized_summary(stdin_json);
        let answer = crate::defs::policy::fail_closed(&summary, || {
            Err(format!(
                "the tool call is larger than {MAX_HOOK_INPUT} bytes"
            ))
        });
        return audited(run_dir, answer);
    }
    let mut answer =
        crate::defs::policy::hook_decision_isolated(&run_dir.join(POLICY_FILE), stdin_json);
    let approve = answer
        .decision
        .as_ref()
        .filter(|d| d.decision == Permission::Approve)
        .cloned();
    if let Some(decision) = approve {
        match HookContext::read(run_dir) {
            // In a wait run the hook answers `ask`, which sends the call to steward's prompt tool
            // (that files the action and blocks until an operator decides). `ask`, not "no
            // opinion": with no opinion claude's own rules decide first and auto-approve
            // read-only commands like `echo` without asking anyone (tested with 2.1.197).
            // A proposed action is always queued for steward's executor: the agent proposes it,
            // it does not wait to run it itself.
            Ok(ctx) if ctx.approval == ApprovalMode::Wait && !is_proposal(&answer.audit.tool) => {
                answer.stdout = ask_output(&decision.reason);
                answer.audit.reason = format!(
                    "{} (left to the approval prompt: the run waits for an operator)",
                    answer.audit.reason
                );
            }
            Ok(ctx) => answer = queue(&ctx, &decision, answer),
            Err(e) => {
                answer = blocked(answer, &format!("could not read the run's context: {e}"));
            }
        }
    }
    audited(run_dir, answer)
}

/// Files the approval-required call for steward's executor and denies it now, telling the agent
/// the action's id. A `propose_action` naming a check the run does not define is denied
/// instead, naming it, and nothing is filed.
fn queue(
    ctx: &HookContext,
    decision: &crate::defs::policy::PolicyDecision,
    mut answer: HookAnswer,
) -> HookAnswer {
    let checks = if is_proposal(&answer.audit.tool) {
        match crate::engine::proposal_checks::with_named(ctx, &answer.audit.input) {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("steward policy: propose_action refused: {e}");
                answer.stdout = deny_output(&reason);
                answer.audit.decision = "deny".into();
                answer.audit.reason = reason;
                return answer;
            }
        }
    } else {
        ctx.checks.clone()
    };
    match file_action(
        ctx,
        decision,
        &answer.audit.input,
        Executor::Steward,
        &checks,
    ) {
        Ok(filed) => {
            let id = &filed.action.id;
            let reason = format!(
                "steward policy: {}. It was not run: it is queued for a human as action {id} \
                 (`steward actions approve {id}`){}. Do not retry it; list it under proposed \
                 actions in your report.",
                decision.reason,
                shared_with(&filed, &ctx.subject)
            );
            answer.stdout = deny_output(&reason);
            answer.audit.reason = format!("{} (queued as {id})", answer.audit.reason);
            answer
        }
        Err(e) => blocked(answer, &format!("could not queue the action: {e}")),
    }
}

/// steward's `propose_action` tool: filed for steward's executor in every approval mode.
fn is_proposal(tool: &str) -> bool {
    tool.strip_prefix(crate::defs::policy::steward_tools::PREFIX) == Some("propose_action")
}

/// The ids of an oversized call, for its audit line, without its input: the JSON is scanned
/// (linear, nothing kept of `tool_input`) but never decided on. A truncated read yields none.
fn oversized_summary(stdin_json: &[u8]) -> Vec<u8> {
    #[derive(Deserialize, Serialize, Default)]
    struct Ids {
        session_id: Option<String>,
        tool_use_id: Option<String>,
        tool_name: Option<String>,
    }
    let ids: Ids = serde_json::from_slice(stdin_json).unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "session_id": ids.session_id,
        "tool_use_id": ids.tool_use_id,
        "tool_name": ids.tool_name,
        "tool_input": {"omitted_bytes": stdin_json.len()},
    }))
    .unwrap_or_default()
}

/// Appends the answer's audit line; an answer that cannot be recorded blocks the call.
fn audited(run_dir: &Path, answer: HookAnswer) -> HookAnswer {
    let line = answer.audit.to_line();
    match ledger::append_line(&run_dir.join(AUDIT_FILE), &line) {
        Ok(()) => answer,
        Err(e) => blocked(answer, &format!("could not write the audit log: {e}")),
    }
}

/// What the model is told when its proposal joined an action other subjects need too: one
/// approval runs the command once, for all of them.
pub fn shared_with(filed: &Filed, subject: &str) -> String {
    let others: Vec<&str> = filed
        .action
        .subjects()
        .into_iter()
        .filter(|s| *s != subject)
        .collect();
    if others.is_empty() {
        String::new()
    } else {
        format!(
            "; the same command is already proposed for {} too: one approval runs it once for all",
            others.join(", ")
        )
    }
}

/// Why an approval-required call could not be filed as a pending action.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the policy gave no argv to queue")]
    NoArgv,
    #[error(
        "`{command}` on `{subject}` already failed its checks twice in the last day; escalate to \
         a human instead of proposing it again"
    )]
    FailedTwice { command: String, subject: String },
    #[error(transparent)]
    Memory(#[from] crate::engine::memory::MemoryError),
    #[error(transparent)]
    Approval(#[from] crate::engine::approval::ApprovalError),
}

/// Files an approval-required call as a pending action (or joins the open action for the same
/// command), with `checks` to run after it. `executor` says who runs it once approved; an action
/// the agent will run lives only as long as the run waits.
pub fn file_action(
    ctx: &HookContext,
    decision: &crate::defs::policy::PolicyDecision,
    input: &serde_json::Value,
    executor: Executor,
    checks: &[String],
) -> Result<Filed, FileError> {
    let argv = decision
        .argv
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or(FileError::NoArgv)?;
    // A Bash call's `description`, or steward's `propose_action` tool's `rationale`.
    let rationale = input
        .get("description")
        .or_else(|| input.get("rationale"))
        .and_then(|d| d.as_str())
        .unwrap_or("(no rationale given)")
        .to_string();
    // The same action on the same subject that already failed its checks twice goes to a human
    // as an escalation, not as a third attempt.
    let memory = crate::engine::memory::Memory::open(&ctx.state_dir);
    if memory.should_escalate(&ctx.subject, &argv.join(" "), ESCALATION_WINDOW)? {
        return Err(FileError::FailedTwice {
            command: argv.join(" "),
            subject: ctx.subject.clone(),
        });
    }
    let ttl = match executor {
        Executor::Steward => ctx.action_ttl_secs,
        Executor::Agent => ctx.approval_timeout_secs,
    };
    let store = Store::open(&ctx.state_dir)?;
    let filed = store.file(Proposal {
        subject: ctx.subject.clone(),
        signal_fingerprint: ctx.signal_fingerprint.clone(),
        argv,
        rationale,
        checks: checks.to_vec(),
        state_fingerprint: ctx.state_fingerprint.clone(),
        goal: ctx.goal.clone(),
        run_id: Some(ctx.run_id.clone()),
        rule: decision.rule.clone().unwrap_or_default(),
        ttl: Duration::from_secs(ttl),
        executor,
    })?;
    Ok(filed)
}

fn ask_output(reason: &str) -> String {
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "ask",
            "permissionDecisionReason": reason,
        }
    })
    .to_string()
}

fn deny_output(reason: &str) -> String {
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    })
    .to_string()
}

/// Turns any answer into a block: exit 2 with the reason on stderr, which claude honours.
fn blocked(mut answer: HookAnswer, why: &str) -> HookAnswer {
    let reason = format!("steward policy hook blocked the call: {why}");
    answer.exit_code = 2;
    answer.stdout = String::new();
    answer.stderr = format!("{reason}\n");
    answer.audit.decision = "error".to_string();
    answer.audit.reason = reason;
    answer
}

/// Claude Code refuses some calls itself before any hook runs (its `--disallowedTools` rules,
/// e.g. a `Read` of a secret path), so steward's hook never sees them. After the run, every tool
/// call in the run's `transcript.jsonl` without a hook decision is appended to the audit log:
/// `deny` when Claude refused it, `error` when it ran without the hook. Returns how many were
/// added.
pub fn audit_unhooked_calls(run_dir: &Path) -> Result<Unhooked, ledger::LedgerError> {
    let path = run_dir.join("transcript.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => audit_unhooked_in(run_dir, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Unhooked::default()),
        Err(source) => Err(ledger::LedgerError::Read { path, source }),
    }
}

/// Tool calls the hook never decided: refused by claude first (harmless), or run anyway (the
/// boundary was not in force for them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unhooked {
    pub refused: usize,
    pub ran: usize,
    /// Refused by Claude after steward's hook died without answering.
    pub hook_failed: usize,
}

/// A `hook_response` line of a PreToolUse hook that failed other than by steward's own block
/// (exit 2): a crash, a kill, a timeout. Claude reads those as "no opinion".
fn pre_tool_use_hook_failure(line: &serde_json::Value) -> Option<String> {
    let is_pre_tool_use = line["type"] == "system"
        && line["subtype"] == "hook_response"
        && line["hook_event"] == "PreToolUse";
    let outcome = line["outcome"].as_str().unwrap_or("");
    if !is_pre_tool_use || outcome == "success" || line["exit_code"].as_i64() == Some(2) {
        return None;
    }
    Some(match line["exit_code"].as_i64() {
        Some(code) => format!("{outcome}, exit {code}"),
        None => outcome.to_string(),
    })
}

fn audit_unhooked_in(run_dir: &Path, transcript: &str) -> Result<Unhooked, ledger::LedgerError> {
    use std::collections::{BTreeMap, BTreeSet};
    let audit = read_audit(run_dir)?;
    let seen: BTreeSet<&str> = audit
        .iter()
        .filter_map(|e| e.tool_use_id.as_deref())
        .collect();
    // A claude that does not pass tool_use_id to hooks: match those entries by tool and input.
    let seen_without_id: Vec<(&str, &serde_json::Value)> = audit
        .iter()
        .filter(|e| e.tool_use_id.is_none())
        .map(|e| (e.tool.as_str(), &e.input))
        .collect();
    // tool_use id → (session, tool, input); tool_use id → (is_error, text)
    let mut calls: Vec<(String, Option<String>, String, serde_json::Value)> = Vec::new();
    let mut results: BTreeMap<String, (bool, String)> = BTreeMap::new();
    let mut hook_failures: Vec<String> = Vec::new();
    for line in transcript.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(failure) = pre_tool_use_hook_failure(&v) {
            hook_failures.push(failure);
            continue;
        }
        let session = v["session_id"].as_str().map(str::to_string);
        let Some(blocks) = v["message"]["content"].as_array() else {
            continue;
        };
        for b in blocks {
            match (v["type"].as_str(), b["type"].as_str()) {
                (Some("assistant"), Some("tool_use")) => {
                    if let Some(id) = b["id"].as_str() {
                        calls.push((
                            id.to_string(),
                            session.clone(),
                            b["name"].as_str().unwrap_or("?").to_string(),
                            b["input"].clone(),
                        ));
                    }
                }
                (Some("user"), Some("tool_result")) => {
                    if let Some(id) = b["tool_use_id"].as_str() {
                        let text = match &b["content"] {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let error = b["is_error"].as_bool().unwrap_or(false);
                        results.insert(id.to_string(), (error, text));
                    }
                }
                _ => {}
            }
        }
    }
    let mut found = Unhooked::default();
    for (id, session_id, tool, input) in calls {
        if seen.contains(id.as_str()) || seen_without_id.contains(&(tool.as_str(), &input)) {
            continue;
        }
        // No result: the run ended before the call was answered; nothing ran.
        let Some((error, text)) = results.get(&id) else {
            continue;
        };
        let text = text
            .replace("<tool_use_error>", "")
            .replace("</tool_use_error>", "");
        let (decision, reason) = if *error && !hook_failures.is_empty() {
            // The hook ran and died without a word: Claude's own rules refused the call, which
            // is not steward's decision, and the record must not pretend it was.
            (
                "error",
                format!(
                    "steward's hook failed ({}) and Claude Code refused the call itself: {}",
                    hook_failures.join("; "),
                    text.trim()
                ),
            )
        } else if *error {
            (
                "deny",
                format!(
                    "refused by Claude Code before steward's hook: {}",
                    text.trim()
                ),
            )
        } else {
            ("error", RAN_WITHOUT_HOOK.to_string())
        };
        let entry = AuditEntry {
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            session_id,
            tool_use_id: Some(id),
            tool,
            input,
            decision: decision.to_string(),
            rule: error.then(|| "claude: refused before the hook".to_string()),
            reason,
        };
        ledger::append_line(&run_dir.join(AUDIT_FILE), &entry.to_line())?;
        match (*error, entry.decision.as_str()) {
            (true, "error") => found.hook_failed += 1,
            (true, _) => found.refused += 1,
            (false, _) => found.ran += 1,
        }
    }
    Ok(found)
}

/// The audit log of a run, for `steward runs show`. A line that does not parse is an error
/// naming the file and line.
pub fn read_audit(run_dir: &Path) -> Result<Vec<AuditEntry>, ledger::LedgerError> {
    let path = run_dir.join(AUDIT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ledger::LedgerError::Read { path, source }),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ledger::LedgerError::Corrupt {
                path: path.clone(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn settings_install_both_hooks() {
        let s = claude_settings(
            "nonce-1",
            Path::new("/usr/bin/steward"),
            Path::new("/s/runs/x"),
        );
        assert_eq!(s["hooks"]["PreToolUse"][0]["matcher"], "*");
        let cmd = s["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(
            cmd,
            "'/usr/bin/steward' hook pre-tool-use --run-dir '/s/runs/x'"
        );
        assert!(
            s["hooks"]["SessionStart"][0]["hooks"][0]["command"]
                .as_str()
                .unwrap()
                .contains("nonce-1")
        );
    }

    fn context(state: &Path, approval: ApprovalMode) -> HookContext {
        HookContext {
            state_dir: state.to_path_buf(),
            run_id: "r1".into(),
            goal: "g".into(),
            subject: "host".into(),
            signal_fingerprint: None,
            state_fingerprint: "fp".into(),
            checks: vec![],
            known_checks: vec![],
            action_ttl_secs: 3600,
            approval,
            approval_timeout_secs: 60,
        }
    }

    fn approve_policy(dir: &Path) {
        let policy = crate::defs::policy::Policy::build(
            "g",
            &crate::defs::policy::GoalPolicy {
                approve: vec!["touch FILE".into()],
                read: vec!["{workspace}".into()],
                ..Default::default()
            },
            dir,
        )
        .unwrap();
        policy.to_file(&dir.join(POLICY_FILE)).unwrap();
    }

    #[test]
    fn approval_required_calls_are_queued_or_left_to_the_prompt_tool() {
        let dir = tempfile::tempdir().unwrap();
        approve_policy(dir.path());
        let input = format!(
            r#"{{"tool_name":"Bash","tool_input":{{"command":"touch {}/m"}},"hook_event_name":"PreToolUse"}}"#,
            dir.path().display()
        );
        let state = dir.path().join("state");
        let store = Store::open(&state).unwrap();

        ledger::write_json(
            &dir.path().join(HOOK_CONTEXT_FILE),
            &context(&state, ApprovalMode::Wait),
        )
        .unwrap();
        let a = pre_tool_use(dir.path(), input.as_bytes());
        assert_eq!(a.exit_code, 0);
        let out: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
        assert_eq!(out["hookSpecificOutput"]["permissionDecision"], "ask");
        // The prompt tool files it, not the hook.
        assert!(store.list().unwrap().is_empty());

        ledger::write_json(
            &dir.path().join(HOOK_CONTEXT_FILE),
            &context(&state, ApprovalMode::Queue),
        )
        .unwrap();
        let a = pre_tool_use(dir.path(), input.as_bytes());
        let out: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
        assert_eq!(out["hookSpecificOutput"]["permissionDecision"], "deny");
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].executor, Executor::Steward);
        assert_eq!(read_audit(dir.path()).unwrap().len(), 2);
    }

    /// steward's `propose_action` tool files the proposed argv for steward's executor, with the
    /// rationale, in a wait run too; the call itself is denied.
    #[test]
    fn a_proposed_action_is_queued_in_every_approval_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut policy = crate::defs::policy::Policy::build(
            "g",
            &crate::defs::policy::GoalPolicy {
                approve: vec!["touch FILE".into()],
                read: vec!["{workspace}".into()],
                write: vec!["{workspace}".into()],
                ..Default::default()
            },
            dir.path(),
        )
        .unwrap();
        policy.steward_tools = vec!["mcp__steward__propose_action".into()];
        policy.to_file(&dir.path().join(POLICY_FILE)).unwrap();
        let state = dir.path().join("state");
        ledger::write_json(
            &dir.path().join(HOOK_CONTEXT_FILE),
            &context(&state, ApprovalMode::Wait),
        )
        .unwrap();
        let input = serde_json::json!({
            "tool_name": "mcp__steward__propose_action",
            "tool_input": {"argv": ["touch", format!("{}/m", dir.path().display())], "rationale": "why not"},
            "hook_event_name": "PreToolUse",
        });
        let a = pre_tool_use(dir.path(), input.to_string().as_bytes());
        let out: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
        assert_eq!(
            out["hookSpecificOutput"]["permissionDecision"], "deny",
            "{out}"
        );
        let list = Store::open(&state).unwrap().list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].executor, Executor::Steward);
        assert_eq!(list[0].rationale, "why not");
        assert_eq!(list[0].argv[0], "touch");
        assert!(!dir.path().join("m").exists());
    }

    /// A hook that died (a crash is exit 134) left Claude's own rules to refuse the call: the
    /// record says the hook failed, not that Claude refused before the hook.
    #[test]
    fn a_call_refused_after_the_hook_died_is_a_hook_error() {
        let dir = tempfile::tempdir().unwrap();
        let transcript = [
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"toolu_x","name":"Bash","input":{"command":"{ { true; }; }"}}]}}"#,
            r#"{"type":"system","subtype":"hook_response","hook_name":"PreToolUse:Bash","hook_event":"PreToolUse","exit_code":134,"outcome":"error"}"#,
            r#"{"type":"system","subtype":"hook_response","hook_name":"PreToolUse:Bash","hook_event":"PreToolUse","exit_code":2,"outcome":"error"}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_x","is_error":true,"content":"Permission to use Bash has been denied"}]}}"#,
        ]
        .join("\n");
        assert_eq!(
            audit_unhooked_in(dir.path(), &transcript).unwrap(),
            Unhooked {
                refused: 0,
                ran: 0,
                hook_failed: 1
            }
        );
        let audit = read_audit(dir.path()).unwrap();
        assert_eq!(audit[0].decision, "error");
        assert!(
            audit[0]
                .reason
                .contains("steward's hook failed (error, exit 134)"),
            "{}",
            audit[0].reason
        );
    }

    #[test]
    fn calls_claude_refused_before_the_hook_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let hooked = r#"{"time":"t","tool_use_id":"toolu_a","tool":"Bash","input":{},"decision":"allow","reason":"r"}"#;
        ledger::append_line(&dir.path().join(AUDIT_FILE), hooked).unwrap();
        let transcript = [
            r#"{"type":"assistant","session_id":"s","message":{"content":[{"type":"tool_use","id":"toolu_a","name":"Bash","input":{"command":"uptime"}},{"type":"tool_use","id":"toolu_b","name":"Read","input":{"file_path":"/etc/shadow"}},{"type":"tool_use","id":"toolu_c","name":"Read","input":{}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_a","content":"up"},{"type":"tool_result","tool_use_id":"toolu_b","is_error":true,"content":"<tool_use_error>File is denied</tool_use_error>"}]}}"#,
        ]
        .join("\n");
        assert_eq!(
            audit_unhooked_in(dir.path(), &transcript).unwrap(),
            Unhooked {
                refused: 1,
                ran: 0,
                hook_failed: 0
            }
        );
        let audit = read_audit(dir.path()).unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[1].tool_use_id.as_deref(), Some("toolu_b"));
        assert_eq!(audit[1].decision, "deny");
        assert_eq!(audit[1].session_id.as_deref(), Some("s"));
        assert!(
            audit[1].reason.ends_with("File is denied"),
            "{}",
            audit[1].reason
        );
        // Idempotent: a second pass adds nothing.
        assert_eq!(
            audit_unhooked_in(dir.path(), &transcript).unwrap(),
            Unhooked::default()
        );
        // A call with a successful result and no hook decision ran outside the boundary.
        let bypass = [
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"toolu_d","name":"Bash","input":{"command":"id"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_d","content":"uid=0"}]}}"#,
        ]
        .join("\n");
        assert_eq!(
            audit_unhooked_in(dir.path(), &bypass).unwrap(),
            Unhooked {
                refused: 0,
                ran: 1,
                hook_failed: 0
            }
        );
        assert_eq!(read_audit(dir.path()).unwrap()[2].decision, "error");
    }

    #[test]
    fn a_missing_policy_blocks_and_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let a = pre_tool_use(
            dir.path(),
            br#"{"tool_name":"Bash","tool_input":{"command":"uptime"},"hook_event_name":"PreToolUse"}"#,
        );
        assert_eq!(a.exit_code, 2);
        let audit = read_audit(dir.path()).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].decision, "error");
    }

    #[test]
    fn an_unwritable_audit_log_blocks_an_allowed_call() {
        let dir = tempfile::tempdir().unwrap();
        let policy = crate::defs::policy::Policy::build(
            "g",
            &crate::defs::policy::GoalPolicy {
                allow: vec!["uptime".into()],
                ..Default::default()
            },
            dir.path(),
        )
        .unwrap();
        policy.to_file(&dir.path().join(POLICY_FILE)).unwrap();
        let input = br#"{"tool_name":"Bash","tool_input":{"command":"uptime"},"hook_event_name":"PreToolUse"}"#;
        assert_eq!(pre_tool_use(dir.path(), input).exit_code, 0);
        // A directory where the log should be makes the append fail.
        std::fs::remove_file(dir.path().join(AUDIT_FILE)).unwrap();
        std::fs::create_dir(dir.path().join(AUDIT_FILE)).unwrap();
        let a = pre_tool_use(dir.path(), input);
        assert_eq!(a.exit_code, 2, "{}", a.stderr);
    }
}
