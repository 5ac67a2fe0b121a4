//! A change run's edit scope through the real `steward hook pre-tool-use` process: a compiled
//! policy file with an edit scope for a real git worktree (made by `engine::change::worktree`),
//! claude's hook JSON on stdin (`tool_name`, `tool_input.file_path`, `cwd`), and the decision and
//! the audit line of every call checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use steward::defs::change::{ChangeSpec, ProtectedPaths};
use steward::defs::policy::{GoalPolicy, Policy, STEWARD_COMMITS};
use steward::engine::change::git::ChangeGit;
use steward::engine::change::worktree::Worktree;

use crate::common::{self, require};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

struct Fixture {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    tree: PathBuf,
    run_dir: PathBuf,
}

fn spec() -> ChangeSpec {
    let v: toml::Value = toml::from_str(
        r#"edit = ["nix/**", "hosts/*.nix"]
validate = [["nix", "flake", "check", "--no-build"]]
profile = "compose""#,
    )
    .unwrap();
    ChangeSpec::from_value(&v).unwrap()
}

/// A repository `ws` with a commit, its worktree under `state/worktrees` (steward's state dir,
/// protected), steward's config `ws/steward.toml`, and a run dir holding the compiled policy.
async fn fixture() -> Option<Fixture> {
    require::tool("git")?;
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let ws = base.join("ws");
    for f in ["hosts/a.nix", "nix/mod.nix", "README.md", "steward.toml"] {
        let p = ws.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "x\n").unwrap();
    }
    common::git::stdout(&ws, &["init", "-q", "-b", "main"]);
    common::git::stdout(&ws, &["add", "-A"]);
    common::git::stdout(&ws, &["commit", "-q", "-m", "first"]);
    let state = base.join("state");
    let git = ChangeGit::new(PATH).unwrap();
    let wt = Worktree::create(&git, &ws, &state.join("worktrees"), "run-1")
        .await
        .unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let gp = GoalPolicy {
        allow: s(&["git log", "git status", "git commit -am ARG"]),
        approve: vec![],
        deny: vec![],
        read: s(&["{workspace}"]),
        write: s(&["{workspace}"]),
    };
    // The diff check's rules, as a change run builds them.
    let rules = ProtectedPaths {
        workspace: ws.clone(),
        patterns: vec!["steward.nix".into()],
        paths: vec!["nix/steward/".into()],
    };
    let run_dir = state.join("runs/run-1");
    std::fs::create_dir_all(&run_dir).unwrap();
    Policy::build("change", &gp, &ws)
        .unwrap()
        .with_edit_scope(&wt.path, &spec(), &rules, &[ws.join("steward.toml"), state])
        .unwrap()
        .to_file(&run_dir.join("policy.json"))
        .unwrap();
    Some(Fixture {
        ws,
        tree: wt.path.clone(),
        run_dir,
        _tmp: tmp,
    })
}

/// One call through the real hook process: (permissionDecision, reason).
fn hook(f: &Fixture, tool: &str, input: Value, cwd: &Path) -> (String, String) {
    let stdin = serde_json::to_vec(&json!({
        "session_id": "s-1",
        "transcript_path": "/x",
        "cwd": cwd,
        "permission_mode": "dontAsk",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": input,
        "tool_use_id": "toolu_1",
    }))
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["hook", "pre-tool-use", "--run-dir"])
        .arg(&f.run_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{tool} {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &v["hookSpecificOutput"];
    (
        h["permissionDecision"].as_str().unwrap().to_string(),
        h["permissionDecisionReason"].as_str().unwrap().to_string(),
    )
}

fn audit(f: &Fixture) -> Vec<Value> {
    std::fs::read_to_string(f.run_dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn file_tools_write_only_the_edit_globs_inside_the_worktree() {
    let Some(f) = fixture().await else { return };
    let t = &f.tree;
    let path = |p: PathBuf| json!({ "file_path": p });
    // (tool, input, allowed, what the reason says)
    let cases: Vec<(&str, Value, bool, String)> = vec![
        ("Read", path(t.join("README.md")), true, "Read on".into()),
        (
            "Edit",
            path(t.join("hosts/a.nix")),
            true,
            "inside the change's edit globs".into(),
        ),
        (
            "Write",
            path(t.join("nix/svc/new/web.nix")),
            true,
            "inside the change's edit globs".into(),
        ),
        (
            "Edit",
            path(t.join("README.md")),
            false,
            "`README.md` is outside the change's edit globs (nix/**, hosts/*.nix)".into(),
        ),
        (
            "Write",
            path(t.join(".claude/settings.json")),
            false,
            "protected: .claude".into(),
        ),
        (
            "Write",
            path(t.join(".git")),
            false,
            "protected: .git".into(),
        ),
        (
            "Write",
            path(t.join("nix/CLAUDE.md")),
            false,
            "protected: CLAUDE.md".into(),
        ),
        (
            "Edit",
            path(t.join("steward.toml")),
            false,
            "protected: steward.toml".into(),
        ),
        (
            "Edit",
            path(f.ws.join("hosts/a.nix")),
            false,
            "outside the change's worktree".into(),
        ),
        (
            "Write",
            json!({ "file_path": format!("{}/nix/../../../ws/nix/mod.nix", t.display()) }),
            false,
            "`..` is not accepted".into(),
        ),
    ];
    for (tool, input, allowed, why) in &cases {
        let (decision, reason) = hook(&f, tool, input.clone(), t);
        let want = if *allowed { "allow" } else { "deny" };
        assert_eq!(decision, want, "{tool} {input}: {reason}");
        assert!(
            reason.contains(why.as_str()),
            "{tool} {input}: `{why}` not in {reason}"
        );
    }
    let lines = audit(&f);
    assert_eq!(lines.len(), cases.len());
    for (line, (tool, input, allowed, why)) in lines.iter().zip(&cases) {
        assert_eq!(line["tool"], *tool);
        assert_eq!(line["input"], *input);
        assert_eq!(line["decision"], if *allowed { "allow" } else { "deny" });
        assert!(
            line["reason"].as_str().unwrap().contains(why.as_str()),
            "{line}"
        );
    }
    assert_eq!(lines[1]["rule"], "change: edit globs");
}

#[tokio::test]
async fn bash_stays_read_only_and_git_writers_are_steward_s() {
    let Some(f) = fixture().await else { return };
    let t = &f.tree;
    let bash = |c: &str| json!({ "command": c });
    let cases: Vec<(Value, &Path, bool, &str)> = vec![
        (bash("git status"), t, true, "allowed by `git status`"),
        (bash("git commit -am x"), t, false, STEWARD_COMMITS),
        (bash("git push origin HEAD"), t, false, STEWARD_COMMITS),
        (bash("git add -A"), t, false, STEWARD_COMMITS),
        (bash("git log > hosts/a.nix"), t, false, "Edit/Write only"),
        (
            bash("nix flake check --no-build"),
            t,
            true,
            "one of the change's validate commands",
        ),
        (bash("nix flake check"), t, false, "no allow rule matches"),
        (
            bash("nix flake check --no-build --impure"),
            t,
            false,
            "no allow rule matches",
        ),
        (
            bash("nix flake check --no-build"),
            &f.ws,
            false,
            "allowed only in its worktree",
        ),
    ];
    for (input, cwd, allowed, why) in &cases {
        let (decision, reason) = hook(&f, "Bash", input.clone(), cwd);
        let want = if *allowed { "allow" } else { "deny" };
        assert_eq!(decision, want, "{input}: {reason}");
        assert!(reason.contains(why), "{input}: `{why}` not in {reason}");
    }
    let lines = audit(&f);
    assert_eq!(lines.len(), cases.len());
    for (line, (input, _, allowed, why)) in lines.iter().zip(&cases) {
        assert_eq!(line["tool"], "Bash");
        assert_eq!(line["input"], *input);
        assert_eq!(line["decision"], if *allowed { "allow" } else { "deny" });
        assert!(line["reason"].as_str().unwrap().contains(why), "{line}");
    }
    assert_eq!(lines[1]["rule"], "change: git commit");
    assert_eq!(lines[5]["rule"], "change: validate");
}
