//! Secret values must never reach a log: every line passes through here.

/// Replaces each secret value with `[REDACTED:NAME]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        // Longest first so a secret containing another is replaced whole;
        // values shorter than 4 bytes are skipped, as replacing them would
        // shred ordinary output without protecting anything.
        let mut secrets: Vec<(String, String)> = secrets.into_iter().filter(|(_, v)| v.len() >= 4).map(|(k, v)| (k.clone(), v.clone())).collect();
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Redactor { secrets }
    }

    /// The values redacted, as bytes (to keep cuts of long output lines
    /// outside them).
    pub fn values(&self) -> Vec<&[u8]> {
        self.secrets.iter().map(|(_, v)| v.as_bytes()).collect()
    }

    pub fn apply(&self, line: &str) -> String {
        let mut out = line.to_string();
        for (name, value) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn secrets_are_replaced() {
        let k = "API_KEY".to_string();
        let v = "sk-12345".to_string();
        let r = Redactor::new([(&k, &v)]);
        assert_eq!(r.apply("token=sk-12345 ok"), "token=[REDACTED:API_KEY] ok");
    }
}
