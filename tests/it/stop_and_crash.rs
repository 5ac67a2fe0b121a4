//! Nothing steward started outlives it, and every run ends with a true record: SIGINT/SIGTERM on
//! `steward run` (cancelled, 130/143, wait-mode actions expired), a second signal (at once),
//! `kill -9` of `steward run` and of `steward serve` mid-agent (the kernel ends claude's tree,
//! the next start records the run `crashed` and charges its budget). The real binary, the real
//! claude, the scripted model.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::claude_bin;
use common::cli::{Env, ScriptedModel};
use serde_json::Value;

const PLACEHOLDER_URL: &str = "http://127.0.0.1:9";

/// A number for `sleep` that no other process on the machine carries (a week and a bit).
fn marker() -> String {
    format!("{}", 610_000 + uuid::Uuid::new_v4().as_u128() % 89_999)
}

/// A goal whose agent sleeps in a Bash tool, then reports.
fn sleeper_goal(dir: &Path) -> PathBuf {
    let goals = dir.join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("sleeper.md"),
        "+++\ndescription = \"sleeps in a tool\"\ntools = [\"Bash\"]\nbudget_usd = 0.25\n\
         timeout_secs = 300\n\n[policy]\nallow = [\"sleep ARG\"]\n+++\nSleep, then report.\n",
    )
    .unwrap();
    // Deterministic: no checks, no probes, so it never calls the model.
    std::fs::write(
        goals.join("quiet.md"),
        "+++\ndescription = \"never calls the model\"\n\n[checks]\nmodel = \"on_attention\"\n+++\nNothing.\n",
    )
    .unwrap();
    goals
}

/// `sleep 610123s`, not `sleep 610123`: claude 2.1.332 refuses a Bash command that starts with
/// `sleep N` (a plain number of 25 or more), 2.1.197 ran it. The process still shows as
/// `sleep MARKER…`.
fn sleep_scenario(marker: &str) -> String {
    format!(
        r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "sleep {marker}s", description = "wait" }}

[[turn]]
verdict = {{ status = "ok", summary = "slept", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#
    )
}

/// The scripted model (sleeping in a tool) and an env whose goals include `sleeper`.
fn sleeper_env(claude: &Path, tmp: &Path, marker: &str, top: &str) -> (ScriptedModel, Env) {
    let model = ScriptedModel::start(tmp, &sleep_scenario(marker));
    let goals = sleeper_goal(tmp);
    let env = Env::new(
        claude,
        &model.url,
        &format!("goals_dir = \"{}\"\n{top}", goals.display()),
    );
    (model, env)
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    env.steward()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the tool's `sleep` runs, while `child` (steward) is still going.
fn wait_for_tool(marker: &str, child: &mut Child) {
    let until = Instant::now() + Duration::from_secs(90);
    while !common::processes_with(&format!("sleep {marker}"))
        .iter()
        .any(|(_, c)| c.starts_with("sleep "))
    {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output_now();
            panic!("steward ended ({status}) before the tool ran:\n{out}");
        }
        assert!(Instant::now() < until, "the tool never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
}

trait Drain {
    fn wait_with_output_now(&mut self) -> String;
}

impl Drain for Child {
    fn wait_with_output_now(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(o) = self.stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        if let Some(e) = self.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

fn kill(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// The only run in the state directory.
fn only_run(env: &Env) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(env.state().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.into_iter().next().unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn events(state: &Path, kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(state.join("events")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["kind"] == kind),
        );
    }
    out
}

/// Every process of the run: the tool (by its marker), claude and `unshare` (by the session id
/// on their command lines), `steward mcp serve` and hooks (by the run directory).
fn run_processes(marker: &str, run_dir: &Path) -> Vec<(u32, String)> {
    let mut found = common::processes_with(&format!("sleep {marker}"));
    if let Ok(spec) = std::fs::read_to_string(run_dir.join("agent-spec.json")) {
        let spec: Value = serde_json::from_str(&spec).unwrap();
        found.extend(common::processes_with(spec["session_id"].as_str().unwrap()));
    }
    found.extend(common::processes_with(&run_dir.display().to_string()));
    found
}

/// Waits up to `secs` for every process of the run to be gone; returns what is left.
fn left_after(secs: u64, marker: &str, run_dir: &Path) -> Vec<(u32, String)> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = run_processes(marker, run_dir);
        if left.is_empty() || Instant::now() > until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_cancelled_record(env: &Env, run_dir: &Path, signal: &str, code: i64) -> Value {
    let result = read(&run_dir.join("result.json"));
    assert_eq!(result["outcome"], "cancelled", "{result:#}");
    assert_eq!(result["exit_code"], code, "{result:#}");
    assert_eq!(result["failure"]["kind"], "cancelled", "{result:#}");
    assert_eq!(result["failure"]["signal"], signal, "{result:#}");
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains(signal) && reason.contains("`agent`"),
        "{reason}"
    );
    let id = run_dir.file_name().unwrap().to_str().unwrap();
    let finished = events(&env.state(), "run_finished");
    assert!(
        finished
            .iter()
            .any(|e| e["run"] == id && e["outcome"] == "cancelled"),
        "{finished:?}"
    );
    assert_eq!(read(&run_dir.join("run.json"))["stage"], "done");
    result
}

#[test]
fn sigint_on_steward_run_cancels_the_run_and_leaves_nothing_behind() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    let mut run = spawn(&env, &["--json", "run", "sleeper"]);
    wait_for_tool(&marker, &mut run);
    let run_dir = only_run(&env);
    let tree = read(&run_dir.join("run.json"))["agent"].clone();
    assert!(
        tree["pid"].as_u64().is_some(),
        "run.json names claude's tree: {tree}"
    );
    assert!(tree["start_ticks"].as_u64().unwrap() > 0, "{tree}");

    let asked = Instant::now();
    kill(run.id(), nix::sys::signal::Signal::SIGINT);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    assert!(stderr.contains("SIGINT: stopping the run"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "cancelled");
    assert_eq!(report["exit"], "interrupted");
    assert_cancelled_record(&env, &run_dir, "SIGINT", 130);
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The terminal closed under a run (an SSH session dropped): the run is cancelled and recorded
/// like Ctrl-C, not left to die and be found `crashed` at the next start.
#[test]
fn sighup_on_steward_run_cancels_the_run() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    let mut run = spawn(&env, &["--json", "run", "sleeper"]);
    wait_for_tool(&marker, &mut run);
    let run_dir = only_run(&env);
    kill(run.id(), nix::sys::signal::Signal::SIGHUP);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(129), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "cancelled");
    assert_eq!(report["exit"], "hung_up");
    assert_cancelled_record(&env, &run_dir, "SIGHUP", 129);
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn sigterm_in_a_wait_run_cancels_it_and_expires_its_action() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let goals = tmp.path().join("goals");
    std::fs::create_dir_all(&goals).unwrap();
    std::fs::write(
        goals.join("wait-test.md"),
        "+++\ndescription = \"wait test\"\ntools = [\"Bash\"]\napproval = \"wait\"\n\
         approval_timeout_secs = 100\ntimeout_secs = 120\n\n[policy]\napprove = [\"touch FILE\"]\n\
         read = [\"{workspace}\"]\n+++\nCreate the marker.\n",
    )
    .unwrap();
    let env = Env::new(
        &claude,
        PLACEHOLDER_URL,
        &format!("goals_dir = \"{}\"\n", goals.display()),
    );
    let file = env.dir.path().join("workspace").join("marker");
    let model = ScriptedModel::start(
        env.dir.path(),
        &format!(
            r#"
[[turn]]
[[turn.tool_use]]
name = "Bash"
input = {{ command = "touch {}", description = "create the marker" }}

[[turn]]
verdict = {{ status = "ok", summary = "done", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }}
"#,
            file.display()
        ),
    );
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, text.replace(PLACEHOLDER_URL, &model.url)).unwrap();

    let mut run = spawn(&env, &["--json", "run", "wait-test"]);
    let mut pending = None;
    wait_for("a pending wait-mode action", 90, || {
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        let out = env
            .steward()
            .args(["--json", "actions", "list"])
            .output()
            .unwrap();
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        pending = list
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["state"] == "pending")
            .cloned();
        pending.is_some()
    });
    let id = pending.unwrap()["id"].as_str().unwrap().to_string();
    let run_dir = only_run(&env);
    assert!(
        !common::processes_with(&run_dir.display().to_string()).is_empty(),
        "steward mcp serve should be waiting"
    );

    kill(run.id(), nix::sys::signal::Signal::SIGTERM);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let result = assert_cancelled_record(&env, &run_dir, "SIGTERM", 143);
    assert_eq!(result["actions_expired"][0], id.as_str(), "{result:#}");
    assert!(result["reason"].as_str().unwrap().contains(&id));
    let action: Value = serde_json::from_slice(
        &env.steward()
            .args(["--json", "actions", "show", &id])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(action["state"], "expired", "{action:#}");
    assert!(!file.exists(), "the call ran");
    let left = left_after(3, "no-tool-in-this-run", &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_second_sigint_stops_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    // A claude that ignores SIGINT: only SIGKILL ends it, and the grace is long.
    let fake = tmp.path().join("stubborn-claude");
    common::script(
        &fake,
        &format!("cat >/dev/null\ntrap '' INT TERM\nsleep {marker}"),
    );
    let goals = sleeper_goal(tmp.path());
    let env = Env::new(
        &fake,
        PLACEHOLDER_URL,
        &format!("goals_dir = \"{}\"\n", goals.display()),
    );
    let mut run = spawn(
        &env,
        &[
            "--json",
            "-c",
            "claude.kill_grace_secs=60",
            "run",
            "sleeper",
        ],
    );
    wait_for_tool(&marker, &mut run);
    let run_dir = only_run(&env);
    kill(run.id(), nix::sys::signal::Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        run.try_wait().unwrap().is_none(),
        "the first SIGINT waits for claude's grace"
    );
    let asked = Instant::now();
    kill(run.id(), nix::sys::signal::Signal::SIGINT);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert!(stderr.contains("stopping at once"), "{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let result = assert_cancelled_record(&env, &run_dir, "SIGINT", 130);
    assert_eq!(result["failure"]["killed"], true, "{result:#}");
    assert_eq!(result["cost_source"], "unreported", "{result:#}");
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `kill -9` of `steward run` while claude's tool runs. With a PID namespace the kernel ends the
/// whole tree at once; without one claude dies with steward but its tool shell (a group of its
/// own) lives on until the next steward start ends it. Either way the next run records the dead
/// one `crashed`, charged its budget cap.
fn kill_9_of_steward_run(pid_namespace: bool) {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    // The default is a namespace where the host allows one.
    let mut run = if pid_namespace {
        spawn(&env, &["--json", "run", "sleeper"])
    } else {
        spawn(
            &env,
            &[
                "--json",
                "-c",
                "claude.pid_namespace=false",
                "run",
                "sleeper",
            ],
        )
    };
    wait_for_tool(&marker, &mut run);
    let run_dir = only_run(&env);
    let id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let tree = read(&run_dir.join("run.json"))["agent"].clone();
    assert_eq!(tree["pid_namespace"], pid_namespace, "{tree}");

    kill(run.id(), nix::sys::signal::Signal::SIGKILL);
    run.wait().unwrap();
    // claude itself dies with steward in both cases.
    let spec = read(&run_dir.join("agent-spec.json"));
    let session = spec["session_id"].as_str().unwrap();
    wait_for("claude to die with steward", 5, || {
        common::processes_with(session).is_empty()
    });
    let tool = common::processes_with(&format!("sleep {marker}"));
    if pid_namespace {
        let left = left_after(5, &marker, &run_dir);
        assert!(left.is_empty(), "the namespace outlived steward: {left:?}");
    } else {
        assert!(
            !tool.is_empty(),
            "without a namespace the tool shell was expected to outlive claude; if claude now \
             ends it, update this test and the README"
        );
    }

    // Before any steward starts again, the record already says what happened.
    let list: Value = serde_json::from_slice(
        &env.steward()
            .args(["--json", "runs", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["outcome"], "crashed", "{row:#}");
    assert!(!run_dir.join("result.json").exists());

    // The next run (deterministic: no model call) takes the host lock and closes the dead one.
    let next = env
        .steward()
        .args(["--json", "run", "quiet"])
        .output()
        .unwrap();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let result = read(&run_dir.join("result.json"));
    assert_eq!(result["outcome"], "crashed", "{result:#}");
    assert_eq!(result["exit"], "error");
    assert_eq!(result["cost_source"], "budget_cap", "{result:#}");
    assert_eq!(result["cost_usd"], 0.25, "{result:#}");
    assert_eq!(result["agent_started"], true);
    let reason = result["reason"].as_str().unwrap();
    assert!(reason.contains("during stage `agent`"), "{reason}");
    if !pid_namespace {
        let killed = tool[0].0.to_string();
        assert!(reason.contains(&killed), "{reason}");
    }
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind after recovery: {left:?}");
    let finished = events(&env.state(), "run_finished");
    let crashed: Vec<&Value> = finished
        .iter()
        .filter(|e| e["run"] == id.as_str())
        .collect();
    assert_eq!(crashed.len(), 1, "{finished:?}");
    assert_eq!(crashed[0]["outcome"], "crashed");
    // Its spend counts against the daily budget.
    let ledger = steward::base::ledger::Ledger::open(&env.state()).unwrap();
    let spent =
        steward::engine::run_index::spent_on_day(&ledger, time::OffsetDateTime::now_utc()).unwrap();
    assert!(spent >= 0.25, "{spent}");
    // claude's private HOME went with it.
    let home = PathBuf::from(tree["home"].as_str().unwrap());
    assert!(!home.exists(), "{}", home.display());
}

#[test]
fn kill_9_of_steward_run_in_a_pid_namespace() {
    if steward::engine::agent::process::is_executable(Path::new("/usr/bin/unshare"))
        && std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        kill_9_of_steward_run(true);
    } else {
        eprintln!("SKIP: no PID namespace here (tested without one below)");
    }
}

#[test]
fn kill_9_of_steward_run_without_a_pid_namespace() {
    kill_9_of_steward_run(false);
}

/// A running `steward serve`.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(env: &Env, args: &[&str]) -> Daemon {
        let (child, _) = crate::common::serve::listening(env.steward().args(args).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]));
        Daemon { child }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kill_9_of_steward_serve_mid_run_ends_the_agent_and_the_restart_records_it() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    let mut daemon = Daemon::start(&env, &["-c", "serve.poll_secs=1"]);
    let out = env
        .steward()
        .args(["trigger", "timer", "sleeper"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("handed to the daemon"), "{said}");
    wait_for_tool(&marker, &mut daemon.child);
    let run_dir = only_run(&env);
    let id = run_dir.file_name().unwrap().to_str().unwrap().to_string();

    kill(daemon.child.id(), nix::sys::signal::Signal::SIGKILL);
    daemon.child.wait().unwrap();
    let left = left_after(5, &marker, &run_dir);
    assert!(left.is_empty(), "the agent outlived the daemon: {left:?}");

    // Restarted paused: the dead run is recorded before its job is recovered, and the job waits.
    let again = Daemon::start(&env, &["-c", "serve.paused=true"]);
    let started = events(&env.state(), "daemon_started");
    let last = started.last().unwrap();
    assert_eq!(last["crashed_runs"][0]["run"], id.as_str(), "{last:#}");
    let result = read(&run_dir.join("result.json"));
    assert_eq!(result["outcome"], "crashed", "{result:#}");
    assert_eq!(result["source"], "timer");
    assert_eq!(result["cost_source"], "budget_cap");
    let all: Vec<Value> = {
        let mut v = Vec::new();
        for e in std::fs::read_dir(env.state().join("events")).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            v.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        }
        v
    };
    let at = |kind: &str| {
        all.iter()
            .position(|e| e["kind"] == kind && (kind != "run_finished" || e["run"] == id.as_str()))
            .unwrap_or_else(|| panic!("no {kind} event"))
    };
    assert!(at("run_finished") < at("job_recovered"));
    drop(again);
}

#[test]
fn a_second_sigterm_stops_the_daemon_at_once_with_a_complete_record() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    // The run would get a minute to finish.
    let mut daemon = Daemon::start(
        &env,
        &["-c", "serve.poll_secs=1", "-c", "serve.grace_secs=60"],
    );
    let out = env
        .steward()
        .args(["trigger", "timer", "sleeper"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("handed to the daemon"));
    wait_for_tool(&marker, &mut daemon.child);
    let run_dir = only_run(&env);
    kill(daemon.child.id(), nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the first SIGTERM gives the run its grace"
    );
    let asked = Instant::now();
    kill(daemon.child.id(), nix::sys::signal::Signal::SIGTERM);
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let result = assert_cancelled_record(&env, &run_dir, "SIGTERM", 143);
    assert_eq!(result["failure"]["killed"], true, "{result:#}");
    let stopped = events(&env.state(), "daemon_stopped");
    assert!(
        stopped[0]["worker"]
            .as_str()
            .unwrap()
            .contains("second signal"),
        "{stopped:?}"
    );
    let requeued = events(&env.state(), "job_requeued");
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn sigterm_on_an_inline_trigger_cancels_its_run() {
    let Some(claude) = claude_bin() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let marker = marker();
    let (_model, env) = sleeper_env(&claude, tmp.path(), &marker, "");
    // No daemon: the trigger runs the goal itself.
    let mut run = spawn(&env, &["--json", "trigger", "timer", "sleeper"]);
    wait_for_tool(&marker, &mut run);
    let run_dir = only_run(&env);
    kill(run.id(), nix::sys::signal::Signal::SIGTERM);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["report"]["outcome"], "cancelled", "{said:#}");
    assert_cancelled_record(&env, &run_dir, "SIGTERM", 143);
    let left = left_after(3, &marker, &run_dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}
