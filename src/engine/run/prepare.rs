//! Everything up to the point where claude would start: the boundary (claude's rules and the
//! policy steward's hook enforces), the rendered prompt, and the agent's spec.

use std::path::Path;
use std::time::Duration;

use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::check::CheckResult;
use crate::defs::goal::Goal;
use crate::defs::knowledge;
use crate::defs::policy::{self, ClaudeRules, Policy};
use crate::defs::probe::ProbeResult;
use crate::defs::service::{self, ServiceContract};
use crate::engine::agent::AgentSpec;
use crate::engine::approval::ApprovalMode;
use crate::engine::boundary;
use crate::engine::context::{HostContext, summarise, text as context_text};
use crate::engine::memory::Attempt;
use crate::engine::prompt::RenderInput;

use super::{Definitions, RunError, RunRequest};

/// Everything in a run up to the point where claude would start.
pub(super) struct Prepared {
    pub(super) prompt: String,
    pub(super) spec: AgentSpec,
    pub(super) rules: ClaudeRules,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn prepare(
    cfg: &Config,
    defs: &Definitions,
    goal: &Goal,
    req: &RunRequest,
    redactor: &Redactor,
    context: &[ProbeResult],
    host: Option<&HostContext>,
    checks: &[CheckResult],
    history: &[Attempt],
    home: &Path,
    run_dir: &Path,
    workspace: &Path,
    change: Option<&super::change::ChangeRun>,
) -> Result<Prepared, RunError> {
    if !cfg.workspace.is_dir() {
        return Err(RunError::Workspace {
            path: cfg.workspace.display().to_string(),
        });
    }
    // `workspace` is where the agent works: the live checkout, or a change run's worktree.
    let rules = policy::claude_rules(&goal.name, &goal.tools, &goal.policy, workspace)?;
    // The compiled policy steward's hook enforces, from the same goal policy as the rules.
    let mut policy = Policy::build(&goal.name, &goal.policy, workspace)?;
    if let Some(run) = change {
        // The same protected set the diff check applies after the agent.
        let protected =
            crate::defs::change::ProtectedPaths::for_workspace(cfg, &run.worktree.workspace);
        policy = policy.with_edit_scope(
            &run.worktree.path,
            &run.spec,
            &protected,
            std::slice::from_ref(&cfg.state_dir),
        )?;
    }
    // The web page's token approves actions: never the agent's to read.
    if let Some(ui_token) = cfg.ui_token_file() {
        policy.secrets.push(ui_token.display().to_string());
    }
    // The steward tools the goal lists: the hook allows those, the server serves only those.
    let steward_tools = crate::engine::prompt_tool::steward_tools(goal);
    policy.steward_tools = steward_tools.clone();
    policy.to_file(&run_dir.join(boundary::POLICY_FILE))?;
    let nonce = format!("steward-boundary-{}", uuid::Uuid::new_v4().simple());
    let prompt = render_prompt(
        cfg, defs, goal, req, redactor, context, host, checks, history, &nonce, run_dir, workspace,
    )?;
    let exe = std::env::current_exe().map_err(RunError::Home)?;
    let timeout_secs = goal.timeout_secs.unwrap_or(cfg.limits.timeout_secs);
    // The goal file can only check this against its own `timeout_secs`; the config default is
    // known here. A run killed by its wall clock mid-wait would lose the operator's decision.
    if goal.approval == ApprovalMode::Wait && goal.approval_timeout_secs >= timeout_secs {
        return Err(RunError::ApprovalOutlastsRun {
            goal: goal.name.clone(),
            wait: goal.approval_timeout_secs,
            run: timeout_secs,
        });
    }
    let servers =
        crate::engine::prompt_tool::servers(cfg, goal, &exe, run_dir, &nonce, &steward_tools)?;
    let spec = AgentSpec {
        claude_bin: cfg.claude_bin(),
        workspace: workspace.to_path_buf(),
        home: home.to_path_buf(),
        prompt: prompt.clone(),
        model: goal
            .model
            .clone()
            .unwrap_or_else(|| cfg.claude.model.clone()),
        tools: rules.tools.clone(),
        allowed_tools: rules.allowed.clone(),
        disallowed_tools: rules.disallowed.clone(),
        max_turns: goal.max_turns.unwrap_or(cfg.limits.max_turns),
        budget_usd: goal.budget_usd.unwrap_or(cfg.limits.budget_usd),
        session_id: uuid::Uuid::new_v4(),
        settings: boundary::claude_settings(&nonce, &exe, run_dir),
        permission_mode: servers.permission_mode,
        prompt_tool: servers.prompt_tool,
        tool_server: servers.tool_server,
        nonce,
        auth_env: cfg.claude_auth()?,
        path_env: cfg.claude.path.clone(),
        max_retries: cfg.claude.max_retries,
        timeout: Duration::from_secs(timeout_secs),
        kill_grace: Duration::from_secs(cfg.claude.kill_grace_secs),
        pid_namespace: cfg.claude.pid_namespace,
    };
    Ok(Prepared {
        prompt,
        spec,
        rules,
    })
}

/// The goal's prompt, redacted; with a host context, `context-summary.json` in `run_dir` says
/// what it showed of each probe.
#[allow(clippy::too_many_arguments)]
fn render_prompt(
    cfg: &Config,
    defs: &Definitions,
    goal: &Goal,
    req: &RunRequest,
    redactor: &Redactor,
    context: &[ProbeResult],
    host: Option<&HostContext>,
    checks: &[CheckResult],
    history: &[Attempt],
    nonce: &str,
    run_dir: &Path,
    workspace: &Path,
) -> Result<String, RunError> {
    let notes = knowledge::select(
        &defs.notes,
        &goal.name,
        &goal.knowledge_tags,
        &req.signal.labels,
    );
    let contract = service_contract(cfg, req);
    let prompt = crate::engine::prompt::render(
        goal,
        &RenderInput {
            signal: &req.signal,
            context,
            knowledge: &notes,
            vars: &req.vars,
            nonce,
            workspace,
            checks,
            history,
            host,
            contract: contract.as_ref(),
        },
    )?;
    // Probe output is redacted already; this pass covers operator text and anything rendered.
    let prompt = redactor.redact(&prompt);
    if let Some(host) = host {
        let decisions = summarise::decide_for(&goal.tools, context, Some(host));
        let record = context_text::record(host, decisions, &prompt);
        crate::base::ledger::write_json(&run_dir.join(context_text::RECORD_FILE), &record)?;
    }
    Ok(prompt)
}

/// The contract of the service the run is about: the `service` variable, else the subject, where
/// the workspace declares a service of that name. A contract that cannot be read is logged and
/// left out (the run is about the incident, not the file).
fn service_contract(cfg: &Config, req: &RunRequest) -> Option<ServiceContract> {
    let names = req
        .vars
        .get("service")
        .into_iter()
        .chain([&req.signal.subject]);
    for name in names {
        match service::find(&cfg.workspace, name) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => {}
            Err(e) => tracing::warn!("the service contract of {name} cannot be read: {e}"),
        }
    }
    None
}
