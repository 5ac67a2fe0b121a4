//! The compiled policy: a goal's rules merged with the shared default, serialisable so the hook
//! process loads it as JSON instead of re-parsing patterns on every tool call.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PolicyError;
use super::pattern::ArgvPattern;
use crate::defs::policy::GoalPolicy;

/// Bumped when the compiled form changes; a hook refuses a file of another format (fail closed).
pub const POLICY_FORMAT: u32 = 2;

const BUNDLED_DEFAULT: &str = include_str!("default.toml");

/// The shared default policy (bundled, or an operator's file of the same shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedPolicy {
    pub allow: Vec<String>,
    pub approve: Vec<String>,
    pub deny: Vec<String>,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub secrets: Vec<String>,
    pub protected: Vec<String>,
    pub safe_env: Vec<String>,
}

impl SharedPolicy {
    /// The default shipped inside the binary.
    pub fn bundled() -> Result<SharedPolicy, PolicyError> {
        SharedPolicy::parse("bundled default policy", BUNDLED_DEFAULT)
    }

    pub fn parse(origin: &str, text: &str) -> Result<SharedPolicy, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError::Default {
            origin: origin.to_string(),
            message: e.to_string(),
        })
    }
}

/// allow / approve (a human must approve) / deny. Deny beats approve beats allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    Allow,
    Approve,
    Deny,
}

/// A decision with the rule that made it and a reason the model and the operator can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub decision: Permission,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rule: Option<String>,
    pub reason: String,
    /// For `approve`: the exact argv the rule matched (wrappers removed), for the pending action
    /// the executor later runs without a shell.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub argv: Option<Vec<String>>,
}

impl PolicyDecision {
    pub fn allow(rule: Option<String>, reason: impl Into<String>) -> PolicyDecision {
        PolicyDecision {
            decision: Permission::Allow,
            rule,
            reason: reason.into(),
            argv: None,
        }
    }

    pub fn deny(reason: impl Into<String>) -> PolicyDecision {
        PolicyDecision {
            decision: Permission::Deny,
            rule: None,
            reason: reason.into(),
            argv: None,
        }
    }

    pub fn deny_by(rule: &Rule, reason: impl Into<String>) -> PolicyDecision {
        PolicyDecision {
            decision: Permission::Deny,
            rule: Some(rule.label()),
            reason: reason.into(),
            argv: None,
        }
    }

    pub fn is_allow(&self) -> bool {
        self.decision == Permission::Allow
    }
}

/// Where a rule came from, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    Goal,
    /// Added by a change run's edit scope (`git commit` and the other git writers).
    Change,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub origin: Origin,
    pub pattern: ArgvPattern,
}

impl Rule {
    /// `goal allow: systemctl status UNIT`-style label used in decisions.
    pub fn label(&self) -> String {
        let o = match self.origin {
            Origin::Default => "default",
            Origin::Goal => "goal",
            Origin::Change => "change",
        };
        format!("{o}: {}", self.pattern.source)
    }
}

/// The compiled policy the hook and the operator commands check against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub format: u32,
    pub goal: String,
    pub workspace: PathBuf,
    pub allow: Vec<Rule>,
    pub approve: Vec<Rule>,
    pub deny: Vec<Rule>,
    /// Absolute roots (`{workspace}` expanded).
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub secrets: Vec<String>,
    pub protected: Vec<String>,
    pub safe_env: Vec<String>,
    /// Set in a change run ([`Policy::with_edit_scope`]): where the file tools may write.
    #[serde(default)]
    pub edit: Option<super::EditScope>,
    /// steward's MCP tools the goal lists (`mcp__steward__report`, …); any other is denied.
    #[serde(default)]
    pub steward_tools: Vec<String>,
}

impl Policy {
    /// The goal's policy merged with the bundled default.
    pub fn build(goal: &str, policy: &GoalPolicy, workspace: &Path) -> Result<Policy, PolicyError> {
        Policy::build_with(&SharedPolicy::bundled()?, goal, policy, workspace)
    }

    /// The goal's policy merged with a given shared default.
    pub fn build_with(
        shared: &SharedPolicy,
        goal: &str,
        policy: &GoalPolicy,
        workspace: &Path,
    ) -> Result<Policy, PolicyError> {
        let compile = |origin: Origin, list: &[String]| -> Result<Vec<Rule>, PolicyError> {
            list.iter()
                .map(|p| {
                    ArgvPattern::compile(p)
                        .map(|pattern| Rule { origin, pattern })
                        .map_err(|source| PolicyError::Pattern {
                            goal: goal.to_string(),
                            pattern: p.clone(),
                            source,
                        })
                })
                .collect()
        };
        let mut allow = compile(Origin::Default, &shared.allow)?;
        allow.extend(compile(Origin::Goal, &policy.allow)?);
        let mut approve = compile(Origin::Default, &shared.approve)?;
        approve.extend(compile(Origin::Goal, &policy.approve)?);
        let mut deny = compile(Origin::Default, &shared.deny)?;
        deny.extend(compile(Origin::Goal, &policy.deny)?);
        let roots = |list: &[String], extra: &[String]| -> Result<Vec<PathBuf>, PolicyError> {
            let mut out = Vec::new();
            for r in list.iter().chain(extra) {
                let p = PathBuf::from(super::expand_root(r, workspace));
                if !p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                    return Err(PolicyError::Root {
                        goal: goal.to_string(),
                        root: r.clone(),
                    });
                }
                if !out.contains(&p) {
                    out.push(p);
                }
            }
            Ok(out)
        };
        Ok(Policy {
            format: POLICY_FORMAT,
            goal: goal.to_string(),
            workspace: workspace.to_path_buf(),
            allow,
            approve,
            deny,
            read: roots(&shared.read, &policy.read)?,
            write: roots(&shared.write, &policy.write)?,
            secrets: shared.secrets.clone(),
            protected: shared.protected.clone(),
            safe_env: shared.safe_env.clone(),
            edit: None,
            steward_tools: Vec::new(),
        })
    }

    /// Writes the compiled form atomically (write, fsync, rename).
    pub fn to_file(&self, path: &Path) -> Result<(), PolicyError> {
        let io = |e: std::io::Error| PolicyError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let json = serde_json::to_vec(self).map_err(|e| PolicyError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Loads a compiled policy; any problem is an error (the hook turns it into a denial).
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|e| PolicyError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let policy: Policy = serde_json::from_slice(&bytes).map_err(|e| PolicyError::File {
            path: path.display().to_string(),
            message: format!("corrupt policy file: {e}"),
        })?;
        if policy.format != POLICY_FORMAT {
            return Err(PolicyError::File {
                path: path.display().to_string(),
                message: format!(
                    "policy format {} but this steward reads format {POLICY_FORMAT}",
                    policy.format
                ),
            });
        }
        Ok(policy)
    }
}
