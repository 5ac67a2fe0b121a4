//! The tool policy of a goal: the boundary steward itself enforces, and the Claude Code flags
//! generated from it (the second layer, kept narrow: never a bare `Bash`, `Write` or `Edit`).
//!
//! - [`Policy`] (model.rs): a goal's `GoalPolicy` merged with the shared default
//!   (`default.toml`, bundled: hard denies, secret paths, write-protected names, safe env vars),
//!   compiled once and stored as JSON ([`Policy::to_file`]/[`Policy::from_file`]) for the hook.
//! - Patterns (pattern.rs): argv rules such as `journalctl -u UNIT -n NUM --no-pager`; the
//!   language is described there.
//! - The Bash walker (bash/): `brush-parser` AST → simple commands (mod.rs) → argv decisions
//!   (decide.rs), with words (words.rs), redirections (redirect.rs) and wrappers (wrappers.rs)
//!   each in their own file; anything it does not understand is denied ([`BashError`] says why).
//!   [`check_command`], [`explain`], [`explain_with`].
//! - Paths and file tools (files.rs): symlink-resolving root checks, secrets, [`check_tool`].
//! - Shadowed rules (shadow.rs): goal rules a deny rule always beats, warned about at load.
//! - The edit scope of a change run (edit_scope.rs): [`EditScope`], added by
//!   [`Policy::with_edit_scope`]; file tools only on the change's `edit` globs in its worktree.
//! - The hook (hook.rs): [`hook_decision`] for `steward hook pre-tool-use --policy FILE`, which
//!   fails closed (exit 2) on every error and on panics.
//!
//! Decisions are `allow`, `deny` or `approve` (a human must approve; the hook denies the call and
//! the caller files a pending action). Deny beats approve beats allow.

use std::path::Path;

use serde::Serialize;

mod bash;
pub mod bounds;
mod edit_scope;
mod files;
mod hook;
mod isolate;
mod model;
mod pattern;
mod shadow;
mod spec;
pub mod steward_tools;

pub use bash::{
    BashError, CommandInfo, Explanation, HeredocInfo, ListInfo, PipelineInfo, RedirectionInfo,
    check_command, explain, explain_with,
};
pub use edit_scope::{EditScope, STEWARD_COMMITS};
pub use files::{Access, PathError, check_tool, resolve, secret_match};
pub use hook::{
    AuditEntry, HookAnswer, decide_tool, fail_closed, hook_decision, hook_decision_isolated,
    hook_decision_with,
};
pub use model::{Origin, POLICY_FORMAT, Permission, Policy, PolicyDecision, Rule, SharedPolicy};
pub use pattern::{ArgWord, ArgvPattern, FlagSpec, FlagValue, Mismatch, PatternError, Pos, Shape};
pub use shadow::{Shadowed, always_denied, shadowed};
pub use spec::GoalPolicy;

/// The flags the runner passes: which tools exist, which calls are pre-approved, which are denied.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClaudeRules {
    pub tools: Vec<String>,
    pub allowed: Vec<String>,
    pub disallowed: Vec<String>,
}

/// Tools a goal may name. Anything else is refused when the goal is loaded into a run.
pub const KNOWN_TOOLS: &[&str] = &[
    "Bash",
    "Read",
    "Grep",
    "Glob",
    "Edit",
    "Write",
    "NotebookEdit",
];

/// Tools that are never available to the agent, whatever a goal says.
const NEVER: &[&str] = &["WebFetch", "WebSearch", "Task", "Agent", "NotebookEdit"];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("goal `{goal}` names unknown tool `{tool}` (known: {known})")]
    UnknownTool {
        goal: String,
        tool: String,
        known: String,
    },
    #[error("goal `{goal}`: pattern `{pattern}`: {source}")]
    Pattern {
        goal: String,
        pattern: String,
        source: PatternError,
    },
    #[error(
        "goal `{goal}`: pattern `{root}`: file roots must be absolute (or start with \
         {{workspace}}) and contain no `..`"
    )]
    Root { goal: String, root: String },
    #[error("{origin}: {message}")]
    Default { origin: String, message: String },
    #[error("policy file {path}: {message}")]
    File { path: String, message: String },
    #[error("change edit scope: {message}")]
    EditScope { message: String },
}

/// Builds `--tools`, `--allowedTools` and `--disallowedTools` from a goal's tools and policy.
pub fn claude_rules(
    goal: &str,
    tools: &[String],
    policy: &GoalPolicy,
    workspace: &Path,
) -> Result<ClaudeRules, PolicyError> {
    let mut rules = ClaudeRules::default();
    for tool in tools {
        if steward_tools::is_steward_tool(tool) {
            // Served by steward's MCP server, not a `--tools` name: pre-approved for claude
            // unless it needs a human (the hook decides either way).
            if steward_tools::short_name(tool).and_then(steward_tools::risk)
                != Some(steward_tools::Risk::NeedsApproval)
            {
                push_unique(&mut rules.allowed, tool.clone());
            }
            continue;
        }
        if !KNOWN_TOOLS.contains(&tool.as_str()) {
            return Err(PolicyError::UnknownTool {
                goal: goal.to_string(),
                tool: tool.clone(),
                known: format!("{}, mcp__steward__<tool>", KNOWN_TOOLS.join(", ")),
            });
        }
        if !NEVER.contains(&tool.as_str()) && !rules.tools.contains(tool) {
            rules.tools.push(tool.clone());
        }
    }
    let has = |t: &str| rules.tools.iter().any(|x| x == t);
    if has("Bash") {
        for pattern in &policy.allow {
            for prefix in literal_prefixes(goal, pattern)? {
                push_unique(&mut rules.allowed, bash_rule(&prefix));
            }
        }
    }
    for pattern in &policy.deny {
        for prefix in literal_prefixes(goal, pattern)? {
            push_unique(&mut rules.disallowed, format!("Bash({prefix})"));
            push_unique(&mut rules.disallowed, format!("Bash({prefix} *)"));
        }
    }
    for never in NEVER {
        push_unique(&mut rules.disallowed, never.to_string());
    }
    // Secret paths as Claude `Read` deny rules too: a second layer behind the hook (Claude applies
    // them to its file tools and to simple `cat`-like Bash reads; the hook is the real check).
    for secret in SharedPolicy::bundled()?.secrets {
        for rule in secret_read_rules(&secret) {
            push_unique(&mut rules.disallowed, rule);
        }
    }
    for root in &policy.read {
        let root = expand_root(root, workspace);
        for tool in ["Read", "Grep", "Glob"] {
            if has(tool) {
                push_unique(
                    &mut rules.allowed,
                    format!("{tool}(/{}/**)", root.trim_end_matches('/')),
                );
            }
        }
    }
    for root in &policy.write {
        let root = expand_root(root, workspace);
        for tool in ["Edit", "Write"] {
            if has(tool) {
                push_unique(
                    &mut rules.allowed,
                    format!("{tool}(/{}/**)", root.trim_end_matches('/')),
                );
            }
        }
    }
    Ok(rules)
}

/// `{workspace}` → the workspace path. Claude rules want `//abs` for absolute paths, so callers
/// prefix one more `/`.
pub fn expand_root(root: &str, workspace: &Path) -> String {
    root.replace("{workspace}", &workspace.display().to_string())
}

/// `/etc/shadow*` → `Read(//etc/shadow*)` + `…/**`; `~/.ssh` → `Read(~/.ssh)` + `…/**`;
/// `*.pem` → `Read(**/*.pem)`.
fn secret_read_rules(secret: &str) -> Vec<String> {
    let base = if let Some(abs) = secret.strip_prefix('/') {
        format!("//{abs}")
    } else if secret.starts_with("~/") {
        secret.to_string()
    } else {
        format!("**/{secret}")
    };
    vec![format!("Read({base})"), format!("Read({base}/**)")]
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn bash_rule(prefix: &str) -> String {
    format!("Bash({prefix} *)")
}

/// The literal words of an argv pattern up to its first placeholder, with `a|b` alternatives in
/// those words expanded: `systemctl status|is-active UNIT` → `systemctl status`,
/// `systemctl is-active`.
pub fn literal_prefixes(goal: &str, pattern: &str) -> Result<Vec<String>, PolicyError> {
    let mut prefixes: Vec<String> = vec![String::new()];
    for word in pattern.split_whitespace() {
        if is_placeholder(word) || word.starts_with('[') {
            break;
        }
        let alternatives: Vec<&str> = word.split('|').collect();
        if alternatives.iter().any(|a| a.is_empty()) {
            return Err(PolicyError::Pattern {
                goal: goal.to_string(),
                pattern: pattern.to_string(),
                source: PatternError::EmptyAlternative(word.to_string()),
            });
        }
        prefixes = prefixes
            .iter()
            .flat_map(|p| {
                alternatives.iter().map(move |a| {
                    if p.is_empty() {
                        (*a).to_string()
                    } else {
                        format!("{p} {a}")
                    }
                })
            })
            .collect();
    }
    if prefixes.iter().any(|p| p.is_empty()) {
        return Err(PolicyError::Pattern {
            goal: goal.to_string(),
            pattern: pattern.to_string(),
            source: PatternError::NoCommand,
        });
    }
    Ok(prefixes)
}

/// `UNIT`, `NUM`, `PATH`, `JOB`…: an upper-case word (digits and `_` allowed) stands for an argument.
pub fn is_placeholder(word: &str) -> bool {
    let w = word.trim_end_matches("...");
    !w.is_empty()
        && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && w.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stop_at_placeholders_and_expand_alternatives() {
        assert_eq!(
            literal_prefixes("g", "systemctl status|is-active UNIT").unwrap(),
            vec!["systemctl status", "systemctl is-active"]
        );
        assert_eq!(
            literal_prefixes("g", "df -h [PATH]").unwrap(),
            vec!["df -h"]
        );
        assert_eq!(literal_prefixes("g", "free -m").unwrap(), vec!["free -m"]);
        assert!(literal_prefixes("g", "UNIT").is_err());
        assert!(literal_prefixes("g", "a||b").is_err());
    }

    #[test]
    fn rules_are_never_bare() {
        let policy = GoalPolicy {
            allow: vec!["systemctl status UNIT".into()],
            deny: vec!["rm".into()],
            read: vec!["{workspace}".into()],
            ..Default::default()
        };
        let tools: Vec<String> = ["Bash", "Read"].iter().map(|s| s.to_string()).collect();
        let r = claude_rules("g", &tools, &policy, Path::new("/srv/infra")).unwrap();
        assert_eq!(r.tools, vec!["Bash", "Read"]);
        assert!(r.allowed.contains(&"Bash(systemctl status *)".to_string()));
        assert!(r.allowed.contains(&"Read(//srv/infra/**)".to_string()));
        assert!(!r.allowed.iter().any(|a| a == "Bash" || a == "Read"));
        assert!(r.disallowed.contains(&"Bash(rm *)".to_string()));
        assert!(r.disallowed.contains(&"WebFetch".to_string()));
        assert!(r.disallowed.contains(&"Read(**/.env)".to_string()));
        assert!(r.disallowed.contains(&"Read(**/.ssh/**)".to_string()));
        assert!(r.disallowed.contains(&"Read(//etc/shadow*)".to_string()));
        let bad: Vec<String> = vec!["Bsh".into()];
        assert!(claude_rules("g", &bad, &policy, Path::new("/")).is_err());
    }
}
