//! `cairn witness`: a C2SP tlog-witness over HTTP (`POST /add-checkpoint`)
//! and gRPC (`cairn.v1.Witness`), with gossip between witnesses.
//!
//! The checks and the state live in [`cairn_client::witness`]; this module
//! is the transport: HTTP and gRPC handlers, the gossip loop, and the
//! consistency-proof fetches from logs that gossip needs.
//!
//! Gossip (every `gossip_interval`, one loop per peer, each exchange
//! bounded by the outbound timeouts): for each configured peer, send
//! our latest cosigned checkpoints (`Gossip`) and take theirs back. Both
//! sides check what they receive (see [`cairn_client::gossip`]). Evidence
//! is persisted (`evidence.jsonl` in the data folder) before anything else
//! happens, logged at error level, counted in `/metrics`
//! (`cairn_witness_evidence_total`) and listed by `ListEvidence`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cairn_client::evidence::Recorded;
use cairn_client::gossip::{Relation, check_proof, relate, verify_peer_checkpoint};
use cairn_client::witness::{AddCheckpoint, MAX_BODY, SIZE_CONTENT_TYPE, Witness, WitnessError};
use cairn_core::Hash;
use cairn_core::cosignature::Cosigner;
use cairn_core::note::NoteVerifier;
use tokio::net::TcpListener;
use tonic::{Request, Response as GrpcResponse, Status};

use crate::pb;
use crate::run::{ServeError, load_or_create, setup};

/// A log this witness serves.
#[derive(Clone, Debug)]
pub struct WitnessedLog {
    /// The log's verifier key; its name is the origin.
    pub vkey: NoteVerifier,
    /// The log's gRPC URL, for the consistency proofs gossip needs.
    pub url: Option<String>,
    /// The log's name on a Cairn server that hosts several (the `log`
    /// field of its requests); empty: the server's default log.
    pub log: String,
}

/// A peer witness to gossip with.
#[derive(Clone, Debug)]
pub struct Peer {
    /// A label.
    pub name: String,
    /// The peer's cosignature key (type 0x04).
    pub vkey: NoteVerifier,
    /// The peer's gRPC URL.
    pub url: String,
}

/// Validated settings for `cairn witness`.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// State folder: `witness.key`, `witness.vkey`, `witness-state.json`,
    /// `evidence.jsonl`.
    pub data_dir: PathBuf,
    /// The witness's key name.
    pub name: String,
    /// HTTP listen address (`/add-checkpoint`, `/healthz`, `/metrics`).
    pub http_addr: SocketAddr,
    /// gRPC listen address (`cairn.v1.Witness`).
    pub grpc_addr: SocketAddr,
    /// Logs served.
    pub logs: Vec<WitnessedLog>,
    /// Gossip peers.
    pub peers: Vec<Peer>,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// TLS (and mTLS with a client CA) on both listeners.
    pub tls: Option<crate::run::TlsFiles>,
    /// Trust roots (PEM) for `https://` peer and log URLs.
    pub tls_ca: Option<PathBuf>,
    /// Timeouts and caps of both listeners.
    pub limits: crate::listen::Limits,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Shared {
    witness: Witness,
    logs: Vec<WitnessedLog>,
    peers: Vec<Peer>,
    /// `add-checkpoint` requests answered, by outcome (HTTP status).
    requests: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
    /// Connections to peers and logs.
    out: crate::outbound::Outbound,
}

impl Shared {
    #[tracing::instrument(name = "cairn.witness.add_checkpoint", level = "debug", skip_all, fields(old = req.old))]
    async fn add_checkpoint(self: &Arc<Self>, req: AddCheckpoint) -> Result<String, WitnessError> {
        let me = self.clone();
        let sigs = tokio::task::spawn_blocking(move || me.witness.add_checkpoint(&req, now()))
            .await
            .map_err(|e| WitnessError::Storage(e.to_string()))?;
        let code = sigs
            .as_ref()
            .map_or_else(WitnessError::http_status, |_| 200);
        *self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(code)
            .or_default() += 1;
        Ok(sigs?.iter().map(|s| s.line()).collect())
    }

    /// Checks a peer's checkpoints against ours (see the module docs): at
    /// most one per witnessed log (a peer has one latest checkpoint per
    /// log; repeats and extras are ignored), so the work a peer's answer
    /// can cause is bounded by the number of logs.
    async fn absorb(&self, peer: &Peer, notes: &[String]) {
        let mut done = std::collections::HashSet::new();
        for note in notes {
            let Ok(n) = cairn_core::Note::parse(note.as_bytes()) else {
                continue;
            };
            let Ok(cp) = cairn_core::Checkpoint::parse(n.text()) else {
                continue;
            };
            let Some(log) = self.witness.log(&cp.origin) else {
                continue;
            };
            if !done.insert(cp.origin.clone()) {
                continue;
            }
            let verified = match verify_peer_checkpoint(log, &peer.vkey, note.as_bytes()) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(peer = %peer.name, origin = %cp.origin, "ignoring a gossiped checkpoint: {e}");
                    continue;
                }
            };
            let source = format!("gossip from {}", peer.name);
            let ours = self.witness.latest(&cp.origin);
            match relate(ours.as_ref(), &verified, note, &source, now()) {
                Relation::Agree => {}
                Relation::SplitView(e) => self.witness.note_evidence(e),
                Relation::NeedProof {
                    old_note,
                    new_note,
                    old,
                    new,
                } => {
                    let Some((url, log)) = self
                        .logs
                        .iter()
                        .find(|l| l.vkey.name() == cp.origin)
                        .and_then(|l| Some((l.url.clone()?, l.log.clone())))
                    else {
                        tracing::warn!(origin = %cp.origin, "no log URL configured: cannot check a gossiped checkpoint of another size");
                        continue;
                    };
                    let proof = match fetch_consistency(&self.out, &url, &log, old, new).await {
                        Ok(p) => Ok(p),
                        Err(Fetch::Refused(why)) => Err(why),
                        Err(Fetch::Unreachable(why)) => {
                            tracing::warn!(origin = %cp.origin, "log unreachable for a gossip check: {why}");
                            continue;
                        }
                    };
                    let proof_ref = proof.as_deref().map_err(String::as_str);
                    if let Some(e) =
                        check_proof(&cp.origin, &old_note, &new_note, proof_ref, &source, now())
                    {
                        self.witness.note_evidence(e);
                    }
                }
            }
        }
    }

    fn our_notes(&self) -> Vec<String> {
        self.witness
            .all_latest()
            .into_iter()
            .map(|(_, r)| r.note)
            .collect()
    }

    /// One gossip exchange with `peer`, bounded by
    /// [`REQUEST_TIMEOUT`](crate::outbound::REQUEST_TIMEOUT) (and its
    /// connection by the connect timeout). Each peer has its own loop (see
    /// [`WitnessServer::run`]), so a silent peer only delays its own
    /// exchanges, never the others'.
    async fn gossip_with(&self, peer: &Peer) {
        let req = pb::GossipRequest {
            checkpoints: self.our_notes(),
            witness_vkey: self.witness.verifier().to_string(),
        };
        let resp = tokio::time::timeout(crate::outbound::REQUEST_TIMEOUT, async {
            let mut c = pb::witness_client::WitnessClient::new(self.out.channel(&peer.url).await?);
            c.gossip(req).await.map_err(|e| e.message().to_owned())
        })
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {:?}",
                crate::outbound::REQUEST_TIMEOUT
            ))
        });
        match resp {
            Ok(r) => self.absorb(peer, &r.into_inner().checkpoints).await,
            Err(e) => tracing::warn!(peer = %peer.name, "gossip failed: {e}"),
        }
    }
}

enum Fetch {
    /// The log answered, but would not prove it.
    Refused(String),
    /// Network trouble: proves nothing.
    Unreachable(String),
}

async fn fetch_consistency(
    out: &crate::outbound::Outbound,
    url: &str,
    log: &str,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, Fetch> {
    let mut c = pb::log_client::LogClient::new(out.channel(url).await.map_err(Fetch::Unreachable)?);
    let r = c
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: old,
            new_size: new,
            log: log.to_owned(),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::OutOfRange | tonic::Code::InvalidArgument | tonic::Code::NotFound => {
                Fetch::Refused(format!("{:?}: {}", s.code(), s.message()))
            }
            _ => Fetch::Unreachable(s.message().to_owned()),
        })?
        .into_inner();
    r.proof
        .iter()
        .map(|h| {
            Hash::from_slice(h).map_err(|_| Fetch::Refused("proof hash is not 32 bytes".into()))
        })
        .collect()
}

/// The gRPC service.
#[derive(Clone)]
pub struct WitnessService {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl pb::witness_server::Witness for WitnessService {
    async fn add_checkpoint(
        &self,
        request: Request<pb::AddCheckpointRequest>,
    ) -> Result<GrpcResponse<pb::AddCheckpointResponse>, Status> {
        let r = request.into_inner();
        if r.proof.len() > cairn_client::witness::MAX_PROOF_LINES {
            return Err(Status::invalid_argument("more than 63 proof hashes"));
        }
        let proof = r
            .proof
            .iter()
            .map(|h| Hash::from_slice(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Status::invalid_argument("proof hashes must be 32 bytes"))?;
        let req = AddCheckpoint {
            old: r.old_size,
            proof,
            note: r.checkpoint,
        };
        let lines = self
            .shared
            .add_checkpoint(req)
            .await
            .map_err(|e| crate::error::witness_status(&e))?;
        Ok(GrpcResponse::new(pb::AddCheckpointResponse {
            cosignatures: lines,
        }))
    }

    async fn gossip(
        &self,
        request: Request<pb::GossipRequest>,
    ) -> Result<GrpcResponse<pb::GossipResponse>, Status> {
        let r = request.into_inner();
        if r.checkpoints.len() > 1024 {
            return Err(Status::invalid_argument(
                "at most 1024 checkpoints per gossip",
            ));
        }
        // What a caller sends is not checked here: its claimed
        // `witness_vkey` proves nothing about who is calling, and checking
        // replayed notes would let anyone make us fetch proofs from logs.
        // Each witness checks only what it fetches itself, from the peer
        // URLs it is configured with (verified by TLS for https), in its
        // own gossip loops. Anyone may read our notes.
        let _ = r;
        Ok(GrpcResponse::new(pb::GossipResponse {
            checkpoints: self.shared.our_notes(),
            witness_vkey: self.shared.witness.verifier().to_string(),
        }))
    }

    async fn list_evidence(
        &self,
        _request: Request<pb::ListEvidenceRequest>,
    ) -> Result<GrpcResponse<pb::ListEvidenceResponse>, Status> {
        let all = self
            .shared
            .witness
            .evidence()
            .list()
            .map_err(|e| Status::unavailable(format!("reading evidence: {e}")))?;
        Ok(GrpcResponse::new(pb::ListEvidenceResponse {
            evidence: all
                .into_iter()
                .map(|e| pb::EvidenceRecord {
                    kind: serde_json::to_value(e.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    origin: e.origin,
                    observed_at: e.observed_at,
                    source: e.source,
                    checkpoints: e.checkpoints,
                    proof: e.proof,
                    detail: e.detail,
                })
                .collect(),
        }))
    }
}

async fn http_add_checkpoint(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = match AddCheckpoint::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("{}\n", WitnessError::from(e)),
            )
                .into_response();
        }
    };
    match s.add_checkpoint(req).await {
        Ok(lines) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            lines,
        )
            .into_response(),
        Err(WitnessError::Conflict { latest }) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
            format!("{latest}\n"),
        )
            .into_response(),
        Err(e) => {
            let code =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (code, format!("{e}\n")).into_response()
        }
    }
}

async fn http_metrics(State(s): State<Arc<Shared>>) -> Response {
    let evidence = s.witness.evidence().count();
    let mut out = format!(
        "# HELP cairn_witness_evidence_total Pieces of evidence of log misbehaviour recorded.\n# TYPE cairn_witness_evidence_total counter\ncairn_witness_evidence_total {evidence}\n"
    );
    out.push_str("# HELP cairn_witness_add_checkpoint_total add-checkpoint requests answered, by HTTP status.\n# TYPE cairn_witness_add_checkpoint_total counter\n");
    let counts = s
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for (code, n) in counts {
        out.push_str(&format!(
            "cairn_witness_add_checkpoint_total{{code=\"{code}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP cairn_witness_cosigned_size Latest cosigned tree size per log.\n# TYPE cairn_witness_cosigned_size gauge\n");
    for (origin, r) in s.witness.all_latest() {
        out.push_str(&format!(
            "cairn_witness_cosigned_size{{origin=\"{}\"}} {}\n",
            origin.replace('\\', "\\\\").replace('"', "\\\""),
            r.size
        ));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

/// A bound, ready-to-run witness.
pub struct WitnessServer {
    witness: Witness,
    logs: Vec<WitnessedLog>,
    peers: Vec<Peer>,
    http: TcpListener,
    grpc: TcpListener,
    tls: Option<crate::tls::ServerConfigs>,
    out: crate::outbound::Outbound,
    gossip_interval: Duration,
    limits: crate::listen::Limits,
    /// The witness's cosignature verifier key.
    pub vkey: String,
}

impl WitnessServer {
    /// Loads or creates the key, opens (and locks) the state, binds both
    /// listeners (port 0 picks a free port).
    pub async fn bind(cfg: &WitnessConfig) -> Result<WitnessServer, ServeError> {
        let cosigner: Cosigner = load_or_create(&cfg.data_dir, "witness", &cfg.name)?;
        let vkey = cosigner.verifier().to_string();
        let mut witness = Witness::open(
            &cfg.data_dir,
            cosigner,
            cfg.logs.iter().map(|l| l.vkey.clone()).collect(),
        )
        .map_err(|e| ServeError::Setup(e.to_string()))?;
        // Evidence, from add-checkpoint or gossip, is said loudly; a
        // failure to save it too: never silently dropped.
        let path = witness.evidence().path().display().to_string();
        witness.set_reporter(Box::new(move |e, saved| match saved {
            Ok(Recorded::Stored) => tracing::error!(
                origin = %e.origin,
                kind = ?e.kind,
                source = %e.source,
                "LOG MISBEHAVIOUR: {}; evidence saved to {path}",
                e.detail
            ),
            Ok(Recorded::Duplicate) => {}
            Ok(Recorded::RateLimited) => tracing::warn!(
                origin = %e.origin,
                kind = ?e.kind,
                "more evidence for this log than the evidence file takes in an hour; not stored: {}",
                e.detail
            ),
            Err(err) => tracing::error!(
                origin = %e.origin,
                "LOG MISBEHAVIOUR: {}; the evidence could NOT be saved: {err}",
                e.detail
            ),
        }));
        let tls = crate::tls::ServerConfigs::new(cfg.tls.as_ref())?;
        let out = crate::outbound::Outbound::new(cfg.tls_ca.as_deref())?;
        for l in &cfg.logs {
            if let Some(u) = &l.url {
                out.check_url(u, &format!("log {:?}", l.vkey.name()))?;
            }
        }
        for p in &cfg.peers {
            out.check_url(&p.url, &format!("peer {:?}", p.name))?;
        }
        let http = TcpListener::bind(cfg.http_addr)
            .await
            .map_err(setup(&format!("HTTP address {}", cfg.http_addr)))?;
        let grpc = TcpListener::bind(cfg.grpc_addr)
            .await
            .map_err(setup(&format!("gRPC address {}", cfg.grpc_addr)))?;
        Ok(WitnessServer {
            witness,
            logs: cfg.logs.clone(),
            peers: cfg.peers.clone(),
            http,
            grpc,
            tls,
            out,
            gossip_interval: cfg.gossip_interval,
            limits: cfg.limits.clone(),
            vkey,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.local_addr().ok()
    }

    /// Adds a gossip peer before running (when its address is only known
    /// after binding).
    pub fn add_peer(&mut self, peer: Peer) {
        self.peers.push(peer);
    }

    /// Sets a served log's gRPC URL before running.
    pub fn set_log_url(&mut self, origin: &str, url: &str) {
        for l in &mut self.logs {
            if l.vkey.name() == origin {
                l.url = Some(url.to_owned());
            }
        }
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let shared = Arc::new(Shared {
            witness: self.witness,
            logs: self.logs,
            peers: self.peers,
            requests: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            out: self.out,
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let router = Router::new()
            .route("/add-checkpoint", post(http_add_checkpoint))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(http_metrics))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let (grpc_tls, http_tls) = self.tls.map(|t| (t.grpc, t.http)).unzip();
        let limits = self.limits;
        let http =
            crate::run::serve_http(self.http, http_tls, router, &limits, wait(stop_rx.clone()));
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<pb::witness_server::WitnessServer<WitnessService>>()
            .await;
        let router = crate::listen::grpc_builder(&limits)
            .add_service(health)
            .add_service(
                pb::witness_server::WitnessServer::new(WitnessService {
                    shared: shared.clone(),
                })
                // A gossip message holds a few checkpoints: 1 MiB is ample.
                .max_decoding_message_size(1 << 20),
            );
        let grpc =
            crate::run::serve_grpc(router, self.grpc, grpc_tls, &limits, wait(stop_rx.clone()));
        // One gossip loop per peer: a silent or slow peer holds up only its
        // own exchanges.
        let interval = self.gossip_interval;
        let gossip: Vec<_> = (0..shared.peers.len())
            .map(|i| {
                let (shared, mut stop) = (shared.clone(), stop_rx.clone());
                tokio::spawn(async move {
                    let Some(peer) = shared.peers.get(i) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => shared.gossip_with(peer).await,
                            () = async { let _ = stop.wait_for(|v| *v).await; } => return,
                        }
                    }
                })
            })
            .collect();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let (g, ()) = tokio::join!(grpc, http);
        for t in gossip {
            let _ = t.await;
        }
        g?;
        Ok(())
    }
}
