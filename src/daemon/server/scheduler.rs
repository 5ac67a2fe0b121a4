//! The scheduler: fires scheduled goals as timer signals through the router.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::shared::Shared;
use crate::base::signal::Signal;
use crate::defs::schedule;

/// The longest the scheduler sleeps without looking at the wall clock again.
const SCHEDULER_MAX_SLEEP: Duration = Duration::from_secs(60);

/// Fires scheduled goals until `stop` turns true: sleeps until the earliest next fire time (UTC)
/// and routes a timer signal per goal due, through the same router as every other trigger, so
/// dedup, cooldown, budget, flapping and maintenance windows all apply. Fires missed while the
/// daemon was down are not replayed: the next fire counts from now. A reload wakes it to start
/// over with the new schedule.
pub(super) async fn scheduler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    // The last instant fired: the wall clock may lag the monotonic sleep by a little, and
    // counting from it keeps one fire time from firing twice.
    let mut last: Option<OffsetDateTime> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let entries = shared.schedule();
        let now = OffsetDateTime::now_utc();
        let from = last.map_or(now, |l| l.max(now));
        let Some((at, due)) = schedule::next_due(&entries, from) else {
            // Nothing scheduled: only a reload or the stop can change that.
            tokio::select! {
                _ = shared.rescheduled.notified() => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        // Sleeps are monotonic and fire times are wall-clock: a clock step (NTP) or a suspend
        // would skew a long sleep, so the scheduler looks at the clock again at least every
        // `SCHEDULER_MAX_SLEEP` and fires only once the wall clock reached the fire time.
        let wait = Duration::try_from(at - now)
            .unwrap_or(Duration::ZERO)
            .min(SCHEDULER_MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.rescheduled.notified() => continue,
            _ = stop.changed() => continue,
        }
        if OffsetDateTime::now_utc() < at {
            continue;
        }
        last = Some(at);
        let due: Vec<(String, String)> = due
            .into_iter()
            .map(|e| (e.goal.clone(), e.expr.clone()))
            .collect();
        let delay = random_delay(shared.config().serve.scheduler_random_delay_secs);
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => continue,
            }
        }
        let signals = due.iter().map(|(goal, _)| Signal::timer(goal)).collect();
        let decisions = shared.submit(signals).await.unwrap_or_default();
        for ((goal, expr), decision) in due.iter().zip(decisions) {
            tracing::info!(%goal, schedule = %expr, "scheduled fire");
            shared.event(
                "scheduled",
                serde_json::json!({"goal": goal, "schedule": expr,
                    "at": at.format(&time::format_description::well_known::Rfc3339).ok(),
                    "delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "decision": decision.decision()}),
            );
        }
    }
}

/// A uniformly random delay of 0..=`max_secs` seconds, in whole milliseconds.
fn random_delay(max_secs: u64) -> Duration {
    let span = u128::from(max_secs) * 1000 + 1;
    let ms = uuid::Uuid::new_v4().as_u128() % span;
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_fires_spread_over_the_random_delay() {
        assert_eq!(random_delay(0), Duration::ZERO);
        let delays: Vec<Duration> = (0..200).map(|_| random_delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        let early = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(1))
            .count();
        // 200 fair draws: both halves of the window are used.
        assert!(
            (40..=160).contains(&early),
            "{early} of 200 in the first second"
        );
    }
}
