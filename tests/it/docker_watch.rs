//! `steward serve`'s Docker watch against a real engine (podman's Docker API): a crash is
//! captured with its last words and classified, a stop on purpose is recorded but not raised,
//! a crash loop is acute flapping, and the watch survives the engine restarting without
//! repeating an incident. `steward incidents` shows what was captured.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cli::Env;
use crate::common::podman::{IMAGE, Podman};
use crate::common::serve::Serve;

fn incidents(env: &Env) -> Vec<Value> {
    let out = env
        .steward()
        .args(["--json", "incidents", "list", "--limit", "100"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unreadable"], serde_json::json!([]));
    v["incidents"].as_array().unwrap().clone()
}

fn of<'a>(all: &'a [Value], container: &str) -> Vec<&'a Value> {
    all.iter().filter(|i| i["container"] == container).collect()
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sh -c SCRIPT` in a new container NAME, detached, without a network, with `extra` flags.
fn start(engine: &Podman, name: &str, extra: &[&str], script: &str) {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    let out = engine.podman(&args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first incident of `container` that `ready` accepts, waiting for it.
fn incident_of(env: &Env, container: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("an incident of {container}"), || {
        let all = incidents(env);
        of(&all, container).into_iter().find(|i| ready(i)).cloned()
    })
}

fn docker_signals(env: &Env) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(env.state().join("events")) else {
        return Vec::new();
    };
    dir.flat_map(|e| {
        std::fs::read_to_string(e.unwrap().path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    })
    .filter(|e| e["kind"] == "docker_signal")
    .collect()
}

#[test]
fn crashes_are_captured_classified_routed_and_survive_an_engine_restart() {
    let Some(mut engine) = Podman::start() else {
        return;
    };
    let env = Env::new(
        Path::new("/bin/false"),
        "http://127.0.0.1:9",
        &format!(
            "#--tables--\n[serve]\npaused = true\npoll_secs = 1\nscheduler = false\n\
             [docker]\nhost = \"{}\"\nrecapture_secs = 1\nacute_deaths = 3\n",
            engine.docker_host()
        ),
    );
    let _daemon = Serve::start(&env);

    // A crash: exit 137 without an OOM kill is `killed`; its last words are in the capture.
    let last_words = "echo starting; echo 'panic: last words' >&2; exit 137";
    start(&engine, "crash", &[], last_words);
    let crash = incident_of(&env, "crash", |i| !i["logs_after"].is_null());
    assert_eq!(crash["class"], "killed", "{crash:#}");
    assert_eq!(crash["exit_code"], 137);
    assert_eq!(crash["intentional"], false);
    let logs = crash["logs_at_death"].as_str().unwrap();
    assert!(logs.contains("panic: last words"), "{crash:#}");
    assert_eq!(crash["log_patterns"], serde_json::json!(["panic:"]));
    assert!(crash["signal"].is_string(), "a crash is raised: {crash:#}");
    let routed = wait_for("the crash's routing", || {
        docker_signals(&env)
            .into_iter()
            .find(|e| e["container"] == "crash")
    });
    assert_eq!(routed["decision"], "enqueue", "{routed:#}");

    // Stopped on purpose: a kill event (SIGTERM) before the death; recorded, not raised.
    start(
        &engine,
        "stopper",
        &[],
        "trap 'exit 143' TERM; while true; do sleep 1; done",
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = engine.podman(&["kill", "--signal", "TERM", "stopper"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stopped = incident_of(&env, "stopper", |_| true);
    assert_eq!(stopped["intentional"], true, "{stopped:#}");
    assert_eq!(stopped["class"], "terminated");
    assert!(stopped["signal"].is_null(), "{stopped:#}");

    // A crash loop under a restart policy: the third death in the window is acute flapping.
    start(
        &engine,
        "loop",
        &["--restart", "on-failure:4"],
        "echo boom; exit 2",
    );
    incident_of(&env, "loop", |i| i["flapping"] == "acute");

    // A memory limit: the kernel kills it with 137. Where the engine reports the OOM kill (the
    // flag or an `oom` event) it is `oom`; podman 4.3 on cgroupfs here reports neither, so the
    // honest class is `killed`.
    start(
        &engine,
        "hog",
        &["--memory", "8m"],
        "x=a; while true; do x=$x$x; done",
    );
    let hog = incident_of(&env, "hog", |_| true);
    let expected = if hog["oom_killed"] == true {
        "oom"
    } else {
        "killed"
    };
    assert_eq!(hog["class"], expected, "{hog:#}");

    // The engine restarts; the watch reconnects, misses nothing and repeats nothing.
    let before = incidents(&env).len();
    engine.restart_service();
    start(&engine, "segv", &[], "echo 'Out of memory?' ; exit 139");
    let segv = incident_of(&env, "segv", |_| true);
    assert_eq!(segv["class"], "segfault", "{segv:#}");
    let all = incidents(&env);
    assert_eq!(
        of(&all, "crash").len(),
        1,
        "no incident repeated after the reconnect"
    );
    assert_eq!(of(&all, "stopper").len(), 1);
    assert!(all.len() > before, "the restart lost the new crash");
    let mut ids: Vec<&str> = all.iter().map(|i| i["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), all.len());

    let shown = env
        .steward()
        .args(["incidents", "show", crash["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("crash killed (exit 137)") && text.contains("panic: last words"),
        "{text}"
    );
}
