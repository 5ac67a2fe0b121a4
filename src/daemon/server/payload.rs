//! The webhooks' payloads as signals: Alertmanager's (one signal per alert) and the generic
//! webhook's (one signal, always of source `webhook`, which cannot pick its goal).

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::base::signal::{Severity, Signal, Source, fingerprint};

/// Alertmanager's webhook payload, version 4 (only what steward reads; the rest is ignored).
#[derive(Debug, Deserialize)]
struct AmPayload {
    version: String,
    alerts: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct AmAlert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    fingerprint: String,
}

fn severity_of(label: Option<&String>) -> Severity {
    match label.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical" | "page" | "error" | "high") => Severity::Critical,
        Some("info" | "none" | "low") => Severity::Info,
        // An alert that fired without saying how bad is worth a look.
        _ => Severity::Warning,
    }
}

/// One signal per alert; the alert's JSON (with its `status`) is the payload.
pub fn alertmanager_signals(body: &[u8]) -> Result<Vec<Signal>, String> {
    let payload: AmPayload =
        serde_json::from_slice(body).map_err(|e| format!("not an Alertmanager payload: {e}"))?;
    if payload.version != "4" {
        return Err(format!(
            "payload version `{}` is not supported (want \"4\")",
            payload.version
        ));
    }
    let now = OffsetDateTime::now_utc();
    payload
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let a = AmAlert::deserialize(&raw).map_err(|e| format!("alerts[{i}]: {e}"))?;
            if a.status != "firing" && a.status != "resolved" {
                return Err(format!(
                    "alerts[{i}]: status `{}` is neither firing nor resolved",
                    a.status
                ));
            }
            let Some(name) = a.labels.get("alertname").filter(|n| !n.is_empty()) else {
                return Err(format!("alerts[{i}]: no `alertname` label"));
            };
            let subject = match a.labels.get("instance") {
                Some(inst) if !inst.is_empty() => format!("{name}/{inst}"),
                _ => name.clone(),
            };
            let fp = if a.fingerprint.is_empty() {
                let parts: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
                fingerprint(&refs)
            } else {
                a.fingerprint.clone()
            };
            Ok(Signal {
                source: Source::Alertmanager,
                subject,
                fingerprint: fp,
                severity: severity_of(a.labels.get("severity")),
                labels: a.labels,
                annotations: a.annotations,
                payload: raw,
                received: now,
                truncated: Vec::new(),
            }
            .bounded())
        })
        .collect()
}

/// `POST /hooks/generic`: one signal from anything that can send JSON (another monitoring
/// system, a script). Its sender holds a token, not the operator's seat: the signal is always of
/// source `webhook`, and whether it starts a goal, and which, is the routes' decision on its
/// subject, severity and labels, never a field the sender sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericHook {
    /// Only `"webhook"`, the one source this endpoint speaks for.
    source: Option<String>,
    subject: String,
    fingerprint: Option<String>,
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// `"firing"` (the default) or `"resolved"`: a resolve cancels this webhook's queued work for
    /// the fingerprint (the router reads `payload.status`).
    status: Option<String>,
}

/// Every fingerprint of a generic webhook signal starts with this: it can never name the work
/// of another source (an Alertmanager alert's, an operator's), to merge into or to resolve.
const WEBHOOK_FINGERPRINT_PREFIX: &str = "webhook:";

/// Fields a generic webhook may not set, with the reason it is told.
const NOT_THE_CALLERS: [(&str, &str); 2] = [
    (
        "goal",
        "`goal` is not accepted: which goal a webhook signal starts is the routes' decision \
         (a route with `source = \"webhook\"` matching the signal's subject, severity or labels)",
    ),
    (
        "vars",
        "`vars` is not accepted: a route sets a goal's variables (from the signal's labels or \
         annotations, with `vars` or `vars_from`)",
    ),
];

pub fn generic_signal(body: &[u8]) -> Result<Signal, String> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(obj) = raw.as_object() {
        for (field, why) in NOT_THE_CALLERS {
            if obj.contains_key(field) {
                return Err(why.to_string());
            }
        }
    }
    let h: GenericHook = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
    if let Some(source) = h
        .source
        .as_deref()
        .filter(|s| *s != Source::Webhook.as_str())
    {
        return Err(format!(
            "`source` is `{source}`: a signal through /hooks/generic is always of source \
             `webhook` (it cannot speak for an operator, a timer, CI, systemd or Alertmanager); \
             leave `source` out"
        ));
    }
    if let Some(status) = h
        .status
        .as_deref()
        .filter(|s| !matches!(*s, "firing" | "resolved"))
    {
        return Err(format!(
            "`status` is `{status}`: it is `firing` (the default) or `resolved`"
        ));
    }
    if h.subject.trim().is_empty() {
        return Err("`subject` is empty".into());
    }
    let fp = match h.fingerprint {
        // Idempotent: a fingerprint read back from an answer names the same work.
        Some(given) if given.starts_with(WEBHOOK_FINGERPRINT_PREFIX) => given,
        Some(given) => format!("{WEBHOOK_FINGERPRINT_PREFIX}{given}"),
        None => format!(
            "{WEBHOOK_FINGERPRINT_PREFIX}{}",
            fingerprint(&[Source::Webhook.as_str(), &h.subject])
        ),
    };
    Ok(Signal {
        source: Source::Webhook,
        subject: h.subject,
        fingerprint: fp,
        severity: h.severity.unwrap_or(Severity::Warning),
        labels: h.labels,
        annotations: h.annotations,
        payload: raw,
        received: OffsetDateTime::now_utc(),
        truncated: Vec::new(),
    }
    .bounded())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_from_the_label() {
        let l = |s: &str| Some(s.to_string());
        assert_eq!(severity_of(l("critical").as_ref()), Severity::Critical);
        assert_eq!(severity_of(l("PAGE").as_ref()), Severity::Critical);
        assert_eq!(severity_of(l("info").as_ref()), Severity::Info);
        assert_eq!(severity_of(l("warning").as_ref()), Severity::Warning);
        assert_eq!(severity_of(None), Severity::Warning);
    }

    #[test]
    fn alertmanager_payload_becomes_one_signal_per_alert() {
        let body = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "steward",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "h1",
                 "severity": "critical"}, "annotations": {"summary": "disk"},
                 "fingerprint": "abc"},
                {"status": "resolved", "labels": {"alertname": "Load"}, "fingerprint": "def"}
            ]
        });
        let s = alertmanager_signals(body.to_string().as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].subject, "DiskFull/h1");
        assert_eq!(s[0].fingerprint, "abc");
        assert_eq!(s[0].severity, Severity::Critical);
        assert!(!crate::daemon::router::is_resolved(&s[0]));
        assert!(crate::daemon::router::is_resolved(&s[1]));
        let bad =
            serde_json::json!({"version": "4", "alerts": [{"status": "firing", "labels": {}}]});
        let e = alertmanager_signals(bad.to_string().as_bytes()).unwrap_err();
        assert!(e.contains("alertname"), "{e}");
        let e = alertmanager_signals(b"{\"version\":\"3\",\"alerts\":[]}").unwrap_err();
        assert!(e.contains("version"), "{e}");
    }

    #[test]
    fn a_generic_hook_is_always_a_webhook_signal_and_cannot_pick_its_goal() {
        let s = generic_signal(
            br#"{"subject": "backup", "labels": {"job": "nightly"}, "annotations": {"n": "a"}}"#,
        )
        .unwrap();
        assert_eq!(s.source, Source::Webhook);
        assert_eq!(s.labels["job"], "nightly");
        assert_eq!(s.annotations["n"], "a");
        assert!(s.fingerprint.starts_with("webhook:"), "{}", s.fingerprint);
        // The caller's fingerprint is in the webhook's own namespace, and reading it back from
        // an answer names the same work.
        let s = generic_signal(br#"{"subject": "x", "fingerprint": "abc"}"#).unwrap();
        assert_eq!(s.fingerprint, "webhook:abc");
        let s = generic_signal(br#"{"subject": "x", "fingerprint": "webhook:abc"}"#).unwrap();
        assert_eq!(s.fingerprint, "webhook:abc");
        let s = generic_signal(br#"{"subject": "x", "source": "webhook"}"#).unwrap();
        assert_eq!(s.source, Source::Webhook);
        for (body, says) in [
            (
                r#"{"subject": "x", "source": "manual"}"#,
                "always of source `webhook`",
            ),
            (
                r#"{"subject": "x", "source": "ci"}"#,
                "always of source `webhook`",
            ),
            (r#"{"subject": "x", "goal": "intent"}"#, "routes' decision"),
            (
                r#"{"subject": "x", "vars": {"intent": "rm"}}"#,
                "a route sets",
            ),
            (
                r#"{"subject": "x", "status": "gone"}"#,
                "`firing` (the default) or `resolved`",
            ),
            (r#"{"subject": " "}"#, "`subject` is empty"),
            (r#"{"fingerprint": "x"}"#, "subject"),
            (r#"{"subject": "x", "nope": 1}"#, "nope"),
        ] {
            let e = generic_signal(body.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
