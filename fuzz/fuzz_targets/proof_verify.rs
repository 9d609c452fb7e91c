//! Proof verification never panics on arbitrary sizes, indexes and paths,
//! and a proof made by the core for a small tree verifies while any
//! one-bit change of it does not.
#![no_main]
use cairn_core::proof::{consistency_proof, inclusion_proof, root_from_inclusion};
use cairn_core::{Hash, LeafIndex, MemoryTiles, TreeSize, TreeState, leaf_hash};
use cairn_core::{verify_consistency, verify_inclusion};

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in d.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    // Arbitrary input: errors, never panics.
    let (a, b, c) = (u64_at(data, 0), u64_at(data, 8), u64_at(data, 16));
    let path: Vec<Hash> = data[24..]
        .chunks_exact(32)
        .take(70)
        .map(|ch| {
            let mut h = [0u8; 32];
            h.copy_from_slice(ch);
            Hash(h)
        })
        .collect();
    let leaf = path.first().copied().unwrap_or(Hash([0; 32]));
    let _ = verify_inclusion(&leaf, LeafIndex(a), TreeSize(b), &path, &leaf);
    let _ = root_from_inclusion(&leaf, LeafIndex(a), TreeSize(b), &path);
    let _ = verify_consistency(TreeSize(a), TreeSize(b), &leaf, &leaf, &path);
    let _ = verify_consistency(TreeSize(c), TreeSize(a), &leaf, &leaf, &path);

    // A small real tree: honest proofs verify, flipped ones fail.
    let n = (data[0] as u64 % 40) + 1;
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let mut tiles = MemoryTiles::new();
    let mut state = TreeState::empty();
    let mut roots = vec![cairn_core::empty_root()];
    for l in &leaves {
        let integ = state.integrate(std::slice::from_ref(l)).unwrap();
        tiles.apply(&integ).unwrap();
        state = integ.state;
        roots.push(integ.root);
    }
    let size = (data[1] as u64 % n) + 1;
    let index = data[2] as u64 % size;
    let old = (data[3] as u64 % size) + 1;
    let flip = data[4] as usize;
    let incl = inclusion_proof(&tiles, LeafIndex(index), TreeSize(size)).unwrap();
    let root = roots[size as usize];
    verify_inclusion(&leaves[index as usize], LeafIndex(index), TreeSize(size), &incl, &root)
        .unwrap();
    if !incl.is_empty() {
        let mut bad = incl.clone();
        bad[flip % incl.len()].0[flip % 32] ^= 1 << (flip % 8);
        assert!(
            verify_inclusion(&leaves[index as usize], LeafIndex(index), TreeSize(size), &bad, &root)
                .is_err()
        );
    }
    let cons = consistency_proof(&tiles, TreeSize(old), TreeSize(size)).unwrap();
    let old_root = roots[old as usize];
    verify_consistency(TreeSize(old), TreeSize(size), &old_root, &root, &cons).unwrap();
    if !cons.is_empty() {
        let mut bad = cons.clone();
        bad[flip % cons.len()].0[flip % 32] ^= 1 << (flip % 8);
        assert!(verify_consistency(TreeSize(old), TreeSize(size), &old_root, &root, &bad).is_err());
    }
});
