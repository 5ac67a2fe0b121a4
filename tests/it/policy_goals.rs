//! The bundled goals' policies on the questions operators really ask: "is the disk full?",
//! "why is my disk full?". Places to measure or list (`FSPATH`) may be anywhere; secrets, `..`,
//! relative paths, globs and flags that read files stay denied.

use crate::common;

use std::path::Path;

use steward::defs::bundled::{self, Kind};
use steward::defs::goal;
use steward::defs::policy::{self, Permission, Policy};

const A: Permission = Permission::Allow;
const D: Permission = Permission::Deny;
const P: Permission = Permission::Approve;

const DISK: &[&str] = &[
    "health-check",
    "incident",
    "intent",
    "proactive",
    "on-failure",
];
const WHY_FULL: &[&str] = &["incident", "intent", "proactive"];

/// (goals, expected, command).
const CASES: &[(&[&str], Permission, &str)] = &[
    (DISK, A, "df -h /"),
    (DISK, A, "df -h /var"),
    (DISK, A, "df -h / /var /nix"),
    (DISK, A, "df -h"),
    (DISK, A, "findmnt /"),
    (DISK, A, "ls -l /etc"),
    (DISK, A, "ls -la /var/log"),
    (DISK, D, "ls -l /etc/shadow"),
    (DISK, D, "ls -l /root/.ssh"),
    (DISK, D, "df -h /run/credentials"),
    (DISK, D, "ls -l /var/../etc/shadow"),
    (DISK, D, "df -h var"),
    (DISK, D, "ls -l -- -la"),
    (DISK, D, "ls -lR /"),
    (DISK, D, "findmnt -F /etc/fstab /"),
    (DISK, D, "cat /etc/passwd"),
    (
        &["health-check", "incident", "intent", "proactive"],
        A,
        "du -sh /var/log",
    ),
    (
        &["health-check", "incident", "intent", "proactive"],
        A,
        "df -i /",
    ),
    (
        &["health-check", "incident", "intent", "proactive"],
        D,
        "du -sh /etc/ssh/ssh_host_ed25519_key",
    ),
    (
        &["health-check", "incident", "intent", "proactive"],
        D,
        "du -sh --files0-from=/etc/shadow",
    ),
    (
        &["health-check", "incident", "intent", "proactive"],
        D,
        "du -sh /var/*",
    ),
    (
        &["health-check", "incident", "intent", "proactive"],
        D,
        "du -shL /",
    ),
    // "Why is my disk full?"
    (WHY_FULL, A, "du -x -d1 /"),
    (WHY_FULL, A, "du -x -d1 -h /var"),
    (WHY_FULL, A, "du -xh --max-depth=1 /nix"),
    (WHY_FULL, A, "journalctl --disk-usage"),
    (WHY_FULL, D, "du -x -d1 /root/.gnupg"),
    (WHY_FULL, D, "du -d1 /"),
    (WHY_FULL, D, "journalctl --vacuum-size=1G"),
    (&["intent", "proactive"], A, "docker system df"),
    (&["intent", "proactive"], A, "docker system df -v"),
    (
        &["intent", "proactive"],
        A,
        "nix path-info -S /run/current-system",
    ),
    (
        &["intent", "proactive"],
        A,
        "nix path-info -rSh /run/current-system",
    ),
    (
        &["intent", "proactive"],
        A,
        "nix path-info --closure-size /nix/var/nix/profiles/system",
    ),
    (
        &["intent", "proactive"],
        A,
        "nix path-info -Sh --extra-experimental-features nix-command /run/booted-system",
    ),
    // A path outside the store would be read as a flake and evaluated.
    (&["intent", "proactive"], D, "nix path-info -S /tmp/x"),
    (&["intent", "proactive"], D, "nix path-info -S /srv/infra"),
    (
        &["intent", "proactive"],
        D,
        "nix path-info -S --extra-experimental-features 'nix-command flakes' /run/current-system",
    ),
    (
        &["intent", "proactive"],
        D,
        "nix path-info -S nixpkgs#hello",
    ),
    (
        &["intent", "proactive"],
        D,
        "nix path-info -S --store ssh://host /run/current-system",
    ),
    (
        &["intent", "proactive"],
        D,
        "nix path-info -S --option x y /run/current-system",
    ),
    (&["intent", "proactive"], D, "docker system prune -a"),
    (&["intent", "proactive"], D, "docker -H tcp://x system df"),
    (&["proactive"], D, "nix-collect-garbage -d"),
    (&["intent"], P, "systemctl restart nginx"),
    (&["health-check"], D, "du -x -d1 /"),
    (&["health-check"], D, "docker system df"),
];

fn policy_of(goal: &str, ws: &Path) -> Policy {
    let files = bundled::files(Kind::Goals, None, false, "md").unwrap();
    let g = goal::find(&files, goal).unwrap();
    Policy::build(goal, &g.policy, ws).unwrap()
}

#[test]
fn bundled_goals_answer_disk_questions_and_keep_secrets() {
    let ws = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for (goals, expected, cmd) in CASES {
        for g in *goals {
            let d = policy::check_command(&policy_of(g, ws.path()), cmd, ws.path());
            n += 1;
            if d.decision != *expected {
                failures.push(format!(
                    "{g}: {cmd:?}: expected {expected:?}, got {:?} ({})",
                    d.decision, d.reason
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same through the CLI an operator uses.
#[test]
fn policy_check_cli_allows_the_disk_question() {
    let dir = tempfile::tempdir().unwrap();
    for (goal, cmd, want) in [
        ("health-check", "df -h /", "allow"),
        ("health-check", "du -sh /var/log", "allow"),
        ("intent", "du -x -d1 -h /var", "allow"),
        ("intent", "journalctl --disk-usage", "allow"),
        ("intent", "nix path-info -S /run/current-system", "allow"),
        ("intent", "du -sh /etc/shadow", "deny"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["--json", "policy", "check", "--goal", goal, "--", cmd])
            .current_dir(dir.path())
            .env_remove("STEWARD_CONFIG")
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(v["decision"], want, "{goal}: {cmd}: {v}");
    }
}

/// One `[[turn.tool_use]]` table calling `Bash` with `command`.
fn bash_call(id: &str, command: &str) -> String {
    format!(
        "[[turn.tool_use]]\nname = \"Bash\"\nid = \"{id}\"\ninput = {{ command = {}, description = \"disk\" }}\n",
        toml::Value::String(command.to_string())
    )
}

/// The real claude runs what steward's hook allows outside the workspace: its own layer (the
/// read-only classifier, "outside the working directory") does not block `df -h /` after the
/// hook's allow, and a secret is still denied.
#[test]
fn health_check_measures_the_disk_with_the_real_claude() {
    use common::cli::{Env, ScriptedModel};
    let Some(claude) = common::claude_bin() else {
        return;
    };
    let scenario = format!(
        "[[turn]]\ntext = \"Checking the disks.\"\n{}{}{}{}\n[[turn]]\nverdict = {{ status = \"ok\", summary = \"disk fine\", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}\n",
        bash_call("toolu_df", "df -h /"),
        bash_call("toolu_ls", "ls -l /etc"),
        bash_call("toolu_findmnt", "findmnt /"),
        bash_call("toolu_shadow", "du -sh /etc/shadow"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), &scenario);
    let env = Env::new(&claude, &model.url, "");
    let out = env
        .steward()
        .args(["--json", "run", "health-check", "--force-model"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let dir = env.run_dir(report["id"].as_str().unwrap());
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decision = |id: &str| {
        audit
            .iter()
            .find(|a| a["tool_use_id"] == id)
            .map(|a| a["decision"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("{id} not audited: {audit:#?}"))
    };
    for id in ["toolu_df", "toolu_ls", "toolu_findmnt"] {
        assert_eq!(decision(id), "allow", "{id}");
    }
    assert_eq!(decision("toolu_shadow"), "deny");
    // The output came back: claude ran the command.
    let transcript = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    let result = transcript
        .lines()
        .find(|l| l.contains("\"tool_use_id\":\"toolu_df\""))
        .expect("a tool result for df");
    assert!(result.contains("Filesystem"), "{result}");
    assert!(!result.contains("\"is_error\":true"), "{result}");
}
