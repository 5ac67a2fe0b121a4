//! The run's knowledge notes (its verdict's `knowledge` array) filed as proposals for review
//! (`engine::knowledge`). Filing never fails or changes the run: what was filed, and what was not
//! and why, is written to the run's `knowledge.json` and the `knowledge_proposed` event.

use crate::base::ledger::{Ledger, RunDir};
use crate::base::redact::Redactor;
use crate::engine::agent::AgentVerdict;
use crate::engine::knowledge::{Filed, KnowledgeStore, Limits, from_verdict};

/// Files the verdict's notes; returns the ids filed.
pub(super) fn propose(
    ledger: &Ledger,
    run: &RunDir,
    goal: &str,
    verdict: Option<&AgentVerdict>,
    redactor: &Redactor,
) -> Vec<String> {
    let Some(notes) = verdict.map(|v| &v.knowledge).filter(|k| !k.is_empty()) else {
        return Vec::new();
    };
    let limits = Limits::default();
    let (proposals, mut skipped) = from_verdict(notes, &run.id, goal, redactor, &limits);
    let filed = KnowledgeStore::open(ledger.root()).and_then(|s| s.file(proposals, &limits));
    let filed = match filed {
        Ok(mut f) => {
            skipped.append(&mut f.dropped);
            Filed {
                ids: f.ids,
                dropped: skipped,
            }
        }
        Err(e) => {
            skipped.push(format!("not filed: {e}"));
            Filed {
                ids: Vec::new(),
                dropped: skipped,
            }
        }
    };
    for why in &filed.dropped {
        tracing::warn!(run = %run.id, "knowledge note not proposed: {why}");
    }
    let record = serde_json::json!({"proposed": filed.ids, "not_proposed": filed.dropped});
    if let Err(e) = run.write_json("knowledge.json", &record) {
        tracing::warn!(run = %run.id, "cannot record the knowledge proposals: {e}");
    }
    if let Err(e) = ledger.event("knowledge_proposed", Some(&run.id), record) {
        tracing::warn!(run = %run.id, "cannot log the knowledge proposals: {e}");
    }
    filed.ids
}
