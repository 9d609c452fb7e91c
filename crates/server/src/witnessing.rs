//! Witnessing on the log side: submit signed checkpoints to the configured
//! witnesses over C2SP tlog-witness (`POST <url>/add-checkpoint`), collect
//! their cosignatures, and publish the newest checkpoint that meets the
//! quorum.
//!
//! Rounds: at most once per `interval`, when the tree has grown, the
//! coordinator picks the current signed checkpoint as the round's target.
//! Each witness has its own task; when idle it takes the latest target and
//! submits it with a consistency proof from the size it last cosigned.
//! Every witness therefore gets at most one request per interval, and a
//! slow or dead witness only delays itself: appends never wait on
//! witnesses (they are already durable and signed), and the other
//! witnesses carry on.
//!
//! Status handling, per tlog-witness:
//! - 200: verify each cosignature line against the witness's key; keep it.
//! - 409 with `text/x.tlog.size`: the witness's latest size; retry from it
//!   at once (once per round), with the proof from that size.
//! - 404/403/400/422 and anything else: logged at warn (422 at error:
//!   that witness holds a history this log cannot prove it extends), and
//!   retried next round.
//!
//! Nothing here is persisted: on restart the first request per witness
//! uses old size 0, and the 409 answer tells us where it stands.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cairn_client::witness::AddCheckpoint;
use cairn_core::note::{Note, NoteSignature, NoteVerifier};
use cairn_core::{Hash, ProofPlan, TreeSize};
use cairn_log::Log;
use cairn_log::metrics::LogMetrics;
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;

use crate::sequencer::SignedHead;

/// One witness the log submits to.
#[derive(Clone, Debug)]
pub struct WitnessEndpoint {
    /// A label for logs and metrics.
    pub name: String,
    /// Its cosignature verifier key (type 0x04).
    pub vkey: NoteVerifier,
    /// Submission prefix, e.g. `http://witness.example:7380`.
    pub url: String,
}

/// Witnessing settings.
#[derive(Clone, Debug)]
pub struct WitnessingConfig {
    /// Witnesses.
    pub witnesses: Vec<WitnessEndpoint>,
    /// Distinct witness cosignatures a checkpoint needs to be published as
    /// cosigned (1..=witnesses).
    pub quorum: usize,
    /// Shortest time between two submissions to one witness.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Trust roots (PEM) for `https://` witness URLs.
    pub ca: Option<std::path::PathBuf>,
}

/// A checkpoint that met the quorum, with the witnesses' lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// Tree size.
    pub size: TreeSize,
    /// Root.
    pub root: Hash,
    /// The log's note plus the cosignature lines.
    pub note: String,
}

struct Round {
    head: Arc<SignedHead>,
    /// Cosignatures by witness index.
    sigs: BTreeMap<usize, NoteSignature>,
}

struct Agg {
    rounds: BTreeMap<u64, Round>,
    quorum: usize,
    published: watch::Sender<Option<Arc<Cosigned>>>,
    metrics: Arc<LogMetrics>,
}

impl Agg {
    fn add(&mut self, witness: usize, head: &Arc<SignedHead>, sig: NoteSignature) {
        let size = head.size.0;
        let best = self.published.borrow().as_ref().map(|c| c.size.0);
        if best.is_some_and(|b| b > size) {
            return;
        }
        let round = self.rounds.entry(size).or_insert_with(|| Round {
            head: head.clone(),
            sigs: BTreeMap::new(),
        });
        round.sigs.insert(witness, sig);
        if round.sigs.len() >= self.quorum {
            let Ok(mut note) = Note::parse(round.head.note.as_bytes()) else {
                return;
            };
            for s in round.sigs.values() {
                if note.push_signature(s.clone()).is_err() {
                    break;
                }
            }
            let c = Cosigned {
                size: round.head.size,
                root: round.head.root,
                note: note.to_string(),
            };
            tracing::info!(
                size,
                witnesses = round.sigs.len(),
                "checkpoint cosigned by a quorum"
            );
            self.metrics
                .cosigned_size
                .store(size, std::sync::atomic::Ordering::Relaxed);
            self.published.send_replace(Some(Arc::new(c)));
            // Older rounds can no longer be published.
            self.rounds = self.rounds.split_off(&size);
        }
        // Bound memory: rounds that never reach a quorum are dropped.
        while self.rounds.len() > 64 {
            self.rounds.pop_first();
        }
    }
}

/// Handle to the running witnessing tasks.
#[derive(Clone)]
pub struct Witnessing {
    cosigned: watch::Receiver<Option<Arc<Cosigned>>>,
    /// The witnesses' verifier keys, in configuration order.
    vkeys: Arc<[String]>,
    /// Cosignatures a checkpoint needs.
    quorum: usize,
}

impl Witnessing {
    /// Starts the coordinator and one task per witness, following the
    /// log's signed heads.
    pub fn start(
        cfg: WitnessingConfig,
        log: Arc<Log>,
        client: crate::outbound::HttpClient,
    ) -> Witnessing {
        let head = log.sequencer().head();
        let vkeys: Arc<[String]> = cfg.witnesses.iter().map(|w| w.vkey.to_string()).collect();
        let quorum = cfg.quorum.max(1);
        let (pub_tx, pub_rx) = watch::channel(None);
        let agg = Arc::new(Mutex::new(Agg {
            rounds: BTreeMap::new(),
            quorum: cfg.quorum.max(1),
            published: pub_tx,
            metrics: log.metrics().clone(),
        }));
        let (target_tx, target_rx) = watch::channel::<Option<Arc<SignedHead>>>(None);
        // Coordinator: one target per interval, when the tree has grown.
        let interval = cfg.interval;
        let mut head_rx = head;
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let h = head_rx.borrow_and_update().clone();
                if last != Some(h.size) {
                    last = Some(h.size);
                    if target_tx.send(Some(h)).is_err() {
                        return;
                    }
                    tokio::time::sleep(interval).await;
                }
                if head_rx.changed().await.is_err() {
                    return;
                }
            }
        });
        for (i, w) in cfg.witnesses.into_iter().enumerate() {
            let t = Submitter {
                index: i,
                w,
                client: client.clone(),
                log: log.clone(),
                agg: agg.clone(),
                timeout: cfg.timeout,
                interval: cfg.interval,
            };
            tokio::spawn(t.run(target_rx.clone()));
        }
        Witnessing {
            cosigned: pub_rx,
            vkeys,
            quorum,
        }
    }

    /// The witnesses' verifier keys, and how many must cosign.
    pub fn policy(&self) -> (&[String], usize) {
        (&self.vkeys, self.quorum)
    }

    /// The newest checkpoint that met the quorum, if any yet.
    pub fn latest(&self) -> Option<Arc<Cosigned>> {
        self.cosigned.borrow().clone()
    }

    /// A feed of cosigned checkpoints.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<Cosigned>>> {
        self.cosigned.clone()
    }
}

struct Submitter {
    index: usize,
    w: WitnessEndpoint,
    client: crate::outbound::HttpClient,
    log: Arc<Log>,
    agg: Arc<Mutex<Agg>>,
    timeout: Duration,
    interval: Duration,
}

enum Outcome {
    Cosigned(NoteSignature),
    Conflict(u64),
    Failed(String),
}

impl Submitter {
    async fn run(self, mut target: watch::Receiver<Option<Arc<SignedHead>>>) {
        // The size this witness last cosigned, as far as we know.
        let mut known: u64 = 0;
        loop {
            if target.changed().await.is_err() {
                return;
            }
            let Some(head) = target.borrow_and_update().clone() else {
                continue;
            };
            // At most one 409 retry per round.
            for _attempt in 0..2 {
                let outcome = self.submit(&head, known).await;
                self.log.metrics().witness(
                    &self.w.name,
                    match &outcome {
                        Outcome::Cosigned(_) => "cosigned",
                        Outcome::Conflict(_) => "conflict",
                        Outcome::Failed(_) => "failed",
                    },
                );
                match outcome {
                    Outcome::Cosigned(sig) => {
                        known = head.size.0;
                        self.agg
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .add(self.index, &head, sig);
                        break;
                    }
                    Outcome::Conflict(size) => {
                        tracing::debug!(witness = %self.w.name, size, "witness is at another size; retrying from it");
                        known = size;
                    }
                    Outcome::Failed(why) => {
                        tracing::warn!(witness = %self.w.name, size = head.size.0, "witness submission failed: {why}");
                        // Back off a full interval before the next round.
                        tokio::time::sleep(self.interval).await;
                        break;
                    }
                }
            }
        }
    }

    async fn submit(&self, head: &Arc<SignedHead>, known: u64) -> Outcome {
        if known > head.size.0 {
            return Outcome::Failed(format!(
                "the witness has cosigned size {known}, larger than this log's {}: it has seen another history of this log",
                head.size
            ));
        }
        let proof = if known == 0 || known == head.size.0 {
            Vec::new()
        } else {
            let (old, new) = (TreeSize(known), head.size);
            let r = match ProofPlan::consistency(old, new) {
                Ok(plan) => self.log.prove(plan).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match r {
                Ok(p) => p,
                Err(e) => {
                    return Outcome::Failed(format!(
                        "consistency proof {known} -> {}: {e}",
                        head.size
                    ));
                }
            }
        };
        let body = AddCheckpoint {
            old: known,
            proof,
            note: head.note.clone(),
        }
        .encode();
        let url = format!("{}/add-checkpoint", self.w.url.trim_end_matches('/'));
        let req = match hyper::Request::post(&url)
            .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("bad witness URL {url:?}: {e}")),
        };
        let resp = match tokio::time::timeout(self.timeout, async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        })
        .await
        {
            Err(_) => {
                return Outcome::Failed(format!("no answer from {url} within {:?}", self.timeout));
            }
            Ok(Err(e)) => return Outcome::Failed(format!("{url}: {e}")),
            Ok(Ok(r)) => r,
        };
        let (status, body) = resp;
        let text = String::from_utf8_lossy(&body);
        match status {
            200 => self.accept(head, &text),
            409 => match cairn_core::encoding::parse_decimal(text.trim_end_matches('\n')) {
                Some(size) => Outcome::Conflict(size),
                None => Outcome::Failed("409 without a tree size body".into()),
            },
            422 => {
                tracing::error!(witness = %self.w.name, size = head.size.0, "witness rejected this log's consistency proof (422): it holds a checkpoint this history does not extend");
                Outcome::Failed("422: consistency proof rejected".into())
            }
            s => Outcome::Failed(format!(
                "HTTP {s}: {}",
                text.chars().take(200).collect::<String>().trim_end()
            )),
        }
    }

    /// Checks the cosignature lines in a 200 body against the witness key
    /// and the checkpoint text.
    fn accept(&self, head: &SignedHead, body: &str) -> Outcome {
        let Ok(note) = Note::parse(head.note.as_bytes()) else {
            return Outcome::Failed("own checkpoint does not parse".into());
        };
        let joined = format!("{}\n{body}", note.text());
        let Ok(with) = Note::parse(joined.as_bytes()) else {
            return Outcome::Failed("200 body is not cosignature lines".into());
        };
        for s in with.signatures() {
            if s.name == self.w.vkey.name() && s.key_id == self.w.vkey.key_id() {
                if self.w.vkey.verify(note.text(), &s.sig).is_some() {
                    return Outcome::Cosigned(s.clone());
                }
                return Outcome::Failed("the witness's cosignature does not verify".into());
            }
        }
        Outcome::Failed("no cosignature by the configured witness key in the 200 body".into())
    }
}
