//! Process control of the runner with the PID namespace (when the host allows it).

use crate::common;

use std::time::Duration;

#[tokio::test]
async fn stubborn_process_tree_is_killed_after_grace() {
    common::stubborn_process_is_killed(Duration::from_millis(700), true).await;
}

/// The probe tells the truth, and the spec's switch decides per run. When the probe offers a
/// namespace, a fake claude run with `pid_namespace` is PID 1 there and cannot see this test
/// process, and one run without it (in the same process, so no global switch) sees the host's
/// PIDs; when the probe offers none, `unshare` really cannot make one here.
#[tokio::test]
async fn namespace_probe_tells_the_truth_and_the_spec_decides() {
    let probed = steward::engine::agent::process::pid_namespace().await;
    let namespaced = pid_seen_by_claude(true).await;
    let plain = pid_seen_by_claude(false).await;
    eprintln!("PID namespace for claude runs: {probed:?}");
    assert!(plain.0 != 1 && plain.1, "without a namespace: {plain:?}");
    match probed {
        Some(_) => assert!(
            namespaced == (1, false),
            "the probe offered a namespace, but claude saw (its pid, this test visible) = {namespaced:?}"
        ),
        None => {
            assert!(
                namespaced.0 != 1 && namespaced.1,
                "no namespace, yet: {namespaced:?}"
            );
            let made = std::process::Command::new("unshare")
                .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                !made,
                "the probe offered no namespace, but unshare makes one here"
            );
        }
    }
}

/// Runs a fake claude through the runner; returns its PID as it sees it, and whether it can see
/// this test process.
async fn pid_seen_by_claude(pid_namespace: bool) -> (u32, bool) {
    let srv = common::server(common::VERDICT_TURN).await;
    let dirs = common::Dirs::new();
    let out = dirs.root.path().join("seen");
    let me = std::process::id();
    let fake = common::script(
        &dirs.root.path().join("fake-claude"),
        &format!(
            "cat >/dev/null
if [ -e /proc/{me} ]; then v=visible; else v=hidden; fi
echo \"$$ $v\" > {}",
            out.display()
        ),
    );
    let mut spec = common::spec(fake, &srv, &dirs);
    spec.pid_namespace = pid_namespace;
    common::run(&spec).await;
    let seen = std::fs::read_to_string(&out).expect("the fake claude ran");
    let (pid, visible) = seen.trim().split_once(' ').expect("pid and visibility");
    (pid.parse().expect("a pid"), visible == "visible")
}

#[tokio::test]
async fn cancelled_run_leaves_nothing_behind() {
    common::cancelled_run_leaves_nothing_behind(true).await;
}
