//! A scripted Anthropic Messages API on loopback, for tests, benchmarks and `steward doctor`.
//!
//! Serves `POST /v1/messages` (streaming SSE or plain JSON, `?beta=true` or not),
//! `POST /v1/messages/count_tokens` and `GET /_scripted/requests` (every recorded request as JSON).
//! Anything else is a 404 JSON error. The answers come from a [`Scenario`]; see
//! [`scenario`] for the file format.

pub mod scenario;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use serde_json::{Value, json};

pub use scenario::Scenario;
use scenario::{Planned, Reply, Script, Usage};

#[derive(Debug, thiserror::Error)]
pub enum ScriptedError {
    #[error("{path}: {message}")]
    Scenario { path: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScriptedError> {
        let err = |message: String| ScriptedError::Scenario {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Scenario::parse(&text).map_err(err)
    }
}

/// Headers worth asserting on; the API key's value is not kept.
const RECORDED_HEADERS: &[&str] = &[
    "user-agent",
    "anthropic-version",
    "anthropic-beta",
    "x-claude-code-session-id",
    "content-type",
    "accept",
];

/// One request as the server saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
    /// Whether an `x-api-key` or `authorization` header was present.
    pub authenticated: bool,
    /// The JSON body (`null` if absent or not JSON).
    pub body: Value,
    /// The scenario turn that answered (index into `turns`), `None` for the final answer or
    /// requests that are not messages.
    pub turn: Option<usize>,
    /// HTTP status answered.
    pub status: u16,
}

impl RecordedRequest {
    /// Whether this is a `POST /v1/messages` (not count_tokens).
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path == "/v1/messages"
    }

    /// The names of the tools the client offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All content blocks of all messages with the given role (string content becomes a text block).
    pub fn blocks(&self, role: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for m in self.body["messages"].as_array().into_iter().flatten() {
            if m["role"] != role {
                continue;
            }
            match &m["content"] {
                Value::String(s) => out.push(json!({"type": "text", "text": s})),
                Value::Array(blocks) => out.extend(blocks.iter().cloned()),
                _ => {}
            }
        }
        out
    }

    /// Every `tool_result` block sent back so far.
    pub fn tool_results(&self) -> Vec<Value> {
        self.blocks("user")
            .into_iter()
            .filter(|b| b["type"] == "tool_result")
            .collect()
    }

    /// All user text (including system reminders) joined with newlines.
    pub fn user_text(&self) -> String {
        self.blocks("user")
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Largest request body accepted.
const BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Recorded requests kept (oldest dropped first): a claude request is ~40 KB of JSON, and the
/// server may serve a long benchmark.
pub const RECORD_LIMIT: usize = 1000;

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<VecDeque<RecordedRequest>>,
    counter: AtomicU64,
}

/// A poisoned lock only means another handler panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running server; dropped → stopped.
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `http://ADDR`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).iter().cloned().collect()
    }

    /// Only the `POST /v1/messages` requests.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.is_messages())
            .cloned()
            .collect()
    }

    /// Stops accepting, lets in-flight answers finish, and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Keep-alive connections would hold a graceful shutdown open; a dropped server is gone.
        self.task.abort();
    }
}

/// Binds `addr` (port 0 picks one) and serves `scenario` on the current tokio runtime.
pub async fn start(scenario: Scenario, addr: SocketAddr) -> Result<Server, ScriptedError> {
    let bind_err = |source| ScriptedError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let shared = Arc::new(Shared {
        script: Mutex::new(Script::new(scenario)),
        requests: Mutex::new(VecDeque::new()),
        counter: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/messages", any(messages))
        .route("/v1/messages/count_tokens", any(count_tokens))
        .route("/_scripted/requests", get(list_requests))
        .fallback(not_found)
        // Long conversations (file contents, many tool results) pass axum's 2 MB default.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!("scripted model server stopped: {e}");
        }
    });
    Ok(Server {
        addr,
        shared,
        stop: Some(stop),
        task,
    })
}

fn record(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
    turn: Option<usize>,
    status: StatusCode,
) {
    let kept = RECORDED_HEADERS
        .iter()
        .filter_map(|h| {
            headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.to_string(), v.to_string()))
        })
        .collect();
    let authenticated =
        headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION);
    let mut requests = lock(&shared.requests);
    if requests.len() >= RECORD_LIMIT {
        requests.pop_front();
    }
    requests.push_back(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: kept,
        authenticated,
        body,
        turn,
        status: status.as_u16(),
    });
}

fn error_json(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn not_found(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    record(
        &shared,
        &method,
        &uri,
        &headers,
        body,
        None,
        StatusCode::NOT_FOUND,
    );
    error_json(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("no route for {method} {}", uri.path()),
    )
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    let all = serde_json::to_string(&*lock(&shared.requests)).unwrap_or_else(|_| "[]".into());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        all,
    )
        .into_response()
}

/// The credential a request carries: `x-api-key`, else a bearer token.
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key") {
        return k.to_str().ok();
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The scenario's key and model gate, answered and recorded like the real API's errors.
fn refused(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Value,
) -> Option<Response> {
    let e = lock(&shared.script).refuse(credential(headers), body["model"].as_str())?;
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
    record(shared, method, uri, headers, body.clone(), None, status);
    Some(error_json(status, &e.kind, &e.message))
}

async fn count_tokens(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if method != Method::POST {
        record(
            &shared,
            &method,
            &uri,
            &headers,
            parsed,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        );
        return error_json(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "use POST",
        );
    }
    if let Some(answer) = refused(&shared, &method, &uri, &headers, &parsed) {
        return answer;
    }
    record(
        &shared,
        &method,
        &uri,
        &headers,
        parsed,
        None,
        StatusCode::OK,
    );
    // A rough estimate is all the CLI needs; ~4 bytes per token.
    let tokens = (body.len() / 4).max(1);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({"input_tokens": tokens}).to_string(),
    )
        .into_response()
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) if method == Method::POST => v,
        Ok(v) => {
            record(
                &shared,
                &method,
                &uri,
                &headers,
                v,
                None,
                StatusCode::METHOD_NOT_ALLOWED,
            );
            return error_json(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "use POST",
            );
        }
        Err(e) => {
            let status = if method == Method::POST {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::METHOD_NOT_ALLOWED
            };
            record(&shared, &method, &uri, &headers, Value::Null, None, status);
            return error_json(
                status,
                "invalid_request_error",
                &format!("body is not JSON: {e}"),
            );
        }
    };
    if let Some(answer) = refused(&shared, &method, &uri, &headers, &parsed) {
        return answer;
    }
    let stream = parsed["stream"].as_bool().unwrap_or(false);
    let model = parsed["model"]
        .as_str()
        .unwrap_or("claude-scripted")
        .to_string();
    let planned = lock(&shared.script).plan(&parsed, stream);
    let Planned {
        turn,
        delay_ms,
        reply,
    } = planned;
    let status = match &reply {
        Reply::HttpError(e) => {
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        _ => StatusCode::OK,
    };
    record(&shared, &method, &uri, &headers, parsed, turn, status);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let id = format!(
        "msg_scripted_{:06}",
        shared.counter.fetch_add(1, Ordering::Relaxed)
    );
    match reply {
        Reply::HttpError(e) => error_json(status, &e.kind, &e.message),
        Reply::Garbage(g) => {
            let ct = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], g).into_response()
        }
        Reply::SseError(e) => {
            let mut out = String::new();
            sse(
                &mut out,
                "message_start",
                &message_start(&id, &model, Usage::default()),
            );
            sse(
                &mut out,
                "error",
                &json!({"type": "error", "error": {"type": e.kind, "message": e.message}}),
            );
            event_stream(out)
        }
        Reply::Answer {
            content,
            stop_reason,
            usage,
        } if stream => event_stream(sse_answer(&id, &model, &content, &stop_reason, usage)),
        Reply::Answer {
            content,
            stop_reason,
            usage,
        } => {
            let body = json!({
                "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            });
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn event_stream(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from(body),
    )
        .into_response()
}

fn sse(out: &mut String, event: &str, data: &Value) {
    let _ = write!(out, "event: {event}\ndata: {data}\n\n");
}

fn message_start(id: &str, model: &str, usage: Usage) -> Value {
    json!({"type": "message_start", "message": {
        "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }})
}

/// The whole SSE answer in one body: the client parses events, not TCP chunks, so there is
/// nothing to gain from trickling them.
fn sse_answer(id: &str, model: &str, content: &[Value], stop_reason: &str, usage: Usage) -> String {
    let mut out = String::with_capacity(512);
    sse(&mut out, "message_start", &message_start(id, model, usage));
    for (index, block) in content.iter().enumerate() {
        let (start, delta) = if block["type"] == "tool_use" {
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        sse(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        sse(
            &mut out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        sse(
            &mut out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }
    sse(
        &mut out,
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": usage.output_tokens}}),
    );
    sse(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}
