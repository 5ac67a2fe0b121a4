//! Stand-in for `steward hook pre-tool-use --policy FILE` until the CLI wires it: same arguments,
//! stdin, stdout, stderr and exit code, so `bench/hook.sh` can measure the service today.

use std::io::{Read, Write};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let policy = match args.as_slice() {
        [hook, event, flag, file]
            if hook == "hook" && event == "pre-tool-use" && flag == "--policy" =>
        {
            PathBuf::from(file)
        }
        _ => {
            eprintln!("usage: hook hook pre-tool-use --policy FILE < input.json");
            std::process::exit(2);
        }
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("steward policy hook could not read stdin, so the call is blocked: {e}");
        std::process::exit(2);
    }
    let answer = steward::policy::hook_decision(&policy, &input);
    // A failed write to stdout must not turn into "no opinion": block instead.
    if std::io::stdout()
        .write_all(answer.stdout.as_bytes())
        .is_err()
    {
        std::process::exit(2);
    }
    let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
    std::process::exit(answer.exit_code);
}
