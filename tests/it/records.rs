//! Reading and keeping the record: one action for one command whoever proposed it, resolved
//! alerts withdrawing their proposals, `runs list/show` for people, `actions approve` asking on a
//! terminal, the daemon's job log lines, and retention (`runs prune`, `[retention]`).
//!
//! The runs are real: the daemon, the real claude against the scripted model, steward's hook.

use crate::common;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A running `steward serve` with info logging into a file; killed on drop.
struct Daemon {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Daemon {
    fn start(env: &Env) -> Daemon {
        let token = env.dir.path().join("webhook-token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let log = env.dir.path().join("serve.log");
        let mut child = env
            .steward()
            .env("STEWARD_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--webhook-token-file"])
            .arg(&token)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(
            url.starts_with("http://"),
            "unexpected first line: {line:?}"
        );
        Daemon { child, url, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// One signal through the generic webhook; returns its routing decision.
    fn signal(&self, body: &Value) -> Value {
        let mut child = Command::new("curl")
            .args(["-s", "-X", "POST", "--data-binary", "@-"])
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(["-H", "Content-Type: application/json"])
            .arg(format!("{}/hooks/generic", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.to_string().as_bytes())
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("answer: {out}"));
        v["decisions"][0].clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn steward_json(env: &Env, args: &[&str]) -> Value {
    let out = env.steward().arg("--json").args(args).output().unwrap();
    json_of(&out)
}

/// Finished runs in the ledger (any order).
fn finished_runs(env: &Env) -> Vec<Value> {
    steward_json(env, &["runs", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] != "running" && r["outcome"] != "unreadable")
        .cloned()
        .collect()
}

fn events(state: &Path, kind: &str) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(state.join("events")) else {
        return Vec::new();
    };
    entries
        .flat_map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// A goal whose agent proposes `touch MARKER`, which needs a human's approval.
fn restart_env(claude: &Path) -> Env {
    // The model comes later (its scenario names a path in this env): see `point_at`.
    let env = Env::new(
        claude,
        "http://127.0.0.1:9",
        "#--tables--\n[serve]\npoll_secs = 1\n",
    );
    let goals = env.dir.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("restart.md"),
        "+++\ndescription = \"restart what is down, with a human's approval\"\n\
         tools = [\"Bash\"]\nmax_turns = 6\n\n[policy]\napprove = [\"touch FILE\"]\n\
         read = [\"{workspace}\"]\n+++\nRestart what is down.\n",
    )
    .unwrap();
    // The alerts come through the generic webhook: the routes, not the sender, pick the goal.
    let routes = env.dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nname = \"down\"\ngoal = \"restart\"\n[route.match]\nsource = \"webhook\"\n",
    )
    .unwrap();
    env.set_top_level(&format!(
        "goals_dir = \"{}\"\nroutes_file = \"{}\"",
        goals.display(),
        routes.display()
    ));
    env
}

/// Points the env's claude at `model`.
fn point_at(env: &Env, model: &ScriptedModel) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("base_url = ") {
                format!("base_url = \"{}\"", model.url)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&env.config, text.join("\n") + "\n").unwrap();
}

fn marker(env: &Env) -> PathBuf {
    env.dir.path().join("workspace").join("restarted")
}

fn scenario(marker: &Path) -> String {
    format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch {}", description = "the service is down: restart it" }}

[[turn]]
verdict = {{ status = "needs_attention", summary = "a restart waits for approval", findings = [{{ severity = "warning", subject = "svc", detail = "down" }}], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
        marker.display()
    )
}

fn fire(subject: &str, fp: &str) -> Value {
    json!({"subject": subject, "fingerprint": fp})
}

fn resolve(subject: &str, fp: &str) -> Value {
    json!({"subject": subject, "fingerprint": fp, "status": "resolved"})
}

/// Issue 9 items 14 and 16: the same command proposed for three subjects is one action;
/// resolving alerts withdraws their proposals and expires what nobody needs any more; approving
/// runs the command once; the daemon logs each job's run, outcome and filed actions.
#[test]
fn one_command_for_three_subjects_is_one_action_and_resolved_alerts_withdraw_it() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = restart_env(&claude);
    let model = ScriptedModel::start(tmp.path(), &scenario(&marker(&env)));
    point_at(&env, &model);
    let daemon = Daemon::start(&env);

    for (subject, fp) in [("A/h1", "fa"), ("B/h1", "fb"), ("C/h1", "fc")] {
        let d = daemon.signal(&fire(subject, fp));
        assert_eq!(d["decision"], "enqueue", "{d:#}");
    }
    wait_for("three finished runs", 120, || {
        finished_runs(&env).len() == 3
    });
    let runs = finished_runs(&env);
    assert_eq!(runs.len(), 3);
    for r in &runs {
        assert_eq!(r["outcome"], "escalated", "{r:#}");
    }
    assert!(!marker(&env).exists(), "the approval-required command ran");

    // Item 16: one info line per job with its run, outcome and the actions it filed.
    let log = daemon.log();
    for r in &runs {
        let run = r["id"].as_str().unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("job ended: run {run} escalated")))
            .unwrap_or_else(|| panic!("no job line for {run}:\n{log}"));
        assert!(line.contains("INFO"), "{line}");
        let filed = r["actions_filed"][0].as_str().unwrap_or("?");
        assert!(line.contains(&format!("actions filed: {filed}")), "{line}");
    }

    // One action, three subjects.
    let list = steward_json(&env, &["actions", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    let act = &list[0];
    let id = act["id"].as_str().unwrap().to_string();
    let subjects: Vec<&str> = act["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 3, "{act:#}");
    for s in ["A/h1", "B/h1", "C/h1"] {
        assert!(subjects.contains(&s), "{subjects:?}");
    }
    assert_eq!(act["proposals"], 3);
    for r in &runs {
        assert_eq!(r["actions_filed"], json!([id]), "{r:#}");
    }
    // The later runs' agents were told the command is shared.
    let sent = model.requests().to_string();
    assert!(
        sent.contains("is already proposed for") && sent.contains("one approval runs it once"),
        "the hook's reply did not name the other subjects"
    );
    let shown = env
        .steward()
        .args(["actions", "show", &id])
        .output()
        .unwrap();
    let shown = text(&shown);
    for s in ["A/h1", "B/h1", "C/h1", "proposed 3 time(s)", "touch "] {
        assert!(shown.contains(s), "`actions show` lacks {s}:\n{shown}");
    }

    // A resolves: its proposal is withdrawn, B and C still need the action.
    let d = daemon.signal(&resolve("A/h1", "fa"));
    assert_eq!(d["decision"], "resolved", "{d:#}");
    assert_eq!(d["narrowed_actions"], json!([id]), "{d:#}");
    let act = steward_json(&env, &["actions", "show", &id]);
    assert_eq!(act["state"], "pending");
    assert_eq!(act["contributions"].as_array().unwrap().len(), 2, "{act:#}");
    assert_eq!(act["resolved"][0]["subject"], "A/h1");
    // B and C resolve: nobody needs it, it expires with the reason.
    daemon.signal(&resolve("B/h1", "fb"));
    let d = daemon.signal(&resolve("C/h1", "fc"));
    assert_eq!(d["expired_actions"], json!([id]), "{d:#}");
    let act = steward_json(&env, &["actions", "show", &id]);
    assert_eq!(act["state"], "expired", "{act:#}");
    assert!(
        act["expired_reason"]
            .as_str()
            .unwrap()
            .contains("C/h1 resolved"),
        "{act:#}"
    );
    let out = env
        .steward()
        .args(["actions", "approve", &id, "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A new alert proposes the command afresh; approving it once runs it once, and a later
    // resolve leaves the operator's decision alone.
    let d = daemon.signal(&fire("D/h1", "fd"));
    assert_eq!(d["decision"], "enqueue", "{d:#}");
    wait_for("the fourth run", 120, || finished_runs(&env).len() == 4);
    let list = steward_json(&env, &["actions", "list"]);
    let pending: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{list:#}");
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let out = env
        .steward()
        .args(["actions", "approve", &id, "--yes", "--by", "alice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("approving"), "{}", text(&out));
    assert!(marker(&env).exists(), "the approved command did not run");
    let d = daemon.signal(&resolve("D/h1", "fd"));
    assert_eq!(d["decision"], "resolved");
    assert!(d.get("expired_actions").is_none(), "{d:#}");
    assert_eq!(
        steward_json(&env, &["actions", "show", &id])["state"],
        "done"
    );
}

/// Issue 9 item 15: `runs list` newest first with a header and filters; `runs show last`, unique
/// prefixes, and the show as an incident report.
#[test]
fn the_ledger_reads_newest_first_and_a_run_reads_like_an_incident_report() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let env = restart_env(&claude);
    let model = ScriptedModel::start(tmp.path(), &scenario(&marker(&env)));
    point_at(&env, &model);
    let run = |args: &[&str]| env.steward().args(args).output().unwrap();
    let first = run(&["--json", "run", "restart"]);
    assert_eq!(first.status.code(), Some(6), "{}", text(&first));
    let first = json_of(&first)["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let second = run(&["--json", "run", "health-check", "--var", "why=checking"]);
    let second = json_of(&second)["id"].as_str().unwrap().to_string();

    // Newest first, with a header.
    let out = run(&["runs", "list"]);
    let listing = text(&out);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("OUTCOME"),
        "{listing}"
    );
    assert!(lines[1].starts_with(&second), "{listing}");
    assert!(lines[2].starts_with(&first), "{listing}");
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--json", "runs", "list"];
        a.extend_from_slice(args);
        json_of(&run(&a))
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), [second.clone(), first.clone()]);
    assert_eq!(ids(&["--limit", "1"]), [second.as_str()]);
    assert_eq!(ids(&["--goal", "restart"]), [first.as_str()]);
    assert_eq!(ids(&["--outcome", "escalated"]), [first.as_str()]);
    assert_eq!(ids(&["--since", "1h"]).len(), 2);
    assert!(ids(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    let out = run(&["runs", "list", "--limit", "1"]);
    assert!(
        text(&out).contains("1 of 2 matching runs shown"),
        "{}",
        text(&out)
    );
    for bad in [["--since", "yesterday"], ["--outcome", "fixd"]] {
        let out = run(&[&["runs", "list"][..], &bad[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out));
    }

    // `last`, a unique prefix, an ambiguous prefix.
    let out = run(&["--json", "runs", "show", "last"]);
    assert_eq!(json_of(&out)["id"], second);
    let unique = &first[..first.len() - 3];
    assert_eq!(
        json_of(&run(&["--json", "runs", "show", unique]))["id"],
        first
    );
    let out = run(&["runs", "show", "20"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&first) && text(&out).contains(&second),
        "an ambiguous prefix should list the matches: {}",
        text(&out)
    );

    // The incident report.
    let out = run(&["runs", "show", &first]);
    assert_eq!(out.status.code(), Some(0));
    let report = text(&out);
    let action = json_of(&run(&["--json", "actions", "list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for want in [
        "outcome: escalated (exit 6 needs_human)",
        "Signal\n  manual · subject restart",
        "Checks before",
        "Tool calls (1)",
        &format!("1. Bash: touch {}", marker(&env).display()),
        &format!("approve → action {action} [rule: goal: touch FILE]"),
        "error: steward policy",
        "needs attention: a restart waits for approval",
        "[warning] svc: down",
        "Actions filed (1)",
        &format!("{action}  pending   touch"),
        "Rollback\n  none: the goal has no rollback command",
        "Cost\n  $",
    ] {
        assert!(
            report.contains(want),
            "the report lacks {want:?}:\n{report}"
        );
    }
    assert!(!report.contains("NeedsAttention"), "{report}");
    let report = text(&run(&["runs", "show", &second]));
    assert!(report.contains("vars: why=checking"), "{report}");
    // The machine shape keeps what it had and adds the report's parts.
    let detail = json_of(&run(&["--json", "runs", "show", &first]));
    for key in [
        "id", "dir", "meta", "result", "signal", "argv", "audit", "files",
    ] {
        assert!(detail.get(key).is_some(), "--json lost `{key}`");
    }
    assert_eq!(detail["tool_calls"][0]["decision"], "approve");
    assert_eq!(detail["actions"][0]["state"], "pending");
}

/// Issue 9 item 15: `actions approve` shows what will run and asks on a terminal; off a
/// terminal it needs `--yes`.
#[test]
fn approve_asks_on_a_terminal_and_needs_yes_off_one() {
    let tmp = tempfile::tempdir().unwrap();
    let env = Env::new(Path::new("/nonexistent/claude"), "http://127.0.0.1:9", "");
    let marker = tmp.path().join("ran");
    // The goal is gone, so approval compares against no checks at all.
    let id = "act-00000000000000aa";
    write_action(
        &env.state(),
        id,
        &["touch", &marker.display().to_string()],
        None,
        "gone",
        &steward::engine::approval::state_fingerprint(&[]),
    );
    let action = |id: &str| steward_json(&env, &["actions", "show", id]);
    // Off a terminal, without --yes: refused, nothing ran.
    let out = env
        .steward()
        .args(["actions", "approve", id])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(text(&out).contains(&format!("touch {}", marker.display())));
    assert!(!marker.exists());

    // On a terminal: the plan, then a question; "n" runs nothing.
    let on_tty = |answer: &str| -> Output {
        let cmd = format!(
            "'{}' --config '{}' actions approve {id} --by tty-tester",
            common::cli::steward_bin().display(),
            env.config.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("HOME", env.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // After the question is on the terminal; script passes input through its pty.
        std::thread::sleep(Duration::from_millis(1500));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(answer.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = on_tty("n\n");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!("approving {id} runs: touch")),
        "{said}"
    );
    assert!(said.contains("[y/N]"), "{said}");
    assert!(said.contains("not approved"), "{said}");
    assert!(!marker.exists());
    assert_eq!(action(id)["state"], "pending");

    let out = on_tty("y\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(marker.exists(), "approved on the terminal but not run");
    let a = action(id);
    assert_eq!(a["state"], "done");
    assert_eq!(a["decision"]["by"], "tty-tester");
}

/// Writes a finished run record as steward does, started `days` ago.
fn old_run(state: &Path, id: &str, days: i64) {
    let dir = state.join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let started = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    let at = started
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::fs::write(
        dir.join("run.json"),
        json!({"id": id, "goal": "g", "stage": "done", "started": at, "pid": 1}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("result.json"),
        json!({"id": id, "goal": "g", "source": "manual", "subject": "g", "outcome": "ok",
               "exit": "ok", "exit_code": 0, "reason": "fine", "started": at, "finished": at,
               "duration_ms": 5, "agent_started": false, "cost_usd": 0.0, "num_turns": 0,
               "permission_denials": [], "failure": null, "verdict": null, "session_id": "",
               "claude_exit_code": null})
        .to_string(),
    )
    .unwrap();
}

/// A pending action record as `steward` files it (written directly: these tests are about
/// what reads it).
fn write_action(
    state: &Path,
    id: &str,
    argv: &[&str],
    run: Option<&str>,
    goal: &str,
    state_fingerprint: &str,
) {
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let dir = state.join("actions/pending");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{id}.json")),
        json!({"id": id, "state": "pending", "subject": "nginx.service", "argv": argv,
               "rationale": "it is down", "checks": [], "state_fingerprint": state_fingerprint,
               "goal": goal, "run_id": run, "rule": "touch FILE", "created": rfc(now),
               "expires": rfc(now + time::Duration::HOUR), "proposals": 1, "decision": null,
               "execution": null, "executor": "steward"})
        .to_string(),
    )
    .unwrap();
}

fn pending_action_for(state: &Path, run: &str) {
    write_action(
        state,
        "act-00000000000000bb",
        &["true"],
        Some(run),
        "g",
        "f",
    );
}

/// Issue 9 item 17: `runs prune` removes old runs but never one a pending action points at.
#[test]
fn prune_removes_old_runs_but_keeps_what_an_action_needs() {
    let env = Env::new(Path::new("/nonexistent/claude"), "http://127.0.0.1:9", "");
    let state = env.state();
    old_run(&state, "20200101T000000Z-g-aaaaaa", 40);
    old_run(&state, "20200101T000000Z-g-bbbbbb", 40);
    old_run(&state, "20990101T000000Z-g-cccccc", 1);
    pending_action_for(&state, "20200101T000000Z-g-bbbbbb");
    // Container crash incidents: one died 40 days ago, one now.
    let incidents = state.join("incidents");
    std::fs::create_dir_all(&incidents).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let old_incident = format!("{}-0123456789ab", now - 40 * 86_400 * 1_000_000_000);
    let new_incident = format!("{now}-0123456789ab");
    for id in [&old_incident, &new_incident] {
        std::fs::write(incidents.join(format!("{id}.json")), "{}").unwrap();
    }

    let out = env
        .steward()
        .args(["runs", "prune", "--older-than", "30d", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("would remove 20200101T000000Z-g-aaaaaa"));
    assert!(state.join("runs/20200101T000000Z-g-aaaaaa").exists());

    let out = env
        .steward()
        .args(["--json", "runs", "prune", "--older-than", "30d"])
        .output()
        .unwrap();
    let pruned = json_of(&out);
    assert_eq!(pruned["removed"], json!(["20200101T000000Z-g-aaaaaa"]));
    assert_eq!(pruned["incidents_removed"], json!([old_incident]));
    assert!(!incidents.join(format!("{old_incident}.json")).exists());
    assert!(incidents.join(format!("{new_incident}.json")).exists());
    assert_eq!(pruned["kept"][0]["id"], "20200101T000000Z-g-bbbbbb");
    assert!(
        pruned["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("open action")
    );
    assert!(!state.join("runs/20200101T000000Z-g-aaaaaa").exists());
    assert!(state.join("runs/20200101T000000Z-g-bbbbbb").exists());
    assert!(state.join("runs/20990101T000000Z-g-cccccc").exists());
    assert_eq!(events(&state, "runs_pruned").len(), 1);

    let out = env
        .steward()
        .args(["runs", "prune", "--older-than", "30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Issue 9 item 17: `[retention] runs_days` is applied by the daemon at start.
#[test]
fn the_daemon_applies_retention_at_start() {
    let env = Env::new(
        Path::new("/nonexistent/claude"),
        "http://127.0.0.1:9",
        "#--tables--\n[serve]\npaused = true\n[retention]\nruns_days = 30\n",
    );
    let state = env.state();
    old_run(&state, "20200101T000000Z-g-aaaaaa", 40);
    old_run(&state, "20200101T000000Z-g-bbbbbb", 40);
    pending_action_for(&state, "20200101T000000Z-g-bbbbbb");
    let daemon = Daemon::start(&env);
    wait_for("the retention pass", 20, || {
        !events(&state, "runs_pruned").is_empty()
    });
    let e = &events(&state, "runs_pruned")[0];
    assert_eq!(e["removed"], json!(["20200101T000000Z-g-aaaaaa"]), "{e:#}");
    assert!(!state.join("runs/20200101T000000Z-g-aaaaaa").exists());
    assert!(state.join("runs/20200101T000000Z-g-bbbbbb").exists());
    drop(daemon);
}
