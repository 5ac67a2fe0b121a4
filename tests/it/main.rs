//! The integration tests, one binary (`autotests = false` in Cargo.toml): one module per area,
//! `common` shared by them. One binary links the crate once instead of once per file; the price
//! is one process for all of them, so no test may change process-wide state (environment, current
//! directory, signal dispositions, global switches): what varies per test goes in its spec.

// Tests may unwrap and print (clippy.toml allows it inside #[test]; the helpers need it too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

mod agent_no_pidns;
mod agent_process;
mod agent_real_claude;
mod alert_metrics;
mod approval_wait;
mod boundary_e2e;
mod bounded_state;
mod change_apply;
mod change_run;
mod change_worktree;
mod changes;
mod ci;
mod cli;
mod container_checks;
mod context_diff;
mod contracts;
mod definitions;
mod diff_check;
mod docker_watch;
mod doctor;
mod durable;
mod edit_scope;
mod hook_hostile;
mod json_exit;
mod knowledge;
mod layers;
mod mcp_tools;
mod notify;
mod on_attention;
mod packaging;
mod phases_e2e;
mod policy_cases;
mod policy_goals;
mod policy_hook;
mod records;
mod report;
mod run_e2e;
mod scripted_server;
mod serve;
mod stop_and_crash;
mod trigger_cli;
mod units;
mod web;
mod web_runs;

/// With `autotests = false` a test file that is not a module here is never compiled: every
/// `tests/*.rs` and `tests/it/*.rs` must be one.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = std::fs::read_to_string(tests.join("it/main.rs")).unwrap();
    let rs = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".rs")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        rs(&tests),
        Vec::<String>::new(),
        "outside tests/it/, never compiled"
    );
    for name in rs(&tests.join("it")).iter().filter(|n| *n != "main") {
        assert!(
            main.contains(&format!("\nmod {name};\n")),
            "tests/it/{name}.rs is not a module"
        );
    }
}
