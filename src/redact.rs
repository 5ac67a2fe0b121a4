//! Secret redaction: token shapes, private keys and known secret values never reach a prompt or a
//! record. (Interface; the context helper implements it.)

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Redactor {
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s, "[REDACTED]");
        }
        out
    }
}
