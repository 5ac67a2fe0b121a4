//! The `container` check against a real engine (podman's Docker API): running, exited, unknown,
//! a restart count, a missing healthcheck, and an engine socket that is absent.

use std::path::Path;

use serde_json::Value;

use crate::common::cli::Env;
use crate::common::podman::{IMAGE, Podman};

const CHECKS: &str = r#"
[[check]]
name = "web-up"
description = "web runs and was not OOM-killed"
kind = "container"
container = "web"

[[check]]
name = "web-healthy"
description = "web answers its healthcheck"
kind = "container"
container = "web"
healthy = true

[[check]]
name = "job-up"
description = "job runs"
kind = "container"
container = "job"
restarts_below = 1

[[check]]
name = "ghost-up"
description = "a container nobody made"
kind = "container"
container = "ghost"
"#;

fn validate(env: &Env) -> (i32, Value) {
    let out = env.steward().args(["--json", "validate"]).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

fn result<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["results"].as_array().into_iter().flatten())
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result for {name}: {report:#}"))
}

#[test]
fn container_checks_judge_what_the_engine_says() {
    let Some(engine) = Podman::start() else {
        return;
    };
    for (name, cmd) in [("web", "sleep 600"), ("job", "exit 3")] {
        let out = engine.podman(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            name,
            IMAGE,
            "sh",
            "-c",
            cmd,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = engine.podman(&["wait", "job"]);
    let env = Env::new(Path::new("/bin/false"), "http://127.0.0.1:9", "");
    std::fs::write(env.dir.path().join("context/containers.toml"), CHECKS).unwrap();
    env.use_docker(&engine.docker_host());

    let (code, report) = validate(&env);
    assert_ne!(code, 0, "failing checks fail the validation: {report:#}");
    let web = result(&report, "web-up");
    assert_eq!(web["status"], "pass", "{web:#}");
    assert_eq!(web["observed"]["state"], "running");
    let healthy = result(&report, "web-healthy");
    assert_eq!(healthy["status"], "fail");
    assert!(
        healthy["detail"]
            .as_str()
            .unwrap()
            .contains("no healthcheck"),
        "{healthy:#}"
    );
    let job = result(&report, "job-up");
    assert_eq!(job["status"], "fail");
    assert!(
        job["detail"].as_str().unwrap().contains("state is exited"),
        "{job:#}"
    );
    assert_eq!(job["observed"]["exit_code"], 3, "{job:#}");
    let ghost = result(&report, "ghost-up");
    assert_eq!(ghost["status"], "fail");
    assert!(
        ghost["detail"]
            .as_str()
            .unwrap()
            .contains("no container `ghost`"),
        "{ghost:#}"
    );

    // No engine here: the checks are unavailable, never a pass and never a failure.
    let text = std::fs::read_to_string(&env.config).unwrap();
    let gone = env.dir.path().join("no-such.sock");
    std::fs::write(
        &env.config,
        text.replace(&engine.docker_host(), &format!("unix://{}", gone.display())),
    )
    .unwrap();
    let (code, report) = validate(&env);
    assert_eq!(
        result(&report, "web-up")["status"],
        "unavailable",
        "{report:#}"
    );
    assert_eq!(result(&report, "ghost-up")["status"], "unavailable");
    assert_eq!(code, 0, "{report:#}");
}
