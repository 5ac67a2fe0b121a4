//! A job file that could not be read (truncated by a crash or a full disk) is moved to
//! `queue/bad/`: the work it held will never run. Its signal must not then be refused for the
//! rest of a cooldown for work that does not exist, so its (goal, subject) is released from
//! cooldown and its enqueue no longer counts against the rate limits.
//!
//! The job file is unreadable, so which goal and subject it held comes from the record: the
//! `routing` event that queued it names the job (`detail.job_id`), and a job is never queued
//! without that event. Only the event days a cooldown or a rate limit can still reach are read.

use std::io::BufRead;
use std::path::Path;

use time::OffsetDateTime;

use super::{HOUR, Routed, Router, RouterError};
use crate::daemon::queue::{QueueError, Recovered};

/// The enqueue that queued a lost job, as its routing event recorded it.
#[derive(Debug, Clone)]
struct LostJob {
    goal: String,
    subject: String,
    source: String,
    fingerprint: String,
    /// When it was queued (unix seconds).
    at: i64,
}

impl Router {
    /// The queue's start-time recovery ([`crate::daemon::queue::Queue::recover`]), and each job file it
    /// moved aside released from cooldown (a `cooldown_released` event for each).
    pub fn recover_queue(&mut self, now: OffsetDateTime) -> Result<Recovered, RouterError> {
        let recovered = self.queue.recover(now)?;
        for q in &recovered.quarantined {
            if let Some(job) = &q.job {
                self.release_lost_job(job, now);
            }
        }
        Ok(recovered)
    }

    /// Job files a batch's scan found unreadable (and moved aside) are released too.
    pub(super) fn release_quarantined(
        &mut self,
        decisions: &[Result<Routed, RouterError>],
        now: OffsetDateTime,
    ) {
        for d in decisions {
            if let Err(RouterError::Queue(QueueError::Corrupt { path, .. })) = d
                && let Some(job) = crate::daemon::queue::job_id_of(path)
            {
                self.release_lost_job(&job, now);
            }
        }
    }

    /// Releases the cooldown and rate-limit count of the lost job `job`, and records it (or
    /// that its routing record was not found, so nothing could be released).
    pub fn release_lost_job(&mut self, job: &str, now: OffsetDateTime) {
        let horizon = self.max_cooldown().max(HOUR);
        let found = match find_enqueue(&self.ledger.root().join("events"), job, now, horizon) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(%job, "cannot look for the routing record of a lost job: {e}");
                None
            }
        };
        let data = match &found {
            Some(lost) => {
                let released = self.release(&lost.goal, &lost.subject, &lost.source, lost.at);
                serde_json::json!({"job": job, "goal": lost.goal, "subject": lost.subject,
                    "fingerprint": lost.fingerprint, "released": released,
                    "reason": format!("the file of job {job} could not be read and was moved \
                        aside: its work will not run, so `{}` on `{}` is not held in cooldown \
                        for it", lost.goal, lost.subject)})
            }
            None => serde_json::json!({"job": job, "released": false,
                "reason": format!("the file of job {job} could not be read and was moved aside; \
                    no routing record queued it within {horizon} s, so no cooldown held for it")}),
        };
        tracing::warn!(%job, "lost job file: {}", data["reason"].as_str().unwrap_or_default());
        if let Err(e) = self.ledger.event("cooldown_released", None, data) {
            tracing::error!(%job, "cannot record the cooldown_released event: {e}");
        }
    }

    /// The longest cooldown of any route (or the default).
    fn max_cooldown(&self) -> i64 {
        let secs = self
            .routes
            .routes()
            .iter()
            .filter_map(|r| r.cooldown_secs)
            .chain([self.settings.cooldown_secs])
            .max()
            .unwrap_or(0);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }
}

/// The `routing` event with decision `enqueue` that queued `job`, searched in the event days
/// from `now` back over `horizon` seconds, newest first.
fn find_enqueue(
    events: &Path,
    job: &str,
    now: OffsetDateTime,
    horizon: i64,
) -> std::io::Result<Option<LostJob>> {
    let needle = format!("\"job_id\":\"{job}\"");
    let oldest = (now - time::Duration::seconds(horizon)).date();
    let mut day = now.date();
    loop {
        let name = format!(
            "{:04}-{:02}-{:02}.jsonl",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        match std::fs::File::open(events.join(name)) {
            Ok(f) => {
                for line in std::io::BufReader::new(f).lines() {
                    let line = line?;
                    if line.contains(&needle)
                        && let Some(lost) = enqueue_of(&line, job)
                    {
                        return Ok(Some(lost));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match day.previous_day() {
            Some(d) if d >= oldest => day = d,
            _ => return Ok(None),
        }
    }
}

fn enqueue_of(line: &str, job: &str) -> Option<LostJob> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let d = &v["detail"];
    if v["kind"] != "routing" || d["decision"] != "enqueue" || d["job_id"] != job {
        return None;
    }
    let at = OffsetDateTime::parse(
        v["at"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some(LostJob {
        goal: d["goal"].as_str()?.to_string(),
        subject: v["subject"].as_str()?.to_string(),
        source: v["source"].as_str()?.to_string(),
        fingerprint: v["fingerprint"].as_str()?.to_string(),
        at: at.unix_timestamp(),
    })
}
