//! The tool table the server lists: each tool's description (its risk class stated first) and
//! its input schema. The classes themselves are `defs/policy/steward_tools.rs`.

use serde_json::{Value, json};

use crate::defs::policy::steward_tools::{Risk, TOOLS, risk};

/// One tool as the server lists it (short name; claude adds `mcp__steward__`).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub risk: Risk,
    pub description: String,
    pub schema: Value,
}

/// The fields each tool takes (everything else is refused by `args::object`).
pub fn fields(tool: &str) -> &'static [&'static str] {
    match tool {
        "report" => &[],
        "probe" | "check" | "service_contract" | "knowledge" => &["name"],
        "run_history" => &["subject", "goal", "limit"],
        "container_logs" => &["container", "lines"],
        "propose_note" => &["title", "body", "tags"],
        "propose_action" => &["argv", "rationale", "checks"],
        _ => &[],
    }
}

fn what(tool: &str) -> &'static str {
    match tool {
        "report" => {
            "The host's snapshot (containers, listening sockets, failed units, disk use, NixOS \
             generation) and what changed since the last saved baseline, with what needs \
             attention. Saves no baseline."
        }
        "probe" => {
            "Runs one of this goal's probes by name and returns its full output (bounded like \
             every probe, redacted)."
        }
        "check" => "Runs one of this goal's checks by name and returns its result.",
        "run_history" => {
            "Recent runs and their outcomes for a subject (default: this run's subject), \
             newest first."
        }
        "container_logs" => {
            "The last lines of one container's logs (stdout and stderr) through the Docker \
             API, bounded."
        }
        "service_contract" => {
            "The workspace's declared contract of one service (services/<name>/service.yaml), \
             or null when none is declared."
        }
        "knowledge" => {
            "One of the operators' reviewed knowledge notes, whole, by name (a prompt that lists \
             notes by title gives each name)."
        }
        "propose_note" => {
            "Files a knowledge note as a proposal for an operator to review (steward knowledge \
             list). Nothing is used until a person accepts it."
        }
        "propose_action" => {
            "Proposes a command (argv, no shell) for a human to approve. It is never run now: \
             steward files it as a pending action and runs it only after an operator approves, \
             then the goal's post-action checks and the defined checks named in `checks` (an \
             unknown name refuses the proposal)."
        }
        _ => "",
    }
}

fn schema(tool: &str) -> Value {
    let name = json!({"type": "string", "maxLength": super::args::MAX_NAME});
    let properties = match tool {
        "probe" | "check" | "service_contract" | "knowledge" => json!({"name": name}),
        "run_history" => json!({
            "subject": name, "goal": name,
            "limit": {"type": "integer", "minimum": 1, "maximum": 50}
        }),
        "container_logs" => json!({
            "container": name,
            "lines": {"type": "integer", "minimum": 1, "maximum": 2000}
        }),
        "propose_note" => json!({
            "title": {"type": "string"}, "body": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }),
        "propose_action" => json!({
            "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "rationale": {"type": "string"},
            "checks": {"type": "array", "items": {"type": "string", "minLength": 1},
                "maxItems": crate::engine::proposal_checks::MAX_NAMED}
        }),
        _ => json!({}),
    };
    let required: Vec<&str> = match tool {
        "probe" | "check" | "service_contract" | "knowledge" => vec!["name"],
        "container_logs" => vec!["container"],
        "propose_note" => vec!["title", "body"],
        "propose_action" => vec!["argv", "rationale"],
        _ => vec![],
    };
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// The spec of one tool by short name.
pub fn spec(tool: &'static str) -> Option<ToolSpec> {
    let risk = risk(tool)?;
    Some(ToolSpec {
        name: tool,
        risk,
        description: format!("[risk: {}] {}", risk.as_str(), what(tool)),
        schema: schema(tool),
    })
}

/// The specs of the tools `allowed` (qualified names), in table order.
pub fn specs(allowed: &[String]) -> Vec<ToolSpec> {
    TOOLS
        .iter()
        .filter(|(n, _)| allowed.iter().any(|a| *a == super::qualify(n)))
        .filter_map(|(n, _)| spec(n))
        .collect()
}
