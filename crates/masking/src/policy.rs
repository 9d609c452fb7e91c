//! Masking policies: TOML in, a validated [`Policy`] out (parse once,
//! use many times). Errors name the file, line and key.
//!
//! ```toml
//! version = 1
//! mode = "detect"          # or "allowlist" (fail-closed)
//! unlisted = "redact"      # allowlist mode: what happens to unlisted fields ("redact" | "drop")
//! max_depth = 128          # deepest JSON nesting accepted
//! subject = "/actor/id"    # `encrypt`: whose key (JSON pointer); unset: the value itself
//!
//! [detectors]              # per-detector actions (built-in or custom)
//! email = "partial"
//! credit_card = { action = "partial", keep_last = 4 }
//! ipv4 = "generalize"
//! ssn = "encrypt"          # sealed under the data subject's own key
//!
//! [[fields]]               # JSON-path globs: `*` one key, `**` any depth
//! path = "**.password"
//! action = "redact"
//!
//! [[custom]]               # extra detectors
//! name = "employee_id"
//! pattern = "EMP-[0-9]{6}"
//! validator = "luhn"       # optional: "luhn" | "mod97" | a national identifier's check (IdCheck)
//! action = "redact"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::detect::{DETECTOR_SET_VERSION, Detector};

/// The built-in default policy: every detector redacts; safe out of the box.
pub const DEFAULT_POLICY_TOML: &str = include_str!("default_policy.toml");

/// What to do with a sensitive value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `[REDACTED:<detector>]`.
    Redact,
    /// Keep the first / last characters, mask the rest with `*`.
    Partial {
        /// Characters kept at the start.
        keep_first: u8,
        /// Characters kept at the end.
        keep_last: u8,
    },
    /// Keyed HMAC token `tok:<epoch>:<base64url>`: equal values join.
    Token,
    /// Salted commitment `cmt:<base64>`; the salt and value go back to the appender only.
    Commit,
    /// IPv4 → /24, IPv6 → /48, timestamp → day, date of birth → year.
    Generalize,
    /// Remove the value (a field: the member; inside a string: the span).
    Drop,
    /// `enc:<key id>:<base64url>`: sealed under the data subject's key
    /// (crate::seal); erasing the key erases the value.
    Encrypt,
    /// Leave it as it is.
    Keep,
    /// (Field rules only) scan the value with the detectors.
    Detect,
}

impl Action {
    /// The action's name in policies and leaves.
    pub fn name(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Partial { .. } => "partial",
            Action::Token => "token",
            Action::Commit => "commit",
            Action::Generalize => "generalize",
            Action::Drop => "drop",
            Action::Encrypt => "encrypt",
            Action::Keep => "keep",
            Action::Detect => "detect",
        }
    }
}

/// Detect everything, or pass only listed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every string is scanned; field rules apply.
    Detect,
    /// Fail-closed: only fields matched by a rule pass.
    Allowlist,
}

/// A JSON-path glob segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(String),
    Star,
    DoubleStar,
}

/// A field rule.
#[derive(Clone, Debug)]
pub struct FieldRule {
    pub(crate) glob: Vec<Seg>,
    pub(crate) path: String,
    /// The action.
    pub action: Action,
    /// The name recorded in the leaf for this rule's masks.
    pub detector: String,
}

/// A custom regex detector.
#[derive(Clone, Debug)]
pub struct CustomDetector {
    /// Name recorded in leaves.
    pub name: String,
    pub(crate) regex: regex::Regex,
    pub(crate) validator: Validator,
    /// Action.
    pub action: Action,
}

/// Checksum validators for custom detectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validator {
    /// None.
    None,
    /// Luhn over the digits.
    Luhn,
    /// ISO 7064 mod-97-10 over the alphanumerics (IBAN style).
    Mod97,
    /// A national identifier's or bank code's check digit
    /// ([`crate::checksum`]), over the alphanumerics, upper-cased.
    Id(IdCheck),
}

/// The identifier check digits a custom detector can name, by the names
/// the policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdCheck {
    /// `verhoeff`
    Verhoeff,
    /// `aadhaar`
    Aadhaar,
    /// `nhs_number`
    NhsNumber,
    /// `bsn`
    Bsn,
    /// `cpf`
    Cpf,
    /// `cnpj`
    Cnpj,
    /// `pesel`
    Pesel,
    /// `dni_nie`
    DniNie,
    /// `aba_routing`
    AbaRouting,
    /// `ca_sin`
    CaSin,
    /// `au_tfn`
    AuTfn,
    /// `au_medicare`
    AuMedicare,
    /// `de_tax_id`
    DeTaxId,
    /// `fr_nir`
    FrNir,
    /// `sg_nric`
    SgNric,
    /// `codice_fiscale`
    CodiceFiscale,
}

impl IdCheck {
    /// Every check, with its policy name.
    pub const ALL: [(&'static str, IdCheck); 16] = [
        ("verhoeff", IdCheck::Verhoeff),
        ("aadhaar", IdCheck::Aadhaar),
        ("nhs_number", IdCheck::NhsNumber),
        ("bsn", IdCheck::Bsn),
        ("cpf", IdCheck::Cpf),
        ("cnpj", IdCheck::Cnpj),
        ("pesel", IdCheck::Pesel),
        ("dni_nie", IdCheck::DniNie),
        ("aba_routing", IdCheck::AbaRouting),
        ("ca_sin", IdCheck::CaSin),
        ("au_tfn", IdCheck::AuTfn),
        ("au_medicare", IdCheck::AuMedicare),
        ("de_tax_id", IdCheck::DeTaxId),
        ("fr_nir", IdCheck::FrNir),
        ("sg_nric", IdCheck::SgNric),
        ("codice_fiscale", IdCheck::CodiceFiscale),
    ];

    /// Whether `id` (alphanumerics, upper case) has a valid check digit.
    pub fn check(self, id: &[u8]) -> bool {
        use crate::checksum as c;
        match self {
            IdCheck::Verhoeff => c::verhoeff(id),
            IdCheck::Aadhaar => c::aadhaar(id),
            IdCheck::NhsNumber => c::nhs_number(id),
            IdCheck::Bsn => c::bsn(id),
            IdCheck::Cpf => c::cpf(id),
            IdCheck::Cnpj => c::cnpj(id),
            IdCheck::Pesel => c::pesel(id),
            IdCheck::DniNie => c::dni_nie(id),
            IdCheck::AbaRouting => c::aba_routing(id),
            IdCheck::CaSin => c::ca_sin(id),
            IdCheck::AuTfn => c::au_tfn(id),
            IdCheck::AuMedicare => c::au_medicare(id),
            IdCheck::DeTaxId => c::de_tax_id(id),
            IdCheck::FrNir => c::fr_nir(id),
            IdCheck::SgNric => c::sg_nric(id),
            IdCheck::CodiceFiscale => c::codice_fiscale(id),
        }
    }
}

/// The largest `max_depth` a policy may set. The walk is safe at this
/// depth on any thread (it grows its stack on demand).
pub const MAX_DEPTH_LIMIT: usize = 10_000;

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Detect or allowlist.
    pub mode: Mode,
    /// Allowlist mode: `Redact` or `Drop` for unlisted fields.
    pub unlisted: Action,
    /// Deepest nesting accepted.
    pub max_depth: usize,
    pub(crate) builtin: BTreeMap<Detector, Action>,
    /// `builtin` as a table indexed by detector, for the walk.
    actions: [Action; Detector::ALL.len()],
    pub(crate) fields: Vec<FieldRule>,
    pub(crate) custom: Vec<CustomDetector>,
    /// `encrypt`: the JSON pointer of the data subject's identifier in an
    /// event; `None`: each value is its own subject.
    pub subject: Option<String>,
    digest: [u8; 32],
}

/// A policy file could not be used. Names the file, line, and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct PolicyError {
    /// The file (or `<built-in>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key at fault (dotted), or `-`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAction {
    Name(String),
    Table {
        action: String,
        #[serde(default)]
        keep_first: Option<u8>,
        #[serde(default)]
        keep_last: Option<u8>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    path: toml::Spanned<String>,
    action: toml::Spanned<RawAction>,
    #[serde(default)]
    detector: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustom {
    name: toml::Spanned<String>,
    pattern: toml::Spanned<String>,
    #[serde(default)]
    validator: Option<toml::Spanned<String>>,
    #[serde(default)]
    action: Option<toml::Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: toml::Spanned<u32>,
    #[serde(default)]
    mode: Option<toml::Spanned<String>>,
    #[serde(default)]
    unlisted: Option<toml::Spanned<String>>,
    #[serde(default)]
    max_depth: Option<toml::Spanned<usize>>,
    #[serde(default)]
    subject: Option<toml::Spanned<String>>,
    #[serde(default)]
    detectors: BTreeMap<String, toml::Spanned<RawAction>>,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    custom: Vec<RawCustom>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> PolicyError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn action(
        &self,
        raw: &toml::Spanned<RawAction>,
        key: &str,
        field: bool,
    ) -> Result<Action, PolicyError> {
        let (name, first, last) = match raw.get_ref() {
            RawAction::Name(n) => (n.as_str(), None, None),
            RawAction::Table {
                action,
                keep_first,
                keep_last,
            } => (action.as_str(), *keep_first, *keep_last),
        };
        let a = match name {
            "redact" => Action::Redact,
            "partial" => Action::Partial {
                keep_first: first.unwrap_or(0),
                keep_last: last.unwrap_or(if first.is_some() { 0 } else { 4 }),
            },
            "token" => Action::Token,
            "commit" => Action::Commit,
            "generalize" => Action::Generalize,
            "drop" => Action::Drop,
            "encrypt" => Action::Encrypt,
            "keep" => Action::Keep,
            "detect" if field => Action::Detect,
            other => {
                return Err(self.at(
                    raw.span(),
                    key,
                    format!(
                        "unknown action {other:?} (expected redact, partial, token, commit, generalize, drop, encrypt, keep{})",
                        if field { ", detect" } else { "" }
                    ),
                ));
            }
        };
        if (first.is_some() || last.is_some()) && !matches!(a, Action::Partial { .. }) {
            return Err(self.at(
                raw.span(),
                key,
                "keep_first / keep_last only apply to \"partial\"",
            ));
        }
        Ok(a)
    }
}

/// Detectors that `generalize` knows how to coarsen.
fn generalizable(d: Detector) -> bool {
    matches!(d, Detector::Ipv4 | Detector::Ipv6 | Detector::Dob)
}

fn parse_glob(path: &str) -> Option<Vec<Seg>> {
    if path.is_empty() {
        return None;
    }
    path.split('.')
        .map(|s| match s {
            "" => None,
            "*" => Some(Seg::Star),
            "**" => Some(Seg::DoubleStar),
            lit => Some(Seg::Lit(lit.to_owned())),
        })
        .collect()
}

/// Whether a glob matches a key path (array levels are transparent).
pub(crate) fn glob_match<'s, P>(glob: &[Seg], path: &[P], name: &impl Fn(&P) -> &'s str) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((Seg::DoubleStar, rest)) => {
            (0..=path.len()).any(|k| glob_match(rest, &path[k..], name))
        }
        Some((seg, rest)) => match path.split_first() {
            None => false,
            Some((p, prest)) => {
                let ok = match seg {
                    Seg::Star => true,
                    Seg::Lit(l) => l == name(p),
                    Seg::DoubleStar => true,
                };
                ok && glob_match(rest, prest, name)
            }
        },
    }
}

impl Policy {
    /// The built-in default policy.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::from_toml("<built-in>", DEFAULT_POLICY_TOML)
    }

    /// Parses and validates a policy. `file` is used in error messages.
    pub fn from_toml(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let cx = Ctx { file, text };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().to_owned();
            // toml names the offending key in its message when it knows it.
            let key = msg
                .split('`')
                .nth(1)
                .map_or_else(|| "-".to_owned(), str::to_owned);
            cx.at(span, &key, msg)
        })?;
        if *raw.version.get_ref() != 1 {
            return Err(cx.at(
                raw.version.span(),
                "version",
                "only policy version 1 is supported",
            ));
        }
        let mode = match raw.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("detect", _)) => Mode::Detect,
            Some(("allowlist", _)) => Mode::Allowlist,
            Some((other, span)) => {
                return Err(cx.at(
                    span,
                    "mode",
                    format!("unknown mode {other:?} (expected detect or allowlist)"),
                ));
            }
        };
        let unlisted = match raw
            .unlisted
            .as_ref()
            .map(|m| (m.get_ref().as_str(), m.span()))
        {
            None | Some(("redact", _)) => Action::Redact,
            Some(("drop", _)) => Action::Drop,
            Some((other, span)) => {
                return Err(cx.at(
                    span,
                    "unlisted",
                    format!("unknown value {other:?} (expected redact or drop)"),
                ));
            }
        };
        let max_depth = match &raw.max_depth {
            None => 128,
            Some(d) if (1..=MAX_DEPTH_LIMIT).contains(d.get_ref()) => *d.get_ref(),
            Some(d) => {
                return Err(cx.at(
                    d.span(),
                    "max_depth",
                    format!("must be between 1 and {MAX_DEPTH_LIMIT}"),
                ));
            }
        };
        let subject = match &raw.subject {
            None => None,
            Some(p) if p.get_ref().starts_with('/') => Some(p.get_ref().clone()),
            Some(p) => {
                return Err(cx.at(
                    p.span(),
                    "subject",
                    "must be a JSON pointer (RFC 6901), e.g. \"/actor/id\"",
                ));
            }
        };
        let mut custom = Vec::new();
        for (i, c) in raw.custom.iter().enumerate() {
            let key = format!("custom[{i}]");
            let name = c.name.get_ref();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(cx.at(
                    c.name.span(),
                    &format!("{key}.name"),
                    "must be non-empty [A-Za-z0-9_]",
                ));
            }
            if Detector::from_name(name).is_some()
                || custom.iter().any(|x: &CustomDetector| &x.name == name)
            {
                return Err(cx.at(
                    c.name.span(),
                    &format!("{key}.name"),
                    format!("detector {name:?} is already defined"),
                ));
            }
            let regex = regex::RegexBuilder::new(c.pattern.get_ref())
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    cx.at(
                        c.pattern.span(),
                        &format!("{key}.pattern"),
                        format!("invalid regex: {e}"),
                    )
                })?;
            let validator = match c
                .validator
                .as_ref()
                .map(|v| (v.get_ref().as_str(), v.span()))
            {
                None => Validator::None,
                Some(("luhn", _)) => Validator::Luhn,
                Some(("mod97", _)) => Validator::Mod97,
                Some((name, _)) if IdCheck::ALL.iter().any(|(n, _)| *n == name) => {
                    let found = IdCheck::ALL.iter().find(|(n, _)| *n == name);
                    found.map_or(Validator::None, |(_, c)| Validator::Id(*c))
                }
                Some((other, span)) => {
                    return Err(cx.at(
                        span,
                        &format!("{key}.validator"),
                        format!(
                            "unknown validator {other:?} (expected luhn, mod97, or one of: {})",
                            IdCheck::ALL.map(|(n, _)| n).join(", ")
                        ),
                    ));
                }
            };
            let action = match &c.action {
                None => Action::Redact,
                Some(a) => cx.action(a, &format!("{key}.action"), false)?,
            };
            if action == Action::Generalize {
                let span = c.action.as_ref().map_or(0..0, toml::Spanned::span);
                return Err(cx.at(
                    span,
                    &format!("{key}.action"),
                    "generalize is not defined for custom detectors",
                ));
            }
            custom.push(CustomDetector {
                name: name.clone(),
                regex,
                validator,
                action,
            });
        }
        let mut builtin: BTreeMap<Detector, Action> =
            Detector::ALL.iter().map(|d| (*d, Action::Redact)).collect();
        for (name, a) in &raw.detectors {
            let key = format!("detectors.{name}");
            let action = cx.action(a, &key, false)?;
            if let Some(d) = Detector::from_name(name) {
                if action == Action::Generalize && !generalizable(d) {
                    return Err(cx.at(
                        a.span(),
                        &key,
                        format!("generalize is only defined for ipv4, ipv6 and dob, not {name}"),
                    ));
                }
                builtin.insert(d, action);
            } else if let Some(c) = custom.iter_mut().find(|c| &c.name == name) {
                if action == Action::Generalize {
                    return Err(cx.at(
                        a.span(),
                        &key,
                        "generalize is not defined for custom detectors",
                    ));
                }
                c.action = action;
            } else {
                return Err(cx.at(a.span(), &key, format!("unknown detector {name:?}")));
            }
        }
        let mut fields = Vec::new();
        for (i, f) in raw.fields.iter().enumerate() {
            let key = format!("fields[{i}]");
            let glob = parse_glob(f.path.get_ref()).ok_or_else(|| {
                cx.at(
                    f.path.span(),
                    &format!("{key}.path"),
                    "a path is dot-separated keys, `*` or `**`, with no empty segment",
                )
            })?;
            let action = cx.action(&f.action, &format!("{key}.action"), true)?;
            if action == Action::Generalize {
                return Err(cx.at(
                    f.action.span(),
                    &format!("{key}.action"),
                    "generalize applies to detectors, not fields",
                ));
            }
            fields.push(FieldRule {
                glob,
                path: f.path.get_ref().clone(),
                action,
                detector: f.detector.clone().unwrap_or_else(|| "field".to_owned()),
            });
        }
        let mut actions = [Action::Redact; Detector::ALL.len()];
        for (d, a) in &builtin {
            if let Some(slot) = actions.get_mut(*d as usize) {
                *slot = *a;
            }
        }
        let mut p = Policy {
            mode,
            unlisted,
            max_depth,
            builtin,
            actions,
            fields,
            custom,
            subject,
            digest: [0; 32],
        };
        p.digest = p.compute_digest();
        Ok(p)
    }

    /// The action for a built-in detector.
    pub fn action_for(&self, d: Detector) -> Action {
        self.actions
            .get(d as usize)
            .copied()
            .unwrap_or(Action::Redact)
    }

    /// Whether any rule or detector uses `action` (to check keys at start-up).
    pub fn uses(&self, pred: impl Fn(Action) -> bool) -> bool {
        self.builtin.values().any(|a| pred(*a))
            || self.fields.iter().any(|f| pred(f.action))
            || self.custom.iter().any(|c| pred(c.action))
    }

    /// SHA-256 of the canonical policy and the detector-set version, hex.
    pub fn digest_hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The canonical text the digest covers: one line per setting, in a
    /// fixed order, with every default filled in.
    pub fn canonical(&self) -> String {
        let act = |a: Action| match a {
            Action::Partial {
                keep_first,
                keep_last,
            } => format!("partial({keep_first},{keep_last})"),
            other => other.name().to_owned(),
        };
        let mut s = format!(
            "cairn-policy/1\nmode={}\nunlisted={}\nmax_depth={}\n",
            match self.mode {
                Mode::Detect => "detect",
                Mode::Allowlist => "allowlist",
            },
            act(self.unlisted),
            self.max_depth
        );
        for (d, a) in &self.builtin {
            s.push_str(&format!("detector {}={}\n", d.name(), act(*a)));
        }
        for c in &self.custom {
            s.push_str(&format!(
                "custom {}={} validator={:?} pattern={:?}\n",
                c.name,
                act(c.action),
                c.validator,
                c.regex.as_str()
            ));
        }
        for f in &self.fields {
            s.push_str(&format!(
                "field {:?}={} as {:?}\n",
                f.path,
                act(f.action),
                f.detector
            ));
        }
        // Only when set: the digests of earlier policies stay as they were.
        if let Some(p) = &self.subject {
            s.push_str(&format!("subject={p:?}\n"));
        }
        s
    }

    fn compute_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.canonical().as_bytes());
        h.update(b"\n");
        h.update(DETECTOR_SET_VERSION.as_bytes());
        h.finalize().into()
    }

    /// The first field rule whose glob matches `path`.
    pub(crate) fn field_rule<'s, P>(
        &self,
        path: &[P],
        name: &impl Fn(&P) -> &'s str,
    ) -> Option<&FieldRule> {
        self.fields.iter().find(|f| glob_match(&f.glob, path, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses() {
        let p = Policy::default_policy().unwrap();
        assert_eq!(p.mode, Mode::Detect);
        assert_eq!(p.action_for(Detector::Email), Action::Redact);
        assert_eq!(p.digest_hex().len(), 64);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = Policy::from_toml(
            "p.toml",
            "version = 1\nmode = \"detect\"\n\n[detectors]\nemail = \"shred\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.line, e.key.as_str()),
            ("p.toml", 5, "detectors.email")
        );
        assert!(e.to_string().starts_with("p.toml:5:"), "{e}");
        let e = Policy::from_toml("p.toml", "version = 1\nmood = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.key, "mood");
        let e = Policy::from_toml(
            "p.toml",
            "version = 1\n[[custom]]\nname = \"x\"\npattern = \"(\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (4, "custom[0].pattern"));
        let e = Policy::from_toml(
            "p.toml",
            "version = 1\n[detectors]\nemail = \"generalize\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = Policy::from_toml("p.toml", "version = 2\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (1, "version"));
    }

    #[test]
    fn globs() {
        let g = parse_glob("**.password").unwrap();
        assert!(glob_match(&g, &["password"], &|s: &&str| *s));
        assert!(glob_match(&g, &["a", "b", "password"], &|s: &&str| *s));
        assert!(!glob_match(&g, &["password", "x"], &|s: &&str| *s));
        let g = parse_glob("user.*").unwrap();
        assert!(glob_match(&g, &["user", "email"], &|s: &&str| *s));
        assert!(!glob_match(&g, &["user"], &|s: &&str| *s));
        assert!(!glob_match(&g, &["user", "a", "b"], &|s: &&str| *s));
        assert!(parse_glob("a..b").is_none());
    }

    #[test]
    fn digest_changes_with_policy() {
        let a = Policy::from_toml("a", "version = 1\n").unwrap();
        let b = Policy::from_toml("b", "version = 1\n[detectors]\nemail = \"partial\"\n").unwrap();
        assert_ne!(a.digest_hex(), b.digest_hex());
        let c = Policy::from_toml("c", "version = 1\nmode = \"detect\"\n").unwrap();
        assert_eq!(
            a.digest_hex(),
            c.digest_hex(),
            "defaults spelled out or not: same policy"
        );
    }
}
