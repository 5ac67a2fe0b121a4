//! The `container` check: one container's state through the Docker API (bollard): running,
//! healthy, restarted fewer than N times, not OOM-killed. No socket here is `unavailable`; an
//! engine that does not answer is `error` (a check that cannot be evaluated proves nothing); a
//! container the engine does not know fails.

use serde_json::{Value, json};

use super::exec::CheckEnv;
use super::{CheckKind, CheckStatus};
use crate::base::docker::{self, Container};

type Eval = (CheckStatus, Value, Option<String>);

pub(super) async fn evaluate(kind: &CheckKind, env: &CheckEnv) -> Eval {
    let CheckKind::Container { container, .. } = kind else {
        return (
            CheckStatus::Error,
            Value::Null,
            Some("internal: not a container check".into()),
        );
    };
    let Some(host) = env.docker_host.as_deref() else {
        return (
            CheckStatus::Unavailable,
            Value::Null,
            Some("no Docker API socket is configured ([docker] host) or found".into()),
        );
    };
    let socket = host.strip_prefix("unix://").unwrap_or(host);
    if !std::path::Path::new(socket).exists() {
        return (
            CheckStatus::Unavailable,
            Value::Null,
            Some(format!("no Docker API socket at {socket}")),
        );
    }
    let found = match docker::connect(host) {
        Ok(api) => docker::look(&api, container).await,
        Err(e) => Err(e),
    };
    match found {
        Err(e) => (CheckStatus::Error, Value::Null, Some(e)),
        Ok(None) => (
            CheckStatus::Fail,
            Value::Null,
            Some(format!("the engine knows no container `{container}`")),
        ),
        Ok(Some((_, facts))) => judge(kind, &facts),
    }
}

/// Every expectation against what the engine said; the first unmet one is the detail.
fn judge(kind: &CheckKind, c: &Container) -> Eval {
    let CheckKind::Container {
        running,
        healthy,
        restarts_below,
        not_oom_killed,
        ..
    } = kind
    else {
        return (CheckStatus::Error, Value::Null, None);
    };
    let observed = json!({
        "state": c.state, "health": c.health, "restart_count": c.restart_count,
        "oom_killed": c.oom_killed, "exit_code": c.exit_code, "image": c.image,
    });
    let mut unmet = Vec::new();
    if *running && c.state != "running" {
        unmet.push(format!("state is {}", c.state));
    }
    if *healthy && c.health.as_deref() != Some("healthy") {
        unmet.push(match &c.health {
            Some(h) => format!("health is {h}"),
            None => "it has no healthcheck".to_string(),
        });
    }
    if let Some(n) = restarts_below
        && c.restart_count >= *n
    {
        unmet.push(format!("restarted {} time(s)", c.restart_count));
    }
    if *not_oom_killed && c.oom_killed {
        unmet.push("the kernel OOM-killed it".to_string());
    }
    if unmet.is_empty() {
        (CheckStatus::Pass, observed, None)
    } else {
        (CheckStatus::Fail, observed, Some(unmet.join("; ")))
    }
}

/// The expectation in words.
pub(super) fn expected(kind: &CheckKind) -> String {
    let CheckKind::Container {
        container,
        running,
        healthy,
        restarts_below,
        not_oom_killed,
    } = kind
    else {
        return String::new();
    };
    let mut parts = Vec::new();
    if *running {
        parts.push("running".to_string());
    }
    if *healthy {
        parts.push("healthy".to_string());
    }
    if let Some(n) = restarts_below {
        parts.push(format!("restarted fewer than {n} times"));
    }
    if *not_oom_killed {
        parts.push("not OOM-killed".to_string());
    }
    if parts.is_empty() {
        return format!("container {container} exists");
    }
    format!("container {container} {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(healthy: bool, restarts_below: Option<u64>) -> CheckKind {
        CheckKind::Container {
            container: "web".into(),
            running: true,
            healthy,
            restarts_below,
            not_oom_killed: true,
        }
    }

    fn facts(state: &str, health: Option<&str>, restarts: u64, oom: bool) -> Container {
        Container {
            id: "abc".into(),
            image: "busybox".into(),
            image_id: None,
            state: state.into(),
            exit_code: None,
            restart_count: restarts,
            health: health.map(str::to_string),
            oom_killed: oom,
        }
    }

    #[test]
    fn each_expectation_is_judged_and_named() {
        let ok = judge(
            &kind(true, Some(3)),
            &facts("running", Some("healthy"), 2, false),
        );
        assert_eq!(ok.0, CheckStatus::Pass, "{ok:?}");
        let (s, _, d) = judge(&kind(true, Some(3)), &facts("exited", None, 3, true));
        assert_eq!(s, CheckStatus::Fail);
        let d = d.unwrap();
        for part in [
            "state is exited",
            "no healthcheck",
            "restarted 3",
            "OOM-killed",
        ] {
            assert!(d.contains(part), "{d}");
        }
        let (s, _, d) = judge(
            &kind(false, None),
            &facts("running", Some("unhealthy"), 9, false),
        );
        assert_eq!(s, CheckStatus::Pass, "{d:?}: health and restarts not asked");
    }

    #[tokio::test]
    async fn no_socket_is_unavailable() {
        let env = CheckEnv {
            docker_host: None,
            ..CheckEnv::default()
        };
        assert_eq!(
            evaluate(&kind(false, None), &env).await.0,
            CheckStatus::Unavailable
        );
        let env = CheckEnv {
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            ..CheckEnv::default()
        };
        assert_eq!(
            evaluate(&kind(false, None), &env).await.0,
            CheckStatus::Unavailable
        );
    }

    #[test]
    fn the_expectation_reads_as_a_sentence() {
        assert_eq!(
            expected(&kind(true, Some(3))),
            "container web running, healthy, restarted fewer than 3 times, not OOM-killed"
        );
    }
}
