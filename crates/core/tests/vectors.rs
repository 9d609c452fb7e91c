//! Known-answer tests.
//!
//! * `tests/data/rfc6962.json`: copied from `../shared/vectors/`; its leaf
//!   inputs, roots and proofs are those of transparency-dev/merkle
//!   `testonly/constants.go` (the same as google/certificate-transparency's
//!   test data), i.e. RFC 6962 / RFC 9162.
//! * `tests/data/signed_note.json`: the C2SP signed-note v1.0.0 example
//!   (c2sp.org/signed-note), Go `golang.org/x/mod/sumdb/note`'s PeterNeumann
//!   example (note_test.go), the C2SP tlog-cosignature example, and a worked
//!   log + witness example whose bytes must be reproduced exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use cairn_core::checkpoint::{Checkpoint, WitnessPolicy, verify_checkpoint};
use cairn_core::cosignature::{CosignatureBlob, Cosigner, signed_message};
use cairn_core::encoding::decode_base64;
use cairn_core::hash::{Hash, LeafIndex, TreeSize, empty_root, leaf_hash, node_hash};
use cairn_core::note::{Note, NoteError, NoteSigner, NoteVerifier};
use cairn_core::proof::{
    consistency_proof, inclusion_proof, tree_root, verify_consistency, verify_inclusion,
};
use cairn_core::tlog_proof::TlogProof;
use cairn_core::tree::TreeState;
use common::{build, h, vectors};
use serde_json::Value;
use sha2::Digest;

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| h(x.as_str().unwrap()))
        .collect()
}

fn rfc_leaves(v: &Value) -> Vec<Hash> {
    v["leaf_inputs_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| leaf_hash(&hex::decode(x.as_str().unwrap()).unwrap()))
        .collect()
}

#[test]
fn rfc6962_hasher() {
    let v = vectors("rfc6962.json");
    let hs = &v["hasher"];
    assert_eq!(empty_root(), h(hs["empty_tree_root"].as_str().unwrap()));
    assert_eq!(leaf_hash(b""), h(hs["empty_leaf"].as_str().unwrap()));
    let l = &hs["leaf_L123456"];
    assert_eq!(
        leaf_hash(&hex::decode(l["input_hex"].as_str().unwrap()).unwrap()),
        h(l["hash"].as_str().unwrap())
    );
    // The node case hashes raw bytes "N123" || "N456" (not 32-byte hashes):
    // SHA-256(0x01 || left || right).
    let n = &hs["node_N123_N456"];
    let mut buf = vec![1u8];
    buf.extend(hex::decode(n["left_hex"].as_str().unwrap()).unwrap());
    buf.extend(hex::decode(n["right_hex"].as_str().unwrap()).unwrap());
    assert_eq!(
        Hash(sha2::Sha256::digest(&buf).into()),
        h(n["hash"].as_str().unwrap())
    );
    // And node_hash is that function on 32-byte inputs.
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut buf = vec![1u8];
    buf.extend_from_slice(&a.0);
    buf.extend_from_slice(&b.0);
    assert_eq!(node_hash(&a, &b), Hash(sha2::Sha256::digest(&buf).into()));
}

#[test]
fn rfc6962_leaves_and_roots() {
    let v = vectors("rfc6962.json");
    let leaves = rfc_leaves(&v);
    assert_eq!(leaves, hashes(&v["leaf_hashes"]));
    // Roots at every size, integrating one leaf at a time and all at once.
    let mut s = TreeState::empty();
    for r in v["roots"].as_array().unwrap() {
        let size = r["size"].as_u64().unwrap() as usize;
        let want = h(r["root"].as_str().unwrap());
        assert_eq!(
            want,
            Hash::from_base64(r["root_b64"].as_str().unwrap()).unwrap()
        );
        if size > 0 {
            s = s.integrate(&leaves[size - 1..size]).unwrap().state;
        }
        assert_eq!(s.root(), want, "incremental root at size {size}");
        let batch = TreeState::empty().integrate(&leaves[..size]).unwrap();
        assert_eq!(batch.root, want, "one-batch root at size {size}");
        let (tiles, _) = build(&leaves[..size], 3);
        assert_eq!(
            tree_root(&tiles, TreeSize(size as u64)).unwrap(),
            want,
            "root from tiles at size {size}"
        );
    }
}

#[test]
fn rfc6962_inclusion_proofs() {
    let v = vectors("rfc6962.json");
    let leaves = rfc_leaves(&v);
    let roots: Vec<Hash> = v["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| h(r["root"].as_str().unwrap()))
        .collect();
    let (tiles, _) = build(&leaves, 8);
    let cases = v["inclusion"].as_array().unwrap();
    assert_eq!(cases.len(), 36, "every (index, size) of the 8-leaf tree");
    for c in cases {
        let (i, n) = (c["index"].as_u64().unwrap(), c["size"].as_u64().unwrap());
        let want = hashes(&c["proof"]);
        let got = inclusion_proof(&tiles, LeafIndex(i), TreeSize(n)).unwrap();
        assert_eq!(got, want, "inclusion proof {i} in {n}");
        verify_inclusion(
            &leaves[i as usize],
            LeafIndex(i),
            TreeSize(n),
            &want,
            &roots[n as usize],
        )
        .unwrap();
    }
}

#[test]
fn rfc6962_consistency_proofs() {
    let v = vectors("rfc6962.json");
    let leaves = rfc_leaves(&v);
    let roots: Vec<Hash> = v["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| h(r["root"].as_str().unwrap()))
        .collect();
    let (tiles, _) = build(&leaves, 5);
    let cases = v["consistency"].as_array().unwrap();
    assert_eq!(cases.len(), 36, "every 1 <= old <= new <= 8");
    for c in cases {
        let (m, n) = (c["old"].as_u64().unwrap(), c["new"].as_u64().unwrap());
        let want = hashes(&c["proof"]);
        let got = consistency_proof(&tiles, TreeSize(m), TreeSize(n)).unwrap();
        assert_eq!(got, want, "consistency proof {m} -> {n}");
        verify_consistency(
            TreeSize(m),
            TreeSize(n),
            &roots[m as usize],
            &roots[n as usize],
            &want,
        )
        .unwrap();
    }
}

#[test]
fn c2sp_signed_note_spec_example() {
    let v = vectors("signed_note.json");
    let e = &v["spec_example"];
    let vk = NoteVerifier::parse(e["vkey"].as_str().unwrap()).unwrap();
    assert_eq!(vk.to_string(), e["vkey"].as_str().unwrap());
    let note = Note::parse(e["note"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(note.text(), e["text"].as_str().unwrap());
    let sigs = note.verify(std::slice::from_ref(&vk)).unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].name, "example.com/foo");
    // Re-serializing gives the same bytes.
    assert_eq!(note.to_string(), e["note"].as_str().unwrap());
    // A different text under the same signature fails.
    let forged = e["note"]
        .as_str()
        .unwrap()
        .replace("an example", "a forged");
    let forged = Note::parse(forged.as_bytes()).unwrap();
    assert!(matches!(
        forged.verify(&[vk]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn go_sumdb_note_peter_neumann() {
    let v = vectors("signed_note.json");
    let e = &v["go_sumdb_note_example"];
    let signer = NoteSigner::parse(e["skey"].as_str().unwrap()).unwrap();
    assert_eq!(signer.to_private_key_string(), e["skey"].as_str().unwrap());
    assert_eq!(signer.verifier().to_string(), e["vkey"].as_str().unwrap());
    let text = e["text"].as_str().unwrap();
    // Ed25519 is deterministic: re-signing reproduces Go's bytes exactly.
    assert_eq!(
        signer.sign_line(text),
        e["signature_line"].as_str().unwrap()
    );
    let mut note = Note::new(text).unwrap();
    note.sign(&signer).unwrap();
    let serialized = note.to_string();
    assert_eq!(
        serialized,
        format!("{text}\n{}", e["signature_line"].as_str().unwrap())
    );
    let vk = NoteVerifier::parse(e["vkey"].as_str().unwrap()).unwrap();
    Note::parse(serialized.as_bytes())
        .unwrap()
        .verify(&[vk])
        .unwrap();
}

#[test]
fn c2sp_cosignature_spec_example() {
    let v = vectors("signed_note.json");
    let e = &v["cosignature_spec_example"];
    let blob = decode_base64(e["signature_b64"].as_str().unwrap()).unwrap();
    assert_eq!(blob.len(), e["blob_len"].as_u64().unwrap() as usize);
    let c = CosignatureBlob::parse(&blob).unwrap();
    assert_eq!(format!("{:08x}", c.key_id), e["key_id"].as_str().unwrap());
    assert_eq!(c.timestamp, e["timestamp"].as_u64().unwrap());
    assert!(CosignatureBlob::parse(&blob[..75]).is_none());
}

#[test]
fn worked_log_and_witness_example() {
    let v = vectors("signed_note.json");
    let w = &v["worked_example"];
    let rfc = vectors("rfc6962.json");
    let leaves = rfc_leaves(&rfc);
    let (tiles, _) = build(&leaves, 8);

    // The log key, derived as the vector says.
    let log = &w["log"];
    let seed: [u8; 32] = sha2::Sha256::digest(b"example log seed").into();
    assert_eq!(hex::encode(seed), log["seed_hex"].as_str().unwrap());
    let origin = log["origin"].as_str().unwrap();
    let signer = NoteSigner::from_seed(origin, &seed).unwrap();
    assert_eq!(
        signer.to_private_key_string(),
        log["skey"].as_str().unwrap()
    );
    assert_eq!(signer.verifier().to_string(), log["vkey"].as_str().unwrap());
    let vk = signer.verifier();

    // Checkpoints of the 8-leaf tree at sizes 4 and 8, byte for byte.
    for (size, key) in [(4u64, "checkpoint_4"), (8, "checkpoint_8")] {
        let cp = Checkpoint {
            origin: origin.to_owned(),
            size: TreeSize(size),
            root: tree_root(&tiles, TreeSize(size)).unwrap(),
            extensions: vec![],
        };
        assert_eq!(cp.to_body(), w[key]["body"].as_str().unwrap());
        let note = cp.sign(&signer).unwrap();
        assert_eq!(note, w[key]["note"].as_str().unwrap(), "{key}");
        let got = verify_checkpoint(note.as_bytes(), None, &vk, &WitnessPolicy::default()).unwrap();
        assert_eq!(got.checkpoint, cp);
    }

    // The consistency proof 4 -> 8 and the tlog-witness add-checkpoint body.
    let proof = consistency_proof(&tiles, TreeSize(4), TreeSize(8)).unwrap();
    let want: Vec<String> = w["consistency_proof_4_8_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(proof.iter().map(Hash::to_base64).collect::<Vec<_>>(), want);
    let mut body = String::from("old 4\n");
    for p in &proof {
        body.push_str(&p.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(w["checkpoint_8"]["note"].as_str().unwrap());
    assert_eq!(body, w["add_checkpoint_request_body"].as_str().unwrap());

    // The witness cosignature, byte for byte.
    let wit = &w["witness"];
    let wseed: [u8; 32] = sha2::Sha256::digest(b"example witness seed").into();
    assert_eq!(hex::encode(wseed), wit["seed_hex"].as_str().unwrap());
    let cosigner = Cosigner::from_seed(wit["name"].as_str().unwrap(), &wseed).unwrap();
    assert_eq!(
        cosigner.verifier().to_string(),
        wit["vkey"].as_str().unwrap()
    );
    let t = wit["timestamp"].as_u64().unwrap();
    let cp8_body = w["checkpoint_8"]["body"].as_str().unwrap();
    assert_eq!(
        signed_message(cp8_body, t),
        wit["signed_message"].as_str().unwrap()
    );
    let cosig = cosigner.cosign(cp8_body, t);
    assert_eq!(cosig.line(), wit["cosignature_line"].as_str().unwrap());
    assert_eq!(4 + cosig.sig.len(), 76);

    // A cosigned checkpoint satisfies a 1-of-1 policy, and not a 2-of-2.
    let cosigned = format!(
        "{}{}",
        w["checkpoint_8"]["note"].as_str().unwrap(),
        cosig.line()
    );
    let wvk = NoteVerifier::parse(wit["vkey"].as_str().unwrap()).unwrap();
    let policy = WitnessPolicy {
        witnesses: vec![wvk.clone()],
        quorum: 1,
    };
    let got = verify_checkpoint(cosigned.as_bytes(), Some(origin), &vk, &policy).unwrap();
    assert_eq!(got.cosignatures.len(), 1);
    assert_eq!(got.cosignatures[0].timestamp, Some(t));
    let other = Cosigner::from_seed("witness.example.com/w2", &[9; 32]).unwrap();
    let strict = WitnessPolicy {
        witnesses: vec![wvk, other.verifier()],
        quorum: 2,
    };
    assert!(verify_checkpoint(cosigned.as_bytes(), Some(origin), &vk, &strict).is_err());

    // A tlog-proof receipt for leaf 5 under that cosigned checkpoint.
    let receipt = TlogProof {
        extra: Some(b"ctx".to_vec()),
        index: LeafIndex(5),
        path: inclusion_proof(&tiles, LeafIndex(5), TreeSize(8)).unwrap(),
        checkpoint: cosigned.clone(),
    };
    let text = receipt.encode();
    let parsed = TlogProof::parse(&text).unwrap();
    assert_eq!(parsed, receipt);
    parsed
        .verify(&leaves[5], Some(origin), &vk, &policy)
        .unwrap();
    assert!(
        parsed
            .verify(&leaves[4], Some(origin), &vk, &policy)
            .is_err()
    );
}
