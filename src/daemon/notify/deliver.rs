//! One delivery pass over the outbox. For each target, each pending message that is due:
//! given up when too old or out of attempts, recorded `rate_limited` when the target had
//! `max_per_hour` deliveries in the last hour, else sent once; the attempt (time, status,
//! error, duration) is written to its file. A failed attempt waits `retry_secs`, then twice as
//! long each time (at most an hour) before the next.

use std::time::Instant;

use time::OffsetDateTime;

use super::message::Message;
use super::outbox::{Attempt, DeliveryState, Outbox, Outgoing};
use super::{NotifyError, secret, send};
use crate::base::redact::Redactor;
use crate::config::Config;
use crate::config::notify::NotifyTarget;

/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: u64 = 3600;

/// What became of one message in a pass.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub target: String,
    pub key: String,
    /// An attempt was made and it was delivered.
    pub ok: bool,
    /// An attempt was made (false: given up or rate limited without one).
    pub attempted: bool,
    pub state: DeliveryState,
    pub error: Option<String>,
}

/// Attempts every due message of every target; with `now`, every pending one whatever its
/// backoff (the first pass after `serve` starts, and `steward notify flush`: someone may have
/// fixed the target meanwhile). Targets are served side by side, so that one that hangs delays
/// only its own messages; each target's messages go in order.
pub async fn deliver_due(
    cfg: &Config,
    outbox: &Outbox,
    now: bool,
) -> Result<Vec<Delivered>, NotifyError> {
    outbox.prune_done();
    let passes = cfg
        .notify
        .iter()
        .map(|t| deliver_target(cfg, t, outbox, now));
    let mut out = Vec::new();
    for pass in futures_util::future::join_all(passes).await {
        out.extend(pass?);
    }
    Ok(out)
}

/// One target's due messages, in order.
async fn deliver_target(
    cfg: &Config,
    t: &NotifyTarget,
    outbox: &Outbox,
    now: bool,
) -> Result<Vec<Delivered>, NotifyError> {
    let mut out = Vec::new();
    let mut delivered_last_hour = recent_deliveries(outbox, &t.name)?;
    for mut msg in outbox.pending(&t.name)? {
        if !now && msg.next_attempt > OffsetDateTime::now_utc() {
            continue;
        }
        let d = step(cfg, t, &mut msg, delivered_last_hour).await;
        if d.ok {
            delivered_last_hour += 1;
        }
        outbox.write(&msg)?;
        out.push(d);
    }
    Ok(out)
}

/// Deliveries of `target` in the last hour.
fn recent_deliveries(outbox: &Outbox, target: &str) -> Result<u32, NotifyError> {
    let hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    Ok(outbox
        .done(target)?
        .iter()
        .filter(|o| o.state == DeliveryState::Delivered)
        .filter(|o| o.attempts.last().is_some_and(|a| a.at >= hour_ago))
        .count() as u32)
}

/// One message's turn: give up, rate-limit, or one attempt.
async fn step(cfg: &Config, t: &NotifyTarget, msg: &mut Outgoing, recent: u32) -> Delivered {
    let now = OffsetDateTime::now_utc();
    let age = (now - msg.created).whole_seconds().max(0) as u64;
    let mut d = Delivered {
        target: t.name.clone(),
        key: msg.message.id.clone(),
        ok: false,
        attempted: false,
        state: msg.state,
        error: None,
    };
    if age > t.max_age_secs {
        msg.state = DeliveryState::GivenUp;
        msg.reason = Some(format!(
            "not delivered within max_age_secs = {} ({} attempts)",
            t.max_age_secs,
            msg.attempts.len()
        ));
    } else if recent >= t.max_per_hour {
        msg.state = DeliveryState::RateLimited;
        msg.reason = Some(format!(
            "target `{}` already delivered {recent} messages in the last hour (max_per_hour = {})",
            t.name, t.max_per_hour
        ));
    } else {
        let attempt = attempt(cfg, t, &msg.message).await;
        d.attempted = true;
        d.ok = attempt.ok;
        d.error = attempt.error.clone();
        msg.attempts.push(attempt);
        after_attempt(t, msg);
    }
    d.state = msg.state;
    if msg.state != DeliveryState::Pending && !d.ok {
        d.error = msg.reason.clone().or(d.error);
    }
    d
}

/// The state after an attempt: delivered, given up, or the next attempt scheduled.
fn after_attempt(t: &NotifyTarget, msg: &mut Outgoing) {
    let n = msg.attempts.len() as u32;
    let last_ok = msg.attempts.last().is_some_and(|a| a.ok);
    if last_ok {
        msg.state = DeliveryState::Delivered;
        msg.reason = None;
    } else if n >= t.max_attempts {
        msg.state = DeliveryState::GivenUp;
        msg.reason = Some(format!(
            "no attempt of {n} succeeded (max_attempts = {})",
            t.max_attempts
        ));
    } else {
        let wait = t
            .retry_secs
            .saturating_mul(1u64 << (n - 1).min(20))
            .min(MAX_BACKOFF_SECS);
        msg.next_attempt = OffsetDateTime::now_utc() + time::Duration::seconds(wait as i64);
    }
}

/// One attempt, timed, its error redacted of the target's secrets and steward's.
async fn attempt(cfg: &Config, t: &NotifyTarget, m: &Message) -> Attempt {
    let at = OffsetDateTime::now_utc();
    let clock = Instant::now();
    let sent = send::send(t, m).await;
    let mut secrets = cfg.known_secrets();
    secrets.extend(secret::all(t));
    let redactor = Redactor::new(secrets);
    Attempt {
        at,
        ok: sent.error.is_none(),
        status: sent.status,
        error: sent.error.map(|e| redactor.redact(&e)),
        duration_ms: clock.elapsed().as_millis() as u64,
    }
}

/// Sends `m` to `t` now, outside the outbox (`steward notify test`).
pub async fn send_now(cfg: &Config, t: &NotifyTarget, m: &Message) -> Attempt {
    attempt(cfg, t, m).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::notify::message::{About, Notice};

    fn target(name: &str, extra: &str) -> NotifyTarget {
        // Port 1 on loopback: refused at once.
        toml::from_str(&format!(
            "name = \"{name}\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n{extra}"
        ))
        .unwrap()
    }

    fn notice(key: &str) -> Notice {
        Notice {
            event: "escalation".into(),
            severity: "critical",
            key: key.into(),
            summary: "s".into(),
            about: About::Host,
            subject: None,
            command: "c".into(),
        }
    }

    #[tokio::test]
    async fn out_of_attempts_is_given_up_and_over_the_rate_is_recorded_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            state_dir: dir.path().to_path_buf(),
            notify: vec![
                target("once", "max_attempts = 1\n"),
                target("few", "max_per_hour = 1\nretry_secs = 60\n"),
            ],
            ..Config::default()
        };
        let outbox = Outbox::open(dir.path()).unwrap();
        assert_eq!(outbox.enqueue(&cfg, &[notice("k1")]).unwrap(), 2);
        let got = deliver_due(&cfg, &outbox, false).await.unwrap();
        let once = got.iter().find(|d| d.target == "once").unwrap();
        assert_eq!(once.state, DeliveryState::GivenUp);
        assert!(once.attempted && !once.ok);
        let rec = &outbox.done("once").unwrap()[0];
        assert_eq!(rec.attempts.len(), 1);
        assert!(rec.attempts[0].error.is_some());
        assert!(rec.reason.as_deref().unwrap().contains("max_attempts = 1"));
        // "few": still pending, the next attempt a minute away; not attempted again before.
        let pending = outbox.pending("few").unwrap();
        assert_eq!(pending[0].state, DeliveryState::Pending);
        assert!(pending[0].next_attempt > OffsetDateTime::now_utc() + time::Duration::seconds(50));
        assert!(deliver_due(&cfg, &outbox, false).await.unwrap().is_empty());

        // One delivery in the last hour on record: the next message is rate limited, recorded.
        let mut sent = pending[0].clone();
        sent.state = DeliveryState::Delivered;
        sent.attempts.push(Attempt {
            at: OffsetDateTime::now_utc(),
            ok: true,
            status: Some(200),
            error: None,
            duration_ms: 1,
        });
        outbox.write(&sent).unwrap();
        outbox.enqueue(&cfg, &[notice("k2")]).unwrap();
        let got = deliver_due(&cfg, &outbox, false).await.unwrap();
        let few = got.iter().find(|d| d.target == "few").unwrap();
        assert_eq!(few.state, DeliveryState::RateLimited);
        assert!(!few.attempted);
        let limited = outbox
            .done("few")
            .unwrap()
            .into_iter()
            .find(|o| o.message.id == "k2")
            .unwrap();
        assert!(limited.attempts.is_empty());
        assert!(limited.reason.unwrap().contains("max_per_hour = 1"));
    }
}
