//! Service contracts end to end, against a real container engine (podman's Docker API): a
//! workspace declaring services for this host is judged by `steward report` (a service not
//! running, then one running another image, is drift: exit 1), the drift raised with
//! `--signal` reaches the router (its `routing` event; the same drift again is merged by
//! fingerprint), and the run it starts about the service gets the contract's healthcheck as a
//! post-action check (in the run record) — real claude against the scripted model.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::claude_bin;
use crate::common::cli::{Env, ScriptedModel};
use crate::common::podman::{IMAGE, Podman};

const OTHER_IMAGE: &str = "localhost/busybox:other";

const VERDICT: &str = r#"
[[turn]]
verdict = { status = "ok", summary = "looked at the drift", findings = [], actions_taken = [], proposed_actions = [], knowledge = [] }
"#;

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn declare(env: &Env, name: &str, yaml: &str) {
    let dir = env.dir.path().join("workspace/services").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("service.yaml"), yaml).unwrap();
}

/// The config uses `engine` for containers, without the Docker watch.
fn use_engine(env: &Env, engine: &Podman) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "{text}\n[docker]\nhost = \"{}\"\nwatch = false\n",
            engine.docker_host()
        ),
    )
    .unwrap();
}

fn run_container(engine: &Podman, name: &str, image: &str) {
    let out = engine.podman(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        image,
        "sleep",
        "600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `steward --json report --no-save ARGS`: no baseline is written, so there are never changes
/// between snapshots (the host's own listeners come and go): only drift needs attention.
fn report(env: &Env, args: &[&str]) -> (i32, Value) {
    let out = env
        .steward()
        .args(["--json", "report", "--no-save"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap(), json(&out))
}

fn drift_of(v: &Value) -> Vec<(String, String)> {
    v["drift"]
        .as_array()
        .unwrap_or_else(|| panic!("no drift list: {v:#}"))
        .iter()
        .map(|d| {
            (
                d["service"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_service_not_running_then_running_another_image_is_drift() {
    let Some(engine) = Podman::start() else {
        return;
    };
    let env = Env::new(Path::new("/bin/false"), "http://127.0.0.1:9", "");
    use_engine(&env, &engine);
    let host = this_host();
    declare(&env, "web", &format!("owner: {host}\nimage: {IMAGE}\n"));
    declare(
        &env,
        "db",
        &format!(
            "owner: {}\nimage: {IMAGE}\ncontainer: db-main\n",
            host.to_uppercase()
        ),
    );
    // Another node's service is not this host's to run.
    declare(&env, "far", &format!("owner: not-{host}\nimage: {IMAGE}\n"));
    run_container(&engine, "web", IMAGE);

    let (code, first) = report(&env, &[]);
    assert_eq!(
        drift_of(&first),
        [("db".to_string(), "not_running".to_string())],
        "{first:#}"
    );
    assert_eq!(first["drift"][0]["state"], "absent");
    assert_eq!(first["drift"][0]["container"], "db-main");
    assert_eq!(first["services"]["declared"], 3);
    assert_eq!(first["services"]["here"], 2);
    let attention = first["needs_attention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{first:#}");
    assert_eq!(attention[0]["about"], "service db");
    assert_eq!(attention[0]["who"], "agent");
    assert_eq!(code, 1, "drift needs attention: exit 1");

    let tagged = engine.podman(&["tag", IMAGE, OTHER_IMAGE]);
    assert!(
        tagged.status.success(),
        "{}",
        String::from_utf8_lossy(&tagged.stderr)
    );
    run_container(&engine, "db-main", OTHER_IMAGE);
    let (code, second) = report(&env, &[]);
    assert_eq!(
        drift_of(&second),
        [("db".to_string(), "image".to_string())],
        "{second:#}"
    );
    assert_eq!(second["drift"][0]["actual_image"], OTHER_IMAGE);
    assert_eq!(second["needs_attention"][0]["who"], "person");
    assert_eq!(code, 1);

    // The text report says it too.
    let out = env
        .steward()
        .args(["report", "--no-save"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 declared service(s), 2 for this host, 1 drifted"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "runs {OTHER_IMAGE} instead of the declared {IMAGE}"
        )),
        "{text}"
    );

    // As declared: no drift, exit 0.
    assert!(engine.podman(&["rm", "-f", "db-main"]).status.success());
    run_container(&engine, "db-main", IMAGE);
    let (code, third) = report(&env, &[]);
    assert_eq!(drift_of(&third), [], "{third:#}");
    assert_eq!(code, 0, "{third:#}");

    // A broken contract is the operator's to fix (exit 1), never "no drift".
    declare(
        &env,
        "web",
        &format!("owner: {host}\nimage: {IMAGE}\nports: [80]\n"),
    );
    let (code, broken) = report(&env, &[]);
    assert_eq!(code, 1);
    let why = broken["services"]["not_judged"].as_str().unwrap();
    assert!(
        why.contains("services/web/service.yaml:3: field `ports`"),
        "{why}"
    );
    assert_eq!(broken["needs_attention"][0]["who"], "operator");
}

#[test]
fn drift_raised_as_a_signal_is_routed_and_its_run_checks_the_contracts_healthcheck() {
    let Some(claude) = claude_bin() else { return };
    let Some(engine) = Podman::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), VERDICT);
    let env = Env::new(&claude, &model.url, "");
    use_engine(&env, &engine);
    let host = this_host();
    let marker = tmp.path().join("db-is-up");
    declare(
        &env,
        "db",
        &format!(
            "owner: {host}\nimage: {IMAGE}\nhealthcheck:\n  kind: file\n  path: {}\n",
            marker.display()
        ),
    );

    let (code, first) = report(&env, &["--signal"]);
    assert_eq!(code, 1, "{first:#}");
    let signals = first["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 1, "{first:#}");
    assert_eq!(signals[0]["subject"], "db");
    assert_eq!(signals[0]["via"], "inline");
    assert_eq!(signals[0]["decision"], "enqueue", "{first:#}");
    let run_id = signals[0]["run"]["id"].as_str().unwrap().to_string();

    // The router's decision is an event, with the drift's source and subject.
    let events = std::fs::read_dir(env.state().join("events"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    let routing: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "routing")
        .collect();
    assert_eq!(routing.len(), 1, "{events}");
    assert!(
        routing[0].to_string().contains("\"drift\""),
        "{}",
        routing[0]
    );

    // The run about `db` checked the contract's healthcheck after the agent: the marker file
    // is absent, so it failed, and the run with it.
    let run = env.run_dir(&run_id);
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checks-after.json")).unwrap())
            .unwrap();
    let post = after["post"].as_array().unwrap();
    let health = post
        .iter()
        .find(|c| c["name"] == "db-health")
        .unwrap_or_else(|| panic!("{after:#}"));
    assert_eq!(health["status"], "fail", "{health:#}");
    assert_eq!(health["kind"], "file");
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_ne!(result["outcome"], "success", "{result:#}");

    // The same drift again is the same fingerprint: the router does not start a second run.
    let (_, again) = report(&env, &["--signal"]);
    let decision = again["signals"][0]["decision"].as_str().unwrap();
    assert_ne!(decision, "enqueue", "{again:#}");
    assert!(again["signals"][0]["run"].is_null(), "{again:#}");
}

/// Every event of `kind` in the state's event log.
fn events_of(env: &Env, kind: &str) -> Vec<Value> {
    let Ok(days) = std::fs::read_dir(env.state().join("events")) else {
        return Vec::new();
    };
    days.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// `steward serve` with `[report] signal_every_secs` judges the contracts itself: the declared
/// service that does not run is raised as a drift signal, routed (`service-drift`) into a run
/// about it, with no operator command; each pass is a `drift_pass` event, and the daemon stops
/// cleanly with the pass on.
#[test]
fn the_daemon_raises_drift_on_its_own_schedule() {
    let Some(claude) = claude_bin() else { return };
    let Some(engine) = Podman::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(tmp.path(), VERDICT);
    let env = Env::new(&claude, &model.url, "");
    use_engine(&env, &engine);
    env.append_config("[report]\nsignal_every_secs = 1\n");
    declare(
        &env,
        "db",
        &format!("owner: {}\nimage: {IMAGE}\n", this_host()),
    );

    let serve = crate::common::serve::Serve::start(&env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let run = loop {
        let done = std::fs::read_dir(env.state().join("runs"))
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.join("result.json").exists())
            });
        if let Some(run) = done {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no run within 180 s; drift passes: {:#?}",
            events_of(&env, "drift_pass")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    serve.stop();

    // The pass raised the drift of `db`, and the router queued it.
    let passes = events_of(&env, "drift_pass");
    let first = passes
        .iter()
        .find(|p| p["raised"].as_array().is_some_and(|r| !r.is_empty()))
        .unwrap_or_else(|| panic!("{passes:#?}"));
    assert_eq!(first["ok"], true, "{first:#}");
    assert_eq!(first["raised"][0]["service"], "db", "{first:#}");
    assert_eq!(first["raised"][0]["decision"], "enqueue", "{first:#}");
    // Later passes raise the same drift again: the router never starts a second run for it.
    let enqueued = events_of(&env, "routing")
        .into_iter()
        .filter(|e| e["source"] == "drift" && e["decision"] == "enqueue")
        .count();
    assert_eq!(enqueued, 1, "{:#?}", events_of(&env, "routing"));
    // The run is the incident goal's, about the service, from the drift signal.
    let signal: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("signal.json")).unwrap()).unwrap();
    assert_eq!(signal["source"], "drift", "{signal:#}");
    assert_eq!(signal["subject"], "db", "{signal:#}");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["goal"], "incident", "{meta:#}");
}

/// A drift pass that cannot judge (a contract that does not parse) is never silent: it is a
/// `drift_pass` event with `ok: false` and the reason, every pass, and nothing is routed.
#[test]
fn a_failed_drift_pass_is_recorded_with_its_reason() {
    let Some(claude) = claude_bin() else { return };
    let env = Env::new(&claude, "http://127.0.0.1:9", "");
    env.append_config("[report]\nsignal_every_secs = 1\n");
    declare(
        &env,
        "web",
        &format!("owner: {}\nimage: {IMAGE}\nports: [80]\n", this_host()),
    );
    let serve = crate::common::serve::Serve::start(&env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while events_of(&env, "drift_pass").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 2 passes in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    serve.stop();
    for pass in events_of(&env, "drift_pass") {
        assert_eq!(pass["ok"], false, "{pass:#}");
        let why = pass["reason"].as_str().unwrap_or_default();
        assert!(why.contains("services/web/service.yaml:3"), "{pass:#}");
    }
    assert!(events_of(&env, "routing").is_empty());
}
