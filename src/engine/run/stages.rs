//! The stages of [`super::execute_until`], in the order a run goes through them: gather the
//! context and the checks, the pre-checks that may end the run before the model, render the
//! prompt and the agent's spec, the agent, the post-checks, the judge, and what is remembered.
//! Each stage writes its part of the record before the next begins.

use tempfile::TempDir;

use crate::base::cancel::{Cancel, Request};
use crate::base::ledger::Ledger;
use crate::base::outcome::{ExitKind, Outcome};
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::defs::check::{CheckEnv, CheckResult, Phase};
use crate::defs::goal::Goal;
use crate::defs::policy::AuditEntry;
use crate::defs::probe::{self, ProbeDef, ProbeResult};
use crate::engine::agent::{self, AgentFailure, AgentOutcome, Observer};
use crate::engine::boundary::{self, ESCALATION_WINDOW, HookContext};
use crate::engine::context::{self, HostContext};
use crate::engine::judge::{self, Acts, AgentRun, Evidence, Judgement, NO_ACTS};
use crate::engine::memory::{Attempt, Memory};

use super::checks::{ChecksBefore, checks_before, needs_attention, phase_results};
use super::load::check_request;
use super::prepare::{Prepared, prepare};
use super::recorder::{Recorder, count_hook_errors};
use super::{ACTION_TTL, Definitions, Plan, RunError, RunReport, RunRequest, check_env, redactor};

/// What every stage reads: the request, its goal and the definitions, and how checks run and
/// output is redacted.
pub(super) struct Setup<'a> {
    pub(super) cfg: &'a Config,
    pub(super) req: &'a RunRequest,
    pub(super) defs: Definitions,
    pub(super) goal: Goal,
    pub(super) env: CheckEnv,
    pub(super) redactor: Redactor,
    probes: Vec<ProbeDef>,
}

impl<'a> Setup<'a> {
    /// Loads the definitions and checks the request against its goal: a typo or a missing
    /// variable is the operator's to fix, and leaves no record behind.
    pub(super) fn load(cfg: &'a Config, req: &'a RunRequest) -> Result<Setup<'a>, RunError> {
        let mut defs = Definitions::load(cfg)?;
        let mut goal = check_request(&defs, req)?;
        super::checks::add_service_healthcheck(&cfg.workspace, req, &mut defs, &mut goal)?;
        let probes = defs.catalog.select(&goal.probes)?;
        Ok(Setup {
            cfg,
            req,
            env: check_env(cfg),
            redactor: redactor(cfg),
            defs,
            goal,
            probes,
        })
    }

    /// The goal's probes, every phase's checks and the host snapshot (compared with the
    /// subject's last run), concurrently.
    async fn gather(
        &self,
    ) -> (
        Vec<ProbeResult>,
        Result<ChecksBefore, RunError>,
        HostContext,
    ) {
        let sources = crate::engine::report::Sources::of_host(self.cfg);
        tokio::join!(
            probe::gather(&self.probes, &self.redactor, &self.cfg.claude.path),
            checks_before(&self.defs, &self.goal, &self.env, &self.redactor),
            context::host::gather(&sources, &self.cfg.state_dir, &self.req.signal.subject),
        )
    }

    /// The action effectiveness memory records this goal's runs under.
    fn action_key(&self) -> String {
        format!("goal:{}", self.goal.name)
    }
}

/// A dry run: gathered and rendered, the claude command shown; nothing started or recorded.
pub(super) async fn plan(setup: Setup<'_>) -> Result<RunReport, RunError> {
    let (context, before, host) = setup.gather().await;
    let before = before?;
    let scratch = tempfile::tempdir().map_err(RunError::Home)?;
    let p = prepare(
        setup.cfg,
        &setup.defs,
        &setup.goal,
        setup.req,
        &setup.redactor,
        &context,
        Some(&host),
        &before.all(),
        &[],
        scratch.path(),
        scratch.path(),
        &setup.cfg.workspace,
        None,
    )?;
    Ok(RunReport::Planned(Box::new(Plan {
        goal: setup.goal.name,
        prompt: p.prompt,
        argv: agent::argv(&p.spec),
        rules: p.rules,
        context,
        checks: before.all(),
    })))
}

/// What the run found before anything may change: the probes' context and the checks.
pub(super) struct Gathered {
    pub(super) context: Vec<ProbeResult>,
    /// The host snapshot compared with the subject's last run.
    pub(super) host: HostContext,
    pub(super) before: ChecksBefore,
    /// Whether the context needs a model's eyes (see [`needs_attention`]).
    pub(super) attention: bool,
}

impl Gathered {
    /// The judge's evidence with the post-agent checks still those from before.
    fn evidence<'a>(&'a self, goal: &Goal, agent: AgentRun<'a>, acts: &'a Acts) -> Evidence<'a> {
        Evidence {
            static_: &self.before.static_,
            preflight: &self.before.preflight,
            invariants_before: &self.before.invariants,
            invariants_after: &self.before.invariants,
            post_before: &self.before.post,
            post: &self.before.post,
            agent,
            acts,
            model: goal.checks.model,
            attention: self.attention,
        }
    }
}

/// Stage `checks`: context and checks, concurrently, recorded. `Ok(Err(stop))`: stopped.
pub(super) async fn gather(
    setup: &Setup<'_>,
    rec: &mut Recorder<'_>,
    cancel: &Cancel,
) -> Result<Result<Gathered, Request>, RunError> {
    rec.stage("checks")?;
    let (context, before, host) = match cancel.or_stop(setup.gather()).await {
        Ok(v) => v,
        Err(stop) => return Ok(Err(stop)),
    };
    let before = before?;
    rec.run.write_json("context.json", &context)?;
    rec.run.write_json("checks-before.json", &before)?;
    let attention = needs_attention(setup.req, &context, &before, &host);
    Ok(Ok(Gathered {
        context,
        host,
        before,
        attention,
    }))
}

/// The pre-checks that end a run before the model: the judge's gate (deterministic-first, a
/// failed preflight), a request that asks for no model, and a goal that already failed twice
/// on this subject. `Ok(None)`: the run goes on, with the subject's recent attempts.
pub(super) fn pre_checks(
    setup: &Setup<'_>,
    gathered: &Gathered,
) -> Result<Result<Vec<Attempt>, Judgement>, RunError> {
    let (goal, req) = (&setup.goal, setup.req);
    if let Some(j) = judge::gate(&gathered.evidence(goal, AgentRun::NotStarted, &NO_ACTS)) {
        return Ok(Err(j));
    }
    if let Some(reason) = &req.no_model {
        return Ok(Err(Judgement::no_action(reason.clone())));
    }
    // The same goal on the same subject that failed twice recently goes to a human instead.
    let memory = Memory::open(&setup.cfg.state_dir);
    let history = memory.recent(&req.signal.subject, 5)?;
    if memory.should_escalate(&req.signal.subject, &setup.action_key(), ESCALATION_WINDOW)? {
        return Ok(Err(Judgement::escalated(format!(
            "`{}` on `{}` already failed twice in the last {} h: a human must look",
            goal.name,
            req.signal.subject,
            ESCALATION_WINDOW.as_secs() / 3600
        ))));
    }
    Ok(Ok(history))
}

/// Stage `prompt`: the boundary, the prompt and the agent's spec, each written to the record
/// before claude starts; with claude's own home for this run (removed when dropped).
pub(super) fn render(
    setup: &Setup<'_>,
    rec: &mut Recorder<'_>,
    ledger: &Ledger,
    gathered: &Gathered,
    history: &[Attempt],
    change: Option<&super::change::ChangeRun>,
) -> Result<(Prepared, TempDir), RunError> {
    // A change run's agent works in its worktree, never the live checkout.
    let workspace = change.map_or_else(|| setup.cfg.workspace.clone(), |c| c.worktree.path.clone());
    let (cfg, goal, req) = (setup.cfg, &setup.goal, setup.req);
    rec.stage("prompt")?;
    let home = tempfile::Builder::new()
        .prefix("claude-home-")
        .tempdir_in(ledger.tmp_dir())
        .map_err(RunError::Home)?;
    let prepared = prepare(
        cfg,
        &setup.defs,
        goal,
        req,
        &setup.redactor,
        &gathered.context,
        Some(&gathered.host),
        &gathered.before.all(),
        history,
        home.path(),
        &rec.run.path,
        &workspace,
        change,
    )?;
    rec.run.write_json(
        boundary::HOOK_CONTEXT_FILE,
        &HookContext {
            state_dir: cfg.state_dir.clone(),
            run_id: rec.run.id.clone(),
            goal: goal.name.clone(),
            subject: req.signal.subject.clone(),
            signal_fingerprint: Some(req.signal.fingerprint.clone()),
            state_fingerprint: gathered.before.fingerprint(),
            checks: goal.checks.post.clone(),
            known_checks: setup
                .defs
                .checks
                .checks
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            action_ttl_secs: ACTION_TTL.as_secs(),
            approval: goal.approval,
            approval_timeout_secs: goal.approval_timeout_secs,
        },
    )?;
    rec.run.write_text("prompt.md", &prepared.prompt)?;
    // What this run's prompt saw, for the subject's next run to compare with.
    let host = &gathered.host;
    let last = context::last_run::next(
        &req.signal.subject,
        &rec.run.id,
        host.snapshot.as_ref(),
        host.last.as_ref(),
        &gathered.context,
    );
    context::last_run::LastRuns::new(&cfg.state_dir).save(&last)?;
    let mut argv_record = vec![prepared.spec.claude_bin.display().to_string()];
    argv_record.extend(agent::argv(&prepared.spec));
    rec.run.write_json("claude-argv.json", &argv_record)?;
    rec.run.write_json("agent-spec.json", &prepared.spec)?;
    Ok((prepared, home))
}

/// Stage `agent`: claude runs, its transcript recorded (redacted) line by line, and its process
/// tree recorded as soon as it exists.
pub(super) async fn run_agent(
    setup: &Setup<'_>,
    rec: &mut Recorder<'_>,
    prepared: &Prepared,
    observer: &mut dyn Observer,
    cancel: &Cancel,
) -> Result<AgentOutcome, RunError> {
    rec.stage("agent")?;
    let redactor = &setup.redactor;
    let mut transcript = rec.run.appender("transcript.jsonl")?;
    let mut write_line = |line: &str| -> std::io::Result<()> {
        transcript
            .line(&redactor.redact(line))
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let mut meta = rec.meta.clone();
    let run_dir = rec.run.clone();
    // Recorded before claude's output is read: if steward dies now, the next start knows what
    // to end.
    let mut record_tree = |tree: &agent::process::Tree| -> std::io::Result<()> {
        meta.agent = Some(tree.clone());
        run_dir
            .write_json("run.json", &meta)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    let control = agent::Control {
        cancel: cancel.clone(),
        spawned: &mut record_tree,
    };
    let outcome = agent::run_controlled(&prepared.spec, &mut write_line, observer, control).await?;
    rec.meta.agent = meta.agent;
    transcript.sync()?;
    Ok(outcome)
}

/// The checks after the agent, by phase.
pub(super) struct ChecksAfter {
    invariants: Vec<CheckResult>,
    post: Vec<CheckResult>,
}

/// Stage `validation`: steward's own checks decide, not the model's claim. `Ok(Err(stop))`:
/// stopped.
pub(super) async fn post_checks(
    setup: &Setup<'_>,
    rec: &mut Recorder<'_>,
    cancel: &Cancel,
) -> Result<Result<ChecksAfter, Request>, RunError> {
    let (defs, goal, env, redactor) = (&setup.defs, &setup.goal, &setup.env, &setup.redactor);
    rec.stage("validation")?;
    let validated = cancel
        .or_stop(async {
            tokio::join!(
                phase_results(defs, goal, Phase::Invariant, env, redactor),
                phase_results(defs, goal, Phase::Post, env, redactor),
            )
        })
        .await;
    let (invariants, post) = match validated {
        Ok(v) => v,
        Err(stop) => return Ok(Err(stop)),
    };
    let (invariants, post) = (invariants?, post?);
    rec.run.write_json(
        "checks-after.json",
        &serde_json::json!({"invariants": invariants, "post": post}),
    )?;
    Ok(Ok(ChecksAfter { invariants, post }))
}

/// What the judge decided, with the audit it read and what the agent's calls did.
pub(super) struct Judged {
    pub(super) judgement: Judgement,
    pub(super) audit: Vec<AuditEntry>,
    pub(super) acts: Acts,
}

/// The judge: the checks before and after, the agent's verdict and the audit of its calls. A
/// tool that ran without steward's hook fails the run; a hook that failed escalates it.
pub(super) fn judge_run(
    setup: &Setup<'_>,
    rec: &Recorder<'_>,
    gathered: &Gathered,
    after: &ChecksAfter,
    agent: &AgentOutcome,
) -> Result<Judged, RunError> {
    let agent_run = match (&agent.failure, &agent.verdict) {
        (Some(f), _) => AgentRun::Failed(f),
        (None, Some(v)) => AgentRun::Verdict(v),
        (None, None) => AgentRun::Failed(&NO_VERDICT),
    };
    // Calls claude refused before the hook join the audit first: they count as denied.
    let unhooked = boundary::audit_unhooked_calls(&rec.run.path)?;
    let audit = boundary::read_audit(&rec.run.path)?;
    let acts = Acts::from_audit(&audit);
    let mut judgement = judge::judge(&Evidence {
        invariants_after: &after.invariants,
        post: &after.post,
        ..gathered.evidence(&setup.goal, agent_run, &acts)
    });
    if unhooked.ran > 0 {
        // A tool ran without steward's hook deciding: whatever the checks say, this run was not
        // inside the boundary, and nothing it reports can be trusted.
        judgement = Judgement {
            outcome: Outcome::Failed,
            exit: ExitKind::AgentFailed,
            reason: format!(
                "boundary breach: {} tool call(s) ran without a decision of steward's policy hook (see the audit log)",
                unhooked.ran
            ),
            ..judgement
        };
    }
    let judgement = escalate_hook_errors(judgement, count_hook_errors(&audit));
    Ok(Judged {
        judgement,
        audit,
        acts,
    })
}

/// Only what the agent did and the checks judged counts as an attempt (not an API outage).
/// Memory is advice: a failure to write it is logged, and the run's record stands.
pub(super) fn remember(setup: &Setup<'_>, agent: &AgentOutcome, judgement: &Judgement) {
    if agent.failure.is_some() {
        return;
    }
    let memory = Memory::open(&setup.cfg.state_dir);
    let subject = &setup.req.signal.subject;
    if let Err(e) = memory.record_now(subject, &setup.action_key(), judgement.outcome) {
        tracing::warn!("could not record the outcome in effectiveness memory: {e}");
    }
}

/// The stop request an agent outcome reports, if claude was cancelled.
pub(super) fn agent_stopped(agent: &AgentOutcome) -> Option<Request> {
    match agent.failure {
        Some(AgentFailure::Cancelled { signal, killed }) => Some(Request {
            signal,
            urgent: killed,
        }),
        _ => None,
    }
}

static NO_VERDICT: AgentFailure = AgentFailure::NoVerdict {
    message: String::new(),
};

/// Every call the hook failed on was blocked, so the boundary held; but a run steward could not
/// fully police is for a human to look at, not `ok` or `fixed`.
fn escalate_hook_errors(judgement: Judgement, hook_errors: usize) -> Judgement {
    if hook_errors == 0 || !matches!(judgement.outcome, Outcome::Ok | Outcome::Fixed) {
        return judgement;
    }
    Judgement::escalated(format!(
        "steward's policy hook failed on {hook_errors} call(s) (each was blocked; see the audit \
         log); the agent reported: {}",
        judgement.reason
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(outcome: Outcome) -> Judgement {
        Judgement {
            outcome,
            ..Judgement::escalated("the agent's reason".to_string())
        }
    }

    #[test]
    fn a_failed_hook_keeps_a_run_from_ok_or_fixed() {
        for outcome in [Outcome::Ok, Outcome::Fixed] {
            let j = escalate_hook_errors(judged(outcome), 2);
            assert_eq!(j.outcome, Outcome::Escalated);
            assert_eq!(j.exit, ExitKind::NeedsHuman);
            assert!(j.reason.contains("failed on 2 call(s)"), "{}", j.reason);
        }
        assert_eq!(
            escalate_hook_errors(judged(Outcome::Ok), 0).outcome,
            Outcome::Ok
        );
        // A worse outcome stands as it is.
        assert_eq!(
            escalate_hook_errors(judged(Outcome::Failed), 1).outcome,
            Outcome::Failed
        );
    }
}
