//! `steward report`: the host's snapshot, what changed since the last baseline, the drift of the
//! declared services, and what needs attention. Exit 0 when nothing needs attention, 1 when
//! something does (cron mails the output of a failing job); `--json` never truncates.
//! `--signal` raises each drift as a signal (see `report_signal`).

use clap::Args;

use super::{Cli, CliError, internal};
use crate::base::outcome::ExitKind;
use crate::engine::report::{self, Report, Sources};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Compare only: do not save this snapshot as the new baseline.
    #[arg(long)]
    pub no_save: bool,
    /// Baselines to keep in STATE/baseline/ (default: `report.keep`, 10).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Raise one `drift` signal per drifted service: to `steward serve` if it runs, else routed
    /// (and run) here.
    #[arg(long)]
    pub signal: bool,
}

pub(super) async fn run(cli: &Cli, args: &ReportArgs) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let keep = (!args.no_save).then(|| args.keep.unwrap_or(cfg.report.keep));
    let report = report::report(&Sources::of_host(cfg), &cfg.state_dir, keep)
        .await
        .map_err(internal)?;
    let attention = !report.needs_attention.is_empty();
    // The report first: an inline run's output follows what it is about.
    if !cli.json {
        print_text(&report)?;
    }
    let raised = if args.signal {
        let host = &report.snapshot.host;
        let signals: Vec<_> = report
            .drift
            .iter()
            .map(|d| report::drift::signal(d, host))
            .collect();
        Some(super::report_signal::raise(cli, cfg, &signals).await?)
    } else {
        None
    };
    if cli.json {
        let mut v = serde_json::to_value(&report).map_err(internal)?;
        if let Some(map) = v.as_object_mut() {
            if let Some(raised) = &raised {
                map.insert(
                    "signals".into(),
                    serde_json::to_value(raised).map_err(internal)?,
                );
            }
            let (name, code) = if attention {
                ("needs_attention", 1)
            } else {
                ("ok", 0)
            };
            map.insert("exit".into(), name.into());
            map.insert("exit_code".into(), code.into());
        }
        super::output::print_json(&v)?;
    } else {
        for r in raised.iter().flatten() {
            crate::outln!(
                "  drift signal {} ({}): {}{}: {}",
                r.subject,
                r.via,
                r.decision,
                r.job
                    .as_deref()
                    .map(|j| format!(" job {j}"))
                    .unwrap_or_default(),
                r.reason
            )?;
        }
    }
    Ok(if attention {
        ExitKind::Error
    } else {
        ExitKind::Ok
    })
}

fn print_text(r: &Report) -> Result<(), CliError> {
    let s = &r.snapshot;
    crate::outln!(
        "{}: {} containers, {} listening sockets, {} failed units, {} filesystems{}{}",
        s.host,
        s.containers.len(),
        s.sockets.len(),
        s.failed_units.len(),
        s.filesystems.len(),
        nomad(s.nomad_jobs.len()),
        s.nixos
            .as_ref()
            .map(|g| format!(", NixOS generation {}", g.number))
            .unwrap_or_default()
    )?;
    for (source, why) in &s.unavailable {
        crate::outln!("  not read: {source}: {why}")?;
    }
    for why in &r.unreadable_baselines {
        crate::outln!("  unreadable baseline (kept): {why}")?;
    }
    match &r.baseline {
        None => crate::outln!("no baseline yet: this snapshot is the first")?,
        Some(b) if r.changes.is_empty() => crate::outln!("no changes since {b}")?,
        Some(b) => {
            crate::outln!("{} change(s) since {b}:", r.changes.len())?;
            for c in &r.changes {
                let kind = serde_json::to_value(c.kind).map_err(internal)?;
                crate::outln!(
                    "  {} {} {}",
                    kind.as_str().unwrap_or("?"),
                    c.identity.kind,
                    c.identity.name
                )?;
            }
        }
    }
    print_services(r)?;
    if r.needs_attention.is_empty() {
        return crate::outln!("nothing needs attention");
    }
    crate::outln!("needs attention:")?;
    for a in &r.needs_attention {
        let who = serde_json::to_value(a.who).map_err(internal)?;
        crate::outln!(
            "  {} ({}): {}",
            a.what,
            who.as_str().unwrap_or("?"),
            a.suggestion
        )?;
    }
    Ok(())
}

fn print_services(r: &Report) -> Result<(), CliError> {
    let s = &r.services;
    if let Some(why) = &s.not_judged {
        return crate::outln!("service drift not judged: {why}");
    }
    if s.declared == 0 {
        return Ok(());
    }
    crate::outln!(
        "{} declared service(s), {} for this host, {} drifted",
        s.declared,
        s.here,
        r.drift.len()
    )?;
    for d in &r.drift {
        crate::outln!(
            "  drift {} {}: {}",
            d.kind.as_str(),
            d.service,
            d.describe()
        )?;
    }
    Ok(())
}

/// The Nomad part of the summary line: absent without Nomad.
fn nomad(jobs: usize) -> String {
    if jobs == 0 {
        String::new()
    } else {
        format!(", {jobs} Nomad jobs")
    }
}
