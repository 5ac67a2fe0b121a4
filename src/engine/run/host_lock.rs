//! The host lock (one acting steward per host), waited for without blocking a runtime thread:
//! the ledger is only asked without waiting, and the pause between attempts is an async sleep
//! that a stop request interrupts.

use std::time::{Duration, Instant};

use crate::base::cancel::Cancel;
use crate::base::ledger::{Ledger, LedgerError, LockGuard};

use super::RunError;

/// How long the wait pauses between two attempts.
const RETRY: Duration = Duration::from_millis(100);

/// The host lock for `purpose`, waited for up to `wait`, unless a stop request comes first
/// ([`RunError::Cancelled`]). Still held by another after `wait`: the ledger's `Busy` error,
/// naming the holder.
pub(super) async fn wait(
    ledger: &Ledger,
    purpose: &str,
    wait: Duration,
    cancel: &Cancel,
) -> Result<LockGuard, RunError> {
    let deadline = Instant::now() + wait;
    loop {
        match ledger.lock(purpose, Duration::ZERO) {
            Ok(guard) => return Ok(guard),
            Err(LedgerError::Busy { .. }) if Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(stop) = cancel.or_stop(tokio::time::sleep(RETRY)).await {
            return Err(RunError::Cancelled {
                signal: stop.signal,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run waiting for the host lock leaves its runtime thread free: on a single-thread
    /// runtime the task that releases the lock runs while the wait goes on.
    #[test]
    fn the_wait_leaves_the_runtime_free() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let held = ledger.lock("another run", Duration::ZERO).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (got, waited) = rt.block_on(async {
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                drop(held);
            });
            let started = Instant::now();
            let got = wait(&ledger, "goal g", Duration::from_secs(10), &Cancel::never()).await;
            release.await.unwrap();
            (got, started.elapsed())
        });
        assert!(got.is_ok(), "{:?}", got.err());
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    }

    /// Still held after the wait: the ledger's `Busy`, naming the holder.
    #[test]
    fn a_lock_held_past_the_wait_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let _held = ledger.lock("another run", Duration::ZERO).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let err = rt
            .block_on(wait(
                &ledger,
                "goal g",
                Duration::from_millis(250),
                &Cancel::never(),
            ))
            .err()
            .unwrap();
        assert!(err.to_string().contains("another run"), "{err}");
    }
}
