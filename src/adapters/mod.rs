//! Adapters from the outside world into the engine and the daemon: the MCP server, systemd
//! triggers, CI, the scripted model, doctor.

pub mod ci;
pub mod ci_apply;
pub mod doctor;
pub mod mcp;
pub mod scripted;
pub mod trigger;
