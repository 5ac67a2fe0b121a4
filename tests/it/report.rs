//! `steward report` against a real container engine (podman's Docker API) in a network
//! namespace of the test's own, so that only the test's listeners are seen: twice on an
//! unchanged host (no changes), then after a loopback listener opens and a container stops
//! (exactly those two changes).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::cli::{Env, steward_bin};
use crate::common::podman::{IMAGE, Podman};
use crate::common::require;

/// A named network namespace, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new(ip: &Path) -> NetNs {
        let name = format!("steward-report-{}", std::process::id());
        let _ = Command::new(ip)
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        assert!(
            Command::new(ip)
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success()
        );
        let ns = NetNs(name);
        assert!(
            ns.exec(&[ip.to_str().unwrap(), "link", "set", "lo", "up"])
                .status()
                .unwrap()
                .success()
        );
        ns
    }

    fn exec(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0]).args(argv);
        cmd
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn report(ns: &NetNs, env: &Env) -> (i32, Value) {
    report_with(ns, env, &[], &[])
}

/// `steward [GLOBAL...] report [ARGS...]`.
fn report_with(ns: &NetNs, env: &Env, global: &[&str], args: &[&str]) -> (i32, Value) {
    let bin = steward_bin();
    let config = env.config.display().to_string();
    let mut argv = vec![bin.to_str().unwrap(), "--config", &config, "--json"];
    argv.extend_from_slice(global);
    argv.push("report");
    argv.extend_from_slice(args);
    let out = ns.exec(&argv).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

fn run_container(engine: &Podman, name: &str) {
    let out = engine.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_listener_and_a_stopped_container_are_exactly_the_changes() {
    let Some(engine) = Podman::start() else {
        return;
    };
    let Some(ip) = require::tool("ip") else {
        return;
    };
    let Some(python) = require::executable(
        Path::new("/usr/bin/python3"),
        "Debian's python3",
        "apt-get install python3",
    ) else {
        return;
    };
    let ns = NetNs::new(&ip);
    run_container(&engine, "web");
    run_container(&engine, "db");
    let env = Env::new(Path::new("/bin/false"), "http://127.0.0.1:9", "");
    env.use_docker(&engine.docker_host());

    let (code, first) = report(&ns, &env);
    assert_eq!(code, 0, "{first:#}");
    assert_eq!(first["baseline"], Value::Null);
    let web = &first["snapshot"]["containers"]["web"];
    assert_eq!(web["state"], "running", "{first:#}");
    assert_eq!(
        web["exit_code"],
        Value::Null,
        "a running container has no exit code"
    );
    assert_eq!(
        first["snapshot"]["sockets"],
        serde_json::json!({}),
        "{first:#}"
    );

    let (code, second) = report(&ns, &env);
    assert_eq!(code, 0, "{second:#}");
    assert_eq!(second["baseline"], first["saved"]);
    assert_eq!(second["changes"], serde_json::json!([]), "{second:#}");

    let mut listener = ns
        .exec(&[
            python.to_str().unwrap(),
            "-c",
            "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',18099))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(120)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(listener.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let out = engine.podman(&["stop", "-t", "1", "db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An operator's `[report] ignore` leaves the listener out: the container alone changed.
    let (_, ignored) = report_with(
        &ns,
        &env,
        &["-c", "report.ignore=[\"socket tcp 127.0.0.1:*\"]"],
        &["--no-save"],
    );
    let ignored_changes = ignored["changes"].as_array().unwrap();
    assert_eq!(ignored_changes.len(), 1, "{ignored:#}");
    assert_eq!(ignored_changes[0]["identity"]["name"], "db");
    assert!(
        !ignored["snapshot"]["sockets"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("tcp 127.0.0.1:")),
        "{ignored:#}"
    );

    let (code, third) = report(&ns, &env);
    let _ = listener.kill();
    let _ = listener.wait();
    let changes = third["changes"].as_array().unwrap();
    let kinds: Vec<(String, String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["identity"]["type"].as_str().unwrap().to_string(),
                c["identity"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("state_changed".into(), "container".into(), "db".into()),
            (
                "port_opened".into(),
                "socket".into(),
                "tcp 127.0.0.1:18099".into()
            ),
        ],
        "{third:#}"
    );
    let db = &changes[0];
    assert_eq!(db["before"]["state"], "running");
    assert_eq!(db["after"]["state"], "exited");
    assert!(db["after"]["exit_code"].is_i64(), "{db:#}");
    assert_eq!(changes[1]["after"]["process"], "python3", "{third:#}");
    // The stopped container needs attention (the agent can look); a loopback listener does not.
    let attention = third["needs_attention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{third:#}");
    assert_eq!(attention[0]["about"], "container db");
    assert_eq!(attention[0]["who"], "agent");
    assert_eq!(code, 1, "exit 1 when something needs attention");
    assert_eq!(third["exit"], "needs_attention");
}

/// `--no-save` compares without moving the baseline; `--keep` bounds the baselines kept; an
/// unreadable baseline is named, kept, and the newest readable one is used.
#[test]
fn baselines_are_bounded_and_an_unreadable_one_is_named_not_lost() {
    let env = Env::new(Path::new("/bin/false"), "http://127.0.0.1:9", "");
    let run = |args: &[&str]| {
        let out = env
            .steward()
            .args(["--json", "report"])
            .args(args)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v
    };
    let first = run(&["--keep", "2"]);
    let saved = first["saved"].as_str().unwrap().to_string();
    let probe = run(&["--no-save"]);
    assert_eq!(probe["saved"], Value::Null);
    assert_eq!(probe["baseline"], saved.as_str());
    run(&["--keep", "2"]);
    run(&["--keep", "2"]);
    let dir = env.state().join("baseline");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    // The newest is torn: it is named, kept, and the one before it is compared with.
    let newest = dir.join(names.last().unwrap());
    std::fs::write(&newest, "{ torn").unwrap();
    let after = run(&["--no-save"]);
    assert_eq!(after["baseline"], names[0].as_str(), "{after:#}");
    let unreadable = after["unreadable_baselines"].to_string();
    assert!(
        unreadable.contains(names.last().unwrap().as_str()),
        "{unreadable}"
    );
    assert!(newest.exists());
}
