//! steward: triggers in, scoped and recorded Claude Code runs out. The model proposes; steward
//! decides.

// The layers, bottom to top: base, config, defs, engine, daemon, adapters, cli. Each may use
// only the layers below it (ARCHITECTURE.md; checked by tests/it/layers.rs).
pub mod adapters;
pub mod base;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod defs;
pub mod engine;
