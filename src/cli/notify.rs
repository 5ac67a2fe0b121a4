//! `steward notify test|status|flush`: send a test message now, show the outbox, and run one
//! delivery pass (for hosts without `steward serve`, from a timer).

use clap::Subcommand;

use super::output::print_json;
use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::daemon::notify::{self, DeliveryState, Message, Notice, Outbox, Outgoing};

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message now to every target (or one) and print, per target, whether it was
    /// delivered or the error; exits 1 when any failed.
    Test { target: Option<String> },
    /// The outbox: pending messages (with their attempts) and the ones given up or rate limited.
    #[command(alias = "list")]
    Status,
    /// One delivery pass now: what the record holds into the outbox, then every due message
    /// (what `steward serve` does every 2 s); exits 1 when an attempt failed.
    Flush,
}

pub(super) async fn run(cli: &Cli, cmd: &NotifyCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    match cmd {
        NotifyCommand::Test { target } => test(cli, cfg, target.as_deref()).await,
        NotifyCommand::Status => status(cli, cfg),
        NotifyCommand::Flush => flush(cli, cfg).await,
    }
}

async fn test(cli: &Cli, cfg: &Config, only: Option<&str>) -> Result<ExitKind, CliError> {
    if let Some(name) = only
        && !cfg.notify.iter().any(|t| t.name == name)
    {
        return Err(usage(notify::NotifyError::UnknownTarget(name.to_string())));
    }
    if cfg.notify.is_empty() {
        return Err(usage(anyhow::anyhow!("no [[notify]] target is configured")));
    }
    let notice = Notice {
        event: "test".into(),
        severity: "info",
        key: format!("test-{}", uuid::Uuid::new_v4().simple()),
        summary: "test message from steward notify test".into(),
        about: notify::About::Host,
        subject: None,
        command: "steward notify status".into(),
    };
    let message = Message::new(
        &notice,
        &notify::host_name(),
        cfg.serve.public_url.as_deref(),
        &Redactor::new(cfg.known_secrets()),
    );
    let mut failed = false;
    let mut results = Vec::new();
    for t in cfg
        .notify
        .iter()
        .filter(|t| only.is_none_or(|n| n == t.name))
    {
        let a = notify::send_now(cfg, t, &message).await;
        failed |= !a.ok;
        if !cli.json {
            match &a.error {
                None => crate::outln!("{}: delivered ({} ms)", t.name, a.duration_ms)?,
                Some(e) => crate::outln!("{}: FAILED: {e}", t.name)?,
            }
        }
        results.push(serde_json::json!({"target": t.name, "attempt": a}));
    }
    if cli.json {
        print_json(&results)?;
    }
    Ok(if failed {
        ExitKind::Error
    } else {
        ExitKind::Ok
    })
}

fn status(cli: &Cli, cfg: &Config) -> Result<ExitKind, CliError> {
    let outbox = Outbox::open(&cfg.state_dir).map_err(internal)?;
    let mut all: Vec<Outgoing> = Vec::new();
    for t in &cfg.notify {
        all.extend(outbox.pending(&t.name).map_err(internal)?);
        all.extend(
            outbox
                .done(&t.name)
                .map_err(internal)?
                .into_iter()
                .filter(|o| o.state != DeliveryState::Delivered),
        );
    }
    if cli.json {
        print_json(&all)?;
        return Ok(ExitKind::Ok);
    }
    if all.is_empty() {
        crate::outln!("nothing pending, nothing given up")?;
    }
    for o in &all {
        let last = o.attempts.last();
        crate::outln!(
            "{:<12} {:<12} {}  {} attempt(s){}{}",
            o.target,
            format!("{:?}", o.state).to_lowercase(),
            o.message.id,
            o.attempts.len(),
            last.and_then(|a| a.error.as_deref())
                .map(|e| format!("; last: {e}"))
                .unwrap_or_default(),
            o.reason
                .as_deref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        )?;
    }
    Ok(ExitKind::Ok)
}

async fn flush(cli: &Cli, cfg: &Config) -> Result<ExitKind, CliError> {
    let report = notify::pass(cfg, Vec::new(), true)
        .await
        .map_err(internal)?;
    let failed = report.attempts.iter().filter(|d| !d.ok).count();
    if cli.json {
        print_json(&serde_json::json!({
            "queued": report.queued,
            "delivered": report.attempts.len() - failed,
            "failed": failed,
        }))?;
    } else {
        crate::outln!(
            "queued {}, delivered {}, not delivered {}",
            report.queued,
            report.attempts.len() - failed,
            failed
        )?;
        for d in report.attempts.iter().filter(|d| !d.ok) {
            crate::outln!(
                "{} {}: {}",
                d.target,
                d.key,
                d.error.as_deref().unwrap_or("no reason recorded")
            )?;
        }
    }
    Ok(if failed > 0 {
        ExitKind::Error
    } else {
        ExitKind::Ok
    })
}
