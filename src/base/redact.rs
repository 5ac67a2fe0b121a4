//! Secret redaction: token shapes, private keys and known secret values never reach a prompt or a
//! record.
//!
//! Two layers: literal values steward knows are secret (config, credential files) are replaced
//! wherever they appear, whatever their shape; then well-known token shapes and `key=value`
//! secrets are replaced by pattern, so that a secret steward was never told about still does not
//! leak. Every replacement reads `[REDACTED:kind]` so a reader (human or model) knows something
//! was there and what it looked like, without the value.

use std::sync::{LazyLock, OnceLock};

use regex::{Captures, Regex};

/// The marker every replacement starts with; patterns skip text that already carries it, so that
/// redacting twice is the same as redacting once.
const MARK: &str = "[REDACTED:";

/// One token shape. When the regex has a group named `secret` (or `dq`/`sq`/`bare` for quoted
/// or bare values) only that group is replaced and the surrounding key stays readable
/// (`password=[REDACTED:secret]`); otherwise the whole match is replaced.
///
/// A rule's regex is compiled the first time a text could match it: `needles` are lowercase
/// literals one of which every match contains. A short-lived process (the hook, once per tool
/// call) then compiles only the rules its text needs, not all sixteen.
struct Rule {
    kind: &'static str,
    needles: &'static [&'static str],
    pattern: String,
    re: OnceLock<Option<Regex>>,
}

impl Rule {
    /// Whether `lower` (the text, ASCII-lowercased) contains one of the rule's literals.
    fn may_match(&self, lower: &str) -> bool {
        self.needles.iter().any(|n| lower.contains(n))
    }

    /// The compiled regex; a pattern that does not compile is logged once and skipped.
    fn re(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| match Regex::new(&self.pattern) {
                Ok(re) => Some(re),
                Err(e) => {
                    tracing::error!(kind = self.kind, error = %e, "redaction pattern does not compile; skipped");
                    None
                }
            })
            .as_ref()
    }

    /// The regex, when `lower` could match it.
    fn for_text(&self, lower: &str) -> Option<&Regex> {
        if self.may_match(lower) {
            self.re()
        } else {
            None
        }
    }
}

/// Group names, in order of preference, that hold the secret part of a match.
const SECRET_GROUPS: [&str; 4] = ["secret", "dq", "sq", "bare"];

/// Key names whose value is a secret, in `key=value`, `key: value` and JSON object form. The key
/// must end with one of these words, so `max_tokens` or `author` do not match but `api_token`,
/// `DB_PASSWORD` and `client-secret` do.
const SECRET_KEY: &str = r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key|secret[_-]?id|credentials?|auth[_-]?token|session[_-]?key)";

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // The patterns are constants; a typo is a programming error caught by the unit tests, and a
    // rule that failed to compile is skipped rather than taking the whole redactor down.
    let specs: Vec<(&'static str, &'static [&'static str], String)> = vec![
        // PEM private keys, including a block cut off by an output cap (no END line): everything
        // from BEGIN to the end of the text goes.
        (
            "private_key",
            &["-----begin"],
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*)".into(),
        ),
        ("anthropic", &["sk-ant-"], r"\bsk-ant-[A-Za-z0-9_\-]{8,}".into()),
        ("api_key", &["sk-"], r"\bsk-[A-Za-z0-9_\-]{16,}".into()),
        ("github", &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}".into()),
        ("github", &["github_pat_"], r"\bgithub_pat_[A-Za-z0-9_]{20,}".into()),
        ("slack", &["xox"], r"\bxox[bpars]-[A-Za-z0-9\-]{10,}".into()),
        ("aws", &["akia", "asia"], r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b".into()),
        (
            "jwt",
            &["eyj"],
            r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*".into(),
        ),
        ("vault", &["hvs.", "hvb.", "hvr."], r"\bhv[sbr]\.[A-Za-z0-9_\-]{20,}".into()),
        // HashiCorp tokens are plain UUIDs: recognisable only by what names them.
        (
            "nomad",
            &["nomad-token", "nomad_token"],
            r#"(?i)\b(?:X-Nomad-Token|NOMAD_TOKEN)["']?[ \t]*[:=][ \t]*["']?(?P<secret>[A-Za-z0-9_\-\.]{8,})"#.into(),
        ),
        (
            "consul",
            &["consul-token", "consul_http_token", "consul_token"],
            r#"(?i)\b(?:X-Consul-Token|CONSUL_HTTP_TOKEN|CONSUL_TOKEN)["']?[ \t]*[:=][ \t]*["']?(?P<secret>[A-Za-z0-9_\-\.]{8,})"#.into(),
        ),
        (
            "vault",
            &["vault-token", "vault_token"],
            r#"(?i)\b(?:X-Vault-Token|VAULT_TOKEN)["']?[ \t]*[:=][ \t]*["']?(?P<secret>[A-Za-z0-9_\-\.]{8,})"#.into(),
        ),
        (
            "bearer",
            &["bearer"],
            r"(?i)\bBearer[ \t]+(?P<secret>[A-Za-z0-9_\-\.=+/~]{8,})".into(),
        ),
        (
            "basic_auth",
            &["authorization"],
            r"(?i)\bAuthorization[ \t]*:[ \t]*Basic[ \t]+(?P<secret>[A-Za-z0-9+/=]{8,})".into(),
        ),
        // Credentials inside URLs: scheme://user:password@host.
        (
            "url_password",
            &["://"],
            r"(?i)\b[a-z][a-z0-9+\-.]*://[^/\s:@]+:(?P<secret>[^/\s@]+)@".into(),
        ),
        // key=value, key: value, "key": "value", key => value. Horizontal space only, so that an
        // empty value never swallows the next line.
        (
            "secret",
            SECRET_KEY_NEEDLES,
            format!(
                r#"(?i)\b[A-Za-z0-9_\-\.]*{SECRET_KEY}["']?[ \t]*(?::|=>|=)[ \t]*(?:"(?P<dq>[^"\n]*)"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s"',;&}}\]]+))"#
            ),
        ),
    ];
    specs
        .into_iter()
        .map(|(kind, needles, pattern)| Rule {
            kind,
            needles,
            pattern,
            re: OnceLock::new(),
        })
        .collect()
});

/// Literals every [`SECRET_KEY`] match contains (lowercase): a key without one is no secret's
/// name, and the regex is not compiled for it.
const SECRET_KEY_NEEDLES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
];

/// A JSON object key that names a secret: its string or number value is replaced whole.
static SECRET_KEY_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"(?i){SECRET_KEY}$")).ok());

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Known secret values, longest first so that a secret containing another is replaced whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// `secrets` are literal values (API keys, passwords from config). Empty and very short
    /// values are dropped: replacing every `a` in the output would destroy it and hide nothing.
    pub fn new(secrets: Vec<String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| s.chars().count() >= 4)
            .collect();
        // A secret may reach the output JSON-escaped (a password containing `"` or `\`).
        let escaped: Vec<String> = secrets
            .iter()
            .filter_map(|s| {
                let e = serde_json::to_string(s).ok()?;
                let inner = e.get(1..e.len().saturating_sub(1))?.to_string();
                (inner != *s).then_some(inner)
            })
            .collect();
        secrets.extend(escaped);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    /// The text with every known secret and every recognised token shape replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[REDACTED:known]");
            }
        }
        // Replacements only take text away (or add a marker no rule matches), so the literals
        // found in the text as it came decide which rules can match at all.
        let lower = out.to_ascii_lowercase();
        for rule in RULES.iter() {
            let Some(re) = rule.for_text(&lower) else {
                continue;
            };
            if !re.is_match(&out) {
                continue;
            }
            out = re
                .replace_all(&out, |caps: &Captures<'_>| replace_one(rule.kind, caps))
                .into_owned();
        }
        out
    }

    /// Redacts every string in a JSON value in place, and replaces whole values under keys that
    /// name a secret (`{"password": "x"}` has no `password=` shape once parsed).
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                let r = self.redact(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    let lower = k.to_ascii_lowercase();
                    let secret_key = SECRET_KEY_NEEDLES.iter().any(|n| lower.contains(n))
                        && SECRET_KEY_NAME.as_ref().is_some_and(|re| re.is_match(&k));
                    if secret_key && matches!(v, Value::String(_) | Value::Number(_)) {
                        let already = v.as_str().is_some_and(|s| s.starts_with(MARK));
                        if !already && !v.as_str().is_some_and(str::is_empty) {
                            v = Value::String("[REDACTED:secret]".to_string());
                        }
                    } else {
                        self.redact_json(&mut v);
                    }
                    map.insert(self.redact(&k), v);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The kind of the first token shape or private key `text` carries (`anthropic`,
/// `private_key`, `secret`, ...), or `None`. The same rules as [`Redactor::redact`]: a match
/// whose secret part is empty or already redacted does not count.
pub fn find_secret(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    RULES.iter().find_map(|rule| {
        rule.for_text(&lower)?
            .captures_iter(text)
            .any(|caps| {
                let part = SECRET_GROUPS
                    .iter()
                    .find_map(|g| caps.name(g))
                    .or_else(|| caps.get(0));
                part.is_some_and(|m| !m.as_str().is_empty() && !m.as_str().starts_with(MARK))
            })
            .then_some(rule.kind)
    })
}

/// The replacement for one match: the secret group if the rule has one, else the whole match.
fn replace_one(kind: &str, caps: &Captures<'_>) -> String {
    let Some(whole) = caps.get(0) else {
        return String::new();
    };
    let group = SECRET_GROUPS.iter().find_map(|g| caps.name(g));
    match group {
        Some(m) => {
            let value = m.as_str();
            // Already redacted (by a known value or an earlier shape), or nothing to hide.
            if value.is_empty() || value.starts_with(MARK) {
                return whole.as_str().to_string();
            }
            let start = m.start() - whole.start();
            let end = m.end() - whole.start();
            let w = whole.as_str();
            format!("{}[REDACTED:{kind}]{}", &w[..start], &w[end..])
        }
        None => format!("[REDACTED:{kind}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::default().redact(text)
    }

    #[test]
    fn all_rules_compile() {
        assert_eq!(RULES.len(), 16);
        for rule in RULES.iter() {
            assert!(rule.re().is_some(), "{} does not compile", rule.kind);
            // Every needle is lowercase: the text is lowercased before they are looked for.
            assert!(
                rule.needles.iter().all(|n| *n == n.to_ascii_lowercase()),
                "{}",
                rule.kind
            );
        }
        assert!(SECRET_KEY_NAME.is_some());
    }

    #[test]
    fn find_secret_names_the_kind() {
        for (text, kind) in [
            ("key sk-ant-api03-AbCdEf0123456789_-xyz", Some("anthropic")),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", Some("private_key")),
            ("password = \"hunter22\"", Some("secret")),
            ("password = \"\"", None),
            ("password=[REDACTED:secret]", None),
            ("services.nginx.enable = true;", None),
        ] {
            assert_eq!(find_secret(text), kind, "{text}");
        }
    }

    #[test]
    fn anthropic_key() {
        let out = r("key is sk-ant-api03-AbCdEf0123456789_-xyz ok");
        assert_eq!(out, "key is [REDACTED:anthropic] ok");
    }

    #[test]
    fn generic_sk_key_but_not_words_containing_sk() {
        assert_eq!(
            r("OPENAI sk-proj1234567890abcdefXYZ end"),
            "OPENAI [REDACTED:api_key] end"
        );
        let plain = "task-runner-1234567890abcdef and disk-usage-report-abcdefghijkl";
        assert_eq!(r(plain), plain);
    }

    #[test]
    fn github_tokens() {
        let out = r(
            "ghp_0123456789abcdefghijABCDEFGHIJ012345 gho_0123456789abcdefghij0123 github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        );
        assert_eq!(out, "[REDACTED:github] [REDACTED:github] [REDACTED:github]");
    }

    #[test]
    fn slack_tokens() {
        for t in [
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
            "xoxp-1234-5678-abcdefghij",
            "xoxa-2-abcdefghijkl",
        ] {
            assert_eq!(r(t), "[REDACTED:slack]", "{t}");
        }
    }

    #[test]
    fn aws_access_key() {
        assert_eq!(r("id=AKIAIOSFODNN7EXAMPLE,"), "id=[REDACTED:aws],");
        assert_eq!(r("ASIAY34FZKBOKMUTVV7A"), "[REDACTED:aws]");
    }

    #[test]
    fn aws_secret_key_by_name() {
        let out = r("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(out, "aws_secret_access_key = [REDACTED:secret]");
    }

    #[test]
    fn jwt() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(r(&format!("token {jwt} end")), "token [REDACTED:jwt] end");
    }

    #[test]
    fn bearer_keeps_the_scheme() {
        assert_eq!(
            r("Authorization: Bearer abc.def-ghi_jkl012"),
            "Authorization: Bearer [REDACTED:bearer]"
        );
        assert_eq!(
            r("Authorization: Basic dXNlcjpwYXNzd29yZA=="),
            "Authorization: Basic [REDACTED:basic_auth]"
        );
    }

    #[test]
    fn hashicorp_tokens() {
        let uuid = "0b5d4c2a-9f7e-4a1b-8c3d-2e1f0a9b8c7d";
        assert_eq!(
            r(&format!("X-Nomad-Token: {uuid}")),
            "X-Nomad-Token: [REDACTED:nomad]"
        );
        assert_eq!(
            r(&format!("export CONSUL_HTTP_TOKEN={uuid}")),
            "export CONSUL_HTTP_TOKEN=[REDACTED:consul]"
        );
        assert_eq!(
            r(&format!("VAULT_TOKEN=\"{uuid}\"")),
            "VAULT_TOKEN=\"[REDACTED:vault]\""
        );
        assert_eq!(
            r("using hvs.CAESIJ3kjh2k3jh4k2j3h4kj23h4k2j3h4"),
            "using [REDACTED:vault]"
        );
        assert!(!r(&format!("NOMAD_TOKEN={uuid}")).contains(uuid));
    }

    #[test]
    fn key_value_secrets() {
        assert_eq!(r("password=hunter2"), "password=[REDACTED:secret]");
        assert_eq!(r("DB_PASSWORD: s3cr3t!"), "DB_PASSWORD: [REDACTED:secret]");
        assert_eq!(
            r(r#"{"api_key": "abc def", "user": "bob"}"#),
            r#"{"api_key": "[REDACTED:secret]", "user": "bob"}"#
        );
        assert_eq!(
            r("client-secret => 'x y z'"),
            "client-secret => '[REDACTED:secret]'"
        );
        assert_eq!(r("token: abc123"), "token: [REDACTED:secret]");
    }

    #[test]
    fn key_value_does_not_eat_next_line_or_innocent_keys() {
        assert_eq!(r("password:\nnext line"), "password:\nnext line");
        let plain = "max_tokens: 100\nauthor: bob\ntokens_used=5";
        assert_eq!(r(plain), plain);
    }

    #[test]
    fn url_credentials() {
        assert_eq!(
            r("postgres://app:Pa55word@db:5432/app"),
            "postgres://app:[REDACTED:url_password]@db:5432/app"
        );
    }

    #[test]
    fn pem_block_whole_and_cut_off() {
        let pem = "before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAA\n-----END OPENSSH PRIVATE KEY-----\nafter";
        assert_eq!(r(pem), "before\n[REDACTED:private_key]\nafter");
        let cut = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7";
        assert_eq!(r(cut), "x\n[REDACTED:private_key]");
        let public = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(r(public), public);
    }

    #[test]
    fn known_values_of_any_shape() {
        let red = Redactor::new(vec!["correct horse battery".into(), "ab".into(), "".into()]);
        assert_eq!(
            red.redact("pw is correct horse battery; ab stays"),
            "pw is [REDACTED:known]; ab stays"
        );
    }

    #[test]
    fn known_value_json_escaped() {
        let red = Redactor::new(vec!["pa\"ss\\word".into()]);
        let json = serde_json::json!({ "v": "pa\"ss\\word" }).to_string();
        let out = red.redact(&json);
        assert!(!out.contains("ss\\\\word"), "{out}");
        assert!(out.contains("[REDACTED:known]"), "{out}");
    }

    #[test]
    fn longest_known_value_wins() {
        let red = Redactor::new(vec!["abcd".into(), "abcdefgh".into()]);
        assert_eq!(
            red.redact("abcdefgh abcd"),
            "[REDACTED:known] [REDACTED:known]"
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        let text =
            "token: ghp_0123456789abcdefghijABCDEFGHIJ012345 password=\"x\" Bearer abcdefghijk";
        let once = r(text);
        assert_eq!(r(&once), once);
        assert!(!once.contains("ghp_"), "{once}");
    }

    #[test]
    fn json_walk_redacts_strings_keys_and_named_values() {
        let red = Redactor::new(vec!["planted-secret-value".into()]);
        let mut v = serde_json::json!({
            "a": ["x sk-ant-api03-abcdefghijklmnop y", {"deep": "planted-secret-value"}],
            "password": "hunter2",
            "db_token": 12345,
            "max_tokens": 100,
            "planted-secret-value": 1,
            "empty_secret": "",
        });
        red.redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("sk-ant"), "{s}");
        assert!(!s.contains("planted-secret-value"), "{s}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("12345"), "{s}");
        assert_eq!(v["max_tokens"], 100);
        assert_eq!(v["password"], "[REDACTED:secret]");
        assert_eq!(v["empty_secret"], "");
    }

    #[test]
    fn planted_secrets_never_survive_mixed_text() {
        let secrets = [
            "sk-ant-api03-PLANTEDplantedPLANTED",
            "ghp_PLANTEDplantedPLANTEDplanted1234",
            "AKIAPLANTEDPLANTED12",
            "xoxb-PLANTED-planted-123",
            "hvs.PLANTEDplantedPLANTEDplanted",
        ];
        let text = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| format!("line {i}: value {s} here"))
            .collect::<Vec<_>>()
            .join("\n");
        let out = r(&text);
        for s in secrets {
            assert!(!out.contains(s), "{s} survived in {out}");
        }
        assert!(!out.to_lowercase().contains("planted"), "{out}");
    }
}
