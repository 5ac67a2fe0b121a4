//! The goals, probes and knowledge notes shipped inside the binary, so that a fresh install works
//! from any directory. Operator directories add to them and override them by file name.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static GOALS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/goals");
static CONTEXT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/context");
static KNOWLEDGE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/knowledge");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Goals,
    Context,
    Knowledge,
}

/// One definition file: where it came from (for error messages) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `bundled:goals/health-check.md` or the real path.
    pub origin: String,
    pub stem: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A definition file that is there but cannot be read.
#[derive(Debug)]
pub struct Unreadable {
    pub origin: String,
    pub stem: String,
    pub error: ReadError,
}

/// The files of one kind: those read, and those that could not be read (each on its own, so one
/// unreadable file does not hide the others).
#[derive(Debug, Default)]
pub struct Collected {
    pub files: Vec<SourceFile>,
    pub unreadable: Vec<Unreadable>,
}

/// The files of one kind with the given extension: bundled ones (unless `no_bundled`), then the
/// operator directory's, which replace bundled files of the same stem. Any unreadable file is an
/// error.
pub fn files(
    kind: Kind,
    operator_dir: Option<&Path>,
    no_bundled: bool,
    ext: &str,
) -> Result<Vec<SourceFile>, ReadError> {
    let collected = collect(kind, operator_dir, no_bundled, ext)?;
    match collected.unreadable.into_iter().next() {
        Some(u) => Err(u.error),
        None => Ok(collected.files),
    }
}

/// Like [`files`], but a file that cannot be read is listed in `unreadable` (and still replaces
/// the bundled file of its stem) instead of failing everything; an unreadable directory is still
/// an error.
pub fn collect(
    kind: Kind,
    operator_dir: Option<&Path>,
    no_bundled: bool,
    ext: &str,
) -> Result<Collected, ReadError> {
    let mut out: Vec<SourceFile> = Vec::new();
    let mut unreadable: Vec<Unreadable> = Vec::new();
    if !no_bundled {
        let (dir, label) = match kind {
            Kind::Goals => (&GOALS, "goals"),
            Kind::Context => (&CONTEXT, "context"),
            Kind::Knowledge => (&KNOWLEDGE, "knowledge"),
        };
        for f in dir.files() {
            let path = f.path();
            if path.extension().and_then(|e| e.to_str()) != Some(ext) {
                continue;
            }
            let (Some(stem), Some(text)) =
                (path.file_stem().and_then(|s| s.to_str()), f.contents_utf8())
            else {
                continue;
            };
            out.push(SourceFile {
                origin: format!("bundled:{label}/{}", path.display()),
                stem: stem.to_string(),
                text: text.to_string(),
            });
        }
    }
    if let Some(dir) = operator_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| ReadError {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ReadError {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some(ext) && path.is_file() {
                paths.push(path);
            }
        }
        for path in paths {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            out.retain(|f| f.stem != stem);
            match std::fs::read_to_string(&path) {
                Ok(text) => out.push(SourceFile {
                    origin: path.display().to_string(),
                    stem,
                    text,
                }),
                Err(source) => unreadable.push(Unreadable {
                    origin: path.display().to_string(),
                    stem,
                    error: ReadError {
                        path: path.clone(),
                        source,
                    },
                }),
            }
        }
    }
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    Ok(Collected {
        files: out,
        unreadable,
    })
}
