//! The runner's fallback without a PID namespace: process groups plus a walk of the process tree.
//! A separate test binary, because the switch is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

#[tokio::test]
async fn fallback_kills_stubborn_process_tree() {
    steward::engine::agent::process::disable_pid_namespace();
    common::stubborn_process_is_killed(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn fallback_timeout_with_real_claude_leaves_nothing_behind() {
    steward::engine::agent::process::disable_pid_namespace();
    let Some(claude) = common::claude_bin() else {
        return;
    };
    common::real_claude_timeout_leaves_nothing_behind(claude).await;
}

#[tokio::test]
async fn fallback_cancelled_run_leaves_nothing_behind() {
    steward::engine::agent::process::disable_pid_namespace();
    common::cancelled_run_leaves_nothing_behind().await;
}
