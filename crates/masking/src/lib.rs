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

pub mod checksum;
mod clean;
pub mod detect;
mod fields;
mod ids;
mod json;
pub mod keys;
pub mod policy;
pub mod records;
pub mod seal;
pub mod strategy;
pub mod vendors;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use zeroize::Zeroizing;

pub use detect::{DETECTOR_SET_VERSION, Detector};
pub use keys::{KeyFileError, TokenKeys};
pub use policy::{Action, Mode, Policy, PolicyError};
pub use seal::{KeyId, Sealed, SubjectKeyError, SubjectKeys};
pub use strategy::{commitment, verify_opening};

use detect::{Engine, Hit, Match, MatchKindId};
use json::{Reader, key_cmp, push_pointer, write_number, write_str};

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
    /// Larger than [`MAX_EVENT`].
    #[error("event larger than {limit} bytes")]
    TooLarge {
        /// [`MAX_EVENT`].
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
    /// The subject key store failed (transient: nothing was written).
    #[error("{0}")]
    SubjectKeys(SubjectKeyError),
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
    /// Unique per masker in the process: names the owner of a thread's
    /// clean-string cache.
    id: u64,
    policy: Policy,
    engine: std::sync::Arc<Engine>,
    fields: fields::FieldRules,
    digest: String,
    /// Current epoch and derived key per detector name.
    token: Option<(u32, DerivedKeys)>,
    /// The log's origin: bound into sealed values.
    origin: String,
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
        let engine = Engine::shared().map_err(MaskError::Engine)?;
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
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Masker {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            digest: policy.digest_hex(),
            policy,
            engine,
            fields: field_rules,
            token,
            origin: origin.to_owned(),
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
        self.mask_sealed(event, content_type, ts_ms, salts, &mut seal::NoKeys)
    }

    /// [`Masker::mask`], with the subject key store that the `encrypt`
    /// action seals under. A subject whose key was erased gets `redact`
    /// (and the decision says so); a key store failure fails the event.
    pub fn mask_sealed(
        &self,
        event: &[u8],
        content_type: ContentType,
        ts_ms: u64,
        salts: &mut dyn SaltSource,
        keys: &mut dyn SubjectKeys,
    ) -> Result<Masked, MaskError> {
        // Key spans are 31-bit (see `Key`).
        if event.len() > MAX_EVENT {
            return Err(MaskError::TooLarge { limit: MAX_EVENT });
        }
        let text = std::str::from_utf8(event).map_err(|e| MaskError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        // `encrypt` with a subject pointer: find the subject first (only
        // for such policies; the walk itself is one pass).
        let subject: Option<Zeroizing<String>> = match (&self.policy.subject, content_type) {
            (Some(ptr), ContentType::Json) if self.encrypts() => {
                serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| match v.pointer(ptr)? {
                        serde_json::Value::String(s) => Some(Zeroizing::new(s.clone())),
                        serde_json::Value::Number(n) => Some(Zeroizing::new(n.to_string())),
                        _ => None,
                    })
            }
            _ => None,
        };
        let subject = subject.as_deref().map(String::as_str);
        with_per_thread(|pt| self.mask_str(text, content_type, ts_ms, salts, (keys, subject), pt))
    }

    /// Whether the policy uses `encrypt` anywhere.
    pub fn encrypts(&self) -> bool {
        self.policy.uses(|a| a == Action::Encrypt)
    }

    fn mask_str(
        &self,
        text: &str,
        content_type: ContentType,
        ts_ms: u64,
        salts: &mut dyn SaltSource,
        (keys, subject): (&mut dyn SubjectKeys, Option<&str>),
        pt: &mut PerThread,
    ) -> Result<Masked, MaskError> {
        let event = text.as_bytes();
        pt.clean.own(self.id);
        // Emptied first: an event that failed left them as they were.
        pt.bufs.clear();
        let mut w = Walk {
            src: text,
            keys_seen: 0,
            memo: &mut pt.memo,
            clean: &mut pt.clean,
            orders: &mut pt.orders,
            objects_closed: 0,
            m: self,
            // The body, then the decisions, the digest and the time: room
            // for a few decisions without regrowing.
            out: Vec::with_capacity(event.len() + event.len() / 4 + 320),
            decisions: Vec::new(),
            openings: Vec::new(),
            salts,
            sealing: Sealing {
                keys,
                subject,
                failed: None,
                pointed: None,
            },
            b: &mut pt.bufs,
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
            // Not borrowed from a JSON string: written escaped.
            ContentType::Text => {
                w.string(text, Treat::Scan, None);
            }
        }
        let body = body_start..w.out.len();
        if let Some(e) = w.sealing.failed.take() {
            return Err(MaskError::SubjectKeys(e));
        }
        let Walk {
            mut out,
            mut decisions,
            openings,
            ..
        } = w;
        // The thread's buffers keep their capacity, and their contents until
        // the next event empties them: offsets (`hits`, `matches`, `order`,
        // the stacks), output (`scratch`, `text`), and keys as read or
        // masked (`keys`), nothing the caller's event does not hold.
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

/// What a thread keeps between events: the field-name memo, the strings
/// known to hold nothing to mask (see [`clean`]), and the walk's scratch
/// buffers (emptied as each event starts; kept for their capacity, so an
/// event allocates only what it returns).
#[derive(Default)]
struct PerThread {
    memo: fields::Memo,
    clean: clean::Clean,
    orders: Vec<LastOrder>,
    bufs: Bufs,
}

/// The member order of the n-th object to close in the previous event,
/// kept when key prefixes alone decided it: the prefixes, in the order
/// read, and the sort keys they gave.
#[derive(Default)]
struct LastOrder {
    prefixes: Vec<u64>,
    order: Vec<u128>,
}

/// The member index in a sort key (see `Walk::order_members`).
fn order_index(o: &u128) -> usize {
    (*o & u128::from(u64::MAX)) as usize
}

/// Objects per event whose order is remembered.
const ORDERS_MAX: usize = 64;

/// The largest event, in bytes: key spans are 31-bit (see [`Key`]), and
/// the key buffer can grow to a few times the event's size.
pub const MAX_EVENT: usize = 1 << 28;

/// Stack that must remain before the walk enters one more level of
/// nesting; below it, [`nested`] continues on a new heap-allocated stack
/// segment of [`STACK_SEGMENT`] bytes. One level costs well under 4 KiB
/// even unoptimised, so this is many levels of margin.
const STACK_RED_ZONE: usize = 128 * 1024;
/// Size of each extra stack segment.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// Runs one level of the (recursive) JSON walk with enough stack for it.
///
/// The walk recurses once per object or array level, and a policy may
/// allow up to 10,000 levels (`max_depth`). A Tokio worker or a rayon
/// thread has 2 MiB of stack, not enough for that many frames; running
/// out aborts the whole process. `stacker` checks the stack left (a
/// compare against a thread-local limit: nanoseconds) and, when it is
/// low, moves the rest of the walk onto a new segment, so every depth the
/// policy accepts is safe on every thread, whatever its stack size.
fn nested<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, f)
}

/// The walk's scratch buffers and stacks. See [`PerThread`].
#[derive(Default)]
struct Bufs {
    /// Triggers found in the string being scanned.
    hits: Vec<Hit>,
    /// Matches in the string being scanned.
    matches: Vec<Match>,
    /// Reorder buffer for an object's members.
    scratch: Vec<u8>,
    /// Sort keys for the object being closed (see [`Walk::object`]).
    order: Vec<u128>,
    /// A masked string being built (see [`Walk::string`]).
    text: String,
    /// The text of keys that are not spans of the event: keys with escapes
    /// (decoded) and masked keys.
    keys: String,
    /// Where the walk is: the JSON pointer's segments, built into a string
    /// only when a decision or opening needs it.
    segs: Vec<Seg>,
    /// The keys from the root to the current member (array levels left
    /// out), as read: what field rules and the field-name memo see.
    path: Vec<Key>,
    /// The members of every object being walked: an object's own are
    /// those above the length it found on entry.
    members: Vec<Member>,
}

impl Bufs {
    fn clear(&mut self) {
        self.hits.clear();
        self.matches.clear();
        self.scratch.clear();
        self.order.clear();
        self.text.clear();
        self.keys.clear();
        self.segs.clear();
        self.path.clear();
        self.members.clear();
    }
}

/// A key's text: a span of the event or, for a key with escapes or a
/// masked key, of the key buffer ([`Bufs::keys`]). Start in bits 0–31,
/// length in bits 32–62, bit 63 set for the key buffer. One word, so that
/// it moves in a register: a `Cow<str>` spilled as two words and reloaded
/// as one 16-byte move stalled on store forwarding, ~10% of the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key(u64);

impl Key {
    const IN_KEYS: u64 = 1 << 63;

    /// Both below 2^31: events are at most [`MAX_EVENT`] bytes, and the
    /// key buffer holds at most a few times that.
    fn new(start: usize, len: usize, in_keys: bool) -> Key {
        let flag = if in_keys { Key::IN_KEYS } else { 0 };
        Key((start as u64 & 0xFFFF_FFFF) | (len as u64 & 0x7FFF_FFFF) << 32 | flag)
    }

    fn start(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }

    fn len(self) -> usize {
        ((self.0 >> 32) & 0x7FFF_FFFF) as usize
    }

    /// The span of the event, for a key read as is (no escapes).
    fn in_event(self) -> Option<(usize, usize)> {
        (self.0 & Key::IN_KEYS == 0).then(|| (self.start(), self.len()))
    }

    /// The key's text. Spans are made at character boundaries, so the
    /// empty fallback is never taken.
    fn text<'x>(self, event: &'x str, keys: &'x str) -> &'x str {
        let src = if self.0 & Key::IN_KEYS == 0 {
            event
        } else {
            keys
        };
        src.get(self.start()..self.start() + self.len())
            .unwrap_or("")
    }
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

/// Canonical member order (RFC 8785 §3.2.3): UTF-16 code units of the
/// keys, from their prefixes when those decide, else from `keys()`.
fn member_cmp<'k>(
    x: SortPrefix,
    y: SortPrefix,
    keys: impl FnOnce() -> (&'k str, &'k str),
) -> std::cmp::Ordering {
    if x.bytes != y.bytes && x.exact && y.exact {
        x.bytes.cmp(&y.bytes)
    } else {
        let (a, b) = keys();
        key_cmp(a, b)
    }
}

/// A member of an object being walked: its key, its first 8 bytes as a
/// sort prefix, and where its canonical bytes (`"key":value`) are: in the
/// event (`in_event`: a member that passes unchanged, written compactly
/// there) or in the output.
struct Member {
    key: Key,
    prefix: SortPrefix,
    start: usize,
    end: usize,
    in_event: bool,
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
    /// The prefix of the key `buf[start..start + len]`. Where eight bytes
    /// follow `start` in `buf`, one wide load and a mask (a small copy into
    /// an array, then a wide load, stalls on store forwarding).
    fn of(buf: &[u8], start: usize, len: usize) -> SortPrefix {
        let bytes = match buf.get(start..).and_then(|b| b.first_chunk::<8>()) {
            Some(w) => {
                // Keep the key's first `len` bytes (all eight if longer).
                let drop = u64::MAX.checked_shr(8 * len.min(8) as u32).unwrap_or(0);
                u64::from_be_bytes(*w) & !drop
            }
            None => buf
                .get(start..start + len)
                .unwrap_or(&[])
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

struct Walk<'a, 'm, 's> {
    m: &'m Masker,
    /// The event's text.
    src: &'a str,
    /// This thread's field-name memo.
    memo: &'s mut fields::Memo,
    /// This thread's strings known to hold nothing to mask.
    clean: &'s mut clean::Clean,
    /// This thread's member orders of the previous event's objects.
    orders: &'s mut Vec<LastOrder>,
    /// How many objects have closed so far in this event.
    objects_closed: usize,
    /// How many keys have been classified so far in this event.
    keys_seen: usize,
    out: Vec<u8>,
    decisions: Vec<Decision>,
    openings: Vec<Opening>,
    salts: &'s mut dyn SaltSource,
    /// The `encrypt` action's keys and subject.
    sealing: Sealing<'s>,
    /// Scratch buffers and stacks, lent by the thread.
    b: &'s mut Bufs,
}

/// What the `encrypt` action needs during one event.
struct Sealing<'s> {
    keys: &'s mut dyn SubjectKeys,
    /// The subject named by the policy's pointer, if it was found.
    subject: Option<&'s str>,
    /// The first key store failure (the event then fails).
    failed: Option<SubjectKeyError>,
    /// The policy's subject's key, once asked for in this event (every
    /// value of the event is sealed under it: one lookup per event).
    pointed: Option<Option<(KeyId, seal::DataKey)>>,
}

impl Sealing<'_> {
    /// The key to seal `value` under: the event's subject's (`pointed`),
    /// or the value's own. `None`: no subject, or an erased one.
    fn key_for(&mut self, pointed: bool, value: &str) -> Option<(KeyId, seal::DataKey)> {
        if !pointed {
            return self.lookup(value);
        }
        let s = self.subject?;
        if self.pointed.is_none() {
            let k = self.lookup(s);
            self.pointed = Some(k);
        }
        self.pointed
            .as_ref()
            .and_then(|k| k.as_ref().map(|(id, k)| (id.clone(), Zeroizing::new(**k))))
    }

    fn lookup(&mut self, subject: &str) -> Option<(KeyId, seal::DataKey)> {
        match self.keys.data_key(subject) {
            Ok(k) => k,
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }
}

/// What a string value becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Dropped,
    Unchanged,
    /// Masked: the new text is in the walk's text buffer.
    Changed,
}

/// One step of a JSON pointer: an object key (as written, i.e. masked)
/// or an array index.
#[derive(Clone, Copy)]
enum Seg {
    Key(Key),
    Index(usize),
}

impl<'a, 'm> Walk<'a, 'm, '_> {
    /// The RFC 6901 pointer to the current value.
    fn pointer(&self) -> String {
        let mut p = String::with_capacity(self.b.segs.len() * 12);
        for s in &self.b.segs {
            match *s {
                Seg::Key(k) => push_pointer(&mut p, k.text(self.src, &self.b.keys)),
                Seg::Index(i) => {
                    p.push('/');
                    p.push_str(itoa::Buffer::new().format(i));
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
    fn apply(&mut self, who: Who<'_>, mut action: Action, value: &str, dst: &mut String) -> bool {
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
            Action::Encrypt => {
                // The subject: the policy's pointer (its key looked up once
                // per event), or the value itself.
                let key = self.sealing.key_for(self.m.policy.subject.is_some(), value);
                match key {
                    Some((kid, key)) => {
                        let salt = self.salts.salt();
                        let mut nonce = [0u8; 12];
                        nonce.copy_from_slice(&salt[..12]);
                        let pointer = self.pointer();
                        seal::seal_into(dst, &key, &kid, &nonce, &self.m.origin, &pointer, value);
                    }
                    // No subject in the event, or an erased one: redacted,
                    // and the decision says so.
                    None => {
                        strategy::redact_into(dst, name);
                        action = Action::Redact;
                    }
                }
            }
        }
        self.decide(who, action);
        action != Action::Drop
    }

    /// Masks a string value per `treat`; when it changes, what it
    /// becomes is left in the text buffer (`self.b.text`).
    fn mask_string(&mut self, s: &str, treat: Treat<'_>) -> Outcome {
        if matches!(treat, Treat::Scan) && self.clean.contains(s.as_bytes()) {
            return Outcome::Unchanged;
        }
        let mut text = std::mem::take(&mut self.b.text);
        text.clear();
        let outcome = match treat {
            Treat::Keep => Outcome::Unchanged,
            Treat::Whole(who, action) => match self.apply(who, action, s, &mut text) {
                true => Outcome::Changed,
                false => Outcome::Dropped,
            },
            Treat::Unlisted => {
                match self.apply(Who::Named("unlisted"), self.m.policy.unlisted, s, &mut text) {
                    true => Outcome::Changed,
                    false => Outcome::Dropped,
                }
            }
            Treat::Scan => match self.scan(s, &mut text) {
                true => Outcome::Changed,
                false => Outcome::Unchanged,
            },
        };
        self.b.text = text;
        outcome
    }

    /// Writes a string value as [`Walk::mask_string`] left it.
    /// `at` is the string's offset in the event when it is borrowed from
    /// it (no escapes).
    fn write_string(&mut self, s: &str, outcome: Outcome, at: Option<usize>) {
        match outcome {
            Outcome::Dropped => {}
            Outcome::Changed => write_str(&mut self.out, &self.b.text),
            Outcome::Unchanged => match at.and_then(|at| self.quoted(at, s.len(), 0)) {
                Some(raw) => self.out.extend_from_slice(raw),
                None => write_str(&mut self.out, s),
            },
        }
    }

    /// Masks and writes a string value. Returns false if it is dropped.
    fn string(&mut self, s: &str, treat: Treat<'_>, at: Option<usize>) -> bool {
        let outcome = self.mask_string(s, treat);
        self.write_string(s, outcome, at);
        outcome != Outcome::Dropped
    }

    /// Runs the detectors over `s`. If anything matched, appends the masked
    /// string to `dst` and returns true.
    /// Callers check the clean-string cache first.
    fn scan(&mut self, s: &str, dst: &mut String) -> bool {
        let mut matches = std::mem::take(&mut self.b.matches);
        find_matches(self.m, s, &mut self.b.hits, &mut matches);
        if matches.is_empty() {
            self.b.matches = matches;
            self.clean.insert(s.as_bytes());
            return false;
        }
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
        self.b.matches = matches;
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
            // Nesting recurses: `nested` keeps the thread's stack from
            // running out at any depth the policy accepts.
            Some(b'{') => nested(|| self.object(r, treat, depth + 1)).map(|()| true),
            Some(b'[') => nested(|| self.array(r, treat, depth + 1)).map(|()| true),
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
                        if integer && text.len() >= 9 && !self.clean.contains(text.as_bytes()) {
                            let mut masked = std::mem::take(&mut self.b.text);
                            masked.clear();
                            let changed = self.scan(text, &mut masked);
                            if changed {
                                write_str(&mut self.out, &masked);
                            }
                            self.b.text = masked;
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
            self.b.segs.push(Seg::Index(index));
            let mark = self.out.len();
            if written > 0 {
                self.out.push(b',');
            }
            if self.value(r, treat, depth)? {
                written += 1;
            } else {
                self.out.truncate(mark);
            }
            self.b.segs.pop();
            index += 1;
            if !r.more(b']', "expected ',' or ']'")? {
                break;
            }
        }
        self.out.push(b']');
        Ok(())
    }

    /// How a member is treated, and whether its key must be scanned (every
    /// key is, except inside a value kept whole: a key can hold PII as
    /// well as a value). Called with the member's key already pushed on
    /// `path`; its parent is the key before it.
    fn member_treat<'p>(&mut self, parent_treat: Treat<'p>, prefix: u64) -> (Treat<'p>, bool)
    where
        'm: 'p,
    {
        let policy: &'m Policy = &self.m.policy;
        let (src, keys) = (self.src, self.b.keys.as_str());
        let name = |k: &Key| k.text(src, keys);
        let path = &self.b.path;
        let n = path.len();
        let key = path.last().map_or("", name);
        let scan_key = !matches!(parent_treat, Treat::Keep);
        if !policy.fields.is_empty()
            && let Some(rule) = policy.field_rule(path, &name)
        {
            let t = match rule.action {
                Action::Detect => Treat::Scan,
                Action::Keep => Treat::Keep,
                a => Treat::Whole(Who::Named(rule.detector.as_str()), a),
            };
            return (t, scan_key);
        }
        match parent_treat {
            Treat::Whole(..) | Treat::Keep | Treat::Unlisted => (parent_treat, scan_key),
            Treat::Scan => {
                if policy.mode == Mode::Allowlist
                    && !(1..n).any(|k| policy.field_rule(&path[..k], &name).is_some())
                {
                    // Not inside an allowed path (whose descendants are
                    // scanned): unlisted.
                    return (Treat::Unlisted, scan_key);
                }
                let parent = n.checked_sub(2).and_then(|i| path.get(i)).map(name);
                let class = self
                    .m
                    .fields
                    .classify(self.memo, self.keys_seen, key, prefix, parent);
                self.keys_seen += 1;
                let t = match class.detector {
                    Some(d) => match policy.action_for(d) {
                        Action::Keep => Treat::Keep,
                        a => Treat::Whole(Who::Builtin(d), a),
                    },
                    None => Treat::Scan,
                };
                (t, scan_key)
            }
        }
    }

    /// The sort prefix of a key, read where its text is.
    fn prefix_of(&self, k: Key) -> SortPrefix {
        match k.in_event() {
            Some((start, len)) => SortPrefix::of(self.src.as_bytes(), start, len),
            None => SortPrefix::of(self.b.keys.as_bytes(), k.start(), k.len()),
        }
    }

    /// Reads an object key: a span of the event, or (with escapes) decoded
    /// into the key buffer.
    fn read_key(&mut self, r: &mut Reader<'a>) -> Result<Key, MaskError> {
        Ok(match r.string_at()? {
            (Cow::Borrowed(k), Some(at)) => Key::new(at, k.len(), false),
            (k, _) => self.keep_key(&k),
        })
    }

    /// Copies a key's text into the key buffer.
    fn keep_key(&mut self, k: &str) -> Key {
        let start = self.b.keys.len();
        self.b.keys.push_str(k);
        Key::new(start, k.len(), true)
    }

    /// The event's bytes of a string read from it without escapes (its
    /// text at `at`, `len` bytes), quotes included, and `extra` bytes
    /// after the closing quote. A string with no escapes holds nothing to
    /// escape, so these bytes are its canonical form.
    fn quoted(&self, at: usize, len: usize, extra: usize) -> Option<&'a [u8]> {
        self.src
            .as_bytes()
            .get(at.checked_sub(1)?..at + len + 1 + extra)
    }

    /// Writes `"key":`. `colon_follows`: the event has the colon right
    /// after the key's closing quote.
    fn write_key(&mut self, k: Key, colon_follows: bool) {
        if let Some((start, len)) = k.in_event()
            && let Some(raw) = self.quoted(start, len, usize::from(colon_follows))
        {
            self.out.extend_from_slice(raw);
            if !colon_follows {
                self.out.push(b':');
            }
            return;
        }
        write_str(&mut self.out, k.text(self.src, &self.b.keys));
        self.out.push(b':');
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
        let base = self.b.members.len();
        // Members written to the output (not copied from the event).
        let mut outs = 0usize;
        r.ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
        } else {
            loop {
                r.ws();
                let key = self.read_key(r)?;
                let key_end = r.i;
                r.ws();
                r.expect(b':', "expected ':'")?;
                self.b.path.push(key);
                let read_prefix = self.prefix_of(key);
                let (mt, scan_key) = self.member_treat(treat, read_prefix.bytes);
                let out_key = if scan_key { self.mask_key(key) } else { key };
                self.b.segs.push(Seg::Key(out_key));
                let colon_follows = r.i == key_end + 1;
                let prefix = if out_key == key {
                    read_prefix
                } else {
                    self.prefix_of(out_key)
                };
                r.ws();
                let val_at = r.i;
                // Members written to the output go back to back with
                // commas; a dropped one is cut off again, comma and all.
                let mark = self.out.len();
                let member = if r.peek() == Some(b'"') {
                    // Strings, the commonest values, without a trip
                    // through `value`.
                    let (s, at) = r.string_at()?;
                    match self.mask_string(&s, mt) {
                        Outcome::Dropped => None,
                        // Unchanged, and written compactly in the event
                        // (`"key":"value"`, key and value borrowed, nothing
                        // between them but the colon): the event's bytes
                        // are the member's canonical form, copied once
                        // when the object closes. Nothing is written now.
                        Outcome::Unchanged
                            if out_key == key
                                && key.in_event().is_some()
                                && colon_follows
                                && val_at == key_end + 1
                                && at == Some(val_at + 1) =>
                        {
                            // From the key's opening quote.
                            Some((key.start().saturating_sub(1), r.i, true))
                        }
                        outcome => {
                            let seg = self.start_member(outs, out_key, colon_follows);
                            self.write_string(&s, outcome, at);
                            Some((seg, self.out.len(), false))
                        }
                    }
                } else {
                    let seg = self.start_member(outs, out_key, colon_follows);
                    self.value(r, mt, depth)?
                        .then_some((seg, self.out.len(), false))
                };
                match member {
                    Some((start, end, in_event)) => {
                        outs += usize::from(!in_event);
                        self.b.members.push(Member {
                            key: out_key,
                            prefix,
                            start,
                            end,
                            in_event,
                        });
                    }
                    None => self.out.truncate(mark),
                }
                self.b.path.pop();
                self.b.segs.pop();
                if !r.more(b'}', "expected ',' or '}'")? {
                    break;
                }
            }
        }
        self.order_members(base, obj_at)?;
        self.emit_members(first, base, outs);
        self.out.push(b'}');
        self.b.members.truncate(base);
        Ok(())
    }

    /// Writes the comma before a member written to the output (`outs`:
    /// how many of its object's members were, before it), then its key.
    /// Returns where the member starts.
    fn start_member(&mut self, outs: usize, key: Key, colon_follows: bool) -> usize {
        if outs > 0 {
            self.out.push(b',');
        }
        let seg = self.out.len();
        self.write_key(key, colon_follows);
        seg
    }

    /// Puts the sort keys of the members above `base` in canonical order
    /// (RFC 8785 §3.2.3) in `self.b.order`. Sort keys: each member's
    /// 8-byte prefix above its index, so that one integer compare orders
    /// two members. That is decisive when every prefix is exact and no two
    /// are equal (see `SortPrefix`); otherwise the full comparison orders
    /// the indices, and finds duplicate keys.
    fn order_members(&mut self, base: usize, obj_at: usize) -> Result<(), MaskError> {
        let members = &self.b.members[base..];
        let (src, keys) = (self.src, self.b.keys.as_str());
        let order = &mut self.b.order;
        order.clear();
        // Streams repeat one shape: the n-th object to close usually has
        // the prefixes, so the order, of the n-th one of the event before.
        let nth = self.objects_closed;
        self.objects_closed += 1;
        let last = self.orders.get(nth).filter(|l| {
            l.prefixes.len() == members.len()
                && l.prefixes
                    .iter()
                    .zip(members)
                    .all(|(p, m)| *p == m.prefix.bytes)
        });
        let mut exact = true;
        if let Some(l) = last {
            order.extend_from_slice(&l.order);
        } else {
            for (i, m) in members.iter().enumerate() {
                exact &= m.prefix.exact;
                order.push(u128::from(m.prefix.bytes) << 64 | i as u128);
            }
            order.sort_unstable();
        }
        let decided = exact && order.windows(2).all(|w| w[0] >> 64 != w[1] >> 64);
        if last.is_none() && decided && nth < ORDERS_MAX {
            // Prefixes alone decided it: the same prefixes will again.
            if nth == self.orders.len() {
                self.orders.push(LastOrder::default());
            }
            if let Some(l) = self.orders.get_mut(nth) {
                l.prefixes.clear();
                l.prefixes.extend(members.iter().map(|m| m.prefix.bytes));
                l.order.clear();
                l.order.extend_from_slice(order);
            }
        }
        if !decided {
            let name = |o: &u128| members[order_index(o)].key.text(src, keys);
            order.sort_unstable_by(|a, b| {
                let (x, y) = (
                    members[order_index(a)].prefix,
                    members[order_index(b)].prefix,
                );
                member_cmp(x, y, || (name(a), name(b)))
            });
            if order.windows(2).any(|w| name(&w[0]) == name(&w[1])) {
                return Err(MaskError::DuplicateKey { offset: obj_at });
            }
        }
        Ok(())
    }

    /// Writes the members above `base`, in the order `order_members`
    /// left, after `first` in the output (where those written during the
    /// walk are, back to back with commas; `outs` of them).
    fn emit_members(&mut self, first: usize, base: usize, outs: usize) {
        let members = &self.b.members[base..];
        let order = &self.b.order;
        let src = self.src.as_bytes();
        let in_order = order.iter().enumerate().all(|(i, o)| order_index(o) == i);
        if in_order && outs == members.len() {
            // All in the output already, in order, with their commas.
        } else if in_order && outs == 0 && members.windows(2).all(|w| w[1].start == w[0].end + 1) {
            // All in the event, in order, one comma apart: the event's
            // bytes are the object's canonical body (a canonical event
            // is copied, not rebuilt).
            if let (Some(f), Some(l)) = (members.first(), members.last()) {
                self.out
                    .extend_from_slice(src.get(f.start..l.end).unwrap_or_default());
            }
        } else {
            // The members written to the output move aside; then every
            // member is copied in order from there or from the event.
            let scratch = &mut self.b.scratch;
            scratch.clear();
            scratch.extend_from_slice(&self.out[first..]);
            self.out.truncate(first);
            let mut need = members.len();
            for m in members {
                need += m.end - m.start;
            }
            self.out.reserve(need);
            for (i, o) in order.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                let m = &members[order_index(o)];
                // Spans are made in range (output spans start at or
                // after `first`): the empty fallbacks are never taken.
                let bytes = if m.in_event {
                    src.get(m.start..m.end)
                } else {
                    m.start
                        .checked_sub(first)
                        .zip(m.end.checked_sub(first))
                        .and_then(|(a, b)| scratch.get(a..b))
                };
                self.out.extend_from_slice(bytes.unwrap_or_default());
            }
        }
    }

    /// Keys can carry PII too (`{"alice@example.com": …}`,
    /// `{"AKIAIOSFODNN7EXAMPLE": 1}`): every key not under a `keep` rule
    /// goes through the same detectors as a value (custom ones included,
    /// and the clean-string cache, so a stream's repeated keys cost one
    /// lookup each). A key with a detection is redacted whole (never
    /// tokenized into something that must stay unique), numbered so that
    /// distinct keys stay distinct, and the decision recorded.
    fn mask_key(&mut self, key: Key) -> Key {
        let text = key.text(self.src, &self.b.keys);
        if self.clean.contains(text.as_bytes()) {
            return key;
        }
        let mut matches = std::mem::take(&mut self.b.matches);
        find_matches(self.m, text, &mut self.b.hits, &mut matches);
        let first = matches.first().map(|m| m.kind);
        if first.is_none() {
            self.clean.insert(text.as_bytes());
        }
        self.b.matches = matches;
        let policy: &'m Policy = &self.m.policy;
        let who = match first {
            None => return key,
            Some(MatchKindId::Builtin(d)) => Who::Builtin(d),
            Some(MatchKindId::Custom(i)) => match policy.custom.get(i) {
                Some(c) => Who::Named(c.name.as_str()),
                None => Who::Named("custom"),
            },
        };
        let start = self.b.keys.len();
        strategy::redact_into(&mut self.b.keys, who.name());
        self.b.keys.push('#');
        self.b
            .keys
            .push_str(itoa::Buffer::new().format(self.decisions.len() + 1));
        let masked = Key::new(start, self.b.keys.len() - start, true);
        // The decision's pointer ends in the masked key.
        self.b.segs.push(Seg::Key(masked));
        self.decide(who, Action::Redact);
        self.b.segs.pop();
        masked
    }
}

/// Every detector match in `s`, custom detectors and built-ins, in `out`
/// (cleared first): earliest first; at one start, longest first; then
/// customs, then built-ins in declaration order (specific before generic).
fn find_matches(m: &Masker, s: &str, hits: &mut Vec<Hit>, out: &mut Vec<Match>) {
    out.clear();
    for (i, c) in m.policy.custom.iter().enumerate() {
        for mm in c.regex.find_iter(s) {
            if validate(c.validator, mm.as_str()) && !mm.range().is_empty() {
                out.push(Match {
                    range: mm.range(),
                    kind: MatchKindId::Custom(i),
                });
            }
        }
    }
    detect::scan_builtin(&m.engine, s, hits, out);
    if out.len() > 1 {
        let rank = |k: &MatchKindId| match k {
            MatchKindId::Custom(i) => *i,
            MatchKindId::Builtin(d) => 1000 + *d as usize,
        };
        out.sort_by(|a, b| {
            a.range
                .start
                .cmp(&b.range.start)
                .then(b.range.end.cmp(&a.range.end))
                .then(rank(&a.kind).cmp(&rank(&b.kind)))
        });
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
        policy::Validator::Id(f) => {
            // Separators (spaces, dashes, dots, slashes) removed; letters
            // upper-cased: the validators see the identifier alone.
            let d: Vec<u8> = s
                .bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| b.to_ascii_uppercase())
                .collect();
            f.check(&d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SortPrefix, member_cmp};
    use proptest::prelude::*;

    /// The prefix of `key` read both ways: from a buffer where more bytes
    /// follow (one wide load and a mask) and from one where it ends.
    fn prefixes(key: &str) -> [SortPrefix; 2] {
        let followed = format!("\"{key}\":1,\"zzzzzzzz\"");
        [
            SortPrefix::of(followed.as_bytes(), 1, key.len()),
            SortPrefix::of(key.as_bytes(), 0, key.len()),
        ]
    }

    proptest! {
        /// Ordering by the 8-byte prefix first gives UTF-16 code unit
        /// order (RFC 8785 §3.2.3), for keys shorter and longer than the
        /// prefix, with NULs, and with characters on both sides of U+E000
        /// and U+10000; and the prefix is the same however it is read.
        #[test]
        fn member_order_is_utf16_order(
            a in "[ab\u{0}\u{7f}é\u{e000}\u{fffd}\u{10000}\u{1f600}]{0,10}",
            b in "[ab\u{0}\u{7f}é\u{e000}\u{fffd}\u{10000}\u{1f600}]{0,10}",
        ) {
            let (pa, pb) = (prefixes(&a), prefixes(&b));
            prop_assert_eq!(pa[0].bytes, pa[1].bytes);
            prop_assert_eq!(pb[0].bytes, pb[1].bytes);
            prop_assert_eq!(
                member_cmp(pa[0], pb[0], || (a.as_str(), b.as_str())),
                a.encode_utf16().cmp(b.encode_utf16())
            );
        }
    }
}
