//! A container's last log lines through the Docker API, bounded in lines, bytes and time.

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

/// The most bytes kept of one capture (the end is kept: the last lines matter).
pub const MAX_CAPTURE_BYTES: usize = 64 * 1024;
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// The last `lines` lines of stdout and stderr, interleaved as the engine stores them.
pub async fn tail(docker: &Docker, id: &str, lines: usize) -> Result<String, String> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut text: Vec<u8> = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("the Docker API: {e}"))?;
            text.extend_from_slice(&chunk.into_bytes());
            if text.len() > 2 * MAX_CAPTURE_BYTES {
                let cut = text.len() - MAX_CAPTURE_BYTES;
                text.drain(..cut);
            }
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(CAPTURE_TIMEOUT, read)
        .await
        .map_err(|_| "the logs did not arrive in time".to_string())??;
    let start = text.len().saturating_sub(MAX_CAPTURE_BYTES);
    Ok(String::from_utf8_lossy(&text[start..]).into_owned())
}
