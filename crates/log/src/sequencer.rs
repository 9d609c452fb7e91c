//! The sequencer: the log's single writer.
//!
//! Appends arrive on a bounded queue (full → [`AppendError::Busy`], the
//! server's `RESOURCE_EXHAUSTED`). One task takes them in batches that close
//! at [`SequencerConfig::max_batch`] entries or [`SequencerConfig::max_age`]
//! after the batch's first entry, and for each batch:
//!
//! 1. **Sequence**: resolve idempotency keys (scoped to the caller and
//!    hashed before they get here, see [`IdempotencyHasher`]): a repeat of
//!    the same request is answered with the original index, a repeat with
//!    a different request is refused ([`AppendError::KeyReused`]); give
//!    the rest consecutive indexes.
//! 2. **Integrate** (`cairn-core`): new root and tile hashes. Memory only.
//! 3. **Commit** (`LogStore::commit_batch`, one synced write). *Crash before
//!    it completes: the batch is gone and nobody was answered. Crash after:
//!    the entries are durable but not yet covered by a checkpoint; start-up
//!    finds the tree ahead of its latest checkpoint and signs it
//!    ([`Sequencer::start`]).*
//! 4. **Sign** the checkpoint, only now that the batch is durable, and store
//!    it (`put_checkpoint`, synced; the store advances its fork guard).
//!    *Crash here: as in 3; the re-signed note is the same bytes (Ed25519 is
//!    deterministic and the body is a function of origin, size and root).*
//! 5. **Publish** the new signed head and **answer** every waiter. An
//!    append returns only once its entry is durable and covered by a signed
//!    checkpoint.
//!
//! Store failures: after a transient write error (I/O, a full disk) the
//! sequencer reloads the durable state. If the batch landed anyway
//! ("failed but saved"), it carries on as if the write had succeeded; if
//! not, every waiter of the batch gets [`AppendError::Unavailable`] and the
//! tree is unchanged, so nothing is signed twice at one size with different
//! roots. An error that only another writer, a damaged store or a second
//! view of history explains ([`is_fatal`]) stops the log writing: every
//! waiter then, and every append after, gets [`AppendError::Halted`], said
//! loudly (error log, `cairn_log_halted`, health), until a restart. A fork
//! guard that could not follow a durable checkpoint (`GuardWrite`) is not
//! a failure of the batch: said loudly, retried with the next checkpoint.
//!
//! Defaults: batches of up to 16,384 entries or 2 ms, whichever comes
//! first (a lone append waits at most 2 ms plus one synced write, ~0.3 ms
//! here; under load, a batch takes what is queued, up to 16,384, and the
//! fsync, the tiles' rewrite and the checkpoint are shared by all of it:
//! 1.15-1.28x the appends/s of 4,096 in batches, docs/benchmarks.md). Queue: 65,536 appends and 128 MiB of leaves
//! (whichever fills first), counted until each batch is written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::hash::{Hash, LeafIndex};
use cairn_core::note::{NoteSigner, NoteVerifier};
use cairn_core::tree::TreeState;
use cairn_storage::{Idempotency, IdempotencyKey, LogStore, NewEntry, SharedLogStore, StoreError};

pub use crate::pipeline::{SignedHead, is_fatal};
use crate::pipeline::{WritePipeline, sign};
use tokio::sync::{mpsc, oneshot, watch};

/// A batch slower than this end to end is logged at warn level.
const SLOW_BATCH: Duration = Duration::from_millis(20);

/// The default [`SequencerConfig::queue_bytes`]: 128 MiB of leaves (with
/// the receipt side's copy, about twice that at most).
pub const DEFAULT_QUEUE_BYTES: usize = 128 << 20;

/// Batching and queue limits.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// Largest batch, in entries.
    pub max_batch: usize,
    /// Longest a batch stays open after its first entry.
    pub max_age: Duration,
    /// Appends that may wait in the queue before `Busy`.
    pub queue: usize,
    /// Bytes of leaves that may wait in the queue, or be in the batch
    /// being written, before `Busy` (unary appends) or a wait (streams):
    /// what bounds the queue's memory, whatever the entries' sizes.
    pub queue_bytes: usize,
    /// The store's writer lease, checked before every commit (`None`: the
    /// store alone guards its writer).
    pub lease: Option<Arc<dyn cairn_storage::WriterLease>>,
    /// Told of every new signed head, in order, once it is durable and
    /// before the batch is answered ([`crate::Publisher`]).
    pub publishers: Vec<Arc<dyn crate::Publisher>>,
    /// The log's metrics.
    pub metrics: Arc<crate::metrics::LogMetrics>,
    /// Given every batch's new tiles before the batch is answered, so
    /// that receipts prove from memory.
    pub tiles: Option<Arc<crate::cache::TileCache>>,
    /// Start frozen, with this reason (see [`Sequencer::freeze`]).
    pub frozen: Option<Arc<str>>,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch: 16_384,
            max_age: Duration::from_millis(2),
            queue: 65_536,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            lease: None,
            publishers: Vec::new(),
            metrics: Arc::default(),
            tiles: None,
            frozen: None,
        }
    }
}

/// One entry to append: the masked leaf and its hash.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The leaf bytes to store.
    pub leaf: Vec<u8>,
    /// `leaf_hash(leaf)`, computed off the sequencer's thread.
    pub leaf_hash: Hash,
    /// The scoped, hashed idempotency key and request digest
    /// ([`IdempotencyHasher`]), if the append had a key.
    pub idempotency: Option<Idempotency>,
}

/// Turns a caller's idempotency key into what the store keeps.
///
/// Keys are scoped by the caller's identity (one anonymous scope on an open
/// log), so no caller can claim, or learn the entries of, another's keys;
/// and they are stored as HMAC-SHA-256 under a per-log secret derived from
/// the log's signing key (`NoteSigner::derive_secret`), so no byte a client
/// chose reaches disk, and a key such as an email address cannot be
/// recovered from the store by guessing without the log's key. The request
/// digest (same construction, another label) lets a repeat of a key with a
/// different event be told from a retry.
#[derive(Clone)]
pub struct IdempotencyHasher {
    secret: Arc<zeroize::Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for IdempotencyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyHasher(secret hidden)")
    }
}

impl IdempotencyHasher {
    /// A hasher under a random secret, for a read replica (which takes no
    /// appends, and has no signing key to derive the log's secret from).
    pub fn ephemeral() -> Self {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        // An all-zero secret would only matter if appends were taken, and
        // a read replica refuses them before hashing anything.
        let _ = getrandom::fill(&mut *secret);
        IdempotencyHasher {
            secret: Arc::new(secret),
        }
    }

    /// The hasher of the log signed by `signer`.
    pub fn new(signer: &NoteSigner) -> Self {
        IdempotencyHasher {
            secret: Arc::new(zeroize::Zeroizing::new(
                signer.derive_secret(b"cairn-idempotency/v1"),
            )),
        }
    }

    #[allow(clippy::expect_used)]
    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        use hmac::{Hmac, KeyInit, Mac};
        // HMAC takes keys of any length (RFC 2104 §2): `new_from_slice`
        // only fails for fixed-length MACs, so this expect cannot fire.
        let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&**self.secret)
            .expect("HMAC accepts any key length");
        m.update(label);
        for p in parts {
            // Length-prefixed, so that no two part lists collide.
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// The record for `key` sent by `scope` (the caller's identity; `None`
    /// for an open log's anonymous callers) with a request described by
    /// `request` (every field that makes two appends the same append).
    pub fn record(&self, scope: Option<&str>, key: &[u8], request: &[&[u8]]) -> Idempotency {
        let scope = match scope {
            Some(name) => [b"id:".as_slice(), name.as_bytes()].concat(),
            None => b"anonymous".to_vec(),
        };
        Idempotency {
            key: IdempotencyKey(self.mac(b"key\0", &[&scope, key])),
            request: self.mac(b"request\0", request),
        }
    }
}

/// A durable, checkpointed append.
#[derive(Clone, Debug)]
pub struct Appended {
    /// The entry's index.
    pub index: LeafIndex,
    /// A signed head whose tree contains the entry.
    pub head: Arc<SignedHead>,
    /// True if an earlier append with the same idempotency key is the answer.
    pub duplicate: bool,
}

/// Why an append was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The queue is full: retry later (`RESOURCE_EXHAUSTED`).
    #[error("the append queue is full; retry later")]
    Busy,
    /// Storage failed; the entry was not appended (`UNAVAILABLE`).
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// The sequencer has stopped.
    #[error("the log is shutting down")]
    ShuttingDown,
    /// The caller's idempotency key was first used with a different
    /// request (`ALREADY_EXISTS`): nothing was appended.
    #[error(
        "this idempotency key was already used for a different event (entry {index}); use a new key for a new event"
    )]
    KeyReused {
        /// The entry the key was first used for.
        index: LeafIndex,
    },
    /// The log has stopped writing until an operator acts
    /// (`FAILED_PRECONDITION`): the store refused something that must never
    /// happen to a healthy single writer (another writer, a second
    /// checkpoint for one size, corruption). Reads go on.
    #[error("the log has stopped writing: {0}")]
    Halted(Arc<str>),
    /// The log is frozen (`FAILED_PRECONDITION`): its final checkpoint is
    /// signed and it takes no more appends, ever. The message names the
    /// log and its final size.
    #[error("{0}")]
    Frozen(Arc<str>),
    /// This process is a warm standby of the log (`UNAVAILABLE`): another
    /// process writes it; this one serves reads and takes over if elected.
    #[error("{0}")]
    Standby(Arc<str>),
    /// This process is a read replica of the log (`FAILED_PRECONDITION`):
    /// it never writes; append to the log's writer.
    #[error("{0}")]
    ReadOnly(Arc<str>),
}

struct Job {
    req: AppendRequest,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
    /// The job's share of the queue's byte budget, returned when the job
    /// is dropped (its batch written, or refused).
    _bytes: tokio::sync::OwnedSemaphorePermit,
}

/// Words a frozen log's appends get, from its final head.
pub type FrozenMessage = Box<dyn FnOnce(&SignedHead) -> Arc<str> + Send>;

/// An order to the sequencer's task, taken between two batches.
enum Ctl {
    /// Freeze: the reason appends get from now on, and where the final
    /// head goes.
    Freeze(FrozenMessage, oneshot::Sender<Arc<SignedHead>>),
    /// Take no more appends; write and answer those queued, then end.
    Close,
}

/// Where an append's answer arrives.
pub type Reply = oneshot::Receiver<Result<Appended, AppendError>>;

impl Job {
    /// A job and the receiver of its answer.
    fn new(req: AppendRequest, bytes: tokio::sync::OwnedSemaphorePermit) -> (Job, Reply) {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            req,
            reply,
            _bytes: bytes,
        };
        (job, rx)
    }
}

/// Handle to the running sequencer. Dropping every handle lets the task
/// finish the queued appends and stop.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Job>,
    head: watch::Receiver<Arc<SignedHead>>,
    halted: watch::Receiver<Option<Arc<str>>>,
    guard: watch::Receiver<Option<Arc<str>>>,
    frozen: watch::Receiver<Option<Arc<str>>>,
    /// While this process follows the log (standby, read replica): what
    /// appends get.
    following: watch::Receiver<Option<AppendError>>,
    ctl: mpsc::Sender<Ctl>,
    idempotency: IdempotencyHasher,
    /// Bytes of leaves queued or being written ([`SequencerConfig::queue_bytes`]).
    bytes: Arc<tokio::sync::Semaphore>,
    /// The semaphore's size.
    budget: usize,
}

impl Sequencer {
    /// Loads the store's state, signs a checkpoint for it if the last run
    /// stopped between a commit and its checkpoint, and starts the task.
    /// Must run inside a Tokio runtime.
    pub fn start(
        store: Arc<dyn LogStore>,
        signer: NoteSigner,
        origin: String,
        config: SequencerConfig,
    ) -> Result<(Sequencer, tokio::task::JoinHandle<()>), StoreError> {
        let (guard_tx, guard) = watch::channel(None);
        let (head, tree) = writer_head(&*store, &signer, &origin, &guard_tx, &config.metrics)?;
        let idempotency = IdempotencyHasher::new(&signer);
        let (seq, parts) = Sequencer::assemble(head, guard, None, idempotency, &config);
        let task = tokio::spawn(run(
            store,
            signer,
            origin,
            config,
            tree,
            (parts.rx, parts.ctl),
            (parts.head, parts.halt, guard_tx, parts.frozen),
        ));
        Ok((seq, task))
    }

    /// Follows a log another process writes, through a shared store (a
    /// bucket): a read replica, or a warm standby that becomes the writer
    /// when elected. See [`Follow`]. The head served is the latest
    /// checkpoint in the store, checked against the log's key, and moves
    /// as the store is refreshed; appends get [`AppendError::Standby`] or
    /// [`AppendError::ReadOnly`]. The store must hold a checkpoint (the
    /// writer signs one when it first starts). Must run inside a Tokio
    /// runtime.
    pub fn follow(
        store: Arc<dyn SharedLogStore>,
        origin: String,
        config: SequencerConfig,
        follow: Follow,
    ) -> Result<(Sequencer, tokio::task::JoinHandle<()>), StoreError> {
        let state = store.load_state()?;
        let stored = state.checkpoint.ok_or_else(|| {
            StoreError::ReadOnly(
                "the store holds no checkpoint yet: its writer has not started".into(),
            )
        })?;
        let head = followed_head(&stored.note, &origin, &follow.verifier)?;
        let (guard_tx, guard) = watch::channel(None);
        let (why, idempotency) = match &follow.standby {
            Some((signer, _)) => (
                AppendError::Standby(
                    format!(
                        "this server is a standby of log \"{origin}\": another server writes it; retry (this one takes over if the writer fails)"
                    )
                    .into(),
                ),
                IdempotencyHasher::new(signer),
            ),
            None => (
                AppendError::ReadOnly(
                    format!(
                        "this server is a read replica of log \"{origin}\": it never writes; append to the log's writer"
                    )
                    .into(),
                ),
                IdempotencyHasher::ephemeral(),
            ),
        };
        let (seq, parts) = Sequencer::assemble(head, guard, Some(why), idempotency, &config);
        let task = tokio::spawn(follow_run(
            store,
            origin,
            config,
            follow,
            (parts.rx, parts.ctl),
            (parts.head, parts.halt, guard_tx, parts.frozen),
            parts.following,
        ));
        Ok((seq, task))
    }

    /// The handle and the task's ends of its channels.
    fn assemble(
        head: SignedHead,
        guard: watch::Receiver<Option<Arc<str>>>,
        following: Option<AppendError>,
        idempotency: IdempotencyHasher,
        config: &SequencerConfig,
    ) -> (Sequencer, TaskEnds) {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        config
            .metrics
            .tree_size
            .store(head.size.0, std::sync::atomic::Ordering::Relaxed);
        let (head_tx, head_rx) = watch::channel(Arc::new(head));
        let (halt_tx, halted) = watch::channel(None);
        let (frozen_tx, frozen) = watch::channel(config.frozen.clone());
        let (following_tx, following) = watch::channel(following);
        let (ctl, ctl_rx) = mpsc::channel(1);
        let budget = config
            .queue_bytes
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let bytes = Arc::new(tokio::sync::Semaphore::new(budget));
        (
            Sequencer {
                tx,
                head: head_rx,
                halted,
                guard,
                frozen,
                following,
                ctl,
                idempotency,
                bytes,
                budget,
            },
            TaskEnds {
                rx,
                ctl: ctl_rx,
                head: head_tx,
                halt: halt_tx,
                frozen: frozen_tx,
                following: following_tx,
            },
        )
    }

    /// While this process follows the log rather than writing it: the
    /// error appends get (`Standby` or `ReadOnly`); `None` once it writes.
    pub fn following(&self) -> watch::Receiver<Option<AppendError>> {
        self.following.clone()
    }

    /// How this log hashes idempotency keys for its store.
    pub fn idempotency(&self) -> &IdempotencyHasher {
        &self.idempotency
    }

    /// Why the log stopped writing, once it has (see
    /// [`AppendError::Halted`]); `changed()` wakes when it does.
    pub fn halted(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.halted.clone()
    }

    /// Why the fork guard lags the store, while it does: a guard write
    /// failed after a durable checkpoint (see `StoreError::GuardWrite`).
    /// Cleared when a later checkpoint advances the guard.
    pub fn guard_lag(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.guard.clone()
    }

    fn check_halted(&self) -> Result<(), AppendError> {
        if let Some(e) = &*self.following.borrow() {
            return Err(e.clone());
        }
        if let Some(why) = &*self.frozen.borrow() {
            return Err(AppendError::Frozen(why.clone()));
        }
        match &*self.halted.borrow() {
            Some(why) => Err(AppendError::Halted(why.clone())),
            None => Ok(()),
        }
    }

    /// Why the log is frozen, once it is; `changed()` wakes when it is.
    pub fn frozen(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.frozen.clone()
    }

    /// Freezes the log: the batch being written (if any) finishes and is
    /// answered; every append after it, queued or not, is refused with
    /// [`AppendError::Frozen`] carrying `why` of the final head. Returns
    /// the final signed head: the log's last checkpoint, already durable.
    /// Freezing a frozen log returns its final head again.
    pub async fn freeze(&self, why: FrozenMessage) -> Result<Arc<SignedHead>, AppendError> {
        if let Some(e) = &*self.following.borrow() {
            return Err(e.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::Freeze(why, tx))
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        rx.await.map_err(|_| AppendError::ShuttingDown)
    }

    /// Stops taking appends (later ones get `ShuttingDown`); the task
    /// writes and answers those already queued, then ends, even while
    /// other handles (readers, witnessing) are still alive.
    pub async fn close(&self) {
        let _ = self.ctl.send(Ctl::Close).await;
    }

    /// A leaf's share of the byte budget: its length, at least 1, and at
    /// most the whole budget (so one large leaf can always go alone).
    fn cost(&self, req: &AppendRequest) -> u32 {
        let budget = u32::try_from(self.budget).unwrap_or(u32::MAX);
        u32::try_from(req.leaf.len().max(1))
            .unwrap_or(u32::MAX)
            .min(budget)
    }

    /// Queues an append; `Busy` at once if the queue is full (in entries
    /// or in bytes). The receiver resolves when the entry is durable and
    /// checkpointed.
    pub fn try_append(&self, req: AppendRequest) -> Result<Reply, AppendError> {
        self.check_halted()?;
        let bytes = self
            .bytes
            .clone()
            .try_acquire_many_owned(self.cost(&req))
            .map_err(|_| AppendError::Busy)?;
        let (job, rx) = Job::new(req, bytes);
        match self.tx.try_send(job) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(_)) => Err(AppendError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AppendError::ShuttingDown),
        }
    }

    /// Queues an append, waiting for room in the queue, in entries and in
    /// bytes (backpressure for streams: the caller stops reading its input
    /// until there is room).
    pub async fn queue_wait(&self, req: AppendRequest) -> Result<Reply, AppendError> {
        self.check_halted()?;
        let bytes = self
            .bytes
            .clone()
            .acquire_many_owned(self.cost(&req))
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let (job, rx) = Job::new(req, bytes);
        self.tx
            .send(job)
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        Ok(rx)
    }

    /// Queues a batch of appends in order, as [`Sequencer::queue_wait`]
    /// does one at a time, but with one check of the log's state, one wait
    /// for the batch's share of the byte budget and one reservation of
    /// queue slots (a batch of a thousand events pays them once). A batch
    /// larger than the whole byte budget is queued one by one.
    pub async fn queue_wait_many(
        &self,
        reqs: Vec<AppendRequest>,
    ) -> Result<Vec<Reply>, AppendError> {
        self.check_halted()?;
        let costs: Vec<u32> = reqs.iter().map(|r| self.cost(r)).collect();
        let total: u64 = costs.iter().map(|&c| u64::from(c)).sum();
        let Ok(total) = u32::try_from(total) else {
            return self.queue_each(reqs).await;
        };
        if total as usize > self.budget || reqs.len() > self.tx.max_capacity() {
            return self.queue_each(reqs).await;
        }
        let mut bytes = self
            .bytes
            .clone()
            .acquire_many_owned(total)
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let slots = self
            .tx
            .reserve_many(reqs.len())
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let mut replies = Vec::with_capacity(reqs.len());
        for ((req, cost), slot) in reqs.into_iter().zip(costs).zip(slots) {
            // `total` is the sum of the costs: every split succeeds.
            let Some(share) = bytes.split(cost as usize) else {
                return Err(AppendError::Unavailable(
                    "internal: the batch's byte budget did not split".into(),
                ));
            };
            let (job, rx) = Job::new(req, share);
            slot.send(job);
            replies.push(rx);
        }
        Ok(replies)
    }

    async fn queue_each(&self, reqs: Vec<AppendRequest>) -> Result<Vec<Reply>, AppendError> {
        let mut replies = Vec::with_capacity(reqs.len());
        for r in reqs {
            replies.push(self.queue_wait(r).await?);
        }
        Ok(replies)
    }

    /// Appends and waits for the durable, checkpointed result.
    pub async fn append(&self, req: AppendRequest) -> Result<Appended, AppendError> {
        self.try_append(req)?
            .await
            .unwrap_or(Err(AppendError::ShuttingDown))
    }

    /// Room in the queue right now, and its size: `(entries free, bytes
    /// free, entries in all, bytes in all)`. A snapshot: other appends may
    /// take it the next moment.
    pub fn room(&self) -> (usize, usize, usize, usize) {
        (
            self.tx.capacity(),
            self.bytes.available_permits(),
            self.tx.max_capacity(),
            self.budget,
        )
    }

    /// The latest signed head; `changed()` wakes on every new one.
    pub fn head(&self) -> watch::Receiver<Arc<SignedHead>> {
        self.head.clone()
    }
}

/// What the sequencer publishes: the signed head, why it stopped writing
/// (once it has), why the fork guard lags (while it does).
type Watches = (
    watch::Sender<Arc<SignedHead>>,
    watch::Sender<Option<Arc<str>>>,
    watch::Sender<Option<Arc<str>>>,
    watch::Sender<Option<Arc<str>>>,
);

/// The sequencer task's ends of its channels.
struct TaskEnds {
    rx: mpsc::Receiver<Job>,
    ctl: mpsc::Receiver<Ctl>,
    head: watch::Sender<Arc<SignedHead>>,
    halt: watch::Sender<Option<Arc<str>>>,
    frozen: watch::Sender<Option<Arc<str>>>,
    following: watch::Sender<Option<AppendError>>,
}

/// How a follower runs ([`Sequencer::follow`]).
pub struct Follow {
    /// How often the store is read for the writer's new batches.
    pub every: Duration,
    /// The log's key: every checkpoint followed must be signed by it.
    pub verifier: NoteVerifier,
    /// A warm standby: the key it signs with, and the signal (`true`)
    /// that it was elected and becomes the writer. `None`: a read replica,
    /// which never writes.
    pub standby: Option<(NoteSigner, watch::Receiver<bool>)>,
}

/// The durable tree and its signed head, for a process about to write:
/// signs the tree's checkpoint, and stores it if the last writer stopped
/// between a commit and its checkpoint (the note is the same bytes if it
/// did not: Ed25519 is deterministic and the body is a function of the
/// origin, size and root).
fn writer_head(
    store: &dyn LogStore,
    signer: &NoteSigner,
    origin: &str,
    guard_tx: &watch::Sender<Option<Arc<str>>>,
    metrics: &crate::metrics::LogMetrics,
) -> Result<(SignedHead, TreeState), StoreError> {
    let state = store.load_state()?;
    let head = sign(signer, origin, &state.tree)?;
    if state.checkpoint.as_ref().map(|c| c.size) != Some(state.tree.size()) {
        // Recovery: durable entries not yet covered by a checkpoint.
        match store.put_checkpoint(head.size, head.note.as_bytes()) {
            Err(e @ StoreError::GuardWrite(_)) => guard_lags(guard_tx, &e, metrics),
            other => other?,
        }
    }
    Ok((head, state.tree))
}

/// A checkpoint another process signed, checked before it is served: the
/// log's origin, a valid signature by the log's key.
fn followed_head(
    note: &[u8],
    origin: &str,
    verifier: &NoteVerifier,
) -> Result<SignedHead, StoreError> {
    let v = cairn_core::checkpoint::verify_checkpoint(
        note,
        Some(origin),
        verifier,
        &cairn_core::checkpoint::WitnessPolicy::default(),
    )
    .map_err(|e| {
        StoreError::Corrupt(format!(
            "the store's latest checkpoint does not verify with the log's key {verifier}: {e}"
        ))
    })?;
    let note = String::from_utf8(note.to_vec())
        .map_err(|_| StoreError::Corrupt("the store's latest checkpoint is not UTF-8".into()))?;
    Ok(SignedHead {
        size: v.checkpoint.size,
        root: v.checkpoint.root,
        note,
    })
}

/// The follower's task: refreshes the store every `follow.every` and
/// serves each new checkpoint once it is verified (by the log's key, and
/// by the store: its root recomputed from the tiles, which extend those
/// served before); a standby becomes the writer when elected, and runs
/// [`run`] from there.
async fn follow_run(
    store: Arc<dyn SharedLogStore>,
    origin: String,
    config: SequencerConfig,
    follow: Follow,
    (rx, mut ctl): (mpsc::Receiver<Job>, mpsc::Receiver<Ctl>),
    watches: Watches,
    following: watch::Sender<Option<AppendError>>,
) {
    let Follow {
        every,
        verifier,
        standby,
    } = follow;
    let (signer, mut elected) = match standby {
        Some((s, e)) => (Some(s), Some(e)),
        None => (None, None),
    };
    let metrics = config.metrics.clone();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let promote = async {
            match elected.as_mut() {
                Some(e) => e.wait_for(|v| *v).await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            order = ctl.recv() => match order {
                // A follower has nothing queued: it ends at once.
                Some(Ctl::Close) | None => return,
                // Refused by `Sequencer::freeze` before it gets here.
                Some(Ctl::Freeze(..)) => continue,
            },
            true = promote => {
                let Some(signer) = signer.clone() else { continue };
                if watches.1.borrow().is_some() {
                    tracing::error!(log = %origin, "elected, but this follower stopped (see above): it does not write the log");
                    elected = None;
                    continue;
                }
                let s2 = store.clone();
                let (o2, g2, m2) = (origin.clone(), watches.2.clone(), metrics.clone());
                let promoted = tokio::task::spawn_blocking(move || {
                    s2.promote()?;
                    writer_head(&*s2, &signer, &o2, &g2, &m2).map(|h| (h, signer))
                })
                .await
                .map_err(|e| StoreError::Io(format!("worker failed: {e}")))
                .and_then(|r| r);
                match promoted {
                    Ok(((head, tree), signer)) => {
                        tracing::info!(log = %origin, size = head.size.0, "elected: this server now writes the log");
                        metrics.tree_size.store(head.size.0, std::sync::atomic::Ordering::Relaxed);
                        watches.0.send_replace(Arc::new(head));
                        following.send_replace(None);
                        return run(store, signer, origin, config, tree, (rx, ctl), watches).await;
                    }
                    Err(e) if is_fatal(&e) => {
                        halt(&watches.1, &e, &metrics);
                        elected = None;
                    }
                    Err(e) => {
                        tracing::warn!(log = %origin, error = %e, "taking over the log failed; retrying");
                        tokio::time::sleep(every).await;
                    }
                }
            }
            _ = tick.tick() => {
                if watches.1.borrow().is_some() {
                    continue;
                }
                let s2 = store.clone();
                let refreshed = tokio::task::spawn_blocking(move || {
                    if !s2.refresh()? {
                        return Ok(None);
                    }
                    let st = s2.load_state()?;
                    Ok(st.checkpoint)
                })
                .await
                .map_err(|e| StoreError::Io(format!("worker failed: {e}")))
                .and_then(|r| r)
                .and_then(|c| c.map(|c| followed_head(&c.note, &origin, &verifier)).transpose());
                match refreshed {
                    Ok(head) => {
                        if failing {
                            tracing::info!(log = %origin, "following the store again");
                            failing = false;
                        }
                        let Some(head) = head else { continue };
                        if head.size <= watches.0.borrow().size {
                            continue;
                        }
                        let head = Arc::new(head);
                        metrics.tree_size.store(head.size.0, std::sync::atomic::Ordering::Relaxed);
                        for p in &config.publishers {
                            p.published(&head);
                        }
                        watches.0.send_replace(head);
                    }
                    Err(e) if is_fatal(&e) => halt(&watches.1, &e, &metrics),
                    Err(e) => {
                        if !failing {
                            tracing::warn!(log = %origin, error = %e, "reading the store failed; serving what was read before, retrying");
                            failing = true;
                        }
                    }
                }
            }
        }
    }
}

async fn run(
    store: Arc<dyn LogStore>,
    signer: NoteSigner,
    origin: String,
    config: SequencerConfig,
    mut tree: TreeState,
    (mut rx, mut ctl): (mpsc::Receiver<Job>, mpsc::Receiver<Ctl>),
    (head_tx, halt_tx, guard_tx, frozen_tx): Watches,
) {
    let pipeline = WritePipeline::new(store.clone(), Arc::new(signer), &origin)
        .with_lease(config.lease.clone());
    let metrics = config.metrics.clone();
    if config.frozen.is_some() {
        metrics
            .frozen
            .store(1, std::sync::atomic::Ordering::Relaxed);
    }
    loop {
        // Orders first: a freeze takes effect between two batches, so the
        // final head covers exactly the batches written before it.
        let first = tokio::select! {
            biased;
            Some(order) = ctl.recv() => {
                let (why, reply) = match order {
                    Ctl::Freeze(why, reply) => (why, reply),
                    Ctl::Close => {
                        // Queued appends are still received, then `None`.
                        rx.close();
                        continue;
                    }
                };
                if frozen_tx.borrow().is_none() {
                    let head = head_tx.borrow().clone();
                    tracing::info!(size = head.size.0, "the log is frozen");
                    frozen_tx.send_replace(Some(why(&head)));
                    metrics.frozen.store(1, std::sync::atomic::Ordering::Relaxed);
                }
                let _ = reply.send(head_tx.borrow().clone());
                continue;
            }
            j = rx.recv() => j,
        };
        let Some(first) = first else {
            break; // every handle dropped and the queue drained
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_age;
        while batch.len() < config.max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(j)) => batch.push(j),
                    _ => break,
                },
            }
        }
        let frozen = frozen_tx.borrow().clone();
        if let Some(why) = frozen {
            // Frozen: appends queued before the freeze was seen are refused
            // too (none of them was answered).
            for j in batch {
                let _ = j.reply.send(Err(AppendError::Frozen(why.clone())));
            }
            continue;
        }
        let halted = halt_tx.borrow().clone();
        if let Some(why) = halted {
            // Stopped: appends queued before the stop hear why.
            for j in batch {
                let _ = j.reply.send(Err(AppendError::Halted(why.clone())));
            }
            continue;
        }
        let pipeline2 = pipeline.clone();
        let current = tree.clone();
        let head = head_tx.borrow().clone();
        let n = batch.len();
        let queued = std::time::Instant::now();
        // Store I/O, hashing and signing run off the async threads.
        let outcome = tokio::task::spawn_blocking(move || {
            let t0 = std::time::Instant::now();
            let r = process(&pipeline2, current, head, batch);
            (r, t0)
        })
        .await
        .map(|(r, t0)| {
            let total = queued.elapsed();
            let m = &metrics;
            m.batch_size.observe(n as f64);
            m.batch_seconds.observe(total.as_secs_f64());
            m.appended
                .fetch_add(r.appended as u64, std::sync::atomic::Ordering::Relaxed);
            if total > SLOW_BATCH {
                tracing::warn!(
                    entries = n,
                    total_ms = total.as_secs_f64() * 1e3,
                    wait_for_thread_ms = (t0 - queued).as_secs_f64() * 1e3,
                    "slow batch"
                );
            }
            r
        });
        match outcome {
            Ok(mut done) => {
                tree = done.tree;
                if let Some(e) = &done.fatal {
                    // Before the answers: an append arriving after them
                    // is refused at once.
                    halt(&halt_tx, e, &metrics);
                }
                match &done.guard {
                    Some(Err(e)) => guard_lags(&guard_tx, e, &metrics),
                    Some(Ok(())) => {
                        guard_tx.send_if_modified(|g| g.take().is_some());
                    }
                    None => {}
                }
                let duplicates = done
                    .answers
                    .iter()
                    .filter(|(_, r)| matches!(r, Ok(a) if a.duplicate))
                    .count();
                metrics
                    .duplicates
                    .fetch_add(duplicates as u64, std::sync::atomic::Ordering::Relaxed);
                if let Some(t) = &config.tiles {
                    // Before the answers: receipts prove from these.
                    t.insert_updates(std::mem::take(&mut done.tiles));
                }
                if let Some(h) = done.head {
                    metrics
                        .tree_size
                        .store(h.size.0, std::sync::atomic::Ordering::Relaxed);
                    for p in &config.publishers {
                        p.published(&h);
                    }
                    head_tx.send_replace(h);
                }
                for (reply, result) in done.answers {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // A panic in `process` is a bug; the waiters' senders were
                // dropped with it, so they see `ShuttingDown`. Reload to stay
                // consistent with the store.
                tracing::error!(error = %e, "batch processing failed");
                match store.load_state() {
                    Ok(st) => tree = st.tree,
                    Err(e) if is_fatal(&e) => halt(&halt_tx, &e, &metrics),
                    Err(_) => {}
                }
            }
        }
    }
}

/// A guard write failed after a durable checkpoint: the log goes on (the
/// next checkpoint tries again), but said loudly: an error log line, the
/// `cairn_guard_write_failures_total` counter, and `/healthz` (503) until
/// the guard catches up.
fn guard_lags(
    tx: &watch::Sender<Option<Arc<str>>>,
    e: &StoreError,
    metrics: &crate::metrics::LogMetrics,
) {
    tracing::error!(
        error = %e,
        "the fork guard lags the store: a restored backup would not be caught until it catches up"
    );
    metrics
        .guard_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tx.send_replace(Some(e.summary().into()));
}

/// Stops the log writing, loudly: an error log line (the full error), the
/// `cairn_log_halted` gauge, and (through [`Sequencer::halted`]) the
/// health checks and every later append (the error's client-safe summary).
/// Only a restart, after an operator has looked, clears it.
fn halt(
    tx: &watch::Sender<Option<Arc<str>>>,
    e: &StoreError,
    metrics: &crate::metrics::LogMetrics,
) {
    let why = e.summary();
    tracing::error!(
        error = %e,
        "the log has stopped writing; appends are refused until an operator acts (docs/operations.md, \"When the log stops writing\")"
    );
    metrics
        .halted
        .store(1, std::sync::atomic::Ordering::Relaxed);
    tx.send_replace(Some(why.into()));
}

type Answers = Vec<(
    oneshot::Sender<Result<Appended, AppendError>>,
    Result<Appended, AppendError>,
)>;

/// What one batch did.
struct Outcome {
    /// The durable tree after it.
    tree: TreeState,
    /// The new signed head, if one was signed.
    head: Option<Arc<SignedHead>>,
    /// An answer for every waiter.
    answers: Answers,
    /// New entries appended (duplicates not counted).
    appended: usize,
    /// The error that stops the log writing, if one did.
    fatal: Option<StoreError>,
    /// How the fork guard fared, if a checkpoint was stored: `Err` when
    /// the checkpoint is durable but the guard could not follow.
    guard: Option<Result<(), StoreError>>,
    /// The batch's new and grown tiles, for the tile cache.
    tiles: Vec<cairn_core::tree::TileUpdate>,
}

/// The answer for a store error (its client-safe summary; the full error
/// is logged), and the error again if it stops the log.
fn store_failure(e: &StoreError) -> (AppendError, Option<StoreError>) {
    if is_fatal(e) {
        (AppendError::Halted(e.summary().into()), Some(e.clone()))
    } else {
        tracing::warn!(error = %e, "store error; the batch's appends are answered UNAVAILABLE");
        (AppendError::Unavailable(e.summary()), None)
    }
}

/// One batch, start to finish: sequence (idempotency keys), then the
/// write pipeline, then an answer for every waiter.
fn process(
    pipeline: &WritePipeline,
    tree: TreeState,
    head: Arc<SignedHead>,
    batch: Vec<Job>,
) -> Outcome {
    let store = &**pipeline.store();
    // One span per batch (exported with CAIRN_OTLP_ENDPOINT): counts only.
    let _span = tracing::debug_span!(
        "cairn.sequencer.batch",
        requests = batch.len(),
        tree_size = tree.size().0
    )
    .entered();
    // 1. Sequence: resolve idempotency keys against the store and the batch.
    let mut answers: Answers = Vec::with_capacity(batch.len());
    let mut fresh: Vec<Job> = Vec::with_capacity(batch.len());
    let mut seen: HashMap<IdempotencyKey, (u64, [u8; 32])> = HashMap::new();
    let mut repeats: Vec<(Job, u64)> = Vec::new();
    let mut fatal = None;
    let start = tree.size().0;
    for job in batch {
        if let Some(k) = job.req.idempotency {
            if let Some(&(i, request)) = seen.get(&k.key) {
                if request == k.request {
                    repeats.push((job, i));
                } else {
                    let e = AppendError::KeyReused {
                        index: LeafIndex(i),
                    };
                    answers.push((job.reply, Err(e)));
                }
                continue;
            }
            match store.find_idempotency_key(&k.key) {
                Ok(Some(rec)) => {
                    // A record from before request digests were kept
                    // (`None`) answers as a duplicate, as it did then.
                    let result = if rec.request.is_some_and(|r| r != k.request) {
                        Err(AppendError::KeyReused { index: rec.index })
                    } else {
                        Ok(Appended {
                            index: rec.index,
                            head: head.clone(),
                            duplicate: true,
                        })
                    };
                    answers.push((job.reply, result));
                    continue;
                }
                Ok(None) => {
                    seen.insert(k.key, (start + fresh.len() as u64, k.request));
                }
                Err(e) => {
                    let (answer, stop) = store_failure(&e);
                    fatal = fatal.or(stop);
                    answers.push((job.reply, Err(answer)));
                    continue;
                }
            }
        }
        fresh.push(job);
    }
    let done = |tree, head, answers, appended, fatal| Outcome {
        tree,
        head,
        answers,
        appended,
        fatal,
        guard: None,
        tiles: Vec::new(),
    };
    // Every waiter of the batch (new entries and in-batch repeats) hears
    // the same error.
    let fail_all =
        |fresh: Vec<Job>, repeats: Vec<(Job, u64)>, mut answers: Answers, why: AppendError| {
            for j in fresh {
                answers.push((j.reply, Err(why.clone())));
            }
            for (j, _) in repeats {
                answers.push((j.reply, Err(why.clone())));
            }
            answers
        };
    if let Some(e) = &fatal {
        let why = AppendError::Halted(e.summary().into());
        return done(tree, None, fail_all(fresh, repeats, answers, why), 0, fatal);
    }
    if fresh.is_empty() {
        for (job, i) in repeats {
            answers.push((
                job.reply,
                Ok(Appended {
                    index: LeafIndex(i),
                    head: head.clone(),
                    duplicate: true,
                }),
            ));
        }
        return done(tree, None, answers, 0, None);
    }
    // 2–4. Integrate, commit durably, sign, store the checkpoint.
    let entries: Vec<NewEntry<'_>> = fresh
        .iter()
        .map(|j| NewEntry {
            data: &j.req.leaf,
            leaf_hash: j.req.leaf_hash,
            idempotency: j.req.idempotency,
        })
        .collect();
    let written = pipeline.write(&tree, &entries);
    drop(entries);
    let written = match written {
        Ok(w) => w,
        Err(f) => {
            let appended = if f.entries_durable { fresh.len() } else { 0 };
            let (why, stop) = store_failure(&f.error);
            let answers = fail_all(fresh, repeats, answers, why);
            return done(f.tree, None, answers, appended, stop);
        }
    };
    let appended = fresh.len();
    let new_head = Arc::new(written.head);
    let guard = Some(written.guard);
    // 5. Answer.
    for (k, j) in fresh.into_iter().enumerate() {
        answers.push((
            j.reply,
            Ok(Appended {
                index: LeafIndex(start + k as u64),
                head: new_head.clone(),
                duplicate: false,
            }),
        ));
    }
    for (j, i) in repeats {
        answers.push((
            j.reply,
            Ok(Appended {
                index: LeafIndex(i),
                head: new_head.clone(),
                duplicate: true,
            }),
        ));
    }
    Outcome {
        guard,
        tiles: written.tiles,
        ..done(written.tree, Some(new_head), answers, appended, None)
    }
}
