//! The host context as prompt text, each block fenced as data (the snapshot carries names and
//! states from the systems under inspection), and the run's record of what the prompt showed of
//! each probe (`context-summary.json`: what the agent did not get whole).

use serde::Serialize;

use super::host::{Compared, HostContext};
use super::summarise::{Decision, Shown, summarised_text};
use crate::defs::goal::template::fence;
use crate::defs::service::ServiceContract;
use crate::engine::report::attention::Who;
use crate::engine::report::diff::Change;

/// The file in the run directory.
pub const RECORD_FILE: &str = "context-summary.json";

/// "What changed since this subject's last run": what it was compared with, each change on a
/// line, and what of the picture is missing.
pub fn changes_text(host: &HostContext, nonce: &str) -> String {
    let mut text = match &host.compared {
        Compared::LastRun { run } => format!("Compared with the snapshot of run {run}.\n"),
        Compared::Baseline { name } => {
            format!("This subject has no earlier run: compared with the host baseline {name}.\n")
        }
        Compared::FirstRun => {
            "First run for this subject, and no host baseline: nothing to compare with.\n".into()
        }
        Compared::NoSnapshot => "No host snapshot for this run: nothing compared.\n".into(),
    };
    let compared = !matches!(host.compared, Compared::FirstRun | Compared::NoSnapshot);
    if compared && host.changes.is_empty() {
        text.push_str("No changes.\n");
    }
    for c in &host.changes {
        text.push_str(&change_line(c));
    }
    for p in &host.problems {
        text.push_str(&format!("Missing: {p}\n"));
    }
    fence("changes", nonce, &text)
}

fn change_line(c: &Change) -> String {
    let kind = serde_json::to_value(c.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{kind}: {} {}: {} -> {}\n",
        c.identity.kind, c.identity.name, c.before, c.after
    )
}

/// "Needs attention": what the changes call for (with who can act), then what the snapshot
/// flags as it stands; empty when there is nothing.
pub fn attention_text(host: &HostContext, nonce: &str) -> String {
    let mut text = String::new();
    for a in &host.attention {
        let who = match a.who {
            Who::Agent => "agent",
            Who::Operator => "operator",
            Who::Person => "person",
        };
        text.push_str(&format!("new: {} (who can act: {who})\n", a.what));
    }
    for f in &host.standing {
        let said = host.attention.iter().any(|a| a.what == f.what);
        if !said {
            text.push_str(&format!("standing: {}\n", f.what));
        }
    }
    if text.is_empty() {
        return String::new();
    }
    fence("attention", nonce, &text)
}

/// The service's contract, fenced: the workspace's declaration of its desired state.
pub fn contract_text(contract: &ServiceContract, nonce: &str) -> String {
    let body = serde_json::to_string_pretty(contract).unwrap_or_default();
    fence(&format!("service-contract:{}", contract.name), nonce, &body)
}

/// What the run's prompt showed of its context.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub host: &'a HostContext,
    pub probes: Vec<ProbeShown>,
}

#[derive(Debug, Serialize)]
pub struct ProbeShown {
    #[serde(flatten)]
    pub decision: Decision,
    /// What the rendered prompt holds: `full` (its fenced output), `summary` (the one line) or
    /// `absent` (the goal's template shows neither).
    pub in_prompt: &'static str,
}

/// The record, read off the rendered prompt itself (a goal's own template may show every probe
/// whole, or none).
pub fn record<'a>(host: &'a HostContext, decisions: Vec<Decision>, prompt: &str) -> Record<'a> {
    let group_lines: Vec<String> = summarised_text(&decisions)
        .lines()
        .map(str::to_string)
        .collect();
    let listed = |d: &Decision| {
        let line = format!("- {} (", d.reason);
        let name = format!("`{}`", d.name);
        group_lines
            .iter()
            .any(|g| g.starts_with(&line) && g.contains(&name) && prompt.contains(g.as_str()))
    };
    let probes = decisions
        .iter()
        .map(|d| {
            let fenced = format!("source=\"probe:{}\"", d.name);
            let in_prompt = if prompt.contains(&fenced) {
                "full"
            } else if d.shown == Shown::Summary && (prompt.contains(&d.summary()) || listed(d)) {
                "summary"
            } else {
                "absent"
            };
            let d = d.clone();
            ProbeShown {
                decision: d,
                in_prompt,
            }
        })
        .collect();
    Record { host, probes }
}
