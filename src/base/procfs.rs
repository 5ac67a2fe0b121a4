//! What `/proc` says about a process: its parent, group and start time, the boot it belongs to,
//! and whether its environment carries a given entry. Enough to tell a process steward started
//! from an unrelated one that reuses its pid.

use std::path::Path;

/// Fields of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// `Z` for a zombie (dead, not yet reaped).
    pub state: char,
    /// Clock ticks after boot when the process started: with the boot id, a pid that was
    /// reused has a different start time.
    pub start_ticks: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// `/proc/PID/stat`; the command name may contain spaces and parentheses.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Fields from the 3rd (state) on; starttime is the 22nd.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Every pid in `/proc` (threads are not listed there, only thread groups).
pub fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// This boot's id: start times only compare within one boot.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether the process's environment holds exactly `entry` (`KEY=value`). A process of another
/// user (unreadable) or a zombie (empty) does not.
pub fn environ_has(pid: u32, entry: &str) -> bool {
    let Ok(raw) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ")) else {
        return false;
    };
    raw.split(|b| *b == 0).any(|e| e == entry.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let line = "42 (a (weird) name) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        let s = parse_stat(42, line).unwrap();
        assert_eq!(
            (s.ppid, s.pgid, s.state, s.start_ticks),
            (1, 42, 'S', 12345)
        );
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn reads_this_process() {
        let me = stat(std::process::id()).unwrap();
        assert!(me.start_ticks > 0 && !me.is_zombie());
        assert!(pids().contains(&std::process::id()));
        assert!(boot_id().is_some_and(|b| b.len() >= 32));
        let path = std::env::var("PATH").unwrap_or_default();
        if !path.is_empty() {
            assert!(environ_has(std::process::id(), &format!("PATH={path}")));
        }
        assert!(!environ_has(std::process::id(), "STEWARD_NO_SUCH=1"));
    }
}
