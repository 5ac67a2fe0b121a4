//! steward's tools for the agent, free of MCP types: the logic behind `mcp__steward__<tool>`
//! (served by `adapters/mcp`). Each call reads the run's files (`steward-tools.json`,
//! `hook-context.json`, the run's effective config `steward-config.json`: see
//! `engine/run_config.rs`), loads the definitions that config names, validates its arguments
//! (an error names the field), does one narrow job and answers JSON, redacted with the run's
//! secret patterns, bounded, and fenced as data with the run's nonce.
//!
//! Which tools exist and their risk classes: `defs/policy/steward_tools.rs` (the hook enforces
//! them). The server refuses, itself, any tool the run's goal did not list.
//!
//! One file per group: `table.rs` (descriptions and schemas), `args.rs` (argument bounds),
//! `host.rs` (`report`, `container_logs`), `goal.rs` (`probe`, `check`, `service_contract`,
//! `knowledge`),
//! `history.rs` (`run_history`), `propose.rs` (`propose_note`, `propose_action`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::ledger;
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::definitions::Definitions;
use crate::defs::goal::Goal;
use crate::defs::policy::steward_tools::{self, PREFIX};
use crate::engine::boundary::HookContext;

pub mod args;
mod goal;
mod history;
mod host;
mod propose;
pub mod table;

pub use table::{ToolSpec, specs};

/// The run directory's file that tells the server what this run's tools may use.
pub const TOOLS_FILE: &str = "steward-tools.json";

/// The most bytes of one tool answer (before fencing); the rest is cut and the cut said.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the server needs besides the hook's context and the run's effective config; written by
/// the run before claude starts. No secret in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolsContext {
    /// The steward tools the goal lists, qualified (`mcp__steward__report`).
    pub tools: Vec<String>,
    /// The run's fence nonce.
    pub nonce: String,
    /// Whether the server also serves the permission prompt (a wait run).
    pub prompt_tool: bool,
}

impl ToolsContext {
    pub fn write(&self, run_dir: &Path) -> Result<(), ledger::LedgerError> {
        ledger::write_json(&run_dir.join(TOOLS_FILE), self)
    }

    /// The run's context; a run without steward tools has none (no tools, no nonce).
    pub fn read(run_dir: &Path) -> Result<ToolsContext, ledger::LedgerError> {
        ledger::read_json(&run_dir.join(TOOLS_FILE))
    }

    /// Whether the goal lists the tool (qualified or short name).
    pub fn allows(&self, name: &str) -> bool {
        let qualified = qualify(name);
        self.tools.contains(&qualified)
    }
}

/// `report` → `mcp__steward__report`; a qualified name stays as it is.
pub fn qualify(name: &str) -> String {
    if name.starts_with(PREFIX) {
        name.to_string()
    } else {
        format!("{PREFIX}{name}")
    }
}

/// Why a tool call failed; the text goes back to the agent as the tool's error.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("steward serves no tool `{0}`")]
    Unknown(String),
    #[error("steward tool `{tool}` is not in this run's goal's tools")]
    NotListed { tool: String },
    #[error("argument `{field}`: {message}")]
    Argument { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("the run's tool context: {0}")]
    Context(#[from] ledger::LedgerError),
    #[error("the run's config: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("the definitions: {0}")]
    Definitions(String),
    #[error("{0}")]
    Failed(String),
}

impl ToolsError {
    pub fn argument(field: &str, message: impl Into<String>) -> ToolsError {
        ToolsError::Argument {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// What a call answers: the fenced text, and whether it is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub is_error: bool,
}

/// Everything one call may use, loaded fresh for it.
pub(crate) struct Run {
    pub cfg: Config,
    pub defs: Definitions,
    pub goal: Goal,
    pub hook: HookContext,
    pub redactor: Redactor,
}

impl Run {
    fn load(run_dir: &Path) -> Result<Run, ToolsError> {
        let hook = HookContext::read(run_dir)?;
        // The run's own config, `-c` overrides and all: never the file read again.
        let cfg = crate::engine::run_config::read(run_dir)?;
        let defs = Definitions::load(&cfg).map_err(|e| ToolsError::Definitions(e.to_string()))?;
        let goal = defs
            .goal(&hook.goal)
            .map_err(|e| ToolsError::Definitions(e.to_string()))?;
        let redactor = Redactor::new(cfg.known_secrets());
        Ok(Run {
            cfg,
            defs,
            goal,
            hook,
            redactor,
        })
    }
}

/// Answers one call of `name` (qualified or short) with the raw `tools/call` arguments.
pub async fn call(run_dir: &Path, name: &str, arguments: Value) -> Reply {
    let ctx = match ToolsContext::read(run_dir) {
        Ok(c) => c,
        Err(e) => return error_reply(&ToolsError::Context(e), ""),
    };
    match answer(&ctx, run_dir, name, arguments).await {
        Ok(value) => Reply {
            text: shape(name, &ctx.nonce, &value, None),
            is_error: false,
        },
        Err(e) => error_reply(&e, &ctx.nonce),
    }
}

async fn answer(
    ctx: &ToolsContext,
    run_dir: &Path,
    name: &str,
    arguments: Value,
) -> Result<Value, ToolsError> {
    let qualified = qualify(name);
    let Some(short) = steward_tools::short_name(&qualified) else {
        return Err(ToolsError::Unknown(name.to_string()));
    };
    // Defence in depth: claude's allow list and the hook refuse it too.
    if !ctx.allows(&qualified) {
        return Err(ToolsError::NotListed { tool: qualified });
    }
    let args = args::object(short, arguments)?;
    let run = Run::load(run_dir)?;
    let value = match short {
        "report" => host::report(&run, &args).await?,
        "container_logs" => host::container_logs(&run, &args).await?,
        "probe" => goal::probe(&run, &args).await?,
        "check" => goal::check(&run, &args).await?,
        "service_contract" => goal::service_contract(&run, &args)?,
        "knowledge" => goal::knowledge(&run, &args)?,
        "run_history" => history::run_history(&run, &args)?,
        "propose_note" => propose::propose_note(&run, &args)?,
        "propose_action" => propose::propose_action(&args)?,
        other => return Err(ToolsError::Unknown(other.to_string())),
    };
    let mut value = value;
    run.redactor.redact_json(&mut value);
    Ok(value)
}

fn error_reply(e: &ToolsError, nonce: &str) -> Reply {
    let value = serde_json::json!({"error": e.to_string()});
    Reply {
        text: shape("error", nonce, &value, None),
        is_error: true,
    }
}

/// The answer as the agent sees it: pretty JSON, redacted again (token shapes), cut to
/// [`MAX_ANSWER_BYTES`] and fenced as data.
pub fn shape(name: &str, nonce: &str, value: &Value, redactor: Option<&Redactor>) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let fallback = Redactor::new(Vec::new());
    let text = redactor.unwrap_or(&fallback).redact(&text);
    let text = bound(&text, MAX_ANSWER_BYTES);
    crate::defs::goal::template::fence(&format!("steward tool {name}"), nonce, &text)
}

/// At most `max` bytes of `text`, cut at a character boundary, with the cut said.
pub fn bound(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[steward cut this answer: {} of {} bytes shown]",
        &text[..end],
        end,
        text.len()
    )
}

#[cfg(test)]
mod tests;
