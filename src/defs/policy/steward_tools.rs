//! steward's own MCP tools for the agent (`mcp__steward__*`): their names and risk classes, and
//! the policy's decision on a call to one. The tools themselves are `engine/tools`; the server
//! is `adapters/mcp`. A goal opts in by listing the qualified name in its `tools`.
//!
//! - `read`: allowed when the goal lists it.
//! - `write`: allowed when the goal lists it (recorded in the audit like every call).
//! - `needs_approval`: goes the approval path of an `ask` rule: the call is denied now and the
//!   proposed argv is filed as a pending action, or denied outright when the policy denies that
//!   argv.
//!
//! Anything else under `mcp__steward__` is denied, except the permission-prompt tool claude
//! itself calls in a wait run.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::bash::check_command;
use super::model::{Permission, Policy, PolicyDecision};

/// The prefix claude gives the tools of steward's server.
pub const PREFIX: &str = "mcp__steward__";
/// The permission-prompt tool of a wait run (not the agent's to list).
pub const PROMPT_TOOL: &str = "approval_prompt";

/// How much a tool may do, stated in its description and enforced by the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Read,
    Write,
    NeedsApproval,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Read => "read",
            Risk::Write => "write",
            Risk::NeedsApproval => "needs_approval",
        }
    }
}

/// Every tool steward serves to the agent, by its short name.
pub const TOOLS: &[(&str, Risk)] = &[
    ("report", Risk::Read),
    ("probe", Risk::Read),
    ("check", Risk::Read),
    ("run_history", Risk::Read),
    ("container_logs", Risk::Read),
    ("service_contract", Risk::Read),
    ("knowledge", Risk::Read),
    ("propose_note", Risk::Write),
    ("propose_action", Risk::NeedsApproval),
];

/// The risk class of a short tool name; `None` for a name steward does not serve.
pub fn risk(short: &str) -> Option<Risk> {
    TOOLS.iter().find(|(n, _)| *n == short).map(|(_, r)| *r)
}

/// `mcp__steward__report` → `report`, for a tool steward serves.
pub fn short_name(qualified: &str) -> Option<&str> {
    qualified.strip_prefix(PREFIX).filter(|s| risk(s).is_some())
}

/// Whether a goal's `tools` entry names one of steward's tools.
pub fn is_steward_tool(qualified: &str) -> bool {
    short_name(qualified).is_some()
}

/// The hook's decision on a call to `mcp__steward__<name>`.
pub fn decide(policy: &Policy, tool: &str, input: &Value, cwd: &Path) -> PolicyDecision {
    let short = tool.strip_prefix(PREFIX).unwrap_or(tool);
    if short == PROMPT_TOOL {
        return PolicyDecision::allow(
            Some("builtin: mcp__steward__approval_prompt".to_string()),
            "steward's permission prompt",
        );
    }
    let Some(risk) = risk(short) else {
        return PolicyDecision::deny(format!("steward serves no tool `{tool}`"));
    };
    if !policy.steward_tools.iter().any(|t| t == tool) {
        return PolicyDecision::deny(format!(
            "steward tool `{tool}` is not in goal `{}`'s tools",
            policy.goal
        ));
    }
    let rule = Some(format!("steward tool: {short} ({})", risk.as_str()));
    match risk {
        Risk::Read | Risk::Write => PolicyDecision::allow(
            rule,
            format!("steward's `{short}` tool ({})", risk.as_str()),
        ),
        Risk::NeedsApproval => proposed_action(policy, input, cwd, rule),
    }
}

/// A proposed argv: denied when malformed or when the policy denies the command; otherwise it
/// needs a human's approval whatever the allow rules say (the tool's class).
fn proposed_action(
    policy: &Policy,
    input: &Value,
    cwd: &Path,
    rule: Option<String>,
) -> PolicyDecision {
    let argv: Option<Vec<String>> = input.get("argv").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .map(|w| w.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
    });
    let Some(argv) = argv.filter(|a| !a.is_empty() && !a[0].is_empty()) else {
        return PolicyDecision::deny("propose_action: `argv` must be a non-empty array of strings");
    };
    let command: Vec<String> = argv.iter().map(|w| quote(w)).collect();
    let checked = check_command(policy, &command.join(" "), cwd);
    if checked.decision == Permission::Deny {
        return PolicyDecision {
            reason: format!("propose_action: {}", checked.reason),
            ..checked
        };
    }
    PolicyDecision {
        decision: Permission::Approve,
        rule,
        reason: format!(
            "propose_action `{}` needs a human's approval",
            argv.join(" ")
        ),
        argv: Some(argv),
    }
}

/// One shell word, single-quoted, so the walker sees exactly the proposed argv.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defs::policy::GoalPolicy;
    use serde_json::json;

    fn policy(tools: &[&str]) -> Policy {
        let mut p = Policy::build(
            "g",
            &GoalPolicy {
                allow: vec!["uptime".into()],
                approve: vec!["systemctl restart UNIT".into()],
                ..Default::default()
            },
            Path::new("/ws"),
        )
        .unwrap();
        p.steward_tools = tools.iter().map(|t| format!("{PREFIX}{t}")).collect();
        p
    }

    fn decide_on(p: &Policy, short: &str, input: Value) -> PolicyDecision {
        decide(p, &format!("{PREFIX}{short}"), &input, Path::new("/ws"))
    }

    #[test]
    fn listed_read_and_write_tools_are_allowed_others_denied() {
        let p = policy(&["report", "propose_note"]);
        assert!(decide_on(&p, "report", json!({})).is_allow());
        assert!(decide_on(&p, "propose_note", json!({})).is_allow());
        let unlisted = decide_on(&p, "probe", json!({"name": "x"}));
        assert_eq!(unlisted.decision, Permission::Deny);
        assert!(
            unlisted.reason.contains("not in goal"),
            "{}",
            unlisted.reason
        );
        let unknown = decide_on(&p, "rm_rf", json!({}));
        assert_eq!(unknown.decision, Permission::Deny);
        assert!(
            unknown.reason.contains("serves no tool"),
            "{}",
            unknown.reason
        );
        assert!(decide_on(&p, PROMPT_TOOL, json!({})).is_allow());
    }

    #[test]
    fn a_proposed_action_needs_approval_unless_the_policy_denies_it() {
        let p = policy(&["propose_action"]);
        let d = decide_on(
            &p,
            "propose_action",
            json!({"argv": ["systemctl", "restart", "nginx"], "rationale": "r"}),
        );
        assert_eq!(d.decision, Permission::Approve, "{d:?}");
        assert_eq!(
            d.argv,
            Some(vec!["systemctl".into(), "restart".into(), "nginx".into()])
        );
        // An allowed command still needs approval: the class decides.
        let d = decide_on(&p, "propose_action", json!({"argv": ["uptime"]}));
        assert_eq!(d.decision, Permission::Approve);
        let d = decide_on(&p, "propose_action", json!({"argv": ["rm", "-rf", "/"]}));
        assert_eq!(d.decision, Permission::Deny, "{d:?}");
        // A command no rule names is denied, as a Bash call of it would be.
        let d = decide_on(&p, "propose_action", json!({"argv": ["reboot"]}));
        assert_eq!(d.decision, Permission::Deny, "{d:?}");
        for bad in [
            json!({}),
            json!({"argv": []}),
            json!({"argv": "ls"}),
            json!({"argv": [1]}),
        ] {
            assert_eq!(
                decide_on(&p, "propose_action", bad).decision,
                Permission::Deny
            );
        }
    }

    #[test]
    fn every_tool_has_a_short_name_and_class() {
        assert!(is_steward_tool("mcp__steward__report"));
        assert!(!is_steward_tool("mcp__steward__approval_prompt"));
        assert!(!is_steward_tool("report"));
        assert_eq!(risk("propose_action"), Some(Risk::NeedsApproval));
    }
}
