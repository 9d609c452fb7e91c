//! The witness against C2SP tlog-witness v1.0.0: the worked example of
//! `../shared/vectors/signed_note.json` (copied in
//! `crates/core/tests/data/`), byte for byte, and every status code.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_client::evidence::EvidenceKind;
use cairn_client::witness::{AddCheckpoint, Witness, WitnessError};
use cairn_core::cosignature::Cosigner;
use cairn_core::note::{NoteSigner, NoteVerifier};
use cairn_core::{Hash, MemoryLog};

fn vectors() -> serde_json::Value {
    let path = format!(
        "{}/../core/tests/data/signed_note.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap()
}

fn seed(v: &serde_json::Value) -> [u8; 32] {
    hex::decode(s(v)).unwrap().try_into().unwrap()
}

struct Example {
    witness: Witness,
    _dir: tempfile::TempDir,
    v: serde_json::Value,
}

fn example() -> Example {
    let v = vectors();
    let w = &v["worked_example"];
    let cosigner =
        Cosigner::from_seed(s(&w["witness"]["name"]), &seed(&w["witness"]["seed_hex"])).unwrap();
    assert_eq!(cosigner.verifier().to_string(), s(&w["witness"]["vkey"]));
    let dir = tempfile::tempdir().unwrap();
    let log = NoteVerifier::parse(s(&w["log"]["vkey"])).unwrap();
    let witness = Witness::open(dir.path(), cosigner, vec![log]).unwrap();
    Example {
        witness,
        _dir: dir,
        v,
    }
}

#[test]
fn worked_example_cosignature_is_byte_exact() {
    let ex = example();
    let w = &ex.v["worked_example"];
    let ts = w["witness"]["timestamp"].as_u64().unwrap();
    // First contact: old 0, no proof, the size-4 checkpoint.
    let first = AddCheckpoint {
        old: 0,
        proof: vec![],
        note: s(&w["checkpoint_4"]["note"]).to_owned(),
    };
    ex.witness.add_checkpoint(&first, ts).unwrap();
    // The spec's request body, parsed as a server would.
    let body = s(&w["add_checkpoint_request_body"]);
    let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
    assert_eq!(req.encode(), body);
    let sigs = ex.witness.add_checkpoint(&req, ts).unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].line(), s(&w["witness"]["cosignature_line"]));
    let rec = ex.witness.latest("example.com/audit-log").unwrap();
    assert_eq!(rec.size, 8);
    assert!(rec.note.ends_with(s(&w["witness"]["cosignature_line"])));
    // Resubmitting the same checkpoint at the same size is cosigned again.
    let same = AddCheckpoint {
        old: 8,
        proof: vec![],
        note: s(&w["checkpoint_8"]["note"]).to_owned(),
    };
    ex.witness.add_checkpoint(&same, ts + 1).unwrap();
}

/// A log with its own key, building checkpoints over real trees.
struct Log(MemoryLog);

impl Log {
    fn new(name: &str, seed: u8) -> Log {
        Log(MemoryLog::new(
            NoteSigner::from_seed(name, &[seed; 32]).unwrap(),
        ))
    }
    fn grow(&mut self, n: u64, salt: &str) -> String {
        let base = self.0.size().0;
        let leaves: Vec<String> = (0..n).map(|i| format!("{salt}{}", base + i)).collect();
        self.0.append(&leaves).unwrap()
    }
    fn proof(&self, old: u64, new: u64) -> Vec<Hash> {
        self.0.consistency(old, new).unwrap()
    }
    fn verifier(&self) -> NoteVerifier {
        self.0.verifier()
    }
}

#[test]
fn every_status_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("example.com/log", 1);
    let cosigner = Cosigner::from_seed("w.example", &[9; 32]).unwrap();
    let w = Witness::open(dir.path(), cosigner.clone(), vec![log.verifier()]).unwrap();
    let add = |old, proof: Vec<Hash>, note: &str| {
        w.add_checkpoint(
            &AddCheckpoint {
                old,
                proof,
                note: note.to_owned(),
            },
            1_700_000_000,
        )
    };
    let cp10 = log.grow(10, "a");
    // 404: another origin.
    let mut other = Log::new("example.com/other", 2);
    let e = add(0, vec![], &other.grow(3, "x")).unwrap_err();
    assert_eq!(e.http_status(), 404, "{e}");
    // 403: the right origin signed by another key.
    let mut imposter = Log::new("example.com/log", 3);
    let e = add(0, vec![], &imposter.grow(10, "a")).unwrap_err();
    assert_eq!(e.http_status(), 403, "{e}");
    // 400: old > size.
    assert_eq!(add(11, vec![], &cp10).unwrap_err().http_status(), 400);
    // 422: old 0 with a proof.
    assert_eq!(
        add(0, vec![Hash([0; 32])], &cp10)
            .unwrap_err()
            .http_status(),
        422
    );
    // 200: first contact.
    let sigs = add(0, vec![], &cp10).unwrap();
    let mut cosigned = cairn_core::Note::parse(cp10.as_bytes()).unwrap();
    cosigned.push_signature(sigs[0].clone()).unwrap();
    let policy = cairn_core::WitnessPolicy {
        witnesses: vec![cosigner.verifier()],
        quorum: 1,
    };
    cairn_core::verify_checkpoint(
        cosigned.to_string().as_bytes(),
        None,
        &log.verifier(),
        &policy,
    )
    .unwrap();
    // 409: a stale old size, with our latest size.
    let cp20 = log.grow(10, "a");
    match add(0, vec![], &cp20).unwrap_err() {
        WitnessError::Conflict { latest } => assert_eq!(latest, 10),
        e => panic!("{e}"),
    }
    // 422: a bad proof. Not evidence: the log never signed the proof, and
    // anyone can send a real checkpoint with a garbage one.
    let mut p = log.proof(10, 20);
    p[0].0[0] ^= 1;
    assert_eq!(add(10, p, &cp20).unwrap_err().http_status(), 422);
    assert!(w.evidence().list().unwrap().is_empty());
    // 200 with the right proof.
    add(10, log.proof(10, 20), &cp20).unwrap();
    // 422 (c2sp.org/tlog-witness, since C2SP/C2SP#280): same size, another
    // root. Split-view evidence: both checkpoints carry the log's signature.
    let mut fork = Log::new("example.com/log", 1);
    let fork20 = fork.grow(20, "b");
    assert_eq!(add(20, vec![], &fork20).unwrap_err().http_status(), 422);
    // The same conflict padded with ignorable signature lines is the same
    // evidence: one record, holding only the log's signature lines.
    for i in 0..20 {
        let padded = format!(
            "{fork20}— junk{i}.example AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        assert_eq!(add(20, vec![], &padded).unwrap_err().http_status(), 422);
    }
    let ev = w.evidence().list().unwrap();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].kind, EvidenceKind::SplitView);
    assert_eq!(ev[0].checkpoints[1], fork20);
    // The state survives a restart; a second process is locked out meanwhile.
    assert!(Witness::open(dir.path(), cosigner.clone(), vec![]).is_err());
    drop(w);
    let w2 = Witness::open(dir.path(), cosigner, vec![log.verifier()]).unwrap();
    assert_eq!(w2.latest("example.com/log").unwrap().size, 20);
}
