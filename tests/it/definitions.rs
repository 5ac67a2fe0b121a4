//! Definition files that do not load: one broken goal, probe or check file must not take every
//! goal down. The real binary against a config whose context and goal directories hold a typo.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::Env;

/// A probe with a typo in its kind (line 4, column 8), beside a check that is fine on its own.
const TYPO: &str = "# an operator's file with a typo\n[[probe]]\nname = \"nginx-status\"\nkind = \"comand\"\nargv = [\"systemctl\", \"status\", \"nginx\"]\n\n[[check]]\nname = \"nginx-up\"\ndescription = \"nginx answers\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9\n";

struct Setup {
    env: Env,
    goals: PathBuf,
    context: PathBuf,
    _defs: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let defs = tempfile::tempdir().unwrap();
        let (goals, context) = (defs.path().join("goals"), defs.path().join("context"));
        std::fs::create_dir_all(&goals).unwrap();
        std::fs::create_dir_all(&context).unwrap();
        // No model is ever called here: claude is never started.
        let env = Env::new(
            Path::new("/nonexistent/claude"),
            "http://127.0.0.1:9",
            &format!(
                "goals_dir = \"{}\"\ncontext_dir = \"{}\"\n",
                goals.display(),
                context.display()
            ),
        );
        std::fs::write(context.join("typo.toml"), TYPO).unwrap();
        Setup {
            env,
            goals,
            context,
            _defs: defs,
        }
    }

    fn goal(&self, name: &str, front: &str) -> PathBuf {
        let p = self.goals.join(format!("{name}.md"));
        std::fs::write(
            &p,
            format!("+++\ndescription = \"test goal {name}\"\n{front}\n+++\nTest goal {name}.\n"),
        )
        .unwrap();
        p
    }

    fn steward(&self, args: &[&str]) -> Output {
        self.env.steward().args(args).output().unwrap()
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_broken_context_file_does_not_stop_health_check_or_on_failure() {
    let s = Setup::new();
    let typo = s.context.join("typo.toml").display().to_string();
    let located = format!("{typo}:4:8:");

    // Deterministic first on the stand-in checks: no model call, and the run records what did
    // not load.
    let out = s.steward(&["--json", "run", "health-check"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}\n{}", stderr(&out));
    assert_eq!(report["outcome"], "no_action", "{report:#}");
    assert!(stderr(&out).contains(&located), "{}", stderr(&out));
    let id = report["id"].as_str().unwrap();
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.env.run_dir(id).join("definition-errors.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded[0]["kind"], "context");
    assert_eq!(recorded[0]["file"], typo.as_str());
    assert!(
        recorded[0]["error"].as_str().unwrap().starts_with(&located),
        "{recorded:#}"
    );

    // `validate` without a goal cannot claim every check ran.
    let out = s.steward(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&located), "{}", stderr(&out));
    let out = s.steward(&["validate", "--goal", "health-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The OnFailure= handler still works.
    let dir = s.env.dir.path();
    std::fs::write(
        dir.join("show.txt"),
        "Id=myapp.service\nLoadState=loaded\nResult=exit-code\nExecMainStatus=1\nExecMainCode=1\nActiveState=failed\nSubState=failed\n",
    )
    .unwrap();
    std::fs::write(dir.join("journal.txt"), "myapp: exiting\n").unwrap();
    let show = dir.join("show.txt").display().to_string();
    let journal = dir.join("journal.txt").display().to_string();
    let out = s.steward(&[
        "--json",
        "trigger",
        "on-failure",
        "myapp.service",
        "--show-output",
        &show,
        "--journal-file",
        &journal,
        "--dry-run",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{}", stderr(&out));
    assert_eq!(v["report"]["goal"], "on-failure", "{v:#}");
}

#[test]
fn a_goal_using_the_broken_file_fails_with_both_locations() {
    let s = Setup::new();
    let typo = s.context.join("typo.toml").display().to_string();
    let goal = s.goal("web", "[checks]\npost = [\"nginx-up\"]");
    let out = s.steward(&["run", "web"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The goal's line and column of the name, then the broken file's own location.
    assert!(
        err.contains(&format!("{}:4:9: check `nginx-up`", goal.display())),
        "{err}"
    );
    assert!(err.contains(&format!("{typo}:4:8:")), "{err}");

    // A probe named from it fails the same way; a check by tag that the file may hold too.
    s.goal("web-probe", "probes = [\"nginx-status\"]");
    let out = s.steward(&["run", "web-probe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("web-probe.md:3:11: probe `nginx-status`"));

    // `goals list` shows the broken goals beside the others and exits 2.
    let out = s.steward(&["goals", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("health-check ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("web ") && l.contains("BROKEN:") && l.contains("web.md:4:9:")),
        "{text}"
    );
    let out = s.steward(&["--json", "goals", "list"]);
    let list = json(&out);
    let web = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "web")
        .unwrap();
    assert!(web["error"].as_str().unwrap().contains("nginx-up"), "{web}");
    let hc = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "health-check")
        .unwrap();
    assert!(hc["error"].is_null(), "{hc}");

    // `steward doctor` lists every load error.
    let out = s.steward(&["--json", "doctor"]);
    let report = json(&out);
    let entry = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "load errors")
        .unwrap_or_else(|| panic!("no load errors entry: {report:#}"));
    assert_eq!(entry["ok"], false);
    let detail = entry["detail"].as_str().unwrap();
    for needle in [
        format!("{typo}:4:8:"),
        format!("{}:4:9:", goal.display()),
        "web-probe.md:3:11:".to_string(),
    ] {
        assert!(detail.contains(&needle), "{needle} not in {detail}");
    }
}

#[test]
fn a_broken_goal_file_does_not_stop_the_others() {
    let s = Setup::new();
    std::fs::remove_file(s.context.join("typo.toml")).unwrap();
    let bad = s.goals.join("bad.md");
    std::fs::write(
        &bad,
        "+++\ndescription = \"d\"\nmax_turns = \"ten\"\n+++\nbody\n",
    )
    .unwrap();
    let out = s.steward(&["--json", "run", "health-check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["outcome"], "no_action");
    let out = s.steward(&["run", "bad"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{}:3:13:", bad.display())),
        "{}",
        stderr(&out)
    );
}

/// Item 6: a goal naming a check that exists nowhere is a load error at the name's position,
/// found by `goals list` without running anything.
#[test]
fn an_unknown_check_is_a_load_error_with_the_goal_line() {
    let s = Setup::new();
    std::fs::remove_file(s.context.join("typo.toml")).unwrap();
    let goal = s.goal(
        "typo-check",
        "\n[checks]\ninvariants = [\"root-disk-space\", \"root-disk-spcae\"]",
    );
    let out = s.steward(&["goals", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "{}:5:34: unknown check `root-disk-spcae` in `invariant`",
            goal.display()
        )),
        "{text}"
    );
}

/// Item 12: a goal rule the default policy always denies is a warning at load time that names
/// the rule and the default rule that wins, in `goals list` (text and JSON) and `doctor`.
#[test]
fn a_shadowed_goal_rule_is_a_warning_naming_both_rules() {
    let s = Setup::new();
    std::fs::remove_file(s.context.join("typo.toml")).unwrap();
    let goal = s.goal(
        "vacuum",
        "tools = [\"Bash\"]\n[policy]\nallow = [\"journalctl --disk-usage\"]\napprove = [\"journalctl --vacuum-size=ARG\"]",
    );
    let at = format!("{}:6:12:", goal.display());
    let out = s.steward(&["goals", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("warning:"))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(line.contains(&at), "{line}");
    assert!(
        line.contains("policy.approve rule `journalctl --vacuum-size=ARG` never takes effect"),
        "{line}"
    );
    assert!(
        line.contains("deny rule `journalctl -D|--directory*|"),
        "{line}"
    );
    assert!(stderr(&out).contains(&at), "not logged: {}", stderr(&out));
    let list = json(&s.steward(&["--json", "goals", "list"]));
    let vacuum = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "vacuum")
        .unwrap();
    assert!(
        vacuum["warnings"][0].as_str().unwrap().starts_with(&at),
        "{vacuum}"
    );
    // The bundled goals have none.
    for g in list.as_array().unwrap() {
        if g["name"] != "vacuum" {
            assert_eq!(g["warnings"], serde_json::json!([]), "{g}");
        }
    }
    let report = json(&s.steward(&["--json", "doctor"]));
    let entry = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "load errors")
        .unwrap();
    assert_eq!(entry["ok"], true, "{entry}");
    assert!(entry["detail"].as_str().unwrap().contains(&at), "{entry}");
}

#[test]
fn context_for_a_probe_in_a_broken_file_names_the_file() {
    let s = Setup::new();
    let located = format!("{}:4:8:", s.context.join("typo.toml").display());
    let out = s.steward(&["context", "--probe", "nginx-status"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown probe `nginx-status`"), "{err}");
    assert!(
        err.contains("may be defined in a context file that failed to load")
            && err.contains(&located),
        "{err}"
    );
}
