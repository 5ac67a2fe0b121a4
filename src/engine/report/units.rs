//! Failed systemd units, from `systemctl list-units --state=failed`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::base::exec::{self, Command};

use super::snapshot::FailedUnit;

pub async fn collect(path_env: &str) -> Result<BTreeMap<String, FailedUnit>, String> {
    let argv: Vec<String> = [
        "systemctl",
        "list-units",
        "--state=failed",
        "--plain",
        "--no-legend",
        "--no-pager",
        "--full",
    ]
    .map(String::from)
    .to_vec();
    let out = exec::run(&Command {
        argv: &argv,
        path_env,
        cwd: None,
        timeout: Duration::from_secs(10),
        stdout_cap: 256 * 1024,
        stderr_tail: 2048,
    })
    .await
    .map_err(|e| e.to_string())?;
    match out.status {
        Some(s) if s.success() => {}
        Some(s) => return Err(format!("systemctl {s}: {}", out.stderr.trim())),
        None => return Err("systemctl timed out".into()),
    }
    Ok(parse(&out.stdout))
}

/// `UNIT LOAD ACTIVE SUB DESCRIPTION…` per line.
fn parse(text: &str) -> BTreeMap<String, FailedUnit> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let unit = words.next()?.trim_start_matches('●').to_string();
            let unit = if unit.is_empty() {
                words.next()?.to_string()
            } else {
                unit
            };
            let description = words.skip(3).collect::<Vec<_>>().join(" ");
            Some((unit, FailedUnit { description }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_unit_a_line_with_its_description() {
        let units = parse(
            "nginx.service loaded failed failed The nginx HTTP server\n\
             ● backup.timer loaded failed failed Nightly backup\n",
        );
        assert_eq!(units["nginx.service"].description, "The nginx HTTP server");
        assert_eq!(units["backup.timer"].description, "Nightly backup");
    }
}
