//! The engine's event stream, read as JSON lines over the unix socket and parsed leniently:
//! bollard's typed stream ends at the first event type it does not know (podman sends `system`
//! events), and a watch must not go blind because the engine added a kind of event.

use std::collections::HashMap;

use serde_json::Value;

/// One line of the stream longer than this is not an event: the stream is dropped.
const MAX_LINE: usize = 1024 * 1024;

/// A container event: its action (`die`, `kill`, …), the container's id, attributes
/// (`name`, `image`, `exitCode`, `signal`) and time in nanoseconds.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub action: String,
    pub id: String,
    pub attributes: HashMap<String, String>,
    pub nanos: i64,
}

pub struct EventStream {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl EventStream {
    /// `GET /events?since=SINCE` on the engine at `host` (`unix:///…`).
    pub async fn open(host: &str, since: &str) -> Result<EventStream, String> {
        let socket = host.strip_prefix("unix://").unwrap_or(host).to_string();
        let client = reqwest::Client::builder()
            .unix_socket(socket)
            .build()
            .map_err(|e| format!("the Docker API at {host}: {e}"))?;
        let response = client
            .get(format!("http://docker/v1.41/events?since={since}"))
            .send()
            .await
            .map_err(|e| format!("the Docker API at {host}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the Docker API at {host} answered {}",
                response.status()
            ));
        }
        Ok(EventStream {
            response,
            buf: Vec::new(),
        })
    }

    /// The next container event; `None` when the stream ended (the engine went away).
    pub async fn next(&mut self) -> Result<Option<ContainerEvent>, String> {
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if let Some(event) = parse(&line) {
                    return Ok(Some(event));
                }
            }
            if self.buf.len() > MAX_LINE {
                return Err("an event line over 1 MiB: not the Docker API".into());
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buf.extend_from_slice(&bytes),
                Ok(None) => return Ok(None),
                Err(e) => return Err(format!("the Docker event stream: {e}")),
            }
        }
    }
}

/// A container event from one JSON line; anything else (other types, other shapes) is `None`.
pub fn parse(line: &[u8]) -> Option<ContainerEvent> {
    let v: Value = serde_json::from_slice(line).ok()?;
    if v["Type"] != "container" {
        return None;
    }
    let actor = &v["Actor"];
    let attributes = actor["Attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let nanos = v["timeNano"]
        .as_i64()
        .or_else(|| v["time"].as_i64().map(|t| t.saturating_mul(1_000_000_000)))?;
    Some(ContainerEvent {
        action: v["Action"].as_str()?.to_string(),
        id: actor["ID"].as_str()?.to_string(),
        attributes,
        nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_events_parse_and_the_rest_is_skipped() {
        let die = br#"{"status":"die","id":"abc","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","name":"web"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#;
        let e = parse(die).unwrap();
        assert_eq!((e.action.as_str(), e.id.as_str()), ("die", "abc"));
        assert_eq!(e.attributes["exitCode"], "137");
        assert_eq!(e.nanos, 1_700_000_000_123_456_789);
        assert!(
            parse(br#"{"Type":"system","Action":"refresh","Actor":{"ID":""},"time":1}"#).is_none()
        );
        assert!(parse(b"garbage").is_none());
    }
}
