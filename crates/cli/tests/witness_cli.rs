//! `cairn witness` as a real process: every tlog-witness status code over
//! HTTP, and kill -9 while checkpoints stream in: after each restart the
//! witness has lost no cosignature it returned, and it refuses another root
//! for the size it holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::{MemoryLog, Note, NoteSigner};
use common::{add_checkpoint_body as request, grow, post_add_checkpoint};

const ORIGIN: &str = "example.com/witnessed";

/// Starts `cairn witness` on port 0 and returns it with its HTTP address
/// and verifier key.
fn start(dir: &Path, log_vkey: &str) -> (common::Serving, SocketAddr, String) {
    common::try_start_witness(dir, log_vkey).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn status_codes_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = MemoryLog::new(NoteSigner::from_seed(ORIGIN, &[1; 32]).unwrap());
    let (_w, addr, wvkey) = start(&tmp.path().join("w"), &log.verifier().to_string());
    let cp5 = grow(&mut log, 5, "a");
    // 404: another origin.
    let mut other = MemoryLog::new(NoteSigner::from_seed("example.com/other", &[2; 32]).unwrap());
    assert_eq!(
        post_add_checkpoint(addr, &request(0, &[], &grow(&mut other, 1, "x")))
            .unwrap()
            .0,
        404
    );
    // 403: our origin, another key.
    let mut imposter = MemoryLog::new(NoteSigner::from_seed(ORIGIN, &[3; 32]).unwrap());
    assert_eq!(
        post_add_checkpoint(addr, &request(0, &[], &grow(&mut imposter, 5, "a")))
            .unwrap()
            .0,
        403
    );
    // 400: malformed; old > size.
    assert_eq!(post_add_checkpoint(addr, "hello").unwrap().0, 400);
    assert_eq!(
        post_add_checkpoint(addr, &request(6, &[], &cp5)).unwrap().0,
        400
    );
    // 200: a cosignature line by the witness key over the checkpoint.
    let (code, _, body) = post_add_checkpoint(addr, &request(0, &[], &cp5)).unwrap();
    assert_eq!(code, 200, "{body}");
    let mut note = Note::parse(cp5.as_bytes()).unwrap();
    let joined = format!("{}\n{body}", note.text());
    for s in Note::parse(joined.as_bytes()).unwrap().signatures() {
        note.push_signature(s.clone()).unwrap();
    }
    let witness = cairn_core::NoteVerifier::parse(&wvkey).unwrap();
    let policy = cairn_core::WitnessPolicy {
        witnesses: vec![witness],
        quorum: 1,
    };
    let v =
        cairn_core::verify_checkpoint(note.to_string().as_bytes(), None, &log.verifier(), &policy)
            .unwrap();
    assert!(v.cosignatures[0].timestamp.unwrap() > 1_700_000_000);
    // 409 with the size, as text/x.tlog.size.
    let cp9 = grow(&mut log, 4, "a");
    assert_eq!(
        post_add_checkpoint(addr, &request(0, &[], &cp9)).unwrap(),
        (409, "text/x.tlog.size".to_owned(), "5\n".to_owned())
    );
    // 422: a proof that does not connect.
    let mut bad = log.consistency(5, 9).unwrap();
    bad[0].0[31] ^= 1;
    assert_eq!(
        post_add_checkpoint(addr, &request(5, &bad, &cp9))
            .unwrap()
            .0,
        422
    );
    assert_eq!(
        post_add_checkpoint(addr, &request(5, &log.consistency(5, 9).unwrap(), &cp9))
            .unwrap()
            .0,
        200
    );
}

#[test]
fn kill_9_never_loses_a_returned_cosignature() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let mut log = MemoryLog::new(NoteSigner::from_seed(ORIGIN, &[1; 32]).unwrap());
    let vkey = log.verifier().to_string();
    // A fork of the log for every size: same key, other leaves.
    let mut seed = 0x5eed_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut acked_max = 0u64;
    for round in 0..5 {
        let (w, addr, _) = start(&dir, &vkey);
        // Where does the witness stand after the restart? (A fresh witness
        // cosigns the current checkpoint on first contact.)
        let latest = match post_add_checkpoint(addr, &request(0, &[], &log.checkpoint().unwrap()))
            .unwrap()
        {
            (409, _, b) => b.trim().parse::<u64>().unwrap(),
            (200, _, _) => log.size().0,
            other => panic!("{other:?}"),
        };
        // Every cosignature it returned before the kill is still on record.
        assert!(
            latest >= acked_max,
            "round {round}: witness at {latest}, but it cosigned {acked_max}"
        );
        assert!(latest <= log.size().0);
        if latest > 0 {
            // And it refuses another root for the size it holds (422 since
            // C2SP/C2SP#280, c2sp.org/tlog-witness).
            let mut fork = MemoryLog::new(NoteSigner::from_seed(ORIGIN, &[1; 32]).unwrap());
            let forked = grow(&mut fork, latest, "fork");
            assert_eq!(
                post_add_checkpoint(addr, &request(latest, &[], &forked))
                    .unwrap()
                    .0,
                422
            );
        }
        // Stream growth at it from another thread; kill -9 at a random moment.
        let acked = Arc::new(Mutex::new(latest));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut cps = Vec::new();
        let mut known = latest;
        for _ in 0..40 {
            let cp = grow(&mut log, 1 + rand() % 50, "a");
            cps.push((log.size().0, cp));
        }
        let proofs: Vec<(u64, String)> = cps
            .iter()
            .map(|(size, cp)| {
                let p = log.consistency(known.max(1), *size).unwrap_or_default();
                let body = if known == 0 {
                    request(0, &[], cp)
                } else {
                    request(known, &p, cp)
                };
                known = *size;
                (*size, body)
            })
            .collect();
        let (a2, s2) = (acked.clone(), stop.clone());
        let sender = std::thread::spawn(move || {
            for (size, body) in proofs {
                if s2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                match post_add_checkpoint(addr, &body) {
                    Some((200, _, _)) => *a2.lock().unwrap() = size,
                    Some((code, _, b)) => panic!("size {size}: {code} {b}"),
                    None => return,
                }
            }
        });
        std::thread::sleep(Duration::from_millis(5 + rand() % 40));
        let t = Instant::now();
        drop(w); // SIGKILL
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sender.join().unwrap();
        acked_max = *acked.lock().unwrap();
        eprintln!(
            "round {round}: killed after {:?}; last returned cosignature at size {acked_max}",
            t.elapsed()
        );
    }
    // A final restart still holds the last acknowledged size.
    let (_w, addr, _) = start(&dir, &vkey);
    let (code, _, body) =
        post_add_checkpoint(addr, &request(0, &[], &log.checkpoint().unwrap())).unwrap();
    assert_eq!(code, 409);
    assert!(body.trim().parse::<u64>().unwrap() >= acked_max);
}
