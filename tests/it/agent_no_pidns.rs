//! The runner's fallback without a PID namespace: process groups plus a walk of the process tree.
//! The switch is the spec's `pid_namespace`, so these run beside the namespaced ones.

use crate::common;

use std::time::Duration;

#[tokio::test]
async fn fallback_kills_stubborn_process_tree() {
    common::stubborn_process_is_killed(Duration::from_millis(700), false).await;
}

#[tokio::test]
async fn fallback_timeout_with_real_claude_leaves_nothing_behind() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    common::real_claude_timeout_leaves_nothing_behind(claude, false).await;
}

#[tokio::test]
async fn fallback_cancelled_run_leaves_nothing_behind() {
    common::cancelled_run_leaves_nothing_behind(false).await;
}
