//! Process control of the runner with the PID namespace (when the host allows it).

use crate::common;

use std::time::Duration;

#[tokio::test]
async fn stubborn_process_tree_is_killed_after_grace() {
    common::stubborn_process_is_killed(Duration::from_millis(700), true).await;
}

#[tokio::test]
async fn namespace_probe_is_consistent() {
    // Only informative: both answers are valid, but the answer must be stable.
    let first = steward::engine::agent::process::pid_namespace()
        .await
        .map(|p| p.to_path_buf());
    let second = steward::engine::agent::process::pid_namespace()
        .await
        .map(|p| p.to_path_buf());
    assert_eq!(first, second);
    eprintln!("PID namespace for claude runs: {first:?}");
}

#[tokio::test]
async fn cancelled_run_leaves_nothing_behind() {
    common::cancelled_run_leaves_nothing_behind(true).await;
}
