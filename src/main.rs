//! Parse, init logging, run, map errors to an exit code. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use steward::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The policy hook runs once per tool call: no logging setup, no async runtime.
    if let cli::Command::Hook(cli::HookCommand::PreToolUse { run_dir }) = &cli.command {
        return ExitCode::from(cli::hook_pre_tool_use(run_dir));
    }
    // Started by claude: die with it. On the main thread, before the runtime's threads exist
    // (the kernel reads the main thread's setting when the parent dies).
    if let cli::Command::Mcp(cli::McpCommand::Serve { .. }) = &cli.command
        && let Err(e) = steward::base::spawn::die_with_parent()
    {
        cli::output::stderr(&format!(
            "steward: cannot tie this process to claude's life: {e}\n"
        ));
        return ExitCode::from(1);
    }
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(cli::output::stderr_colour())
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            cli::output::stderr(&format!("steward: cannot start the async runtime: {e}\n"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(kind) => ExitCode::from(kind.code()),
        Err(e) => ExitCode::from(cli::report_error(json, &e)),
    }
}
