//! Listening sockets from `/proc/net/{tcp,tcp6,udp,udp6}`, each with the process that owns it
//! (found through `/proc/PID/fd`; a process of another user may stay unnamed when steward does
//! not run as root).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use super::snapshot::Socket;

/// TCP's LISTEN state in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";
/// UDP's "unconnected" state: a bound socket waiting for datagrams.
const UDP_BOUND: &str = "07";

/// The sockets listening on this host, by key; `Err` when no table could be read.
pub fn collect(proc_root: &Path) -> Result<BTreeMap<String, Socket>, String> {
    let mut raw = Vec::new();
    let mut readable = 0;
    for (file, proto, state) in [
        ("tcp", "tcp", TCP_LISTEN),
        ("tcp6", "tcp", TCP_LISTEN),
        ("udp", "udp", UDP_BOUND),
        ("udp6", "udp", UDP_BOUND),
    ] {
        let Ok(text) = std::fs::read_to_string(proc_root.join("net").join(file)) else {
            continue;
        };
        readable += 1;
        raw.extend(parse_table(&text, proto, state));
    }
    if readable == 0 {
        return Err(format!("cannot read {}/net/tcp", proc_root.display()));
    }
    let owners = socket_owners(proc_root);
    Ok(raw
        .into_iter()
        .map(|(mut socket, inode)| {
            if let Some((pid, name)) = owners.get(&inode) {
                socket.pid = Some(*pid);
                socket.process = Some(name.clone());
            }
            (socket.key(), socket)
        })
        .collect())
}

/// The listening rows of one table, with their socket inode.
fn parse_table(text: &str, proto: &str, listen_state: &str) -> Vec<(Socket, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != listen_state {
                return None;
            }
            let addr = crate::base::procfs::net_addr(local)?;
            let address = match addr.ip() {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or(v6.to_string(), |v4| v4.to_string()),
                v4 => v4.to_string(),
            };
            let socket = Socket {
                proto: proto.to_string(),
                address,
                port: addr.port(),
                process: None,
                pid: None,
            };
            Some((socket, inode.parse().ok()?))
        })
        .collect()
}

/// Socket inode → (pid, command name), from every process's open descriptors.
fn socket_owners(proc_root: &Path) -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return owners;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
            else {
                continue;
            };
            owners.entry(inode).or_insert_with(|| (pid, name.clone()));
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_rows_only_with_addresses_decoded() {
        let rows = parse_table(TCP, "tcp", TCP_LISTEN);
        assert_eq!(rows.len(), 1, "the established row is not listening");
        assert_eq!(rows[0].0.key(), "tcp 127.0.0.1:8080");
        assert_eq!(rows[0].1, 4242);
        let rows = parse_table(TCP6, "tcp", TCP_LISTEN);
        let keys: Vec<String> = rows.iter().map(|r| r.0.key()).collect();
        assert_eq!(keys, vec!["tcp [::1]:22", "tcp 127.0.0.1:80"]);
    }

    #[test]
    fn garbage_rows_are_skipped() {
        let rows = parse_table("header\nnot a row\n 0: zz:zz 0 0A", "tcp", TCP_LISTEN);
        assert!(rows.is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_found_with_its_owner() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sockets = collect(Path::new("/proc")).unwrap();
        let s = &sockets[&format!("tcp 127.0.0.1:{port}")];
        assert_eq!(s.pid, Some(std::process::id()));
    }
}
