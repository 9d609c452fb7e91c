//! Metrics count what they say (issue 15, item 9), in a test binary of its
//! own: the counters are process-wide, so no other test may move them.
//! Refused credentials are counted by category over gRPC and HTTP, a
//! duplicate append is not a new entry, and public reads do not open the
//! admin-only `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use cairn_server::auth::{AuthConfig, token_hash_hex};
use cairn_server::pb;
use cairn_server::pb::log_client::LogClient;

/// The value of one metric line (`name{labels} value`), 0 when absent.
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_appends_are_counted_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = format!(
        "[[token]]\nname = \"ingest\"\nsha256 = \"{}\"\nscopes = [\"append\"]\n\n[[token]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n",
        token_hash_hex("tok-ingest"),
        token_hash_hex("tok-ops")
    );
    let mut auth = AuthConfig::from_toml("tokens.toml", &tokens).unwrap();
    auth.public_reads = true;
    let (grpc, http) = common::serve(Arc::new(common::rocks(tmp.path())), Some(auth)).await;
    let mut c = LogClient::connect(format!("http://{grpc}")).await.unwrap();
    let before = common::get(http, "/metrics", Some("tok-ops")).await;
    let req = |token: Option<&str>, key: &str| {
        let mut r = tonic::Request::new(pb::AppendRequest {
            event: br#"{"action":"login"}"#.to_vec(),
            idempotency_key: key.as_bytes().to_vec(),
            ..Default::default()
        });
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    };
    // Unauthenticated over gRPC: no token, and an unknown one.
    assert_eq!(
        c.append(req(None, "")).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        c.append(req(Some("wrong"), "")).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // Public reads do not open /metrics (admin only): 401 without a token,
    // 403 with the append token.
    assert!(
        common::get(http, "/metrics", None)
            .await
            .starts_with("HTTP/1.1 401")
    );
    assert!(
        common::get(http, "/metrics", Some("tok-ingest"))
            .await
            .starts_with("HTTP/1.1 403")
    );
    // One append, then its retry: one new entry, one duplicate.
    c.append(req(Some("tok-ingest"), "k-1")).await.unwrap();
    let dup = c
        .append(req(Some("tok-ingest"), "k-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(dup.duplicate);
    let after = common::get(http, "/metrics", Some("tok-ops")).await;
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(delta("cairn_errors_total{category=\"unauthenticated\"}"), 3);
    assert_eq!(
        delta("cairn_errors_total{category=\"permission_denied\"}"),
        1
    );
    assert_eq!(
        delta("cairn_appended_total{log=\"default\"}"),
        1,
        "a duplicate is not a new entry"
    );
    assert_eq!(delta("cairn_duplicates_total{log=\"default\"}"), 1);
    assert_eq!(value(&after, "cairn_log_halted{log=\"default\"}"), 0);
    assert!(
        after.contains("cairn_log_halted{log=\"default\"} 0"),
        "{after}"
    );
}
