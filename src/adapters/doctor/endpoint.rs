//! The endpoint proof: one real, free request to the configured API with the configured
//! credentials and model, so `doctor` says a run could reach the model only when it could.
//!
//! The request is `POST /v1/messages/count_tokens` (no tokens are generated, nothing is billed).
//! A gateway that does not serve that path (404 that names no model) gets a 1-token
//! `POST /v1/messages` instead. Failures are classified so the operator knows what to fix.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where claude talks when nothing is configured (the CLI's own default).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header the CLI sends.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Subscription tokens (`claude setup-token`) are accepted only with this beta and Claude
/// Code's identity as the system prompt, as the CLI sends them.
const OAUTH_BETA: &str = "oauth-2025-04-20";
const CLAUDE_CODE_IDENTITY: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The credential claude would use: an API key wins over an OAuth token (as in the CLI).
#[derive(Debug, Clone)]
pub enum Credential {
    ApiKey(String),
    OAuth(String),
}

impl Credential {
    pub fn name(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "ANTHROPIC_API_KEY",
            Credential::OAuth(_) => "CLAUDE_CODE_OAUTH_TOKEN",
        }
    }
}

/// Why the endpoint could not be proven. Each names the URL; the doctor line is the message.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{url}: not a valid base URL: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot connect to {url}: connection refused (is the base URL right?)")]
    Refused { url: String },
    #[error("cannot resolve the host of {url}: {detail}")]
    Dns { url: String, detail: String },
    #[error("TLS with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("{url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("cannot reach {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url} refused {credential}: HTTP {status} {kind}: {message} (check the key or token)")]
    Auth {
        url: String,
        credential: &'static str,
        status: u16,
        kind: String,
        message: String,
    },
    #[error(
        "{url} does not serve model `{model}`: HTTP 404 {message} (check claude.model or the goal's model)"
    )]
    Model {
        url: String,
        model: String,
        message: String,
    },
    #[error("{url} answered HTTP {status} {kind}: {message}")]
    Http {
        url: String,
        status: u16,
        kind: String,
        message: String,
    },
}

/// What the proof established.
#[derive(Debug, Clone)]
pub struct Proven {
    /// The request that succeeded, e.g. `POST https://…/v1/messages/count_tokens`.
    pub request: String,
    pub millis: u128,
}

/// Proves that `base_url` accepts `credential` for `model`.
pub async fn prove(
    base_url: &str,
    credential: &Credential,
    model: &str,
) -> Result<Proven, EndpointError> {
    let base = base_url.trim_end_matches('/');
    reqwest::Url::parse(base).map_err(|e| EndpointError::BadUrl {
        url: base.to_string(),
        detail: e.to_string(),
    })?;
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EndpointError::Connect {
            url: base.to_string(),
            detail: chain(&e),
        })?;
    let started = Instant::now();
    let url = format!("{base}/v1/messages/count_tokens");
    match post(
        &client,
        &url,
        credential,
        count_tokens_body(credential, model),
    )
    .await
    {
        Err(EndpointError::Http {
            status: 404,
            message,
            ..
        }) if !message.contains("model") => {
            // A gateway without count_tokens: one generated token is the cheapest real proof.
            let url = format!("{base}/v1/messages");
            post(&client, &url, credential, messages_body(credential, model))
                .await
                .map_err(|e| name_model(e, model))?;
            Ok(Proven {
                request: format!("POST {url} (max_tokens 1; no count_tokens there)"),
                millis: started.elapsed().as_millis(),
            })
        }
        Err(e) => Err(name_model(e, model)),
        Ok(()) => Ok(Proven {
            request: format!("POST {url}"),
            millis: started.elapsed().as_millis(),
        }),
    }
}

fn count_tokens_body(credential: &Credential, model: &str) -> Value {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "steward doctor"}],
    });
    if matches!(credential, Credential::OAuth(_)) {
        body["system"] = json!(CLAUDE_CODE_IDENTITY);
    }
    body
}

fn messages_body(credential: &Credential, model: &str) -> Value {
    let mut body = count_tokens_body(credential, model);
    body["max_tokens"] = json!(1);
    body
}

/// A 404 about the model becomes [`EndpointError::Model`].
fn name_model(e: EndpointError, model: &str) -> EndpointError {
    match e {
        EndpointError::Http {
            url,
            status: 404,
            message,
            ..
        } if message.contains("model") => EndpointError::Model {
            url,
            model: model.to_string(),
            message,
        },
        other => other,
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    credential: &Credential,
    body: Value,
) -> Result<(), EndpointError> {
    let mut req = client
        .post(url)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .header("content-type", "application/json")
        .body(body.to_string());
    req = match credential {
        Credential::ApiKey(k) => req.header("x-api-key", k),
        Credential::OAuth(t) => req
            .header("authorization", format!("Bearer {t}"))
            .header("anthropic-beta", OAUTH_BETA),
    };
    let resp = req.send().await.map_err(|e| transport(url, &e))?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let (kind, message) = api_error(&text);
    Err(match status {
        401 | 403 => EndpointError::Auth {
            url: url.to_string(),
            credential: credential.name(),
            status,
            kind,
            message,
        },
        _ => EndpointError::Http {
            url: url.to_string(),
            status,
            kind,
            message,
        },
    })
}

/// The API's error body `{"type":"error","error":{"type":K,"message":M}}`, or the text itself
/// (cut short) when a proxy answered something else.
fn api_error(text: &str) -> (String, String) {
    let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match (
        parsed["error"]["type"].as_str(),
        parsed["error"]["message"].as_str(),
    ) {
        (Some(k), Some(m)) => (k.to_string(), m.to_string()),
        _ => {
            let short: String = text.trim().chars().take(200).collect();
            (
                "(no API error)".to_string(),
                if short.is_empty() {
                    "(empty body)".to_string()
                } else {
                    short
                },
            )
        }
    }
}

/// Sorts a failed request into what the operator has to fix.
fn transport(url: &str, e: &reqwest::Error) -> EndpointError {
    let url = url.to_string();
    let all = chain(e).to_lowercase();
    let detail = root_cause(e);
    if e.is_timeout() {
        return EndpointError::Timeout {
            url,
            secs: REQUEST_TIMEOUT.as_secs(),
        };
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return EndpointError::Refused { url };
        }
        cur = c.source();
    }
    if all.contains("dns error") || all.contains("failed to lookup address") {
        EndpointError::Dns { url, detail }
    } else if ["certificate", "tls", "handshake", "corrupt message"]
        .iter()
        .any(|w| all.contains(w))
    {
        EndpointError::Tls { url, detail }
    } else {
        EndpointError::Connect { url, detail }
    }
}

/// The innermost cause: reqwest's own message repeats the URL and rarely says why.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// An error with its causes: reqwest's own message rarely says why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Credential {
        Credential::ApiKey("sk-steward-endpoint-test".into())
    }

    async fn scripted(extra: &str) -> crate::adapters::scripted::Server {
        let scenario = crate::adapters::scripted::Scenario::parse(extra).unwrap();
        crate::adapters::scripted::start(scenario, ([127, 0, 0, 1], 0).into())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn refused_connection_is_named() {
        let e = prove("http://127.0.0.1:1", &key(), "claude-sonnet-5")
            .await
            .unwrap_err();
        assert!(matches!(e, EndpointError::Refused { .. }), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[tokio::test]
    async fn plain_http_answering_tls_is_a_tls_failure() {
        let srv = scripted("").await;
        let url = format!("https://{}", srv.addr);
        let e = prove(&url, &key(), "claude-sonnet-5").await.unwrap_err();
        assert!(matches!(e, EndpointError::Tls { .. }), "{e}");
    }

    #[tokio::test]
    async fn count_tokens_proves_key_and_model() {
        let srv = scripted("api_key = \"sk-steward-endpoint-test\"\nmodels = [\"m-1\"]").await;
        let proven = prove(&srv.base_url(), &key(), "m-1").await.unwrap();
        assert!(proven.request.ends_with("/v1/messages/count_tokens"));
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].path, "/v1/messages/count_tokens");
        assert_eq!(reqs[0].body["model"], "m-1");
        assert_eq!(reqs[0].headers["anthropic-version"], ANTHROPIC_VERSION);

        let e = prove(
            &srv.base_url(),
            &Credential::ApiKey("sk-wrong".into()),
            "m-1",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, EndpointError::Auth { status: 401, kind, .. } if kind == "authentication_error"),
            "{e}"
        );
        let e = prove(&srv.base_url(), &key(), "m-2").await.unwrap_err();
        assert!(
            matches!(&e, EndpointError::Model { model, .. } if model == "m-2"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn oauth_token_is_sent_as_bearer_with_the_beta() {
        let srv = scripted("api_key = \"tok\"").await;
        prove(&srv.base_url(), &Credential::OAuth("tok".into()), "m")
            .await
            .unwrap();
        let r = &srv.requests()[0];
        assert_eq!(r.headers["anthropic-beta"], OAUTH_BETA);
        assert_eq!(r.body["system"], CLAUDE_CODE_IDENTITY);
    }

    #[tokio::test]
    async fn a_gateway_without_count_tokens_gets_one_token_of_messages() {
        use axum::routing::post;
        let app = axum::Router::new().route(
            "/v1/messages",
            post(|body: String| async move {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                assert_eq!(v["max_tokens"], 1);
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        let proven = prove(&format!("http://{addr}"), &key(), "m").await.unwrap();
        assert!(proven.request.contains("max_tokens 1"), "{proven:?}");
        task.abort();
    }
}
