//! Disk use per real filesystem: mount points from `/proc/self/mountinfo` (block devices and
//! the network and pooled filesystems; not proc, sysfs, cgroup or tmpfs), each device once, sized
//! with `statvfs` the way `df` computes its percentage.

use std::collections::BTreeMap;
use std::path::Path;

use super::snapshot::Filesystem;

/// Filesystems worth watching although their source is no `/dev` path.
const POOLED: &[&str] = &[
    "zfs",
    "btrfs",
    "nfs",
    "nfs4",
    "cifs",
    "bcachefs",
    "fuse.mergerfs",
];

/// One mount from `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    point: String,
    fstype: String,
    source: String,
}

pub fn collect(mountinfo: &Path) -> Result<BTreeMap<String, Filesystem>, String> {
    let text = std::fs::read_to_string(mountinfo)
        .map_err(|e| format!("cannot read {}: {e}", mountinfo.display()))?;
    let mut seen_sources = std::collections::BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut mounts = parse(&text);
    // A device mounted twice (bind mounts) is one filesystem: keep its shortest mount point.
    mounts.sort_by_key(|m| m.point.len());
    for m in mounts.into_iter().filter(worth_watching) {
        if !seen_sources.insert(m.source.clone()) {
            continue;
        }
        if let Some(fs) = usage(&m) {
            out.insert(m.point.clone(), fs);
        }
    }
    Ok(out)
}

fn worth_watching(m: &Mount) -> bool {
    m.source.starts_with("/dev/") || POOLED.contains(&m.fstype.as_str())
}

fn usage(m: &Mount) -> Option<Filesystem> {
    let st = nix::sys::statvfs::statvfs(Path::new(&m.point)).ok()?;
    let frsize = st.fragment_size();
    let total = st.blocks() * frsize;
    let used = st.blocks().saturating_sub(st.blocks_free()) * frsize;
    let avail = st.blocks_available() * frsize;
    let inodes = st.files();
    let inodes_used = inodes.saturating_sub(st.files_free());
    Some(Filesystem {
        device: m.source.clone(),
        fstype: m.fstype.clone(),
        size_bytes: total,
        used_bytes: used,
        used_percent: percent(used, used + avail),
        inodes_used_percent: (inodes > 0).then(|| percent(inodes_used, inodes)),
    })
}

/// `part` of `whole` in percent, one decimal.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 1000.0 / whole as f64).round() / 10.0
}

/// The mounts of a `mountinfo` text; malformed lines are skipped.
fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            let mut rest = after.split(' ');
            Some(Mount {
                point: unescape(point),
                fstype: rest.next()?.to_string(),
                source: unescape(rest.next()?),
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:5 / /proc rw shared:2 - proc proc rw
24 22 254:1 /srv /mnt/my\\040data rw shared:1 - ext4 /dev/vda1 rw
25 22 0:40 / /tank rw - zfs tank/data rw,xattr
26 22 0:41 / /run rw - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn real_filesystems_once_each() {
        let mounts = parse(INFO);
        assert_eq!(mounts[2].point, "/mnt/my data");
        let watched: Vec<&str> = mounts
            .iter()
            .filter(|m| worth_watching(m))
            .map(|m| m.point.as_str())
            .collect();
        assert_eq!(watched, vec!["/", "/mnt/my data", "/tank"]);
    }

    #[test]
    fn percent_is_rounded_to_one_decimal() {
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(0, 0), 0.0);
    }

    #[test]
    fn this_host_has_a_root_filesystem() {
        let fs = collect(Path::new("/proc/self/mountinfo")).unwrap();
        assert!(fs.values().all(|f| f.used_percent <= 100.0), "{fs:?}");
    }
}
