//! `steward hook pre-tool-use`: the policy hook claude calls before every tool call.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::output;

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// The PreToolUse hook: Claude's JSON on stdin, a decision on stdout; fails closed (exit 2).
    PreToolUse {
        /// The run directory holding `policy.json`, `hook-context.json` and `audit.jsonl`.
        #[arg(long, value_name = "DIR")]
        run_dir: PathBuf,
    },
}

/// The PreToolUse hook, on claude's path for every tool call: synchronous, no config, no runtime.
/// Returns the process exit code; anything that goes wrong blocks the call (2).
pub fn hook_pre_tool_use(run_dir: &Path) -> u8 {
    let mut input = Vec::new();
    let limit = crate::engine::boundary::MAX_HOOK_READ as u64;
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut input) {
        output::stderr(&format!(
            "steward policy hook could not read its input, so the call is blocked: {e}\n"
        ));
        return 2;
    }
    let answer = crate::engine::boundary::pre_tool_use(run_dir, &input);
    // A failed write to stdout would read as "no opinion": block instead.
    if std::io::stdout()
        .write_all(answer.stdout.as_bytes())
        .and_then(|_| std::io::stdout().flush())
        .is_err()
    {
        return 2;
    }
    let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
    u8::try_from(answer.exit_code).unwrap_or(2)
}
