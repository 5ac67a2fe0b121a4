//! Container crash incidents: what `steward serve`'s Docker watch captured when a container
//! died — its last log lines at the moment of death and again a few seconds later, the crash's
//! class, whether it was stopped on purpose, and whether it is flapping. One file per incident
//! in `STATE/incidents/`; `steward incidents list|show` reads them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub mod classify;
pub mod store;

pub use classify::{Class, classify};
pub use store::{IncidentError, IncidentStore};

pub const INCIDENT_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flapping {
    /// Several deaths within minutes (`docker.acute_deaths` in `acute_window_secs`).
    Acute,
    /// Many deaths within a day (`docker.chronic_deaths` in `chronic_window_secs`).
    Chronic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub format: u32,
    pub id: String,
    pub container: String,
    pub container_id: String,
    pub image: String,
    /// When the engine says the container died.
    #[serde(with = "time::serde::rfc3339")]
    pub died: OffsetDateTime,
    /// The `die` event's time in nanoseconds (the watch's cursor).
    pub event_nanos: i64,
    /// The exit code the engine reported; absent when it did not say.
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub class: Class,
    /// Log patterns found in the captures (`panic:`, `Traceback`, …).
    pub log_patterns: Vec<String>,
    /// Stopped on purpose (a `kill` or `stop` event before the death): recorded, not raised.
    pub intentional: bool,
    #[serde(default)]
    pub intent: Option<String>,
    pub restart_count: u64,
    pub flapping: Option<Flapping>,
    /// Deaths of this container (not stopped on purpose) in the acute and chronic windows.
    pub deaths_acute: usize,
    pub deaths_chronic: usize,
    /// The last log lines, captured as soon as the death was seen.
    pub logs_at_death: String,
    /// Why the logs could not be captured, if they could not.
    #[serde(default)]
    pub logs_error: Option<String>,
    /// Milliseconds from receiving the `die` event to this record being written.
    pub capture_ms: u64,
    /// The second capture, `docker.recapture_secs` later (the restarted container's lines).
    #[serde(default)]
    pub logs_after: Option<String>,
    /// The signal raised into the router, if one was (its fingerprint).
    #[serde(default)]
    pub signal: Option<String>,
}

impl Incident {
    /// The one-line summary `incidents list` and the signal use.
    pub fn summary(&self) -> String {
        let code = self
            .exit_code
            .map_or("no exit code".to_string(), |c| format!("exit {c}"));
        let mut s = format!("{} {} ({code})", self.container, self.class.as_str());
        if self.intentional {
            s.push_str(", stopped on purpose");
        }
        if let Some(f) = self.flapping {
            s.push_str(match f {
                Flapping::Acute => ", flapping (acute)",
                Flapping::Chronic => ", flapping (chronic)",
            });
        }
        s
    }
}
