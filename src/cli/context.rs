//! `steward context`: what a run would see, the probes and their (redacted) output.

use clap::Args;

use super::output::print_json;
use super::{Cli, CliError, usage};
use crate::base::outcome::ExitKind;
use crate::defs::probe;
use crate::engine::run::{self, Definitions};

#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Only these probes (name, `tag:NAME` or `*`); default all.
    #[arg(long = "probe", value_name = "NAME")]
    pub probes: Vec<String>,
}

pub(super) async fn run(cli: &Cli, args: &ContextArgs) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let defs = Definitions::load(cfg)?;
    let names = if args.probes.is_empty() {
        vec!["*".to_string()]
    } else {
        args.probes.clone()
    };
    let selected = defs
        .catalog
        .select(&names)
        .map_err(|e| unknown_probe(&defs, e))?;
    let results = probe::gather(&selected, &run::redactor(cfg), &cfg.claude.path).await;
    if cli.json {
        print_json(&results)?;
    } else {
        results.iter().try_for_each(print_probe)?;
    }
    Ok(ExitKind::Ok)
}

/// One probe's header line, its detail and its output, indented.
fn print_probe(r: &probe::ProbeResult) -> Result<(), CliError> {
    crate::outln!(
        "== {} [{}] {} ms{}",
        r.name,
        serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.duration_ms,
        if r.truncated { " (truncated)" } else { "" }
    )?;
    if let Some(d) = &r.detail {
        crate::outln!("   {d}")?;
    }
    let text = match &r.output {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    for line in text.lines() {
        crate::outln!("   {line}")?;
    }
    Ok(())
}

/// An unknown probe, with the context files that failed to load: the probe may be defined in
/// one of them, and "unknown" alone would send the operator looking in the wrong place.
fn unknown_probe(defs: &Definitions, e: probe::ProbeError) -> CliError {
    let broken: Vec<&str> = defs
        .errors
        .iter()
        .filter(|b| b.kind == "context")
        .map(|b| b.error.as_str())
        .collect();
    if broken.is_empty() {
        return usage(e);
    }
    usage(anyhow::anyhow!(
        "{e}; it may be defined in a context file that failed to load: {}",
        broken.join("; ")
    ))
}
