//! `steward knowledge list|show|accept|reject`: the review of knowledge notes agents proposed.
//! `show` puts a proposal beside the notes it may duplicate; `accept` writes it as a note that
//! later runs select; `reject` records the reason. Unknown or decided proposals exit 2.

use clap::Subcommand;

use super::output::print_json;
use super::{Cli, CliError, internal, usage};
use crate::base::outcome::ExitKind;
use crate::engine::knowledge::{KnowledgeError, KnowledgeStore, Proposal, Review};
use crate::engine::run::Definitions;

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// Pending proposals, oldest first (with `--all`, then the decided ones).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One proposal, beside the existing notes it may duplicate (same slug, or ≥ 50 % of
    /// their words shared).
    Show { id: String },
    /// Accept a pending proposal: written as a note (STATE/knowledge/notes/) that later runs
    /// select by its tags.
    Accept {
        id: String,
        /// Who accepts (default: `cli:` and $SUDO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Reject a pending proposal, recording why.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        /// Who rejects (default: `cli:` and $SUDO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// `--by`, else `cli:<user>`.
fn operator_name(by: &Option<String>) -> String {
    if let Some(by) = by.as_ref().filter(|b| !b.is_empty()) {
        return by.clone();
    }
    let user = std::env::var("SUDO_USER")
        .ok()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
    format!("cli:{user}")
}

fn kind(e: KnowledgeError) -> CliError {
    if e.is_usage() { usage(e) } else { internal(e) }
}

pub(super) fn run(cli: &Cli, cmd: &KnowledgeCommand) -> Result<ExitKind, CliError> {
    let loaded = cli.config()?;
    let cfg = &loaded.config;
    let store = KnowledgeStore::open(&cfg.state_dir).map_err(kind)?;
    match cmd {
        KnowledgeCommand::List { all } => {
            let list = store.list(*all).map_err(kind)?;
            if cli.json {
                print_json(&list)?;
            } else if list.is_empty() {
                crate::outln!("no knowledge proposals")?;
            } else {
                list.iter().try_for_each(print_line)?;
            }
        }
        KnowledgeCommand::Show { id } => {
            let p = store.get(id).map_err(kind)?;
            let defs = Definitions::load(cfg)?;
            let review = Review::of(p, &defs.notes);
            if cli.json {
                print_json(&review)?;
            } else {
                print_review(&review)?;
            }
        }
        KnowledgeCommand::Accept { id, by } => {
            let p = store.accept(id, &operator_name(by)).map_err(kind)?;
            if cli.json {
                print_json(&p)?;
            } else {
                let note = p.decision.as_ref().and_then(|d| d.note.as_deref());
                crate::outln!("{} accepted: {}", p.id, note.unwrap_or("?"))?;
            }
        }
        KnowledgeCommand::Reject { id, reason, by } => {
            let p = store.reject(id, &operator_name(by), reason).map_err(kind)?;
            if cli.json {
                print_json(&p)?;
            } else {
                crate::outln!("{} rejected", p.id)?;
            }
        }
    }
    Ok(ExitKind::Ok)
}

fn print_line(p: &Proposal) -> Result<(), CliError> {
    crate::outln!(
        "{}  {:<8}  {}  [{}]  (run {}, goal {})",
        p.id,
        p.state,
        p.title,
        p.tags.join(", "),
        p.run,
        p.goal
    )
}

fn print_review(r: &Review) -> Result<(), CliError> {
    let p = &r.proposal;
    crate::outln!("proposal {}: {}", p.id, p.state)?;
    crate::outln!("  title: {}", p.title)?;
    crate::outln!("  tags:  {}", p.tags.join(", "))?;
    crate::outln!("  from:  run {} (goal {}), {}", p.run, p.goal, p.created)?;
    for t in &p.trimmed {
        crate::outln!("  trimmed: {t}")?;
    }
    if let Some(d) = &p.decision {
        crate::outln!("  decided by {} at {}", d.by, d.at)?;
        if let Some(reason) = &d.reason {
            crate::outln!("  reason: {reason}")?;
        }
        if let Some(note) = &d.note {
            crate::outln!("  note:  {note}")?;
        }
    }
    crate::outln!("\n{}\n", p.body)?;
    if r.duplicates.is_empty() {
        return crate::outln!("no existing note looks like a duplicate");
    }
    for d in &r.duplicates {
        crate::outln!(
            "--- may duplicate {} ({}, {} {:.2}): {}",
            d.name,
            d.origin,
            d.why,
            d.score,
            d.title
        )?;
        crate::outln!("  tags: {}\n\n{}\n", d.tags.join(", "), d.body)?;
    }
    Ok(())
}
