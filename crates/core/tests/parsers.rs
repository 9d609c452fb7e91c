//! Fuzz-style property tests: no parser panics on any input, and every
//! encoder's output parses back to the same value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cairn_core::checkpoint::Checkpoint;
use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::note::{Note, NoteError, NoteSigner, NoteVerifier};
use cairn_core::tile::{Tile, TilePath, entries_path, parse_entry_bundle};
use cairn_core::tlog_proof::TlogProof;
use common::vectors;
use proptest::prelude::*;

fn spec_note() -> String {
    vectors("signed_note.json")["worked_example"]["checkpoint_8"]["note"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Feeds bytes to every parser; none may panic.
fn parse_everything(bytes: &[u8]) {
    let _ = Note::parse(bytes);
    let text = String::from_utf8_lossy(bytes);
    let _ = Checkpoint::parse(&text);
    let _ = TlogProof::parse(&text);
    let _ = TilePath::parse(&text);
    let _ = NoteVerifier::parse(&text);
    let _ = NoteSigner::parse(&text);
    let _ = cairn_core::Cosigner::parse(&text);
    let _ = parse_entry_bundle(bytes);
    let _ = Hash::from_base64(&text);
    let _ = cairn_core::encoding::parse_decimal(&text);
    let _ = cairn_core::cosignature::CosignatureBlob::parse(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse_everything(&bytes);
    }

    #[test]
    fn random_text_never_panics(s in "[a-z0-9/+=x.p\\n— \u{0}-\u{1f}]{0,200}") {
        parse_everything(s.as_bytes());
    }

    /// Random edits to a valid signed checkpoint: the parser never panics,
    /// and verification never accepts a changed text.
    #[test]
    fn mutated_notes(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let v = vectors("signed_note.json");
        let vk = NoteVerifier::parse(v["worked_example"]["log"]["vkey"].as_str().unwrap()).unwrap();
        let good = spec_note();
        let mut bytes = good.clone().into_bytes();
        for (pos, b) in edits {
            let i = pos % bytes.len();
            bytes[i] = b;
        }
        parse_everything(&bytes);
        if let Ok(n) = Note::parse(&bytes)
            && n.verify(std::slice::from_ref(&vk)).is_ok()
        {
            // Only the signature block's encoding may differ; the text is intact.
            let orig = Note::parse(good.as_bytes()).unwrap();
            prop_assert_eq!(n.text(), orig.text());
        }
    }

    #[test]
    fn tile_paths_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
        let t = Tile { level, index, width };
        prop_assert_eq!(TilePath::parse(&t.path()), Ok(TilePath::Hashes(t)));
        let e = entries_path(index, width);
        prop_assert_eq!(TilePath::parse(&e), Ok(TilePath::Entries { index, width }));
    }

    #[test]
    fn checkpoints_round_trip(
        origin in "[a-z.]{1,20}(/[a-z0-9]{1,8})?",
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        ext in proptest::collection::vec("[ -~]{1,30}", 0..3),
    ) {
        let cp = Checkpoint { origin, size: TreeSize(size), root: Hash(root), extensions: ext };
        prop_assert_eq!(Checkpoint::parse(&cp.to_body()), Ok(cp));
    }

    #[test]
    fn tlog_proofs_round_trip(
        extra in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        index in any::<u64>(),
        path in proptest::collection::vec(any::<[u8; 32]>(), 0..30),
    ) {
        let p = TlogProof {
            extra,
            index: LeafIndex(index),
            path: path.into_iter().map(Hash).collect(),
            checkpoint: spec_note(),
        };
        prop_assert_eq!(TlogProof::parse(&p.encode()), Ok(p));
    }
}

#[test]
fn tile_path_rejects_non_canonical() {
    for bad in [
        "tile/0/1",
        "tile/0/0001",
        "tile/0/x000/001",
        "tile/0/001/002",
        "tile/0/x1/002",
        "tile/00/001",
        "tile/64/001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/07",
        "tile/0/001.p/",
        "tile/entries/",
        "tile//001",
        "tiles/0/001",
        "tile/0/x999/x999/x999/x999/x999/x999/999",
        "tile/0/-01",
        "tile/0/+01",
    ] {
        assert!(TilePath::parse(bad).is_err(), "{bad} must be rejected");
    }
}

#[test]
fn checkpoint_rejects_malformed() {
    let root = Hash([7; 32]).to_base64();
    for bad in [
        format!("o\n01\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n+1\n{root}\n"),
        format!("o\n1\n{root}"),
        format!("\n1\n{root}\n"),
        "o\n1\nAAAA\n".to_owned(),
        format!("o\n1\n{}\n", &root[..43]),
        format!("o\n1\n{root}\n\n"),
        format!("o\n1\n{root}\next\n\n"),
        "o\n1\n".to_owned(),
        format!("o\n18446744073709551616\n{root}\n"),
    ] {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?} must be rejected");
    }
    // Extension lines survive.
    let ok = format!("o\n0\n{root}\nx y z\nmore\n");
    let cp = Checkpoint::parse(&ok).unwrap();
    assert_eq!(cp.extensions, vec!["x y z", "more"]);
    assert_eq!(cp.to_body(), ok);
}

#[test]
fn note_parsing_rules() {
    let good = spec_note();
    let v = vectors("signed_note.json");
    let vk = NoteVerifier::parse(v["worked_example"]["log"]["vkey"].as_str().unwrap()).unwrap();
    // Not UTF-8; control characters; missing blank line; missing final newline.
    assert!(Note::parse(b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n").is_err());
    assert!(
        Note::parse(format!("a\tb\n{}", &good[good.find('\n').unwrap() + 1..]).as_bytes()).is_err()
    );
    assert!(Note::parse(good.replace("\n\n", "\n").as_bytes()).is_err());
    assert!(Note::parse(good.trim_end().as_bytes()).is_err());
    // The last blank line separates: a text containing a blank line parses.
    let signer = NoteSigner::from_seed("k", &[1; 32]).unwrap();
    let mut n = Note::new("a\n\nb\n").unwrap();
    n.sign(&signer).unwrap();
    let parsed = Note::parse(n.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.text(), "a\n\nb\n");
    parsed.verify(&[signer.verifier()]).unwrap();
    // Unknown keys are ignored; repeated lines by a known key are tolerated.
    let other = NoteSigner::from_seed("other", &[2; 32]).unwrap();
    let mut n = Note::parse(good.as_bytes()).unwrap();
    n.sign(&other).unwrap();
    let again = n.signatures()[0].clone();
    n.push_signature(again).unwrap();
    assert_eq!(n.verify(std::slice::from_ref(&vk)).unwrap().len(), 1);
    // No known key at all.
    assert_eq!(n.verify(&[signer.verifier()]), Err(NoteError::Unverified));
    // At least 16 signatures are accepted; more than 100 are not.
    let mut many = Note::new("text\n").unwrap();
    for i in 0..100u8 {
        many.sign(&NoteSigner::from_seed(&format!("k{i}"), &[i; 32]).unwrap())
            .unwrap();
    }
    let s = many.to_string();
    let p = Note::parse(s.as_bytes()).unwrap();
    let known: Vec<NoteVerifier> = (0..16u8)
        .map(|i| {
            NoteSigner::from_seed(&format!("k{i}"), &[i; 32])
                .unwrap()
                .verifier()
        })
        .collect();
    assert_eq!(p.verify(&known).unwrap().len(), 16);
    let line = many.signatures()[0].line();
    assert_eq!(
        Note::parse(format!("{s}{line}").as_bytes()),
        Err(NoteError::TooManySignatures)
    );
}

#[test]
fn key_strings_are_checked() {
    let s = NoteSigner::from_seed("log.example/a", &[3; 32]).unwrap();
    let vk = s.verifier().to_string();
    assert!(NoteVerifier::parse(&vk).is_ok());
    // Wrong key ID, upper-case hex, bad name, unknown type, truncated key.
    let parts: Vec<&str> = vk.splitn(3, '+').collect();
    assert!(NoteVerifier::parse(&format!("{}+00000000+{}", parts[0], parts[2])).is_err());
    assert!(
        NoteVerifier::parse(&format!(
            "{}+{}+{}",
            parts[0],
            parts[1].to_uppercase(),
            parts[2]
        ))
        .is_err()
    );
    assert!(NoteVerifier::parse(&format!("a b+{}+{}", parts[1], parts[2])).is_err());
    assert!(NoteVerifier::parse(&format!("{}+{}+Ag==", parts[0], parts[1])).is_err());
    assert!(NoteVerifier::parse(&format!("{}+{}+AQ==", parts[0], parts[1])).is_err());
    // A cosignature private key is not a note signing key, and vice versa.
    let c = cairn_core::Cosigner::from_seed("w", &[4; 32]).unwrap();
    assert!(NoteSigner::parse(&c.to_private_key_string()).is_err());
    assert!(cairn_core::Cosigner::parse(&s.to_private_key_string()).is_err());
    assert!(cairn_core::Cosigner::parse(&c.to_private_key_string()).is_ok());
    // Debug output never shows the secret.
    assert!(!format!("{s:?}").contains(&s.to_private_key_string()[12..]));
    assert!(format!("{s:?}").contains("hidden"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Hostile indices and sizes, up to 2^64 - 1, with proofs of any length:
    /// verification and proof planning return errors, never panic.
    #[test]
    fn proof_maths_never_panics(
        a in prop_oneof![any::<u64>(), (u64::MAX - 300)..=u64::MAX, 0u64..300],
        b in prop_oneof![any::<u64>(), (u64::MAX - 300)..=u64::MAX, 0u64..300],
        len in 0usize..70,
    ) {
        use cairn_core::proof::{ProofPlan, verify_consistency, verify_inclusion};
        let proof = vec![Hash([1; 32]); len];
        let r = Hash([2; 32]);
        let _ = verify_inclusion(&r, LeafIndex(a), TreeSize(b), &proof, &r);
        let _ = verify_consistency(TreeSize(a), TreeSize(b), &r, &r, &proof);
        let empty = cairn_core::MemoryTiles::new();
        if let Ok(plan) = ProofPlan::inclusion(LeafIndex(a), TreeSize(b)) {
            prop_assert!(plan.execute(&empty).is_err() || b == 1);
        }
        if let Ok(plan) = ProofPlan::consistency(TreeSize(a), TreeSize(b)) {
            prop_assert!(plan.execute(&empty).is_err() || a == b);
        }
        let _ = cairn_core::Tile::at_size((a % 70) as u8, b, TreeSize(a));
    }
}
