//! The integration tests, one binary (`autotests = false` in Cargo.toml): one module per area,
//! `common` shared by them. One binary links the crate once instead of once per file; the price
//! is one process for all of them, so no test may change process-wide state (environment, current
//! directory, signal dispositions, global switches): what varies per test goes in its spec.

mod common;

mod agent_no_pidns;
mod agent_process;
mod agent_real_claude;
mod approval_wait;
mod boundary_e2e;
mod bounded_state;
mod ci;
mod cli;
mod definitions;
mod doctor;
mod durable;
mod hook_hostile;
mod json_exit;
mod layers;
mod phases_e2e;
mod policy_cases;
mod policy_goals;
mod policy_hook;
mod records;
mod run_e2e;
mod scripted_server;
mod serve;
mod stop_and_crash;
mod trigger_cli;
mod units;
