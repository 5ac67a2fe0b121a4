//! `steward serve`'s watch of the Docker engine's events. On a container's `die` it
//! captures the last log lines at once and again `docker.recapture_secs` later, classifies the
//! crash, tells a stop on purpose (a `kill` or `stop` event shortly before) from a crash, counts
//! deaths for acute and chronic flapping, records an incident (`STATE/incidents/`), and raises a
//! `docker` signal into the router for a crash. The watch reconnects when the engine goes away
//! and resumes from the last event handled ([`cursor`]) without repeating one.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::base::redact::Redactor;
use crate::base::signal::{Severity, Signal, Source};
use crate::config::docker::DockerConfig;
use crate::engine::incident::{Class, Flapping, INCIDENT_FORMAT, Incident, IncidentStore};

pub mod capture;
pub mod cursor;
pub mod events;
pub mod flapping;

/// A die this soon after a `kill` or `stop` event of the same container was asked for.
const INTENT_WINDOW_NANOS: i64 = 30 * 1_000_000_000;
/// Lines of the capture the signal carries (the incident has all of them).
const SIGNAL_LOG_LINES: usize = 40;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Watch {
    pub host: String,
    pub cfg: DockerConfig,
    pub state_dir: PathBuf,
    pub redactor: Arc<Redactor>,
}

/// Per-connection memory: the last `kill`/`stop` of each container, and deaths.
#[derive(Default)]
struct Seen {
    asked_to_stop: HashMap<String, (i64, String)>,
    /// The last `oom` event of each container: the kernel killed it for memory.
    oom: HashMap<String, i64>,
    deaths: flapping::Deaths,
}

impl Watch {
    /// Watches until `stop` turns true; signals for crashes go to `raise`.
    pub async fn run(self, raise: mpsc::Sender<Signal>, mut stop: watch::Receiver<bool>) {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let mut cursor = cursor::Cursor::load(&self.state_dir, i64::try_from(now).unwrap_or(0));
        let mut seen = Seen::default();
        let mut backoff = Duration::from_secs(1);
        let me = Arc::new(self);
        loop {
            let ran = tokio::select! {
                r = me.follow(&mut cursor, &mut seen, &raise) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match ran {
                Ok(()) => {
                    tracing::warn!(host = %me.host, "the Docker event stream ended; reconnecting");
                    backoff = Duration::from_secs(1);
                }
                Err(e) => {
                    tracing::warn!(host = %me.host, "Docker watch: {e}; retrying in {backoff:?}")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: the container events since the cursor, until the stream ends.
    async fn follow(
        self: &Arc<Self>,
        cursor: &mut cursor::Cursor,
        seen: &mut Seen,
        raise: &mpsc::Sender<Signal>,
    ) -> Result<(), String> {
        let docker = crate::engine::report::containers::connect(&self.host)?;
        docker
            .ping()
            .await
            .map_err(|e| format!("the Docker API at {}: {e}", self.host))?;
        // The whole stream, filtered here: podman's compatible API drops every event for a
        // `type` filter in list form, and a host makes few events.
        let mut events = events::EventStream::open(&self.host, &cursor.since()).await?;
        tracing::info!(host = %self.host, "watching Docker events");
        while let Some(event) = events.next().await? {
            if !cursor.is_new(event.nanos) {
                continue;
            }
            let nanos = event.nanos;
            self.handle(&docker, event, seen, raise).await;
            cursor.advance(nanos);
        }
        Ok(())
    }

    async fn handle(
        self: &Arc<Self>,
        docker: &Docker,
        event: events::ContainerEvent,
        seen: &mut Seen,
        raise: &mpsc::Sender<Signal>,
    ) {
        let received = Instant::now();
        let (id, attrs, nanos) = (event.id, event.attributes, event.nanos);
        match event.action.as_str() {
            "kill" | "stop" => {
                let how = match attrs.get("signal") {
                    Some(sig) if event.action == "kill" => format!("a kill event (signal {sig})"),
                    _ => format!("a {} event", event.action),
                };
                // A kill the container survived never meets its die: older ones go.
                seen.asked_to_stop
                    .retain(|_, (at, _)| nanos - *at <= INTENT_WINDOW_NANOS);
                seen.asked_to_stop.insert(id, (nanos, how));
            }
            "oom" => {
                seen.oom.retain(|_, at| nanos - *at <= INTENT_WINDOW_NANOS);
                seen.oom.insert(id, nanos);
            }
            "die" => {
                let incident = self.died(docker, &id, &attrs, nanos, seen, received).await;
                self.after_death(docker, incident, raise).await;
            }
            _ => {}
        }
    }

    /// The incident of a death, captured and written at once.
    async fn died(
        &self,
        docker: &Docker,
        id: &str,
        attrs: &HashMap<String, String>,
        nanos: i64,
        seen: &mut Seen,
        received: Instant,
    ) -> Incident {
        let logs = capture::tail(docker, id, self.cfg.log_lines).await;
        let facts = crate::engine::report::containers::inspect(docker, id).await;
        let (name, container) = match facts {
            Some((n, c)) => (n, Some(c)),
            None => (
                attrs.get("name").cloned().unwrap_or_else(|| id.to_string()),
                None,
            ),
        };
        let exit_code = attrs
            .get("exitCode")
            .and_then(|c| c.parse().ok())
            .or_else(|| container.as_ref().and_then(|c| c.exit_code));
        // The engine's flag, or an `oom` event just before (Docker sends one; the flag may lag).
        let oom_event = seen
            .oom
            .remove(id)
            .is_some_and(|at| nanos - at <= INTENT_WINDOW_NANOS);
        let oom_killed = oom_event || container.as_ref().is_some_and(|c| c.oom_killed);
        let (logs_at_death, logs_error) = match logs {
            Ok(text) => (self.redactor.redact(&text), None),
            Err(e) => (String::new(), Some(e)),
        };
        let (class, log_patterns) =
            crate::engine::incident::classify(exit_code, oom_killed, &logs_at_death);
        let intent = seen
            .asked_to_stop
            .remove(id)
            .filter(|(at, _)| nanos - at <= INTENT_WINDOW_NANOS)
            .map(|(_, how)| how);
        let count = match intent {
            Some(_) => None,
            None => Some(seen.deaths.record(&self.cfg, &name, nanos)),
        };
        let died = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let mut incident = Incident {
            format: INCIDENT_FORMAT,
            id: format!("{nanos}-{}", &id.get(..12).unwrap_or(id)),
            image: container
                .as_ref()
                .map(|c| c.image.clone())
                .or_else(|| attrs.get("image").cloned())
                .unwrap_or_default(),
            restart_count: container.as_ref().map_or(0, |c| c.restart_count),
            container: name,
            container_id: id.to_string(),
            died,
            event_nanos: nanos,
            exit_code,
            oom_killed,
            class,
            log_patterns,
            intentional: intent.is_some(),
            intent,
            flapping: count.as_ref().and_then(|c| c.flapping),
            deaths_acute: count.as_ref().map_or(0, |c| c.acute),
            deaths_chronic: count.as_ref().map_or(0, |c| c.chronic),
            logs_at_death,
            logs_error,
            capture_ms: 0,
            captured: OffsetDateTime::now_utc(),
            logs_after: None,
            signal: None,
        };
        // The fingerprint the crash is raised under (`after_death` raises it): one write.
        incident.signal = (!incident.intentional).then(|| crash_signal(&incident).fingerprint);
        self.write(incident, Some(received))
    }

    /// Records the incident (with the capture latency when `received` is given).
    fn write(&self, mut incident: Incident, received: Option<Instant>) -> Incident {
        if let Some(r) = received {
            incident.capture_ms = u64::try_from(r.elapsed().as_millis()).unwrap_or(u64::MAX);
            incident.captured = OffsetDateTime::now_utc();
        }
        if let Err(e) = IncidentStore::new(&self.state_dir).write(&incident) {
            tracing::error!(incident = %incident.id, "cannot record the incident: {e}");
        }
        incident
    }

    /// Raises the crash's signal, and captures the logs again a few seconds later.
    async fn after_death(
        self: &Arc<Self>,
        docker: &Docker,
        mut incident: Incident,
        raise: &mpsc::Sender<Signal>,
    ) {
        if !incident.intentional && raise.send(crash_signal(&incident)).await.is_err() {
            tracing::warn!("the router is gone: {} not raised", incident.id);
        }
        let me = Arc::clone(self);
        let docker = docker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(me.cfg.recapture_secs)).await;
            let later = capture::tail(&docker, &incident.container_id, me.cfg.log_lines).await;
            incident.logs_after = Some(match later {
                Ok(text) => me.redactor.redact(&text),
                Err(e) => format!("(not captured: {e})"),
            });
            me.write(incident, None);
        });
    }
}

/// The router's view of a crash: subject the container, the capture's end as untrusted text.
pub fn crash_signal(i: &Incident) -> Signal {
    let severity = match (i.class, i.flapping) {
        (_, Some(Flapping::Acute)) | (Class::Oom | Class::Segfault, _) => Severity::Critical,
        _ => Severity::Warning,
    };
    let mut labels = BTreeMap::from([
        ("container".to_string(), i.container.clone()),
        ("image".to_string(), i.image.clone()),
        ("class".to_string(), i.class.as_str().to_string()),
        ("incident".to_string(), i.id.clone()),
    ]);
    if let Some(code) = i.exit_code {
        labels.insert("exit_code".into(), code.to_string());
    }
    if let Some(f) = i.flapping {
        let f = if f == Flapping::Acute {
            "acute"
        } else {
            "chronic"
        };
        labels.insert("flapping".into(), f.to_string());
    }
    let tail: Vec<&str> = i
        .logs_at_death
        .lines()
        .rev()
        .take(SIGNAL_LOG_LINES)
        .collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    let annotations = BTreeMap::from([
        ("summary".to_string(), i.summary()),
        ("logs".to_string(), tail.join("\n")),
    ]);
    Signal {
        source: Source::Docker,
        subject: i.container.clone(),
        fingerprint: crate::base::signal::fingerprint(&["docker", &i.container, i.class.as_str()]),
        severity,
        labels,
        annotations,
        payload: serde_json::json!({ "incident": i.id }),
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
    .bounded()
}
