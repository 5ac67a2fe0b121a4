//! `steward report --signal`: each drifted service becomes one `drift` signal through the usual
//! path — handed to `steward serve` when it runs, else routed here by the same router (dedup by
//! fingerprint, cooldowns, budget) and, when the router gives a job, run inline under the host
//! lock, like `steward trigger`.

use std::time::Duration;

use serde::Serialize;

use super::run::stoppable;
use super::{Cli, CliError, internal};
use crate::base::signal::Signal;
use crate::config::Config;
use crate::daemon::handoff::{self, Handoff};
use crate::daemon::inline::{Inline, RunOptions};
use crate::engine::agent;
use crate::engine::run::RunReport;

/// How long an inline run waits for another run holding the host lock.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// What became of one drift signal.
#[derive(Debug, Serialize)]
pub(super) struct Raised {
    pub subject: String,
    pub fingerprint: String,
    /// `daemon` (handed to `steward serve`) or `inline`.
    pub via: &'static str,
    /// The router's decision (`enqueue`, `merged`, `no_route`, `cooldown`, …).
    pub decision: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The run's id and outcome when it ran here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
}

pub(super) async fn raise(
    cli: &Cli,
    cfg: &Config,
    signals: &[Signal],
) -> Result<Vec<Raised>, CliError> {
    let mut out = Vec::new();
    for signal in signals {
        out.push(raise_one(cli, cfg, signal).await?);
    }
    Ok(out)
}

async fn raise_one(cli: &Cli, cfg: &Config, signal: &Signal) -> Result<Raised, CliError> {
    let handed = handoff::hand_to_daemon(&cfg.state_dir, signal)
        .await
        .map_err(internal)?;
    let mut raised = Raised {
        subject: signal.subject.clone(),
        fingerprint: signal.fingerprint.clone(),
        via: "daemon",
        decision: String::new(),
        reason: String::new(),
        job: None,
        run: None,
    };
    if let Handoff::Daemon {
        decision,
        reason,
        job,
    } = handed
    {
        raised.decision = decision;
        raised.reason = reason;
        raised.job = job;
        return Ok(raised);
    }
    raised.via = "inline";
    let mut terminal = agent::TerminalObserver::new();
    let mut quiet = agent::QuietObserver;
    let observer: &mut dyn agent::Observer = if cli.json { &mut quiet } else { &mut terminal };
    let opts = RunOptions {
        lock_wait: LOCK_WAIT,
        force_model: false,
    };
    let (cancel, _signals) = stoppable(false)?;
    let done = crate::daemon::inline::route_and_run(cfg, signal, opts, observer, cancel)
        .await
        .map_err(super::trigger::inline_error)?;
    let (routed, job, report) = match done {
        Inline::NotRun(routed) => (routed, None, None),
        Inline::Ran {
            routed,
            job,
            report,
        } => (routed, Some(job.id.clone()), Some(report)),
    };
    raised.decision = routed.decision.name().to_string();
    raised.reason = routed.reason.clone();
    raised.job = job;
    raised.run = report.map(|r| match &r {
        RunReport::Done(d) => serde_json::json!({"id": d.id, "outcome": d.outcome}),
        other => serde_json::json!({"exit": other.exit().as_str()}),
    });
    Ok(raised)
}
