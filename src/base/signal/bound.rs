//! The size bounds of a [`Signal`]: whatever a webhook sends, a signal that reaches the router,
//! a job file, an event or a prompt is at most a few hundred KiB, and what the router remembers
//! of it (subject, fingerprint) at most a few hundred bytes.
//!
//! A value over its bound is cut at a char boundary and ends in a marker with the original length
//! and a hash of the whole value (`…[512000 bytes, sha256:0123456789abcdef]`), so two long values
//! that differ anywhere stay different after the cut, and equal ones stay equal: dedup by
//! fingerprint, cooldowns and flapping by subject keep telling them apart. Every cut is listed
//! in [`Signal::truncated`] by field (`subject`, `labels.alertname`, …). Fingerprints that
//! adapters compute themselves are computed from the values before the cut.
//!
//! Bounding is idempotent: a bounded signal is returned unchanged, so the daemon's adapters and
//! the router may both apply it.

use std::collections::BTreeMap;

use super::Signal;

/// The longest subject, in bytes (a systemd unit name is at most 256).
pub const MAX_SUBJECT_BYTES: usize = 256;
/// The longest fingerprint.
pub const MAX_FINGERPRINT_BYTES: usize = 128;
/// The longest label or annotation name.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest label value.
pub const MAX_LABEL_BYTES: usize = 1024;
/// The longest annotation value (the journal tail of an `on_failure` signal fits).
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;
/// The most labels, and the most annotations; entries past it (in name order) are dropped.
pub const MAX_ENTRIES: usize = 64;
/// All annotation values together: once spent, the remaining values are cut to their marker.
pub const MAX_ANNOTATIONS_TOTAL: usize = 64 * 1024;
/// The payload, measured as its text (strings, names, numbers): over it, only its short
/// top-level fields are kept.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Every cut value keeps at least room for its marker (so that bounding is idempotent).
const MIN_CUT: usize = 64;
/// The most entries in [`Signal::truncated`] (every label and annotation cut, by name and by
/// value, their drops, subject, fingerprint, payload), and the longest entry.
const MAX_TRUNCATED: usize = 3 + 2 * (2 * MAX_ENTRIES + 1);
const MAX_TRUNCATED_ENTRY: usize = 192;
/// A top-level payload field kept when the payload is cut: a string at most this long.
const KEPT_PAYLOAD_STRING: usize = 256;
/// How many dropped payload field names are listed.
const LISTED_PAYLOAD_FIELDS: usize = 16;

/// The marker's hash: the first 8 bytes of SHA-256, as hex.
fn short_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// `value` cut to at most `max` bytes (but never below its marker), or `None` when it fits.
/// The kept prefix ends at a char boundary; the marker names the original length and hash.
pub fn cut(value: &str, max: usize) -> Option<String> {
    if value.len() <= max {
        return None;
    }
    let marker = format!(
        "…[{} bytes, sha256:{}]",
        value.len(),
        short_hash(value.as_bytes())
    );
    let mut keep = max.saturating_sub(marker.len()).min(value.len());
    while !value.is_char_boundary(keep) {
        keep -= 1;
    }
    Some(format!("{}{marker}", &value[..keep]))
}

impl Signal {
    /// The signal with every field within its bound (see the module docs); the cuts are added
    /// to `truncated`. Unchanged when it is already bounded.
    pub fn bounded(mut self) -> Signal {
        if self.is_bounded() {
            return self;
        }
        let mut cuts = Vec::new();
        if let Some(s) = cut(&self.subject, MAX_SUBJECT_BYTES) {
            self.subject = s;
            cuts.push("subject".to_string());
        }
        if let Some(f) = cut(&self.fingerprint, MAX_FINGERPRINT_BYTES) {
            self.fingerprint = f;
            cuts.push("fingerprint".to_string());
        }
        bound_map(
            &mut self.labels,
            "labels",
            MAX_LABEL_BYTES,
            usize::MAX,
            &mut cuts,
        );
        bound_map(
            &mut self.annotations,
            "annotations",
            MAX_ANNOTATION_BYTES,
            MAX_ANNOTATIONS_TOTAL,
            &mut cuts,
        );
        if payload_weight(&self.payload) > MAX_PAYLOAD_BYTES {
            self.payload = cut_payload(&self.payload);
            cuts.push("payload".to_string());
        }
        for c in cuts {
            if !self.truncated.contains(&c) {
                self.truncated.push(c);
            }
        }
        // Only a signal handed over whole (the local socket) can bring a list of its own.
        self.truncated.truncate(MAX_TRUNCATED);
        for t in &mut self.truncated {
            if let Some(short) = cut(t, MAX_TRUNCATED_ENTRY) {
                *t = short;
            }
        }
        self
    }

    /// Whether every field is within its bound.
    pub fn is_bounded(&self) -> bool {
        self.subject.len() <= MAX_SUBJECT_BYTES
            && self.fingerprint.len() <= MAX_FINGERPRINT_BYTES
            && map_bounded(&self.labels, MAX_LABEL_BYTES, usize::MAX)
            && map_bounded(
                &self.annotations,
                MAX_ANNOTATION_BYTES,
                MAX_ANNOTATIONS_TOTAL,
            )
            && payload_weight(&self.payload) <= MAX_PAYLOAD_BYTES
            && self.truncated.len() <= MAX_TRUNCATED
            && self
                .truncated
                .iter()
                .all(|t| t.len() <= MAX_TRUNCATED_ENTRY)
    }
}

/// The cap of the next value of a map whose values so far took `used` of `total`.
fn value_cap(max: usize, total: usize, used: usize) -> usize {
    max.min(total.saturating_sub(used)).max(MIN_CUT)
}

fn map_bounded(map: &BTreeMap<String, String>, max: usize, total: usize) -> bool {
    if map.len() > MAX_ENTRIES {
        return false;
    }
    let mut used = 0usize;
    map.iter().all(|(k, v)| {
        let fits = k.len() <= MAX_NAME_BYTES && v.len() <= value_cap(max, total, used);
        used = used.saturating_add(v.len());
        fits
    })
}

/// Drops entries past [`MAX_ENTRIES`] (in name order), cuts long names, then cuts values in the
/// order of the names they end up with, each to `max` and all together to about `total`.
fn bound_map(
    map: &mut BTreeMap<String, String>,
    field: &str,
    max: usize,
    total: usize,
    cuts: &mut Vec<String>,
) {
    if map.len() > MAX_ENTRIES {
        let dropped = map.len() - MAX_ENTRIES;
        // `split_off` at the first dropped key keeps the first MAX_ENTRIES in name order.
        if let Some(first_dropped) = map.keys().nth(MAX_ENTRIES).cloned() {
            map.split_off(&first_dropped);
        }
        cuts.push(format!("{field} ({dropped} dropped)"));
    }
    if map.keys().any(|k| k.len() > MAX_NAME_BYTES) {
        *map = std::mem::take(map)
            .into_iter()
            .map(|(k, v)| match cut(&k, MAX_NAME_BYTES) {
                Some(short) => {
                    cuts.push(format!("{field}.{short} (name)"));
                    (short, v)
                }
                None => (k, v),
            })
            .collect();
    }
    let mut used = 0usize;
    for (k, v) in map.iter_mut() {
        if let Some(short) = cut(v, value_cap(max, total, used)) {
            *v = short;
            cuts.push(format!("{field}.{k}"));
        }
        used = used.saturating_add(v.len());
    }
}

/// About the payload's size as text: its strings, names and numbers, a byte per other node.
/// Iterative, so no payload nesting can overflow the stack.
pub fn payload_weight(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(match v {
            Value::String(s) => s.len() + 2,
            Value::Number(_) => 8,
            Value::Null | Value::Bool(_) => 4,
            Value::Array(a) => {
                stack.extend(a.iter());
                2
            }
            Value::Object(o) => {
                stack.extend(o.values());
                2 + o.keys().map(|k| k.len() + 3).sum::<usize>()
            }
        });
    }
    total
}

/// A payload over its bound: its short top-level fields (a string up to 256 bytes, a number, a
/// boolean, null, under a name up to [`MAX_NAME_BYTES`]; at most [`MAX_ENTRIES`], so the alert's
/// `status`, times and URL stay), and `_truncated` with the original's size and hash and the
/// names of the fields left out.
fn cut_payload(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let text = serde_json::to_vec(v).unwrap_or_default();
    let mut kept = serde_json::Map::new();
    let mut omitted = Vec::new();
    let mut omitted_count = 0usize;
    if let Value::Object(o) = v {
        for (k, field) in o {
            let short = match field {
                Value::String(s) => s.len() <= KEPT_PAYLOAD_STRING,
                Value::Number(_) | Value::Bool(_) | Value::Null => true,
                Value::Array(_) | Value::Object(_) => false,
            };
            if short && k.len() <= MAX_NAME_BYTES && kept.len() < MAX_ENTRIES && k != "_truncated" {
                kept.insert(k.clone(), field.clone());
            } else {
                omitted_count += 1;
                if omitted.len() < LISTED_PAYLOAD_FIELDS {
                    omitted.push(cut(k, MAX_NAME_BYTES).unwrap_or_else(|| k.clone()));
                }
            }
        }
    }
    kept.insert(
        "_truncated".to_string(),
        serde_json::json!({
            "bytes": text.len(),
            "sha256": short_hash(&text),
            "omitted_fields": omitted,
            "omitted_count": omitted_count,
        }),
    );
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::signal::{Severity, Source};

    fn signal(subject: &str) -> Signal {
        Signal {
            source: Source::Alertmanager,
            subject: subject.to_string(),
            fingerprint: "fp".into(),
            severity: Severity::Warning,
            labels: BTreeMap::from([("alertname".to_string(), subject.to_string())]),
            annotations: BTreeMap::new(),
            payload: serde_json::json!({"status": "firing"}),
            received: time::OffsetDateTime::UNIX_EPOCH,
            truncated: Vec::new(),
        }
    }

    #[test]
    fn a_value_within_its_bound_is_left_alone() {
        assert_eq!(cut("abc", 3), None);
        assert_eq!(cut("", 0), None);
        let s = signal("DiskFull");
        assert!(s.is_bounded());
        let b = s.clone().bounded();
        assert_eq!(b.subject, "DiskFull");
        assert!(b.truncated.is_empty());
    }

    #[test]
    fn a_long_value_is_cut_at_its_bound_with_length_and_hash() {
        let long = "x".repeat(1000);
        let c = cut(&long, 256).unwrap();
        assert_eq!(c.len(), 256, "{c}");
        assert!(c.starts_with("xxxx"), "{c}");
        let hash = short_hash(long.as_bytes());
        assert!(c.ends_with(&format!("…[1000 bytes, sha256:{hash}]")), "{c}");
        // Cutting again changes nothing.
        assert_eq!(cut(&c, 256), None);
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        // 'é' is 2 bytes, '𝄞' is 4: every possible offset of the cut lands inside one of them.
        for pad in 0..4 {
            for ch in ["é", "𝄞", "中"] {
                let value = format!("{}{}", "a".repeat(pad), ch.repeat(400));
                for max in 60..80 {
                    let c = cut(&value, max).unwrap();
                    assert!(c.len() <= max, "{max}: {c}");
                    // A String is valid UTF-8 by construction; the prefix is a prefix.
                    let prefix = c.split('…').next().unwrap();
                    assert!(value.starts_with(prefix), "{max}: {c}");
                    assert!(
                        c.len() + ch.len() > max,
                        "{max}: cut shorter than needed: {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn distinct_long_values_stay_distinct_and_equal_ones_equal() {
        let common = "A".repeat(600);
        let a = cut(&format!("{common}-one"), 256).unwrap();
        let b = cut(&format!("{common}-two"), 256).unwrap();
        assert_ne!(a, b);
        // Same length, same prefix: only the hash tells them apart.
        assert_eq!(a.len(), b.len());
        assert_eq!(a[..200], b[..200]);
        assert_eq!(cut(&format!("{common}-one"), 256).unwrap(), a);
    }

    #[test]
    fn a_huge_alert_is_bounded_and_says_what_was_cut() {
        let name = "N".repeat(500 * 1024);
        let mut s = signal(&name);
        s.fingerprint = "f".repeat(300);
        s.labels.insert("k".repeat(200), "v".into());
        for i in 0..100 {
            s.annotations
                .insert(format!("note{i:03}"), "t".repeat(20 * 1024));
        }
        s.payload = serde_json::json!({
            "status": "firing", "startsAt": "2026-11-22T06:00:00Z", "count": 3,
            "labels": {"alertname": name}, "generatorURL": "u".repeat(300),
        });
        let b = s.bounded();
        assert!(b.is_bounded());
        assert_eq!(b.subject.len(), MAX_SUBJECT_BYTES);
        assert!(b.fingerprint.len() <= MAX_FINGERPRINT_BYTES);
        assert!(b.labels["alertname"].len() <= MAX_LABEL_BYTES);
        assert_eq!(b.annotations.len(), MAX_ENTRIES);
        let total: usize = b.annotations.values().map(String::len).sum();
        assert!(
            total <= MAX_ANNOTATIONS_TOTAL + MAX_ENTRIES * MIN_CUT,
            "{total}"
        );
        // The payload keeps what the router reads (`status`) and its short fields.
        assert_eq!(b.payload["status"], "firing");
        assert_eq!(b.payload["count"], 3);
        assert_eq!(b.payload["_truncated"]["omitted_count"], 2);
        assert_eq!(
            b.payload["_truncated"]["omitted_fields"],
            serde_json::json!(["generatorURL", "labels"])
        );
        for field in [
            "subject",
            "fingerprint",
            "labels.alertname",
            "annotations (36 dropped)",
            "annotations.note000",
            "payload",
        ] {
            assert!(
                b.truncated.iter().any(|t| t == field),
                "{field}: {:?}",
                b.truncated
            );
        }
        assert!(
            b.truncated
                .iter()
                .any(|t| t.starts_with("labels.kkkk") && t.ends_with("(name)")),
            "{:?}",
            b.truncated
        );
        // As JSON (a job file, signal.json) it is a few hundred KiB at most.
        let json = serde_json::to_vec(&b).unwrap();
        assert!(json.len() < 200 * 1024, "{}", json.len());
        // Bounding again changes nothing.
        let again = b.clone().bounded();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
    }

    #[test]
    fn annotations_share_one_budget_in_name_order() {
        let mut s = signal("x");
        for i in 0..8 {
            s.annotations
                .insert(format!("a{i}"), "z".repeat(MAX_ANNOTATION_BYTES));
        }
        let b = s.bounded();
        // Four fill the budget whole; the rest are cut to their marker.
        for i in 0..4 {
            assert_eq!(b.annotations[&format!("a{i}")].len(), MAX_ANNOTATION_BYTES);
        }
        for i in 4..8 {
            let v = &b.annotations[&format!("a{i}")];
            assert!(
                v.len() <= MIN_CUT && v.contains("…[16384 bytes, sha256:"),
                "{v}"
            );
        }
        assert_eq!(b.truncated.len(), 4, "{:?}", b.truncated);
    }

    #[test]
    fn deep_payloads_are_measured_without_recursion() {
        let mut v = serde_json::Value::String("leaf".into());
        for _ in 0..100_000 {
            v = serde_json::Value::Array(vec![v]);
        }
        assert!(payload_weight(&v) > 100_000);
        // Dropping a value this deep recursively would overflow the stack too: leak it.
        std::mem::forget(v);
    }
}
