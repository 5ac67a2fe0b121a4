//! The real `steward hook pre-tool-use` process against hostile input: every answer is a deny
//! (a decision JSON, or exit 2 with the reason), never a crash that claude would read as "no
//! opinion", and every call leaves its line in the run's audit log.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use steward::defs::policy::GoalPolicy;
use steward::defs::policy::Policy;

fn run_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let gp = GoalPolicy {
        allow: s(&["uptime", "true", "df -h [PATH]"]),
        approve: vec![],
        deny: vec![],
        read: s(&["{workspace}"]),
        write: vec![],
    };
    Policy::build("hostile", &gp, &ws)
        .unwrap()
        .to_file(&ws.join("policy.json"))
        .unwrap();
    (dir, ws)
}

struct Answer {
    code: i32,
    decision: String,
    reason: String,
}

fn hook(run_dir: &Path, stdin: &[u8]) -> Answer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.args(["hook", "pre-tool-use", "--run-dir"])
        .arg(run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin_pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // The hook may stop reading at its size cap: write from a thread and ignore EPIPE.
    let writer = std::thread::spawn(move || {
        let _ = stdin_pipe.write_all(&input);
    });
    // Claude gives its hook 30 s; a hook past that has failed whatever it would have said.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if wait
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_err()
        {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    writer.join().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if code == 0 {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let h = &v["hookSpecificOutput"];
        Answer {
            code,
            decision: h["permissionDecision"].as_str().unwrap().to_string(),
            reason: h["permissionDecisionReason"].as_str().unwrap().to_string(),
        }
    } else {
        Answer {
            code,
            decision: "blocked".to_string(),
            reason: stderr,
        }
    }
}

fn bash(command: &str) -> Vec<u8> {
    call("Bash", json!({ "command": command }))
}

fn call(tool: &str, input: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "s-1",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": input,
        "tool_use_id": "toolu_1",
    }))
    .unwrap()
}

fn audit_lines(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

include!("../data/hostile_table.rs");

/// Each hostile input is denied for the bound it crosses, by a hook that answered.
#[test]
fn hostile_commands_are_denied_with_the_bound() {
    let (_d, dir) = run_dir();
    for (i, (what, tool, input, why)) in hostile_cases().into_iter().enumerate() {
        let a = hook(&dir, &call(tool, input));
        assert!(
            a.code == 0 || a.code == 2,
            "{what}: exit {} ({})",
            a.code,
            a.reason
        );
        assert!(
            a.decision == "deny" || a.decision == "blocked",
            "{what}: {} {}",
            a.decision,
            a.reason
        );
        assert!(a.reason.contains(why), "{what}: {}", a.reason);
        assert_eq!(audit_lines(&dir).len(), i + 1, "{what}: no audit line");
    }
}

/// A tool call over the input cap is blocked before it is parsed, and recorded.
#[test]
fn oversized_input_is_blocked_unread() {
    let (_d, dir) = run_dir();
    let big = call(
        "Write",
        json!({"file_path": dir.join("x"), "content": "a".repeat(9 * 1024 * 1024)}),
    );
    let a = hook(&dir, &big);
    assert_eq!(a.code, 2, "{}", a.reason);
    assert!(a.reason.contains("larger than"), "{}", a.reason);
    let audit = audit_lines(&dir);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["decision"], "error");
}

/// Ordinary commands are unaffected by the bounds.
#[test]
fn ordinary_commands_still_pass() {
    let (_d, dir) = run_dir();
    let df = format!("df -h {}", dir.display());
    for c in ["uptime", df.as_str(), "uptime && true | true"] {
        let a = hook(&dir, &bash(c));
        assert_eq!(
            (a.code, a.decision.as_str()),
            (0, "allow"),
            "{c}: {}",
            a.reason
        );
    }
}

use crate::common;

/// The case end to end: the model sends 7.5 KB of nested braces. Before, the hook died
/// of a stack overflow (exit 134), Claude's own rules refused the call, and the audit log said
/// "refused by Claude Code before steward's hook". Now steward's hook denies it, for the bound.
#[test]
fn a_hostile_command_in_a_real_run_is_denied_by_steward() {
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let nested = format!("{}uptime{}", "{ ".repeat(1200), " ; }".repeat(1200));
    let scenario = format!(
        "[[turn]]\ntext = \"Checking.\"\n[[turn.tool_use]]\nname = \"Bash\"\nid = \"toolu_nested\"\n\
         input = {{ command = {}, description = \"nested\" }}\n\n[[turn]]\nverdict = {{ status = \"ok\", \
         summary = \"done\", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}\n",
        toml::Value::String(nested)
    );
    let model = common::cli::ScriptedModel::start(tmp.path(), &scenario);
    let env = common::cli::Env::new(&claude, &model.url, "");
    let out = env
        .steward()
        .args(["--json", "run", "health-check", "--force-model"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let id = report["id"].as_str().unwrap();
    let audit = audit_lines(&env.run_dir(id));
    let entry = audit
        .iter()
        .find(|e| e["tool_use_id"] == "toolu_nested")
        .unwrap_or_else(|| panic!("no audit line for the call: {audit:#?}"));
    assert_eq!(entry["decision"], "deny", "{entry:#}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(reason.contains("nested 1200 deep"), "{reason}");
    assert_eq!(report["hook_errors"], 0, "{report:#}");
}
