//! What an outside review and hostile clients found (issue 15), against a
//! real gRPC server on 127.0.0.1:0 and real RocksDB: idempotency keys
//! scoped to their caller, hashed before they reach disk, and refused with
//! another event; a store that must stop writing does, loudly; listeners
//! cut off slow clients and cap their connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use cairn_server::auth::{AuthConfig, token_hash_hex};
use cairn_server::pb::log_client::LogClient;
use cairn_server::{ServeConfig, Server, pb};
use cairn_storage::{Fault, FaultPoint, FaultyStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

mod common;

use common::{get, rocks, serve};

/// `cairn serve`'s defaults on `data_dir`, both listeners on 127.0.0.1:0.
fn local_config(data_dir: &std::path::Path) -> ServeConfig {
    let mut cfg = ServeConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::single(data_dir)
    };
    cfg.logs[0].tile_cache_mb = 1;
    cfg
}

/// A `cairn serve` run in this process: its addresses, and how to stop it.
struct Running {
    grpc: std::net::SocketAddr,
    http: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), cairn_server::ServeError>>,
}

impl Running {
    /// Binds and runs `cfg`.
    async fn start(cfg: &ServeConfig) -> Result<Running, cairn_server::ServeError> {
        let server = Server::bind(cfg).await?;
        let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ok(Running {
            grpc,
            http,
            stop,
            task,
        })
    }

    /// Stops it gracefully, and checks it stopped cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn event(text: &str, key: &str) -> pb::AppendRequest {
    pb::AppendRequest {
        event: format!(r#"{{"action":"{text}"}}"#).into_bytes(),
        idempotency_key: key.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// Every byte under `dir`, RocksDB's WAL and SST files included.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Item 1: keys are scoped by the caller's identity, a repeat with another
/// event is ALREADY_EXISTS, and no key byte reaches disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_hashed_and_never_rebound() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(rocks(tmp.path()));
    let tokens = format!(
        "[[token]]\nname = \"alice\"\nsha256 = \"{}\"\nscopes = [\"append\", \"read\"]\n\n[[token]]\nname = \"mallory\"\nsha256 = \"{}\"\nscopes = [\"append\"]\n",
        token_hash_hex("tok-alice"),
        token_hash_hex("tok-mallory")
    );
    let mut auth = AuthConfig::from_toml("tokens.toml", &tokens).unwrap();
    auth.public_reads = false;
    let (grpc, _) = serve(store.clone(), Some(auth)).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    // A key that is itself PII, of a valid length.
    let key = "key.canary.7431@example.com";
    // Mallory claims the key first, with her own event.
    let m = c
        .append(with_token(event("mallory-first", key), "tok-mallory"))
        .await
        .unwrap()
        .into_inner();
    assert!(!m.duplicate);
    // Alice's event under the same key is hers: appended, not dropped,
    // and not answered with Mallory's leaf.
    let a = c
        .append(with_token(event("alice-payment", key), "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert!(!a.duplicate, "the key was claimed across callers");
    assert_ne!(a.index, m.index);
    assert!(String::from_utf8_lossy(&a.leaf).contains("alice-payment"));
    // Alice's retry is answered with her original entry.
    let again = c
        .append(with_token(event("alice-payment", key), "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.index, a.index);
    assert_eq!(again.leaf, a.leaf);
    // The same key with a different event is refused, not dropped.
    let s = c
        .append(with_token(event("alice-other", key), "tok-alice"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
    assert!(!s.message().contains(key), "{}", s.message());
    // Two appended entries only.
    let cp = c
        .get_checkpoint(with_token(pb::GetCheckpointRequest::default(), "tok-alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 2);
    // The key never reached disk: WAL and SST files, memtables flushed.
    drop(c);
    let bytes = all_bytes(tmp.path());
    assert!(
        contains(&bytes, b"mallory-first"),
        "the scan reads the data files"
    );
    assert!(!contains(&bytes, key.as_bytes()), "the raw key is on disk");
    assert!(
        !contains(&bytes, b"canary.7431"),
        "part of the raw key is on disk"
    );
}

/// Item 11 over the wire: a store refusal that only another writer or a
/// damaged history explains stops the log writing: FAILED_PRECONDITION
/// now and for every later append, /healthz 503, reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_store_error_stops_writing_loudly() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FaultyStore::new(rocks(tmp.path())));
    let (grpc, http) = serve(store.clone(), None).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    c.append(event("one", "")).await.unwrap();
    assert!(
        get(http, "/healthz", None)
            .await
            .starts_with("HTTP/1.1 200")
    );
    store.arm(FaultPoint::PutCheckpoint, Fault::Refuse);
    let s = c.append(event("two", "")).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert!(s.message().contains("stopped writing"), "{}", s.message());
    assert_eq!(store.fired(), 1);
    let s = c.append(event("three", "")).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let health = get(http, "/healthz", None).await;
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("stopped writing"), "{health}");
    // Reads go on: the last checkpoint is still served, at size 1.
    let cp = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 1);
}

/// Item 4: the HTTP listener cuts off a client that sends its headers too
/// slowly (slowloris) and keeps at most `max_connections` open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = local_config(&tmp.path().join("d"));
    cfg.limits.header_timeout = Duration::from_millis(500);
    cfg.limits.max_connections = 2;
    let first = Running::start(&cfg).await.unwrap();
    let http = first.http;
    // Slowloris: half a request line's headers, then nothing.
    let mut slow = tokio::net::TcpStream::connect(http).await.unwrap();
    slow.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let cut = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("a slow client must be cut off within the header timeout");
    // Closed: EOF, a reset, or a 408 just before the close.
    match cut {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
    // An idle connection that sent nothing is closed too.
    let mut idle = tokio::net::TcpStream::connect(http).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(r.is_ok(), "an idle connection was kept open");

    // The cap: two connections open (each sent a partial request, so each
    // holds its slot until the header timeout), a third waits.
    let mut cfg2 = cfg.clone();
    cfg2.logs[0].data_dir = tmp.path().join("d2");
    cfg2.limits.header_timeout = Duration::from_secs(3);
    let second = Running::start(&cfg2).await.unwrap();
    let http2 = second.http;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut h = tokio::net::TcpStream::connect(http2).await.unwrap();
        h.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(h);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = tokio::spawn(get(http2, "/healthz", None));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served past a cap of 2"
    );
    drop(held);
    let answer = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the third connection is served once a slot frees")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    first.stop().await;
    second.stop().await;
}

/// Item 7: listening beyond loopback without a token file, or with tokens
/// but without TLS, is said loudly at start-up.
#[test]
fn exposure_beyond_loopback_is_warned() {
    let open = ServeConfig {
        grpc_addr: "0.0.0.0:7400".parse().unwrap(),
        ..ServeConfig::default()
    };
    let w = cairn_server::exposure_warnings(&open);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("no token file") && w[0].contains("0.0.0.0:7400"),
        "{w:?}"
    );
    let tokens = ServeConfig {
        auth: Some(AuthConfig::default()),
        ..open.clone()
    };
    let w = cairn_server::exposure_warnings(&tokens);
    assert!(w[0].contains("without TLS"), "{w:?}");
    assert!(cairn_server::exposure_warnings(&ServeConfig::default()).is_empty());
}

/// Item 5: a client that streams appends but never reads its receipts is
/// held by flow control once its stream's in-flight bytes are spent; the
/// server does not read (or hold) the rest. Reading again drains them all,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_receipts_are_not_read_is_held_by_flow_control() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_stream::StreamExt;
    let tmp = tempfile::tempdir().unwrap();
    let (grpc, _) = serve(Arc::new(rocks(tmp.path())), None).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    const N: usize = 2000;
    const PAD: usize = 16_000;
    let taken = Arc::new(AtomicUsize::new(0));
    let t = taken.clone();
    let events = tokio_stream::iter(0..N).map(move |i| {
        t.fetch_add(1, Ordering::SeqCst);
        pb::AppendRequest {
            event: format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(PAD)).into_bytes(),
            ..Default::default()
        }
    });
    let mut receipts = c.append_stream(events).await.unwrap().into_inner();
    // Read nothing; wait until the client can send no more.
    let mut last = usize::MAX;
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = taken.load(Ordering::SeqCst);
        if now == last || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        last = now;
    }
    let held = taken.load(Ordering::SeqCst);
    // 16 MiB of in-flight budget per stream, ~50 KB per append here (event,
    // leaf twice, receipt), plus the transport's windows: a few hundred.
    // Before the fix the server read all 2,000 (it held 256 receipts and
    // 4,096 pending appends).
    assert!(
        held < N * 2 / 5,
        "the server took {held} of {N} events ({} MB) from a client that reads nothing",
        (held * PAD) >> 20
    );
    // Reading resumes the stream: every append answered, in order.
    let mut n = 0u64;
    while let Some(r) = receipts.next().await {
        let r = r.unwrap();
        assert_eq!(r.index, n);
        n += 1;
    }
    assert_eq!(n as usize, N);
}

/// Item 8: the guard lives where the operator puts it; a guard write that
/// fails after a durable checkpoint is said (503 on /healthz, the error
/// counter) and the log writes on; the next checkpoint repairs it. A
/// missing guard on a store with checkpoints is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_failures_are_surfaced_and_a_missing_guard_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let guard = tmp.path().join("guard-volume").join("log.guard");
    std::fs::create_dir_all(guard.parent().unwrap()).unwrap();
    let mut cfg = local_config(&tmp.path().join("data-volume").join("data"));
    cfg.logs[0].guard_file = Some(guard.clone());
    let log = Running::start(&cfg).await.unwrap();
    let (grpc, http) = (log.grpc, log.http);
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    c.append(event("one", "")).await.unwrap();
    assert!(guard.exists(), "the guard is where it was configured");
    assert!(
        get(http, "/healthz", None)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // The guard cannot be written (a directory where the file was).
    std::fs::remove_file(&guard).unwrap();
    std::fs::create_dir(&guard).unwrap();
    let failures = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("cairn_guard_write_failures_total{log=\"default\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let before = failures(&get(http, "/metrics", None).await);
    let r = c.append(event("two", "")).await.unwrap().into_inner();
    assert_eq!(r.index, 1, "the log writes on");
    let health = get(http, "/healthz", None).await;
    assert!(
        health.starts_with("HTTP/1.1 503") && health.contains("fork guard"),
        "{health}"
    );
    assert!(failures(&get(http, "/metrics", None).await) > before);
    // Repaired: the next checkpoint writes the guard again.
    std::fs::remove_dir(&guard).unwrap();
    c.append(event("three", "")).await.unwrap();
    assert!(
        get(http, "/healthz", None)
            .await
            .starts_with("HTTP/1.1 200")
    );
    log.stop().await;
    // A lost guard: the store is refused at start, and says what to do.
    std::fs::remove_file(&guard).unwrap();
    let err = Running::start(&cfg).await.err().unwrap().to_string();
    assert!(
        err.contains("fork guard") && err.contains("--rebuild-guard"),
        "{err}"
    );
    // The operator's explicit rebuild.
    let mut rebuild = cfg.clone();
    rebuild.logs[0].rebuild_guard = true;
    let log = Running::start(&rebuild).await.unwrap();
    assert!(guard.exists());
    log.stop().await;
}

/// Item 6: a `Gossip` call that claims a configured peer's key and repeats
/// a real, peer-cosigned checkpoint 1,024 times makes the witness contact
/// the log zero times (before the fix: a proof fetch per copy). A witness
/// checks only what it fetches itself, from its configured peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_gossip_makes_the_witness_do_no_work() {
    use cairn_core::{Cosigner, MemoryLog, Note, NoteSigner};
    use cairn_server::pb::witness_client::WitnessClient;
    use cairn_server::witness::{Peer, WitnessConfig, WitnessServer, WitnessedLog};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let mut log = MemoryLog::new(NoteSigner::from_seed("gossip.test/log", &[7; 32]).unwrap());
    let leaves = |n: u64, from: u64| {
        (from..from + n)
            .map(|i| format!("e{i}"))
            .collect::<Vec<_>>()
    };
    let cp5 = log.append(&leaves(5, 0)).unwrap();
    // The log's gRPC address, as the witness knows it: counts connections.
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", fake.local_addr().unwrap());
    let dialled = Arc::new(AtomicUsize::new(0));
    let d = dialled.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = fake.accept().await {
            d.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    let peer = Cosigner::from_seed("w2.gossip.test", &[8; 32]).unwrap();
    let cfg = WitnessConfig {
        data_dir: tmp.path().join("w1"),
        name: "w1.gossip.test".into(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        logs: vec![WitnessedLog {
            vkey: log.verifier(),
            url: Some(fake_url),
            log: String::new(),
        }],
        peers: vec![Peer {
            name: "w2".into(),
            vkey: peer.verifier(),
            url: "http://127.0.0.1:9".into(),
        }],
        gossip_interval: Duration::from_secs(3600),
        tls: None,
        tls_ca: None,
        limits: Default::default(),
    };
    let w = WitnessServer::bind(&cfg).await.unwrap();
    let grpc = w.grpc_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(w.run(async {
        let _ = stopped.await;
    }));
    let mut c = WitnessClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    c.add_checkpoint(pb::AddCheckpointRequest {
        old_size: 0,
        proof: vec![],
        checkpoint: cp5,
    })
    .await
    .unwrap();
    // A real checkpoint of another size, really cosigned by the peer.
    let cp9 = log.append(&leaves(4, 5)).unwrap();
    let mut note = Note::parse(cp9.as_bytes()).unwrap();
    let sig = peer.cosign(note.text(), 1_767_225_600);
    note.push_signature(sig).unwrap();
    let answer = c
        .gossip(pb::GossipRequest {
            checkpoints: vec![note.to_string(); 1024],
            witness_vkey: peer.verifier().to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.checkpoints.len(),
        1,
        "our own latest checkpoint comes back"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        dialled.load(Ordering::SeqCst),
        0,
        "a replayed gossip made the witness dial the log"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// Item 4, gRPC: at most `max_concurrent_streams` calls at once on one
/// connection; a further call waits until a stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_streams_per_connection_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = local_config(&tmp.path().join("d"));
    cfg.limits.max_concurrent_streams = 2;
    let log = Running::start(&cfg).await.unwrap();
    let grpc = log.grpc;
    // One connection; two long-lived streams fill it.
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let w1 = c
        .watch_checkpoints(pb::WatchCheckpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let _w2 = c
        .watch_checkpoints(pb::WatchCheckpointsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut c3 = c.clone();
    let third =
        tokio::spawn(async move { c3.get_checkpoint(pb::GetCheckpointRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third stream ran past a cap of 2");
    drop(w1);
    let answer = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the third call runs once a stream ends")
        .unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    drop(c);
    drop(_w2);
    log.stop().await;
}

/// A lost writer lease (the data folder's lock file removed under a running
/// log: another process could now lock a new one and write beside it)
/// stops the log writing before anything more is committed (issue 16, the
/// writer-lease seam).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_writer_lease_stops_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = local_config(&tmp.path().join("d"));
    let log = Running::start(&cfg).await.unwrap();
    let (grpc, http) = (log.grpc, log.http);
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    c.append(event("one", "")).await.unwrap();
    std::fs::remove_file(tmp.path().join("d").join("cairn.lock")).unwrap();
    let s = c.append(event("two", "")).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert!(s.message().contains("stopped writing"), "{}", s.message());
    assert!(
        !s.message().contains(tmp.path().to_str().unwrap()),
        "a path reached the client"
    );
    assert!(
        get(http, "/healthz", None)
            .await
            .starts_with("HTTP/1.1 503")
    );
    let cp = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.size, 1, "nothing more was committed");
    log.stop().await;
}

/// A text that once panicked the number rules (a run "00 21": a
/// three-digit country-code zone with two digits after the prefix) is
/// appended like any other, the server goes on serving, and the next
/// append lands after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_panicking_number_is_appended_and_the_server_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(rocks(tmp.path()));
    let (grpc, _) = serve(store, None).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let first = c
        .append(event("call 00 21  12345678 now, or 011 35  4111", ""))
        .await
        .expect("appended")
        .into_inner();
    let leaf = String::from_utf8_lossy(&first.leaf).into_owned();
    assert!(leaf.contains("call 00 21  12345678 now"), "{leaf}");
    let next = c
        .append(event("call +44 20 7946 0958 ext. 12", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.index, first.index + 1);
    let leaf = String::from_utf8_lossy(&next.leaf).into_owned();
    assert!(
        leaf.contains("[REDACTED:phone]") && !leaf.contains("7946") && !leaf.contains("ext"),
        "{leaf}"
    );
}
