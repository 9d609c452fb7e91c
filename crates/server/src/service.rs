//! The `cairn.v1.Log` gRPC service: a transport over the engine
//! (`cairn-log`). Each request names its log (empty: the default log);
//! the service authorizes the caller for it, converts protobuf to domain
//! types and back, and maps errors once (`crate::error`).
//!
//! Appends are masked here, in the request path, on the runtime's worker
//! threads (in parallel, off the sequencer's task); the sequencer only
//! sequences, commits and signs. Reads never wait for the sequencer.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::hash::{Hash, LeafIndex};
use cairn_log::{LeafRef, Log, LogError, LogName, Receipt, Registry};
use cairn_masking::{ContentType, Masked, Masker};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authorizer, Identity, Quota, Scope};
use crate::error::ServerError;
use crate::pb;
use crate::sequencer::{Reply, SignedHead};
use crate::witnessing::{Cosigned, Witnessing};

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Largest event accepted (in one `AppendRequest`, alone, on a stream or
/// in a batch): larger ones are refused with `OUT_OF_RANGE` before any of
/// it is masked. Four times the entry limit, since masking can shrink an
/// event (dropped fields).
pub const MAX_REQUEST_BYTES: usize = 4 * cairn_core::tile::MAX_ENTRY_LEN;
/// Largest gRPC message decoded: a full `AppendBatchRequest` (4 MiB of
/// events) and its framing. Larger ones are refused while decoding.
pub const MAX_MESSAGE_BYTES: usize = MAX_BATCH_BYTES + (256 << 10);
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

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// One request's place in an `AppendStream`'s answers, in request order.
enum Slot {
    /// Queued: its receipt is being built.
    Building(tokio::task::JoinHandle<Result<pb::Receipt, ServerError>>),
    /// Refused: answered with its error, and the stream goes on.
    Refused(ServerError),
    /// The stream cannot go on (a request the transport could not decode).
    End(Status),
}

/// On a stream, a PROOF receipt leaves out its checkpoint when it is the
/// one the client received last on the stream (the rule documented on
/// `ReceiptForm`); a FULL receipt always carries it.
fn share_checkpoint(r: &mut pb::Receipt, last: &mut Option<String>) {
    let Some(cp) = &r.checkpoint else { return };
    if r.tlog_proof.is_empty() && last.as_deref() == Some(cp.note.as_str()) {
        r.checkpoint = None;
    } else {
        *last = Some(cp.note.clone());
    }
}

/// Most events in one `AppendBatch`.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// Events of a batch queued together (see `Inner::batch`): large enough to
/// pay the queue's fixed costs once per many events, small enough that the
/// sequencer starts on a batch while the rest of it is being masked.
const QUEUE_CHUNK: usize = 128;

/// Most bytes of events in one `AppendBatch`.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Batches of one `AppendBatchStream` being appended at once.
const BATCHES_IN_FLIGHT: usize = 8;

/// A refused event's answer on a stream: its status code and message (no
/// event content), counted in `cairn_errors_total` like any refusal.
fn event_error(e: ServerError) -> pb::Receipt {
    let status = Status::from(e);
    pb::Receipt {
        error: Some(pb::EventError {
            code: status.code() as i32,
            message: status.message().to_owned(),
        }),
        ..Default::default()
    }
}

/// The logs a server hosts (the engine's registry) and, per log, its
/// witness cosigning: what every transport serves.
#[derive(Clone)]
pub struct Logs {
    /// Every log of the process.
    pub registry: Arc<Registry>,
    witnessing: Arc<HashMap<LogName, Witnessing>>,
    /// Logs with their own per-identity append rate.
    quotas: Arc<HashMap<LogName, Quota>>,
    /// Longest a `wait_cosigned` append waits for a quorum.
    pub cosign_wait: Duration,
    /// The log OTLP records go to when their resource has no `cairn.log`
    /// (empty: the default log).
    pub otlp_log: String,
}

impl Logs {
    /// The logs of `registry`, with each one's witnessing (if any).
    pub fn new(
        registry: Registry,
        witnessing: HashMap<LogName, Witnessing>,
        cosign_wait: Duration,
    ) -> Self {
        Logs {
            registry: Arc::new(registry),
            witnessing: Arc::new(witnessing),
            quotas: Arc::default(),
            cosign_wait,
            otlp_log: String::new(),
        }
    }

    /// With the OTLP receiver's log (`otlp_log`).
    pub fn with_otlp_log(mut self, log: &str) -> Self {
        self.otlp_log = log.to_owned();
        self
    }

    /// With per-log append rates (a `[[log]]` table's `append_rate`).
    pub fn with_quotas(mut self, quotas: HashMap<LogName, Quota>) -> Self {
        self.quotas = Arc::new(quotas);
        self
    }

    /// One running log, the default, without witnesses.
    pub fn single(log: Arc<Log>) -> Self {
        let mut r = Registry::new(log.name().clone());
        // A fresh registry has no log of that name.
        let _ = r.insert(log.name().clone(), cairn_log::Hosted::Running(log));
        Logs::new(r, HashMap::new(), Duration::from_secs(30))
    }

    /// The log's witnessing, if it has witnesses.
    pub fn witnessing(&self, log: &LogName) -> Option<&Witnessing> {
        self.witnessing.get(log)
    }

    /// The log a request names, if the caller may use it.
    pub fn resolve(&self, name: &str, id: Option<&Identity>) -> Result<&Arc<Log>, ServerError> {
        let log = self.registry.get(name)?;
        Authorizer::check_log(id, log.name().as_str())?;
        Ok(log)
    }

    /// The log resolved for one caller, with what the transport needs of
    /// it: witnessing, the cosign wait, its quota.
    pub(crate) fn target(&self, name: &str, id: Option<&Identity>) -> Result<Target, ServerError> {
        let log = self.resolve(name, id)?.clone();
        Ok(Target {
            witnessing: self.witnessing(log.name()).cloned(),
            cosign_wait: self.cosign_wait,
            quota: self
                .quotas
                .get(log.name())
                .map(|q| (Arc::<str>::from(log.name().as_str()), *q)),
            log,
        })
    }
}

/// What every transport of a server shares: the logs and authorization.
pub(crate) struct Inner {
    pub(crate) logs: Logs,
    /// Tokens, scopes and quotas; `None`: an open log.
    pub(crate) auth: Option<Arc<Authorizer>>,
}

/// The gRPC service.
#[derive(Clone)]
pub struct LogService {
    inner: Arc<Inner>,
}

/// Checks one decoded `AppendRequest` and masks its event with `masker`:
/// every check a client's bytes go through before the sequencer sees them
/// (the fuzz target `append_request` drives it with arbitrary protobuf).
/// Errors name sizes and limits, never content.
pub fn check_append(
    masker: &Masker,
    req: &pb::AppendRequest,
    now_ms: u64,
    salts: &mut dyn cairn_masking::SaltSource,
) -> Result<Masked, ServerError> {
    let ct = check_fields(req)?;
    Ok(cairn_log::mask_event(
        masker,
        &req.policy,
        &req.event,
        ct,
        now_ms,
        salts,
        None,
    )?)
}

/// The request fields checked before masking: the idempotency key's
/// length and the content type.
fn check_fields(req: &pb::AppendRequest) -> Result<ContentType, ServerError> {
    if req.event.len() > MAX_REQUEST_BYTES {
        return Err(ServerError::Log(LogError::OutOfRange(format!(
            "the event is {} bytes; the limit is {MAX_REQUEST_BYTES}",
            req.event.len()
        ))));
    }
    if req.idempotency_key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ServerError::Log(LogError::InvalidArgument(format!(
            "idempotency key is {} bytes; the limit is {MAX_IDEMPOTENCY_KEY}",
            req.idempotency_key.len()
        ))));
    }
    match pb::ContentType::try_from(req.content_type) {
        Ok(pb::ContentType::Unspecified | pb::ContentType::Json) => Ok(ContentType::Json),
        Ok(pb::ContentType::Text) => Ok(ContentType::Text),
        Err(_) => Err(ServerError::Log(LogError::InvalidArgument(format!(
            "unknown content type {}",
            req.content_type
        )))),
    }
}

fn head_pb(h: &SignedHead) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        size: h.size.0,
        root: h.root.0.to_vec(),
        note: h.note.clone(),
    }
}

fn hashes_pb(path: &[Hash]) -> Vec<Vec<u8>> {
    path.iter().map(|h| h.0.to_vec()).collect()
}

/// What a receipt carries (`pb::ReceiptForm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Everything, the tlog-proof text too.
    Full,
    /// The proof and its checkpoint (sent once per response or stream).
    Proof,
    /// Index and leaf hash.
    Index,
}

impl Form {
    /// The form a request asks for; an unknown value is `INVALID_ARGUMENT`.
    pub fn parse(v: i32) -> Result<Form, ServerError> {
        match pb::ReceiptForm::try_from(v) {
            Ok(pb::ReceiptForm::Unspecified | pb::ReceiptForm::Full) => Ok(Form::Full),
            Ok(pb::ReceiptForm::Proof) => Ok(Form::Proof),
            Ok(pb::ReceiptForm::Index) => Ok(Form::Index),
            Err(_) => Err(ServerError::Log(LogError::InvalidArgument(format!(
                "unknown receipt form {v}"
            )))),
        }
    }
}

/// The receipt in `form`; with `checkpoint`, the signed checkpoint too (a
/// batch sends each once, beside its receipts).
fn receipt_pb(r: Receipt, form: Form, checkpoint: bool) -> pb::Receipt {
    let cp = || checkpoint.then(|| head_pb(&r.head));
    let openings = r
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
    match form {
        Form::Full => {}
        Form::Proof => {
            return pb::Receipt {
                index: r.index.0,
                leaf_hash: r.leaf_hash.0.to_vec(),
                openings,
                checkpoint: cp(),
                checkpoint_size: r.head.size.0,
                inclusion_proof: hashes_pb(&r.path),
                duplicate: r.duplicate,
                ..Default::default()
            };
        }
        Form::Index => {
            return pb::Receipt {
                index: r.index.0,
                leaf_hash: r.leaf_hash.0.to_vec(),
                openings,
                checkpoint_size: r.head.size.0,
                duplicate: r.duplicate,
                ..Default::default()
            };
        }
    }
    let tlog_proof = r.tlog_proof();
    let checkpoint = cp();
    pb::Receipt {
        index: r.index.0,
        leaf_hash: r.leaf_hash.0.to_vec(),
        checkpoint_size: r.head.size.0,
        openings,
        checkpoint,
        inclusion_proof: hashes_pb(&r.path),
        tlog_proof,
        duplicate: r.duplicate,
        leaf: r.leaf,
        cosigned_checkpoint: None,
        cosigned_inclusion_proof: Vec::new(),
        error: None,
    }
}

/// What `ListLogs` and `GET /logs` say about one log.
pub fn log_info(logs: &Logs, name: &LogName, hosted: &cairn_log::Hosted) -> pb::LogInfo {
    let is_default = logs.registry.default_name() == name;
    let (witnesses, witness_quorum) = match logs.witnessing(name) {
        Some(w) => {
            let (keys, quorum) = w.policy();
            (keys.to_vec(), u32::try_from(quorum).unwrap_or(u32::MAX))
        }
        None => (Vec::new(), 0),
    };
    match hosted {
        cairn_log::Hosted::Running(l) => pb::LogInfo {
            name: name.to_string(),
            origin: l.origin().to_owned(),
            vkey: l.vkey().to_owned(),
            checkpoint: Some(head_pb(&l.latest())),
            frozen: l.frozen().is_some(),
            unhealthy: l.halted().map(|w| w.to_string()).unwrap_or_default(),
            is_default,
            role: l.role().to_owned(),
            witnesses,
            witness_quorum,
        },
        cairn_log::Hosted::Failed { origin, reason } => pb::LogInfo {
            name: name.to_string(),
            origin: origin.clone(),
            vkey: String::new(),
            checkpoint: None,
            frozen: false,
            unhealthy: reason.to_string(),
            is_default,
            role: String::new(),
            witnesses,
            witness_quorum,
        },
    }
}

impl LogService {
    /// A service over `logs`, with authorization (`None`: open).
    pub fn new(logs: Logs, auth: Option<Arc<Authorizer>>) -> Self {
        LogService {
            inner: Arc::new(Inner { logs, auth }),
        }
    }

    /// The tonic server wrapper.
    pub fn into_server(self) -> pb::log_server::LogServer<LogService> {
        pb::log_server::LogServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// The OTLP logs receiver over the same logs and credentials; records
    /// of resources without `cairn.log` go to the logs' `otlp_log`.
    pub fn otlp(&self) -> OtlpLogsServer<OtlpService> {
        OtlpLogsServer::new(OtlpService {
            inner: self.inner.clone(),
        })
        // The Collector's otlp exporter compresses with gzip by default.
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_OTLP_BYTES)
    }

    pub(crate) fn shared(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

/// Largest OTLP export accepted (gRPC message or HTTP body): 16 MiB.
pub const MAX_OTLP_BYTES: usize = 16 << 20;

use cairn_api::opentelemetry::proto::collector::logs::v1::logs_service_server::{
    LogsService as OtlpLogs, LogsServiceServer as OtlpLogsServer,
};
use cairn_api::opentelemetry::proto::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};

/// `opentelemetry.proto.collector.logs.v1.LogsService` (see [`crate::otlp`]).
#[derive(Clone)]
pub struct OtlpService {
    inner: Arc<Inner>,
}

#[tonic::async_trait]
impl OtlpLogs for OtlpService {
    #[tracing::instrument(name = "opentelemetry.LogsService/Export", level = "debug", skip_all)]
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let id = self.inner.identity(&request, Scope::Append)?;
        let log = self.inner.logs.otlp_log.clone();
        let out = crate::otlp::ingest(&self.inner, id.as_ref(), request.into_inner(), &log).await?;
        Ok(Response::new(out.response()))
    }
}

/// One log, resolved for one caller.
pub(crate) struct Target {
    pub(crate) log: Arc<Log>,
    witnessing: Option<Witnessing>,
    cosign_wait: Duration,
    /// The log's own per-identity rate, if it has one.
    quota: Option<(Arc<str>, Quota)>,
}

impl Inner {
    /// Appends a batch to `t`'s log: each event checked, masked and queued
    /// on its own (a refused one answered in its slot), then every receipt
    /// in order, each distinct checkpoint once. Refused as a whole only
    /// for its size or the caller's rate limit (nothing appended).
    pub(crate) async fn batch(
        &self,
        t: Arc<Target>,
        id: Option<&Identity>,
        req: pb::AppendBatchRequest,
    ) -> Result<pb::AppendBatchResponse, ServerError> {
        let form = Form::parse(req.receipt_form)?;
        let bytes: usize = req.events.iter().map(|e| e.event.len()).sum();
        if req.events.len() > MAX_BATCH_EVENTS || bytes > MAX_BATCH_BYTES {
            return Err(ServerError::Log(LogError::InvalidArgument(format!(
                "a batch holds at most {MAX_BATCH_EVENTS} events and {MAX_BATCH_BYTES} bytes; this one has {} events and {bytes} bytes",
                req.events.len()
            ))));
        }
        if let Some(a) = &self.auth {
            a.take_in(
                id,
                req.events.len() as f64,
                t.quota.as_ref().map(|(n, q)| (n, *q)),
            )?;
        }
        // Mask and queue in request order, in chunks: each chunk's good
        // events are queued in one go (one wait for room, one state check),
        // and the sequencer can start writing the first chunk while the
        // next is masked.
        let mut queued = Vec::with_capacity(req.events.len());
        for chunk in req.events.chunks(QUEUE_CHUNK) {
            let mut masked = Vec::with_capacity(chunk.len());
            let mut requests = Vec::with_capacity(chunk.len());
            for ev in chunk {
                masked.push(t.mask(ev).map(|mut m| {
                    let r = t.request(&mut m, ev, id, form);
                    let hash = r.leaf_hash;
                    requests.push(r);
                    (m, hash)
                }));
            }
            let mut replies = t.log.queue_wait_many(requests).await.map(Vec::into_iter);
            for slot in masked {
                queued.push(slot.and_then(|(m, hash)| match &mut replies {
                    // One reply per request, in order.
                    Ok(it) => it.next().map(|rx| (m, hash, rx)).ok_or_else(|| {
                        ServerError::Log(LogError::Unavailable(
                            "internal: a queued event lost its reply".into(),
                        ))
                    }),
                    Err(e) => Err(ServerError::Log(e.clone())),
                }));
            }
        }
        drop(req);
        // Answers in order, on this task: they arrive together as the
        // sequencer writes the batch, and each proof is a few lookups in
        // the tiles it just cached.
        let mut receipts = Vec::with_capacity(queued.len());
        let mut heads: Vec<Arc<cairn_log::SignedHead>> = Vec::new();
        for slot in queued {
            let r = match slot {
                Ok((m, hash, rx)) => match t.log.finish(m, hash, rx, form != Form::Index).await {
                    Ok(r) => {
                        if !heads
                            .iter()
                            .any(|h| Arc::ptr_eq(h, &r.head) || h.size == r.head.size)
                        {
                            heads.push(r.head.clone());
                        }
                        receipt_pb(r, form, false)
                    }
                    Err(e) => event_error(ServerError::from(e)),
                },
                Err(e) => event_error(e),
            };
            receipts.push(r);
        }
        let checkpoints = match form {
            Form::Index => Vec::new(),
            Form::Full | Form::Proof => heads.iter().map(|h| head_pb(h)).collect(),
        };
        Ok(pb::AppendBatchResponse {
            receipts,
            checkpoints,
        })
    }

    /// Checks the caller's credentials for `need` (nothing to check on an
    /// open log) and resolves the log it names, if the caller may use it.
    /// A refusal goes through [`ServerError`], so that it is counted in
    /// `cairn_errors_total` like every other.
    fn authorize<T>(
        &self,
        req: &Request<T>,
        need: Scope,
        log: &str,
    ) -> Result<(Option<Identity>, Target), Status> {
        let id = self.identity(req, need)?;
        let target = self.logs.target(log, id.as_ref())?;
        Ok((id, target))
    }

    pub(crate) fn identity<T>(
        &self,
        req: &Request<T>,
        need: Scope,
    ) -> Result<Option<Identity>, Status> {
        match &self.auth {
            None => Ok(None),
            Some(a) => a
                .check(req, need)
                .map_err(|e| Status::from(ServerError::Auth(e))),
        }
    }

    /// A new append stream's caller (with the `append` scope) and one of
    /// its stream slots, held until the stream ends.
    fn open_stream<T>(
        &self,
        request: &Request<T>,
    ) -> Result<(Option<Identity>, Option<crate::auth::StreamSlot>), Status> {
        let id = self.identity(request, Scope::Append)?;
        let slot = match &self.auth {
            Some(a) => a
                .open_stream(id.as_ref())
                .map_err(|e| Status::from(ServerError::Auth(e)))?,
            None => None,
        };
        Ok((id, slot))
    }

    /// Takes one append from the caller's rate limit (the log's own, or
    /// the server-wide one).
    fn take(&self, id: Option<&Identity>, t: &Target) -> Result<(), ServerError> {
        match &self.auth {
            None => Ok(()),
            Some(a) => a
                .take_in(id, 1.0, t.quota.as_ref().map(|(n, q)| (n, *q)))
                .map_err(ServerError::Auth),
        }
    }
}

impl Target {
    /// Checks and masks a request (no content in any error).
    fn mask(&self, req: &pb::AppendRequest) -> Result<Masked, ServerError> {
        let ct = check_fields(req)?;
        Ok(self.log.mask(&req.policy, &req.event, ct)?)
    }

    /// The sequencer's request. An idempotency key is scoped to the
    /// caller and hashed by the engine (no client byte goes further); the
    /// request digest covers what makes two appends the same: the event,
    /// its content type and the policy name.
    /// Only a FULL receipt carries the leaf: for the others it moves
    /// into the request instead of being copied.
    fn request(
        &self,
        masked: &mut Masked,
        req: &pb::AppendRequest,
        id: Option<&Identity>,
        form: Form,
    ) -> cairn_log::AppendRequest {
        // Defaults spelled out, so that "" and "default" (or no content
        // type and JSON) are the same request.
        let policy = if req.policy.is_empty() {
            "default"
        } else {
            &req.policy
        };
        let content_type = match req.content_type {
            0 => pb::ContentType::Json as i32,
            c => c,
        }
        .to_be_bytes();
        let digest: [&[u8]; 3] = [&req.event, &content_type, policy.as_bytes()];
        let leaf = if form == Form::Full {
            masked.leaf.clone()
        } else {
            std::mem::take(&mut masked.leaf)
        };
        self.log.request_with(
            leaf,
            (!req.idempotency_key.is_empty()).then(|| cairn_log::log::IdempotentAppend {
                scope: id.map(|i| &*i.name),
                key: &req.idempotency_key,
                request: &digest,
            }),
        )
    }

    async fn finish(
        &self,
        masked: Masked,
        hash: Hash,
        reply: Reply,
        wait_cosigned: bool,
        form: Form,
    ) -> Result<pb::Receipt, ServerError> {
        let receipt = self
            .log
            .finish(masked, hash, reply, form != Form::Index)
            .await?;
        let mut receipt = receipt_pb(receipt, form, true);
        if let Some(w) = &self.witnessing {
            self.attach_cosigned(&mut receipt, w, wait_cosigned.then_some(self.cosign_wait))
                .await?;
        } else if wait_cosigned {
            return Err(ServerError::Log(LogError::FailedPrecondition(
                "wait_cosigned: this log has no witnesses configured".into(),
            )));
        }
        Ok(receipt)
    }

    /// Adds the newest quorum-cosigned checkpoint covering the entry, and
    /// the inclusion proof in it. With `wait`, waits that long for one.
    async fn attach_cosigned(
        &self,
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
                        return Err(ServerError::Log(LogError::DeadlineExceeded(format!(
                            "entry {index} is durable, but no checkpoint covering it reached the witness quorum within {d:?}"
                        ))));
                    }
                }
            }
        };
        let Some(c) = found else { return Ok(()) };
        let path = self
            .log
            .prove(cairn_core::ProofPlan::inclusion(index, c.size).map_err(LogError::from)?)
            .await?;
        receipt.cosigned_checkpoint = Some(pb::SignedCheckpoint {
            size: c.size.0,
            root: c.root.0.to_vec(),
            note: c.note.clone(),
        });
        receipt.cosigned_inclusion_proof = hashes_pb(&path);
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::log_server::Log for LogService {
    #[tracing::instrument(name = "cairn.v1.Log/Append", level = "debug", skip_all)]
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::Receipt>, Status> {
        let log = request.get_ref().log.clone();
        let (id, t) = self.inner.authorize(&request, Scope::Append, &log)?;
        self.inner.take(id.as_ref(), &t)?;
        let req = request.into_inner();
        let form = Form::parse(req.receipt_form)?;
        let mut masked = t.mask(&req)?;
        let append = t.request(&mut masked, &req, id.as_ref(), form);
        let hash = append.leaf_hash;
        let rx = t.log.try_append(append).map_err(ServerError::from)?;
        Ok(Response::new(
            t.finish(masked, hash, rx, req.wait_cosigned, form).await?,
        ))
    }

    #[tracing::instrument(name = "cairn.v1.Log/AppendBatch", level = "debug", skip_all)]
    async fn append_batch(
        &self,
        request: Request<pb::AppendBatchRequest>,
    ) -> Result<Response<pb::AppendBatchResponse>, Status> {
        let log = request.get_ref().log.clone();
        let (id, t) = self.inner.authorize(&request, Scope::Append, &log)?;
        let req = request.into_inner();
        Ok(Response::new(
            self.inner.batch(Arc::new(t), id.as_ref(), req).await?,
        ))
    }

    type AppendBatchStreamStream = BoxStream<pb::AppendBatchResponse>;

    /// One response per request, in order; batches overlap (up to
    /// `BATCHES_IN_FLIGHT` per stream), so one stream fills the
    /// sequencer's batches.
    #[tracing::instrument(name = "cairn.v1.Log/AppendBatchStream", level = "debug", skip_all)]
    async fn append_batch_stream(
        &self,
        request: Request<Streaming<pb::AppendBatchRequest>>,
    ) -> Result<Response<Self::AppendBatchStreamStream>, Status> {
        let (id, slot) = self.inner.open_stream(&request)?;
        let mut inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::AppendBatchResponse, Status>>(2);
        type Pending = tokio::task::JoinHandle<Result<pb::AppendBatchResponse, Status>>;
        let (p_tx, mut p_rx) = mpsc::channel::<Pending>(BATCHES_IN_FLIGHT);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _slot = slot;
            while let Some(next) = inbound.next().await {
                let pending: Pending = match next {
                    Ok(req) => {
                        let inner = inner.clone();
                        let id = id.clone();
                        tokio::spawn(async move {
                            let t = inner.logs.target(&req.log, id.as_ref())?;
                            Ok(inner.batch(Arc::new(t), id.as_ref(), req).await?)
                        })
                    }
                    Err(status) => {
                        let e = ServerError::Log(LogError::InvalidArgument(
                            status.message().to_owned(),
                        ));
                        let status = Status::from(e);
                        tokio::spawn(async move { Err(status) })
                    }
                };
                if p_tx.send(pending).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Some(p) = p_rx.recv().await {
                let r = p.await.unwrap_or_else(|e| {
                    Err(Status::from(ServerError::Log(LogError::Unavailable(
                        format!("batch task failed: {e}"),
                    ))))
                });
                // A whole batch refused (credentials for its log, its
                // size, the rate limit) ends the stream with its status.
                let end = r.is_err();
                if out_tx.send(r).await.is_err() || end {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    type AppendStreamStream = BoxStream<pb::Receipt>;

    /// Every message of a stream goes to the log its `log` field names (a
    /// stream may feed several logs); receipts come back in request order.
    #[tracing::instrument(name = "cairn.v1.Log/AppendStream", level = "debug", skip_all)]
    async fn append_stream(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let (id, slot) = self.inner.open_stream(&request)?;
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
        type InFlight = (Slot, Option<tokio::sync::OwnedSemaphorePermit>);
        let (p_tx, mut p_rx) = mpsc::channel::<InFlight>(4096);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            // The stream's slot is held until the stream ends.
            let _slot = slot;
            // The last log used: most streams feed one log.
            let mut target: Option<(String, Arc<Target>)> = None;
            loop {
                let req = match inbound.next().await {
                    None => break,
                    Some(Ok(r)) => r,
                    Some(Err(status)) => {
                        // The transport could not decode a request: the
                        // stream cannot go on.
                        let e = ServerError::Log(LogError::InvalidArgument(
                            status.message().to_owned(),
                        ));
                        let _ = p_tx.send((Slot::End(Status::from(e)), None)).await;
                        break;
                    }
                };
                let t = match &target {
                    Some((name, t)) if *name == req.log => t.clone(),
                    _ => match inner.logs.target(&req.log, id.as_ref()) {
                        Ok(t) => {
                            let t = Arc::new(t);
                            target = Some((req.log.clone(), t.clone()));
                            t
                        }
                        Err(e) => {
                            // This event's answer; the stream goes on.
                            if p_tx.send((Slot::Refused(e), None)).await.is_err() {
                                break;
                            }
                            continue;
                        }
                    },
                };
                if let Err(e) = inner.take(id.as_ref(), &t) {
                    if p_tx.send((Slot::Refused(e), None)).await.is_err() {
                        break;
                    }
                    continue;
                }
                let pending = match t.mask(&req) {
                    Ok(mut m) => {
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
                        let form = match Form::parse(req.receipt_form) {
                            Ok(f) => f,
                            Err(e) => {
                                if p_tx.send((Slot::Refused(e), None)).await.is_err() {
                                    break;
                                }
                                continue;
                            }
                        };
                        let r = t.request(&mut m, &req, id.as_ref(), form);
                        let wait = req.wait_cosigned;
                        // The event is masked: only the leaf goes on.
                        drop(req);
                        let hash = r.leaf_hash;
                        match t.log.queue_wait(r).await {
                            Ok(rx) => {
                                let t = t.clone();
                                (
                                    Slot::Building(tokio::spawn(async move {
                                        t.finish(m, hash, rx, wait, form).await
                                    })),
                                    Some(permit),
                                )
                            }
                            Err(e) => (Slot::Refused(ServerError::from(e)), None),
                        }
                    }
                    Err(e) => (Slot::Refused(e), None),
                };
                if p_tx.send(pending).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            // The checkpoint the client received last on this stream.
            let mut last_checkpoint: Option<String> = None;
            while let Some((p, permit)) = p_rx.recv().await {
                // A refused event is answered in its slot and the stream
                // goes on; only a transport error (a request that could
                // not be decoded) ends it.
                let answer = match p {
                    Slot::Building(building) => match building.await {
                        Ok(Ok(receipt)) => Ok(receipt),
                        Ok(Err(e)) => Ok(event_error(e)),
                        Err(e) => Ok(event_error(ServerError::Log(LogError::Unavailable(
                            format!("receipt task failed: {e}"),
                        )))),
                    },
                    Slot::Refused(e) => Ok(event_error(e)),
                    Slot::End(status) => Err(status),
                };
                let answer = answer.map(|mut r| {
                    share_checkpoint(&mut r, &mut last_checkpoint);
                    r
                });
                let end = answer.is_err();
                let sent = out_tx.send(answer).await;
                // The receipt is the transport's now: its share returns.
                drop(permit);
                if sent.is_err() || end {
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
        let log = request.get_ref().log.clone();
        let (_, t) = self.inner.authorize(&request, Scope::Read, &log)?;
        if !request.get_ref().cosigned {
            return Ok(Response::new(head_pb(&t.log.latest())));
        }
        let Some(w) = &t.witnessing else {
            return Err(ServerError::Log(LogError::FailedPrecondition(
                "cosigned: this log has no witnesses configured".into(),
            ))
            .into());
        };
        let c = w.latest().ok_or_else(|| {
            ServerError::Log(LogError::Unavailable(
                "no checkpoint has reached the witness quorum yet".into(),
            ))
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
        let log = request.get_ref().log.clone();
        let (_, t) = self.inner.authorize(&request, Scope::Read, &log)?;
        let req = request.into_inner();
        let at = match req.leaf {
            None => {
                return Err(ServerError::Log(LogError::InvalidArgument(
                    "set index or leaf_hash".into(),
                ))
                .into());
            }
            Some(pb::get_inclusion_proof_request::Leaf::Index(i)) => LeafRef::Index(LeafIndex(i)),
            Some(pb::get_inclusion_proof_request::Leaf::LeafHash(h)) => LeafRef::Hash(
                Hash::from_slice(&h)
                    .map_err(|e| ServerError::Log(LogError::InvalidArgument(e.to_string())))?,
            ),
        };
        let p = t
            .log
            .inclusion_proof(at, req.tree_size)
            .await
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::InclusionProof {
            index: p.index.0,
            tree_size: p.size.0,
            leaf_hash: p.leaf_hash.0.to_vec(),
            proof: hashes_pb(&p.path),
        }))
    }

    #[tracing::instrument(name = "cairn.v1.Log/GetConsistencyProof", level = "debug", skip_all)]
    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let log = request.get_ref().log.clone();
        let (_, t) = self.inner.authorize(&request, Scope::Read, &log)?;
        let req = request.into_inner();
        let (old, new, proof) = t
            .log
            .consistency_proof(req.old_size, req.new_size)
            .await
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::ConsistencyProof {
            old_size: old.0,
            new_size: new.0,
            proof: hashes_pb(&proof),
        }))
    }

    type GetEntriesStream = BoxStream<pb::Entry>;

    #[tracing::instrument(name = "cairn.v1.Log/GetEntries", level = "debug", skip_all)]
    async fn get_entries(
        &self,
        request: Request<pb::GetEntriesRequest>,
    ) -> Result<Response<Self::GetEntriesStream>, Status> {
        let log = request.get_ref().log.clone();
        let (_, t) = self.inner.authorize(&request, Scope::Read, &log)?;
        let req = request.into_inner();
        let size = t.log.latest().size.0;
        if req.start > req.end {
            return Err(ServerError::Log(LogError::InvalidArgument(format!(
                "start {} is after end {}",
                req.start, req.end
            )))
            .into());
        }
        if req.start > size {
            return Err(ServerError::Log(LogError::OutOfRange(format!(
                "start {} is beyond the tree size {size}",
                req.start
            )))
            .into());
        }
        let end = req.end.min(size);
        let (tx, rx) = mpsc::channel(4);
        let log = t.log;
        tokio::spawn(async move {
            let mut at = req.start;
            while at < end {
                let n = ((end - at) as usize).min(ENTRIES_CHUNK);
                match log.entries(LeafIndex(at), n).await {
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
                        let _ = tx.send(Err(Status::from(ServerError::from(e)))).await;
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
        let log = request.get_ref().log.clone();
        let (_, t) = self.inner.authorize(&request, Scope::Read, &log)?;
        let stream = WatchStream::new(t.log.sequencer().head()).map(|h| Ok(head_pb(&h)));
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(name = "cairn.v1.Log/ListLogs", level = "debug", skip_all)]
    async fn list_logs(
        &self,
        request: Request<pb::ListLogsRequest>,
    ) -> Result<Response<pb::ListLogsResponse>, Status> {
        let id = self.inner.identity(&request, Scope::Read)?;
        let logs = &self.inner.logs;
        Ok(Response::new(pb::ListLogsResponse {
            logs: logs
                .registry
                .iter()
                .filter(|(n, _)| id.as_ref().is_none_or(|i| i.may_use(n.as_str())))
                .map(|(n, h)| log_info(logs, n, h))
                .collect(),
        }))
    }

    #[tracing::instrument(name = "cairn.v1.Log/FreezeLog", level = "debug", skip_all)]
    async fn freeze_log(
        &self,
        request: Request<pb::FreezeLogRequest>,
    ) -> Result<Response<pb::LogInfo>, Status> {
        let log = request.get_ref().log.clone();
        if self.inner.auth.is_none() {
            // Irreversible: never open to whoever reaches an open log.
            return Err(ServerError::Log(LogError::FailedPrecondition(
                "freezing a log needs an admin token, and this server has no token file; set `frozen = true` (or `not_after`) in the log's [[log]] table instead".into(),
            ))
            .into());
        }
        let (id, t) = self.inner.authorize(&request, Scope::Admin, &log)?;
        let head = t.log.freeze().await.map_err(ServerError::from)?;
        tracing::warn!(
            log = %t.log.name(),
            size = head.size.0,
            by = id.as_ref().map_or("an open-log caller", |i| &*i.name),
            "log frozen on request"
        );
        let logs = &self.inner.logs;
        let info = log_info(
            logs,
            t.log.name(),
            &cairn_log::Hosted::Running(t.log.clone()),
        );
        Ok(Response::new(info))
    }

    #[tracing::instrument(name = "cairn.v1.Log/Erase", level = "debug", skip_all)]
    async fn erase(
        &self,
        request: Request<pb::EraseRequest>,
    ) -> Result<Response<pb::EraseResponse>, Status> {
        let log = request.get_ref().log.clone();
        if self.inner.auth.is_none() {
            // Irreversible, like a freeze.
            return Err(ServerError::Log(LogError::FailedPrecondition(
                "erasing a subject needs an admin token, and this server has no token file; use `cairn erase --data-dir` on the stopped server's folder instead".into(),
            ))
            .into());
        }
        let (id, t) = self.inner.authorize(&request, Scope::Admin, &log)?;
        let req = request.into_inner();
        let by = id.as_ref().map_or("an open-log caller", |i| &*i.name);
        let done = t
            .log
            .erase(&req.subject, by, &req.reason)
            .await
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::EraseResponse {
            subject_key_id: done.subject.to_string(),
            existed: done.existed,
            record: Some(receipt_pb(done.record, Form::Full, true)),
        }))
    }

    #[tracing::instrument(name = "cairn.v1.Log/Reveal", level = "debug", skip_all)]
    async fn reveal(
        &self,
        request: Request<pb::RevealRequest>,
    ) -> Result<Response<pb::RevealResponse>, Status> {
        let log = request.get_ref().log.clone();
        if self.inner.auth.is_none() {
            // Who looked must be known: never open to whoever reaches the port.
            return Err(ServerError::Log(LogError::FailedPrecondition(
                "revealing needs a token with the reveal scope, and this server has no token file"
                    .into(),
            ))
            .into());
        }
        let (id, t) = self.inner.authorize(&request, Scope::Reveal, &log)?;
        let req = request.into_inner();
        let by = id.as_ref().map_or("an open-log caller", |i| &*i.name);
        let (plain, record) = t
            .log
            .reveal(LeafIndex(req.index), &req.pointer, by, &req.purpose)
            .await
            .map_err(ServerError::from)?;
        Ok(Response::new(pb::RevealResponse {
            plaintext: plain.to_string(),
            record: Some(receipt_pb(record, Form::Full, true)),
        }))
    }
}
