//! A crash's class: from the exit code and the engine's OOM flag first (they are facts), then
//! from patterns in the captured logs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Exit 137 and the engine says the kernel OOM-killed it (or the logs say out of memory).
    Oom,
    /// Exit 137 (SIGKILL) without an OOM kill.
    Killed,
    /// Exit 139 (SIGSEGV).
    Segfault,
    /// Exit 143 (SIGTERM).
    Terminated,
    /// A Go panic, a Python traceback or a fatal error in the logs.
    Panic,
    Traceback,
    Fatal,
    /// Another non-zero exit.
    Error,
    /// Exit 0.
    Exited,
    /// No exit code was reported.
    Unknown,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Oom => "oom",
            Class::Killed => "killed",
            Class::Segfault => "segfault",
            Class::Terminated => "terminated",
            Class::Panic => "panic",
            Class::Traceback => "traceback",
            Class::Fatal => "fatal",
            Class::Error => "error",
            Class::Exited => "exited",
            Class::Unknown => "unknown",
        }
    }
}

/// Log patterns and the class each suggests, in order of precedence.
const PATTERNS: [(&str, Class); 5] = [
    ("Out of memory", Class::Oom),
    ("OutOfMemoryError", Class::Oom),
    ("panic:", Class::Panic),
    ("Traceback (most recent call last)", Class::Traceback),
    ("FATAL", Class::Fatal),
];

/// The class of a death, and the log patterns found.
pub fn classify(exit_code: Option<i64>, oom_killed: bool, logs: &str) -> (Class, Vec<String>) {
    let found: Vec<(&str, Class)> = PATTERNS
        .iter()
        .filter(|(p, _)| logs.contains(p))
        .copied()
        .collect();
    let names = found.iter().map(|(p, _)| p.to_string()).collect();
    let class = match exit_code {
        Some(137) if oom_killed => Class::Oom,
        Some(137) => Class::Killed,
        Some(139) => Class::Segfault,
        Some(143) => Class::Terminated,
        _ if oom_killed => Class::Oom,
        Some(code) => match found.first() {
            Some((_, class)) => *class,
            None if code == 0 => Class::Exited,
            None => Class::Error,
        },
        None => found.first().map_or(Class::Unknown, |(_, c)| *c),
    };
    (class, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_first_then_log_patterns() {
        assert_eq!(classify(Some(137), true, "").0, Class::Oom);
        assert_eq!(classify(Some(137), false, "panic: x").0, Class::Killed);
        assert_eq!(classify(Some(139), false, "").0, Class::Segfault);
        assert_eq!(classify(Some(143), false, "").0, Class::Terminated);
        assert_eq!(classify(Some(2), false, "panic: nil map").0, Class::Panic);
        assert_eq!(
            classify(Some(1), false, "Traceback (most recent call last):\n  File").0,
            Class::Traceback
        );
        assert_eq!(classify(Some(1), false, "FATAL: db down").0, Class::Fatal);
        assert_eq!(classify(Some(1), false, "bye").0, Class::Error);
        assert_eq!(classify(Some(0), false, "").0, Class::Exited);
        assert_eq!(classify(None, false, "").0, Class::Unknown);
        let (_, found) = classify(Some(1), false, "Out of memory\nFATAL");
        assert_eq!(found, vec!["Out of memory", "FATAL"]);
    }
}
