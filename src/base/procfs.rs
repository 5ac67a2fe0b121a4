//! What `/proc` says about a process: its parent, group and start time, the boot it belongs to,
//! and whether its environment carries a given entry (enough to tell a process steward started
//! from an unrelated one that reuses its pid); socket addresses as `/proc/net` writes them; the
//! host's name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Parses `/proc/net/tcp{,6}`'s `ADDR:PORT` (hex, each 32-bit word in host byte order).
pub fn net_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// This host's name, as the kernel has it (`None` when /proc does not say).
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
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
