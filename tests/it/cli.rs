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

/// `steward config show | head -1`: the reader went away before steward wrote. Rust ignores
/// SIGPIPE, so an unhandled EPIPE was a panic (exit 101); now the output ends quietly and the
/// command keeps its own exit code.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["config", "show"][..],
        &["runs", "list"],
        &["goals", "list"],
    ] {
        let (read, write) = std::io::pipe().unwrap();
        drop(read);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("steward"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("STEWARD_CONFIG")
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("xdg-state"))
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Log lines carry no ANSI escapes when stderr is not a terminal (journald shows them raw).
#[test]
fn no_colour_escapes_off_a_terminal() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("steward"))
        .args(["-v", "serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("STEWARD_CONFIG")
        .env_remove("NO_COLOR")
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("xdg-state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listening"),
        "expected the info log line: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "ANSI escape in: {stderr:?}");
}
