//! How much the router remembers. Each window of [`RouterState`] that is keyed by subject or
//! fingerprint holds at most `[router] max_subjects` keys, and each subject at most as many
//! failure times as the highest flapping count needs, so `router.json` (rewritten whole, at most
//! once a second) is bounded by the configuration, whatever the history of signals was.
//!
//! A window that is full forgets its oldest keys (by their latest time, ties by key: the same
//! keys whatever order they came in) before it takes a new one: a sixteenth of the cap at once,
//! so the linear pass that finds them is paid once per `max_subjects / 16` new keys. What
//! forgetting means, per window:
//!
//! - `failures` (flapping): the subject's earlier failures no longer count, so it must fail the
//!   threshold's count of times anew before it is flapping: it may run once more than it would
//!   have (still under the rate limits and the budget, which are not keyed by subject);
//! - `firing`: the alert's next repeat notification counts as a new failure of its subject, so
//!   flapping may come sooner for it;
//! - `last_run` (cooldown): a repeat of the (goal, subject) may run again before its cooldown is
//!   over (rate limits and budget still apply);
//! - `escalated`: the operator may be told about the subject's flapping once more.
//!
//! Keys are short: a subject, goal or fingerprint is its own key when it is at most 64 bytes
//! that JSON writes as they are; any other is `sha256:` and 16 hex digits of it (see [`key`]).
//! So an entry of `router.json` is at most about 100 bytes (plus 21 per failure time), and the
//! whole file at most `max_subjects` × (4 windows' entries): a few MB at the default 10,000,
//! whatever the subjects look like.
//!
//! Each forgetting is a `router_forgot` event (window, how many, the cap) and a warning in the
//! log. The rate-limit windows (`enqueued`, `rate_told`, `budget_told`) are keyed by source and
//! scope, and bounded by the rate limits themselves.

use std::borrow::Cow;

use super::RouterState;

/// The longest subject, goal or fingerprint that is its own key in the state.
pub(super) const KEY_MAX: usize = 64;

/// The key of a subject, goal or fingerprint in the state: itself when it is at most
/// [`KEY_MAX`] bytes that JSON writes as they are (no `"`, `\` or control character) and does
/// not look like a digest key; else `sha256:` and the first 16 hex digits of its SHA-256.
/// Distinct values keep distinct keys (64 bits of hash), and ordinary ones stay readable.
pub(super) fn key(s: &str) -> Cow<'_, str> {
    let plain = s.len() <= KEY_MAX
        && !s.starts_with("sha256:")
        && !s.chars().any(|c| c == '"' || c == '\\' || c.is_control());
    if plain {
        Cow::Borrowed(s)
    } else {
        use sha2::{Digest, Sha256};
        Cow::Owned(format!(
            "sha256:{}",
            hex::encode(&Sha256::digest(s.as_bytes())[..8])
        ))
    }
}

/// A window of the router's state keyed by subject or fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum StateWindow {
    Failures,
    Firing,
    LastRun,
    Escalated,
}

impl StateWindow {
    pub(super) const ALL: [StateWindow; 4] = [
        StateWindow::Failures,
        StateWindow::Firing,
        StateWindow::LastRun,
        StateWindow::Escalated,
    ];

    /// Its key in `router.json`.
    pub(super) fn name(self) -> &'static str {
        match self {
            StateWindow::Failures => "failures",
            StateWindow::Firing => "firing",
            StateWindow::LastRun => "last_run",
            StateWindow::Escalated => "escalated",
        }
    }
}

/// How many keys a full window forgets at once.
fn slack(cap: usize) -> usize {
    (cap / 16).max(1)
}

/// The `n` oldest of `aged`, by time and then key.
fn oldest<K: Ord + Copy>(aged: impl Iterator<Item = (i64, K)>, n: usize) -> Vec<K> {
    if n == 0 {
        return Vec::new();
    }
    let mut all: Vec<(i64, K)> = aged.collect();
    if n < all.len() {
        all.select_nth_unstable(n - 1);
        all.truncate(n);
    }
    all.into_iter().map(|(_, k)| k).collect()
}

impl RouterState {
    fn len_of(&self, window: StateWindow) -> usize {
        match window {
            StateWindow::Failures => self.failures.len(),
            StateWindow::Firing => self.firing.len(),
            StateWindow::LastRun => self.last_run.values().map(|g| g.len()).sum(),
            StateWindow::Escalated => self.escalated.len(),
        }
    }

    /// Before a new key goes into a full `window`: forgets its oldest keys so that it has room.
    /// Returns how many were forgotten.
    pub(super) fn make_room(&mut self, window: StateWindow, cap: usize) -> usize {
        let len = self.len_of(window);
        if len < cap {
            return 0;
        }
        self.forget(window, len - cap.saturating_sub(slack(cap)))
    }

    /// Fits every window into `cap` keys and every subject's failures into `times` (a state
    /// written under a larger configuration); returns what was forgotten per window.
    pub(super) fn fit(&mut self, cap: usize, times: usize) -> Vec<(StateWindow, usize)> {
        for v in self.failures.values_mut() {
            keep_latest(v, times);
        }
        StateWindow::ALL
            .into_iter()
            .filter_map(|w| {
                let over = self.len_of(w).saturating_sub(cap);
                (over > 0).then(|| (w, self.forget(w, over)))
            })
            .collect()
    }

    fn forget(&mut self, window: StateWindow, n: usize) -> usize {
        match window {
            StateWindow::Failures => {
                let aged = self
                    .failures
                    .iter()
                    .map(|(k, v)| (v.iter().copied().max().unwrap_or(i64::MIN), k));
                let keys: Vec<String> = oldest(aged, n).into_iter().cloned().collect();
                for k in &keys {
                    self.failures.remove(k);
                }
                keys.len()
            }
            StateWindow::Firing => forget_in(&mut self.firing, n),
            StateWindow::Escalated => forget_in(&mut self.escalated, n),
            StateWindow::LastRun => {
                let aged = self
                    .last_run
                    .iter()
                    .flat_map(|(g, subjects)| subjects.iter().map(move |(s, &t)| (t, (g, s))));
                let keys: Vec<(String, String)> = oldest(aged, n)
                    .into_iter()
                    .map(|(g, s)| (g.clone(), s.clone()))
                    .collect();
                for (g, s) in &keys {
                    if let Some(subjects) = self.last_run.get_mut(g) {
                        subjects.remove(s);
                        if subjects.is_empty() {
                            self.last_run.remove(g);
                        }
                    }
                }
                keys.len()
            }
        }
    }
}

fn forget_in(map: &mut std::collections::BTreeMap<String, i64>, n: usize) -> usize {
    let keys: Vec<String> = oldest(map.iter().map(|(k, &t)| (t, k)), n)
        .into_iter()
        .cloned()
        .collect();
    for k in &keys {
        map.remove(k);
    }
    keys.len()
}

/// Keeps the `n` latest times of a subject's failures. The flapping decision stays exact as
/// long as `n` is at least every flapping count: a window holds `count` failures exactly when
/// the `count`-th latest is inside it.
pub(super) fn keep_latest(times: &mut Vec<i64>, n: usize) {
    if times.len() > n {
        times.sort_unstable();
        times.drain(..times.len() - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(firing: &[(&str, i64)]) -> RouterState {
        RouterState {
            firing: firing.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
            ..RouterState::default()
        }
    }

    #[test]
    fn the_oldest_are_forgotten_first_ties_by_key() {
        let mut s = state_with(&[("d", 5), ("c", 1), ("b", 1), ("a", 9), ("e", 3)]);
        assert_eq!(s.forget(StateWindow::Firing, 3), 3);
        let left: Vec<&str> = s.firing.keys().map(String::as_str).collect();
        assert_eq!(left, ["a", "d"]);
    }

    #[test]
    fn a_full_window_forgets_a_sixteenth_once_for_many_new_keys() {
        let mut s = RouterState::default();
        let cap = 64;
        let mut forgotten = 0;
        for i in 0..1000i64 {
            forgotten += s.make_room(StateWindow::Firing, cap);
            s.firing.insert(format!("fp{i:04}"), i);
            assert!(s.firing.len() <= cap);
        }
        assert_eq!(forgotten + s.firing.len(), 1000);
        // The newest are the ones remembered.
        assert!(s.firing.contains_key("fp0999"));
        assert!(!s.firing.contains_key("fp0000"));
        let oldest_kept = s.firing.values().min().copied().unwrap();
        assert_eq!(oldest_kept, 1000 - s.firing.len() as i64);
    }

    #[test]
    fn cooldowns_are_counted_over_every_goal() {
        let mut s = RouterState::default();
        for (g, subj, t) in [("a", "x", 1), ("a", "y", 4), ("b", "x", 2), ("b", "z", 3)] {
            s.last_run
                .entry(g.to_string())
                .or_default()
                .insert(subj.to_string(), t);
        }
        let forgotten = s.fit(2, 5);
        assert_eq!(forgotten, vec![(StateWindow::LastRun, 2)]);
        assert_eq!(s.last_run["a"].keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(s.last_run["b"].keys().collect::<Vec<_>>(), ["z"]);
        // A goal with no subject left goes.
        s.fit(1, 5);
        assert!(!s.last_run.contains_key("b"));
    }

    #[test]
    fn long_or_escaped_values_are_keyed_by_their_hash() {
        assert_eq!(key("DiskFull/host1:9100"), "DiskFull/host1:9100");
        assert_eq!(key("nginx.service"), "nginx.service");
        let plain = "é".repeat(32);
        assert_eq!(key(&plain), plain.as_str());
        for odd in [
            "a".repeat(65),
            "quote\"d".to_string(),
            "back\\slash".to_string(),
            "new\nline".to_string(),
            "sha256:0123456789abcdef".to_string(),
        ] {
            let k = key(&odd);
            assert!(k.starts_with("sha256:") && k.len() == 23, "{odd:?}: {k}");
            assert_ne!(k, odd.as_str());
        }
        assert_ne!(key(&"a".repeat(65)), key(&"a".repeat(66)));
        assert_eq!(key(&"a".repeat(65)), key(&"a".repeat(65)));
    }

    #[test]
    fn a_subject_keeps_its_latest_failures() {
        let mut v = vec![5, 1, 9, 3, 7];
        keep_latest(&mut v, 3);
        assert_eq!(v, [5, 7, 9]);
        keep_latest(&mut v, 3);
        assert_eq!(v, [5, 7, 9]);
    }
}
