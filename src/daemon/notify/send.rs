//! Each kind's wire format, over HTTP with the target's timeout, no redirects (a token must not
//! follow one) and at most [`MAX_ANSWER`] bytes of answer read.
//!
//! - `webhook`: `POST url`, the [`Message`] as JSON (`"version": 1`), bearer token if any.
//! - `ntfy`: `POST url` (the server) with ntfy's JSON: topic, title, message, priority, tags,
//!   click (the page) and a `view` action button to it; bearer token if any.
//! - `telegram`: `POST {url}/bot{token}/sendMessage`, `{chat_id, text}`; the answer's `ok`.
//! - `slack`: `POST url` (an incoming webhook: Slack, Mattermost, Rocket.Chat), `{text}`.
//! - `matrix`: `PUT {url}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}` with a
//!   bearer token; the transaction id is the message's key, so a retry is not shown twice.
//! - `email`: SMTP (`email.rs`).

use std::time::Duration;

use serde_json::json;

use super::message::Message;
use super::{email, secret};
use crate::config::notify::NotifyTarget;

/// The most of an answer steward reads (an error's body is shown cut to this).
const MAX_ANSWER: usize = 64 * 1024;

/// An attempt's result: the status (HTTP or SMTP) and, when it failed, why.
pub struct Sent {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Sent {
    fn failed(status: Option<u16>, error: String) -> Sent {
        Sent {
            status,
            error: Some(error),
        }
    }
}

/// Sends `m` to `t` once.
pub async fn send(t: &NotifyTarget, m: &Message) -> Sent {
    match t.kind.as_str() {
        "email" => {
            let (t, m) = (t.clone(), m.clone());
            tokio::task::spawn_blocking(move || email::send(&t, &m))
                .await
                .unwrap_or_else(|e| Sent::failed(None, format!("the SMTP task failed: {e}")))
        }
        _ => match request(t, m) {
            Ok(req) => http(t, req).await,
            Err(e) => Sent::failed(None, e),
        },
    }
}

/// The request for an HTTP kind.
fn request(t: &NotifyTarget, m: &Message) -> Result<Request, String> {
    let url = secret::url(t)?;
    let base = url.trim_end_matches('/');
    let token = secret::token(t)?;
    let priority = t.priority.unwrap_or(match m.severity.as_str() {
        "critical" => 5,
        "warning" => 4,
        _ => 3,
    });
    let req = match t.kind.as_str() {
        "webhook" => Request::post(url.clone(), json!(m), token),
        "slack" => Request::post(url.clone(), json!({ "text": m.text() }), None),
        "ntfy" => {
            let mut tags = t.tags.clone();
            tags.push(m.event.clone());
            let mut body = json!({
                "topic": t.topic, "title": m.title(),
                "message": format!("{}\nrun: {}", m.summary, m.command),
                "priority": priority, "tags": tags,
            });
            if let Some(link) = &m.link {
                body["click"] = json!(link);
                body["actions"] = json!([{ "action": "view", "label": "Open", "url": link }]);
            }
            Request::post(base.to_string(), body, token)
        }
        "telegram" => {
            let token = token.ok_or(
                "a telegram target needs its bot token in `token_file` \
                                      (or the credential notify-NAME)",
            )?;
            let body = json!({
                "chat_id": t.chat_id, "text": m.text(), "disable_web_page_preview": true,
            });
            let mut r = Request::post(format!("{base}/bot{token}/sendMessage"), body, None);
            r.telegram = true;
            r
        }
        "matrix" => {
            let token = token.ok_or(
                "a matrix target needs its access token in `token_file` \
                                      (or the credential notify-NAME)",
            )?;
            let room = encode(t.room_id.as_deref().unwrap_or(""));
            let txn = encode(&format!("steward-{}-{}", t.name, m.id));
            let url = format!("{base}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
            let body = json!({ "msgtype": "m.text", "body": m.text() });
            let mut r = Request::post(url, body, Some(token));
            r.put = true;
            r
        }
        other => return Err(format!("unknown kind `{other}`")),
    };
    Ok(req)
}

struct Request {
    url: String,
    body: serde_json::Value,
    bearer: Option<String>,
    put: bool,
    telegram: bool,
}

impl Request {
    fn post(url: String, body: serde_json::Value, bearer: Option<String>) -> Request {
        Request {
            url,
            body,
            bearer,
            put: false,
            telegram: false,
        }
    }
}

/// Percent-encodes a path segment (Matrix room ids carry `!` and `:`).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn http(t: &NotifyTarget, req: Request) -> Sent {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(t.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Sent::failed(None, format!("cannot build the HTTP client: {e}")),
    };
    let mut builder = if req.put {
        client.put(&req.url)
    } else {
        client.post(&req.url)
    };
    builder = builder.json(&req.body);
    if let Some(token) = &req.bearer {
        builder = builder.bearer_auth(token);
    }
    let mut resp = match builder.send().await {
        Ok(r) => r,
        // Without the URL: a Telegram URL carries the bot token.
        Err(e) => return Sent::failed(None, e.without_url().to_string()),
    };
    let status = resp.status();
    let body = read_bounded(&mut resp).await;
    let code = Some(status.as_u16());
    if !status.is_success() {
        return Sent::failed(code, format!("HTTP {status}: {}", body.trim()));
    }
    if req.telegram {
        let ok = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("ok").and_then(|o| o.as_bool()));
        if ok != Some(true) {
            return Sent::failed(code, format!("Telegram did not answer ok: {}", body.trim()));
        }
    }
    Sent {
        status: code,
        error: None,
    }
}

/// At most [`MAX_ANSWER`] bytes of the answer, as text; the rest is not read.
async fn read_bounded(resp: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < MAX_ANSWER {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(MAX_ANSWER);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn room_ids_are_encoded() {
        assert_eq!(super::encode("!room:example.org"), "%21room%3Aexample.org");
    }
}
