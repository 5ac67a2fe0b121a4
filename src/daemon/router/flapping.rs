//! Flapping: failures per subject (unit failures, alerts starting to fire, failed timer and
//! operator runs) counted in the acute and chronic windows.

use time::OffsetDateTime;

use super::forget::{StateWindow, keep_latest, key};
use super::{FlapKind, Router, RouterError};
use crate::base::signal::{Signal, Source};
use crate::config::RouterConfig;

/// A subject flapping: the window it failed too often in, and how often.
pub(super) struct Flap {
    pub(super) kind: FlapKind,
    pub(super) window: crate::config::FlapWindow,
    /// Failures in the window: signals and runs.
    pub(super) count: u32,
    /// How many of them were runs that ended failed or escalated.
    pub(super) from_runs: usize,
    /// More failures may have been forgotten (see [`failure_times`]).
    pub(super) at_least: bool,
}

/// How many failure times the router keeps per subject: the highest flapping count, so that the
/// flapping decision is exact (see [`forget::keep_latest`]).
pub(super) fn failure_times(settings: &RouterConfig) -> usize {
    usize::try_from(
        settings
            .flapping_acute
            .count
            .max(settings.flapping_chronic.count),
    )
    .unwrap_or(usize::MAX)
}

impl Router {
    /// Records `s` as a failure of its subject when it is one (see the module docs): a unit
    /// that failed, or an alert or webhook signal that starts firing. A fingerprint still firing
    /// is one failure however often it is repeated; its entry is renewed at most every half
    /// flapping window, so a storm of repeats does not rewrite the state.
    pub(super) fn note_failure(&mut self, s: &Signal, t: i64) {
        let failure = match s.source {
            // A container's death, like a unit's failure, is one failure each.
            Source::OnFailure | Source::Docker => true,
            Source::Alertmanager | Source::Webhook => {
                let renew = self.flap_window() / 2;
                let fingerprint = key(&s.fingerprint);
                match self.state.firing.get_mut(fingerprint.as_ref()) {
                    Some(seen) => {
                        if *seen <= t.saturating_sub(renew) {
                            *seen = t;
                            self.state_changed = true;
                        }
                        false
                    }
                    None => {
                        self.remember(StateWindow::Firing);
                        self.state.firing.insert(fingerprint.into_owned(), t);
                        true
                    }
                }
            }
            // Drift is a standing state, reported again by every report: not a failure each time.
            Source::Timer | Source::Manual | Source::Ci | Source::Drift => false,
        };
        if failure {
            let subject = key(&s.subject);
            if !self.state.failures.contains_key(subject.as_ref()) {
                self.remember(StateWindow::Failures);
            }
            let times = self.state.failures.entry(subject.into_owned()).or_default();
            times.push(t);
            keep_latest(times, failure_times(&self.settings));
            self.state_changed = true;
        }
    }

    /// The first flapping window (acute, then chronic) in which `subject` failed at least its
    /// count of times.
    pub(super) fn flapping(
        &mut self,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Flap>, RouterError> {
        let t = now.unix_timestamp();
        self.runs.refresh(&self.ledger, now, self.flap_window())?;
        let signalled = self
            .state
            .failures
            .get(key(subject).as_ref())
            .map_or(&[][..], Vec::as_slice);
        let (acute, chronic) = (self.settings.flapping_acute, self.settings.flapping_chronic);
        let kept = failure_times(&self.settings);
        Ok([(FlapKind::Acute, acute), (FlapKind::Chronic, chronic)]
            .into_iter()
            .map(|(kind, w)| {
                let since = t.saturating_sub(i64::try_from(w.window_secs).unwrap_or(i64::MAX));
                let from_signals = signalled.iter().filter(|&&x| x > since).count();
                let from_runs = self.runs.failures_since(subject, since);
                let count = u32::try_from(from_signals + from_runs).unwrap_or(u32::MAX);
                Flap {
                    kind,
                    window: w,
                    count,
                    from_runs,
                    // Only the latest `kept` failures are remembered: there may have been more.
                    at_least: from_signals >= kept,
                }
            })
            .find(|f| f.count >= f.window.count))
    }

    /// The longest flapping window, in seconds.
    pub(super) fn flap_window(&self) -> i64 {
        i64::try_from(
            self.settings
                .flapping_acute
                .window_secs
                .max(self.settings.flapping_chronic.window_secs),
        )
        .unwrap_or(i64::MAX)
    }
}
