//! C2SP tlog-policy (<https://c2sp.org/tlog-policy>): which log keys and
//! which witnesses a verifier trusts, and how many witnesses must cosign.
//!
//! ```text
//! # comments are whole lines
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]          vkey of type 0x04 (cosignature/v1)
//! group <name> <all|any|k> <member>...   members defined on earlier lines
//! quorum <name|none>                     exactly one
//! ```
//!
//! Items are separated by spaces or tabs. Only tab and newline are allowed
//! as control characters. Names share one namespace; `none` is reserved. A
//! name may be a group member at most once in the whole policy, so groups
//! form a tree and evaluation cannot loop.

use std::collections::HashMap;

use cairn_core::note::{KeyType, NoteVerifier, VerifiedSignature};

/// A policy file could not be parsed. Carries the 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    /// File name as given to [`TrustPolicy::parse`].
    pub file: String,
    /// 1-based line; 0 for whole-file problems.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A log the policy trusts.
#[derive(Clone, Debug)]
pub struct PolicyLog {
    /// Its checkpoint key; the key name is the origin.
    pub verifier: NoteVerifier,
    /// Optional URL.
    pub url: Option<String>,
}

/// A witness the policy knows.
#[derive(Clone, Debug)]
pub struct PolicyWitness {
    /// Name within the policy.
    pub name: String,
    /// Its cosignature key (type 0x04).
    pub verifier: NoteVerifier,
    /// Optional URL.
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Witness(usize),
    Group(usize),
}

#[derive(Clone, Debug)]
struct Group {
    threshold: usize,
    members: Vec<Node>,
}

/// A parsed, validated tlog-policy.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    /// Trusted logs.
    pub logs: Vec<PolicyLog>,
    /// Known witnesses, in definition order.
    pub witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None` is the policy `quorum none`.
    quorum: Option<Node>,
}

impl TrustPolicy {
    /// A policy that trusts one log key and needs no cosignatures.
    pub fn log_only(log: NoteVerifier) -> Self {
        TrustPolicy {
            logs: vec![PolicyLog {
                verifier: log,
                url: None,
            }],
            ..Default::default()
        }
    }

    /// A policy that needs `k` of `witnesses` (no groups).
    pub fn k_of_n(logs: Vec<NoteVerifier>, witnesses: Vec<NoteVerifier>, k: usize) -> Self {
        let n = witnesses.len();
        let witnesses: Vec<PolicyWitness> = witnesses
            .into_iter()
            .enumerate()
            .map(|(i, v)| PolicyWitness {
                name: format!("w{i}"),
                verifier: v,
                url: None,
            })
            .collect();
        let (groups, quorum) = if k == 0 || n == 0 {
            (vec![], None)
        } else {
            (
                vec![Group {
                    threshold: k.min(n),
                    members: (0..n).map(Node::Witness).collect(),
                }],
                Some(Node::Group(0)),
            )
        };
        TrustPolicy {
            logs: logs
                .into_iter()
                .map(|verifier| PolicyLog {
                    verifier,
                    url: None,
                })
                .collect(),
            witnesses,
            groups,
            quorum,
        }
    }

    /// Parses policy text. `file` only labels errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let err = |line: usize, message: String| PolicyError {
            file: file.to_owned(),
            line,
            message,
        };
        if let Some(pos) = text
            .bytes()
            .position(|b| b != b'\t' && b != b'\n' && (b < 0x20 || b == 0x7f))
        {
            let line = text[..pos].matches('\n').count() + 1;
            return Err(err(
                line,
                format!("control character 0x{:02x}", text.as_bytes()[pos]),
            ));
        }
        let mut p = TrustPolicy::default();
        let mut names: HashMap<String, Node> = HashMap::new();
        let mut used_as_member: HashMap<String, usize> = HashMap::new();
        let mut quorum_line = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let f: Vec<&str> = raw.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
            let Some(&kw) = f.first() else { continue };
            if kw.starts_with('#') {
                continue;
            }
            match kw {
                "log" => {
                    if !(2..=3).contains(&f.len()) {
                        return Err(err(n, "expected `log <vkey> [<url>]`".into()));
                    }
                    let v =
                        NoteVerifier::parse(f[1]).map_err(|e| err(n, format!("log key: {e}")))?;
                    if v.key_type() != KeyType::Ed25519 {
                        return Err(err(
                            n,
                            "a log key must be an Ed25519 note key (type 0x01)".into(),
                        ));
                    }
                    if p.logs.iter().any(|l| l.verifier == v) {
                        return Err(err(n, "duplicate log key".into()));
                    }
                    p.logs.push(PolicyLog {
                        verifier: v,
                        url: f.get(2).map(|s| (*s).to_owned()),
                    });
                }
                "witness" => {
                    if !(3..=4).contains(&f.len()) {
                        return Err(err(n, "expected `witness <name> <vkey> [<url>]`".into()));
                    }
                    let name = f[1];
                    check_new_name(name, &names).map_err(|m| err(n, m))?;
                    let v = NoteVerifier::parse(f[2])
                        .map_err(|e| err(n, format!("witness key: {e}")))?;
                    if v.key_type() != KeyType::Cosignature {
                        return Err(err(
                            n,
                            "a witness key must be a cosignature/v1 key (type 0x04)".into(),
                        ));
                    }
                    if p.witnesses.iter().any(|w| w.verifier == v) {
                        return Err(err(n, "duplicate witness key".into()));
                    }
                    names.insert(name.to_owned(), Node::Witness(p.witnesses.len()));
                    p.witnesses.push(PolicyWitness {
                        name: name.to_owned(),
                        verifier: v,
                        url: f.get(3).map(|s| (*s).to_owned()),
                    });
                }
                "group" => {
                    if f.len() < 4 {
                        return Err(err(
                            n,
                            "expected `group <name> <all|any|k> <member>...`".into(),
                        ));
                    }
                    let name = f[1];
                    check_new_name(name, &names).map_err(|m| err(n, m))?;
                    let members = &f[3..];
                    let k = match f[2] {
                        "any" => 1,
                        "all" => members.len(),
                        t => cairn_core::encoding::parse_decimal(t)
                            .and_then(|k| usize::try_from(k).ok())
                            .ok_or_else(|| {
                                err(
                                    n,
                                    format!("threshold {t:?} is not `all`, `any` or a number"),
                                )
                            })?,
                    };
                    if k < 1 || k > members.len() {
                        return Err(err(
                            n,
                            format!("threshold {k} is outside 1..={}", members.len()),
                        ));
                    }
                    let mut nodes = Vec::with_capacity(members.len());
                    for m in members {
                        let node = *names.get(*m).ok_or_else(|| {
                            err(n, format!("{m:?} is not defined on an earlier line"))
                        })?;
                        if let Some(prev) = used_as_member.insert((*m).to_owned(), n) {
                            return Err(err(
                                n,
                                format!("{m:?} is already a group member (line {prev})"),
                            ));
                        }
                        nodes.push(node);
                    }
                    names.insert(name.to_owned(), Node::Group(p.groups.len()));
                    p.groups.push(Group {
                        threshold: k,
                        members: nodes,
                    });
                }
                "quorum" => {
                    if f.len() != 2 {
                        return Err(err(n, "expected `quorum <name>`".into()));
                    }
                    if let Some(prev) = quorum_line {
                        return Err(err(
                            n,
                            format!("a second quorum line (first on line {prev})"),
                        ));
                    }
                    quorum_line = Some(n);
                    p.quorum = if f[1] == "none" {
                        None
                    } else {
                        Some(*names.get(f[1]).ok_or_else(|| {
                            err(n, format!("{:?} is not defined on an earlier line", f[1]))
                        })?)
                    };
                }
                other => return Err(err(n, format!("unknown keyword {other:?}"))),
            }
        }
        if quorum_line.is_none() {
            return Err(err(0, "the policy has no quorum line".into()));
        }
        Ok(p)
    }

    /// Witness keys, for note verification.
    pub fn witness_keys(&self) -> Vec<NoteVerifier> {
        self.witnesses.iter().map(|w| w.verifier.clone()).collect()
    }

    /// True if `cosigners` (verified cosignatures) satisfy the quorum.
    pub fn satisfied(&self, cosigners: &[VerifiedSignature]) -> bool {
        let signed = |w: &PolicyWitness| {
            cosigners.iter().any(|c| {
                c.key_type == KeyType::Cosignature
                    && c.name == w.verifier.name()
                    && c.key_id == w.verifier.key_id()
            })
        };
        // Groups only reference earlier definitions, so evaluating in
        // definition order sees every member's value first.
        let mut group_ok = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let count = g
                .members
                .iter()
                .filter(|m| match **m {
                    Node::Witness(i) => signed(&self.witnesses[i]),
                    Node::Group(j) => group_ok.get(j).copied().unwrap_or(false),
                })
                .count();
            group_ok.push(count >= g.threshold);
        }
        match self.quorum {
            None => true,
            Some(Node::Witness(i)) => signed(&self.witnesses[i]),
            Some(Node::Group(j)) => group_ok.get(j).copied().unwrap_or(false),
        }
    }

    /// True if the policy needs no cosignature.
    pub fn needs_no_witness(&self) -> bool {
        self.quorum.is_none()
    }
}

fn check_new_name(name: &str, names: &HashMap<String, Node>) -> Result<(), String> {
    if name == "none" {
        return Err("the name `none` is reserved".into());
    }
    if names.contains_key(name) {
        return Err(format!("{name:?} is already defined"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::Cosigner;

    fn w(i: u8) -> Cosigner {
        Cosigner::from_seed(&format!("w{i}.example"), &[i; 32]).unwrap()
    }

    fn sig(c: &Cosigner) -> VerifiedSignature {
        VerifiedSignature {
            name: c.name().to_owned(),
            key_id: c.key_id(),
            key_type: KeyType::Cosignature,
            timestamp: Some(1),
        }
    }

    #[test]
    fn sigsum_style_nested_groups() {
        let ws: Vec<Cosigner> = (1..=6).map(w).collect();
        let text = format!(
            "# two levels\nwitness X1 {}\nwitness X2 {}\nwitness X3 {}\ngroup X 2 X1 X2 X3\n\n\
             witness Y1 {}\nwitness Y2 {}\nwitness Y3 {} https://y3.example\ngroup Y any Y1 Y2 Y3\n\
             group XY all X Y\nquorum XY\n",
            ws[0].verifier(),
            ws[1].verifier(),
            ws[2].verifier(),
            ws[3].verifier(),
            ws[4].verifier(),
            ws[5].verifier()
        );
        let p = TrustPolicy::parse("p", &text).unwrap();
        assert_eq!(p.witnesses.len(), 6);
        assert_eq!(p.witnesses[5].url.as_deref(), Some("https://y3.example"));
        assert!(!p.satisfied(&[]));
        assert!(!p.satisfied(&[sig(&ws[0]), sig(&ws[1])]));
        assert!(!p.satisfied(&[sig(&ws[0]), sig(&ws[3])]));
        assert!(p.satisfied(&[sig(&ws[0]), sig(&ws[1]), sig(&ws[4])]));
        assert!(p.satisfied(&[sig(&ws[2]), sig(&ws[1]), sig(&ws[5])]));
    }

    #[test]
    fn errors_name_the_line() {
        let a = w(1).verifier().to_string();
        let cases = [
            ("quorum none\nquorum none\n", 2, "second quorum"),
            ("witness a nokey\nquorum none\n", 1, "witness key"),
            (
                &*format!("witness a {a}\nwitness a {a}\nquorum a\n"),
                2,
                "already defined",
            ),
            (
                &*format!("witness a {a}\ngroup g 2 a\nquorum g\n"),
                2,
                "outside",
            ),
            (
                &*format!("witness a {a}\ngroup g 1 a\ngroup h 1 a\nquorum h\n"),
                3,
                "already a group member",
            ),
            ("group g any b\nquorum g\n", 1, "not defined"),
            ("quorum x\n", 1, "not defined"),
            ("frobnicate\nquorum none\n", 1, "unknown keyword"),
            ("log\nquorum none\n", 1, "expected"),
            ("\n", 0, "no quorum"),
            ("quorum none\u{7}\n", 1, "control"),
            (&*format!("witness none {a}\nquorum none\n"), 1, "reserved"),
            (&*format!("log {a}\nquorum none\n"), 1, "Ed25519"),
        ];
        for (text, line, needle) in cases {
            let e = TrustPolicy::parse("f.policy", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with("f.policy:"), "{e}");
        }
    }

    #[test]
    fn quorum_none_and_k_of_n() {
        let p = TrustPolicy::parse("p", "# nothing needed\nquorum none\n").unwrap();
        assert!(p.satisfied(&[]) && p.needs_no_witness());
        let ws: Vec<Cosigner> = (1..=3).map(w).collect();
        let p = TrustPolicy::k_of_n(vec![], ws.iter().map(Cosigner::verifier).collect(), 2);
        assert!(!p.satisfied(&[sig(&ws[0])]));
        assert!(p.satisfied(&[sig(&ws[0]), sig(&ws[2])]));
        // A repeated cosignature by one witness counts once.
        assert!(!p.satisfied(&[sig(&ws[0]), sig(&ws[0])]));
    }
}
