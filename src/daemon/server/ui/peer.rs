//! Whether a request comes from a run's agent. The agent's own tools must have no route to an
//! approval: its shell could reach the loopback listener with `curl`. The TCP peer of the
//! request is a socket on this host when the caller is local; `/proc/net/tcp{,6}` names the
//! socket's inode, `/proc/PID/fd` the processes holding it, and the parent chain of each says
//! whether it descends from an agent: every process of a run's agent carries the run's private
//! `HOME` (`STATE/tmp/claude-home-*`), and a tool that clears its own environment still has a
//! parent shell that carries it.
//!
//! A caller on another host (or behind a reverse proxy) is not found here: the proxy is the
//! peer. The README says so.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::base::procfs;

/// The parent chain is walked this far at most (a loop cannot hold the request).
const MAX_DEPTH: usize = 64;

/// Whether two addresses are the same endpoint, an IPv4-mapped IPv6 address included.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |s: SocketAddr| match s.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(s.ip(), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canon(a) == canon(b)
}

/// The inode of the local socket whose own address is `peer` (the client's end).
fn socket_inode(table: &str, peer: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local = procfs::net_addr(f.get(1)?)?;
        if !same(local, peer) {
            return None;
        }
        f.get(9)?.parse().ok().filter(|i| *i != 0)
    })
}

/// The processes holding socket `inode` open.
fn holders(inode: u64) -> Vec<u32> {
    let want = format!("socket:[{inode}]");
    procfs::pids()
        .into_iter()
        .filter(|pid| {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(Result::ok).any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|l| l.as_os_str().as_encoded_bytes() == want.as_bytes())
            })
        })
        .collect()
}

/// The process in `pid`'s chain (itself first) whose `HOME` is an agent's, if any.
fn agent_ancestor(pid: u32, agent_homes: &Path) -> Option<u32> {
    let prefix = format!("HOME={}/claude-home-", agent_homes.display());
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        if environ_starts(current, &prefix) {
            return Some(current);
        }
        let parent = procfs::stat(current)?.ppid;
        if parent == 0 || parent == current {
            return None;
        }
        current = parent;
    }
    None
}

fn environ_starts(pid: u32, prefix: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    raw.split(|b| *b == 0)
        .any(|e| e.starts_with(prefix.as_bytes()))
}

/// Why the caller at `peer` is a run's agent (its pid and the agent process it descends from),
/// or `None`. `agent_homes` is where runs' private homes are made (`STATE/tmp`).
pub(in crate::daemon::server) fn agent_caller(
    peer: SocketAddr,
    agent_homes: &Path,
) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .find_map(|table| socket_inode(&table, peer))?;
    holders(inode).into_iter().find_map(|pid| {
        agent_ancestor(pid, agent_homes).map(|agent| {
            format!(
                "the caller (pid {pid}, socket {peer}) descends from a run's agent (pid {agent})"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_the_kernel_writes_them() {
        // 127.0.0.1:8080 as /proc/net/tcp shows it on a little-endian host.
        if cfg!(target_endian = "little") {
            assert_eq!(
                procfs::net_addr("0100007F:1F90"),
                Some("127.0.0.1:8080".parse().unwrap())
            );
            assert_eq!(
                procfs::net_addr("00000000000000000000000001000000:0050"),
                Some("[::1]:80".parse().unwrap())
            );
        }
        assert_eq!(procfs::net_addr("zz:1"), None);
        assert!(same(
            "[::ffff:127.0.0.1]:5".parse().unwrap(),
            "127.0.0.1:5".parse().unwrap()
        ));
    }

    /// A real loopback connection from this process: its client socket is found and held by
    /// this process, which is not an agent; with the test's own HOME prefix, it is one.
    #[test]
    fn a_local_connection_is_traced_to_its_process_and_its_home() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let inode = socket_inode(&table, peer).expect("the client socket is listed");
        assert!(holders(inode).contains(&std::process::id()));
        assert_eq!(
            agent_caller(peer, Path::new("/nonexistent-agent-homes")),
            None
        );
    }
}
