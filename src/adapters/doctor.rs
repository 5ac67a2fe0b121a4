//! `steward doctor`: is this installation able to run, and does the boundary really hold with the
//! installed claude? It renders every goal with representative context ([`render`]), proves the
//! configured endpoint with one real, free request ([`endpoint`]), places the installed claude
//! against the tested version range ([`claude_version`]), and drives the operator's own claude
//! binary against steward's scripted model on loopback (the self-test, which needs no
//! credentials and spends nothing).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::adapters::scripted;
use crate::base::exec::ExecError;
use crate::config::{Config, Loaded};
use crate::engine::agent::{self, AgentSpec, QuietObserver};
use crate::engine::run::{self, Definitions};

pub mod claude_version;
pub mod endpoint;
pub mod render;

use claude_version::Fit;

/// How one doctor line ended. A warning is reported but does not fail the installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// False only for `fail`: a warning does not make the installation unusable.
    pub ok: bool,
    pub status: Status,
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
            status: Status::Ok,
            detail,
        },
        Err(detail) => Check {
            name: name.to_string(),
            ok: false,
            status: Status::Fail,
            detail,
        },
    }
}

fn warning(name: &str, detail: String) -> Check {
    Check {
        name: name.to_string(),
        ok: true,
        status: Status::Warn,
        detail,
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
    checks.push(check("templates", check_templates(cfg)));
    let bin = agent::process::resolve_bin(&cfg.claude_bin(), &cfg.claude.path);
    let version = claude_version(bin.as_deref(), &cfg.claude_bin()).await;
    let have_claude = version.is_ok();
    checks.push(match version {
        Ok((detail, Fit::Tested)) => check("claude", Ok(detail)),
        Ok((detail, _)) => warning("claude", detail),
        Err(e) => check("claude", Err(e)),
    });
    let credential = check_credentials(cfg);
    checks.push(check(
        "credentials",
        credential
            .as_ref()
            .map(|(_, d)| d.clone())
            .map_err(Clone::clone),
    ));
    checks.push(check(
        "endpoint",
        match &credential {
            Ok((c, _)) => check_endpoint(cfg, c).await,
            Err(_) => Err("skipped: no credentials to prove".to_string()),
        },
    ));
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
    let ledger = crate::base::ledger::Ledger::open(&cfg.state_dir).map_err(|e| e.to_string())?;
    let probe = ledger
        .tmp_dir()
        .join(format!("doctor-{}", std::process::id()));
    crate::base::ledger::write_atomic(&probe, b"ok").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&probe);
    Ok(format!("{} is writable", cfg.state_dir.display()))
}

fn check_definitions(cfg: &Config) -> Result<String, String> {
    let defs = Definitions::load(cfg).map_err(|e| e.to_string())?;
    let goals = defs.goals();
    for g in &goals {
        crate::defs::policy::claude_rules(&g.name, &g.tools, &g.policy, &cfg.workspace)
            .map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "{} goals, {} probes, {} knowledge notes",
        goals.len(),
        defs.catalog.probes.len(),
        defs.notes.len()
    ))
}

/// Every goal rendered with representative context (see [`render`]), so a broken template is
/// found here and not at 3 a.m.
fn check_templates(cfg: &Config) -> Result<String, String> {
    let defs = Definitions::load(cfg).map_err(|e| format!("skipped: {e}"))?;
    let goals = defs.goals();
    let renders =
        render::every_goal(&goals, &defs, &cfg.workspace).map_err(|broken| broken.join("; "))?;
    Ok(format!(
        "{} goals render ({renders} renders: every signal source, probes and checks green and red, notes, history)",
        goals.len()
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

/// The installed claude's version line and where it stands against the tested range.
async fn claude_version(
    bin: Result<&Path, &agent::process::SpawnError>,
    configured: &Path,
) -> Result<(String, Fit), String> {
    let bin = bin.map_err(|e| {
        format!(
            "`{}`: {e} (set claude.bin or $STEWARD_CLAUDE_BIN; install with `npm install -g @anthropic-ai/claude-code@{}`)",
            configured.display(),
            claude_version::NEWEST_TESTED
        )
    })?;
    let text = run_version(bin).await?;
    let range = claude_version::range();
    let fit = claude_version::fit(&text);
    let note = match fit {
        Fit::Tested => format!("tested range {range}"),
        Fit::Older => format!(
            "older than the tested range {range}: upgrade (`npm install -g @anthropic-ai/claude-code@{}`)",
            claude_version::NEWEST_TESTED
        ),
        Fit::Newer => {
            format!("newer than the tested range {range}: the self-test below checks this one")
        }
        Fit::Unknown => format!("not a version steward can read; tested range {range}"),
    };
    Ok((format!("{} {text} ({note})", bin.display()), fit))
}

/// How long `claude --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(20);

/// `claude --version`'s output, trimmed; an error naming the binary when it does not
/// start, answer in time or succeed.
async fn run_version(bin: &Path) -> Result<String, String> {
    let argv = [bin.to_string_lossy().into_owned(), "--version".to_string()];
    let cmd = crate::base::exec::Command {
        argv: &argv,
        path_env: "/usr/local/bin:/usr/bin:/bin",
        cwd: None,
        timeout: VERSION_TIMEOUT,
        stdout_cap: 64 << 10,
        stderr_tail: 4 << 10,
    };
    let out = crate::base::exec::run(&cmd).await.map_err(|e| {
        let why = match e {
            ExecError::Spawn { source, .. } | ExecError::Wait { source, .. } => source.to_string(),
            // exec names a missing program; the system's own words, as before.
            ExecError::NotFound { .. } => {
                std::io::Error::from(nix::errno::Errno::ENOENT).to_string()
            }
            ExecError::EmptyArgv => e.to_string(),
        };
        format!("cannot run {}: {why}", bin.display())
    })?;
    let text = out.stdout.trim().to_string();
    match out.status {
        None => Err(format!(
            "{} --version did not answer in {} s",
            bin.display(),
            VERSION_TIMEOUT.as_secs()
        )),
        Some(s) if !s.success() => Err(format!("{} --version failed: {text}", bin.display())),
        Some(_) => Ok(text),
    }
}

/// The credential claude will use. Its presence only; [`check_endpoint`] proves it.
fn check_credentials(cfg: &Config) -> Result<(endpoint::Credential, String), String> {
    let env = cfg.claude_auth().map_err(|e| e.to_string())?;
    // The CLI prefers an API key over an OAuth token, and so does the proof.
    let credential = match (
        env.get("ANTHROPIC_API_KEY"),
        env.get("CLAUDE_CODE_OAUTH_TOKEN"),
    ) {
        (Some(k), _) => endpoint::Credential::ApiKey(k.clone()),
        (None, Some(t)) => endpoint::Credential::OAuth(t.clone()),
        (None, None) => {
            return Err(
                "no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (environment or claude.api_key_file / claude.oauth_token_file)"
                    .to_string(),
            );
        }
    };
    let detail = format!("{} set (proven by `endpoint`)", credential.name());
    Ok((credential, detail))
}

/// One real request per model a run may use: the configured one and every goal's override.
async fn check_endpoint(cfg: &Config, credential: &endpoint::Credential) -> Result<String, String> {
    let env = cfg.claude_auth().map_err(|e| e.to_string())?;
    let base = env
        .get("ANTHROPIC_BASE_URL")
        .map_or(endpoint::DEFAULT_BASE_URL, String::as_str);
    let mut models = vec![cfg.claude.model.clone()];
    if let Ok(defs) = Definitions::load(cfg) {
        for m in defs.goals().into_iter().filter_map(|g| g.model) {
            if !models.contains(&m) {
                models.push(m);
            }
        }
    }
    let mut proofs = Vec::new();
    for model in &models {
        let proven = endpoint::prove(base, credential, model)
            .await
            .map_err(|e| e.to_string())?;
        proofs.push(format!(
            "model {model} ({}, {} ms)",
            proven.request, proven.millis
        ));
    }
    Ok(format!(
        "{} accepted for {}",
        credential.name(),
        proofs.join("; ")
    ))
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
    let policy = crate::defs::policy::Policy::build(
        "doctor",
        &crate::defs::policy::GoalPolicy {
            allow: vec!["echo ARG...".to_string()],
            ..Default::default()
        },
        &workspace,
    )
    .map_err(|e| e.to_string())?;
    policy
        .to_file(&run_dir.join(crate::engine::boundary::POLICY_FILE))
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
        settings: crate::engine::boundary::claude_settings(&nonce, &steward_exe()?, &run_dir),
        permission_mode: agent::PermissionMode::DontAsk,
        prompt_tool: None,
        tool_server: None,
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
    let audit = crate::engine::boundary::read_audit(&run_dir).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A claude whose `--version` leaves a child holding its stdout: steward reads the answer
    /// when claude exits and ends the child with claude's process group, instead of waiting
    /// for the pipe to close.
    #[tokio::test]
    async fn version_does_not_wait_for_a_child_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("claude");
        std::fs::write(
            &bin,
            "#!/bin/sh\nsleep 30 &\necho '2.1.197 (Claude Code)'\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = std::time::Instant::now();
        let (line, _) = claude_version(Ok(&bin), &bin).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "{line}");
        assert!(line.contains("2.1.197 (Claude Code)"), "{line}");
        let missing = dir.path().join("no-such-claude");
        let e = claude_version(Ok(&missing), &missing).await.unwrap_err();
        assert!(e.contains("No such file or directory"), "{e}");
    }
}
