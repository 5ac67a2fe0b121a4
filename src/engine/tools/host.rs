//! The host tools: `report` (the snapshot and its diff, no baseline saved) and
//! `container_logs` (a bounded tail through the Docker API).

use serde_json::{Map, Value, json};

use super::args;
use super::{Run, ToolsError};
use crate::engine::report::{self, Sources, containers, logs};

/// The most lines `container_logs` returns.
pub const MAX_LOG_LINES: u64 = 2000;
const DEFAULT_LOG_LINES: u64 = 200;

pub(super) async fn report(run: &Run, _args: &Map<String, Value>) -> Result<Value, ToolsError> {
    // `None`: the agent's look never becomes the next baseline (only `steward report` saves).
    let r = report::report(&Sources::of_host(&run.cfg), &run.cfg.state_dir, None)
        .await
        .map_err(|e| ToolsError::Failed(format!("report: {e}")))?;
    Ok(json!({
        "snapshot": r.snapshot,
        "baseline": r.baseline,
        "changes": r.changes,
        "needs_attention": r.needs_attention,
    }))
}

pub(super) async fn container_logs(
    run: &Run,
    args: &Map<String, Value>,
) -> Result<Value, ToolsError> {
    let container = args::name(args, "container")?;
    let lines = args::count(args, "lines", (1, DEFAULT_LOG_LINES, MAX_LOG_LINES))?;
    let host = run.cfg.docker.socket().ok_or_else(|| {
        ToolsError::Failed("no Docker engine: `[docker] host` is unset and no socket exists".into())
    })?;
    let docker = containers::connect(&host).map_err(ToolsError::Failed)?;
    let text = logs::tail(&docker, &container, lines as usize)
        .await
        .map_err(|e| ToolsError::Failed(format!("container `{container}`: {e}")))?;
    Ok(json!({
        "container": container,
        "lines": lines,
        "max_bytes": logs::MAX_CAPTURE_BYTES,
        "logs": text,
    }))
}
