//! Failed logins are rate-limited, per peer address and for the whole daemon: a guesser from one
//! address is stopped after a few tries, many addresses together after more. Only failures
//! count; a limited request is refused before its token is compared.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures per peer address within [`WINDOW`] before that address is refused.
pub(in crate::daemon::server) const PER_PEER: usize = 5;
/// Failures from all addresses within [`WINDOW`] before every login is refused.
pub(in crate::daemon::server) const GLOBAL: usize = 30;
pub(in crate::daemon::server) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (the one with the oldest failure goes first).
const MAX_PEERS: usize = 4096;

#[derive(Debug, Default)]
struct Failures {
    peers: HashMap<IpAddr, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

/// The login rate limiter.
#[derive(Debug)]
pub(in crate::daemon::server) struct Limiter {
    failures: Mutex<Failures>,
    per_peer: usize,
    global: usize,
    window: Duration,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(PER_PEER, GLOBAL, WINDOW)
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        q.pop_front();
    }
}

/// Seconds until the oldest failure in a full queue leaves the window (at least 1).
fn retry_after(q: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    let left = q.front().map_or(window, |t| {
        window.saturating_sub(now.saturating_duration_since(*t))
    });
    left.as_secs_f64().ceil().max(1.0) as u64
}

impl Limiter {
    pub fn new(per_peer: usize, global: usize, window: Duration) -> Limiter {
        Limiter {
            failures: Mutex::new(Failures::default()),
            per_peer,
            global,
            window,
        }
    }

    /// `Err(seconds)`: `peer` may not try now; retry after that long.
    pub fn check(&self, peer: IpAddr, now: Instant) -> Result<(), u64> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut f.all, now, self.window);
        if f.all.len() >= self.global {
            return Err(retry_after(&f.all, now, self.window));
        }
        if let Some(q) = f.peers.get_mut(&peer) {
            prune(q, now, self.window);
            if q.len() >= self.per_peer {
                return Err(retry_after(q, now, self.window));
            }
        }
        Ok(())
    }

    /// Counts a failed login from `peer`.
    pub fn failed(&self, peer: IpAddr, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.all.push_back(now);
        let window = self.window;
        f.peers.retain(|_, q| {
            prune(q, now, window);
            !q.is_empty()
        });
        if f.peers.len() >= MAX_PEERS && !f.peers.contains_key(&peer) {
            let oldest = f
                .peers
                .iter()
                .min_by_key(|(_, q)| q.back().copied())
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                f.peers.remove(&k);
            }
        }
        f.peers.entry(peer).or_default().push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_limited_after_its_failures_until_the_window_passes() {
        let l = Limiter::new(3, 100, Duration::from_secs(60));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()), "try {i}");
            l.failed(a, t0);
        }
        assert_eq!(l.check(a, t0 + Duration::from_secs(10)), Err(50));
        assert_eq!(l.check(b, t0), Ok(()), "another address is not limited");
        assert_eq!(l.check(a, t0 + Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn all_peers_together_are_limited_too() {
        let l = Limiter::new(3, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..4u8 {
            let p = IpAddr::from([10, 0, 0, i]);
            l.failed(p, t0);
        }
        let fresh = IpAddr::from([10, 0, 1, 1]);
        assert_eq!(l.check(fresh, t0 + Duration::from_secs(1)), Err(59));
        assert_eq!(l.check(fresh, t0 + Duration::from_secs(61)), Ok(()));
    }
}
