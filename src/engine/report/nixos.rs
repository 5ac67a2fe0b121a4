//! The NixOS system generation: `/nix/var/nix/profiles/system` links to `system-N-link`, which
//! links to the generation's store path. No link: not NixOS (nothing to report, not an error).

use std::path::Path;

use super::snapshot::Generation;

pub fn collect(profile: &Path) -> Result<Option<Generation>, String> {
    let link = match std::fs::read_link(profile) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", profile.display())),
    };
    let name = link
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let number = name
        .strip_prefix("system-")
        .and_then(|n| n.strip_suffix("-link"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            format!(
                "{} links to {}, not system-N-link",
                profile.display(),
                link.display()
            )
        })?;
    let generation = profile.parent().unwrap_or(Path::new("/")).join(&link);
    let path = std::fs::read_link(&generation)
        .map(|p| p.display().to_string())
        .map_err(|e| format!("cannot read {}: {e}", generation.display()))?;
    Ok(Some(Generation { number, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_number_and_store_path() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            "/nix/store/abc-nixos-system",
            dir.path().join("system-42-link"),
        )
        .unwrap();
        std::os::unix::fs::symlink("system-42-link", dir.path().join("system")).unwrap();
        let g = collect(&dir.path().join("system")).unwrap().unwrap();
        assert_eq!(g.number, 42);
        assert_eq!(g.path, "/nix/store/abc-nixos-system");
        assert_eq!(collect(&dir.path().join("absent")).unwrap(), None);
    }
}
