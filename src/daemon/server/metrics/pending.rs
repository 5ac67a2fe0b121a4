//! What waits for a human, read from the stores at scrape time: pending actions, changes and
//! knowledge proposals, each a count and the age of the oldest. The stores are bounded
//! (retention, the pending limits), so a scrape reads a bounded number of small files.

use time::OffsetDateTime;

use crate::base::ledger::Ledger;
use crate::engine::approval::{ActionState, Store};
use crate::engine::change::record::ChangeState;
use crate::engine::change::store::ChangeStore;
use crate::engine::knowledge::KnowledgeStore;

/// One kind of pending item: how many, and the oldest one's age in seconds (0 when none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Waiting {
    pub(crate) kind: &'static str,
    pub(crate) count: usize,
    pub(crate) oldest_secs: f64,
}

fn waiting(kind: &'static str, created: &[OffsetDateTime], now: OffsetDateTime) -> Waiting {
    let oldest = created
        .iter()
        .min()
        .map_or(0.0, |c| (now - *c).as_seconds_f64().max(0.0));
    Waiting {
        kind,
        count: created.len(),
        oldest_secs: oldest,
    }
}

/// The pending items of each kind; a store that cannot be read is left out (and logged), so
/// its series disappears instead of reading 0.
pub(crate) fn read(ledger: &Ledger, now: OffsetDateTime) -> Vec<Waiting> {
    let root = ledger.root();
    let mut out = Vec::new();
    match Store::open(root).and_then(|s| s.list()) {
        Ok(list) => {
            let c: Vec<_> = list
                .iter()
                .filter(|a| a.state == ActionState::Pending)
                .map(|a| a.created)
                .collect();
            out.push(waiting("action", &c, now));
        }
        Err(e) => tracing::warn!("metrics: cannot read the pending actions: {e}"),
    }
    match ChangeStore::open(root).and_then(|s| s.list()) {
        Ok(list) => {
            let c: Vec<_> = list
                .iter()
                .filter(|r| r.state == ChangeState::Pending)
                .map(|r| r.created)
                .collect();
            out.push(waiting("change", &c, now));
        }
        Err(e) => tracing::warn!("metrics: cannot read the pending changes: {e}"),
    }
    match KnowledgeStore::open(root).and_then(|s| s.list(false)) {
        Ok(list) => {
            let c: Vec<_> = list.iter().map(|p| p.created).collect();
            out.push(waiting("knowledge", &c, now));
        }
        Err(e) => tracing::warn!("metrics: cannot read the knowledge proposals: {e}"),
    }
    out
}
