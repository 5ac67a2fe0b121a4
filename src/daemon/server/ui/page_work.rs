//! What the page started and the daemon must not drop when it stops: an approved action being
//! executed, an approved change being applied. Each holds a share of [`PageWork`] while it runs;
//! a stopping daemon waits for them like for the current run: `grace` to finish, then a change
//! apply is asked to stop (it rolls back, as at Ctrl-C on `steward changes approve`), then the
//! kill grace to record that. The daemon exits only when they are done or those waits are over,
//! and says which.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::base::cancel::{Cancel, Canceller, StopSignal, pair};

pub(in crate::daemon::server) struct PageWork {
    running: Arc<RwLock<()>>,
    canceller: Mutex<Canceller>,
    cancel: Cancel,
}

impl Default for PageWork {
    fn default() -> Self {
        let (canceller, cancel) = pair();
        PageWork {
            running: Arc::new(RwLock::new(())),
            canceller: Mutex::new(canceller),
            cancel,
        }
    }
}

impl PageWork {
    /// A share held for the life of one task.
    pub async fn enter(&self) -> OwnedRwLockReadGuard<()> {
        Arc::clone(&self.running).read_owned().await
    }

    /// What a task passes to the services that can stop (a change apply).
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Waits for every task: `grace`; then a stop is asked for (a change apply lets its step
    /// end and rolls back) and `after_stop` given; then an urgent stop (the step is killed and
    /// the change recorded `failed` for a human) and `after_stop` again. Returns what happened,
    /// for the daemon's stop record.
    pub async fn finish(&self, why: StopSignal, grace: Duration, after_stop: Duration) -> String {
        let all_done = || Arc::clone(&self.running).write_owned();
        if tokio::time::timeout(grace, all_done()).await.is_ok() {
            return "none running".into();
        }
        for (stop, ended) in [
            (
                "asked to stop after the grace",
                "they ended (a change rolls back)",
            ),
            (
                "stopped at once",
                "they ended (a change killed mid-step is failed)",
            ),
        ] {
            if let Ok(c) = self.canceller.lock() {
                c.stop(why);
            }
            if tokio::time::timeout(after_stop, all_done()).await.is_ok() {
                return format!("{stop}; {ended}");
            }
        }
        "stopped at once and still running: dropped (the next start marks an unfinished \
         change failed)"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_waits_for_the_task_then_asks_it_to_stop() {
        let work = Arc::new(PageWork::default());
        assert_eq!(
            work.finish(
                StopSignal::Terminate,
                Duration::from_millis(10),
                Duration::ZERO
            )
            .await,
            "none running"
        );
        let share = work.enter().await;
        let cancel = work.cancel().clone();
        let task = tokio::spawn(async move {
            while cancel.requested().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            drop(share);
        });
        let said = work
            .finish(
                StopSignal::Terminate,
                Duration::from_millis(50),
                Duration::from_secs(5),
            )
            .await;
        assert!(said.contains("they ended"), "{said}");
        task.await.unwrap();
    }
}
