//! Helpers shared by the masking tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

/// Success counts for one category.
#[derive(Default, Debug)]
pub struct Score {
    pub total: u64,
    pub failed: u64,
}

impl Score {
    /// Percentage that did not fail.
    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * (self.total - self.failed) as f64 / self.total as f64
        }
    }
}

/// Every string (and number, as text) in a JSON value, keys included.
pub fn strings_of(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                walk(x, out);
            }
        }
        _ => {}
    }
}

/// A masker for `policy` (TOML), with no token keys, for the log
/// `example.com/log`.
#[allow(clippy::unwrap_used)]
pub fn masker(policy: &str) -> cairn_masking::Masker {
    cairn_masking::Masker::new(
        cairn_masking::Policy::from_toml("p.toml", policy).unwrap(),
        &cairn_masking::TokenKeys::new(),
        "example.com/log",
    )
    .unwrap()
}
