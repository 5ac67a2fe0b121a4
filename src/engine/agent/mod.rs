//! The agent runner: one scoped `claude -p` process, its stream parsed as it arrives.
//!
//! argv and environment are derived from an [`AgentSpec`] (never a shell string); the prompt goes
//! on stdin (the list flags are variadic and would swallow it). The process runs in its own
//! process group and, where the host allows, in a PID namespace so that nothing it started
//! survives it. See [`stream`] for how the output is judged.

mod observer;
pub mod process;
pub mod stream;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

pub use observer::{Observer, QuietObserver, TerminalObserver};

/// Everything needed to start claude; argv and environment are derived from it, never typed.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSpec {
    pub claude_bin: PathBuf,
    /// claude's cwd: the workspace.
    pub workspace: PathBuf,
    /// A fresh HOME owned by this run.
    pub home: PathBuf,
    #[serde(skip)]
    pub prompt: String,
    pub model: String,
    pub tools: Vec<String>,
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
    pub max_turns: u32,
    pub budget_usd: f64,
    pub session_id: uuid::Uuid,
    /// Passed as `--settings` (inline JSON): steward's hooks.
    pub settings: serde_json::Value,
    /// `dontAsk` unless the run waits for approvals through `prompt_tool`.
    pub permission_mode: PermissionMode,
    /// steward's permission-prompt tool, served over MCP; only with `PermissionMode::Default`.
    pub prompt_tool: Option<PromptTool>,
    /// steward's MCP tools the goal lists, served by the same server as the prompt tool.
    pub tool_server: Option<ToolServer>,
    /// The SessionStart hook must echo this; a run without it is aborted.
    pub nonce: String,
    #[serde(skip)]
    pub auth_env: BTreeMap<String, String>,
    pub path_env: String,
    pub max_retries: u8,
    pub timeout: Duration,
    pub kill_grace: Duration,
    /// Run claude in its own PID namespace where the host allows it (`claude.pid_namespace`).
    pub pid_namespace: bool,
}

/// claude's `--permission-mode`. Only these two: the others approve by themselves (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PermissionMode {
    /// Whatever would prompt is denied; `--permission-prompt-tool` is ignored.
    #[serde(rename = "dontAsk")]
    DontAsk,
    /// Whatever would prompt goes to the permission-prompt tool (denied without one).
    #[serde(rename = "default")]
    Default,
}

impl PermissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Default => "default",
        }
    }
}

/// An MCP server claude starts, exposing the tool it asks about calls that would prompt.
#[derive(Debug, Clone, Serialize)]
pub struct PromptTool {
    /// The server's name in `mcp_config`; claude names its tools `mcp__<server>__<tool>`.
    pub server: String,
    pub tool: String,
    /// Passed inline as `--mcp-config` (`{"mcpServers":{…}}`).
    pub mcp_config: Value,
    /// How long claude lets one prompt-tool call take (`MCP_TOOL_TIMEOUT`): longer than the
    /// server's own wait, so that the server, not claude, decides what a timeout means.
    pub call_timeout: Duration,
}

/// steward's MCP server for the agent's own tools (`engine/tools`), started with or without
/// the prompt tool (the same server, the same `--mcp-config`).
#[derive(Debug, Clone, Serialize)]
pub struct ToolServer {
    pub server: String,
    /// Passed inline as `--mcp-config`.
    pub mcp_config: Value,
    /// The qualified tools it serves (`mcp__steward__report`), as claude's init lists them.
    pub tools: Vec<String>,
}

impl PromptTool {
    /// `--permission-prompt-tool` value, and the name init lists among the tools.
    pub fn qualified_name(&self) -> String {
        format!("mcp__{}__{}", self.server, self.tool)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    Ok,
    Fixed,
    NeedsAttention,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentVerdict {
    pub status: VerdictStatus,
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<serde_json::Value>,
    #[serde(default)]
    pub actions_taken: Vec<serde_json::Value>,
    #[serde(default)]
    pub proposed_actions: Vec<serde_json::Value>,
    #[serde(default)]
    pub knowledge: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentFailure {
    Spawn {
        message: String,
    },
    ApiError {
        status: Option<u16>,
        message: String,
    },
    MaxTurns {
        message: String,
    },
    Budget {
        message: String,
    },
    Timeout {
        after_secs: u64,
    },
    Crash {
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr: String,
    },
    NoResult {
        exit_code: Option<i32>,
    },
    Malformed {
        message: String,
    },
    NoVerdict {
        message: String,
    },
    BoundaryNotProven {
        message: String,
    },
    Execution {
        message: String,
    },
    /// steward was told to stop (SIGINT, SIGTERM) and stopped claude: interrupted it, and
    /// killed its group if it did not end within the grace (or at a second signal).
    Cancelled {
        signal: crate::base::cancel::StopSignal,
        killed: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Denial {
    pub tool_name: String,
    pub tool_use_id: String,
    #[serde(default)]
    pub tool_input: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// Set exactly when `failure` is not.
    pub verdict: Option<AgentVerdict>,
    pub failure: Option<AgentFailure>,
    /// The CLI's own estimate (`total_cost_usd`), 0 without a result line.
    pub cost_usd: f64,
    /// Whether a result line reported the cost: without one (claude killed, interrupted while
    /// waiting for the API) the spend is not known.
    #[serde(default)]
    pub cost_reported: bool,
    /// As reported by the CLI (1 + tool results, not API calls).
    pub num_turns: u32,
    /// Wall clock measured by the runner, spawn to exit.
    pub duration_ms: u64,
    /// `permission_denials` of the result line (denials do not fail a run).
    pub denials: Vec<Denial>,
    /// `None` when killed by a signal or never started. Inside the PID namespace a signal death
    /// shows as exit 1 (`unshare` cannot re-raise it).
    pub exit_code: Option<i32>,
    pub session_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot write the transcript: {0}")]
    Transcript(std::io::Error),
    #[error("cannot record claude's process tree: {0}")]
    Record(std::io::Error),
}

/// What the caller of [`run_controlled`] can do to a running agent.
pub struct Control<'a> {
    /// A stop request interrupts claude, then kills its group after the grace (at once for an
    /// urgent one); the outcome's failure is then [`AgentFailure::Cancelled`].
    pub cancel: crate::base::cancel::Cancel,
    /// Called once claude's process tree exists, before its output is read, so that the run
    /// record can name what to end if steward dies. An error kills claude and ends the run.
    pub spawned: &'a mut (dyn FnMut(&process::Tree) -> std::io::Result<()> + Send),
}

/// The mode steward runs claude in unless a goal waits for approvals: whatever would prompt is
/// denied.
pub const PERMISSION_MODE: &str = "dontAsk";

/// Repository config that could run code or hang a tool's git, overridden for everything claude
/// starts (reference §3.7), and for steward's own git in `steward ci` (as `-c` arguments). Per-attribute drivers (`diff.<x>.command`, filters) cannot be
/// overridden this way; the workspace itself must be trusted for those.
pub const GIT_OVERRIDES: &[(&str, &str)] = &[
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    // Empty: git then fails to run an external diff instead of running the repo's choice.
    ("diff.external", ""),
    ("core.sshCommand", "false"),
    ("core.askPass", "false"),
    // Empty resets the helper list.
    ("credential.helper", ""),
    ("protocol.ext.allow", "never"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gpg.program", "false"),
];

/// The verdict schema passed as `--json-schema`; [`AgentVerdict`] deserialises anything it accepts.
pub fn verdict_schema() -> Value {
    let text =
        |description: &str| serde_json::json!({"type": "string", "description": description});
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["status", "summary"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["ok", "fixed", "needs_attention", "failed"],
                "description": "ok: nothing wrong; fixed: you fixed it; needs_attention: a human must act; failed: you could not complete the task"
            },
            "summary": text("One or two sentences for the operator."),
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["severity", "subject", "detail"],
                    "properties": {
                        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
                        "subject": text("What the finding is about: a host, unit, job, file."),
                        "detail": text("What you observed, with evidence.")
                    }
                }
            },
            "actions_taken": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["command", "result"],
                    "properties": {
                        "command": text("The command or tool call you ran."),
                        "result": text("What it did.")
                    }
                }
            },
            "proposed_actions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["command", "rationale", "risk"],
                    "properties": {
                        "command": {
                            "description": "The exact command, preferably as an argv array.",
                            "anyOf": [
                                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                {"type": "string", "minLength": 1}
                            ]
                        },
                        "rationale": text("Why this fixes the problem."),
                        "risk": {"type": "string", "enum": ["low", "medium", "high"]}
                    }
                }
            },
            "knowledge": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["title", "tags", "body"],
                    "properties": {
                        "title": text("A short title for an edge-case note."),
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "body": text("The note, in Markdown.")
                    }
                }
            }
        }
    })
}

/// claude's arguments (without the program). The prompt is not among them: it goes on stdin.
pub fn argv(spec: &AgentSpec) -> Vec<String> {
    let mut a: Vec<String> = [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        // Empty: no user/project/local settings, CLAUDE.md or .mcp.json from the workspace.
        "--setting-sources",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["--settings".into(), spec.settings.to_string()]);
    // Strict always: only steward's own server (if any), never the workspace's `.mcp.json`.
    a.push("--strict-mcp-config".into());
    // One server for both: the prompt tool's config and the tool server's are the same.
    let mcp_config = spec
        .prompt_tool
        .as_ref()
        .map(|p| &p.mcp_config)
        .or(spec.tool_server.as_ref().map(|t| &t.mcp_config));
    if let Some(config) = mcp_config {
        // Variadic too; the next flag ends it.
        a.extend(["--mcp-config".into(), config.to_string()]);
    }
    if let Some(p) = &spec.prompt_tool {
        a.extend(["--permission-prompt-tool".into(), p.qualified_name()]);
    }
    a.extend(["--tools".into(), spec.tools.join(",")]);
    a.extend([
        "--permission-mode".into(),
        spec.permission_mode.as_str().into(),
    ]);
    // Variadic flags: each rule is its own element, and the next flag ends the list.
    if !spec.allowed_tools.is_empty() {
        a.push("--allowedTools".into());
        a.extend(spec.allowed_tools.iter().cloned());
    }
    if !spec.disallowed_tools.is_empty() {
        a.push("--disallowedTools".into());
        a.extend(spec.disallowed_tools.iter().cloned());
    }
    a.extend(["--max-turns".into(), spec.max_turns.to_string()]);
    a.extend(["--max-budget-usd".into(), spec.budget_usd.to_string()]);
    a.extend(["--model".into(), spec.model.clone()]);
    a.extend(["--session-id".into(), spec.session_id.to_string()]);
    a.push("--no-session-persistence".into());
    a.push("--include-hook-events".into());
    a.extend(["--json-schema".into(), verdict_schema().to_string()]);
    a
}

/// claude's complete environment; nothing else is inherited.
pub fn environment(spec: &AgentSpec) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = spec.auth_env.clone();
    // Set after the auth vars so that these cannot be overridden by them.
    let fixed = [
        ("PATH", spec.path_env.clone()),
        ("HOME", spec.home.display().to_string()),
        ("LANG", "C.UTF-8".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ("DISABLE_TELEMETRY", "1".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS", "1".into()),
        ("CLAUDE_CODE_MAX_RETRIES", spec.max_retries.to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
        // Beats every pager.<cmd> a repository could configure.
        ("GIT_PAGER", "cat".into()),
        ("GIT_CONFIG_COUNT", GIT_OVERRIDES.len().to_string()),
    ];
    for (k, v) in fixed {
        env.insert(k.to_string(), v);
    }
    if let Some(p) = &spec.prompt_tool {
        env.insert(
            "MCP_TOOL_TIMEOUT".into(),
            p.call_timeout.as_millis().to_string(),
        );
    }
    for (i, (k, v)) in GIT_OVERRIDES.iter().enumerate() {
        env.insert(format!("GIT_CONFIG_KEY_{i}"), k.to_string());
        env.insert(format!("GIT_CONFIG_VALUE_{i}"), v.to_string());
    }
    env
}

/// A spec steward will not start claude with (a wiring mistake, or a value that would change
/// claude's command line).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid tool name {0:?}")]
    Tool(String),
    #[error("invalid permission rule {0:?}")]
    Rule(String),
    #[error("invalid model {0:?}")]
    Model(String),
    #[error("empty nonce: the settings could never be proven")]
    EmptyNonce,
    #[error("invalid budget {0}")]
    Budget(f64),
    #[error("permission mode {mode} with{} a prompt tool", if *.prompt_tool { "" } else { "out" })]
    Mode {
        mode: &'static str,
        prompt_tool: bool,
    },
}

/// Values that would change claude's command line if they started with `-` or held a separator.
fn check_spec(spec: &AgentSpec) -> Result<(), SpecError> {
    let flag_like = |s: &str| s.is_empty() || s.starts_with('-');
    if let Some(t) = spec
        .tools
        .iter()
        .find(|t| flag_like(t) || t.contains(',') || t.contains(char::is_whitespace))
    {
        return Err(SpecError::Tool(t.clone()));
    }
    if let Some(r) = spec
        .allowed_tools
        .iter()
        .chain(&spec.disallowed_tools)
        .find(|r| flag_like(r))
    {
        return Err(SpecError::Rule(r.clone()));
    }
    if flag_like(&spec.model) {
        return Err(SpecError::Model(spec.model.clone()));
    }
    if spec.nonce.trim().is_empty() {
        return Err(SpecError::EmptyNonce);
    }
    if !(spec.budget_usd.is_finite() && spec.budget_usd > 0.0) {
        return Err(SpecError::Budget(spec.budget_usd));
    }
    // Default mode without a prompt tool would leave the decision to claude's own rules; a
    // prompt tool in dontAsk would be silently ignored (§3.3). Either is a wiring mistake.
    match (spec.permission_mode, &spec.prompt_tool) {
        (PermissionMode::DontAsk, None) | (PermissionMode::Default, Some(_)) => {}
        (mode, p) => {
            return Err(SpecError::Mode {
                mode: mode.as_str(),
                prompt_tool: p.is_some(),
            });
        }
    }
    Ok(())
}

fn failed_before_start(spec: &AgentSpec, failure: AgentFailure, started: Instant) -> AgentOutcome {
    AgentOutcome {
        verdict: None,
        failure: Some(failure),
        cost_usd: 0.0,
        cost_reported: false,
        num_turns: 0,
        duration_ms: elapsed_ms(started),
        denials: Vec::new(),
        exit_code: None,
        session_id: spec.session_id.to_string(),
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs claude to the end. Transcript lines (already redacted by the caller's closure) go to
/// `transcript`; failures of claude are an `AgentOutcome` with `failure` set, not an error.
pub async fn run(
    spec: &AgentSpec,
    transcript: &mut (dyn FnMut(&str) -> std::io::Result<()> + Send),
    observer: &mut dyn Observer,
) -> Result<AgentOutcome, AgentError> {
    let mut ignore = |_: &process::Tree| Ok(());
    let control = Control {
        cancel: crate::base::cancel::Cancel::never(),
        spawned: &mut ignore,
    };
    run_controlled(spec, transcript, observer, control).await
}

/// [`run`], stoppable from outside and telling the caller which processes it started.
pub async fn run_controlled(
    spec: &AgentSpec,
    transcript: &mut (dyn FnMut(&str) -> std::io::Result<()> + Send),
    observer: &mut dyn Observer,
    control: Control<'_>,
) -> Result<AgentOutcome, AgentError> {
    let Control {
        mut cancel,
        spawned,
    } = control;
    let started = Instant::now();
    if let Err(e) = check_spec(spec) {
        return Ok(failed_before_start(
            spec,
            AgentFailure::Spawn {
                message: e.to_string(),
            },
            started,
        ));
    }
    let unshare = if spec.pid_namespace {
        process::pid_namespace().await
    } else {
        None
    };
    let namespaced = unshare.is_some();
    let (mut child, tree) = match process::spawn(spec, unshare).await {
        Ok(spawned) => spawned,
        Err(e) => {
            return Ok(failed_before_start(
                spec,
                AgentFailure::Spawn {
                    message: e.to_string(),
                },
                started,
            ));
        }
    };
    if let Err(e) = spawned(&tree) {
        process::signal_group(tree.pgid, Signal::SIGKILL);
        let _ = child.wait().await;
        return Err(AgentError::Record(e));
    }
    let (Some(pgid), Some(stdout), Some(mut stdin), Some(stderr)) = (
        child.id(),
        child.stdout.take(),
        child.stdin.take(),
        child.stderr.take(),
    ) else {
        // Only possible if the child was already reaped or the pipes were not set up.
        let _ = child.start_kill();
        let _ = child.wait().await;
        let message = "claude exited before its pipes could be read".to_string();
        return Ok(failed_before_start(
            spec,
            AgentFailure::Spawn { message },
            started,
        ));
    };
    let prompt = spec.prompt.clone();
    // A task, so a prompt bigger than the pipe buffer cannot deadlock against our reads.
    tokio::spawn(async move {
        let _ = stdin.write_all(prompt.as_bytes()).await;
        let _ = stdin.shutdown().await;
    });
    let running = watch::Running {
        child,
        pgid,
        namespaced,
        stdout,
        stderr,
    };
    watch::watch(spec, running, transcript, observer, &mut cancel, started).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AgentSpec {
        AgentSpec {
            claude_bin: "/opt/claude".into(),
            workspace: "/ws".into(),
            home: "/home/run".into(),
            prompt: "check the disk".into(),
            model: "claude-sonnet-4-5".into(),
            tools: vec!["Bash".into(), "Read".into()],
            allowed_tools: vec!["Bash(df -h)".into(), "Read(/etc/**)".into()],
            disallowed_tools: vec!["Bash(rm:*)".into()],
            max_turns: 8,
            budget_usd: 0.5,
            session_id: uuid::Uuid::nil(),
            settings: serde_json::json!({"hooks": {}}),
            permission_mode: PermissionMode::DontAsk,
            prompt_tool: None,
            tool_server: None,
            nonce: "n0nce".into(),
            auth_env: [
                ("ANTHROPIC_API_KEY".to_string(), "sk-x".to_string()),
                ("PATH".into(), "/evil".into()),
            ]
            .into_iter()
            .collect(),
            path_env: "/usr/bin:/bin".into(),
            max_retries: 2,
            timeout: Duration::from_secs(60),
            kill_grace: Duration::from_secs(5),
            pid_namespace: true,
        }
    }

    fn after<'a>(a: &'a [String], flag: &str) -> &'a str {
        let i = a
            .iter()
            .position(|x| x == flag)
            .unwrap_or_else(|| panic!("{flag} missing"));
        &a[i + 1]
    }

    #[test]
    fn argv_shape() {
        let a = argv(&spec());
        assert_eq!(
            &a[..4],
            ["-p", "--output-format", "stream-json", "--verbose"]
        );
        assert_eq!(after(&a, "--setting-sources"), "");
        assert_eq!(after(&a, "--settings"), r#"{"hooks":{}}"#);
        assert_eq!(after(&a, "--tools"), "Bash,Read");
        assert_eq!(after(&a, "--permission-mode"), "dontAsk");
        let i = a.iter().position(|x| x == "--allowedTools").unwrap();
        assert_eq!(
            &a[i + 1..i + 4],
            ["Bash(df -h)", "Read(/etc/**)", "--disallowedTools"]
        );
        assert_eq!(after(&a, "--disallowedTools"), "Bash(rm:*)");
        assert_eq!(after(&a, "--max-turns"), "8");
        assert_eq!(after(&a, "--max-budget-usd"), "0.5");
        assert_eq!(after(&a, "--model"), "claude-sonnet-4-5");
        assert_eq!(
            after(&a, "--session-id"),
            "00000000-0000-0000-0000-000000000000"
        );
        assert!(a.contains(&"--no-session-persistence".to_string()));
        assert!(a.contains(&"--include-hook-events".to_string()));
        assert!(a.contains(&"--strict-mcp-config".to_string()));
        let schema: Value = serde_json::from_str(after(&a, "--json-schema")).unwrap();
        assert_eq!(schema, verdict_schema());
        assert!(
            !a.iter().any(|x| x.contains("check the disk")),
            "the prompt goes on stdin"
        );

        let mut s = spec();
        s.allowed_tools.clear();
        s.disallowed_tools.clear();
        s.tools.clear();
        let a = argv(&s);
        assert!(!a.contains(&"--allowedTools".to_string()));
        assert!(!a.contains(&"--disallowedTools".to_string()));
        assert_eq!(after(&a, "--tools"), "");
        assert!(!a.contains(&"--mcp-config".to_string()));
        assert!(!a.contains(&"--permission-prompt-tool".to_string()));
    }

    fn wait_spec() -> AgentSpec {
        let mut s = spec();
        s.permission_mode = PermissionMode::Default;
        s.prompt_tool = Some(PromptTool {
            server: "steward".into(),
            tool: "approval_prompt".into(),
            mcp_config: serde_json::json!({"mcpServers": {"steward": {"type": "stdio"}}}),
            call_timeout: Duration::from_secs(660),
        });
        s
    }

    #[test]
    fn a_wait_run_uses_default_mode_and_the_prompt_tool() {
        let s = wait_spec();
        let a = argv(&s);
        assert_eq!(after(&a, "--permission-mode"), "default");
        assert_eq!(
            after(&a, "--permission-prompt-tool"),
            "mcp__steward__approval_prompt"
        );
        let config: Value = serde_json::from_str(after(&a, "--mcp-config")).unwrap();
        assert_eq!(config["mcpServers"]["steward"]["type"], "stdio");
        assert!(a.contains(&"--strict-mcp-config".to_string()));
        assert_eq!(environment(&s)["MCP_TOOL_TIMEOUT"], "660000");
        assert!(!environment(&spec()).contains_key("MCP_TOOL_TIMEOUT"));
        assert!(check_spec(&s).is_ok());
        // Either half alone is a wiring mistake.
        let mut half = wait_spec();
        half.prompt_tool = None;
        assert!(check_spec(&half).is_err());
        let mut half = wait_spec();
        half.permission_mode = PermissionMode::DontAsk;
        assert!(check_spec(&half).is_err());
        let e = stream::Expectations::from_spec(&s);
        assert_eq!(e.permission_mode, "default");
        assert!(e.mcp_servers.contains("steward"));
    }

    #[test]
    fn environment_is_explicit() {
        let env = environment(&spec());
        assert_eq!(env["PATH"], "/usr/bin:/bin");
        assert_eq!(env["HOME"], "/home/run");
        assert_eq!(env["ANTHROPIC_API_KEY"], "sk-x");
        assert_eq!(env["CLAUDE_CODE_MAX_RETRIES"], "2");
        assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
        let n: usize = env["GIT_CONFIG_COUNT"].parse().unwrap();
        let keys: Vec<&str> = (0..n)
            .map(|i| env[&format!("GIT_CONFIG_KEY_{i}")].as_str())
            .collect();
        assert!(
            keys.contains(&"core.fsmonitor")
                && keys.contains(&"core.hooksPath")
                && keys.contains(&"diff.external")
        );
        assert!(!env.contains_key("USER"));
    }

    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let spec = spec();
        let mut sink = |_: &str| Ok(());
        let mut observer = QuietObserver;
        let fut = run(&spec, &mut sink, &mut observer);
        assert_send(&fut);
    }

    #[test]
    fn spec_checks() {
        assert!(check_spec(&spec()).is_ok());
        let mut s = spec();
        s.allowed_tools
            .push("--dangerously-skip-permissions".into());
        assert!(check_spec(&s).is_err());
        let mut s = spec();
        s.tools.push("Bash,Write".into());
        assert!(check_spec(&s).is_err());
        let mut s = spec();
        s.nonce = String::new();
        assert!(check_spec(&s).is_err());
    }

    #[test]
    fn schema_accepts_what_verdict_parses() {
        let v: AgentVerdict = serde_json::from_value(serde_json::json!({
            "status": "needs_attention", "summary": "s",
            "findings": [{"severity": "warning", "subject": "disk", "detail": "90%"}],
            "proposed_actions": [{"command": ["systemctl", "restart", "x"], "rationale": "r", "risk": "low"}]
        }))
        .unwrap();
        assert_eq!(v.status, VerdictStatus::NeedsAttention);
        let statuses = verdict_schema()["properties"]["status"]["enum"].clone();
        assert_eq!(
            statuses,
            serde_json::json!(["ok", "fixed", "needs_attention", "failed"])
        );
    }
}
