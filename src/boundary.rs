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

use crate::approval::{Proposal, Store};
use crate::ledger;
use crate::policy::{AuditEntry, HookAnswer, Verdict};

/// The run directory's files the hook reads and writes.
pub const POLICY_FILE: &str = "policy.json";
pub const HOOK_CONTEXT_FILE: &str = "hook-context.json";
pub const AUDIT_FILE: &str = "audit.jsonl";

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
    /// Fingerprint of the state the run saw (check statuses), carried into each proposal.
    pub state_fingerprint: String,
    /// The goal's post-action checks, run by the executor after an approved action.
    pub checks: Vec<String>,
    pub action_ttl_secs: u64,
}

/// `steward hook pre-tool-use --run-dir DIR`: decide, audit, file. Never fails open: anything
/// that goes wrong, including a failed audit write, blocks the call (exit 2).
pub fn pre_tool_use(run_dir: &Path, stdin_json: &[u8]) -> HookAnswer {
    let mut answer = crate::policy::hook_decision(&run_dir.join(POLICY_FILE), stdin_json);
    let approve = answer
        .decision
        .as_ref()
        .filter(|d| d.decision == Verdict::Approve)
        .cloned();
    if let Some(decision) = approve {
        match file_action(run_dir, &decision, &answer.audit) {
            Ok(id) => {
                let reason = format!(
                    "steward policy: {}. It was not run: it is queued for a human as action {id} \
                     (`steward actions approve {id}`). Do not retry it; list it under proposed \
                     actions in your report.",
                    decision.reason
                );
                answer.stdout = deny_output(&reason);
                answer.audit.reason = format!("{} (queued as {id})", answer.audit.reason);
            }
            Err(e) => answer = blocked(answer, &format!("could not queue the action: {e}")),
        }
    }
    let line = serde_json::to_string(&answer.audit).unwrap_or_default();
    if let Err(e) = ledger::append_line(&run_dir.join(AUDIT_FILE), &line) {
        answer = blocked(answer, &format!("could not write the audit log: {e}"));
    }
    answer
}

fn file_action(
    run_dir: &Path,
    decision: &crate::policy::Decision,
    audit: &AuditEntry,
) -> Result<String, String> {
    let ctx: HookContext =
        ledger::read_json(&run_dir.join(HOOK_CONTEXT_FILE)).map_err(|e| e.to_string())?;
    let argv = decision
        .argv
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or("the policy gave no argv to queue")?;
    let rationale = audit
        .input
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or("(no rationale given)")
        .to_string();
    // The same action on the same subject that already failed its checks twice goes to a human
    // as an escalation, not as a third attempt.
    let memory = crate::check::Memory::open(&ctx.state_dir);
    if memory
        .should_escalate(&ctx.subject, &argv.join(" "), ESCALATION_WINDOW)
        .map_err(|e| e.to_string())?
    {
        return Err(format!(
            "`{}` on `{}` already failed its checks twice in the last day; escalate to a human \
             instead of proposing it again",
            argv.join(" "),
            ctx.subject
        ));
    }
    let store = Store::open(&ctx.state_dir).map_err(|e| e.to_string())?;
    let filed = store
        .file(Proposal {
            subject: ctx.subject,
            argv,
            rationale,
            checks: ctx.checks,
            state_fingerprint: ctx.state_fingerprint,
            goal: ctx.goal,
            run_id: Some(ctx.run_id),
            rule: decision.rule.clone().unwrap_or_default(),
            ttl: Duration::from_secs(ctx.action_ttl_secs),
        })
        .map_err(|e| e.to_string())?;
    Ok(filed.action.id)
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
pub fn audit_unhooked_calls(run_dir: &Path) -> Result<usize, ledger::LedgerError> {
    let path = run_dir.join("transcript.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => audit_unhooked_in(run_dir, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(ledger::LedgerError::Read { path, source }),
    }
}

fn audit_unhooked_in(run_dir: &Path, transcript: &str) -> Result<usize, ledger::LedgerError> {
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
    for line in transcript.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
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
    let mut added = 0;
    for (id, session_id, tool, input) in calls {
        if seen.contains(id.as_str()) || seen_without_id.contains(&(tool.as_str(), &input)) {
            continue;
        }
        // No result: the run ended before the call was answered; nothing ran.
        let Some((error, text)) = results.get(&id) else {
            continue;
        };
        let (decision, reason) = if *error {
            (
                "deny",
                format!(
                    "refused by Claude Code before steward's hook: {}",
                    text.replace("<tool_use_error>", "")
                        .replace("</tool_use_error>", "")
                        .trim()
                ),
            )
        } else {
            (
                "error",
                "the call ran without a decision of steward's hook".to_string(),
            )
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
        let line = serde_json::to_string(&entry).unwrap_or_default();
        ledger::append_line(&run_dir.join(AUDIT_FILE), &line)?;
        added += 1;
    }
    Ok(added)
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
        assert_eq!(audit_unhooked_in(dir.path(), &transcript).unwrap(), 1);
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
        assert_eq!(audit_unhooked_in(dir.path(), &transcript).unwrap(), 0);
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
        let policy = crate::policy::Policy::build(
            "g",
            &crate::goal::GoalPolicy {
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
