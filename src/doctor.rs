//! `steward doctor`: is this installation able to run, and does the boundary really hold with the
//! installed claude? The self-test drives the operator's own claude binary against steward's
//! scripted model on loopback, so it needs no credentials and spends nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::agent::{self, AgentSpec, QuietObserver};
use crate::config::{Config, Loaded};
use crate::goal::{self, RenderInput};
use crate::run::{self, Definitions};
use crate::scripted;
use crate::signal::Signal;

/// The Claude Code version steward's tests run against.
pub const TESTED_CLAUDE_VERSION: &str = "2.1.197";

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

fn check(name: &str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name: name.to_string(),
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name: name.to_string(),
            ok: false,
            detail,
        },
    }
}

pub async fn run(loaded: &Loaded) -> DoctorReport {
    let cfg = &loaded.config;
    let mut checks = vec![check(
        "config",
        Ok(match &loaded.source {
            Some(p) => format!("loaded {}", p.display()),
            None => "no config file; built-in defaults".to_string(),
        }),
    )];
    checks.push(check("workspace", check_workspace(cfg)));
    checks.push(check("state dir", check_state_dir(cfg)));
    checks.push(check("definitions", check_definitions(cfg)));
    checks.push(check("load errors", check_load_errors(cfg)));
    let bin = agent::process::resolve_bin(&cfg.claude_bin(), &cfg.claude.path);
    let version = claude_version(bin.as_deref(), &cfg.claude_bin()).await;
    let have_claude = version.is_ok();
    checks.push(check("claude", version));
    checks.push(check("auth", check_auth(cfg)));
    checks.push(check(
        "self-test",
        match (&bin, have_claude) {
            (Ok(bin), true) => self_test(cfg, bin).await,
            _ => Err("skipped: no working claude binary".to_string()),
        },
    ));
    DoctorReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

fn check_workspace(cfg: &Config) -> Result<String, String> {
    if cfg.workspace.is_dir() {
        Ok(cfg.workspace.display().to_string())
    } else {
        Err(format!("{} is not a directory", cfg.workspace.display()))
    }
}

fn check_state_dir(cfg: &Config) -> Result<String, String> {
    let ledger = crate::ledger::Ledger::open(&cfg.state_dir).map_err(|e| e.to_string())?;
    let probe = ledger
        .tmp_dir()
        .join(format!("doctor-{}", std::process::id()));
    crate::ledger::write_atomic(&probe, b"ok").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&probe);
    Ok(format!("{} is writable", cfg.state_dir.display()))
}

fn check_definitions(cfg: &Config) -> Result<String, String> {
    let defs = Definitions::load(cfg).map_err(|e| e.to_string())?;
    let goals = defs.goals();
    // Every goal must render, so a broken template is found here and not at 3 a.m.
    let mut vars = BTreeMap::new();
    for g in &goals {
        for v in &g.required_vars {
            vars.insert(v.clone(), format!("<{v}>"));
        }
    }
    for g in &goals {
        let signal = Signal::manual(&g.name, &vars);
        goal::render(
            g,
            &RenderInput {
                signal: &signal,
                context: &[],
                knowledge: &[],
                vars: &vars,
                nonce: "steward-doctor-render-check",
                workspace: &cfg.workspace,
                checks: &[],
                history: &[],
            },
        )
        .map_err(|e| e.to_string())?;
        crate::policy::claude_rules(&g.name, &g.tools, &g.policy, &cfg.workspace)
            .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "{} goals (all render), {} probes, {} knowledge notes",
        goals.len(),
        defs.catalog.probes.len(),
        defs.notes.len()
    ))
}

/// Every definition file that did not load (and every goal that fails because of one), and the
/// goals' warnings, each as `FILE:LINE:COL: message`.
fn check_load_errors(cfg: &Config) -> Result<String, String> {
    let defs = Definitions::load(cfg).map_err(|e| e.to_string())?;
    let lines = |items: &[String]| -> String { items.iter().map(|i| format!("\n  {i}")).collect() };
    let warnings = defs.warnings();
    let warned = if warnings.is_empty() {
        String::new()
    } else {
        format!("\n{} warning(s):{}", warnings.len(), lines(&warnings))
    };
    if defs.errors.is_empty() {
        return Ok(format!("every goal, probe, check and note loaded{warned}"));
    }
    let errors: Vec<String> = defs.errors.iter().map(|e| e.error.clone()).collect();
    Err(format!(
        "{} definition error(s):{}{warned}",
        errors.len(),
        lines(&errors)
    ))
}

async fn claude_version(bin: Result<&Path, &String>, configured: &Path) -> Result<String, String> {
    let bin = bin.map_err(|e| {
        format!(
            "`{}`: {e} (set claude.bin or $STEWARD_CLAUDE_BIN; install with `npm install -g @anthropic-ai/claude-code@{TESTED_CLAUDE_VERSION}`)",
            configured.display()
        )
    })?;
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(bin)
            .arg("--version")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("{} --version did not answer in 20 s", bin.display()))?
    .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!("{} --version failed: {text}", bin.display()));
    }
    let note = if text.starts_with(TESTED_CLAUDE_VERSION) {
        String::new()
    } else {
        format!(
            " (steward is tested with {TESTED_CLAUDE_VERSION}; the self-test below checks this one)"
        )
    };
    Ok(format!("{} {text}{note}", bin.display()))
}

fn check_auth(cfg: &Config) -> Result<String, String> {
    let env = cfg.claude_auth().map_err(|e| e.to_string())?;
    let mut found: Vec<&str> = Vec::new();
    for key in ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"] {
        if env.contains_key(key) {
            found.push(key);
        }
    }
    if found.is_empty() {
        return Err(
            "no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (environment or claude.api_key_file / claude.oauth_token_file)"
                .to_string(),
        );
    }
    let base = env
        .get("ANTHROPIC_BASE_URL")
        .map(|u| format!(", endpoint {u}"))
        .unwrap_or_default();
    Ok(format!("{}{base}", found.join(" and ")))
}

fn steward_exe() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find steward's own binary: {e}"))
}

/// The scripted model asks for a write that the policy forbids, then reports. The write must be
/// denied and must not happen, the verdict must parse, and the nonce hook must be seen.
async fn self_test(cfg: &Config, bin: &Path) -> Result<String, String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let workspace = tmp.path().join("workspace");
    let home = tmp.path().join("home");
    for d in [&workspace, &home] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let policy = crate::policy::Policy::build(
        "doctor",
        &crate::goal::GoalPolicy {
            allow: vec!["echo ARG...".to_string()],
            ..Default::default()
        },
        &workspace,
    )
    .map_err(|e| e.to_string())?;
    policy
        .to_file(&run_dir.join(crate::boundary::POLICY_FILE))
        .map_err(|e| e.to_string())?;
    let marker = tmp.path().join("forbidden-write");
    let scenario = format!(
        r#"
[[turn]]
text = "Trying a forbidden write."
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch {marker}", description = "forbidden" }}

[[turn]]
verdict = {{ status = "ok", summary = "self-test", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
        marker = marker.display()
    );
    let scenario = scripted::Scenario::parse(&scenario).map_err(|e| format!("scenario: {e}"))?;
    let server = scripted::start(scenario, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| e.to_string())?;
    let nonce = format!("steward-boundary-{}", uuid::Uuid::new_v4().simple());
    let mut auth_env = BTreeMap::new();
    auth_env.insert(
        "ANTHROPIC_API_KEY".to_string(),
        "sk-steward-doctor".to_string(),
    );
    auth_env.insert("ANTHROPIC_BASE_URL".to_string(), server.base_url());
    let spec = AgentSpec {
        claude_bin: bin.to_path_buf(),
        workspace: workspace.clone(),
        home,
        prompt: "steward doctor self-test".to_string(),
        model: cfg.claude.model.clone(),
        tools: vec!["Bash".to_string()],
        allowed_tools: vec!["Bash(echo steward-doctor *)".to_string()],
        disallowed_tools: Vec::new(),
        max_turns: 4,
        budget_usd: 1.0,
        session_id: uuid::Uuid::new_v4(),
        settings: crate::boundary::claude_settings(&nonce, &steward_exe()?, &run_dir),
        permission_mode: agent::PermissionMode::DontAsk,
        prompt_tool: None,
        nonce,
        auth_env,
        path_env: cfg.claude.path.clone(),
        max_retries: 0,
        timeout: Duration::from_secs(90),
        kill_grace: Duration::from_secs(2),
        pid_namespace: cfg.claude.pid_namespace,
    };
    let mut sink = |_: &str| Ok(());
    let outcome = agent::run(&spec, &mut sink, &mut QuietObserver)
        .await
        .map_err(|e| e.to_string())?;
    server.shutdown().await;
    if let Some(f) = &outcome.failure {
        return Err(format!("run failed: {}", run::describe_failure(f)));
    }
    if marker.exists() {
        return Err("the forbidden write HAPPENED: the policy did not hold".to_string());
    }
    let denied = outcome
        .denials
        .iter()
        .any(|d| d.tool_name == "Bash" && d.tool_input.to_string().contains("forbidden-write"));
    if !denied {
        return Err("the forbidden call was not reported as denied".to_string());
    }
    if outcome.verdict.is_none() {
        return Err("no structured verdict".to_string());
    }
    let audit = crate::boundary::read_audit(&run_dir).map_err(|e| e.to_string())?;
    if !audit
        .iter()
        .any(|a| a.tool == "Bash" && a.decision == "deny")
    {
        return Err(
            "steward's policy hook did not record a deny: is the hook running?".to_string(),
        );
    }
    Ok(format!(
        "forbidden write denied by steward's hook and claude, nonce hook seen, verdict parsed ({} ms)",
        outcome.duration_ms
    ))
}
