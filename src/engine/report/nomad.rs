//! Nomad jobs through the agent's HTTP API (`NOMAD_ADDR`, else `http://127.0.0.1:4646`; the
//! token from `NOMAD_TOKEN`): each job's status and version (`/v1/jobs`, `/v1/job/ID`) and its
//! allocations by client status, with those a deployment marked unhealthy (`/v1/allocations`).
//! No agent at the default address means no Nomad here: no section, not an error. An address
//! the operator set that does not answer, or an answer steward cannot read, is named in the
//! snapshot's `unavailable`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::snapshot::NomadJob;

pub const DEFAULT_ADDR: &str = "http://127.0.0.1:4646";
/// How long one API call may take: a hung agent must not hang the report.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Jobs read at most (one request each for the version).
pub const MAX_JOBS: usize = 200;
/// Allocations read at most: a bound on the answer, not on the cluster.
const MAX_ALLOCATIONS: usize = 5000;

/// Where the agent is, as the environment says.
#[derive(Debug, Clone)]
pub struct NomadSource {
    pub addr: String,
    /// Whether the operator named the address (then not answering is worth saying).
    pub explicit: bool,
    pub token: Option<String>,
}

impl NomadSource {
    pub fn from_env() -> NomadSource {
        let addr = std::env::var("NOMAD_ADDR")
            .ok()
            .filter(|a| !a.trim().is_empty());
        NomadSource {
            explicit: addr.is_some(),
            addr: addr.unwrap_or_else(|| DEFAULT_ADDR.to_string()),
            token: std::env::var("NOMAD_TOKEN").ok().filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobStub {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    namespace: Option<String>,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Job {
    #[serde(default)]
    version: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AllocStub {
    #[serde(rename = "JobID")]
    job_id: String,
    #[serde(default)]
    namespace: Option<String>,
    client_status: String,
    #[serde(default)]
    deployment_status: Option<DeploymentStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeploymentStatus {
    #[serde(default)]
    healthy: Option<bool>,
}

/// `Ok(None)`: no Nomad here. Jobs are keyed by id, `NAMESPACE/ID` outside `default`.
pub async fn collect(src: &NomadSource) -> Result<Option<BTreeMap<String, NomadJob>>, String> {
    let client = reqwest::Client::builder()
        .timeout(API_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let api = Api { client, src };
    let stubs: Vec<JobStub> = match api.get("/v1/jobs?namespace=*").await {
        Ok(s) => s,
        Err(Failure::Unreachable(_)) if !src.explicit => return Ok(None),
        Err(f) => return Err(f.to_string()),
    };
    let mut jobs = BTreeMap::new();
    for stub in stubs.iter().take(MAX_JOBS) {
        let ns = stub.namespace.as_deref().unwrap_or("default");
        let path = format!("/v1/job/{}?namespace={}", encode(&stub.id), encode(ns));
        let job: Job = api.get(&path).await.map_err(|f| f.to_string())?;
        jobs.insert(
            key(ns, &stub.id),
            NomadJob {
                status: stub.status.clone(),
                version: job.version,
                allocations: BTreeMap::new(),
                unhealthy: 0,
            },
        );
    }
    let allocs: Vec<AllocStub> = api
        .get("/v1/allocations?namespace=*")
        .await
        .map_err(|f| f.to_string())?;
    for a in allocs.iter().take(MAX_ALLOCATIONS) {
        let ns = a.namespace.as_deref().unwrap_or("default");
        let Some(job) = jobs.get_mut(&key(ns, &a.job_id)) else {
            continue;
        };
        *job.allocations.entry(a.client_status.clone()).or_insert(0) += 1;
        let unhealthy = a.deployment_status.as_ref().and_then(|d| d.healthy) == Some(false);
        if unhealthy || a.client_status == "failed" || a.client_status == "lost" {
            job.unhealthy += 1;
        }
    }
    Ok(Some(jobs))
}

fn key(ns: &str, id: &str) -> String {
    if ns == "default" {
        id.to_string()
    } else {
        format!("{ns}/{id}")
    }
}

/// Percent-encodes what is not unreserved: a job id may hold `/` or `?`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'*' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

enum Failure {
    /// Nothing listens there (connection refused, no route): no agent.
    Unreachable(String),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

struct Api<'a> {
    client: reqwest::Client,
    src: &'a NomadSource,
}

impl Api<'_> {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        let url = format!("{}{path}", self.src.addr.trim_end_matches('/'));
        let mut req = self.client.get(&url);
        if let Some(t) = &self.src.token {
            req = req.header("X-Nomad-Token", t);
        }
        let resp = req.send().await.map_err(|e| {
            let m = format!("the Nomad API at {}: {e}", self.src.addr);
            if e.is_connect() {
                Failure::Unreachable(m)
            } else {
                Failure::Other(m)
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Failure::Other(format!(
                "the Nomad API: GET {path}: HTTP {status}"
            )));
        }
        resp.json()
            .await
            .map_err(|e| Failure::Other(format!("the Nomad API: GET {path}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering Nomad's API shapes: `routes` maps a path (with query) to a
    /// JSON body; anything else is a 404. Returns its address.
    async fn serve(routes: Vec<(&'static str, String)>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                        Some((_, b)) => ("200 OK", b.clone()),
                        None => ("404 Not Found", format!("no route {path}")),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn source(addr: &str, explicit: bool) -> NomadSource {
        NomadSource {
            addr: addr.into(),
            explicit,
            token: None,
        }
    }

    fn cluster(version: u64, healthy: bool) -> Vec<(&'static str, String)> {
        let jobs = serde_json::json!([
            {"ID": "web", "Name": "web", "Namespace": "default", "Status": "running", "Type": "service"},
            {"ID": "batch", "Name": "batch", "Namespace": "ops", "Status": "dead", "Type": "batch"}
        ]);
        let allocs = serde_json::json!([
            {"ID": "a1", "JobID": "web", "Namespace": "default", "ClientStatus": "running", "JobVersion": version,
             "DeploymentStatus": {"Healthy": true}},
            {"ID": "a2", "JobID": "web", "Namespace": "default", "ClientStatus": "running", "JobVersion": version,
             "DeploymentStatus": {"Healthy": healthy}},
            {"ID": "a3", "JobID": "batch", "Namespace": "ops", "ClientStatus": "complete", "JobVersion": 0,
             "DeploymentStatus": null},
            {"ID": "a4", "JobID": "gone", "Namespace": "default", "ClientStatus": "failed"}
        ]);
        vec![
            ("/v1/jobs?namespace=*", jobs.to_string()),
            (
                "/v1/job/web?namespace=default",
                serde_json::json!({"ID": "web", "Version": version}).to_string(),
            ),
            (
                "/v1/job/batch?namespace=ops",
                serde_json::json!({"ID": "batch", "Version": 0}).to_string(),
            ),
            ("/v1/allocations?namespace=*", allocs.to_string()),
        ]
    }

    #[tokio::test]
    async fn jobs_with_versions_and_allocation_health() {
        let addr = serve(cluster(3, false)).await;
        let jobs = collect(&source(&addr, true)).await.unwrap().unwrap();
        assert_eq!(jobs.keys().collect::<Vec<_>>(), ["ops/batch", "web"]);
        let web = &jobs["web"];
        assert_eq!(
            (web.status.as_str(), web.version, web.unhealthy),
            ("running", 3, 1)
        );
        assert_eq!(web.allocations["running"], 2);
        assert_eq!(jobs["ops/batch"].allocations["complete"], 1);
        assert_eq!(jobs["ops/batch"].unhealthy, 0);
    }

    #[tokio::test]
    async fn the_diff_and_attention_of_a_deploy_that_went_unhealthy() {
        use crate::engine::report::{attention, diff, snapshot};
        let snap = |jobs| snapshot::Snapshot {
            nomad_jobs: jobs,
            ..snapshot::Snapshot::empty("h", time::OffsetDateTime::UNIX_EPOCH)
        };
        let before = collect(&source(&serve(cluster(3, true)).await, true)).await;
        let after = collect(&source(&serve(cluster(4, false)).await, true)).await;
        let (before, after) = (
            snap(before.unwrap().unwrap()),
            snap(after.unwrap().unwrap()),
        );
        let changes = diff::diff(&before, &after);
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| (c.kind, c.identity.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (diff::ChangeKind::GenerationChanged, "web"),
                (diff::ChangeKind::StateChanged, "web")
            ]
        );
        assert_eq!(changes[0].before["version"], 3);
        assert_eq!(changes[0].after["version"], 4);
        let att = attention::needs_attention(&changes);
        assert_eq!(att.len(), 1, "{att:?}");
        assert_eq!(att[0].who, attention::Who::Agent);
        assert!(
            att[0].what.contains("1 unhealthy allocation"),
            "{}",
            att[0].what
        );
        assert!(diff::diff(&after, &after).is_empty());
    }

    #[tokio::test]
    async fn no_agent_at_the_default_address_is_no_section_but_a_named_one_is_unavailable() {
        // A port that was just free: nothing listens there.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", free.local_addr().unwrap());
        drop(free);
        assert_eq!(collect(&source(&addr, false)).await.unwrap(), None);
        let err = collect(&source(&addr, true)).await.unwrap_err();
        assert!(err.contains("the Nomad API at"), "{err}");
        // An agent that answers but refuses (ACLs) is unavailable even at the default address.
        let addr = serve(vec![]).await;
        let err = collect(&source(&addr, false)).await.unwrap_err();
        assert!(err.contains("HTTP 404"), "{err}");
    }
}
