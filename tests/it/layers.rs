//! The layer rule of ARCHITECTURE.md, checked on the source: a module may use only its own layer
//! and the layers below it, and the framework crates stay in the adapters that own them.

use std::path::{Path, PathBuf};

/// Bottom to top. A file in `src/<layer>/` (or `src/<layer>.rs`) may name `crate::<other>` only
/// for an `<other>` at or before its own position.
const LAYERS: &[&str] = &[
    "base", "config", "defs", "engine", "daemon", "adapters", "cli",
];

/// Framework crates and the only places (path prefixes under `src/`) that may use them outside
/// tests: services never see clap, axum, hyper or rmcp types.
const FRAMEWORKS: &[(&str, &[&str])] = &[
    ("clap", &["cli", "main.rs"]),
    ("rmcp", &["adapters/mcp"]),
    ("axum", &["daemon/server", "adapters/scripted"]),
    (
        "hyper",
        &["daemon/server", "adapters/scripted", "adapters/doctor"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source path belongs to (`defs/policy/bash.rs` → `defs`).
fn top_module(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The text of a file without its `#[cfg(test)]` module (tests may use what they like), comments
/// and doc comments (prose may name any layer).
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named by a `crate::` path, `use crate::{a, b::c}` groups included.
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// The violations of the layer rule in one file, as `file: layer -> higher`.
fn layer_violations(rel: &str, text: &str) -> Vec<String> {
    let own = top_module(rel);
    let Some(own_rank) = LAYERS.iter().position(|l| *l == own) else {
        return Vec::new();
    };
    crate_modules(&code_only(text))
        .into_iter()
        .filter(|m| {
            LAYERS
                .iter()
                .position(|l| l == m)
                .is_some_and(|r| r > own_rank)
        })
        .map(|m| format!("{rel}: {own} -> {m}"))
        .collect()
}

fn framework_violations(rel: &str, text: &str) -> Vec<String> {
    let code = code_only(text);
    FRAMEWORKS
        .iter()
        .filter(|(krate, allowed)| {
            let used =
                code.contains(&format!("{krate}::")) || code.contains(&format!("use {krate}"));
            used && !allowed.iter().any(|a| rel.starts_with(a))
        })
        .map(|(krate, _)| format!("{rel}: uses {krate}"))
        .collect()
}

fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| !p.ends_with("tests.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (rel, text)
        })
        .collect()
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let found: Vec<String> = sources()
        .iter()
        .flat_map(|(rel, text)| layer_violations(rel, text))
        .collect();
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn every_top_level_module_is_a_layer() {
    let others: Vec<String> = sources()
        .into_iter()
        .map(|(rel, _)| top_module(&rel).to_string())
        .filter(|m| !LAYERS.contains(&m.as_str()) && m != "lib" && m != "main")
        .collect();
    assert!(
        others.is_empty(),
        "modules outside the layers (add them to one, and to ARCHITECTURE.md): {others:?}"
    );
}

#[test]
fn framework_crates_stay_in_their_adapters() {
    let found: Vec<String> = sources()
        .iter()
        .flat_map(|(rel, text)| framework_violations(rel, text))
        .collect();
    assert!(
        found.is_empty(),
        "framework use outside its adapter:\n{}",
        found.join("\n")
    );
}

/// The checker itself: a lower layer naming a higher one is caught, in a plain path and in a
/// `use crate::{…}` group; the other direction, comments and tests are not violations.
#[test]
fn the_checker_catches_an_upward_import() {
    let upward = "use crate::base::signal::Signal;\nuse crate::{config, daemon::queue::Queue};\n";
    assert_eq!(
        layer_violations("engine/run.rs", upward),
        vec!["engine/run.rs: engine -> daemon".to_string()]
    );
    assert_eq!(
        layer_violations(
            "base/exec.rs",
            "fn f() { crate::cli::output::stderr(\"x\") }"
        ),
        vec!["base/exec.rs: base -> cli".to_string()]
    );
    assert!(layer_violations("cli/runs.rs", upward).is_empty());
    let prose =
        "/// see [`crate::daemon::queue`]\n#[cfg(test)]\nmod tests { use crate::cli::Cli; }";
    assert!(layer_violations("engine/run.rs", prose).is_empty());
    assert_eq!(
        framework_violations("engine/agent/mod.rs", "use clap::Parser;"),
        vec!["engine/agent/mod.rs: uses clap".to_string()]
    );
    assert!(framework_violations("cli/runs.rs", "use clap::Args;").is_empty());
}
