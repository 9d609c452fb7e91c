//! Built-in detectors: find sensitive spans inside a string, each confirmed
//! by a validator (Luhn, mod-97, SSN ranges, address parsing, token shapes)
//! to keep false positives down.
//!
//! Speed: one automaton pass over each string finds every literal
//! trigger (`@`, `://`, `AKIA`, `ghp_`, `eyJ`, `password`, …); the numeric
//! detectors run only when the string holds enough digits; most strings in
//! audit events (ids, timestamps, action names) are rejected by those two
//! cheap checks without running any detector.

use std::net::Ipv6Addr;
use std::ops::Range;

/// Version of the built-in detector set; part of every policy digest.
pub const DETECTOR_SET_VERSION: &str = "cairn-detectors/4";

/// A built-in detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Email addresses.
    Email,
    /// Phone numbers (E.164, US, UK, EU, AU national formats).
    Phone,
    /// Payment card numbers (Luhn-checked).
    CreditCard,
    /// IBANs (mod-97-checked).
    Iban,
    /// US social security numbers.
    Ssn,
    /// IPv4 addresses.
    Ipv4,
    /// IPv6 addresses.
    Ipv6,
    /// JSON Web Tokens.
    Jwt,
    /// AWS access key IDs.
    AwsAccessKey,
    /// AWS secret access keys (next to a keyword).
    AwsSecret,
    /// GitHub tokens.
    GithubToken,
    /// GitLab tokens.
    GitlabToken,
    /// Slack tokens.
    SlackToken,
    /// Stripe secret and restricted keys.
    StripeKey,
    /// Google API keys.
    GoogleApiKey,
    /// Other vendors' tokens with a documented prefix and shape
    /// ([`crate::vendors`]: OpenAI, Anthropic, npm, PyPI, DigitalOcean…).
    ApiToken,
    /// PEM private-key blocks.
    PrivateKey,
    /// Credentials embedded in URLs.
    UrlCredentials,
    /// Bearer / Basic authorization values.
    BearerToken,
    /// Secrets next to keywords such as password, secret, token, api_key.
    Secret,
    /// Field-name rule: a password, token, cookie or other secret field.
    Password,
    /// Field-name rule: a person's name.
    Name,
    /// Field-name rule: a date of birth.
    Dob,
    /// Field-name rule: a tax identifier.
    TaxId,
    /// National identifiers: by field name (`national_id`, `nhs_number`,
    /// `aadhaar`, `passport_number`…), by shape and check (UK NINO, India
    /// PAN, Singapore NRIC/FIN, Italy codice fiscale, Korea RRN), or after
    /// a context word (`passport`, `NHS`, `PESEL`, `CPF`… and a number
    /// whose check digit holds).
    NationalId,
    /// MAC addresses (IEEE 802).
    MacAddress,
    /// Cryptocurrency wallet addresses (Bitcoin Base58Check and Bech32,
    /// Ethereum with EIP-55).
    CryptoWallet,
    /// SWIFT/BIC codes after a context word (`SWIFT`, `BIC:`).
    SwiftBic,
}

impl Detector {
    /// Every built-in detector.
    pub const ALL: [Detector; 28] = [
        Detector::Email,
        Detector::Phone,
        Detector::CreditCard,
        Detector::Iban,
        Detector::Ssn,
        Detector::Ipv4,
        Detector::Ipv6,
        Detector::Jwt,
        Detector::AwsAccessKey,
        Detector::AwsSecret,
        Detector::GithubToken,
        Detector::GitlabToken,
        Detector::SlackToken,
        Detector::StripeKey,
        Detector::GoogleApiKey,
        Detector::ApiToken,
        Detector::PrivateKey,
        Detector::UrlCredentials,
        Detector::BearerToken,
        Detector::Secret,
        Detector::Password,
        Detector::Name,
        Detector::Dob,
        Detector::TaxId,
        Detector::NationalId,
        Detector::MacAddress,
        Detector::CryptoWallet,
        Detector::SwiftBic,
    ];

    /// The detector's name in policies, leaves and statistics.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::Phone => "phone",
            Detector::CreditCard => "credit_card",
            Detector::Iban => "iban",
            Detector::Ssn => "ssn",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::Jwt => "jwt",
            Detector::AwsAccessKey => "aws_access_key",
            Detector::AwsSecret => "aws_secret",
            Detector::GithubToken => "github_token",
            Detector::GitlabToken => "gitlab_token",
            Detector::SlackToken => "slack_token",
            Detector::StripeKey => "stripe_key",
            Detector::GoogleApiKey => "google_api_key",
            Detector::ApiToken => "api_token",
            Detector::PrivateKey => "private_key",
            Detector::UrlCredentials => "url_credentials",
            Detector::BearerToken => "bearer_token",
            Detector::Secret => "secret",
            Detector::Password => "password",
            Detector::Name => "name",
            Detector::Dob => "dob",
            Detector::TaxId => "tax_id",
            Detector::NationalId => "national_id",
            Detector::MacAddress => "mac_address",
            Detector::CryptoWallet => "crypto_wallet",
            Detector::SwiftBic => "swift_bic",
        }
    }

    /// Looks a detector up by name.
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.iter().copied().find(|d| d.name() == name)
    }
}

/// A detected span of a string (byte offsets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// Byte range in the scanned string.
    pub range: Range<usize>,
    /// Which detector (index into the built-ins, or a custom one).
    pub kind: MatchKindId,
}

/// Identifies a built-in or custom detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKindId {
    /// A built-in.
    Builtin(Detector),
    /// Index into the policy's custom detectors.
    Custom(usize),
}

#[derive(Clone, Copy, Debug)]
enum Trigger {
    At,
    Scheme,
    AwsKey,
    Vendor,
    Pem,
    Auth,
    Keyword,
    Jwt,
    Context,
}

/// How many kinds of [`Trigger`] there are.
const TRIGGER_KINDS: usize = 9;

const TRIGGERS: &[(&str, Trigger)] = &[
    ("@", Trigger::At),
    ("://", Trigger::Scheme),
    ("akia", Trigger::AwsKey),
    ("asia", Trigger::AwsKey),
    ("agpa", Trigger::AwsKey),
    ("aida", Trigger::AwsKey),
    ("aroa", Trigger::AwsKey),
    ("aipa", Trigger::AwsKey),
    ("anpa", Trigger::AwsKey),
    ("anva", Trigger::AwsKey),
    ("-----begin", Trigger::Pem),
    ("bearer ", Trigger::Auth),
    ("basic ", Trigger::Auth),
    ("token ", Trigger::Auth),
    ("ssws ", Trigger::Auth),
    ("password", Trigger::Keyword),
    ("passwd", Trigger::Keyword),
    ("pwd", Trigger::Keyword),
    ("secret", Trigger::Keyword),
    ("token", Trigger::Keyword),
    ("api_key", Trigger::Keyword),
    ("apikey", Trigger::Keyword),
    ("api-key", Trigger::Keyword),
    ("access_key", Trigger::Keyword),
    ("private_key", Trigger::Keyword),
    ("credential", Trigger::Keyword),
    ("eyj", Trigger::Jwt),
];

/// The compiled trigger automata, built once per [`crate::Masker`].
///
/// Every trigger matches a fixed number of ASCII bytes, case-insensitively
/// (literals, and a few vendor prefixes with their first body bytes), so a
/// forward DFA's match end and the pattern's length give the start: a
/// fully built dense DFA (regex-automata) runs its search loop at a few
/// instructions per byte, about a third of an Aho-Corasick automaton's
/// cost here. regex-automata's meta engine (which never gives up) stays as
/// the fallback should the DFA ever report a search error (it cannot with
/// these patterns: no quit bytes, no Unicode word boundaries).
#[derive(Clone, Debug)]
pub(crate) struct Engine {
    /// The trigger DFA's transitions, flattened for the per-string pass.
    steps: Steps,
    /// The same DFA, for the positions of the triggers in a string that
    /// has one, searched over the string in ASCII lower case.
    dfa: regex_automata::dfa::dense::DFA<Vec<u32>>,
    /// The same patterns in a regex engine that never gives up, built the
    /// first time it is needed (never, in practice: see above).
    fallback: std::sync::OnceLock<Option<regex_automata::meta::Regex>>,
    /// The patterns, for the fallback.
    patterns: Vec<String>,
    /// Per pattern: its trigger and the length of every match.
    defs: Vec<(Trigger, usize)>,
}

/// Why the trigger engine could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error("dfa: {0}")]
    Dfa(#[from] Box<regex_automata::dfa::dense::BuildError>),
    #[error("dfa start state: {0}")]
    Start(String),
    #[error("the trigger DFA has too many states to flatten ({0} of {1} cells)")]
    TooBig(usize, usize),
    #[error("trigger {0:?} is not in lower case")]
    NotLowerCase(String),
}

/// The trigger DFA's transitions in one flat table, for the pass over
/// every scanned string: `next = table[state + class[byte]]`, with state
/// ids premultiplied by the row length, and the states where a search
/// must look closer (match or quit states) numbered first, so that one
/// compare tells them apart. About half the instructions a byte of
/// `Automaton::next_state` plus the special-state tests. It only decides
/// whether a string may hold a trigger; the positions come from the DFA's
/// own search over the string in lower case ([`positions`]), and a
/// property test holds the two, and the fallback, to the same answer.
#[derive(Clone, Debug)]
struct Steps {
    classes: [u8; 256],
    /// `CELLS` long, so that an index masked with `CELLS - 1` needs no
    /// bounds check (the states fill the first part).
    table: Box<[u16; Steps::CELLS]>,
    /// Premultiplied ids below this are match or quit states.
    special_below: u16,
    start: u16,
    /// log2 of the row length (a power of two).
    shift: u32,
    /// Per state (by index): whether the end of input leads to a match.
    eoi_match: Vec<bool>,
}

impl Steps {
    /// States × row length the table may have (the built-in triggers
    /// vendor prefixes and context words (their first 8 bytes) make fewer than 1,024 states of 64
    /// cells: the hot rows, the start state's and a few more, stay in L1).
    const CELLS: usize = 1 << 16;

    fn new(
        dfa: &regex_automata::dfa::dense::DFA<Vec<u32>>,
        start: regex_automata::util::primitives::StateID,
    ) -> Result<Steps, EngineError> {
        use regex_automata::dfa::Automaton;
        use regex_automata::util::primitives::StateID;
        // One representative byte per class. The DFA was built from the
        // lower-case patterns, case-sensitively: the table folds a byte to
        // lower case as it maps it to its class, so the two cases of a
        // letter are one class (half the row length of a case-insensitive
        // DFA, which keeps them apart).
        let bc = dfa.byte_classes();
        let mut classes = [0u8; 256];
        let mut reps: Vec<u8> = Vec::new();
        for b in 0..=255u8 {
            let c = bc.get(b);
            if usize::from(c) == reps.len() {
                reps.push(b);
            }
            classes[usize::from(b)] = bc.get(b.to_ascii_lowercase());
        }
        let width = reps.len().next_power_of_two();
        let shift = width.trailing_zeros();
        // Every state reachable from the start.
        let mut order: Vec<StateID> = vec![start];
        let mut seen = std::collections::HashMap::from([(start, ())]);
        let mut k = 0;
        while let Some(&sid) = order.get(k) {
            k += 1;
            for &b in &reps {
                let next = dfa.next_state(sid, b);
                if seen.insert(next, ()).is_none() {
                    order.push(next);
                }
            }
            if order.len() * width > Steps::CELLS {
                return Err(EngineError::TooBig(order.len(), width));
            }
        }
        let special = |sid: StateID| {
            dfa.is_special_state(sid) && (dfa.is_match_state(sid) || dfa.is_quit_state(sid))
        };
        // Special states first.
        order.sort_by_key(|&sid| !special(sid));
        // Premultiplied ids fit in 16 bits: CELLS is 2^16.
        let index: std::collections::HashMap<StateID, u16> = order
            .iter()
            .enumerate()
            .map(|(i, &sid)| (sid, (i << shift) as u16))
            .collect();
        let id = |sid: StateID| index.get(&sid).copied().unwrap_or(0);
        // On the heap from the start (128 KiB: not through the stack).
        let mut table: Box<[u16; Steps::CELLS]> = vec![0u16; Steps::CELLS]
            .into_boxed_slice()
            .try_into()
            .map_err(|_| EngineError::TooBig(0, 0))?;
        for (i, &sid) in order.iter().enumerate() {
            for (c, &b) in reps.iter().enumerate() {
                if let Some(cell) = table.get_mut((i << shift) + c) {
                    *cell = id(dfa.next_state(sid, b));
                }
            }
        }
        let nspecial = order.iter().filter(|&&sid| special(sid)).count();
        Ok(Steps {
            classes,
            table,
            special_below: (nspecial << shift) as u16,
            start: id(start),
            shift,
            eoi_match: order
                .iter()
                .map(|&sid| dfa.is_match_state(dfa.next_eoi_state(sid)))
                .collect(),
        })
    }
}

impl Engine {
    pub(crate) fn new() -> Result<Self, EngineError> {
        use regex_automata::dfa::{Automaton, dense};
        use regex_automata::util::syntax;
        // The literal triggers, then the vendor formats' (a few are short
        // regular expressions of fixed length). Leftmost-first: at one
        // position the earlier-listed trigger wins ("token " before
        // "token").
        let mut patterns: Vec<String> = TRIGGERS.iter().map(|(p, _)| regex::escape(p)).collect();
        let mut defs: Vec<(Trigger, usize)> = TRIGGERS.iter().map(|(p, t)| (*t, p.len())).collect();
        for t in crate::vendors::triggers() {
            patterns.push(regex::escape(&t));
            defs.push((Trigger::Vendor, t.len()));
        }
        for (w, _) in crate::ids::CONTEXT {
            let t = &w[..w.len().min(crate::vendors::TRIGGER_MAX)];
            patterns.push(regex::escape(t));
            defs.push((Trigger::Context, t.len()));
        }
        // Every trigger is in lower case, and the text is folded to lower
        // case before it meets the DFA (in the table's byte classes for
        // the pass, in a copy for the positions): a case-sensitive DFA of
        // the lower-case patterns then matches them in any case, with half
        // the byte classes of a case-insensitive one. Not minimized: here
        // minimizing saves no state and doubles the build time (~90 ms
        // against ~40 ms, built once per process: see [`Engine::shared`]).
        if let Some(p) = patterns
            .iter()
            .find(|p| p.bytes().any(|c| c.is_ascii_uppercase()))
        {
            return Err(EngineError::NotLowerCase(p.clone()));
        }
        let flat = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .match_kind(regex_automata::MatchKind::LeftmostFirst)
                    .start_kind(regex_automata::dfa::StartKind::Unanchored)
                    .minimize(false),
            )
            .syntax(
                syntax::Config::new()
                    .case_insensitive(false)
                    .unicode(false)
                    .utf8(false),
            )
            .build_many(&patterns)
            .map_err(Box::new)?;
        // The unanchored start state (the triggers have no look-around, so
        // it is one state whatever precedes the text).
        let start = flat
            .start_state(
                &regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::No),
            )
            .map_err(|e| EngineError::Start(e.to_string()))?;
        let steps = Steps::new(&flat, start)?;
        Ok(Engine {
            steps,
            dfa: flat,
            fallback: std::sync::OnceLock::new(),
            patterns,
            defs,
        })
    }
}

impl Engine {
    /// The fallback engine (case-insensitive, leftmost-first, the same
    /// patterns), built on first use.
    fn fallback(&self) -> Option<&regex_automata::meta::Regex> {
        self.fallback
            .get_or_init(|| {
                regex_automata::meta::Builder::new()
                    .configure(
                        regex_automata::meta::Config::new()
                            .match_kind(regex_automata::MatchKind::LeftmostFirst)
                            .utf8_empty(false),
                    )
                    .syntax(
                        regex_automata::util::syntax::Config::new()
                            .case_insensitive(true)
                            .unicode(false)
                            .utf8(false),
                    )
                    .build_many(&self.patterns)
                    .ok()
            })
            .as_ref()
    }

    /// The engine every masker shares: the triggers are fixed, so it is
    /// built once per process.
    pub(crate) fn shared() -> Result<std::sync::Arc<Engine>, String> {
        static SHARED: std::sync::OnceLock<Result<std::sync::Arc<Engine>, String>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| {
                Engine::new()
                    .map(std::sync::Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// True when position `i` is not inside a word on the left.
fn left_boundary(s: &[u8], i: usize) -> bool {
    i == 0 || !is_word(s[i - 1])
}

/// True when position `j` (exclusive end) is not followed by a word char.
fn right_boundary(s: &[u8], j: usize) -> bool {
    j >= s.len() || !is_word(s[j])
}

/// One literal trigger found by the trigger automaton (byte offsets into
/// the text it ran over).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    start: usize,
    end: usize,
    trigger: Trigger,
}

/// Runs the trigger automaton over `text` (one string), appending every
/// trigger in order, and returns the string's [`Census`], counted in the
/// same pass.
pub(crate) fn find_triggers(engine: &Engine, text: &[u8], out: &mut Vec<Hit>) -> Census {
    // Most strings hold no trigger: step the DFA over the bytes, and only
    // if it ever reaches a match (or quit) state run the search that
    // reports positions. Saves the search's set-up on every string. The
    // DFA's steps depend on each other (one load, then the next), so the
    // census's independent adds in the same loop come nearly free.
    let st = &engine.steps;
    let table: &[u16; Steps::CELLS] = &st.table;
    let step = |s: u16, b: u8| {
        table[(usize::from(s) + usize::from(st.classes[usize::from(b)])) & (Steps::CELLS - 1)]
    };
    let mut s = st.start;
    let mut census = Census::default();
    let hit = if text.len() > LANE_MAX {
        // Long enough for a census lane to wrap: counted apart, in chunks.
        census = Census::of(text);
        text.iter().position(|&b| {
            s = step(s, b);
            s < st.special_below
        })
    } else {
        let mut lanes = 0u64;
        let hit = text.iter().position(|&b| {
            lanes += CENSUS_LANES[usize::from(b)];
            s = step(s, b);
            s < st.special_below
        });
        census.add_lanes(lanes);
        if let Some(rest) = hit.and_then(|i| text.get(i + 1..)) {
            census.add(&Census::of(rest));
        }
        hit
    };
    let maybe = hit.is_some();
    let eoi_match = st
        .eoi_match
        .get((s >> st.shift) as usize)
        .copied()
        .unwrap_or(true);
    if !maybe && !eoi_match {
        return census;
    }
    let first = out.len();
    let done = positions(engine, text, out);
    if done {
        return census;
    }
    // The DFA gave up (it cannot with these patterns): redo it all with
    // the fallback engine rather than miss a trigger.
    out.truncate(first);
    let Some(fallback) = engine.fallback() else {
        return census;
    };
    for m in fallback.find_iter(text) {
        out.push(Hit {
            start: m.start(),
            end: m.end(),
            trigger: engine
                .defs
                .get(m.pattern().as_usize())
                .map_or(Trigger::Vendor, |d| d.0),
        });
    }
    census
}

/// Appends the triggers in `text` to `out`, in order; false
/// if the DFA gave up before the end (it cannot with these patterns).
fn positions(engine: &Engine, text: &[u8], out: &mut Vec<Hit>) -> bool {
    // The DFA matches lower case: search a copy of `text` in ASCII lower
    // case (which keeps every byte where it is, so positions in the copy
    // are positions in `text`). On the stack for most strings.
    const SHORT: usize = 256;
    if text.len() <= SHORT {
        let mut buf = [0u8; SHORT];
        let lower = &mut buf[..text.len()];
        lower.copy_from_slice(text);
        lower.make_ascii_lowercase();
        positions_in(engine, lower, out)
    } else {
        positions_in(engine, &text.to_ascii_lowercase(), out)
    }
}

/// [`positions`] over `text` already in lower case.
fn positions_in(engine: &Engine, text: &[u8], out: &mut Vec<Hit>) -> bool {
    use regex_automata::dfa::Automaton;
    let mut at = 0;
    while at < text.len() {
        let input = regex_automata::Input::new(text).range(at..);
        match engine.dfa.try_search_fwd(&input) {
            Ok(Some(m)) => {
                let (trigger, len) = engine
                    .defs
                    .get(m.pattern().as_usize())
                    .copied()
                    .unwrap_or((Trigger::Vendor, 1));
                let end = m.offset();
                // Every trigger matches a fixed number of ASCII bytes: the
                // match is the `len` bytes before its end, and ends after `at`.
                let start = end.saturating_sub(len).max(at);
                out.push(Hit {
                    start,
                    end,
                    trigger,
                });
                at = end.max(at + 1);
            }
            Ok(None) => return true,
            Err(_) => break,
        }
    }
    at >= text.len()
}

/// Runs every built-in detector over `s`, appending matches (unsorted,
/// possibly overlapping) to `out`. `hits` is a scratch buffer.
///
/// The trigger pass runs per string, not once per event: keys, short
/// strings and values under a field rule never need it, and they are
/// about half of a typical event's bytes.
pub(crate) fn scan_builtin(engine: &Engine, s: &str, hits: &mut Vec<Hit>, out: &mut Vec<Match>) {
    // Nothing we detect is shorter than six bytes (`a@b.co`).
    if s.len() < 6 {
        return;
    }
    if inert(s.as_bytes()) {
        return;
    }
    hits.clear();
    let census = find_triggers(engine, s.as_bytes(), hits);
    scan_with_hits(s, hits, &census, out);
}

/// Whether `b` is, as a whole, a shape no detector can match inside: an
/// RFC 3339 timestamp (`2026-03-13T20:03:04.123Z`, `… 20:03:04+01:00`) or
/// a UUID. These are in nearly every audit event, and recognizing them
/// costs a few compares where the detectors would walk every digit. (The
/// property test `inert_shapes_have_no_matches` holds this to the full
/// scan.)
pub(crate) fn inert(b: &[u8]) -> bool {
    timestamp(b) || uuid(b)
}

/// Whether every byte of `b` fits its template byte: `d` a digit, `h` a
/// hex digit, anything else itself.
fn fits(b: &[u8], template: &[u8]) -> bool {
    b.len() == template.len()
        && b.iter().zip(template).all(|(&c, &t)| match t {
            b'd' => c.is_ascii_digit(),
            b'h' => c.is_ascii_hexdigit(),
            t => c == t,
        })
}

fn uuid(b: &[u8]) -> bool {
    fits(b, b"hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh")
}

fn timestamp(b: &[u8]) -> bool {
    // Date and time, to the second.
    let (Some(date), Some(time)) = (b.get(..10), b.get(11..19)) else {
        return false;
    };
    if !fits(date, b"dddd-dd-dd")
        || !matches!(b[10], b'T' | b't' | b' ')
        || !fits(time, b"dd:dd:dd")
    {
        return false;
    }
    let mut rest = &b[19..];
    // Fraction.
    if let Some(f) = rest.strip_prefix(b".") {
        let n = f.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &f[n..];
    }
    // Zone.
    matches!(rest, [] | [b'Z' | b'z'])
        || (rest.len() == 6 && matches!(rest[0], b'+' | b'-') && fits(&rest[1..], b"dd:dd"))
}

/// Runs every built-in detector over `s`, given the triggers found in it.
fn scan_with_hits(s: &str, hits: &[Hit], census: &Census, out: &mut Vec<Match>) {
    let b = s.as_bytes();
    let mut flags = [false; TRIGGER_KINDS];
    // Start/end of keyword and authorization triggers, and the starts of
    // vendor prefixes, for their detectors (no allocation when empty).
    let mut keywords = Vec::new();
    let mut auths = Vec::new();
    let mut vendors = Vec::new();
    let mut context = Vec::new();
    for h in hits {
        flags[h.trigger as usize] = true;
        let (start, end) = (h.start, h.end);
        match h.trigger {
            Trigger::Keyword => keywords.push((start, end)),
            Trigger::Auth => {
                auths.push((start, end));
                // "token " is also the keyword "token".
                if b[start].eq_ignore_ascii_case(&b't') {
                    keywords.push((start, end - 1));
                    flags[Trigger::Keyword as usize] = true;
                }
            }
            Trigger::Vendor => vendors.push(start),
            Trigger::Context => context.push((start, end)),
            _ => {}
        }
    }
    let at = Found {
        keywords: &keywords,
        auths: &auths,
        vendors: &vendors,
        context: &context,
    };
    scan_flags(s, &flags, &at, census, out)
}

/// Where the triggers that need positions were found.
struct Found<'a> {
    keywords: &'a [(usize, usize)],
    auths: &'a [(usize, usize)],
    vendors: &'a [usize],
    context: &'a [(usize, usize)],
}

fn scan_flags(
    s: &str,
    flags: &[bool; TRIGGER_KINDS],
    at: &Found<'_>,
    c: &Census,
    out: &mut Vec<Match>,
) {
    let b = s.as_bytes();
    let push = |out: &mut Vec<Match>, r: Range<usize>, d: Detector| {
        out.push(Match {
            range: r,
            kind: MatchKindId::Builtin(d),
        })
    };
    if flags[Trigger::At as usize] {
        emails(b, &mut |r| push(out, r, Detector::Email));
    }
    if flags[Trigger::Scheme as usize] {
        url_credentials(b, &mut |r| push(out, r, Detector::UrlCredentials));
    }
    if flags[Trigger::AwsKey as usize] {
        aws_keys(b, &mut |r| push(out, r, Detector::AwsAccessKey));
    }
    if flags[Trigger::Vendor as usize] {
        crate::vendors::find(b, at.vendors, &mut |r, d| push(out, r, d));
    }
    if flags[Trigger::Pem as usize] {
        pem_blocks(s, &mut |r| push(out, r, Detector::PrivateKey));
    }
    if flags[Trigger::Jwt as usize] {
        jwts(b, &mut |r| push(out, r, Detector::Jwt));
    }
    if flags[Trigger::Auth as usize] {
        auth_values(b, at.auths, &mut |r| push(out, r, Detector::BearerToken));
    }
    if flags[Trigger::Keyword as usize] {
        keyword_secrets(b, at.keywords, &mut |r, aws| {
            push(
                out,
                r,
                if aws {
                    Detector::AwsSecret
                } else {
                    Detector::Secret
                },
            )
        });
    }
    // The shortest number `digit_runs` classifies has eight digits (an
    // international phone number; national ones have ten, SSNs nine,
    // cards thirteen).
    if flags[Trigger::Context as usize] {
        crate::ids::after_context(b, at.context, &mut |r, swift| {
            push(
                out,
                r,
                if swift {
                    Detector::SwiftBic
                } else {
                    Detector::NationalId
                },
            )
        });
    }
    if c.digits >= 8 {
        digit_runs(b, out);
        // Hex-bodied vendor keys (a prefix `SK`, `key-` or `-us`, and 32
        // hex digits) and Ethereum addresses (`0x` and 40). SIMD searches
        // for a byte each needs pass over hashes and trace ids, the
        // strings here that are mostly hex, without reading them byte by
        // byte.
        if b.len() >= 32 {
            crate::vendors::find_hex_gated(b, &mut |r, d| push(out, r, d));
            if b.len() >= 42 && memchr::memchr(b'x', b).is_some() {
                crate::ids::ethereum(b, &mut |r| push(out, r, Detector::CryptoWallet));
            }
        }
    }
    // Shapes found word by word, in one walk: MAC addresses (five colons
    // or dashes, or two dots and a digit), Bitcoin addresses (26 characters at
    // least: a digit and capitals (Base58Check), or digits (Bech32)), and national identifiers of letters and digits
    // (NINO 3 capitals and 6 digits, PAN 6 and 4, NRIC 2 and 7, codice
    // fiscale 9 capitals).
    let want = crate::ids::Want {
        mac: c.colons >= 5 || c.dashes >= 5 || (c.dots >= 2 && b.len() >= 14 && c.digits >= 1),
        wallets: b.len() >= 26 && c.digits >= 1 && (c.upper >= 3 || c.digits >= 3),
        ids: c.upper >= 2 && c.digits >= 4 && (c.upper >= 3 || c.digits >= 7),
    };
    if want.mac || want.wallets || want.ids {
        crate::ids::shapes(b, want, &mut |r, d| push(out, r, d));
    }
    // An IBAN starts with two capital letters.
    if c.digits >= 7 && c.upper >= 2 {
        ibans(b, &mut |r| push(out, r, Detector::Iban));
    }
    // An IPv4 address can have as few as four digits ("1.2.3.4").
    if c.digits >= 4 && c.dots >= 3 {
        ipv4s(b, &mut |r| push(out, r, Detector::Ipv4));
    }
    // An IPv6 address (or a truncated one) has "::" or three colons at
    // least (see `ipv6s`): times like 20:03:17 skip it.
    if c.colons >= 3 || (c.colons == 2 && b.windows(2).any(|w| w == b"::")) {
        ipv6s(s, &mut |r| push(out, r, Detector::Ipv6));
    }
}

/// Counts of the bytes that gate the numeric detectors, taken in one pass.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct Census {
    digits: usize,
    dots: usize,
    colons: usize,
    upper: usize,
    dashes: usize,
}

/// Bits per lane of [`CENSUS_LANES`]: five 12-bit lanes in a `u64`.
const LANE_BITS: u32 = 12;
const LANE_MASK: u64 = (1 << LANE_BITS) - 1;
/// The most bytes one sum of lanes may cover without a lane wrapping.
pub(crate) const LANE_MAX: usize = LANE_MASK as usize;

/// Per-byte increments for [`Census`], one 12-bit lane per count: digits,
/// dots, colons, capitals, dashes. One table load and one add per byte.
const CENSUS_LANES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            1
        } else if c == b'.' {
            1 << LANE_BITS
        } else if c == b':' {
            1 << (2 * LANE_BITS)
        } else if c.is_ascii_uppercase() {
            1 << (3 * LANE_BITS)
        } else if c == b'-' {
            1 << (4 * LANE_BITS)
        } else {
            0
        };
        i += 1;
    }
    t
};

impl Census {
    fn of(b: &[u8]) -> Census {
        let mut c = Census::default();
        // A lane holds up to 4,095: count in chunks that cannot overflow.
        for chunk in b.chunks(LANE_MAX) {
            c.add_lanes(chunk.iter().map(|&x| CENSUS_LANES[usize::from(x)]).sum());
        }
        c
    }

    /// Adds a sum of [`CENSUS_LANES`] over at most [`LANE_MAX`] bytes.
    fn add_lanes(&mut self, sum: u64) {
        let lane = |k: u32| ((sum >> (k * LANE_BITS)) & LANE_MASK) as usize;
        self.digits += lane(0);
        self.dots += lane(1);
        self.colons += lane(2);
        self.upper += lane(3);
        self.dashes += lane(4);
    }

    fn add(&mut self, o: &Census) {
        self.digits += o.digits;
        self.dots += o.dots;
        self.colons += o.colons;
        self.upper += o.upper;
        self.dashes += o.dashes;
    }
}

// ---------------------------------------------------------------- email

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn emails(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    for at in memchr::memchr_iter(b'@', b) {
        let mut i = at;
        while i > 0 && is_local(b[i - 1]) {
            i -= 1;
        }
        // A local part does not start or end with a dot.
        while i < at && b[i] == b'.' {
            i += 1;
        }
        if i == at || b[at - 1] == b'.' {
            continue;
        }
        let mut j = at + 1;
        while j < b.len() && is_domain(b[j]) {
            j += 1;
        }
        // Trim trailing dots and dashes (sentence punctuation).
        while j > at + 1 && matches!(b[j - 1], b'.' | b'-') {
            j -= 1;
        }
        let domain = &b[at + 1..j];
        let Some(last_dot) = domain.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &domain[last_dot + 1..];
        if tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) || domain[0] == b'.' {
            continue;
        }
        if domain.windows(2).any(|w| w == b"..") {
            continue;
        }
        f(i..j);
    }
}

// ------------------------------------------------------ URL credentials

/// `scheme://user:password@host…` (RFC 3986 §3.2.1 userinfo, and the DSNs
/// of JDBC, Redis, AMQP, MongoDB… written the same way): the
/// `user:password` part. Logs print passwords unencoded, so the password
/// may hold any printable character, `/ ? # @ & % ! *` included: the
/// userinfo ends at the *last* `@` of the URL that a host follows. The user
/// part (before the first `:`) holds none of `/ ? # @`, and a `:port/`
/// right after the host of a plain URL is not a password (so neither is a
/// password of digits alone or digits then `/ ? #`: the one ambiguity,
/// read as a port).
fn url_credentials(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    for m in occurrences(b, b"://") {
        let start = m + 3;
        // The URL as a log prints it: up to whitespace, a quote or a
        // bracket that ends it.
        let mut end = start;
        while end < b.len()
            && !b[end].is_ascii_whitespace()
            && !matches!(b[end], b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')
        {
            end += 1;
        }
        let url = &b[start..end];
        let Some(colon) = url.iter().position(|&c| c == b':') else {
            continue;
        };
        // The user may be empty (`redis://:password@host`).
        if url[..colon]
            .iter()
            .any(|c| matches!(c, b'/' | b'?' | b'#' | b'@'))
        {
            continue;
        }
        // host:port/… (a plain URL with a port and a path holding `@`).
        let digits = url[colon + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 && matches!(url.get(colon + 1 + digits), Some(b'/' | b'?' | b'#') | None) {
            continue;
        }
        let at = (colon + 2..url.len())
            .rev()
            .find(|&k| url[k] == b'@' && host_follows(&url[k + 1..]));
        if let Some(k) = at {
            f(start..start + k);
        }
    }
}

/// Whether `b` begins with a host (a name, IPv4 or `[IPv6]`), then a port,
/// a path, a query, a fragment, a DSN's `;`/`,` or the end.
fn host_follows(b: &[u8]) -> bool {
    if b.first() == Some(&b'[') {
        return b.contains(&b']');
    }
    let n = b
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        .count();
    n > 0
        && b[0].is_ascii_alphanumeric()
        && matches!(
            b.get(n),
            None | Some(b':' | b'/' | b'?' | b'#' | b';' | b',' | b')' | b']' | b'}')
        )
}

// ------------------------------------------------------------- AWS

fn aws_keys(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    const PREFIXES: [&[u8]; 9] = [
        b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA", b"AKPA",
    ];
    for i in 0..b.len().saturating_sub(19) {
        if !PREFIXES.iter().any(|p| b[i..].starts_with(p)) || !left_boundary(b, i) {
            continue;
        }
        let body = &b[i + 4..i + 20];
        if body
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && right_boundary(b, i + 20)
        {
            f(i..i + 20);
        }
    }
}

// ------------------------------------------------------------------ PEM

fn pem_blocks(s: &str, f: &mut dyn FnMut(Range<usize>)) {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("-----begin ") {
        let start = from + rel;
        let header_end = match lower[start + 11..].find("-----") {
            Some(e) => start + 11 + e + 5,
            None => return,
        };
        if !lower[start..header_end].contains("private key") {
            from = header_end;
            continue;
        }
        // To the matching END line, or to the end of the string if the
        // block is truncated (a truncated key is still a key).
        let end = match lower[header_end..].find("-----end ") {
            Some(e) => {
                let e = header_end + e;
                lower[e + 9..]
                    .find("-----")
                    .map_or(s.len(), |x| e + 9 + x + 5)
            }
            None => s.len(),
        };
        f(start..end);
        from = end;
    }
}

// ------------------------------------------------------------------ JWT

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn jwts(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    for start in occurrences(b, b"eyJ") {
        if start > 0 && is_b64url(b[start - 1]) {
            continue;
        }
        let mut j = start;
        let mut parts = [0usize; 3];
        let mut part = 0;
        loop {
            let seg = j;
            while j < b.len() && is_b64url(b[j]) {
                j += 1;
            }
            parts[part] = j - seg;
            if part < 2 && j < b.len() && b[j] == b'.' {
                part += 1;
                j += 1;
            } else {
                break;
            }
        }
        // header.payload.signature; the payload is JSON too ("eyJ").
        if part == 2 && parts[0] >= 10 && parts[1] >= 10 && b[start..].len() > parts[0] + 4 {
            let payload = start + parts[0] + 1;
            if b[payload..].starts_with(b"eyJ") {
                f(start..j);
            }
        }
    }
}

// ------------------------------------------------------ Authorization

fn auth_values(b: &[u8], at: &[(usize, usize)], f: &mut dyn FnMut(Range<usize>)) {
    for &(start, kw_end) in at {
        if !left_boundary(b, start) {
            continue;
        }
        let mut i = kw_end;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let v = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-._~+/=".contains(&b[i])) {
            i += 1;
        }
        // "token " is common English; require a credential-looking value.
        let min = if b[start].eq_ignore_ascii_case(&b't') {
            20
        } else {
            8
        };
        let val = &b[v..i];
        if val.len() >= min && val.iter().any(u8::is_ascii_digit) {
            f(v..i);
        }
    }
}

// --------------------------------------------------- keyword = secret

/// `password=…`, `"api_key": "…"`, `secret: …`, `aws_secret_access_key=…`.
fn keyword_secrets(b: &[u8], at: &[(usize, usize)], f: &mut dyn FnMut(Range<usize>, bool)) {
    for &(kw_start, kw_end) in at {
        // Expand to the whole identifier containing the keyword.
        let mut s = kw_start;
        while s > 0 && (is_word(b[s - 1]) || b[s - 1] == b'-' || b[s - 1] == b'.') {
            s -= 1;
        }
        let mut i = kw_end;
        while i < b.len() && (is_word(b[i]) || b[i] == b'-') {
            i += 1;
        }
        let ident = b[s..i].to_ascii_lowercase();
        let aws = occurrences(&ident, b"aws").next().is_some()
            && occurrences(&ident, b"secret").next().is_some();
        // Optional closing quote, spaces, then ':' or '='.
        if i < b.len() && matches!(b[i], b'"' | b'\'') {
            i += 1;
        }
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() || !matches!(b[i], b':' | b'=') {
            // No assignment: a credential-looking word close after the
            // keyword ("the api token is 8f7a…") is taken for one.
            if let Some(r) = high_entropy_after(b, i) {
                f(r, aws);
            }
            continue;
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let quote = if i < b.len() && matches!(b[i], b'"' | b'\'') {
            i += 1;
            Some(b[i - 1])
        } else {
            None
        };
        let v = i;
        while i < b.len() {
            let c = b[i];
            let stop = match quote {
                Some(q) => c == q,
                None => {
                    c.is_ascii_whitespace()
                        || matches!(c, b',' | b';' | b'&' | b'"' | b'\'' | b'}' | b')')
                }
            };
            if stop {
                break;
            }
            i += 1;
        }
        let val = &b[v..i];
        if val.len() >= 4
            && !val.starts_with(b"[REDACTED")
            && !val.starts_with(b"tok:")
            && !val.starts_with(b"cmt:")
        {
            f(v..i, aws);
        }
    }
}

/// How far after a keyword a credential without `:` or `=` may start.
const ENTROPY_WINDOW: usize = 24;

/// Bits per byte below which a word is not taken for a credential: random
/// base64 or alphanumerics of 16+ bytes score 3.6-4.5, words and most
/// identifiers less (gitleaks' generic rule uses 3.5 too).
const MIN_ENTROPY: f64 = 3.5;

/// The first word within [`ENTROPY_WINDOW`] bytes of `from` that looks
/// like a credential: 16-256 bytes of letters, digits and `+/=_-`, both
/// letters and digits, Shannon entropy of at least [`MIN_ENTROPY`] bits
/// per byte, and not a shape of identifier (a UUID, a timestamp, a hex
/// digest, a prefixed id, a dotted name, a path). Hex secrets are left to
/// `key=value` and the vendor formats: here they cannot be told from
/// digests.
fn high_entropy_after(b: &[u8], from: usize) -> Option<Range<usize>> {
    let cred =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-' | b'.');
    let end = (from + ENTROPY_WINDOW).min(b.len());
    let mut i = from;
    while i < end {
        if !cred(b[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && cred(b[i]) {
            i += 1;
        }
        // A sentence's full stop is not part of the word.
        let e = if b[i - 1] == b'.' { i - 1 } else { i };
        let w = &b[s..e];
        // Shapes that are identifiers, not secrets: hex digests (commit
        // ids, SHA-256 sums), `req_…`-style ids (a short lower-case prefix
        // and `_`), paths and dashed names (pod names, trace parents: a `/`
        // or `-` and no capital), dotted names.
        let hex = w.iter().all(u8::is_ascii_hexdigit);
        let prefixed = w
            .iter()
            .position(|&c| c == b'_')
            .is_some_and(|p| (2..=6).contains(&p) && w[..p].iter().all(u8::is_ascii_lowercase));
        let path =
            (w.contains(&b'/') || w.contains(&b'-')) && !w.iter().any(u8::is_ascii_uppercase);
        if (16..=256).contains(&w.len())
            && w.iter().any(u8::is_ascii_digit)
            && w.iter().any(u8::is_ascii_alphabetic)
            && !hex
            && !prefixed
            && !path
            && !w.contains(&b'.')
            && !inert(w)
            && shannon(w) >= MIN_ENTROPY
        {
            return Some(s..e);
        }
    }
    None
}

/// Shannon entropy of `w`'s bytes, in bits per byte.
fn shannon(w: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &c in w {
        counts[usize::from(c)] += 1;
    }
    let n = w.len() as f64;
    counts
        .iter()
        .filter(|&&k| k > 0)
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum()
}

// ------------------------------------------------------- digit runs

/// Luhn checksum over the digits of `s`.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Whether `d` (9 ASCII digits) is a plausible SSN: area not 000, 666 or
/// 900–999; group not 00; serial not 0000.
pub fn valid_ssn(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let n = |r: Range<usize>| d[r].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
    let (area, group, serial) = (n(0..3), n(3..5), n(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// A fixed-capacity stack vector that remembers if it overflowed.
struct Buf<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
    overflow: bool,
}

impl<T: Copy + Default, const N: usize> Buf<T, N> {
    fn new() -> Self {
        Buf {
            items: [T::default(); N],
            len: 0,
            overflow: false,
        }
    }
    fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
    }
    fn push(&mut self, v: T) {
        if self.len < N {
            self.items[self.len] = v;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn overflowed(&self) -> bool {
        self.overflow
    }
    fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }
}

/// Scans runs of digits joined by single separators (space, dash, dot,
/// parentheses, leading `+`) and classifies them as card, SSN or phone.
/// Non-overlapping occurrences of a short `needle` in a short `hay`, from
/// the left (as `memchr::memmem::find_iter`, without building a searcher:
/// its set-up cost more than the search on a string value).
fn occurrences<'h>(hay: &'h [u8], needle: &'h [u8]) -> impl Iterator<Item = usize> + 'h {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (&first, _) = needle.split_first()?;
        while let Some(k) = hay.get(at..).and_then(|h| memchr::memchr(first, h)) {
            let i = at + k;
            if hay.get(i..).is_some_and(|h| h.starts_with(needle)) {
                at = i + needle.len();
                return Some(i);
            }
            at = i + 1;
        }
        at = hay.len();
        None
    })
}

/// Whether `c` can be part of a number [`digit_runs`] classifies: a digit
/// or a separator it extends a number over.
fn in_chain(c: u8) -> bool {
    /// One load a byte.
    const CHAIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let c = i as u8;
            t[i] = c.is_ascii_digit() || matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'+');
            i += 1;
        }
        t
    };
    CHAIN[usize::from(c)]
}

/// Finds card numbers, SSNs and phone numbers. Every number these
/// detectors accept has eight digits or more and lies inside one chain of
/// digits and separators ([`in_chain`]), so chains with fewer digits
/// (paths and dates, `2026/03/13/part-00003`; versions; most ids) are
/// passed over at a few instructions a byte, and only the others are
/// walked run by run.
fn digit_runs(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut digits = 0;
        while let Some(&c) = b.get(i)
            && in_chain(c)
        {
            digits += usize::from(c.is_ascii_digit());
            i += 1;
        }
        if digits >= 8 {
            runs_in(b, start, i, out);
        }
        while b.get(i).is_some_and(|&c| !in_chain(c)) {
            i += 1;
        }
    }
}

/// The runs of [`digit_runs`] that start in `b[from..to]` (a chain).
fn runs_in(b: &[u8], from: usize, to: usize, out: &mut Vec<Match>) {
    let mut i = from;
    // Stack buffers: no allocation per string. Runs longer than these are
    // longer than anything we classify (cards stop at 19 digits).
    let mut digits = Buf::<u8, 24>::new();
    // (digits, separator before) per group; a group's length saturates.
    let mut groups = Buf::<(u8, u8), 12>::new();
    while i < to {
        let c = b[i];
        let starts = c.is_ascii_digit()
            || ((c == b'+' || c == b'(') && i + 1 < b.len() && b[i + 1].is_ascii_digit());
        if !starts || !left_boundary(b, i) {
            i += 1;
            continue;
        }
        // Extend over digits and single separators.
        let start = i;
        digits.clear();
        groups.clear();
        let mut j = i;
        let mut group_len = 0u8;
        let mut last_sep = 0u8;
        let mut end = i;
        while j < b.len() {
            let c = b[j];
            if c.is_ascii_digit() {
                digits.push(c);
                group_len = group_len.saturating_add(1);
                end = j + 1;
                j += 1;
            } else if matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'+') && digits.len() < 20 {
                if group_len > 0 {
                    groups.push((group_len, last_sep));
                    group_len = 0;
                }
                last_sep = c;
                // Only single separators (", " and ") " are allowed pairs).
                let next = b.get(j + 1).copied().unwrap_or(0);
                if next.is_ascii_digit()
                    || (c == b')' && next == b' ')
                    || (c == b' ' && next == b'(')
                    || (c == b'+' && next.is_ascii_digit())
                {
                    j += 1;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        if group_len > 0 {
            groups.push((group_len, last_sep));
        }
        // A run glued to more of a token ("…-4489-adf9" in a UUID,
        // "v1.2.3") is part of an identifier, not a number on its own.
        let glued_right = end + 1 < b.len()
            && matches!(b[end], b'-' | b'.' | b'/' | b':')
            && b[end + 1].is_ascii_alphanumeric();
        // (An RFC 3966 URI's "tel:+44-…" is a number, not glued.)
        let glued_left = start >= 2
            && matches!(b[start - 1], b'-' | b'.' | b'/' | b':')
            && b[start - 2].is_ascii_alphanumeric()
            && !(b[start] == b'+' && b[start - 1] == b':');
        if !right_boundary(b, end) || digits.is_empty() || glued_left || glued_right {
            i = end.max(i + 1);
            continue;
        }
        if digits.overflowed() || groups.overflowed() {
            i = end.max(i + 1);
            continue;
        }
        let (digits, groups) = (digits.as_slice(), groups.as_slice());
        let text = &b[start..end];
        let n = digits.len();
        let uniform = |s: u8| groups.iter().skip(1).all(|g| g.1 == s);
        let plain = text.iter().all(u8::is_ascii_digit);
        let push = |out: &mut Vec<Match>, d: Detector| {
            out.push(Match {
                range: start..end,
                kind: MatchKindId::Builtin(d),
            })
        };
        // Card: 13–19 digits, one kind of separator (space or dash) or none, Luhn.
        let card_seps = plain
            || (!text.contains(&b'.')
                && !text.contains(&b'(')
                && !text.contains(&b'+')
                && (uniform(b' ') || uniform(b'-')));
        // No card number starts with 0 (ISO/IEC 7812: major industry
        // identifier 0 is not issued to cards); phone numbers dialled with
        // 00 do.
        // ddd-dd-dddd or ddd dd dddd: an SSN, or an ITIN.
        let ssn_shaped = n == 9
            && groups.len() == 3
            && groups[0].0 == 3
            && groups[1].0 == 2
            && groups[2].0 == 4
            && (uniform(b'-') || uniform(b' '));
        if n == 13
            && groups.len() == 2
            && groups[0].0 == 6
            && groups[1].1 == b'-'
            && crate::ids::korean_rrn(digits)
        {
            // Korea's YYMMDD-GNNNNNN (a 6-7 grouping no card uses).
            push(out, Detector::NationalId);
        } else if (13..=19).contains(&n) && card_seps && digits[0] != b'0' && luhn(digits) {
            push(out, Detector::CreditCard);
        } else if ssn_shaped && valid_ssn(digits) {
            push(out, Detector::Ssn);
        } else if ssn_shaped && crate::ids::itin(digits) {
            // The same shape, area 9XX: a US ITIN.
            push(out, Detector::TaxId);
        } else if is_phone(text, digits, groups) {
            let with_ext = start..phone_extension(b, end);
            out.push(Match {
                range: with_ext,
                kind: MatchKindId::Builtin(Detector::Phone),
            });
        }
        i = end.max(i + 1);
    }
}

/// The length of the ITU-T E.164 country code `d` begins with (ITU-T
/// Recommendation E.164, Annex to ITU Operational Bulletin: "List of ITU-T
/// Recommendation E.164 assigned country codes"), or `None` if no assigned
/// code begins it. One digit: 1 (NANP), 7; two: the 2x–9x codes assigned
/// whole; three: the zones assigned by three digits.
pub fn country_code_len(d: &[u8]) -> Option<usize> {
    /// Two-digit codes assigned whole.
    const TWO: &[u8] = &[
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
        56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
    ];
    /// Two-digit zones whose codes have three digits.
    const THREE: &[u8] = &[
        21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50, 59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99,
    ];
    match d {
        [b'1' | b'7', ..] => Some(1),
        [a @ b'2'..=b'9', b @ b'0'..=b'9', ..] => {
            let zone = (a - b'0') * 10 + (b - b'0');
            if TWO.contains(&zone) {
                Some(2)
            } else if THREE.contains(&zone) {
                Some(3)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A number written after an international prefix (`+`, `00`, or NANP's
/// `011`): `d` is what follows the prefix. An assigned country code, then
/// a national number that fits E.164 (15 digits in all at most); NANP (1)
/// and zone 7 numbers have exactly ten national digits, NANP's area code
/// not starting with 0 or 1.
fn international(d: &[u8]) -> bool {
    // A three-digit code needs three digits: "0021" is not one.
    let Some((cc, national)) = country_code_len(d).and_then(|cc| Some((cc, d.get(cc..)?))) else {
        return false;
    };
    match d[0] {
        b'1' => national.len() == 10 && !matches!(national[0], b'0' | b'1'),
        b'7' => national.len() == 10,
        _ => (6..=15 - cc).contains(&national.len()),
    }
}

/// Where a phone number ending at `end` ends once its extension is
/// taken too: " x123", " ext 123", " ext. 123", " extension 123"
/// (NANP's and libphonenumber's written forms) or RFC 3966's ";ext=123",
/// with 1–6 digits. `end` itself when none follows.
fn phone_extension(b: &[u8], end: usize) -> usize {
    let space = usize::from(b.get(end) == Some(&b' '));
    let rest = b.get(end + space..).unwrap_or_default();
    let Some(word) = [&b";ext="[..], b"extension", b"ext.", b"ext", b"x"]
        .into_iter()
        .find(|p| {
            rest.get(..p.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(p))
        })
    else {
        return end;
    };
    let after = &rest[word.len()..];
    let gap = usize::from(word != b";ext=" && after.first() == Some(&b' '));
    let run = after[gap..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let stop = end + space + word.len() + gap + run;
    if (1..=6).contains(&run) && right_boundary(b, stop) {
        stop
    } else {
        end
    }
}

fn is_phone(text: &[u8], digits: &[u8], groups: &[(u8, u8)]) -> bool {
    let n = digits.len();
    if text.contains(&b'.') && (text.contains(&b' ') || text.contains(&b'-')) {
        return false;
    }
    // International prefixes dialled as digits: 00 (ITU-T E.164's
    // recommended prefix, most of the world) and 011 (NANP), in groups.
    if groups.len() >= 2 && groups.iter().all(|g| g.0 <= 8) {
        if let [b'0', b'1', b'1', rest @ ..] = digits
            && international(rest)
        {
            return true;
        }
        if let [b'0', b'0', rest @ ..] = digits
            && international(rest)
        {
            return true;
        }
    }
    let lens =
        |want: &[u8]| groups.len() == want.len() && groups.iter().zip(want).all(|(g, w)| g.0 == *w);
    if text[0] == b'+' {
        // International: + country code, 8–15 digits in all, in groups.
        return (8..=15).contains(&n)
            && (groups.len() >= 2 && groups.iter().all(|g| g.0 <= 8)
                || groups.len() == 1 && n >= 10);
    }
    if groups.len() < 2 {
        return false;
    }
    match n {
        // US: (ddd) ddd-dddd, ddd-ddd-dddd, ddd.ddd.dddd, ddd ddd dddd.
        10 if lens(&[3, 3, 4]) && digits[0] != b'0' && digits[0] != b'1' => true,
        // National forms dialled with a trunk 0 (UK, France, Germany,
        // Australia, Japan…): a 2–5 digit area code that starts with one
        // 0, then groups of 2–8 digits; 9–12 digits in all (E.164's 15 less
        // the shortest country codes).
        9..=12
            if digits[0] == b'0'
                && digits[1] != b'0'
                && !text.contains(&b'.')
                && (2..=5).contains(&groups[0].0)
                && groups.iter().skip(1).all(|g| (2..=8).contains(&g.0)) =>
        {
            true
        }
        // US with a leading 1.
        11 if digits[0] == b'1' && lens(&[1, 3, 3, 4]) => true,
        _ => false,
    }
}

// ---------------------------------------------------------------- IPv4

fn ipv4s(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit()
            || !(i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        {
            i += 1;
            continue;
        }
        let start = i;
        let mut octets = 0;
        let mut ok = true;
        loop {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() && i - s < 4 {
                i += 1;
            }
            let part = &b[s..i];
            if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
                ok = false;
                break;
            }
            let v = part.iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
            if v > 255 {
                ok = false;
                break;
            }
            octets += 1;
            if octets < 4 && i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let end = i;
        let next_ok = end >= b.len()
            || !(b[end].is_ascii_alphanumeric()
                || (b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit)));
        if ok && octets == 4 && next_ok {
            f(start..end);
        }
        // Skip the rest of this dotted run.
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        i = i.max(start + 1);
    }
}

// ---------------------------------------------------------------- IPv6

fn ipv6s(s: &str, f: &mut dyn FnMut(Range<usize>)) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_hexdigit() || c == b':')
            || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b':'))
        {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b':' || b[i] == b'.') {
            i += 1;
        }
        let mut end = i;
        // Trailing sentence punctuation.
        while end > start && b[end - 1] == b'.' {
            end -= 1;
        }
        if end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            continue;
        }
        let cand = &s[start..end];
        if cand.bytes().filter(|&c| c == b':').count() < 2 {
            continue;
        }
        let groups: Vec<&str> = cand.split(':').collect();
        let hexy =
            |g: &str| !g.is_empty() && g.len() <= 4 && g.bytes().all(|c| c.is_ascii_hexdigit());
        // A full address (std's parser), or a truncated one with at least
        // four groups, one of them 3–4 characters long (so times like
        // 12:30:45 and MAC-like pairs are not taken).
        let valid = cand.parse::<Ipv6Addr>().is_ok() && (cand.contains("::") || groups.len() == 8);
        let truncated = groups.len() >= 4
            && groups.iter().all(|g| hexy(g))
            && groups.iter().any(|g| g.len() >= 3);
        if valid || truncated {
            f(start..end);
        }
    }
}

// ---------------------------------------------------------------- IBAN

/// IBAN lengths per country (ISO 13616 registry, common countries).
fn iban_length(cc: &[u8]) -> Option<usize> {
    Some(match cc {
        b"AD" => 24,
        b"AE" => 23,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NL" => 18,
        b"NO" => 15,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"SA" => 24,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VG" => 24,
        b"XK" => 20,
        _ => return None,
    })
}

/// ISO 7064 mod-97-10 over an IBAN (country code and check digits moved to the end).
pub fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ibans(b: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    let mut i = 0;
    // IBANs are at most 34 characters.
    let mut compact = Buf::<u8, 34>::new();
    while i + 15 <= b.len() {
        let head = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit();
        if !head || !left_boundary(b, i) {
            i += 1;
            continue;
        }
        let Some(len) = iban_length(&b[i..i + 2]) else {
            i += 1;
            continue;
        };
        // Compact, or in groups of four separated by single spaces.
        compact.clear();
        let mut j = i;
        while j < b.len() && compact.len() < len {
            let c = b[j];
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                compact.push(c);
                j += 1;
            } else if c == b' '
                && compact.len().is_multiple_of(4)
                && !compact.is_empty()
                && j + 1 < b.len()
                && b[j + 1].is_ascii_alphanumeric()
            {
                j += 1;
            } else {
                break;
            }
        }
        if compact.len() == len && right_boundary(b, j) && iban_mod97(compact.as_slice()) {
            f(i..j);
            i = j;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn engine() -> &'static Engine {
        static E: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
        E.get_or_init(|| Engine::new().unwrap())
    }

    /// The fallback engine's hits: an independent search (a lazy DFA or
    /// PikeVM, not the dense DFA and its flattened table).
    fn ac_hits(e: &Engine, s: &[u8]) -> Vec<(usize, usize, usize)> {
        e.fallback()
            .unwrap()
            .find_iter(s)
            .map(|m| {
                (
                    m.start(),
                    m.end(),
                    e.defs[m.pattern().as_usize()].0 as usize,
                )
            })
            .collect()
    }

    fn dfa_hits(e: &Engine, s: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        find_triggers(e, s, &mut v);
        v.iter()
            .map(|h| (h.start, h.end, h.trigger as usize))
            .collect()
    }

    /// The phone numbers `scan_builtin` finds in `s`, as text.
    fn phones(s: &str) -> Vec<&str> {
        let (mut hits, mut out) = (Vec::new(), Vec::new());
        scan_builtin(engine(), s, &mut hits, &mut out);
        out.sort_by_key(|m| m.range.start);
        out.iter()
            .filter(|m| matches!(m.kind, MatchKindId::Builtin(Detector::Phone)))
            .map(|m| &s[m.range.clone()])
            .collect()
    }

    #[test]
    fn phone_extensions_are_part_of_the_number() {
        // NANP's written extensions, and RFC 3966 section 5.1's ";ext=".
        assert_eq!(
            phones("desk (212) 555-0188 ext. 12, cell +1-415-555-0132;ext=77."),
            ["(212) 555-0188 ext. 12", "+1-415-555-0132;ext=77"]
        );
        assert_eq!(
            phones("020 7946 0958 x 3 or 020 7946 0959 Extension 1234"),
            ["020 7946 0958 x 3", "020 7946 0959 Extension 1234"]
        );
        // Not an extension: a word that goes on, or more than 6 digits.
        assert_eq!(
            phones("call 212-555-0188 xray, 212-555-0189 x1234567"),
            ["212-555-0188", "212-555-0189"]
        );
    }

    #[test]
    fn short_international_prefixes_do_not_panic() {
        // "00" then a two-digit start of a three-digit country code
        // (zone 21): found by `digit_chains_find_every_run`.
        for s in ["0021", "00 21", "0021 (", "011 35", "+00 21-"] {
            let mut out = Vec::new();
            runs_in(s.as_bytes(), 0, s.len(), &mut out);
            assert!(phones(s).is_empty(), "{s}");
        }
        assert!(!international(b"21") && !international(b"2") && !international(b""));
        // Every string of up to six bytes over digits that start country
        // codes and the separators: the number rules never panic.
        const ALPHABET: &[u8] = b"01257 +-(";
        let mut s = Vec::new();
        let mut out = Vec::new();
        for len in 0..=6u32 {
            for mut k in 0..ALPHABET.len().pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push(ALPHABET[k % ALPHABET.len()]);
                    k /= ALPHABET.len();
                }
                runs_in(&s, 0, s.len(), &mut out);
            }
        }
        // Through the whole scan: a chain with eight digits, where the
        // run "00 21" ends at the double space.
        assert!(phones("call 00 21  12345678 now").is_empty());
    }

    #[test]
    fn tel_uris_and_long_national_groups() {
        // RFC 3966: "tel:" then a global number.
        assert_eq!(phones("tel:+44-20-7946-0959;"), ["+44-20-7946-0959"]);
        // Berlin (030) with a seven- and an eight-digit subscriber number;
        // Tokyo; a French mobile.
        assert_eq!(
            phones("030 4270443, 030 42704431, 03-1234-5678, 06 12 34 56 78"),
            [
                "030 4270443",
                "030 42704431",
                "03-1234-5678",
                "06 12 34 56 78"
            ]
        );
        // Still kept: a 00-led reference, and a run glued to a word.
        assert!(phones("ref 0012 3456 7890 and id:030-4270443").is_empty());
    }

    /// Text dense in trigger fragments, in mixed case.
    fn trigger_soup() -> impl Strategy<Value = String> {
        let parts = prop::sample::select(vec![
            "@",
            "://",
            "AKIA",
            "akia",
            "ghp_",
            "glpat-",
            "xoxb-",
            "sk_live_",
            "AIza",
            "-----BEGIN",
            "Bearer ",
            "basic ",
            "Token ",
            "token",
            "passWord",
            "pwd",
            "secret",
            "api_key",
            "apikey",
            "eyJ",
            "EYJ",
            "sk",
            "SK",
            "key-",
            "sg.",
            "SG.",
            "-us",
            "q~",
            ":AA",
            "T3BlbkFJ",
            "dop_v1_",
            "sk-ant-api03-",
            "npm_",
            "hf_",
            "ssws ",
            "0",
            "f",
            "9",
            "a",
            "to",
            "ke",
            "n ",
            " ",
            "-",
            "_",
            "x",
            "\"",
            ":",
            "1",
        ]);
        prop::collection::vec(parts, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        /// The dense DFA finds exactly the fallback engine's leftmost-first hits.
        #[test]
        fn dfa_equals_aho_corasick(s in trigger_soup()) {
            let e = engine();
            prop_assert_eq!(dfa_hits(e, s.as_bytes()), ac_hits(e, s.as_bytes()));
        }

        #[test]
        fn dfa_equals_aho_corasick_any_bytes(s in prop::collection::vec(any::<u8>(), 0..200)) {
            let e = engine();
            prop_assert_eq!(dfa_hits(e, &s), ac_hits(e, &s));
        }

        /// Timestamps and UUIDs skip the detectors: rightly, since the
        /// detectors find nothing in them.
        #[test]
        fn inert_shapes_have_no_matches(
            shape in prop_oneof![
                "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                // Digit-heavy UUIDs, the likeliest to look like numbers.
                "[0-9]{8}-[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{12}",
            ]
        ) {
            prop_assert!(inert(shape.as_bytes()));
            // The full scan, without the shortcut, finds nothing either.
            let mut hits = Vec::new();
            let census = find_triggers(engine(), shape.as_bytes(), &mut hits);
            let mut out = Vec::new();
            scan_with_hits(&shape, &hits, &census, &mut out);
            prop_assert!(out.is_empty(), "{shape}: {out:?}");
        }

        /// A password in a URL is found whatever printable characters it
        /// holds (RFC 3986 reserved ones included, unencoded), with any
        /// user, host, port and path: the masked span starts at the user
        /// and covers the whole password.
        #[test]
        fn url_passwords_are_found_whatever_they_hold(
            scheme in "(postgres|mysql|redis|amqp|mongodb|https|jdbc:postgresql)",
            user in "[a-z0-9_]{0,8}",
            pass in "[!-~]{1,24}",
            host in "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,6}){0,2}",
            port in proptest::option::of(1u16..),
            path in "(/[a-z0-9@:._-]{0,10}){0,3}",
        ) {
            prop_assume!(!pass.bytes().any(|c| matches!(c, b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')));
            // The one ambiguity, read as a port: digits alone, or digits
            // then a path, a query or a fragment (`user:8080/…`).
            let d = pass.bytes().take_while(u8::is_ascii_digit).count();
            prop_assume!(!(d > 0 && matches!(pass.as_bytes().get(d), Some(b'/' | b'?' | b'#') | None)));
            let port = port.map_or(String::new(), |p| format!(":{p}"));
            let text = format!("connect {scheme}://{user}:{pass}@{host}{port}{path} now");
            let b = text.as_bytes();
            let mut found = Vec::new();
            url_credentials(b, &mut |r| found.push(r));
            let start = text.find("://").unwrap_or(0) + 3;
            let pass_end = start + user.len() + 1 + pass.len();
            prop_assert!(
                found.iter().any(|r| r.start == start && r.end >= pass_end),
                "{text}: {found:?}"
            );
        }

        /// Walking only the chains with eight digits finds what walking
        /// every position does.
        #[test]
        fn digit_chains_find_every_run(s in "[0-9 .()+/a_-]{0,48}") {
            let b = s.as_bytes();
            let (mut chains, mut all) = (Vec::new(), Vec::new());
            digit_runs(b, &mut chains);
            runs_in(b, 0, b.len(), &mut all);
            let key = |m: &Match| (m.range.start, m.range.end, format!("{:?}", m.kind));
            prop_assert_eq!(
                chains.iter().map(key).collect::<Vec<_>>(),
                all.iter().map(key).collect::<Vec<_>>()
            );
        }

        /// `occurrences` finds what `memchr::memmem::find_iter` does.
        #[test]
        fn occurrences_match_memmem(hay in "[ab:/]{0,40}", needle in "[ab:/]{1,4}") {
            prop_assert_eq!(
                occurrences(hay.as_bytes(), needle.as_bytes()).collect::<Vec<_>>(),
                memchr::memmem::find_iter(hay.as_bytes(), needle.as_bytes()).collect::<Vec<_>>()
            );
        }

        /// The one-pass census counts what five separate counts do.
        #[test]
        fn census_counts(s in prop::collection::vec(any::<u8>(), 0..300)) {
            let c = Census::of(&s);
            prop_assert_eq!(c.digits, s.iter().filter(|c| c.is_ascii_digit()).count());
            prop_assert_eq!(c.dots, s.iter().filter(|&&c| c == b'.').count());
            prop_assert_eq!(c.colons, s.iter().filter(|&&c| c == b':').count());
            prop_assert_eq!(c.upper, s.iter().filter(|c| c.is_ascii_uppercase()).count());
            prop_assert_eq!(c.dashes, s.iter().filter(|&&c| c == b'-').count());
            // The trigger pass counts the same, whether or not it stops
            // early at a trigger.
            let mut hits = Vec::new();
            prop_assert_eq!(find_triggers(engine(), &s, &mut hits), c);
        }
    }

    /// Known answers from the ITU-T list of E.164 assigned country codes
    /// (Annex to ITU Operational Bulletin No. 1125, 2017, and later
    /// amendments): NANP 1, Russia 7, Egypt 20, UK 44, Germany 49, Morocco
    /// 212, Ireland 353, Hong Kong 852, UAE 971; 28, 83 and 89 are spare
    /// (unassigned), and no code starts with 0.
    #[test]
    fn e164_country_codes() {
        for (d, want) in [
            ("14155552671", Some(1)),
            ("74951234567", Some(1)),
            ("20223456789", Some(2)),
            ("442079460958", Some(2)),
            ("4930901820", Some(2)),
            ("212522123456", Some(3)),
            ("35312345678", Some(3)),
            ("85212345678", Some(3)),
            ("971412345678", Some(3)),
            ("2812345678", None),
            ("8312345678", None),
            ("8912345678", None),
            ("0441234567", None),
        ] {
            assert_eq!(country_code_len(d.as_bytes()), want, "{d}");
        }
        // After the prefix: NANP numbers have ten national digits, the
        // area code not starting with 0 or 1.
        assert!(international(b"14155552671"));
        assert!(!international(b"1234567890"));
        assert!(!international(b"10155552671"));
        assert!(international(b"442079460958"));
        assert!(!international(b"44207"));
    }

    #[test]
    fn census_of_long_input_does_not_wrap() {
        let s = vec![b'7'; 200_000];
        assert_eq!(Census::of(&s).digits, 200_000);
        let mut hits = Vec::new();
        assert_eq!(find_triggers(engine(), &s, &mut hits).digits, 200_000);
        // Every lane, at and around the most one sum of lanes covers.
        for n in [LANE_MAX - 1, LANE_MAX, LANE_MAX + 1, 3 * LANE_MAX + 7] {
            let s: Vec<u8> = b"7.:A-".iter().copied().cycle().take(5 * n).collect();
            let want = Census {
                digits: n,
                dots: n,
                colons: n,
                upper: n,
                dashes: n,
            };
            assert_eq!(Census::of(&s), want);
            assert_eq!(find_triggers(engine(), &s, &mut hits), want);
            let one: Vec<u8> = vec![b'-'; n];
            assert_eq!(find_triggers(engine(), &one, &mut hits).dashes, n);
        }
    }
}
