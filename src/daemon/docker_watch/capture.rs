//! A container's last log lines: the engine's bounded tail (`engine/report/logs.rs`), shared
//! with the agent's `container_logs` tool.

pub use crate::engine::report::logs::tail;
