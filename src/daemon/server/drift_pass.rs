//! The drift pass of `[report] signal_every_secs`: `steward serve` judges the workspace's service
//! contracts against a fresh snapshot on that interval and raises one `drift` signal per
//! drifted service through the same router as every other trigger (dedup by fingerprint,
//! cooldown, flapping, budget; the bundled `service-drift` route starts the incident goal),
//! what `steward report --signal` does when an operator or cron runs it.
//!
//! One loop, so a pass never overlaps the next: the interval counts from the end of a pass.
//! Each pass is bounded by [`PASS_TIMEOUT`] and recorded as a `drift_pass` event (what it
//! raised and the router's decisions, or why it failed: never silent); a failed pass is also
//! logged at error. The daemon's stop ends the wait and abandons a pass under way (it only
//! reads; nothing is routed after the stop). Nothing is saved as a report baseline: the
//! operator's `steward report` keeps comparing with its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::shared::Shared;
use crate::base::signal::Signal;
use crate::engine::report::{self, Sources, drift};

/// The longest one pass may take (the collectors are bounded each; this bounds them together).
const PASS_TIMEOUT: Duration = Duration::from_secs(120);

/// How often an idle loop (the pass off) looks at the configuration again: a reload may turn
/// it on.
const OFF_RECHECK: Duration = Duration::from_secs(60);

/// What one pass found, before routing.
struct Found {
    declared: usize,
    here: usize,
    signals: Vec<Signal>,
}

pub(super) async fn drift_pass(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let every = shared.config().report.signal_every_secs;
        let wait = if every == 0 {
            OFF_RECHECK
        } else {
            Duration::from_secs(every)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        // Read again after the wait: a reload may have turned it off.
        if shared.config().report.signal_every_secs == 0 {
            continue;
        }
        let started = Instant::now();
        let found = tokio::select! {
            found = tokio::time::timeout(PASS_TIMEOUT, find(&shared)) => found,
            _ = stop.changed() => return,
        };
        match found {
            Ok(Ok(found)) => raise(&shared, found, started).await,
            Ok(Err(why)) => failed(&shared, &why, started),
            Err(_) => failed(
                &shared,
                &format!("the pass took longer than {} s", PASS_TIMEOUT.as_secs()),
                started,
            ),
        }
    }
}

/// The snapshot and the contracts' judgement; `Err` when drift could not be judged.
async fn find(shared: &Shared) -> Result<Found, String> {
    let cfg = shared.config();
    let snap = report::take(&Sources::of_host(&cfg)).await;
    let (services, drifted, _) = drift::judge_workspace(&cfg.workspace, &snap);
    if let Some(why) = services.not_judged {
        return Err(why);
    }
    Ok(Found {
        declared: services.declared,
        here: services.here,
        signals: drifted
            .iter()
            .map(|d| drift::signal(d, &snap.host))
            .collect(),
    })
}

/// Routes the pass's signals and records what became of each.
async fn raise(shared: &Shared, found: Found, started: Instant) {
    let subjects: Vec<String> = found.signals.iter().map(|s| s.subject.clone()).collect();
    let decisions = if found.signals.is_empty() {
        Some(Vec::new())
    } else {
        shared.submit(found.signals).await
    };
    let Some(decisions) = decisions else {
        return failed(shared, "the daemon stopped routing", started);
    };
    let raised: Vec<serde_json::Value> = subjects
        .iter()
        .zip(&decisions)
        .map(|(service, d)| serde_json::json!({"service": service, "decision": d.decision()}))
        .collect();
    let routing_failed = decisions.iter().filter(|d| d.failed()).count();
    if routing_failed > 0 {
        tracing::error!(
            failed = routing_failed,
            "drift pass: {routing_failed} drift signal(s) could not be routed"
        );
    } else {
        tracing::info!(
            declared = found.declared,
            here = found.here,
            drifted = raised.len(),
            "drift pass: {} drifted service(s) raised",
            raised.len()
        );
    }
    shared.event(
        "drift_pass",
        serde_json::json!({"ok": routing_failed == 0, "declared": found.declared,
            "here": found.here, "raised": raised, "duration_ms": millis(started)}),
    );
}

fn failed(shared: &Shared, why: &str, started: Instant) {
    tracing::error!("drift pass failed: {why}");
    shared.event(
        "drift_pass",
        serde_json::json!({"ok": false, "reason": why, "duration_ms": millis(started)}),
    );
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
