//! The compose project's name, decided as compose decides it for a directory and its files, so
//! that steward's explicit `-p NAME` names the project that runs and never makes a second one:
//! `COMPOSE_PROJECT_NAME` in the project directory's `.env`, else the top-level `name:` of the
//! last compose file that sets one, else the directory's name (lowercased, keeping `a-z 0-9 _ -`,
//! not starting with `_` or `-`). A name that is interpolated (`${...}`) or not a valid project
//! name is refused with the reason: steward does not guess.

use std::path::Path;

use serde::Deserialize;

/// Files larger than this are not read for their name (a compose file is a few KiB).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
struct TopLevel {
    #[serde(default)]
    name: Option<String>,
}

/// The project name for the compose `files` (absolute, in order) of the directory `dir`.
pub fn resolve(dir: &Path, files: &[impl AsRef<Path>]) -> Result<String, String> {
    if let Some(name) = dot_env_name(&dir.join(".env"))? {
        return checked(&name, "COMPOSE_PROJECT_NAME in .env");
    }
    let mut named = None;
    for file in files {
        if let Some(name) = top_level_name(file.as_ref())? {
            named = Some((name, file.as_ref().display().to_string()));
        }
    }
    if let Some((name, file)) = named {
        return checked(&name, &format!("`name:` in {file}"));
    }
    from_directory(dir).ok_or_else(|| {
        format!(
            "the directory {} gives no compose project name (it needs a letter or digit)",
            dir.display()
        )
    })
}

/// The name compose derives from a directory.
pub fn from_directory(dir: &Path) -> Option<String> {
    let base = dir.file_name()?.to_string_lossy().to_lowercase();
    let name: String = base
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let name = name.trim_start_matches(['_', '-']).to_string();
    (!name.is_empty()).then_some(name)
}

fn checked(name: &str, from: &str) -> Result<String, String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if name.contains('$') {
        return Err(format!(
            "the project name `{name}` ({from}) is interpolated: steward names projects only literally"
        ));
    }
    if !valid {
        return Err(format!(
            "`{name}` ({from}) is not a compose project name (lowercase letters, digits, `_`, `-`, \
             starting with a letter or digit)"
        ));
    }
    Ok(name.to_string())
}

fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The last `COMPOSE_PROJECT_NAME=` of a `.env` file (quotes removed), if it has one.
fn dot_env_name(path: &Path) -> Result<Option<String>, String> {
    let Some(text) = read_bounded(path)? else {
        return Ok(None);
    };
    Ok(text
        .lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| l.strip_prefix("COMPOSE_PROJECT_NAME="))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .next_back())
}

/// The top-level `name:` of a compose file, if it sets one.
fn top_level_name(path: &Path) -> Result<Option<String>, String> {
    let Some(text) = read_bounded(path)? else {
        return Ok(None);
    };
    let top: TopLevel = serde_saphyr::from_str(&text)
        .map_err(|e| format!("{} is not readable YAML: {e}", path.display()))?;
    Ok(top.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_are_what_compose_derives() {
        assert_eq!(
            from_directory(Path::new("/srv/My App.v2")).as_deref(),
            Some("myappv2")
        );
        assert_eq!(
            from_directory(Path::new("/srv/_x-1")).as_deref(),
            Some("x-1")
        );
        assert_eq!(from_directory(Path::new("/srv/...")), None);
    }

    #[test]
    fn dot_env_beats_name_which_beats_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("Web App");
        std::fs::create_dir(&dir).unwrap();
        let main = dir.join("compose.yaml");
        let over = dir.join("compose.override.yaml");
        std::fs::write(&main, "services:\n  web:\n    image: nginx\n").unwrap();
        assert_eq!(resolve(&dir, &[&main]).unwrap(), "webapp");
        std::fs::write(&main, "name: shop\nservices:\n  web:\n    image: nginx\n").unwrap();
        assert_eq!(resolve(&dir, &[&main]).unwrap(), "shop");
        // The last file that names the project wins, as compose merges them.
        std::fs::write(&over, "name: shop-2\n").unwrap();
        assert_eq!(resolve(&dir, &[&main, &over]).unwrap(), "shop-2");
        std::fs::write(dir.join(".env"), "A=1\nCOMPOSE_PROJECT_NAME=\"front\"\n").unwrap();
        assert_eq!(resolve(&dir, &[&main, &over]).unwrap(), "front");
    }

    #[test]
    fn interpolated_or_invalid_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("compose.yaml");
        std::fs::write(&main, "name: ${PROJECT:-shop}\n").unwrap();
        let e = resolve(tmp.path(), &[&main]).unwrap_err();
        assert!(e.contains("interpolated"), "{e}");
        std::fs::write(&main, "name: Shop\n").unwrap();
        let e = resolve(tmp.path(), &[&main]).unwrap_err();
        assert!(e.contains("not a compose project name"), "{e}");
        std::fs::write(&main, "name: [unclosed\n").unwrap();
        assert!(resolve(tmp.path(), &[&main]).is_err());
        // Anchors and merge keys, common in compose files, are read.
        std::fs::write(
            &main,
            "x-base: &base\n  restart: always\nname: shop\nservices:\n  web:\n    <<: *base\n    image: nginx\n",
        )
        .unwrap();
        assert_eq!(resolve(tmp.path(), &[&main]).unwrap(), "shop");
    }
}
