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
