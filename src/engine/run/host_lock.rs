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
