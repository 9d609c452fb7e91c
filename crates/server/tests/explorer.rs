//! The explorer's server side (issue 22): its assets under `/explorer/`
//! with a strict Content-Security-Policy, and the JSON reads its pages
//! use (entries, inclusion and consistency proofs), whose proofs verify
//! with `cairn-core` against the signed checkpoint; bad parameters get
//! the documented statuses (400, 404), never a panic; private reads need a token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use cairn_core::{Checkpoint, Hash, LeafIndex, Note, TreeSize, leaf_hash};

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(": ")?;
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_slice(&b64(h.as_str().unwrap())).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_assets_and_the_reads_its_pages_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(common::rocks(dir.path()));
    let (grpc, http) = common::serve(store, None).await;
    // Entries, in three batches.
    let mut client = cairn_server::pb::log_client::LogClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    for i in 0..30 {
        client
            .append(cairn_server::pb::AppendRequest {
                event: format!("{{\"i\":{i},\"email\":\"e{i}@example.com\"}}").into_bytes(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // The page and its assets, each with the policy.
    for (path, ctype) in [
        ("/explorer/", "text/html"),
        ("/explorer/app.js", "text/javascript"),
        ("/explorer/verifier.js", "text/javascript"),
        ("/explorer/style.css", "text/css"),
        ("/explorer/vendor/noble-ed25519.js", "text/javascript"),
    ] {
        let r = common::get(http, path, None).await;
        assert_eq!(status(&r), 200, "{path}: {r}");
        assert!(
            header(&r, "content-type").unwrap().starts_with(ctype),
            "{path}"
        );
        let csp = header(&r, "content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    }
    let r = common::get(http, "/explorer", None).await;
    assert_eq!(status(&r), 308, "{r}");
    assert_eq!(
        status(&common::get(http, "/explorer/../Cargo.toml", None).await),
        404
    );
    assert_eq!(
        status(&common::get(http, "/explorer/nope.js", None).await),
        404
    );
    // The checkpoint the page verifies.
    let r = common::get(http, "/checkpoint", None).await;
    let note = Note::parse(body(&r).as_bytes()).unwrap();
    note.verify(&[common::signer().verifier()]).unwrap();
    let cp = Checkpoint::parse(note.text()).unwrap();
    assert_eq!(cp.size, TreeSize(30));
    // Entries: the stored leaves, base64, at most 100.
    let r = common::get(http, "/logs/default/entries?start=10&end=20", None).await;
    assert_eq!(status(&r), 200, "{r}");
    let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[0]["index"], 10);
    let leaf = b64(entries[5]["leaf"].as_str().unwrap());
    let text = String::from_utf8(leaf.clone()).unwrap();
    assert!(
        text.contains("[REDACTED:email]") && !text.contains("e15@example.com"),
        "{text}"
    );
    // Inclusion by index and by leaf hash: the path verifies.
    let lh = leaf_hash(&leaf);
    for q in [
        "index=15".to_owned(),
        format!(
            "leaf_hash={}",
            base64::engine::general_purpose::STANDARD
                .encode(lh.0)
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        ),
    ] {
        let r = common::get(http, &format!("/logs/default/proof/inclusion?{q}"), None).await;
        assert_eq!(status(&r), 200, "{q}: {r}");
        let p: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
        assert_eq!(p["index"], 15);
        assert_eq!(p["size"], 30);
        cairn_core::proof::verify_inclusion(
            &lh,
            LeafIndex(15),
            TreeSize(30),
            &hashes(&p["path"]),
            &cp.root,
        )
        .unwrap();
    }
    // Consistency from an earlier size: verifies against the root of the
    // first 7 leaves, recomputed from the entries.
    let r = common::get(http, "/logs/default/entries?start=0&end=7", None).await;
    let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    let first: Vec<Hash> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| leaf_hash(&b64(e["leaf"].as_str().unwrap())))
        .collect();
    let t = cairn_core::tree::TreeState::default();
    let old_root = t.integrate(&first).unwrap().state.root();
    let r = common::get(http, "/logs/default/proof/consistency?old=7", None).await;
    assert_eq!(status(&r), 200, "{r}");
    let p: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!((p["old"].as_u64(), p["new"].as_u64()), (Some(7), Some(30)));
    cairn_core::proof::verify_consistency(
        TreeSize(7),
        TreeSize(30),
        &old_root,
        &cp.root,
        &hashes(&p["path"]),
    )
    .unwrap();
    // Bad parameters: named statuses, no panic.
    for (q, want) in [
        ("/logs/default/entries?start=20&end=10", 400),
        ("/logs/default/entries?start=0&end=31", 404),
        ("/logs/default/entries?start=x", 400),
        ("/logs/default/proof/inclusion", 400),
        ("/logs/default/proof/inclusion?leaf_hash=AAAA", 400),
        ("/logs/default/proof/inclusion?index=30", 404),
        ("/logs/default/proof/consistency?old=0", 400),
        ("/logs/nope/entries", 404),
        ("/logs/default/search?token=alice%40example.com", 400),
        ("/logs/default/search?token=tok:1:abc&before=31", 404),
    ] {
        let r = common::get(http, q, None).await;
        assert_eq!(status(&r), want, "{q}: {r}");
        assert!(!r.contains("alice"), "a raw value echoed: {r}");
    }
    // A token no entry holds: none found, the whole (small) log searched.
    let r = common::get(
        http,
        "/logs/default/search?token=tok:1:AAAAAAAAAAAAAAAAAAAAAA",
        None,
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let v: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(v["matches"], serde_json::json!([]));
    assert_eq!(
        (v["scanned_from"].as_u64(), v["before"].as_u64()),
        (Some(0), Some(30))
    );
}
