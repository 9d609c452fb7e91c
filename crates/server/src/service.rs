//! The `cairn.v1.Log` gRPC service.
//!
//! Appends are masked here, in the request path, on the runtime's worker
//! threads (in parallel, off the sequencer's task); the sequencer only
//! sequences, commits and signs. Reads go straight to the store and never
//! wait for the sequencer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::proof::ProofPlan;
use cairn_core::tile::MAX_ENTRY_LEN;
use cairn_core::tlog_proof::TlogProof;
use cairn_masking::{ContentType, Masked, Masker};
use cairn_storage::LogStore;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authorizer, Identity, Scope};
use crate::cache::TileCache;
use crate::error::ServerError;
use crate::pb;
use crate::sequencer::{AppendError, AppendRequest, Appended, Sequencer, SignedHead};
use crate::witnessing::{Cosigned, Witnessing};

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Largest gRPC request message accepted (one `AppendRequest`, or one
/// message of an `AppendStream`): larger ones are refused while decoding
/// with `OUT_OF_RANGE`, before any of it is masked. Four times the entry
/// limit, since masking can shrink an event (dropped fields).
pub const MAX_REQUEST_BYTES: usize = 4 * cairn_core::tile::MAX_ENTRY_LEN;
/// Bytes one `AppendStream` may hold in flight (events being masked and
/// appended, receipts not yet handed to the transport): 16 MiB, room for
/// ~3,000 typical appends, so one stream still fills whole batches. What a
/// client that stops reading its receipts can cost the server.
pub const STREAM_INFLIGHT_BYTES: usize = 16 << 20;
/// Receipts handed to the transport but not yet sent, per stream.
const RECEIPTS_BUFFERED: usize = 32;
/// A receipt's size beyond its leaf: checkpoint, inclusion proof twice
/// (hashes and tlog-proof text), openings: ~2 KB (docs/benchmarks.md).
const RECEIPT_OVERHEAD: usize = 2048;
/// Entries sent per store read in `GetEntries`.
const ENTRIES_CHUNK: usize = 256;

/// A queued append: its masked event, leaf hash, and the sequencer's answer.
type Pending = (
    Masked,
    Hash,
    oneshot::Receiver<Result<Appended, AppendError>>,
);
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

struct Inner {
    seq: Sequencer,
    store: Arc<dyn LogStore>,
    masker: Arc<Masker>,
    tiles: TileCache,
    /// Witness cosigning, when witnesses are configured, and how long a
    /// `wait_cosigned` append may wait for a quorum.
    witnessing: Option<(Witnessing, Duration)>,
    /// Tokens, scopes and quotas; `None`: an open log.
    auth: Option<Arc<Authorizer>>,
}

/// Options of [`LogService::with_options`].
#[derive(Default)]
pub struct ServiceOptions {
    /// Witness cosigning and the longest `wait_cosigned` wait.
    pub witnessing: Option<(Witnessing, Duration)>,
    /// Proof tile cache in MiB (0: the default).
    pub tile_cache_mb: usize,
    /// Authorization and quotas.
    pub auth: Option<Arc<Authorizer>>,
}

/// The gRPC service.
#[derive(Clone)]
pub struct LogService {
    inner: Arc<Inner>,
}

/// The proof tile cache's default size: 8,192 expanded tiles.
pub const DEFAULT_TILE_CACHE_MB: usize = 128;

/// Checks one decoded `AppendRequest` and masks its event: every check a
/// client's bytes go through before the sequencer sees them (the fuzz
/// target `append_request` drives it with arbitrary protobuf). Errors name
/// sizes and limits, never content.
pub fn check_append(
    masker: &Masker,
    req: &pb::AppendRequest,
    now_ms: u64,
    salts: &mut dyn cairn_masking::SaltSource,
) -> Result<Masked, ServerError> {
    if !req.policy.is_empty() && req.policy != "default" {
        // The name is not echoed: a client could put anything in it.
        return Err(ServerError::InvalidArgument(format!(
            "unknown policy name ({} bytes); this server has \"default\"",
            req.policy.len()
        )));
    }
    if req.idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ServerError::InvalidArgument(format!(
            "idempotency key is {} bytes; the limit is {MAX_IDEMPOTENCY_KEY}",
            req.idempotency_key.len()
        )));
    }
    let ct = match pb::ContentType::try_from(req.content_type) {
        Ok(pb::ContentType::Unspecified | pb::ContentType::Json) => ContentType::Json,
        Ok(pb::ContentType::Text) => ContentType::Text,
        Err(_) => {
            return Err(ServerError::InvalidArgument(format!(
                "unknown content type {}",
                req.content_type
            )));
        }
    };
    let masked = masker.mask(&req.event, ct, now_ms, salts)?;
    if masked.leaf.len() > MAX_ENTRY_LEN {
        return Err(ServerError::InvalidArgument(format!(
            "the masked entry is {} bytes; the limit is {MAX_ENTRY_LEN}",
            masked.leaf.len()
        )));
    }
    Ok(masked)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
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

fn head_pb(h: &SignedHead) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        size: h.size.0,
        root: h.root.0.to_vec(),
        note: h.note.clone(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServerError::Unavailable(format!("worker failed: {e}")))?
}

impl LogService {
    /// A service over a running sequencer, its store and the masker.
    pub fn new(seq: Sequencer, store: Arc<dyn LogStore>, masker: Arc<Masker>) -> Self {
        Self::with_options(seq, store, masker, ServiceOptions::default())
    }

    /// The service with every option: witness cosigning
    /// (`GetCheckpoint{cosigned}` and receipts carry the newest checkpoint
    /// that met the quorum; `wait_cosigned` appends wait up to the given
    /// time for one), the proof tile cache's size in MiB (a full expanded
    /// tile is ~16 KiB), and authorization.
    pub fn with_options(
        seq: Sequencer,
        store: Arc<dyn LogStore>,
        masker: Arc<Masker>,
        opts: ServiceOptions,
    ) -> Self {
        let mb = if opts.tile_cache_mb == 0 {
            DEFAULT_TILE_CACHE_MB
        } else {
            opts.tile_cache_mb
        };
        LogService {
            inner: Arc::new(Inner {
                seq,
                store,
                masker,
                tiles: TileCache::new(mb.saturating_mul(64)),
                witnessing: opts.witnessing,
                auth: opts.auth,
            }),
        }
    }

    /// The tonic server wrapper.
    pub fn into_server(self) -> pb::log_server::LogServer<LogService> {
        pb::log_server::LogServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES)
    }
}

impl Inner {
    /// Checks the caller's credentials for `need` (nothing to check on an
    /// open log). A refusal goes through [`ServerError`], so that it is
    /// counted in `cairn_errors_total` like every other.
    fn authorize<T>(&self, req: &Request<T>, need: Scope) -> Result<Option<Identity>, Status> {
        match &self.auth {
            None => Ok(None),
            Some(a) => a
                .check(req, need)
                .map_err(|e| Status::from(ServerError::Auth(e))),
        }
    }

    /// Takes one append from the caller's rate limit.
    fn take(&self, id: Option<&Identity>) -> Result<(), ServerError> {
        match &self.auth {
            None => Ok(()),
            Some(a) => a.take(id, 1.0).map_err(ServerError::Auth),
        }
    }

    /// Checks and masks a request (no content in any error).
    fn mask(&self, req: &pb::AppendRequest) -> Result<Masked, ServerError> {
        let masked = check_append(&self.masker, req, now_ms(), &mut os_salt)?;
        crate::metrics::METRICS.masked(masked.decisions.iter().map(|d| &*d.detector));
        Ok(masked)
    }

    /// The sequencer's request. An idempotency key is scoped to the
    /// caller and hashed here (no client byte goes further); the request
    /// digest covers what makes two appends the same: the event, its
    /// content type and the policy name.
    fn request(
        &self,
        masked: &Masked,
        req: &pb::AppendRequest,
        id: Option<&Identity>,
    ) -> AppendRequest {
        let idempotency = (!req.idempotency_key.is_empty()).then(|| {
            // Defaults spelled out, so that "" and "default" (or no
            // content type and JSON) are the same request.
            let policy = if req.policy.is_empty() {
                "default"
            } else {
                &req.policy
            };
            let content_type = match req.content_type {
                0 => pb::ContentType::Json as i32,
                c => c,
            };
            self.seq.idempotency().record(
                id.map(|i| &*i.0),
                &req.idempotency_key,
                &[&req.event, &content_type.to_be_bytes(), policy.as_bytes()],
            )
        });
        AppendRequest {
            leaf_hash: leaf_hash(&masked.leaf),
            leaf: masked.leaf.clone(),
            idempotency,
        }
    }

    /// Builds the receipt once the append is durable and checkpointed.
    async fn receipt(
        self: &Arc<Self>,
        masked: Masked,
        hash: Hash,
        done: Appended,
    ) -> Result<pb::Receipt, ServerError> {
        let store = self.store.clone();
        let head = done.head.clone();
        let index = done.index;
        let duplicate = done.duplicate;
        let (leaf, openings) = if duplicate {
            // The original leaf, as stored; its openings went to the first caller.
            (Vec::new(), Vec::new())
        } else {
            let openings = masked
                .openings
                .iter()
                .map(|o| pb::Opening {
                    pointer: o.pointer.clone(),
                    detector: o.detector.clone(),
                    commitment: o.commitment.clone(),
                    salt: o.salt.to_vec(),
                    value: o.value.to_string(),
                })
                .collect();
            (masked.leaf, openings)
        };
        // One proof plan per receipt, for either path.
        let plan = ProofPlan::inclusion(index, head.size)?;
        // The common case: a fresh entry whose proof tiles are cached (the
        // batch's earlier receipts loaded them): no blocking thread at all.
        if !leaf.is_empty()
            && let Some(path) = self.tiles.prove_cached(&plan)
        {
            return Ok(self.assemble(index, leaf, hash, openings, &done, path?, duplicate));
        }
        let me = self.clone();
        let (leaf, hash, path) = blocking(move || {
            let (leaf, hash) = if leaf.is_empty() {
                // A duplicate: the original leaf, and its hash, from the store.
                let stored = store
                    .read_entries(index, 1)?
                    .pop()
                    .ok_or_else(|| ServerError::Unavailable("stored entry missing".into()))?;
                let h = leaf_hash(&stored);
                (stored, h)
            } else {
                (leaf, hash)
            };
            let path = me.tiles.prove(&*store, &plan)?;
            Ok((leaf, hash, path))
        })
        .await?;
        Ok(self.assemble(index, leaf, hash, openings, &done, path, duplicate))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        index: LeafIndex,
        leaf: Vec<u8>,
        hash: Hash,
        openings: Vec<pb::Opening>,
        done: &Appended,
        path: Vec<Hash>,
        duplicate: bool,
    ) -> pb::Receipt {
        let tlog = TlogProof {
            extra: None,
            index,
            path: path.clone(),
            checkpoint: done.head.note.clone(),
        };
        pb::Receipt {
            index: index.0,
            leaf_hash: hash.0.to_vec(),
            leaf,
            openings,
            checkpoint: Some(head_pb(&done.head)),
            inclusion_proof: path.iter().map(|h| h.0.to_vec()).collect(),
            tlog_proof: tlog.encode(),
            duplicate,
            cosigned_checkpoint: None,
            cosigned_inclusion_proof: Vec::new(),
        }
    }

    async fn finish(
        self: &Arc<Self>,
        pending: Pending,
        wait_cosigned: bool,
    ) -> Result<pb::Receipt, ServerError> {
        let (masked, hash, rx) = pending;
        let done = rx
            .await
            .unwrap_or(Err(AppendError::ShuttingDown))
            .map_err(ServerError::from)?;
        let mut receipt = self.receipt(masked, hash, done).await?;
        if let Some((w, wait)) = &self.witnessing {
            self.attach_cosigned(&mut receipt, w, wait_cosigned.then_some(*wait))
                .await?;
        } else if wait_cosigned {
            return Err(ServerError::FailedPrecondition(
                "wait_cosigned: this log has no witnesses configured".into(),
            ));
        }
        Ok(receipt)
    }

    /// Adds the newest quorum-cosigned checkpoint covering the entry, and
    /// the inclusion proof in it. With `wait`, waits that long for one.
    async fn attach_cosigned(
        self: &Arc<Self>,
        receipt: &mut pb::Receipt,
        w: &Witnessing,
        wait: Option<Duration>,
    ) -> Result<(), ServerError> {
        let index = LeafIndex(receipt.index);
        let covers = |c: &Option<Arc<Cosigned>>| c.as_ref().is_some_and(|c| c.size.contains(index));
        let found = match wait {
            None => w.latest().filter(|c| c.size.contains(index)),
            Some(d) => {
                let mut rx = w.watch();
                match tokio::time::timeout(d, rx.wait_for(covers)).await {
                    Ok(Ok(c)) => c.clone(),
                    Ok(Err(_)) => None,
                    Err(_) => {
                        return Err(ServerError::DeadlineExceeded(format!(
                            "entry {index} is durable, but no checkpoint covering it reached the witness quorum within {d:?}"
                        )));
                    }
                }
            }
        };
        let Some(c) = found else { return Ok(()) };
        let store = self.store.clone();
        let me = self.clone();
        let size = c.size;
        let path =
            blocking(move || me.tiles.prove(&*store, &ProofPlan::inclusion(index, size)?)).await?;
        receipt.cosigned_checkpoint = Some(pb::SignedCheckpoint {
            size: c.size.0,
            root: c.root.0.to_vec(),
            note: c.note.clone(),
        });
        receipt.cosigned_inclusion_proof = path.iter().map(|h| h.0.to_vec()).collect();
        Ok(())
    }

    /// A requested tree size: 0 means the latest checkpoint's; anything
    /// beyond it is `OUT_OF_RANGE`.
    fn tree_size(&self, requested: u64) -> Result<TreeSize, ServerError> {
        let head = self.latest().size;
        let size = if requested == 0 {
            head
        } else {
            TreeSize(requested)
        };
        if size > head {
            return Err(ServerError::OutOfRange(format!(
                "tree size {size} is beyond the latest checkpoint ({head})"
            )));
        }
        Ok(size)
    }

    fn latest(&self) -> std::sync::Arc<SignedHead> {
        self.seq.head().borrow().clone()
    }
}

#[tonic::async_trait]
impl pb::log_server::Log for LogService {
    #[tracing::instrument(name = "cairn.v1.Log/Append", level = "debug", skip_all)]
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let id = self.inner.authorize(&request, Scope::Append)?;
        self.inner.take(id.as_ref())?;
        let req = request.into_inner();
        let masked = self.inner.mask(&req)?;
        let append = self.inner.request(&masked, &req, id.as_ref());
        let hash = append.leaf_hash;
        let rx = self
            .inner
            .seq
            .try_append(append)
            .map_err(ServerError::from)?;
        Ok(Response::new(
            self.inner
                .finish((masked, hash, rx), req.wait_cosigned)
                .await?,
        ))
    }

    type AppendStreamStream = BoxStream<pb::Receipt>;

    #[tracing::instrument(name = "cairn.v1.Log/AppendStream", level = "debug", skip_all)]
    async fn append_stream(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let id = self.inner.authorize(&request, Scope::Append)?;
        let slot = match &self.inner.auth {
            Some(a) => a
                .open_stream(id.as_ref())
                .map_err(|e| Status::from(ServerError::Auth(e)))?,
            None => None,
        };
        let mut inbound = request.into_inner();
        // Memory per stream is bounded in bytes, not entries: each append
        // holds its share of STREAM_INFLIGHT_BYTES (its event, its masked
        // leaf and its receipt) from masking until its receipt is handed
        // to the transport. A client that stops reading its receipts
        // fills the budget; the reader then stops reading requests, and
        // HTTP/2 flow control stops the client. The server's memory for
        // the stream stays at the budget plus RECEIPTS_BUFFERED receipts.
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::Receipt, Status>>(RECEIPTS_BUFFERED);
        let budget = Arc::new(tokio::sync::Semaphore::new(STREAM_INFLIGHT_BYTES));
        // In-flight appends, in request order: reading and waiting overlap,
        // so one stream fills whole batches.
        // Each receipt is built by its own task as soon as its append is
        // queued (proofs for many receipts run in parallel); the writer
        // awaits them in request order.
        type Building = tokio::task::JoinHandle<Result<pb::Receipt, ServerError>>;
        type InFlight = (
            Result<Building, ServerError>,
            Option<tokio::sync::OwnedSemaphorePermit>,
        );
        let (p_tx, mut p_rx) = mpsc::channel::<InFlight>(4096);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            // The stream's slot is held until the stream ends.
            let _slot = slot;
            loop {
                let req = match inbound.next().await {
                    None => break,
                    Some(Ok(r)) => r,
                    Some(Err(status)) => {
                        let _ = p_tx
                            .send((
                                Err(ServerError::InvalidArgument(status.message().to_owned())),
                                None,
                            ))
                            .await;
                        break;
                    }
                };
                if let Err(e) = inner.take(id.as_ref()) {
                    let _ = p_tx.send((Err(e), None)).await;
                    break;
                }
                let pending = match inner.mask(&req) {
                    Ok(m) => {
                        // Event, leaf (twice: the sequencer's copy and the
                        // receipt's), proof and checkpoint: a generous
                        // estimate, capped at the budget so that one large
                        // event can always go alone.
                        let cost = (req.event.len() + 2 * m.leaf.len() + RECEIPT_OVERHEAD)
                            .min(STREAM_INFLIGHT_BYTES);
                        let permit = match budget
                            .clone()
                            .acquire_many_owned(u32::try_from(cost).unwrap_or(u32::MAX))
                            .await
                        {
                            Ok(p) => p,
                            Err(_) => break,
                        };
                        let r = inner.request(&m, &req, id.as_ref());
                        let wait = req.wait_cosigned;
                        // The event is masked: only the leaf goes on.
                        drop(req);
                        let hash = r.leaf_hash;
                        match inner.seq.queue_wait(r).await {
                            Ok(rx) => {
                                let me = inner.clone();
                                (
                                    Ok(tokio::spawn(async move {
                                        me.finish((m, hash, rx), wait).await
                                    })),
                                    Some(permit),
                                )
                            }
                            Err(e) => (Err(ServerError::from(e)), None),
                        }
                    }
                    Err(e) => (Err(e), None),
                };
                let stop = pending.0.is_err();
                if p_tx.send(pending).await.is_err() || stop {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some((p, permit)) = p_rx.recv().await {
                let r = match p {
                    Ok(building) => building.await.unwrap_or_else(|e| {
                        Err(ServerError::Unavailable(format!(
                            "receipt task failed: {e}"
                        )))
                    }),
                    Err(e) => Err(e),
                };
                let stop = r.is_err();
                let sent = out_tx.send(r.map_err(Status::from)).await;
                // The receipt is the transport's now: its share returns.
                drop(permit);
                if sent.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    #[tracing::instrument(name = "cairn.v1.Log/GetCheckpoint", level = "debug", skip_all)]
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        self.inner.authorize(&request, Scope::Read)?;
        if !request.get_ref().cosigned {
            return Ok(Response::new(head_pb(&self.inner.latest())));
        }
        let Some((w, _)) = &self.inner.witnessing else {
            return Err(ServerError::FailedPrecondition(
                "cosigned: this log has no witnesses configured".into(),
            )
            .into());
        };
        let c = w.latest().ok_or_else(|| {
            ServerError::Unavailable("no checkpoint has reached the witness quorum yet".into())
        })?;
        Ok(Response::new(pb::SignedCheckpoint {
            size: c.size.0,
            root: c.root.0.to_vec(),
            note: c.note.clone(),
        }))
    }

    #[tracing::instrument(name = "cairn.v1.Log/GetInclusionProof", level = "debug", skip_all)]
    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        self.inner.authorize(&request, Scope::Read)?;
        let req = request.into_inner();
        let size = self.inner.tree_size(req.tree_size)?;
        // Fast path: by index, with every tile the proof needs (and the
        // leaf's level-0 tile) already cached, the answer is lookups and a
        // few hashes: no store read, and no hop to a blocking thread (whose
        // two context switches cost more than the proof).
        // The plan of a by-index proof, made once for either path.
        let mut index_plan = None;
        if let Some(pb::get_inclusion_proof_request::Leaf::Index(i)) = req.leaf
            && size.contains(LeafIndex(i))
        {
            let plan = index_plan
                .insert(ProofPlan::inclusion(LeafIndex(i), size).map_err(ServerError::from)?);
            if let (Some(path), Some(leaf)) = (
                self.inner.tiles.prove_cached(plan),
                self.inner.tiles.leaf_cached(i, size.0),
            ) {
                let path = path?;
                return Ok(Response::new(pb::InclusionProof {
                    index: i,
                    tree_size: size.0,
                    leaf_hash: leaf.0.to_vec(),
                    proof: path.iter().map(|h| h.0.to_vec()).collect(),
                }));
            }
        }
        let store = self.inner.store.clone();
        let me = self.inner.clone();
        let proof = blocking(move || {
            let index = match req.leaf {
                None => {
                    return Err(ServerError::InvalidArgument(
                        "set index or leaf_hash".into(),
                    ));
                }
                Some(pb::get_inclusion_proof_request::Leaf::Index(i)) => LeafIndex(i),
                Some(pb::get_inclusion_proof_request::Leaf::LeafHash(h)) => {
                    let h = Hash::from_slice(&h)
                        .map_err(|e| ServerError::InvalidArgument(e.to_string()))?;
                    store.find_leaf(&h)?.ok_or_else(|| {
                        ServerError::NotFound("no entry has that leaf hash".into())
                    })?
                }
            };
            if !size.contains(index) {
                return Err(ServerError::OutOfRange(format!(
                    "index {index} is not in the tree of size {size}"
                )));
            }
            let leaf = store
                .read_entries(index, 1)?
                .pop()
                .ok_or_else(|| ServerError::Unavailable("stored entry missing".into()))?;
            let plan = match index_plan {
                Some(p) => p,
                None => ProofPlan::inclusion(index, size)?,
            };
            let path = me.tiles.prove(&*store, &plan)?;
            Ok(pb::InclusionProof {
                index: index.0,
                tree_size: size.0,
                leaf_hash: leaf_hash(&leaf).0.to_vec(),
                proof: path.iter().map(|h| h.0.to_vec()).collect(),
            })
        })
        .await?;
        Ok(Response::new(proof))
    }

    #[tracing::instrument(name = "cairn.v1.Log/GetConsistencyProof", level = "debug", skip_all)]
    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        self.inner.authorize(&request, Scope::Read)?;
        let req = request.into_inner();
        let new = self.inner.tree_size(req.new_size)?;
        let old = TreeSize(req.old_size);
        if old > new || old.0 == 0 {
            return Err(ServerError::InvalidArgument(format!(
                "need 0 < old_size <= new_size, got {old} and {new}"
            ))
            .into());
        }
        let plan = ProofPlan::consistency(old, new).map_err(ServerError::from)?;
        // Fast path, as for inclusion proofs: all tiles cached, no hop.
        let proof = match self.inner.tiles.prove_cached(&plan) {
            Some(p) => p?,
            None => {
                let store = self.inner.store.clone();
                let me = self.inner.clone();
                blocking(move || me.tiles.prove(&*store, &plan)).await?
            }
        };
        Ok(Response::new(pb::ConsistencyProof {
            old_size: old.0,
            new_size: new.0,
            proof: proof.iter().map(|h| h.0.to_vec()).collect(),
        }))
    }

    type GetEntriesStream = BoxStream<pb::Entry>;

    #[tracing::instrument(name = "cairn.v1.Log/GetEntries", level = "debug", skip_all)]
    async fn get_entries(
        &self,
        request: Request<pb::GetEntriesRequest>,
    ) -> Result<Response<Self::GetEntriesStream>, Status> {
        self.inner.authorize(&request, Scope::Read)?;
        let req = request.into_inner();
        let size = self.inner.latest().size.0;
        if req.start > req.end {
            return Err(ServerError::InvalidArgument(format!(
                "start {} is after end {}",
                req.start, req.end
            ))
            .into());
        }
        if req.start > size {
            return Err(ServerError::OutOfRange(format!(
                "start {} is beyond the tree size {size}",
                req.start
            ))
            .into());
        }
        let end = req.end.min(size);
        let (tx, rx) = mpsc::channel(4);
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            let mut at = req.start;
            while at < end {
                let n = ((end - at) as usize).min(ENTRIES_CHUNK);
                let s = store.clone();
                let chunk = blocking(move || Ok(s.read_entries(LeafIndex(at), n)?)).await;
                match chunk {
                    Ok(entries) => {
                        for (k, leaf) in entries.into_iter().enumerate() {
                            let e = pb::Entry {
                                index: at + k as u64,
                                leaf,
                            };
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        at += n as u64;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchCheckpointsStream = BoxStream<pb::SignedCheckpoint>;

    #[tracing::instrument(name = "cairn.v1.Log/WatchCheckpoints", level = "debug", skip_all)]
    async fn watch_checkpoints(
        &self,
        request: Request<pb::WatchCheckpointsRequest>,
    ) -> Result<Response<Self::WatchCheckpointsStream>, Status> {
        self.inner.authorize(&request, Scope::Read)?;
        let stream = WatchStream::new(self.inner.seq.head()).map(|h| Ok(head_pb(&h)));
        Ok(Response::new(Box::pin(stream)))
    }
}
