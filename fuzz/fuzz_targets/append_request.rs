//! Decoding of append requests: arbitrary bytes go through protobuf
//! decoding and then every check the server runs before the sequencer
//! (`cairn_server::service::check_append`: policy name, idempotency key,
//! content type, masking, entry size), and the error's gRPC status. Nothing
//! panics, an accepted event yields a leaf, and no error message carries
//! any of the client's bytes: a canary is spliced into the event, the
//! policy name and the idempotency key at fuzzer-chosen places, and must
//! never appear in a message (a partial echo anywhere is caught, not only
//! an echo of the whole event).
#![no_main]
use std::sync::LazyLock;

use cairn_masking::{Masker, Policy, TokenKeys};
use cairn_server::pb::AppendRequest;
use prost::Message;

static MASKER: LazyLock<Masker> = LazyLock::new(|| {
    Masker::new(Policy::default_policy().unwrap(), &TokenKeys::new(), "fuzz/log").unwrap()
});

/// Text no fixed error message contains.
const CANARY: &[u8] = b"Qz7CANARYx";

/// Inserts the canary into `v` at a place chosen by `seed`.
fn splice(v: &mut Vec<u8>, seed: u8) {
    let at = usize::from(seed) % (v.len() + 1);
    v.splice(at..at, CANARY.iter().copied());
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut req) = AppendRequest::decode(data) else {
        return;
    };
    let seed = |k: usize| data.get(data.len().wrapping_sub(1 + k)).copied().unwrap_or(0);
    splice(&mut req.event, seed(0));
    if !req.idempotency_key.is_empty() {
        splice(&mut req.idempotency_key, seed(1));
    }
    if !req.policy.is_empty() {
        let mut p = std::mem::take(&mut req.policy).into_bytes();
        splice(&mut p, seed(2));
        req.policy = String::from_utf8_lossy(&p).into_owned();
    }
    match cairn_server::service::check_append(&MASKER, &req, 0, &mut || [0u8; 16]) {
        Ok(m) => assert!(m.leaf.starts_with(b"{\"body\":")),
        Err(e) => {
            let status = tonic::Status::from(e);
            let msg = status.message();
            // Error messages are fixed text and numbers, none with '@',
            // '{' or '}': an event holding one of those can only appear in
            // a message by leaking. (An event that spells out a message,
            // such as "known content type -2130574328", is not a leak; the
            // fuzzer found that one, see crates/server/tests/grpc.rs.)
            assert!(
                !msg.contains(std::str::from_utf8(CANARY).unwrap()),
                "client bytes leaked into: {msg}"
            );
            if req.event.len() >= 8 && req.event.iter().any(|b| b"@{}".contains(b)) {
                if let Ok(ev) = std::str::from_utf8(&req.event) {
                    assert!(!msg.contains(ev), "the event leaked into: {msg}");
                }
            }
        }
    }
});
