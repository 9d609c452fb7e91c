//! `Server` as `cairn serve` runs it: key creation, gRPC and HTTP on
//! 127.0.0.1:0, C2SP tiles that agree with the gRPC proofs, graceful
//! shutdown that flushes, and a restart that continues the same log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cairn_core::checkpoint::{WitnessPolicy, verify_checkpoint};
use cairn_core::hash::{Hash, LeafIndex, TreeSize, leaf_hash};
use cairn_core::note::NoteVerifier;
use cairn_core::proof::ProofPlan;
use cairn_core::tile::parse_entry_bundle;
use cairn_server::pb::log_client::LogClient;
use cairn_server::{ServeConfig, Server, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

fn config(dir: &std::path::Path) -> ServeConfig {
    let mut cfg = ServeConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::single(dir.join("cairn-data"))
    };
    cfg.logs[0].tile_cache_mb = 16;
    cfg
}

/// A minimal HTTP/1.1 GET: (status, headers, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(buf[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), buf[split + 4..].to_vec())
}

/// A self-signed test CA.
fn test_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for the DNS name `name` signed by `issuer`, and its key
/// (both PEM).
fn test_leaf(issuer: &rcgen::CertifiedIssuer<'_, rcgen::KeyPair>, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `text` to `dir/name` with mode 0600: beside, then renamed into
/// place, so a running server never reads a half-written file.
fn put_secret(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let t = dir.join(format!("{name}.tmp"));
    std::fs::write(&t, text).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&t, &p).unwrap();
    p
}

/// `GET /checkpoint` over HTTPS to `addr` (as `localhost`), trusting
/// `ca_pem`, with a client certificate and key when given: the raw
/// response, or why the connection failed.
async fn https_checkpoint(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&(String, String)>,
) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /checkpoint HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    // A refused client certificate surfaces here, as a read error with
    // nothing read.
    if let Err(e) = tls.read_to_end(&mut buf).await
        && buf.is_empty()
    {
        return Err(e.to_string());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn event(i: u64) -> pb::AppendRequest {
    pb::AppendRequest {
        event: format!(r#"{{"seq":{i},"email":"u{i}@example.com"}}"#).into_bytes(),
        content_type: pb::ContentType::Json as i32,
        policy: String::new(),
        idempotency_key: Vec::new(),
        wait_cosigned: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tiles_shutdown_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let server = Server::bind(&cfg).await.unwrap();
    let (grpc, http) = (server.grpc_addr().unwrap(), server.http_addr().unwrap());
    // The key was generated, private, with its verifier key beside it.
    let key = cfg.logs[0].data_dir.join("log.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let vkey_text = std::fs::read_to_string(cfg.logs[0].data_dir.join("log.vkey")).unwrap();
    assert_eq!(vkey_text.trim(), server.vkey);
    let vk = NoteVerifier::parse(vkey_text.trim()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));

    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    // grpc.health.v1 says SERVING for the log.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "cairn.v1.Log".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Server reflection lists the service.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .unwrap()
        .into_inner();
    let listed = refl.next().await.unwrap().unwrap();
    match listed.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            assert!(l.service.iter().any(|s| s.name == "cairn.v1.Log"), "{l:?}");
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
    let mut stream = c
        .append_stream(tokio_stream::iter((0..300).map(event)))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(r) = stream.next().await {
        r.unwrap();
        n += 1;
    }
    assert_eq!(n, 300);

    // /checkpoint verifies with log.vkey.
    let (status, headers, body) = get(http, "/checkpoint").await;
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/plain"));
    let cp = verify_checkpoint(&body, None, &vk, &WitnessPolicy::default())
        .unwrap()
        .checkpoint;
    assert_eq!(cp.size, TreeSize(300));
    // A proof computed only from HTTP tiles equals the gRPC proof.
    let plan = ProofPlan::inclusion(LeafIndex(5), cp.size).unwrap();
    let mut tiles = Vec::new();
    for t in plan.tiles() {
        let (status, headers, body) = get(http, &format!("/{}", t.path())).await;
        assert_eq!(status, 200, "{}", t.path());
        let immutable = headers.contains("immutable");
        assert_eq!(immutable, t.is_full(), "{} cache headers", t.path());
        tiles.push(
            body.chunks(32)
                .map(|c| Hash::from_slice(c).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    let from_tiles = plan.resolve(&tiles).unwrap();
    let grpc_proof = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(5)),
            tree_size: 300,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        from_tiles.iter().map(|h| h.0.to_vec()).collect::<Vec<_>>(),
        grpc_proof.proof
    );
    // The full entry bundle matches the level-0 tile.
    let (_, _, bundle) = get(http, "/tile/entries/000").await;
    let entries = parse_entry_bundle(&bundle).unwrap();
    assert_eq!(entries.len(), 256);
    let (_, _, tile0) = get(http, "/tile/0/000").await;
    for (e, h) in entries.iter().zip(tile0.chunks(32)) {
        assert_eq!(leaf_hash(e).0.as_slice(), h);
    }
    // Bad and missing paths.
    assert_eq!(get(http, "/tile/0/1").await.0, 400);
    assert_eq!(get(http, "/tile/0/009").await.0, 404);
    assert_eq!(
        get(http, "/tile/entries/001").await.0,
        404,
        "only 44 entries in bundle 1"
    );
    assert_eq!(get(http, "/tile/entries/001.p/44").await.0, 200);
    assert_eq!(get(http, "/healthz").await.0, 200);
    assert!(
        String::from_utf8(get(http, "/metrics").await.2)
            .unwrap()
            .contains("cairn_tree_size{log=\"default\"} 300")
    );

    // Graceful shutdown flushes appends that are in flight.
    let mut inflight = Vec::new();
    for i in 300..340 {
        let mut c2 = c.clone();
        inflight.push(tokio::spawn(async move { c2.append(event(i)).await }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop_tx.send(()).unwrap();
    let mut answered = 0;
    for h in inflight {
        if h.await.unwrap().is_ok() {
            answered += 1;
        }
    }
    running.await.unwrap().unwrap();
    assert!(answered > 0);

    // Restart: same key, same tree, and it continues.
    let server = Server::bind(&cfg).await.unwrap();
    assert_eq!(server.vkey, vk.to_string());
    let grpc = server.grpc_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let head = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.size, 300 + answered);
    let r = c.append(event(1000)).await.unwrap().into_inner();
    assert_eq!(r.index, 300 + answered);
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();

    // A key readable by others is refused.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Server::bind(&cfg).await.err().unwrap().to_string();
    assert!(err.contains("readable by group or others"), "{err}");
}

/// Disk full under a running server: appends fail with `UNAVAILABLE` and a
/// message that says so, reads keep working, nothing acknowledged is lost,
/// and appends resume once space is freed. Uses a 64 MiB tmpfs (needs
/// root, as in CI, where a failed mount fails the test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_then_space_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !cairn_server::testing::require(mounted, "a 64 MiB tmpfs mount (needs root)") {
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let cfg = config(&mnt);
    let server = Server::bind(&cfg).await.unwrap();
    let grpc = server.grpc_addr().unwrap();
    let vkey = NoteVerifier::parse(&server.vkey).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..50 {
        let r = c.append(event(i)).await.unwrap().into_inner();
        acked.push((r.index, r.leaf_hash));
    }
    let before = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Fill the disk.
    let ballast = mnt.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).unwrap();
        let chunk = vec![0u8; 1 << 20];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Appends of large events until one fails.
    let big = |i: u64| pb::AppendRequest {
        event: format!(r#"{{"seq":{i},"pad":"{}"}}"#, "x".repeat(60_000)).into_bytes(),
        ..Default::default()
    };
    let mut failure = None;
    for i in 0..2000 {
        match c.append(big(1000 + i)).await {
            Ok(r) => {
                let r = r.into_inner();
                acked.push((r.index, r.leaf_hash));
            }
            Err(s) => {
                failure = Some(s);
                break;
            }
        }
    }
    let status = failure.expect("the disk never filled up");
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );
    assert!(
        status.message().contains("space") || status.message().contains("unavailable"),
        "unclear message: {}",
        status.message()
    );
    // Reads keep working while the disk is full.
    let cp = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let seen = verify_checkpoint(cp.note.as_bytes(), None, &vkey, &WitnessPolicy::default())
        .unwrap()
        .checkpoint;
    assert!(seen.size.0 >= before.size);
    let p = c
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(7)),
            tree_size: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let proof: Vec<Hash> = p
        .proof
        .iter()
        .map(|h| Hash::from_slice(h).unwrap())
        .collect();
    cairn_core::proof::verify_inclusion(
        &Hash::from_slice(&acked[7].1).unwrap(),
        LeafIndex(7),
        seen.size,
        &proof,
        &seen.root,
    )
    .unwrap();
    // Free space: appends resume.
    std::fs::remove_file(&ballast).unwrap();
    let mut resumed = None;
    for i in 0..50 {
        match c.append(event(5000 + i)).await {
            Ok(r) => {
                resumed = Some(r.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let r = resumed.expect("appends never resumed after space was freed");
    // Nothing acknowledged was lost, and the tree only grew.
    let mut s = c
        .get_entries(pb::GetEntriesRequest {
            start: 0,
            end: r.index,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut leaves = Vec::new();
    while let Some(e) = s.next().await {
        leaves.push(leaf_hash(&e.unwrap().leaf));
    }
    for (i, h) in &acked {
        assert_eq!(leaves[*i as usize].0.as_slice(), h.as_slice(), "entry {i}");
    }
    let now = r.checkpoint.unwrap();
    let cons = c
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: before.size,
            new_size: now.size,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let proof: Vec<Hash> = cons
        .proof
        .iter()
        .map(|h| Hash::from_slice(h).unwrap())
        .collect();
    cairn_core::proof::verify_consistency(
        TreeSize(before.size),
        TreeSize(now.size),
        &Hash::from_slice(&before.root).unwrap(),
        &Hash::from_slice(&now.root).unwrap(),
        &proof,
    )
    .unwrap();
    eprintln!(
        "disk full after {} acknowledged appends: {:?} {:?}; resumed at index {}",
        acked.len(),
        status.code(),
        status.message(),
        r.index
    );
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
}

/// TLS and mTLS on the gRPC listener: a client with a certificate from the
/// configured client CA completes the handshake; a client with another
/// CA's certificate, one with none, and a plaintext client are refused; a
/// world-readable TLS key is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let tmp = tempfile::tempdir().unwrap();
    let ca1 = test_ca("cairn test CA");
    let ca2 = test_ca("someone else's CA");
    let (server_cert, server_key) = test_leaf(&ca1, "localhost");
    let (client_cert, client_key) = test_leaf(&ca1, "client.example");
    let (other_cert, other_key) = test_leaf(&ca2, "intruder.example");
    let write = |name: &str, text: &str| put_secret(tmp.path(), name, text);
    let tls = cairn_server::TlsFiles {
        cert: write("server.pem", &server_cert),
        key: write("server.key", &server_key),
        client_ca: Some(write("ca.pem", &ca1.pem())),
    };
    let mut cfg = config(tmp.path());
    cfg.tls = Some(tls.clone());
    let server = Server::bind(&cfg).await.unwrap();
    let port = server.grpc_addr().unwrap().port();
    let https = server.http_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    // HTTPS (tiles, /checkpoint) with the same certificate and client CA.
    let https_get = |identity: Option<(String, String)>| {
        let ca = ca1.pem();
        async move { https_checkpoint(https, &ca, identity.as_ref()).await }
    };
    let (cc, ck) = (client_cert.clone(), client_key.clone());
    let r = https_get(Some((cc, ck))).await.unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("localhost/cairn\n"),
        "{r}"
    );
    let r = https_get(None).await;
    assert!(
        !r.as_ref().is_ok_and(|t| t.starts_with("HTTP/1.1 200")),
        "HTTPS without a client certificate got {r:?}"
    );
    let r = https_get(Some((other_cert.clone(), other_key.clone()))).await;
    assert!(
        !r.as_ref().is_ok_and(|t| t.starts_with("HTTP/1.1 200")),
        "HTTPS with another CA's certificate got {r:?}"
    );
    let connect = |identity: Option<(String, String)>| {
        let ca = ca1.pem();
        async move {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost");
            if let Some((c, k)) = identity {
                tls = tls.identity(Identity::from_pem(c, k));
            }
            let ch = Channel::from_shared(format!("https://localhost:{port}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            LogClient::new(ch)
                .get_checkpoint(pb::GetCheckpointRequest::default())
                .await
                .map_err(|s| s.to_string())
        }
    };
    let ok = connect(Some((client_cert, client_key))).await;
    assert!(
        ok.is_ok(),
        "mTLS handshake with a known client failed: {ok:?}"
    );
    assert!(
        connect(Some((other_cert, other_key))).await.is_err(),
        "a client from another CA got in"
    );
    assert!(
        connect(None).await.is_err(),
        "a client without a certificate got in"
    );
    let plain = LogClient::connect(format!("http://127.0.0.1:{port}")).await;
    let plain_ok = match plain {
        Ok(mut c) => c
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!plain_ok, "a plaintext client got an answer");
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
    // A TLS key readable by others is refused.
    std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cfg = config(&tmp.path().join("other"));
    cfg.tls = Some(tls);
    let err = Server::bind(&cfg).await.err().unwrap().to_string();
    assert!(err.contains("readable by group or others"), "{err}");
}

/// Identities from mTLS client certificates: with private reads, a client
/// whose certificate is valid for a `[[client_cert]]` DNS name acts as that
/// identity over gRPC and HTTPS (scopes enforced), one from the same CA
/// but unnamed gets UNAUTHENTICATED (HTTP 401), and a bearer token still
/// works over the same mTLS connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_identities() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let tmp = tempfile::tempdir().unwrap();
    let ca = test_ca("cairn test CA");
    let leaf = |name: &str| test_leaf(&ca, name);
    let write = |name: &str, text: &str| put_secret(tmp.path(), name, text);
    let (server_cert, server_key) = leaf("localhost");
    let ingest = leaf("ingest.clients.test");
    let reader = leaf("reader.clients.test");
    let stranger = leaf("stranger.clients.test");
    let token = "cairn_tok_certtest_0123456789abcdef";
    let file = format!(
        "[[client_cert]]\nname = \"ingest\"\ndns_name = \"ingest.clients.test\"\nscopes = [\"append\", \"read\"]\n\n\
         [[client_cert]]\nname = \"reader\"\ndns_name = \"reader.clients.test\"\nscopes = [\"read\"]\n\n\
         [[token]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
        cairn_server::auth::token_hash_hex(token)
    );
    let mut auth = cairn_server::auth::AuthConfig::from_toml("tokens.toml", &file).unwrap();
    assert_eq!(auth.client_cert_count(), 2);
    auth.public_reads = false;
    let mut cfg = config(tmp.path());
    cfg.auth = Some(auth);
    cfg.tls = Some(cairn_server::TlsFiles {
        cert: write("server.pem", &server_cert),
        key: write("server.key", &server_key),
        client_ca: Some(write("ca.pem", &ca.pem())),
    });
    let server = Server::bind(&cfg).await.unwrap();
    let port = server.grpc_addr().unwrap().port();
    let https = server.http_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let client = |id: &(String, String)| {
        let (c, k, ca) = (id.0.clone(), id.1.clone(), ca.pem());
        async move {
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost")
                .identity(Identity::from_pem(c, k));
            let ch = Channel::from_shared(format!("https://localhost:{port}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
                .unwrap();
            LogClient::new(ch)
        }
    };
    let append = pb::AppendRequest {
        event: br#"{"action":"cert.login"}"#.to_vec(),
        ..Default::default()
    };
    // ingest: append and read by certificate alone.
    let mut c = client(&ingest).await;
    let r = c.append(append.clone()).await.unwrap().into_inner();
    assert_eq!(r.index, 0);
    c.get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap();
    // reader: reads, but may not append.
    let mut c = client(&reader).await;
    c.get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap();
    let s = c.append(append.clone()).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s}");
    assert!(s.message().contains("reader"), "{}", s.message());
    // stranger: same CA, no identity.
    let mut c = client(&stranger).await;
    let s = c
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s}");
    // ...unless it also sends a token (which takes precedence).
    let mut req = tonic::Request::new(append.clone());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(c.append(req).await.unwrap().into_inner().index, 1);
    // HTTPS: the same identities.
    let get = |id: (String, String)| {
        let ca = ca.pem();
        async move { https_checkpoint(https, &ca, Some(&id)).await.unwrap() }
    };
    let r = get(reader.clone()).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = get(stranger.clone()).await;
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
}

/// Certificate hot reload: the server starts with a certificate from one
/// CA; its files are replaced (key first, then the certificate, each
/// renamed into place) with one from another CA; new gRPC and HTTPS
/// connections get the new certificate without a restart, while a broken
/// replacement (a key that does not match) is refused and the current pair
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_hot_reload() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let tmp = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (test_ca("old CA"), test_ca("new CA"));
    let (c1, k1) = test_leaf(&old_ca, "localhost");
    let (c2, k2) = test_leaf(&new_ca, "localhost");
    // Written beside, then renamed into place: never a half-written file.
    let put = |name: &str, text: &str| put_secret(tmp.path(), name, text);
    let tls = cairn_server::TlsFiles {
        key: put("server.key", &k1),
        cert: put("server.pem", &c1),
        client_ca: None,
    };
    let mut cfg = config(tmp.path());
    cfg.tls = Some(tls);
    let server = Server::bind(&cfg).await.unwrap();
    let port = server.grpc_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let works_with = |ca_pem: String| async move {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        let ch = Channel::from_shared(format!("https://localhost:{port}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await;
        match ch {
            Ok(ch) => LogClient::new(ch)
                .get_checkpoint(pb::GetCheckpointRequest::default())
                .await
                .is_ok(),
            Err(_) => false,
        }
    };
    assert!(works_with(old_ca.pem()).await);
    assert!(!works_with(new_ca.pem()).await);
    // Rotate: key first, then certificate. Modification times must move.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put("server.key", &k2);
    put("server.pem", &c2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !works_with(new_ca.pem()).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !works_with(old_ca.pem()).await,
        "the old certificate is still served"
    );
    // A broken rotation (the old key with the new certificate) is refused:
    // the current pair stays.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    put("server.key", &k1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        works_with(new_ca.pem()).await,
        "a mismatched pair replaced a good one"
    );
    stop_tx.send(()).unwrap();
    running.await.unwrap().unwrap();
}
