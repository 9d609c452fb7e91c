//! One running log: its name, origin, signer, masker, store, sequencer,
//! tile cache and metrics, and everything a transport asks of it: mask and
//! append, receipts, proofs, entries, checkpoints, freezing. Domain types
//! in, domain types out; no protobuf, no HTTP.
//!
//! **Life of an append** (docs/design/life-of-a-leaf.md): a transport
//! calls [`Log::mask`] on its own thread (masking runs in parallel, off
//! the sequencer), [`Log::request`] to scope and hash the idempotency
//! key, then [`Log::try_append`] or [`Log::queue_wait`]; the sequencer
//! writes the batch through the one write pipeline and hands the batch's
//! tiles to this log's cache before it answers; [`Log::receipt`] then
//! builds the receipt from the masked event in hand and the cached tiles,
//! with one proof plan and no store read.
//!
//! **Frozen.** A frozen log keeps its final checkpoint (the last one
//! signed, durable in the store) and refuses appends for good
//! ([`AppendError::Frozen`], a message naming the log and its final
//! size); reads and proofs go on. A freeze is recorded in the log's
//! freeze marker (a file beside its store, written atomically) so that it
//! survives restarts, whatever the configuration says later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::note::NoteSigner;
use cairn_core::proof::ProofPlan;
use cairn_core::tile::MAX_ENTRY_LEN;
use cairn_core::tlog_proof::TlogProof;
use cairn_masking::records::{self, Record};
use cairn_masking::seal::{KeyId, OpenError, find_sealed};
use cairn_masking::{ContentType, Masked, Masker, Opening, SaltSource};
use cairn_storage::LogStore;
use cairn_subjects::{KeyState, SubjectStore};
use zeroize::Zeroizing;

use crate::cache::TileCache;
use crate::error::LogError;
use crate::metrics::LogMetrics;
use crate::sequencer::{
    AppendError, AppendRequest, Appended, Reply, Sequencer, SequencerConfig, SignedHead,
};

/// The name of the log that requests without a log name go to.
pub const DEFAULT_LOG: &str = "default";

/// The one policy name a log answers to (an empty name means it too).
pub const DEFAULT_POLICY: &str = "default";

/// A log's name: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a
/// letter or digit. Used in URLs (`/logs/<name>/`), metrics labels and
/// token scopes, so it needs no escaping anywhere.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogName(Arc<str>);

impl LogName {
    /// Validates a configured name.
    pub fn new(name: &str) -> Result<LogName, String> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(LogName(name.into()))
        } else {
            Err(format!(
                "log name {name:?}: use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            ))
        }
    }

    /// The default log's name.
    pub fn default_log() -> LogName {
        LogName(DEFAULT_LOG.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LogName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a log starts.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// Batching, queue, lease and publishers (its metrics and tile cache
    /// are the log's own: set here, they are replaced).
    pub sequencer: SequencerConfig,
    /// Proof tile cache, in MiB (0: [`DEFAULT_TILE_CACHE_MB`]).
    pub tile_cache_mb: usize,
    /// Where the freeze is recorded (`None`: freezes last until restart).
    pub freeze_marker: Option<PathBuf>,
    /// Start frozen (configuration: `frozen = true`).
    pub frozen: bool,
    /// Freeze at this time (configuration: `not_after`); a log started
    /// after it starts frozen.
    pub not_after: Option<SystemTime>,
    /// The subject key store the `encrypt` action seals under (required
    /// when the policy encrypts; configuration: `subject_keys`).
    pub subjects: Option<Arc<SubjectStore>>,
}

/// The proof tile cache's default size: 128 MiB, ~5,000 expanded tiles.
pub const DEFAULT_TILE_CACHE_MB: usize = 128;

/// One entry's receipt: what a client keeps to prove the entry is in the
/// log, built once the entry is durable and covered by a signed checkpoint.
#[derive(Debug)]
pub struct Receipt {
    /// The entry's index.
    pub index: LeafIndex,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The leaf bytes (the stored original for a duplicate).
    pub leaf: Vec<u8>,
    /// Openings of the commitments in the leaf (none for a duplicate:
    /// they went to the first caller).
    pub openings: Vec<Opening>,
    /// The checkpoint the proof is against.
    pub head: Arc<SignedHead>,
    /// The inclusion proof in `head`.
    pub path: Vec<Hash>,
    /// An earlier append with the same idempotency key is the answer.
    pub duplicate: bool,
}

impl Receipt {
    /// The same proof as a `c2sp.org/tlog-proof@v1` text.
    pub fn tlog_proof(&self) -> String {
        TlogProof {
            extra: None,
            index: self.index,
            path: self.path.clone(),
            checkpoint: self.head.note.clone(),
        }
        .encode()
    }
}

/// An inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry.
    pub index: LeafIndex,
    /// The tree it is proved in.
    pub size: TreeSize,
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// The audit path.
    pub path: Vec<Hash>,
}

/// Which leaf an inclusion proof is for.
#[derive(Debug, Clone, Copy)]
pub enum LeafRef {
    /// By index.
    Index(LeafIndex),
    /// By leaf hash (the store's index of hashes).
    Hash(Hash),
}

/// An append's idempotency key, as the caller gave it: hashed by
/// [`Log::request`] before it goes further.
#[derive(Clone, Copy, Debug)]
pub struct IdempotentAppend<'a> {
    /// The caller's identity (`None`: the one anonymous scope of an open log).
    pub scope: Option<&'a str>,
    /// The key's bytes.
    pub key: &'a [u8],
    /// What makes two appends the same request (event, content type,
    /// policy): digested together.
    pub request: &'a [&'a [u8]],
}

/// A running log.
pub struct Log {
    name: LogName,
    origin: Arc<str>,
    vkey: String,
    seq: Sequencer,
    store: Arc<dyn LogStore>,
    masker: Arc<Masker>,
    tiles: Arc<TileCache>,
    metrics: Arc<LogMetrics>,
    freeze_marker: Option<PathBuf>,
    subjects: Option<Arc<SubjectStore>>,
    /// Masks the log's own records (erasure, access).
    records: Arc<Masker>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn blocking_err(e: tokio::task::JoinError) -> LogError {
    LogError::Unavailable(format!("worker failed: {e}"))
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f).await.map_err(blocking_err)?
}

/// Masks one event for `masker`'s log: every check a client's event goes
/// through before the sequencer sees it (the fuzz target `append_request`
/// drives it through the server's decoding). `subjects`: the log's subject
/// key store, for the `encrypt` action. Errors name sizes and limits,
/// never content.
pub fn mask_event(
    masker: &Masker,
    policy: &str,
    event: &[u8],
    content_type: ContentType,
    now_ms: u64,
    salts: &mut dyn SaltSource,
    subjects: Option<&SubjectStore>,
) -> Result<Masked, LogError> {
    if !policy.is_empty() && policy != DEFAULT_POLICY {
        // The name is not echoed: a client could put anything in it.
        return Err(LogError::InvalidArgument(format!(
            "unknown policy name ({} bytes); this log has \"{DEFAULT_POLICY}\"",
            policy.len()
        )));
    }
    let masked = match subjects {
        Some(s) => masker
            .mask_sealed(
                event,
                content_type,
                now_ms,
                salts,
                &mut cairn_subjects::Keys(s),
            )
            .map_err(|e| match e {
                // Transient, and its detail (paths) is for the server's log.
                cairn_masking::MaskError::SubjectKeys(k) => {
                    tracing::error!(error = %k, "subject key store");
                    LogError::Unavailable(
                        "the subject key store failed (see the server log)".into(),
                    )
                }
                e => e.into(),
            })?,
        None => masker.mask(event, content_type, now_ms, salts)?,
    };
    if content_type == ContentType::Json && records::is_reserved(masked.body()) {
        return Err(LogError::InvalidArgument(format!(
            "the top-level member \"{}\" is reserved for the log's own records",
            records::RECORD_KEY
        )));
    }
    if masked.leaf.len() > MAX_ENTRY_LEN {
        return Err(LogError::InvalidArgument(format!(
            "the masked entry is {} bytes; the limit is {MAX_ENTRY_LEN}",
            masked.leaf.len()
        )));
    }
    Ok(masked)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn os_salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    // Commitments need unpredictable salts. If the OS cannot provide
    // randomness the process cannot run safely: stop rather than commit
    // with a guessable salt.
    if getrandom::fill(&mut s).is_err() {
        tracing::error!("the operating system's random source failed");
        std::process::abort();
    }
    s
}

/// Refuses a policy that encrypts on a log without a subject key store.
fn needs_subjects(
    name: &LogName,
    masker: &Masker,
    subjects: Option<&Arc<SubjectStore>>,
) -> Result<(), LogError> {
    if masker.encrypts() && subjects.is_none() {
        return Err(LogError::FailedPrecondition(format!(
            "log \"{name}\": the policy encrypts, but no subject key store is configured (subject_keys and a key-encryption key)"
        )));
    }
    Ok(())
}

/// The message a frozen log's appends get.
fn frozen_message(name: &LogName, size: TreeSize) -> Arc<str> {
    format!(
        "log \"{name}\" is frozen at size {size}: its final checkpoint is signed and kept, and it takes no more appends (append to its successor)"
    )
    .into()
}

/// Reads a freeze marker: the final checkpoint's size, if the log is frozen.
fn read_marker(path: &Path) -> Result<Option<TreeSize>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let size = text
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    LogError::Unavailable(format!(
                        "freeze marker {} is not a checkpoint",
                        path.display()
                    ))
                })?;
            Ok(Some(TreeSize(size)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::Unavailable(format!(
            "freeze marker {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the freeze marker (the final checkpoint's note) atomically and
/// durably ([`cairn_storage::durable::replace`]).
fn write_marker(path: &Path, note: &str) -> std::io::Result<()> {
    cairn_storage::durable::replace(path, note.as_bytes())
}

impl Log {
    /// Starts the log: loads the store's state (signing a checkpoint for
    /// durable entries a crash left uncovered), starts its sequencer, and
    /// applies a recorded or configured freeze. Must run inside a Tokio
    /// runtime. The task ends once every handle to the log is dropped and
    /// its queue drained.
    pub fn start(
        name: LogName,
        origin: &str,
        store: Arc<dyn LogStore>,
        signer: NoteSigner,
        masker: Arc<Masker>,
        opts: LogOptions,
    ) -> Result<(Arc<Log>, tokio::task::JoinHandle<()>), LogError> {
        let (tiles, metrics) = Self::caches(opts.tile_cache_mb);
        let vkey = signer.verifier().to_string();
        let recorded = match &opts.freeze_marker {
            Some(p) => read_marker(p)?,
            None => None,
        };
        let expired = opts.not_after.is_some_and(|t| SystemTime::now() >= t);
        let start_frozen = recorded.is_some() || opts.frozen || expired;
        let mut cfg = opts.sequencer;
        cfg.metrics = metrics.clone();
        cfg.tiles = Some(tiles.clone());
        cfg.frozen = None;
        if start_frozen {
            // The final size: the durable tree's (the sequencer signs a
            // checkpoint for it at start if a crash left it uncovered).
            let size = store.load_state()?.tree.size();
            cfg.frozen = Some(frozen_message(&name, size));
        }
        needs_subjects(&name, &masker, opts.subjects.as_ref())?;
        let records = Arc::new(records::record_masker(origin)?);
        let (seq, task) = Sequencer::start(store.clone(), signer, origin.to_owned(), cfg)?;
        let log = Arc::new(Log {
            name,
            origin: origin.into(),
            vkey,
            seq,
            store,
            masker,
            tiles,
            metrics,
            freeze_marker: opts.freeze_marker,
            subjects: opts.subjects,
            records,
        });
        if let Some(size) = recorded {
            let head = log.latest().size;
            if head != size {
                tracing::error!(
                    log = %log.name,
                    marker = size.0,
                    store = head.0,
                    "the freeze marker's final size differs from the store's latest checkpoint; the log stays frozen at the store's"
                );
            }
        }
        if let Some(p) = &log.freeze_marker
            && start_frozen
            && recorded.is_none()
        {
            // Configured or expired: recorded, so that the log stays
            // frozen whatever the configuration says later.
            write_marker(p, &log.latest().note).map_err(|e| {
                LogError::Unavailable(format!("freeze marker {}: {e}", p.display()))
            })?;
        }
        if start_frozen {
            tracing::info!(log = %log.name, size = log.latest().size.0, "the log is frozen");
        } else if let Some(t) = opts.not_after {
            let me = Arc::downgrade(&log);
            tokio::spawn(async move {
                // Sleep in steps: far-off times, and clock changes.
                loop {
                    let left = t.duration_since(SystemTime::now()).unwrap_or_default();
                    if left.is_zero() {
                        break;
                    }
                    tokio::time::sleep(left.min(Duration::from_secs(3600))).await;
                }
                if let Some(log) = me.upgrade() {
                    match log.freeze().await {
                        Ok(h) => {
                            tracing::info!(log = %log.name, size = h.size.0, "not_after reached: the log is frozen")
                        }
                        Err(e) => {
                            tracing::error!(log = %log.name, error = %e, "freezing the log at not_after failed")
                        }
                    }
                }
            });
        }
        Ok((log, task))
    }

    /// Follows a log another process writes, through a shared store (a
    /// bucket): a read replica (`follow.standby` is `None`) or a warm
    /// standby that becomes the writer when elected
    /// ([`Sequencer::follow`]). Reads are served from the start; appends
    /// are refused until it writes. Freezing is the writer's: the freeze
    /// settings of `opts` are not used.
    pub fn follow(
        name: LogName,
        origin: &str,
        store: Arc<dyn cairn_storage::SharedLogStore>,
        masker: Arc<Masker>,
        opts: LogOptions,
        follow: crate::sequencer::Follow,
    ) -> Result<(Arc<Log>, tokio::task::JoinHandle<()>), LogError> {
        let (tiles, metrics) = Self::caches(opts.tile_cache_mb);
        needs_subjects(&name, &masker, opts.subjects.as_ref())?;
        let vkey = follow.verifier.to_string();
        let mut cfg = opts.sequencer;
        cfg.metrics = metrics.clone();
        cfg.tiles = Some(tiles.clone());
        cfg.frozen = None;
        let records = Arc::new(records::record_masker(origin)?);
        let (seq, task) = Sequencer::follow(store.clone(), origin.to_owned(), cfg, follow)?;
        let log = Arc::new(Log {
            name,
            origin: origin.into(),
            vkey,
            seq,
            store,
            masker,
            tiles,
            metrics,
            freeze_marker: None,
            subjects: opts.subjects,
            records,
        });
        Ok((log, task))
    }

    /// A log's proof tile cache (`mb` MiB; 0: the default) and metrics.
    ///
    /// (With [`needs_subjects`], what [`Log::start`] and [`Log::follow`]
    /// share before they build their sequencer.)
    fn caches(mb: usize) -> (Arc<TileCache>, Arc<LogMetrics>) {
        let mb = if mb == 0 { DEFAULT_TILE_CACHE_MB } else { mb };
        // ~24 KiB per full expanded tile (hashes, interior nodes).
        let tiles = Arc::new(TileCache::new(mb.saturating_mul(1024) / 24));
        (tiles, Arc::new(LogMetrics::default()))
    }

    /// What this process does with the log: `"writer"`, `"standby"` (it
    /// follows, and takes over if elected) or `"read-only"` (a replica).
    pub fn role(&self) -> &'static str {
        match &*self.seq.following().borrow() {
            None => "writer",
            Some(crate::AppendError::Standby(_)) => "standby",
            Some(_) => "read-only",
        }
    }

    /// The log's name.
    pub fn name(&self) -> &LogName {
        &self.name
    }

    /// The log's origin (checkpoint origin line and key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log's verifier key (`<name>+<hash>+<key>`).
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The log's store.
    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// The log's proof tile cache.
    pub fn tiles(&self) -> &Arc<TileCache> {
        &self.tiles
    }

    /// The log's metrics.
    pub fn metrics(&self) -> &Arc<LogMetrics> {
        &self.metrics
    }

    /// The log's sequencer (heads, health).
    pub fn sequencer(&self) -> &Sequencer {
        &self.seq
    }

    /// The latest signed head.
    pub fn latest(&self) -> Arc<SignedHead> {
        self.seq.head().borrow().clone()
    }

    /// Why the log stopped writing, if it has.
    pub fn halted(&self) -> Option<Arc<str>> {
        self.seq.halted().borrow().clone()
    }

    /// Why the log is frozen, if it is.
    pub fn frozen(&self) -> Option<Arc<str>> {
        self.seq.frozen().borrow().clone()
    }

    /// Freezes the log (see the module docs): waits for the batch being
    /// written, refuses every append after it, records the freeze, and
    /// returns the final signed head. Idempotent.
    pub async fn freeze(&self) -> Result<Arc<SignedHead>, LogError> {
        let name = self.name.clone();
        let head = self
            .seq
            .freeze(Box::new(move |h| frozen_message(&name, h.size)))
            .await?;
        if let Some(p) = &self.freeze_marker {
            let p = p.clone();
            let note = head.note.clone();
            blocking(move || {
                write_marker(&p, &note).map_err(|e| {
                    tracing::error!(path = %p.display(), error = %e, "writing the freeze marker failed");
                    LogError::Unavailable(
                        "the log is frozen, but recording the freeze failed (see the server log); it would not survive a restart".into(),
                    )
                })
            })
            .await?;
        }
        Ok(head)
    }

    /// Masks an event with this log's policy, counting its decisions.
    pub fn mask(
        &self,
        policy: &str,
        event: &[u8],
        content_type: ContentType,
    ) -> Result<Masked, LogError> {
        let masked = mask_event(
            &self.masker,
            policy,
            event,
            content_type,
            now_ms(),
            &mut os_salt,
            self.subjects.as_deref(),
        )?;
        self.metrics
            .masked(masked.decisions.iter().map(|d| &*d.detector));
        Ok(masked)
    }

    /// The sequencer's request for a masked event. An idempotency key is
    /// scoped to the caller (`scope`: the identity's name, `None` on an open
    /// log) and hashed here, so no client byte goes further; `request` is
    /// what makes two appends the same (event, content type, policy).
    /// The leaf is copied: the receipt keeps `masked`'s.
    pub fn request(
        &self,
        masked: &Masked,
        idempotency: Option<IdempotentAppend<'_>>,
    ) -> AppendRequest {
        self.request_with(masked.leaf.clone(), idempotency)
    }

    /// [`Log::request`] for a leaf the caller hands over (a receipt that
    /// does not carry the leaf needs no copy of it).
    pub fn request_with(
        &self,
        leaf: Vec<u8>,
        idempotency: Option<IdempotentAppend<'_>>,
    ) -> AppendRequest {
        AppendRequest {
            leaf_hash: leaf_hash(&leaf),
            leaf,
            idempotency: idempotency
                .map(|i| self.seq.idempotency().record(i.scope, i.key, i.request)),
        }
    }

    /// Queues an append; `Busy` at once if the queue is full.
    pub fn try_append(&self, req: AppendRequest) -> Result<Reply, LogError> {
        Ok(self.seq.try_append(req)?)
    }

    /// Queues an append, waiting for room (backpressure for streams).
    pub async fn queue_wait(&self, req: AppendRequest) -> Result<Reply, LogError> {
        Ok(self.seq.queue_wait(req).await?)
    }

    /// Queues a batch of appends in order (see
    /// [`Sequencer::queue_wait_many`]).
    pub async fn queue_wait_many(&self, reqs: Vec<AppendRequest>) -> Result<Vec<Reply>, LogError> {
        Ok(self.seq.queue_wait_many(reqs).await?)
    }

    /// Waits for a queued append's answer and builds its receipt (with
    /// its inclusion proof when `prove`; otherwise `path` is empty).
    pub async fn finish(
        self: &Arc<Self>,
        masked: Masked,
        hash: Hash,
        reply: Reply,
        prove: bool,
    ) -> Result<Receipt, LogError> {
        let done = reply.await.unwrap_or(Err(AppendError::ShuttingDown))?;
        if !prove {
            let Appended {
                index,
                head,
                duplicate,
            } = done;
            return Ok(Receipt {
                index,
                // A duplicate's leaf hash is the original's: the same leaf
                // only if the event masked to the same bytes, so look.
                leaf_hash: if duplicate {
                    self.leaf_hash_at(index).await?
                } else {
                    hash
                },
                leaf: Vec::new(),
                openings: if duplicate {
                    Vec::new()
                } else {
                    masked.openings
                },
                head,
                path: Vec::new(),
                duplicate,
            });
        }
        self.receipt(masked, hash, done).await
    }

    /// The leaf hash of a stored entry (from the cache when its tile is
    /// there).
    async fn leaf_hash_at(self: &Arc<Self>, index: LeafIndex) -> Result<Hash, LogError> {
        let size = self.latest().size;
        if let Some(h) = self.tiles.leaf_cached(index.0, size.0) {
            return Ok(h);
        }
        let leaf = self
            .entries(index, 1)
            .await?
            .pop()
            .ok_or_else(|| LogError::Unavailable("stored entry missing".into()))?;
        Ok(leaf_hash(&leaf))
    }

    /// Builds the receipt of a durable, checkpointed append: from the
    /// masked event in hand and the tiles the batch left in the cache (no
    /// store read, no blocking thread), with one proof plan. Only a
    /// duplicate (whose leaf is the stored original) or a tile evicted
    /// since reads the store.
    pub async fn receipt(
        self: &Arc<Self>,
        masked: Masked,
        hash: Hash,
        done: Appended,
    ) -> Result<Receipt, LogError> {
        let Appended {
            index,
            head,
            duplicate,
        } = done;
        let (leaf, openings) = if duplicate {
            (Vec::new(), Vec::new())
        } else {
            (masked.leaf, masked.openings)
        };
        let plan = ProofPlan::inclusion(index, head.size)?;
        if !duplicate && let Some(path) = self.tiles.prove_cached(&plan) {
            return Ok(Receipt {
                index,
                leaf_hash: hash,
                leaf,
                openings,
                head,
                path: path?,
                duplicate,
            });
        }
        let me = self.clone();
        let (leaf, leaf_hash, path) = blocking(move || {
            let (leaf, hash) = if duplicate {
                let stored = me
                    .store
                    .read_entries(index, 1)?
                    .pop()
                    .ok_or_else(|| LogError::Unavailable("stored entry missing".into()))?;
                let h = cairn_core::hash::leaf_hash(&stored);
                (stored, h)
            } else {
                (leaf, hash)
            };
            let path = me.tiles.prove(&*me.store, &plan)?;
            Ok((leaf, hash, path))
        })
        .await?;
        Ok(Receipt {
            index,
            leaf_hash,
            leaf,
            openings,
            head,
            path,
            duplicate,
        })
    }

    /// A requested tree size: 0 means the latest checkpoint's; anything
    /// beyond it is `OutOfRange`.
    pub fn tree_size(&self, requested: u64) -> Result<TreeSize, LogError> {
        let head = self.latest().size;
        let size = if requested == 0 {
            head
        } else {
            TreeSize(requested)
        };
        if size > head {
            return Err(LogError::OutOfRange(format!(
                "tree size {size} is beyond the latest checkpoint ({head})"
            )));
        }
        Ok(size)
    }

    /// Proves `at` in the tree of `size` (0: the latest). By index with
    /// every tile cached, the answer is lookups and a few hashes: no store
    /// read and no hop to a blocking thread.
    pub async fn inclusion_proof(
        self: &Arc<Self>,
        at: LeafRef,
        size: u64,
    ) -> Result<InclusionProof, LogError> {
        let size = self.tree_size(size)?;
        let mut index_plan = None;
        if let LeafRef::Index(i) = at
            && size.contains(i)
        {
            let plan = index_plan.insert(ProofPlan::inclusion(i, size)?);
            if let (Some(path), Some(leaf_hash)) = (
                self.tiles.prove_cached(plan),
                self.tiles.leaf_cached(i.0, size.0),
            ) {
                return Ok(InclusionProof {
                    index: i,
                    size,
                    leaf_hash,
                    path: path?,
                });
            }
        }
        let me = self.clone();
        blocking(move || {
            let index = match at {
                LeafRef::Index(i) => i,
                LeafRef::Hash(h) => me
                    .store
                    .find_leaf(&h)?
                    .ok_or_else(|| LogError::NotFound("no entry has that leaf hash".into()))?,
            };
            if !size.contains(index) {
                return Err(LogError::OutOfRange(format!(
                    "index {index} is not in the tree of size {size}"
                )));
            }
            let leaf = me
                .store
                .read_entries(index, 1)?
                .pop()
                .ok_or_else(|| LogError::Unavailable("stored entry missing".into()))?;
            let plan = match index_plan {
                Some(p) => p,
                None => ProofPlan::inclusion(index, size)?,
            };
            let path = me.tiles.prove(&*me.store, &plan)?;
            Ok(InclusionProof {
                index,
                size,
                leaf_hash: leaf_hash(&leaf),
                path,
            })
        })
        .await
    }

    /// Proves the tree of `new` (0: the latest) extends the tree of `old`.
    pub async fn consistency_proof(
        self: &Arc<Self>,
        old: u64,
        new: u64,
    ) -> Result<(TreeSize, TreeSize, Vec<Hash>), LogError> {
        let new = self.tree_size(new)?;
        let old = TreeSize(old);
        if old > new || old.0 == 0 {
            return Err(LogError::InvalidArgument(format!(
                "need 0 < old_size <= new_size, got {old} and {new}"
            )));
        }
        self.prove(ProofPlan::consistency(old, new)?)
            .await
            .map(|p| (old, new, p))
    }

    /// Resolves a proof plan: from the cache when every tile is there,
    /// otherwise on a blocking thread reading the missing tiles.
    pub async fn prove(self: &Arc<Self>, plan: ProofPlan) -> Result<Vec<Hash>, LogError> {
        if let Some(p) = self.tiles.prove_cached(&plan) {
            return p;
        }
        let me = self.clone();
        blocking(move || me.tiles.prove(&*me.store, &plan)).await
    }

    /// Reads `n` entries from `start` (blocking store read on a worker).
    pub async fn entries(&self, start: LeafIndex, n: usize) -> Result<Vec<Vec<u8>>, LogError> {
        let store = self.store.clone();
        blocking(move || Ok(store.read_entries(start, n)?)).await
    }
}

/// A subject key's state, as [`Log::subject_state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectState {
    /// The key exists: its values can be revealed (with the `reveal` scope).
    Live,
    /// Erased; the erasure record's index, once it was written.
    Erased(Option<u64>),
    /// This store never held the key.
    Unknown,
}

/// What an erasure did.
#[derive(Debug)]
pub struct Erased {
    /// The subject's key id (as in the leaves and the erasure record).
    pub subject: KeyId,
    /// Whether a key existed (false: never seen, or erased before).
    pub existed: bool,
    /// The erasure record's receipt.
    pub record: Receipt,
}

/// Subject keys errors: the store's own message goes to the server's log,
/// the caller gets a fixed one.
fn subjects_err(e: cairn_subjects::Error) -> LogError {
    tracing::error!(error = %e, "subject key store");
    LogError::Unavailable("the subject key store failed (see the server log)".into())
}

impl Log {
    /// The log's subject key store, if it has one.
    pub fn subjects(&self) -> Option<&Arc<SubjectStore>> {
        self.subjects.as_ref()
    }

    /// Whether the subject behind a key id (as in an `enc:` value) still
    /// has its key ([`SubjectState`]). Says nothing about the subject
    /// itself: a key id is a keyed hash, and erasures are public in the
    /// log (its erasure records) anyway.
    pub async fn subject_state(&self, kid: &str) -> Result<SubjectState, LogError> {
        let store = self.need_subjects()?;
        let kid = cairn_masking::KeyId::parse(kid).ok_or_else(|| {
            LogError::InvalidArgument(format!(
                "not a key id ({} bytes): the part after enc: in a sealed value",
                kid.len()
            ))
        })?;
        blocking(move || {
            Ok(match store.key(&kid).map_err(subjects_err)? {
                cairn_subjects::KeyState::Live(_) => SubjectState::Live,
                cairn_subjects::KeyState::Erased(at) => SubjectState::Erased(at),
                cairn_subjects::KeyState::Unknown => SubjectState::Unknown,
            })
        })
        .await
    }

    fn need_subjects(&self) -> Result<Arc<SubjectStore>, LogError> {
        self.subjects.clone().ok_or_else(|| {
            LogError::FailedPrecondition(format!(
                "log \"{}\" has no subject key store (subject_keys): it encrypts nothing",
                self.name
            ))
        })
    }

    /// Appends one of the log's own records and waits for its receipt
    /// (with its inclusion proof).
    pub async fn append_record(self: &Arc<Self>, record: &Record<'_>) -> Result<Receipt, LogError> {
        let masked = records::record_leaf(&self.records, record, now_ms())?;
        let req = self.request(&masked, None);
        let hash = req.leaf_hash;
        let reply = self.queue_wait(req).await?;
        self.finish(masked, hash, reply, true).await
    }

    /// Erases a data subject (docs/design/erasure.md): destroys its key
    /// (tombstone, then the key file; both synced), then appends an
    /// erasure record naming the subject's key id, who and why. Every
    /// value sealed for the subject is unreadable from then on; the tree
    /// and every proof are untouched. Idempotent: erasing again destroys
    /// nothing more and appends another record.
    ///
    /// If the record cannot be appended (a frozen or stopped log), the key
    /// is destroyed all the same and the error says so.
    pub async fn erase(
        self: &Arc<Self>,
        subject: &str,
        by: &str,
        reason: &str,
    ) -> Result<Erased, LogError> {
        let subjects = self.need_subjects()?;
        if subject.is_empty() {
            return Err(LogError::InvalidArgument("the subject is empty".into()));
        }
        if reason.trim().is_empty() {
            return Err(LogError::InvalidArgument(
                "an erasure needs a reason (it is recorded in the log)".into(),
            ));
        }
        let s2 = subjects.clone();
        let subj = Zeroizing::new(subject.to_owned());
        let (kid, existed) = blocking(move || s2.erase(&subj).map_err(subjects_err)).await?;
        let record = self
            .append_record(&Record::Erasure {
                subject: &kid,
                by,
                reason,
            })
            .await
            .map_err(|e| {
                LogError::FailedPrecondition(format!(
                    "the subject's key is destroyed, but the erasure record could not be appended ({e}); erase again to record it"
                ))
            })?;
        let (s2, k2, at) = (subjects, kid.clone(), record.index.0);
        if let Err(e) = blocking(move || s2.erased_at(&k2, at).map_err(subjects_err)).await {
            // The key is gone and the record is in the log; only the
            // tombstone's pointer to the record is missing.
            tracing::warn!(error = %e, "recording the erasure record's index in the tombstone failed");
        }
        tracing::info!(log = %self.name, subject = %kid, index = at, "subject erased");
        Ok(Erased {
            subject: kid,
            existed,
            record,
        })
    }

    /// Reveals the sealed values of one field of one entry: decrypts them
    /// in memory, then appends an access record (who, which entry and
    /// field, why) and only then answers, with the field's text (sealed
    /// values replaced by their plaintext) and the record's receipt.
    pub async fn reveal(
        self: &Arc<Self>,
        index: LeafIndex,
        pointer: &str,
        by: &str,
        purpose: &str,
    ) -> Result<(Zeroizing<String>, Receipt), LogError> {
        let subjects = self.need_subjects()?;
        if purpose.trim().is_empty() {
            return Err(LogError::InvalidArgument(
                "a reveal needs a purpose (it is recorded in the log)".into(),
            ));
        }
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(LogError::InvalidArgument(
                "pointer must be a JSON pointer (RFC 6901): empty, or starting with /".into(),
            ));
        }
        let size = self.latest().size;
        if index.0 >= size.0 {
            return Err(LogError::OutOfRange(format!(
                "index {} is beyond the tree (size {})",
                index.0, size.0
            )));
        }
        let leaf = self
            .entries(index, 1)
            .await?
            .pop()
            .ok_or_else(|| LogError::Unavailable("the entry could not be read".into()))?;
        let v: serde_json::Value = serde_json::from_slice(&leaf)
            .map_err(|_| LogError::FailedPrecondition("the entry is not a JSON leaf".into()))?;
        let text = v
            .get("body")
            .and_then(|b| b.pointer(pointer))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                LogError::NotFound(format!(
                    "entry {} has no string at that pointer ({} bytes)",
                    index.0,
                    pointer.len()
                ))
            })?;
        let spans = find_sealed(text);
        if spans.is_empty() {
            return Err(LogError::InvalidArgument(format!(
                "the field of entry {} holds no encrypted value",
                index.0
            )));
        }
        let s2 = subjects.clone();
        let kids: Vec<KeyId> = spans.iter().map(|(_, s)| s.kid.clone()).collect();
        let keys = blocking(move || {
            kids.iter()
                .map(|k| s2.key(k).map_err(subjects_err))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        let mut out = Zeroizing::new(String::with_capacity(text.len()));
        let mut at = 0;
        for ((range, sealed), state) in spans.iter().zip(keys) {
            let key = match state {
                KeyState::Live(k) => k,
                KeyState::Erased(Some(i)) => {
                    return Err(LogError::NotFound(format!(
                        "erased: the subject's key was destroyed (erasure record at index {i})"
                    )));
                }
                KeyState::Erased(None) => {
                    return Err(LogError::NotFound(
                        "erased: the subject's key was destroyed".into(),
                    ));
                }
                KeyState::Unknown => {
                    return Err(LogError::NotFound(
                        "no key for this value in the subject key store".into(),
                    ));
                }
            };
            let plain = sealed
                .open(&key, &self.origin, pointer)
                .map_err(|e| match e {
                    OpenError::Malformed | OpenError::Forged => {
                        LogError::FailedPrecondition(format!("the sealed value does not open: {e}"))
                    }
                })?;
            out.push_str(&text[at..range.start]);
            out.push_str(&plain);
            at = range.end;
        }
        out.push_str(&text[at..]);
        let record = self
            .append_record(&Record::Access {
                index: index.0,
                pointer,
                by,
                purpose,
            })
            .await?;
        tracing::info!(log = %self.name, entry = index.0, record = record.index.0, "sealed value revealed");
        Ok((out, record))
    }
}
