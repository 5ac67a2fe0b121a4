//! `steward incidents list|show`: the container crashes `steward serve`'s Docker watch captured.

use clap::Subcommand;

use super::output::print_json;
use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::engine::incident::{Incident, IncidentError, IncidentStore};

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// The newest incidents, one line each.
    List {
        /// How many (newest first).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One incident with its log captures.
    Show { id: String },
}

pub(super) async fn run(cli: &Cli, cmd: &IncidentsCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let store = IncidentStore::new(&loaded.config.state_dir);
    match cmd {
        IncidentsCommand::List { limit } => {
            let (found, broken) = store.recent(*limit).map_err(internal)?;
            if cli.json {
                print_json(&serde_json::json!({"incidents": found, "unreadable": broken}))?;
            } else {
                found.iter().try_for_each(print_line)?;
                for b in &broken {
                    crate::outln!("unreadable: {b}")?;
                }
            }
        }
        IncidentsCommand::Show { id } => {
            let incident = store.get(id).map_err(|e| match e {
                IncidentError::Unknown(_) => usage(e),
                other => internal(other),
            })?;
            if cli.json {
                print_json(&incident)?;
            } else {
                print_incident(&incident)?;
            }
        }
    }
    Ok(ExitKind::Ok)
}

fn print_line(i: &Incident) -> Result<(), CliError> {
    crate::outln!("{}  {}  {}", i.id, rfc3339(i.died), i.summary())
}

fn print_incident(i: &Incident) -> Result<(), CliError> {
    print_line(i)?;
    crate::outln!("  image: {}  restarts: {}", i.image, i.restart_count)?;
    crate::outln!(
        "  deaths: {} in the acute window, {} in the chronic one",
        i.deaths_acute,
        i.deaths_chronic
    )?;
    if let Some(why) = &i.intent {
        crate::outln!("  stopped on purpose: {why}")?;
    }
    if !i.log_patterns.is_empty() {
        crate::outln!("  log patterns: {}", i.log_patterns.join(", "))?;
    }
    crate::outln!(
        "  captured {} ms after the event{}",
        i.capture_ms,
        i.signal
            .as_ref()
            .map(|s| format!("; signal {s} raised"))
            .unwrap_or_default()
    )?;
    crate::outln!("  logs at death:")?;
    if let Some(e) = &i.logs_error {
        crate::outln!("    (not captured: {e})")?;
    }
    for line in i.logs_at_death.lines() {
        crate::outln!("    {line}")?;
    }
    match &i.logs_after {
        Some(text) => {
            crate::outln!("  logs after:")?;
            for line in text.lines() {
                crate::outln!("    {line}")?;
            }
        }
        None => crate::outln!("  logs after: not captured yet")?,
    }
    Ok(())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
