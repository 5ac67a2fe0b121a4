//! The scripted Anthropic API over HTTP, without claude.

use crate::common;

use serde_json::{Value, json};
use steward::adapters::scripted::{Scenario, start};

async fn post(url: &str, body: &Value) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("x-api-key", "sk-test")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// (event, data) pairs of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (event, data)
        })
        .collect()
}

fn request(messages: Value, stream: bool) -> Value {
    json!({"model": "claude-test-1", "max_tokens": 100, "stream": stream, "messages": messages,
           "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]})
}

#[tokio::test]
async fn example_scenario_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/healthy.toml");
    let scenario = Scenario::load(&path).unwrap();
    assert_eq!(scenario.turns.len(), 3);
    let err = Scenario::load(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.toml"));
}

#[tokio::test]
async fn streams_turns_records_requests_and_serves_other_endpoints() {
    let srv = common::server(
        r#"
[[turn]]
http_error = { status = 529, type = "overloaded_error", message = "busy" }
times = 1
[[turn]]
text = "hello"
[[turn.tool_use]]
name = "Bash"
input = { command = "echo hi" }
[[turn]]
verdict = { status = "ok", summary = "s" }
"#,
    )
    .await;
    let url = format!("{}/v1/messages?beta=true", srv.base_url());
    let first = json!([{"role": "user", "content": "go"}]);

    let (status, _, body) = post(&url, &request(first.clone(), true)).await;
    assert_eq!(status, 529);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["type"], "overloaded_error");

    let (status, ct, body) = post(&url, &request(first.clone(), true)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/event-stream"));
    let ev = events(&body);
    let names: Vec<&str> = ev.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[0].1["message"]["model"], "claude-test-1");
    assert_eq!(
        ev[2].1["delta"],
        json!({"type": "text_delta", "text": "hello"})
    );
    assert_eq!(ev[4].1["content_block"]["name"], "Bash");
    assert_eq!(ev[5].1["delta"]["type"], "input_json_delta");
    let input: Value =
        serde_json::from_str(ev[5].1["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(input, json!({"command": "echo hi"}));
    assert_eq!(ev[7].1["delta"]["stop_reason"], "tool_use");

    // The same conversation point again (a CLI retry) gets the same answer; the next point the verdict.
    let second = json!([{"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_00_00", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_00_00", "content": "hi"}]}]);
    let (status, ct, body) = post(&url, &request(second.clone(), false)).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let msg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["content"][0]["name"], "StructuredOutput");
    assert_eq!(msg["content"][0]["input"]["status"], "ok");
    assert_eq!(msg["stop_reason"], "tool_use");

    let (status, _, body) = post(
        &format!("{}/v1/messages/count_tokens", srv.base_url()),
        &json!({"messages": first}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let (status, _, body) = post(&format!("{}/v1/other", srv.base_url()), &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "not_found_error"
    );

    let recorded = srv.message_requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0].status, 529);
    assert_eq!(recorded[0].query.as_deref(), Some("beta=true"));
    assert_eq!(recorded[1].tool_names(), ["Bash"]);
    assert_eq!(recorded[2].tool_results()[0]["content"], "hi");
    assert!(recorded.iter().all(|r| r.authenticated));

    let listed: Value = reqwest::get(format!("{}/_scripted/requests", srv.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 5);
    srv.shutdown().await;
}

#[tokio::test]
async fn garbage_sse_error_and_final_answer() {
    let srv = common::server("[[turn]]\ngarbage = \"<html>nope\"\ntimes = 1\n[[turn]]\nsse_error = { type = \"overloaded_error\" }\ntimes = 1\n[[turn]]\ntext = \"t\"\n").await;
    let url = format!("{}/v1/messages", srv.base_url());
    let first = json!([{"role": "user", "content": "go"}]);
    let (status, _, body) = post(&url, &request(first.clone(), true)).await;
    assert_eq!((status, body.as_str()), (200, "<html>nope"));
    let (_, _, body) = post(&url, &request(first.clone(), true)).await;
    let ev = events(&body);
    assert_eq!(ev.last().unwrap().0, "error");
    let (_, _, body) = post(&url, &request(first, true)).await;
    assert_eq!(events(&body)[2].1["delta"]["text"], "t");
    let done = json!([{"role": "user", "content": "go"}, {"role": "assistant", "content": "t"}, {"role": "user", "content": "more"}]);
    let (_, _, body) = post(&url, &request(done, false)).await;
    let msg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["content"][0]["text"], "Done.");
    assert_eq!(msg["stop_reason"], "end_turn");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let srv = start(Scenario::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = srv.addr;
    assert_ne!(addr.port(), 0);
    drop(srv);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn accepts_large_conversations() {
    let srv = common::server("[[turn]]\ntext = \"read it\"\n").await;
    let big = "x".repeat(5 * 1024 * 1024);
    let messages = json!([{"role": "user", "content": big}]);
    let (status, _, body) = post(
        &format!("{}/v1/messages", srv.base_url()),
        &request(messages, false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_scenario_can_require_a_key_and_serve_only_some_models() {
    let scenario = Scenario::parse(
        "api_key = \"sk-test\"\nmodels = [\"claude-test-1\"]\n[[turn]]\ntext = \"hi\"\n",
    )
    .unwrap();
    let srv = start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("{}/v1/messages", srv.base_url());
    let msgs = json!([{"role": "user", "content": "x"}]);
    // The right key (sent by `post`) and a served model: answered.
    let (status, _, _) = post(&url, &request(msgs.clone(), false)).await;
    assert_eq!(status, 200);
    // Another model: the API's 404, naming it.
    let mut other = request(msgs.clone(), false);
    other["model"] = json!("claude-other");
    let (status, _, body) = post(&url, &other).await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    assert_eq!(v["error"]["message"], "model: claude-other");
    // Another key, on either endpoint, as x-api-key or a bearer token: 401.
    for (path, header, value) in [
        ("/v1/messages", "x-api-key", "sk-wrong"),
        (
            "/v1/messages/count_tokens",
            "authorization",
            "Bearer sk-wrong",
        ),
    ] {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", srv.base_url()))
            .header(header, value)
            .json(&request(msgs.clone(), false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    // A bearer token with the right value is accepted.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages/count_tokens", srv.base_url()))
        .header("authorization", "Bearer sk-test")
        .json(&request(msgs, false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Every refusal is recorded with its status.
    let statuses: Vec<u16> = srv.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 401, 401, 200]);
}
