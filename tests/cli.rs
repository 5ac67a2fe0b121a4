//! The command line as an operator meets it: config errors, exit codes, JSON output.

use assert_cmd::Command;
use predicates::prelude::*;

fn steward(dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("steward").unwrap();
    cmd.current_dir(dir)
        .env_remove("STEWARD_CONFIG")
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("xdg-state"));
    cmd
}

#[test]
fn config_show_works_without_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(dir.path())
        .args(["config", "show", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(v["source"].is_null());
    let ws = v["config"]["workspace"].as_str().unwrap();
    assert_eq!(
        std::fs::canonicalize(ws).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );
}

#[test]
fn unknown_config_key_is_a_usage_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("steward.toml"),
        "[limits]\nmax_turns = 3\nmax_turnz = 4\n",
    )
    .unwrap();
    steward(dir.path())
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("steward.toml:3:").and(predicate::str::contains("max_turnz")),
        );
}

#[test]
fn json_errors_carry_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(dir.path())
        .args(["--json", "-c", "limits.max_turns=0", "config", "show"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["exit"], "usage");
    assert!(v["error"].as_str().unwrap().contains("limits.max_turns"));
}

#[test]
fn override_applies() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(dir.path())
        .args([
            "--json",
            "-c",
            "claude.model=claude-test-1",
            "config",
            "show",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["config"]["claude"]["model"], "claude-test-1");
}

#[test]
fn unknown_goal_is_a_usage_error_and_leaves_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    steward(dir.path())
        .args(["run", "no-such-goal", "--state-dir"])
        .arg(&state)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-goal"));
    let runs = state.join("runs");
    assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none());
}

#[test]
fn bad_var_syntax_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    steward(dir.path())
        .args(["run", "health-check", "--var", "novalue"])
        .assert()
        .code(2);
}

#[test]
fn runs_list_on_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(dir.path())
        .args(["--json", "runs", "list", "--state-dir"])
        .arg(dir.path().join("state"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn corrupt_result_file_is_reported_not_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("state/runs/20260101T000000Z-x-abc123");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("result.json"), "{oops").unwrap();
    steward(dir.path())
        .args(["runs", "list", "--state-dir"])
        .arg(dir.path().join("state"))
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains("UNREADABLE").and(predicate::str::contains("result.json")),
        );
    steward(dir.path())
        .args(["runs", "show", "20260101T000000Z-x-abc123", "--state-dir"])
        .arg(dir.path().join("state"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("result.json"));
}

#[test]
fn runs_show_unknown_id_is_usage() {
    let dir = tempfile::tempdir().unwrap();
    steward(dir.path())
        .args(["runs", "show", "../../etc", "--state-dir"])
        .arg(dir.path().join("state"))
        .assert()
        .code(2);
}

/// The configuration reference in the README is a real, loadable config.
#[test]
fn the_readme_config_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```toml\nworkspace = ")
        .expect("config example in README")
        + 8;
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steward.toml");
    std::fs::write(&file, &readme[start..end]).unwrap();
    let out = steward(dir.path())
        .args(["--json", "config", "show", "--config"])
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["config"]["workspace"], "/srv/infra");
    assert_eq!(
        v["config"]["router"]["maintenance"][0]["daily"],
        "02:00-04:00"
    );
}
