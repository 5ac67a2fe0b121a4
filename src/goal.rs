//! Goals: TOML front matter plus a tera body. (Interface; the context helper implements it.)

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bundled::SourceFile;
use crate::knowledge::Note;
use crate::probe::ProbeResult;
use crate::signal::Signal;

#[derive(Debug, thiserror::Error)]
pub enum GoalError {
    #[error("{origin}:{line}: {message}")]
    Definition {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}:{line}: template error: {message}")]
    Template {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("unknown goal `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("goal `{goal}` needs variable `{var}` (pass --var {var}=...)")]
    MissingVar { goal: String, var: String },
}

/// Command rules in argv-pattern form, e.g. `systemctl status UNIT`, `df -h [PATH]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoalPolicy {
    pub allow: Vec<String>,
    pub approve: Vec<String>,
    pub deny: Vec<String>,
    /// File roots; `{workspace}` expands to the workspace.
    pub read: Vec<String>,
    pub write: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub name: String,
    pub origin: String,
    pub description: String,
    pub tools: Vec<String>,
    pub policy: GoalPolicy,
    pub budget_usd: Option<f64>,
    pub max_turns: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub probes: Vec<String>,
    pub model: Option<String>,
    pub knowledge_tags: Vec<String>,
    pub required_vars: Vec<String>,
    pub body: String,
    /// 1-based line of the file where the body starts, to map template errors to the file.
    pub body_line: usize,
}

pub fn load_all(_files: &[SourceFile]) -> Result<Vec<Goal>, GoalError> {
    Ok(Vec::new())
}

pub fn find(files: &[SourceFile], name: &str) -> Result<Goal, GoalError> {
    let goals = load_all(files)?;
    let known = goals
        .iter()
        .map(|g| g.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    goals
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| GoalError::Unknown {
            name: name.to_string(),
            known,
        })
}

pub struct RenderInput<'a> {
    pub signal: &'a Signal,
    pub context: &'a [ProbeResult],
    pub knowledge: &'a [&'a Note],
    pub vars: &'a BTreeMap<String, String>,
    pub nonce: &'a str,
    pub workspace: &'a Path,
}

pub fn render(goal: &Goal, _input: &RenderInput<'_>) -> Result<String, GoalError> {
    Ok(goal.body.clone())
}
