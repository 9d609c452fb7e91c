//! Property tests of integration and proofs against the recursive RFC 6962
//! definition: every tree size up to 1,000 exhaustively, and random sizes up
//! to 10^6.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::memtiles::MemoryTiles;
use cairn_core::proof::{
    ProofError, consistency_proof, inclusion_proof, tree_root, verify_consistency, verify_inclusion,
};
use cairn_core::tree::TreeState;
use common::{build, leaves, mth};
use proptest::prelude::*;
use sha2::Digest;

/// Roots of every size 0..=n, by integrating one leaf at a time.
fn incremental_roots(ls: &[Hash]) -> Vec<Hash> {
    let mut s = TreeState::empty();
    let mut out = vec![s.root()];
    for l in ls {
        s = s.integrate(std::slice::from_ref(l)).unwrap().state;
        out.push(s.root());
    }
    out
}

/// Every way an inclusion proof can be damaged must fail verification.
fn assert_inclusion_mutants_fail(ls: &[Hash], roots: &[Hash], m: u64, n: u64, proof: &[Hash]) {
    let leaf = &ls[m as usize];
    let root = &roots[n as usize];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[(i * 7) % 32] ^= 1 << (i % 8);
        assert!(verify_inclusion(leaf, LeafIndex(m), TreeSize(n), &p, root).is_err());
        let mut p = proof.to_vec();
        p.remove(i);
        assert!(verify_inclusion(leaf, LeafIndex(m), TreeSize(n), &p, root).is_err());
    }
    let mut p = proof.to_vec();
    p.push(ls[0]);
    assert!(verify_inclusion(leaf, LeafIndex(m), TreeSize(n), &p, root).is_err());
    let mut bad = *leaf;
    bad.0[0] ^= 0x80;
    assert!(verify_inclusion(&bad, LeafIndex(m), TreeSize(n), proof, root).is_err());
    if m > 0 {
        assert!(verify_inclusion(leaf, LeafIndex(m - 1), TreeSize(n), proof, root).is_err());
    }
    assert!(verify_inclusion(leaf, LeafIndex(m + 1), TreeSize(n), proof, root).is_err());
    // Off-by-one sizes, each checked against the real root of that size.
    if n - 1 > m {
        let r = &roots[n as usize - 1];
        assert!(verify_inclusion(leaf, LeafIndex(m), TreeSize(n - 1), proof, r).is_err());
    }
    if (n as usize + 1) < roots.len() {
        let r = &roots[n as usize + 1];
        assert!(verify_inclusion(leaf, LeafIndex(m), TreeSize(n + 1), proof, r).is_err());
    }
}

fn assert_consistency_mutants_fail(roots: &[Hash], m: u64, n: u64, proof: &[Hash]) {
    let (r1, r2) = (&roots[m as usize], &roots[n as usize]);
    let (om, on) = (TreeSize(m), TreeSize(n));
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[31 - (i % 32)] ^= 1;
        assert!(
            verify_consistency(om, on, r1, r2, &p).is_err(),
            "flip {m} {n} {i}"
        );
        let mut p = proof.to_vec();
        p.remove(i);
        assert!(verify_consistency(om, on, r1, r2, &p).is_err());
    }
    let mut p = proof.to_vec();
    p.push(roots[1]);
    assert!(verify_consistency(om, on, r1, r2, &p).is_err());
    if m != n {
        // Sizes off by one, each with its own real root.
        if m > 1 {
            let r = &roots[m as usize - 1];
            assert!(verify_consistency(TreeSize(m - 1), on, r, r2, proof).is_err());
        }
        if m + 1 < n {
            let r = &roots[m as usize + 1];
            assert!(verify_consistency(TreeSize(m + 1), on, r, r2, proof).is_err());
        }
        if n - 1 > m {
            let r = &roots[n as usize - 1];
            assert!(verify_consistency(om, TreeSize(n - 1), r1, r, proof).is_err());
        }
        if (n as usize + 1) < roots.len() {
            let r = &roots[n as usize + 1];
            assert!(verify_consistency(om, TreeSize(n + 1), r1, r, proof).is_err());
        }
    }
}

/// Which old sizes / indices to try for a tree of size `n`: all of them for
/// small trees, and the edges, tile boundaries and a spread otherwise.
fn sample(n: u64, all_below: u64) -> Vec<u64> {
    if n <= all_below {
        return (0..n).collect();
    }
    let mut v = vec![0, 1, 2, 127, 128, 255, 256, 257, 511, 512, n / 2, n / 3];
    v.extend((0..8).map(|k| (n * k) / 8 + k));
    v.extend([n - 3, n - 2, n - 1]);
    v.retain(|&x| x < n);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn every_size_to_1000_root_matches_recursive_mth() {
    let ls = leaves(1000);
    let roots = incremental_roots(&ls);
    for n in 0..=1000 {
        assert_eq!(roots[n], mth(&ls[..n]), "size {n}");
    }
}

#[test]
fn every_size_to_1000_proofs_verify_and_mutants_fail() {
    let ls = leaves(1001);
    let roots = incremental_roots(&ls);
    let (tiles, state) = build(&ls[..1000], 7);
    assert_eq!(state.root(), roots[1000]);
    for n in 1..=1000u64 {
        assert_eq!(tree_root(&tiles, TreeSize(n)).unwrap(), roots[n as usize]);
        for m in sample(n, 300) {
            let p = inclusion_proof(&tiles, LeafIndex(m), TreeSize(n)).unwrap();
            verify_inclusion(
                &ls[m as usize],
                LeafIndex(m),
                TreeSize(n),
                &p,
                &roots[n as usize],
            )
            .unwrap_or_else(|e| panic!("inclusion {m} in {n}: {e}"));
            assert_inclusion_mutants_fail(&ls, &roots, m, n, &p);
        }
        for m in sample(n + 1, 200).into_iter().filter(|&m| m > 0) {
            let p = consistency_proof(&tiles, TreeSize(m), TreeSize(n)).unwrap();
            verify_consistency(
                TreeSize(m),
                TreeSize(n),
                &roots[m as usize],
                &roots[n as usize],
                &p,
            )
            .unwrap_or_else(|e| panic!("consistency {m} -> {n}: {e}"));
            assert_consistency_mutants_fail(&roots, m, n, &p);
        }
    }
}

#[test]
fn degenerate_cases() {
    let ls = leaves(8);
    let (tiles, s) = build(&ls, 8);
    let r = s.root();
    // Size 0: nothing is in the empty tree.
    assert_eq!(
        inclusion_proof(&tiles, LeafIndex(0), TreeSize(0)).unwrap_err(),
        ProofError::IndexOutOfRange { index: 0, size: 0 }.into()
    );
    assert!(matches!(
        verify_inclusion(&ls[0], LeafIndex(0), TreeSize(0), &[], &r),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    // Size 1: empty proof, leaf is the root.
    assert!(
        inclusion_proof(&tiles, LeafIndex(0), TreeSize(1))
            .unwrap()
            .is_empty()
    );
    verify_inclusion(&ls[0], LeafIndex(0), TreeSize(1), &[], &ls[0]).unwrap();
    // Consistency from 0 is refused both ways.
    assert!(consistency_proof(&tiles, TreeSize(0), TreeSize(8)).is_err());
    assert_eq!(
        verify_consistency(TreeSize(0), TreeSize(8), &cairn_core::empty_root(), &r, &[]),
        Err(ProofError::OldSizeZero)
    );
    // m == n: empty proof, equal roots.
    assert!(
        consistency_proof(&tiles, TreeSize(8), TreeSize(8))
            .unwrap()
            .is_empty()
    );
    verify_consistency(TreeSize(8), TreeSize(8), &r, &r, &[]).unwrap();
    assert_eq!(
        verify_consistency(TreeSize(8), TreeSize(8), &r, &ls[0], &[]),
        Err(ProofError::RootMismatch)
    );
    assert!(matches!(
        verify_consistency(TreeSize(8), TreeSize(8), &r, &r, &[r]),
        Err(ProofError::WrongLength { .. })
    ));
    // m > n.
    assert_eq!(
        verify_consistency(TreeSize(5), TreeSize(4), &r, &r, &[]),
        Err(ProofError::OldAfterNew { old: 5, new: 4 })
    );
    assert!(consistency_proof(&tiles, TreeSize(5), TreeSize(4)).is_err());
    // Different sizes with an empty proof.
    assert!(matches!(
        verify_consistency(TreeSize(3), TreeSize(8), &r, &r, &[]),
        Err(ProofError::WrongLength { .. })
    ));
    // Hashes that are not 32 bytes cannot become a Hash.
    assert!(Hash::from_slice(&[0u8; 31]).is_err());
    assert!(Hash::from_slice(&[0u8; 33]).is_err());
    assert!(Hash::from_base64("AAAA").is_err());
    // A tile reader that returns short tiles gives an error, not a panic.
    let mut short = MemoryTiles::new();
    short.insert(0, 0, ls[..3].to_vec());
    assert!(matches!(
        inclusion_proof(&short, LeafIndex(0), TreeSize(8)),
        Err(cairn_core::ProveError::Proof(ProofError::ShortTile { .. }))
    ));
}

const BIG: u64 = 1_000_000;

/// A tree of 10^6 leaves built in irregular batches, and its final state.
fn big_tree() -> &'static (Vec<Hash>, MemoryTiles, TreeState) {
    static TREE: OnceLock<(Vec<Hash>, MemoryTiles, TreeState)> = OnceLock::new();
    TREE.get_or_init(|| {
        let ls = leaves(BIG);
        let mut tiles = MemoryTiles::new();
        let mut s = TreeState::empty();
        let mut i = 0usize;
        let mut k = 1usize;
        while i < ls.len() {
            let end = (i + k).min(ls.len());
            let integ = s.integrate(&ls[i..end]).unwrap();
            tiles.apply(&integ).unwrap();
            s = integ.state;
            i = end;
            k = (k * 7 + 3) % 5000 + 1;
        }
        (ls, tiles, s)
    })
}

#[test]
fn big_tree_roots_agree_three_ways() {
    let (ls, tiles, s) = big_tree();
    // Incremental state == recursive MTH == root recomputed from tiles.
    assert_eq!(s.root(), mth(ls));
    assert_eq!(tree_root(tiles, TreeSize(BIG)).unwrap(), s.root());
    // At random intermediate sizes, reached with other batch sizes.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut sizes: Vec<u64> = (0..40)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % BIG + 1
        })
        .collect();
    sizes.sort_unstable();
    let mut st = TreeState::empty();
    for (j, &n) in sizes.iter().enumerate() {
        st = st
            .integrate(&ls[st.size().0 as usize..n as usize])
            .unwrap()
            .state;
        assert_eq!(
            st.root(),
            tree_root(tiles, TreeSize(n)).unwrap(),
            "size {n}"
        );
        if j % 10 == 0 {
            assert_eq!(st.root(), mth(&ls[..n as usize]), "size {n}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sizes_to_a_million(n in 2..=BIG, a in any::<u64>(), b in any::<u64>()) {
        let (ls, tiles, _) = big_tree();
        let m = a % n;
        let old = b % (n - 1) + 1;
        let root_n = tree_root(tiles, TreeSize(n)).unwrap();
        let root_old = tree_root(tiles, TreeSize(old)).unwrap();
        let p = inclusion_proof(tiles, LeafIndex(m), TreeSize(n)).unwrap();
        prop_assert!(verify_inclusion(&ls[m as usize], LeafIndex(m), TreeSize(n), &p, &root_n).is_ok());
        let mut flipped = p.clone();
        if let Some(x) = flipped.first_mut() { x.0[5] ^= 4; }
        if !p.is_empty() {
            prop_assert!(verify_inclusion(&ls[m as usize], LeafIndex(m), TreeSize(n), &flipped, &root_n).is_err());
        }
        let c = consistency_proof(tiles, TreeSize(old), TreeSize(n)).unwrap();
        prop_assert!(verify_consistency(TreeSize(old), TreeSize(n), &root_old, &root_n, &c).is_ok());
        let mut shorter = c.clone();
        shorter.pop();
        prop_assert!(verify_consistency(TreeSize(old), TreeSize(n), &root_old, &root_n, &shorter).is_err());
        let mut longer = c.clone();
        longer.push(root_n);
        prop_assert!(verify_consistency(TreeSize(old), TreeSize(n), &root_old, &root_n, &longer).is_err());
    }

    #[test]
    fn batch_boundaries_do_not_matter(cuts in proptest::collection::vec(0usize..600, 0..12)) {
        let ls = leaves(600);
        let mut cuts = cuts;
        cuts.push(600);
        cuts.sort_unstable();
        let mut tiles = MemoryTiles::new();
        let mut s = TreeState::empty();
        let mut prev = 0;
        for c in cuts {
            let integ = s.integrate(&ls[prev..c]).unwrap();
            tiles.apply(&integ).unwrap();
            s = integ.state;
            prev = c;
        }
        let (reference, _) = build(&ls, 600);
        prop_assert_eq!(&tiles, &reference);
        prop_assert_eq!(s.root(), mth(&ls));
    }
}

/// SHA-256 over the roots of sizes 1..=100,000, leaf `i` being
/// `leaf_hash(i as u64 big-endian)`. The pinned value was computed by an
/// independent Python `hashlib` implementation of the same stack-based
/// RFC 6962 algorithm (see docs/testing.md), not by this crate.
#[test]
fn accumulated_digest_of_100k_roots() {
    let ls = leaves(100_000);
    let mut s = TreeState::empty();
    let mut acc = sha2::Sha256::new();
    for l in &ls {
        s = s.integrate(std::slice::from_ref(l)).unwrap().state;
        acc.update(s.root().0);
    }
    assert_eq!(
        hex::encode(acc.finalize()),
        "e6d2f5a1f19a93acb24e37188c916b7048916955be5e639da789ee03218fcc9d"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Proofs resolved from expanded (cached) tiles equal proofs resolved
    /// from raw tiles, for random indices and sizes.
    #[test]
    fn expanded_tiles_give_the_same_proofs(n in 2..=BIG, a in any::<u64>(), b in any::<u64>()) {
        use cairn_core::proof::{ExpandedTile, ProofPlan, TileReader};
        let (_, tiles, _) = big_tree();
        let m = a % n;
        let old = b % (n - 1) + 1;
        for plan in [
            ProofPlan::inclusion(LeafIndex(m), TreeSize(n)).unwrap(),
            ProofPlan::consistency(TreeSize(old), TreeSize(n)).unwrap(),
            ProofPlan::root(TreeSize(n)),
        ] {
            let raw = tiles.read_tiles(plan.tiles()).unwrap();
            let expanded: Vec<ExpandedTile> = raw.iter().map(|t| ExpandedTile::new(t)).collect();
            prop_assert_eq!(plan.resolve(&raw).unwrap(), plan.resolve_expanded(&expanded).unwrap());
        }
    }

    /// Proofs resolved with a shared range memo (as a batch's receipts
    /// are) equal the ones resolved without, for many indexes and sizes
    /// sharing one memo: a range's root does not depend on the tree size.
    #[test]
    fn a_shared_range_memo_gives_the_same_proofs(ns in proptest::collection::vec(2..=BIG, 1..4), ms in proptest::collection::vec(any::<u64>(), 1..40)) {
        use cairn_core::proof::{ExpandedTile, ProofPlan, RangeMemo, TileReader};
        let (_, tiles, _) = big_tree();
        let mut memo = RangeMemo::default();
        for n in ns {
            for m in &ms {
                for plan in [
                    ProofPlan::inclusion(LeafIndex(m % n), TreeSize(n)).unwrap(),
                    ProofPlan::consistency(TreeSize(m % (n - 1) + 1), TreeSize(n)).unwrap(),
                ] {
                    let raw = tiles.read_tiles(plan.tiles()).unwrap();
                    let expanded: Vec<ExpandedTile> = raw.iter().map(|t| ExpandedTile::new(t)).collect();
                    prop_assert_eq!(
                        plan.resolve(&raw).unwrap(),
                        plan.resolve_expanded_memo(&expanded, &mut memo).unwrap()
                    );
                }
            }
        }
    }
}
