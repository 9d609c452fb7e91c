//! `cairn-masking`: event + policy + keys + server time → canonical masked
//! leaf. Pure: no I/O, no clock, no randomness of its own (the caller
//! passes the time and a salt source).
//!
//! Leaf format v1 (byte for byte in docs/design/masking.md): canonical JSON
//! with sorted keys,
//!
//! ```text
//! {"body":<masked event>,"masked":[["<JSON pointer>","<detector>","<action>"],…],"policy":"<hex digest>","ts":<ms>,"v":1}
//! ```
//!
//! ```
//! use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let masker = Masker::new(Policy::default_policy()?, &TokenKeys::new(), "example.com/log")?;
//! let event = br#"{"user":"ana@example.com","action":"login"}"#;
//! // Salts are only drawn for `commit` actions; the caller supplies them.
//! let masked = masker.mask(event, ContentType::Json, 1_767_225_600_000, &mut || [0u8; 16])?;
//! assert_eq!(masked.body(), br#"{"action":"login","user":"[REDACTED:email]"}"#);
//! assert_eq!(masked.decisions[0].detector, "email");
//! # Ok(())
//! # }
//! ```

pub mod detect;
mod fields;
mod json;
pub mod keys;
pub mod policy;
pub mod strategy;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use zeroize::Zeroizing;

pub use detect::{DETECTOR_SET_VERSION, Detector};
pub use keys::{KeyFileError, TokenKeys};
pub use policy::{Action, Mode, Policy, PolicyError};
pub use strategy::{commitment, verify_opening};

use detect::{Engine, Hit, Match, MatchKindId};
use json::{Reader, key_cmp, push_pointer, write_number, write_plain_str, write_str};

/// Token keys derived per detector name.
type DerivedKeys = HashMap<String, Zeroizing<[u8; 32]>>;

/// What the event bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// A JSON object.
    Json,
    /// UTF-8 text.
    Text,
}

/// Why an event could not be masked. Never contains event content: only
/// byte offsets and limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// Not UTF-8.
    #[error("event is not valid UTF-8 (byte {offset})")]
    NotUtf8 {
        /// First bad byte.
        offset: usize,
    },
    /// Malformed JSON.
    #[error("invalid JSON at byte {offset}: {what}")]
    Json {
        /// Where.
        offset: usize,
        /// What (a fixed description, never content).
        what: &'static str,
    },
    /// A JSON event must be an object.
    #[error("a JSON event must be an object")]
    NotAnObject,
    /// Nested deeper than the policy allows.
    #[error("JSON nesting deeper than the limit of {limit}")]
    TooDeep {
        /// The policy's `max_depth`.
        limit: usize,
    },
    /// A key appears twice in one object.
    #[error("duplicate key in the object starting at byte {offset}")]
    DuplicateKey {
        /// The object's first byte.
        offset: usize,
    },
    /// The policy tokenizes but no token key is loaded.
    #[error("the policy uses the \"token\" action but no token key is configured (--key-file)")]
    MissingTokenKey,
    /// The detector engine could not be built.
    #[error("internal: cannot build the detector engine: {0}")]
    Engine(String),
}

/// A source of fresh 128-bit salts for commitments (the server passes an
/// OS-backed RNG; tests pass a seeded one).
pub trait SaltSource {
    /// A fresh salt.
    fn salt(&mut self) -> [u8; 16];
}

impl<F: FnMut() -> [u8; 16]> SaltSource for F {
    fn salt(&mut self) -> [u8; 16] {
        self()
    }
}

/// One masking decision, recorded in the leaf's `masked` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// RFC 6901 pointer into the masked body (`""` for a text event).
    pub pointer: String,
    /// Detector or field rule name (borrowed for the built-in detectors).
    pub detector: Cow<'static, str>,
    /// Action name.
    pub action: &'static str,
}

/// The opening of a `commit` mask: returned to the appender only.
#[derive(Clone, PartialEq, Eq)]
pub struct Opening {
    /// Where the commitment is.
    pub pointer: String,
    /// Which detector.
    pub detector: String,
    /// The commitment string as it appears in the leaf (`cmt:…`).
    pub commitment: String,
    /// The salt.
    pub salt: [u8; 16],
    /// The original value.
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opening")
            .field("pointer", &self.pointer)
            .field("detector", &self.detector)
            .field("commitment", &self.commitment)
            .finish_non_exhaustive()
    }
}

/// The result of masking one event.
#[derive(Clone, Debug)]
pub struct Masked {
    /// The canonical leaf bytes.
    pub leaf: Vec<u8>,
    /// Where the masked event (`body`) sits inside `leaf`.
    pub body: Range<usize>,
    /// What was masked.
    pub decisions: Vec<Decision>,
    /// Openings of commitments.
    pub openings: Vec<Opening>,
}

impl Masked {
    /// The masked event alone.
    pub fn body(&self) -> &[u8] {
        &self.leaf[self.body.clone()]
    }
}

/// A compiled policy with its keys: masks events. Cheap to share across
/// threads (`&Masker` is all `mask` needs).
pub struct Masker {
    policy: Policy,
    engine: Engine,
    fields: fields::FieldRules,
    digest: String,
    /// Current epoch and derived key per detector name.
    token: Option<(u32, DerivedKeys)>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("policy", &self.digest)
            .field("token_epoch", &self.token.as_ref().map(|t| t.0))
            .finish_non_exhaustive()
    }
}

/// How values at a location are treated.
#[derive(Clone, Copy)]
enum Treat<'p> {
    /// Scan strings with the detectors.
    Scan,
    /// Mask the whole value with this detector name and action.
    Whole(Who<'p>, Action),
    /// Leave alone.
    Keep,
    /// Allowlist mode, no rule: the policy's `unlisted` action.
    Unlisted,
}

/// A detector, field class or rule name.
#[derive(Clone, Copy)]
enum Who<'p> {
    Builtin(Detector),
    Named(&'p str),
}

impl Who<'_> {
    fn name(&self) -> &str {
        match self {
            Who::Builtin(d) => d.name(),
            Who::Named(n) => n,
        }
    }
    fn builtin(&self) -> Option<Detector> {
        match self {
            Who::Builtin(d) => Some(*d),
            Who::Named(_) => None,
        }
    }
}

impl Masker {
    /// Compiles a masker. `origin` scopes token keys, so equal values get
    /// different tokens in different logs.
    pub fn new(policy: Policy, keys: &TokenKeys, origin: &str) -> Result<Masker, MaskError> {
        let engine = Engine::new().map_err(|e| MaskError::Engine(e.to_string()))?;
        let field_rules =
            fields::FieldRules::new().map_err(|e| MaskError::Engine(e.to_string()))?;
        let token = match keys.current() {
            Some((epoch, master)) => {
                let mut m = HashMap::new();
                for d in Detector::ALL {
                    m.insert(d.name().to_owned(), keys::derive(master, origin, d.name()));
                }
                for c in &policy.custom {
                    m.insert(c.name.clone(), keys::derive(master, origin, &c.name));
                }
                for f in &policy.fields {
                    m.insert(
                        f.detector.clone(),
                        keys::derive(master, origin, &f.detector),
                    );
                }
                m.insert("unlisted".into(), keys::derive(master, origin, "unlisted"));
                Some((epoch, m))
            }
            None => None,
        };
        if token.is_none() && policy.uses(|a| a == Action::Token) {
            return Err(MaskError::MissingTokenKey);
        }
        Ok(Masker {
            digest: policy.digest_hex(),
            policy,
            engine,
            fields: field_rules,
            token,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy digest recorded in every leaf.
    pub fn policy_digest(&self) -> &str {
        &self.digest
    }

    /// Masks one event into a leaf. Deterministic for the same inputs
    /// (including the salts drawn).
    pub fn mask(
        &self,
        event: &[u8],
        content_type: ContentType,
        ts_ms: u64,
        salts: &mut dyn SaltSource,
    ) -> Result<Masked, MaskError> {
        let text = std::str::from_utf8(event).map_err(|e| MaskError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        with_per_thread(|pt| self.mask_str(text, content_type, ts_ms, salts, pt))
    }

    fn mask_str(
        &self,
        text: &str,
        content_type: ContentType,
        ts_ms: u64,
        salts: &mut dyn SaltSource,
        pt: &mut PerThread,
    ) -> Result<Masked, MaskError> {
        let event = text.as_bytes();
        let bufs = std::mem::take(&mut pt.bufs);
        let stacks = std::mem::take(&mut pt.stacks);
        let mut w = Walk {
            keys_seen: 0,
            memo: &mut pt.memo,
            m: self,
            // The body, then the decisions, the digest and the time: room
            // for a few decisions without regrowing.
            out: Vec::with_capacity(event.len() + event.len() / 4 + 320),
            segs: recycle(stacks.segs),
            path: recycle(stacks.path),
            decisions: Vec::new(),
            openings: Vec::new(),
            salts,
            matches: bufs.matches,
            members: recycle(stacks.members),
            order: bufs.order,
            scratch: bufs.scratch,
            text: bufs.text,
            hits: bufs.hits,
        };
        w.out.extend_from_slice(b"{\"body\":");
        let body_start = w.out.len();
        match content_type {
            ContentType::Json => {
                let mut r = Reader::new(text);
                r.ws();
                if r.peek() != Some(b'{') {
                    return Err(MaskError::NotAnObject);
                }
                w.value(&mut r, Treat::Scan, 0)?;
                r.ws();
                if r.i != r.s.len() {
                    return Err(MaskError::Json {
                        offset: r.i,
                        what: "trailing characters after the event",
                    });
                }
            }
            ContentType::Text => {
                w.string(text, Treat::Scan, Some(0));
            }
        }
        let body = body_start..w.out.len();
        let Walk {
            mut out,
            mut decisions,
            openings,
            mut hits,
            mut matches,
            mut scratch,
            mut order,
            mut text,
            segs,
            path,
            members,
            ..
        } = w;
        pt.stacks = Stacks {
            segs: recycle(segs),
            path: recycle(path),
            members: recycle(members),
        };
        // Give the scratch buffers back, emptied, for the thread's next
        // event. What their memory last held is never raw PII: `hits` and
        // `matches` are offsets, `scratch` and `text` held masked output.
        hits.clear();
        matches.clear();
        scratch.clear();
        order.clear();
        text.clear();
        pt.bufs = Bufs {
            hits,
            matches,
            scratch,
            order,
            text,
        };
        // One order whatever the input's key order: by pointer, then name.
        decisions.sort_unstable_by(|a, b| {
            (a.pointer.as_str(), &*a.detector, a.action).cmp(&(
                b.pointer.as_str(),
                &*b.detector,
                b.action,
            ))
        });
        out.extend_from_slice(b",\"masked\":[");
        for (i, d) in decisions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            write_str(&mut out, &d.pointer);
            out.push(b',');
            write_str(&mut out, &d.detector);
            out.push(b',');
            write_str(&mut out, d.action);
            out.push(b']');
        }
        out.extend_from_slice(b"],\"policy\":\"");
        out.extend_from_slice(self.digest.as_bytes());
        out.extend_from_slice(b"\",\"ts\":");
        out.extend_from_slice(itoa::Buffer::new().format(ts_ms).as_bytes());
        out.extend_from_slice(b",\"v\":1}");
        Ok(Masked {
            leaf: out,
            body,
            decisions,
            openings,
        })
    }
}

/// What a thread keeps between events: the field-name memo, and the
/// walk's scratch buffers (empty between events; kept for their capacity,
/// so an event allocates only what it returns).
#[derive(Default)]
struct PerThread {
    memo: fields::Memo,
    bufs: Bufs,
    stacks: Stacks<'static>,
}

/// The walk's stacks, kept empty between events. Their elements borrow
/// from the event, so they are kept as `'static` and retyped each event by
/// [`recycle`].
#[derive(Default)]
struct Stacks<'a> {
    segs: Vec<Seg<'a>>,
    path: Vec<Cow<'a, str>>,
    members: Vec<Member<'a>>,
}

/// Empties `v` and hands its allocation on as a vector of `U`, a type of
/// the same size and alignment (here: the same type under another
/// lifetime). The standard library collects a vector's `into_iter` in
/// place when the layouts match, so no allocation happens; were it ever
/// to, this would cost one allocation, nothing more.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    // The iterator is empty: the closure never runs.
    v.into_iter().map(|_| unreachable!()).collect()
}

/// See [`PerThread`].
#[derive(Default)]
struct Bufs {
    hits: Vec<Hit>,
    matches: Vec<Match>,
    scratch: Vec<u8>,
    order: Vec<u128>,
    text: String,
}

thread_local! {
    static PER_THREAD: std::cell::RefCell<PerThread> = std::cell::RefCell::new(PerThread::default());
}

/// Runs `f` with this thread's state, borrowed once per event. Should it
/// already be in use (a masker called from inside a masker: never today),
/// `f` gets a fresh one.
fn with_per_thread<R>(f: impl FnOnce(&mut PerThread) -> R) -> R {
    PER_THREAD.with(|m| match m.try_borrow_mut() {
        Ok(mut pt) => f(&mut pt),
        Err(_) => f(&mut PerThread::default()),
    })
}

/// A member written into the output: its key, its first 8 bytes as a sort
/// prefix, and where its bytes (`"key":value`) are.
struct Member<'a> {
    key: Cow<'a, str>,
    prefix: SortPrefix,
    start: usize,
    end: usize,
}

/// The first 8 bytes of a key, big-endian and zero-padded, for ordering
/// members without touching their strings. Only decisive when the two
/// prefixes differ and `exact` holds for both: no byte ≥ 0xEE, where UTF-8
/// byte order and UTF-16 order can disagree (see [`key_cmp`]).
#[derive(Clone, Copy)]
struct SortPrefix {
    bytes: u64,
    exact: bool,
}

impl SortPrefix {
    fn of(key: &str) -> SortPrefix {
        let b = key.as_bytes();
        // One load for long keys; short ones are shifted in byte by byte
        // (a small copy into an array, then a wide load, stalls on store
        // forwarding).
        let bytes = match b.first_chunk::<8>() {
            Some(w) => u64::from_be_bytes(*w),
            None => b
                .iter()
                .enumerate()
                .fold(0u64, |v, (i, &c)| v | u64::from(c) << (56 - 8 * i)),
        };
        // No byte has its top bit set: plain ASCII, exact at once.
        let exact =
            bytes & 0x8080_8080_8080_8080 == 0 || bytes.to_be_bytes().iter().all(|&c| c < 0xEE);
        SortPrefix { bytes, exact }
    }
}

/// Canonical member order (RFC 8785 §3.2.3): UTF-16 code units of the keys.
fn member_cmp(a: &Member<'_>, b: &Member<'_>) -> std::cmp::Ordering {
    if a.prefix.bytes != b.prefix.bytes && a.prefix.exact && b.prefix.exact {
        a.prefix.bytes.cmp(&b.prefix.bytes)
    } else {
        key_cmp(&a.key, &b.key)
    }
}

/// `Cow::clone`, inlined: a borrowed key (nearly all of them) is two words.
#[inline]
fn dup<'a>(c: &Cow<'a, str>) -> Cow<'a, str> {
    match c {
        Cow::Borrowed(b) => Cow::Borrowed(b),
        Cow::Owned(o) => Cow::Owned(o.clone()),
    }
}

struct Walk<'a, 'm, 's> {
    m: &'m Masker,
    /// This thread's field-name memo.
    memo: &'s mut fields::Memo,
    /// How many keys have been classified so far in this event.
    keys_seen: usize,
    out: Vec<u8>,
    /// Where the walk is: the JSON pointer's segments, built into a string
    /// only when a decision or opening needs it.
    segs: Vec<Seg<'a>>,
    path: Vec<Cow<'a, str>>,
    decisions: Vec<Decision>,
    openings: Vec<Opening>,
    salts: &'s mut dyn SaltSource,
    matches: Vec<Match>,
    /// Sort keys for the object being closed (see [`Walk::object`]).
    order: Vec<u128>,
    /// The members of every object being walked: an object's own are
    /// those above the length it found on entry.
    members: Vec<Member<'a>>,
    scratch: Vec<u8>,
    /// A masked string being built (see [`Walk::string`]).
    text: String,
    /// Triggers found in the string being scanned (reused buffer).
    hits: Vec<Hit>,
}

/// One step of a JSON pointer: an object key (as written, i.e. masked)
/// or an array index.
enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

impl<'a, 'm> Walk<'a, 'm, '_> {
    /// The RFC 6901 pointer to the current value.
    fn pointer(&self) -> String {
        let mut p = String::with_capacity(self.segs.len() * 12);
        for s in &self.segs {
            match s {
                Seg::Key(k) => push_pointer(&mut p, k),
                Seg::Index(i) => {
                    p.push('/');
                    p.push_str(itoa::Buffer::new().format(*i));
                }
            }
        }
        p
    }

    fn decide(&mut self, who: Who<'_>, action: Action) {
        let action = action.name();
        let pointer = self.pointer();
        let name = who.name();
        if !self
            .decisions
            .iter()
            .any(|d| d.pointer == pointer && d.detector == name && d.action == action)
        {
            self.decisions.push(Decision {
                pointer,
                detector: match who {
                    Who::Builtin(d) => Cow::Borrowed(d.name()),
                    Who::Named(n) => Cow::Owned(n.to_owned()),
                },
                action,
            });
        }
    }

    /// Applies a (non-scan) action to a whole value or a span, appending
    /// what it becomes to `dst`. Returns false if it is dropped.
    fn apply(&mut self, who: Who<'_>, action: Action, value: &str, dst: &mut String) -> bool {
        let name = who.name();
        match action {
            Action::Keep | Action::Detect => {
                dst.push_str(value);
                return true;
            }
            Action::Drop => {}
            Action::Redact => strategy::redact_into(dst, name),
            Action::Partial {
                keep_first,
                keep_last,
            } => dst.push_str(&strategy::partial(
                who.builtin(),
                value,
                keep_first,
                keep_last,
            )),
            Action::Token => match self
                .m
                .token
                .as_ref()
                .and_then(|(e, k)| Some((*e, k.get(name)?)))
            {
                Some((epoch, k)) => dst.push_str(&strategy::token(k, epoch, value)),
                // No key for this name; and Masker::new refuses token
                // policies without keys.
                None => strategy::redact_into(dst, name),
            },
            Action::Commit => {
                let salt = self.salts.salt();
                let c = strategy::commitment(&salt, value);
                dst.push_str(&c);
                self.openings.push(Opening {
                    pointer: self.pointer(),
                    detector: name.to_owned(),
                    commitment: c,
                    salt,
                    value: Zeroizing::new(value.to_owned()),
                });
            }
            Action::Generalize => {
                match who.builtin().and_then(|d| strategy::generalize(d, value)) {
                    Some(g) => dst.push_str(&g),
                    None => strategy::redact_into(dst, name),
                }
            }
        }
        self.decide(who, action);
        action != Action::Drop
    }

    /// Masks a string value per `treat`. Returns false if it is dropped.
    /// `at` is the string's offset in the event when it is borrowed from
    /// it (no escapes).
    fn string(&mut self, s: &str, treat: Treat<'_>, at: Option<usize>) -> bool {
        // What the value becomes, when it changes, is built in the walk's
        // text buffer (lent out here, given back below).
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let (changed, kept) = match treat {
            Treat::Keep => (false, true),
            Treat::Whole(who, action) => (true, self.apply(who, action, s, &mut text)),
            Treat::Unlisted => {
                let kept = self.apply(Who::Named("unlisted"), self.m.policy.unlisted, s, &mut text);
                (true, kept)
            }
            Treat::Scan => (self.scan(s, &mut text), true),
        };
        if kept {
            match (changed, at) {
                (true, _) => write_str(&mut self.out, &text),
                (false, Some(_)) => write_plain_str(&mut self.out, s),
                (false, None) => write_str(&mut self.out, s),
            }
        }
        self.text = text;
        kept
    }

    /// Runs the detectors over `s`. If anything matched, appends the masked
    /// string to `dst` and returns true.
    fn scan(&mut self, s: &str, dst: &mut String) -> bool {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        for (i, c) in self.m.policy.custom.iter().enumerate() {
            for mm in c.regex.find_iter(s) {
                if validate(c.validator, mm.as_str()) && !mm.range().is_empty() {
                    matches.push(Match {
                        range: mm.range(),
                        kind: MatchKindId::Custom(i),
                    });
                }
            }
        }
        detect::scan_builtin(&self.m.engine, s, &mut self.hits, &mut matches);
        if matches.is_empty() {
            self.matches = matches;
            return false;
        }
        // Earliest first; at one start, longest first; then customs, then
        // built-ins in declaration order (specific before generic).
        let rank = |k: &MatchKindId| match k {
            MatchKindId::Custom(i) => *i,
            MatchKindId::Builtin(d) => 1000 + *d as usize,
        };
        matches.sort_by(|a, b| {
            a.range
                .start
                .cmp(&b.range.start)
                .then(b.range.end.cmp(&a.range.end))
                .then(rank(&a.kind).cmp(&rank(&b.kind)))
        });
        dst.reserve(s.len() + 16);
        let mut at = 0;
        for mm in &matches {
            if mm.range.start < at {
                continue;
            }
            let (who, action) = match mm.kind {
                MatchKindId::Builtin(d) => (Who::Builtin(d), self.m.policy.action_for(d)),
                MatchKindId::Custom(i) => {
                    let c = &self.m.policy.custom[i];
                    (Who::Named(c.name.as_str()), c.action)
                }
            };
            dst.push_str(&s[at..mm.range.start]);
            // A dropped span leaves nothing behind.
            self.apply(who, action, &s[mm.range.clone()], dst);
            at = mm.range.end;
        }
        dst.push_str(&s[at..]);
        self.matches = matches;
        true
    }

    /// Reads and writes one value. Returns false if it is dropped.
    fn value(
        &mut self,
        r: &mut Reader<'a>,
        treat: Treat<'_>,
        depth: usize,
    ) -> Result<bool, MaskError> {
        r.ws();
        match r.peek() {
            Some(b'{') => self.object(r, treat, depth + 1).map(|()| true),
            Some(b'[') => self.array(r, treat, depth + 1).map(|()| true),
            Some(b'"') => {
                let (s, at) = r.string_at()?;
                Ok(self.string(&s, treat, at))
            }
            Some(b't' | b'f' | b'n') => {
                let (lit, text): (&'static [u8], &str) = match r.peek() {
                    Some(b't') => (b"true", "true"),
                    Some(b'f') => (b"false", "false"),
                    _ => (b"null", "null"),
                };
                r.literal(lit)?;
                match treat {
                    Treat::Unlisted if text != "null" => Ok(self.string(text, treat, None)),
                    _ => {
                        self.out.extend_from_slice(lit);
                        Ok(true)
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let at = r.i;
                let (text, integer) = r.number()?;
                match treat {
                    Treat::Keep => write_number(&mut self.out, text, integer, at).map(|()| true),
                    Treat::Whole(..) | Treat::Unlisted => Ok(self.string(text, treat, None)),
                    Treat::Scan => {
                        // Long integers can be card numbers, SSNs or phones.
                        if integer && text.len() >= 9 {
                            let mut masked = std::mem::take(&mut self.text);
                            masked.clear();
                            let changed = self.scan(text, &mut masked);
                            if changed {
                                write_str(&mut self.out, &masked);
                            }
                            self.text = masked;
                            if changed {
                                return Ok(true);
                            }
                        }
                        write_number(&mut self.out, text, integer, at).map(|()| true)
                    }
                }
            }
            _ => Err(MaskError::Json {
                offset: r.i,
                what: "expected a value",
            }),
        }
    }

    /// The policy's nesting limit, checked on entering an object or array.
    fn check_depth(&self, depth: usize) -> Result<(), MaskError> {
        if depth > self.m.policy.max_depth {
            return Err(MaskError::TooDeep {
                limit: self.m.policy.max_depth,
            });
        }
        Ok(())
    }

    fn array(
        &mut self,
        r: &mut Reader<'a>,
        treat: Treat<'_>,
        depth: usize,
    ) -> Result<(), MaskError> {
        self.check_depth(depth)?;
        r.expect(b'[', "expected an array")?;
        self.out.push(b'[');
        r.ws();
        if r.peek() == Some(b']') {
            r.i += 1;
            self.out.push(b']');
            return Ok(());
        }
        let mut index = 0usize;
        let mut written = 0usize;
        loop {
            self.segs.push(Seg::Index(index));
            let mark = self.out.len();
            if written > 0 {
                self.out.push(b',');
            }
            if self.value(r, treat, depth)? {
                written += 1;
            } else {
                self.out.truncate(mark);
            }
            self.segs.pop();
            index += 1;
            if !r.more(b']', "expected ',' or ']'")? {
                break;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    /// How a member is treated, and whether its key must be scanned (in
    /// scan mode, for a key that could itself hold PII). Called with the
    /// member's key already pushed on `path`; its parent is the key before
    /// it.
    fn member_treat<'p>(&mut self, parent_treat: Treat<'p>) -> (Treat<'p>, bool)
    where
        'm: 'p,
    {
        let policy: &'m Policy = &self.m.policy;
        let scan_key = || {
            matches!(parent_treat, Treat::Scan)
                && self.path.last().is_some_and(|k| fields::suspicious(k))
        };
        if !policy.fields.is_empty()
            && let Some(rule) = policy.field_rule(&self.path)
        {
            let t = match rule.action {
                Action::Detect => Treat::Scan,
                Action::Keep => Treat::Keep,
                a => Treat::Whole(Who::Named(rule.detector.as_str()), a),
            };
            return (t, scan_key());
        }
        match parent_treat {
            Treat::Whole(..) | Treat::Keep | Treat::Unlisted => (parent_treat, false),
            Treat::Scan => {
                if policy.mode == Mode::Allowlist && !self.inside_allowed() {
                    return (Treat::Unlisted, scan_key());
                }
                let n = self.path.len();
                let key = self.path.get(n.wrapping_sub(1)).map_or("", |k| k.as_ref());
                let parent = n
                    .checked_sub(2)
                    .and_then(|i| self.path.get(i))
                    .map(|p| p.as_ref());
                let class = self
                    .m
                    .fields
                    .classify(self.memo, self.keys_seen, key, parent);
                self.keys_seen += 1;
                let t = match class.detector {
                    Some(d) => match policy.action_for(d) {
                        Action::Keep => Treat::Keep,
                        a => Treat::Whole(Who::Builtin(d), a),
                    },
                    None => Treat::Scan,
                };
                (t, class.suspicious)
            }
        }
    }

    /// Allowlist mode: whether some ancestor path was allowed by a rule
    /// (then its descendants are scanned rather than unlisted).
    fn inside_allowed(&self) -> bool {
        (1..self.path.len()).any(|k| self.m.policy.field_rule(&self.path[..k]).is_some())
    }

    fn object(
        &mut self,
        r: &mut Reader<'a>,
        treat: Treat<'_>,
        depth: usize,
    ) -> Result<(), MaskError> {
        self.check_depth(depth)?;
        let obj_at = r.i;
        r.expect(b'{', "expected an object")?;
        self.out.push(b'{');
        let first = self.out.len();
        let base = self.members.len();
        r.ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
        } else {
            loop {
                r.ws();
                let (key, key_at) = r.string_at()?;
                r.ws();
                r.expect(b':', "expected ':'")?;
                self.path.push(dup(&key));
                let (mt, scan_key) = self.member_treat(treat);
                let (out_key, key_hit) = if scan_key {
                    self.mask_key(key)
                } else {
                    (key, None)
                };
                self.segs.push(Seg::Key(dup(&out_key)));
                if let Some(name) = key_hit {
                    self.decide(Who::Builtin(name), Action::Redact);
                }
                // Members are written back to back with commas; a dropped
                // member is cut off again, comma and all.
                let mark = self.out.len();
                if self.members.len() > base {
                    self.out.push(b',');
                }
                let seg = self.out.len();
                match (&out_key, key_at) {
                    // Borrowed and unchanged: nothing to escape.
                    (Cow::Borrowed(_), Some(_)) => write_plain_str(&mut self.out, &out_key),
                    _ => write_str(&mut self.out, &out_key),
                }
                self.out.push(b':');
                let keep = self.value(r, mt, depth)?;
                if keep {
                    self.members.push(Member {
                        prefix: SortPrefix::of(&out_key),
                        key: out_key,
                        start: seg,
                        end: self.out.len(),
                    });
                } else {
                    self.out.truncate(mark);
                }
                self.path.pop();
                self.segs.pop();
                if !r.more(b'}', "expected ',' or '}'")? {
                    break;
                }
            }
        }
        // Canonical order (RFC 8785 §3.2.3). Sort keys: each member's
        // 8-byte prefix above its index, so that one integer compare
        // orders two members. That is decisive when every prefix is exact
        // and no two are equal (see `SortPrefix`); otherwise the full
        // comparison orders the indices.
        let members = &self.members[base..];
        let order = &mut self.order;
        order.clear();
        let mut exact = true;
        for (i, m) in members.iter().enumerate() {
            exact &= m.prefix.exact;
            order.push(u128::from(m.prefix.bytes) << 64 | i as u128);
        }
        order.sort_unstable();
        let at = |o: &u128| (*o & u128::from(u64::MAX)) as usize;
        if !exact || order.windows(2).any(|w| w[0] >> 64 == w[1] >> 64) {
            order.sort_unstable_by(|a, b| member_cmp(&members[at(a)], &members[at(b)]));
            if order
                .windows(2)
                .any(|w| members[at(&w[0])].key == members[at(&w[1])].key)
            {
                return Err(MaskError::DuplicateKey { offset: obj_at });
            }
        }
        // Already in order (the common case for canonical input): nothing
        // to move.
        if order.iter().enumerate().any(|(i, o)| at(o) != i) {
            self.scratch.clear();
            // The members and their commas: exactly the bytes written since `first`.
            self.scratch.reserve(self.out.len() - first);
            for (i, o) in order.iter().enumerate() {
                if i > 0 {
                    self.scratch.push(b',');
                }
                let m = &members[at(o)];
                self.scratch.extend_from_slice(&self.out[m.start..m.end]);
            }
            self.out.truncate(first);
            self.out.extend_from_slice(&self.scratch);
        }
        self.out.push(b'}');
        self.members.truncate(base);
        Ok(())
    }

    /// Keys can carry PII too (`{"alice@example.com": …}`): in scan mode a
    /// key with a detection is redacted (never tokenized into something
    /// that must stay unique). Only keys [`fields::suspicious`] calls so are
    /// scanned.
    fn mask_key(&mut self, key: Cow<'a, str>) -> (Cow<'a, str>, Option<Detector>) {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        detect::scan_builtin(&self.m.engine, &key, &mut self.hits, &mut matches);
        let out = match matches.iter().min_by_key(|m| m.range.start) {
            None => (key, None),
            // Only built-in detectors run over keys.
            Some(Match {
                kind: MatchKindId::Builtin(d),
                ..
            }) => {
                // Distinct masked keys stay distinct: number them in order.
                let mut k = String::new();
                strategy::redact_into(&mut k, d.name());
                k.push('#');
                k.push_str(itoa::Buffer::new().format(self.decisions.len() + 1));
                (Cow::Owned(k), Some(*d))
            }
            Some(_) => (key, None),
        };
        self.matches = matches;
        out
    }
}

fn validate(v: policy::Validator, s: &str) -> bool {
    match v {
        policy::Validator::None => true,
        policy::Validator::Luhn => {
            let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
            detect::luhn(&d)
        }
        policy::Validator::Mod97 => {
            let d: Vec<u8> = s
                .bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| b.to_ascii_uppercase())
                .collect();
            detect::iban_mod97(&d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Member, SortPrefix, member_cmp};
    use proptest::prelude::*;
    use std::borrow::Cow;

    fn member(key: &str) -> Member<'_> {
        Member {
            key: Cow::Borrowed(key),
            prefix: SortPrefix::of(key),
            start: 0,
            end: 0,
        }
    }

    proptest! {
        /// Ordering by the 8-byte prefix first gives UTF-16 code unit
        /// order (RFC 8785 §3.2.3), for keys shorter and longer than the
        /// prefix, with NULs, and with characters on both sides of U+E000
        /// and U+10000.
        #[test]
        fn member_order_is_utf16_order(
            a in "[ab\u{0}\u{7f}é\u{e000}\u{fffd}\u{10000}\u{1f600}]{0,10}",
            b in "[ab\u{0}\u{7f}é\u{e000}\u{fffd}\u{10000}\u{1f600}]{0,10}",
        ) {
            prop_assert_eq!(
                member_cmp(&member(&a), &member(&b)),
                a.encode_utf16().cmp(b.encode_utf16())
            );
        }
    }
}
