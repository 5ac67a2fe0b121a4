//! What the agent's tool calls did, read from the run's audit log: which calls ran and could
//! have changed the host, and which attempts to act were held back (queued for approval,
//! rejected or left undecided in wait mode, denied). The judge needs both: a run that changed
//! nothing has not `fixed` anything, and a rollback must never undo what nobody did.
//!
//! A call counts as **state-changing** when it ran and is of a kind that writes:
//! - a file tool that writes (`Write`, `Edit`, `MultiEdit`, `NotebookEdit`) the policy allowed;
//! - a command an operator approved in wait mode, which the agent then ran (approval-required
//!   rules are the policy's changes by definition);
//! - an allowed Bash command with a redirection that writes a file (`>`, `>>`, `&>` …, not to
//!   `/dev/null`);
//! - a call that ran without a decision of steward's hook (a boundary breach: it is unknown
//!   what it did, so it is assumed to have changed something).
//!
//! Every other allowed Bash command counts as an observation. The bundled goals allow only
//! read-only commands and put every change behind `approve`; steward cannot tell a reader from
//! a writer by its argv alone, so a goal that allows a changing command directly (say
//! `allow = ["systemctl restart UNIT"]`) gives up this distinction for it: such a restart makes
//! no `fixed` and triggers no rollback. Erring that way keeps the rollback (itself a change)
//! from running on a guess.

use serde::{Deserialize, Serialize};

use crate::defs::policy::AuditEntry;
use crate::engine::approval_prompt as prompt;
use crate::engine::boundary;

/// File tools that write.
const WRITE_TOOLS: &[&str] = &["Write", "Edit", "MultiEdit", "NotebookEdit"];

/// The run's calls, sorted by what they did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acts {
    /// State-changing calls that ran, each as `TOOL target` (see the module docs).
    pub changed: Vec<String>,
    /// Pending actions filed for steward's executor (queue mode): not run.
    pub queued: Vec<String>,
    /// Wait-mode actions an operator rejected (or that ended otherwise unapproved): not run.
    pub rejected: Vec<String>,
    /// Wait-mode actions nobody decided in time: not run.
    pub expired: Vec<String>,
    /// Calls denied by steward's policy, refused by claude before it, or blocked by the hook.
    pub denied: usize,
}

/// No calls at all: the agent did not run.
pub static NO_ACTS: Acts = Acts {
    changed: Vec::new(),
    queued: Vec::new(),
    rejected: Vec::new(),
    expired: Vec::new(),
    denied: 0,
};

impl Acts {
    /// Sorts a run's audit entries (see the module docs for what counts as a change).
    pub fn from_audit(entries: &[AuditEntry]) -> Acts {
        let mut acts = Acts::default();
        // A call both the hook and the prompt tool allowed is one call.
        let mut counted: Vec<&str> = Vec::new();
        for e in entries {
            if boundary::is_intermediate(e) {
                continue;
            }
            match e.decision.as_str() {
                "approve" => {
                    if let Some(id) = boundary::filed_action(e) {
                        push_once(&mut acts.queued, id);
                    }
                }
                "allow" => {
                    if let Some(id) = e.tool_use_id.as_deref() {
                        if counted.contains(&id) {
                            continue;
                        }
                        counted.push(id);
                    }
                    if let Some(what) = change(e) {
                        acts.changed.push(what);
                    }
                }
                "deny" => match prompt::unapproved_action(&e.reason) {
                    Some((id, prompt::Unapproved::Expired)) => push_once(&mut acts.expired, id),
                    Some((id, prompt::Unapproved::Rejected)) => push_once(&mut acts.rejected, id),
                    None => acts.denied += 1,
                },
                // `error`: the hook blocked the call, or it ran without the hook deciding.
                _ if e.reason == boundary::RAN_WITHOUT_HOOK => {
                    acts.changed
                        .push(format!("{} (ran without steward's hook)", target(e)));
                }
                _ => acts.denied += 1,
            }
        }
        acts
    }

    pub fn changed_state(&self) -> bool {
        !self.changed.is_empty()
    }

    /// Something the agent tried was held back: queued, rejected, expired or denied.
    pub fn held_back(&self) -> bool {
        !self.queued.is_empty()
            || !self.rejected.is_empty()
            || !self.expired.is_empty()
            || self.denied > 0
    }

    /// What was held back, in words: `1 queued for approval (a1b2…), 2 denied by policy`.
    pub fn describe_held_back(&self) -> String {
        let ids = |v: &[String]| v.join(", ");
        let mut parts = Vec::new();
        if !self.queued.is_empty() {
            parts.push(format!(
                "{} queued for approval ({})",
                self.queued.len(),
                ids(&self.queued)
            ));
        }
        if !self.rejected.is_empty() {
            parts.push(format!(
                "{} rejected by an operator ({})",
                self.rejected.len(),
                ids(&self.rejected)
            ));
        }
        if !self.expired.is_empty() {
            parts.push(format!(
                "{} not approved in time ({})",
                self.expired.len(),
                ids(&self.expired)
            ));
        }
        if self.denied > 0 {
            parts.push(format!("{} denied by policy", self.denied));
        }
        if parts.is_empty() {
            "nothing".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn push_once(list: &mut Vec<String>, id: String) {
    if !list.contains(&id) {
        list.push(id);
    }
}

/// `Some(description)` when an allowed call could have changed state.
fn change(e: &AuditEntry) -> Option<String> {
    if prompt::approved_and_ran(&e.reason) {
        return Some(format!("{} (approved by an operator)", target(e)));
    }
    if WRITE_TOOLS.contains(&e.tool.as_str()) {
        return Some(target(e));
    }
    if e.tool == "Bash" {
        let command = e.input.get("command").and_then(|c| c.as_str())?;
        return writes_a_file(&crate::defs::policy::explain(command))
            .then(|| format!("{} (writes a file)", target(e)));
    }
    None
}

/// `TOOL what`: the command or the file the call was about.
fn target(e: &AuditEntry) -> String {
    let what = ["command", "file_path", "notebook_path"]
        .iter()
        .find_map(|k| e.input.get(*k).and_then(|v| v.as_str()));
    match what {
        Some(w) => format!("{} `{w}`", e.tool),
        None => e.tool.clone(),
    }
}

/// Whether any simple command in the parse writes a file through a redirection.
fn writes_a_file(ex: &crate::defs::policy::Explanation) -> bool {
    const SINKS: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr"];
    ex.lists
        .iter()
        .flat_map(|l| &l.pipelines)
        .flat_map(|p| &p.commands)
        .any(|c| {
            c.nested.iter().any(writes_a_file)
                || c.redirections.iter().any(|r| {
                    let fd_dup = r.op == ">&"
                        && (r.target == "-"
                            || r.target
                                .trim_end_matches('-')
                                .chars()
                                .all(|ch| ch.is_ascii_digit()));
                    matches!(
                        r.op.as_str(),
                        ">" | ">>" | "<>" | ">|" | ">&" | "&>" | "&>>"
                    ) && !fd_dup
                        && !SINKS.contains(&r.target.as_str())
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(tool: &str, input: serde_json::Value, decision: &str, reason: &str) -> AuditEntry {
        AuditEntry {
            time: "t".into(),
            session_id: None,
            tool_use_id: None,
            tool: tool.into(),
            input,
            decision: decision.into(),
            rule: None,
            reason: reason.into(),
        }
    }

    fn bash(command: &str, decision: &str, reason: &str) -> AuditEntry {
        entry("Bash", json!({ "command": command }), decision, reason)
    }

    #[test]
    fn reads_are_observations_and_writes_are_changes() {
        let acts = Acts::from_audit(&[
            bash("systemctl status nginx", "allow", "allowed"),
            bash(
                "journalctl -u x -n 5 --no-pager 2>/dev/null",
                "allow",
                "allowed",
            ),
            bash("uptime 2>&1", "allow", "allowed"),
            entry(
                "Read",
                json!({"file_path": "/etc/hosts"}),
                "allow",
                "allowed",
            ),
            entry("Write", json!({"file_path": "/ws/a"}), "allow", "allowed"),
            bash("uptime > /ws/load.txt", "allow", "allowed"),
        ]);
        assert_eq!(
            acts.changed,
            [
                "Write `/ws/a`",
                "Bash `uptime > /ws/load.txt` (writes a file)"
            ]
        );
        assert!(!acts.held_back());
    }

    #[test]
    fn queued_rejected_expired_and_denied_are_held_back_not_changes() {
        let acts = Acts::from_audit(&[
            bash(
                "systemctl restart nginx",
                "approve",
                "approval required (queued as a1)",
            ),
            bash(
                "systemctl restart nginx",
                "approve",
                "approval required (queued as a1)",
            ),
            bash(
                "touch /ws/m",
                "approve",
                "approval required (left to the approval prompt: the run waits for an operator)",
            ),
            bash(
                "touch /ws/m",
                "approve",
                "approval prompt: x; waiting up to 60 s for an operator (waiting as b2)",
            ),
            bash(
                "touch /ws/m",
                "deny",
                "approval prompt: steward: an operator (bob) rejected action b2: no. It was not \
                 run; do not retry it.",
            ),
            bash(
                "touch /ws/n",
                "deny",
                "approval prompt: steward: no decision in time on action c3 (waited 3 s); `touch \
                 /ws/n` was not run. Do not retry it; list it under proposed actions in your \
                 report.",
            ),
            bash("rm -rf /", "deny", "denied by policy"),
            entry(
                "Read",
                json!({"file_path": "/etc/shadow"}),
                "deny",
                "refused by Claude Code before steward's hook",
            ),
            bash("x", "error", "steward policy hook blocked the call: boom"),
        ]);
        assert!(!acts.changed_state(), "{acts:?}");
        assert_eq!(acts.queued, ["a1"]);
        assert_eq!(acts.rejected, ["b2"]);
        assert_eq!(acts.expired, ["c3"]);
        assert_eq!(acts.denied, 3);
        assert_eq!(
            acts.describe_held_back(),
            "1 queued for approval (a1), 1 rejected by an operator (b2), 1 not approved in \
             time (c3), 3 denied by policy"
        );
    }

    #[test]
    fn an_approved_call_in_wait_mode_is_a_change() {
        let acts = Acts::from_audit(&[
            bash(
                "touch /ws/m",
                "approve",
                "approval prompt: x; waiting up to 60 s for an operator (waiting as b2)",
            ),
            bash(
                "touch /ws/m",
                "allow",
                "approval prompt: approved by alice; the agent runs it (action b2 done)",
            ),
        ]);
        assert_eq!(
            acts.changed,
            ["Bash `touch /ws/m` (approved by an operator)"]
        );
        assert!(acts.queued.is_empty(), "{acts:?}");
    }

    #[test]
    fn one_call_allowed_twice_is_one_change() {
        let mut write = entry("Write", json!({"file_path": "/ws/a"}), "allow", "hook");
        write.tool_use_id = Some("toolu_1".into());
        let mut again = write.clone();
        again.reason = "approval prompt: allowed".into();
        assert_eq!(Acts::from_audit(&[write, again]).changed.len(), 1);
    }

    #[test]
    fn a_call_that_ran_without_the_hook_counts_as_a_change() {
        let acts = Acts::from_audit(&[bash("id", "error", boundary::RAN_WITHOUT_HOOK)]);
        assert!(acts.changed_state());
    }
}
