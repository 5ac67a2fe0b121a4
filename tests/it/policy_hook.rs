//! The PreToolUse hook as Claude Code sees it: JSON in, a decision JSON or exit 2 out, and never
//! a silent pass when anything goes wrong (Claude treats hook failures as "no opinion").

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use steward::defs::policy::GoalPolicy;
use steward::defs::policy::{self, Permission, Policy};

fn policy(ws: &Path) -> Policy {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let gp = GoalPolicy {
        allow: s(&["systemctl status UNIT", "uptime"]),
        approve: s(&["systemctl restart UNIT"]),
        deny: vec![],
        read: s(&["{workspace}"]),
        write: s(&["{workspace}/out"]),
    };
    Policy::build("health-check", &gp, ws).unwrap()
}

fn input(tool: &str, tool_input: Value, cwd: &Path) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "s-1",
        "transcript_path": "/x",
        "cwd": cwd,
        "permission_mode": "dontAsk",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_1",
    }))
    .unwrap()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir_all(ws.join("out")).unwrap();
    let file = ws.join("policy.json");
    policy(&ws).to_file(&file).unwrap();
    (dir, ws, file)
}

fn decision(stdout: &str) -> (String, String) {
    let v: Value = serde_json::from_str(stdout).unwrap();
    let h = &v["hookSpecificOutput"];
    assert_eq!(h["hookEventName"], "PreToolUse");
    (
        h["permissionDecision"].as_str().unwrap().to_string(),
        h["permissionDecisionReason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn allow_deny_and_approve_answers() {
    let (_d, ws, file) = setup();
    let a = policy::hook_decision(
        &file,
        &input("Bash", json!({"command":"systemctl status nginx"}), &ws),
    );
    assert_eq!(a.exit_code, 0, "{}", a.stderr);
    assert_eq!(decision(&a.stdout).0, "allow");
    assert_eq!(a.audit.decision, "allow");
    assert_eq!(a.audit.tool, "Bash");
    assert_eq!(a.audit.session_id.as_deref(), Some("s-1"));
    assert_eq!(a.audit.tool_use_id.as_deref(), Some("toolu_1"));
    assert_eq!(a.audit.rule.as_deref(), Some("goal: systemctl status UNIT"));
    assert_eq!(a.audit.input["command"], "systemctl status nginx");

    let a = policy::hook_decision(
        &file,
        &input("Bash", json!({"command":"uptime; rm -rf /"}), &ws),
    );
    assert_eq!(a.exit_code, 0);
    let (d, reason) = decision(&a.stdout);
    assert_eq!(d, "deny");
    assert!(reason.contains("rm"), "{reason}");
    assert_eq!(a.decision.unwrap().decision, Permission::Deny);

    let a = policy::hook_decision(
        &file,
        &input("Bash", json!({"command":"systemctl restart nginx"}), &ws),
    );
    assert_eq!(a.exit_code, 0);
    let (d, reason) = decision(&a.stdout);
    assert_eq!(
        d, "deny",
        "approval-required is denied now, queued for a human"
    );
    assert!(reason.contains("queued"), "{reason}");
    let dec = a.decision.unwrap();
    assert_eq!(dec.decision, Permission::Approve);
    assert_eq!(dec.argv.unwrap(), vec!["systemctl", "restart", "nginx"]);
    assert_eq!(a.audit.decision, "approve");

    let a = policy::hook_decision(
        &file,
        &input("Read", json!({"file_path": ws.join(".env")}), &ws),
    );
    assert_eq!(decision(&a.stdout).0, "deny");
    let a = policy::hook_decision(
        &file,
        &input(
            "Write",
            json!({"file_path": ws.join("out/r.md"), "content":"x"}),
            &ws,
        ),
    );
    assert_eq!(decision(&a.stdout).0, "allow");
    let a = policy::hook_decision(&file, &input("mcp__evil__run", json!({}), &ws));
    assert_eq!(decision(&a.stdout).0, "deny");
    // The audit entry serialises to one JSON line.
    let line = serde_json::to_string(&a.audit).unwrap();
    assert!(!line.contains('\n'));
}

#[test]
fn garbage_stdin_blocks_with_exit_2() {
    let (_d, _ws, file) = setup();
    for bad in [
        &b"not json"[..],
        b"",
        b"{}",
        b"{\"tool_name\":5}",
        b"[1,2]",
        &[0xff, 0xfe, 0x00],
    ] {
        let a = policy::hook_decision(&file, bad);
        assert_eq!(a.exit_code, 2, "{:?}", String::from_utf8_lossy(bad));
        assert!(a.stdout.is_empty());
        assert!(a.stderr.contains("blocked"), "{}", a.stderr);
        assert_eq!(a.audit.decision, "error");
    }
    // A Bash call without a command string, and a non-PreToolUse event.
    let (_d2, ws, file) = setup();
    let a = policy::hook_decision(&file, &input("Bash", json!({"cmd":"uptime"}), &ws));
    assert_eq!(a.exit_code, 2);
    let mut v: Value =
        serde_json::from_slice(&input("Bash", json!({"command":"uptime"}), &ws)).unwrap();
    v["hook_event_name"] = json!("PostToolUse");
    let a = policy::hook_decision(&file, &serde_json::to_vec(&v).unwrap());
    assert_eq!(a.exit_code, 2);
}

#[test]
fn corrupt_or_missing_policy_blocks_with_exit_2() {
    let (_d, ws, file) = setup();
    let good = input("Bash", json!({"command":"uptime"}), &ws);
    assert_eq!(policy::hook_decision(&file, &good).exit_code, 0);

    std::fs::write(&file, b"{\"format\":1, \"goal\": ").unwrap();
    let a = policy::hook_decision(&file, &good);
    assert_eq!(a.exit_code, 2);
    assert!(a.stderr.contains("corrupt"), "{}", a.stderr);
    assert_eq!(a.audit.tool, "Bash");

    let a = policy::hook_decision(&ws.join("missing.json"), &good);
    assert_eq!(a.exit_code, 2);

    let mut v = serde_json::to_value(policy(&ws)).unwrap();
    v["format"] = json!(999);
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let a = policy::hook_decision(&file, &good);
    assert_eq!(a.exit_code, 2);
    assert!(a.stderr.contains("format"), "{}", a.stderr);

    // An unknown field is corruption too (deny_unknown_fields), not something to ignore.
    let mut v = serde_json::to_value(policy(&ws)).unwrap();
    v["allow_everything"] = json!(true);
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(policy::hook_decision(&file, &good).exit_code, 2);
}

#[test]
fn a_panic_blocks_with_exit_2() {
    let a = policy::fail_closed(b"{\"tool_name\":\"Bash\"}", || panic!("boom"));
    assert_eq!(a.exit_code, 2);
    assert!(a.stderr.contains("boom"), "{}", a.stderr);
    assert!(a.stdout.is_empty());
    assert_eq!(a.audit.decision, "error");
    assert_eq!(a.audit.tool, "Bash");
    let a = policy::fail_closed(b"", || Err("internal".to_string()));
    assert_eq!(a.exit_code, 2);
}

#[test]
fn policy_file_round_trips_and_loads_fast() {
    let (_d, ws, file) = setup();
    let loaded = Policy::from_file(&file).unwrap();
    assert_eq!(loaded, policy(&ws));
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        Policy::from_file(&file).unwrap();
    }
    let per = t.elapsed() / n;
    eprintln!("policy load: {per:?} per call (debug build)");
    // Generous for a debug build on a loaded machine; release is far below a millisecond.
    assert!(per.as_millis() < 20, "{per:?}");
}

#[test]
fn hook_decision_with_a_loaded_policy() {
    let (_d, ws, _file) = setup();
    let p = policy(&ws);
    let a = policy::hook_decision_with(&p, &input("StructuredOutput", json!({"status":"ok"}), &ws));
    assert_eq!(decision(&a.stdout).0, "allow");
    let a = policy::hook_decision_with(&p, &input("Grep", json!({"pattern":"x"}), &ws));
    assert_eq!(decision(&a.stdout).0, "allow");
    let a = policy::hook_decision_with(
        &p,
        &input("Grep", json!({"pattern":"x"}), Path::new("/etc")),
    );
    assert_eq!(decision(&a.stdout).0, "deny");
}
