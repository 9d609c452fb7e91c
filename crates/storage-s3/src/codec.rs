//! The private objects' formats: the state object (the commit point), a
//! sequenced batch, a batch's idempotency records. Binary, versioned by a
//! magic line; every decoder checks lengths before it reads, so a damaged
//! object is [`StoreError::Corrupt`], never a panic.

use cairn_core::hash::{Hash, TreeSize};
use cairn_core::tile::Tile;
use cairn_core::tree::{TileUpdate, TreeState};
use cairn_storage::{CommitBatch, IdempotencyKey, StoreError};

const STATE_MAGIC: &[u8] = b"cairn-state-v1\n";
const BATCH_MAGIC: &[u8] = b"cairn-batch-v1\n";
const IDEM_MAGIC: &[u8] = b"cairn-idempotency-v1\n";

/// `.cairn/state`: the committed tree and the latest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateDoc {
    pub(crate) tree: TreeState,
    pub(crate) checkpoint: Option<Vec<u8>>,
}

/// One entry of a sequenced batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEntry {
    /// The stored leaf.
    pub data: Vec<u8>,
    /// Its leaf hash (computed by the engine).
    pub leaf_hash: Hash,
    /// Its idempotency record (hashed key, request digest).
    pub idempotency: Option<(IdempotencyKey, [u8; 32])>,
}

/// A sequenced batch (`.cairn/batch/<start>`): everything a writer needs
/// to write the batch's tiles and bundles and commit it, so that a second
/// writer completing it writes the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// The index of its first entry (the committed size it extends).
    pub start: u64,
    /// Its entries.
    pub entries: Vec<BatchEntry>,
    /// Its tile updates.
    pub tiles: Vec<TileUpdate>,
    /// The tree after it.
    pub state: TreeState,
    /// A checkpoint stored with it, if the caller gave one.
    pub checkpoint: Option<Vec<u8>>,
}

struct W(Vec<u8>);
impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn hash(&mut self, h: &Hash) {
        self.0.extend_from_slice(&h.0);
    }
    fn hashes(&mut self, hs: &[Hash]) {
        self.u32(hs.len() as u32);
        for h in hs {
            self.hash(h);
        }
    }
    fn tree(&mut self, t: &TreeState) {
        self.u64(t.size().0);
        self.hashes(t.frontier());
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
}

struct R<'a> {
    b: &'a [u8],
    what: &'static str,
}
impl<'a> R<'a> {
    fn bad(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {why}", self.what))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.b.len() < n {
            return Err(self.bad("truncated"));
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }
    fn magic(&mut self, m: &[u8]) -> Result<(), StoreError> {
        if self.take(m.len())? != m {
            return Err(self.bad("unknown format"));
        }
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        Ok(u16::from_be_bytes(a))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn hash(&mut self) -> Result<Hash, StoreError> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(Hash(h))
    }
    fn hashes(&mut self) -> Result<Vec<Hash>, StoreError> {
        let n = self.u32()? as usize;
        if n.checked_mul(32).is_none_or(|l| l > self.b.len()) {
            return Err(self.bad("truncated"));
        }
        (0..n).map(|_| self.hash()).collect()
    }
    fn tree(&mut self) -> Result<TreeState, StoreError> {
        let size = self.u64()?;
        let frontier = self.hashes()?;
        TreeState::new(TreeSize(size), frontier).map_err(|e| self.bad(&e.to_string()))
    }
    fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(self.bad("bad flag")),
        }
    }
    fn end(&self) -> Result<(), StoreError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}

impl BatchEntry {
    /// As the store contract's entry (borrowing).
    pub fn as_new(&self) -> cairn_storage::NewEntry<'_> {
        cairn_storage::NewEntry {
            data: &self.data,
            leaf_hash: self.leaf_hash,
            idempotency: self
                .idempotency
                .map(|(key, request)| cairn_storage::Idempotency { key, request }),
        }
    }
}

impl StateDoc {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = W(STATE_MAGIC.to_vec());
        w.tree(&self.tree);
        w.opt_bytes(self.checkpoint.as_deref());
        w.0
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut r = R {
            b,
            what: "the state object",
        };
        r.magic(STATE_MAGIC)?;
        let tree = r.tree()?;
        let checkpoint = r.opt_bytes()?;
        r.end()?;
        Ok(StateDoc { tree, checkpoint })
    }
}

impl BatchRecord {
    /// The record of a batch the engine asked to commit.
    pub fn from_batch(b: &CommitBatch<'_>) -> Self {
        BatchRecord {
            start: b.expected_size.0,
            entries: b
                .entries
                .iter()
                .map(|e| BatchEntry {
                    data: e.data.to_vec(),
                    leaf_hash: e.leaf_hash,
                    idempotency: e.idempotency.map(|i| (i.key, i.request)),
                })
                .collect(),
            tiles: b.tiles.to_vec(),
            state: b.state.clone(),
            checkpoint: b.checkpoint.map(<[u8]>::to_vec),
        }
    }

    /// Its bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(BATCH_MAGIC.to_vec());
        w.u64(self.start);
        w.u32(self.entries.len() as u32);
        for e in &self.entries {
            w.bytes(&e.data);
            w.hash(&e.leaf_hash);
            match &e.idempotency {
                Some((k, r)) => {
                    w.u8(1);
                    w.0.extend_from_slice(&k.0);
                    w.0.extend_from_slice(r);
                }
                None => w.u8(0),
            }
        }
        w.u32(self.tiles.len() as u32);
        for u in &self.tiles {
            w.u8(u.tile.level);
            w.u64(u.tile.index);
            w.u16(u.tile.width);
            w.u16(u.offset);
            w.hashes(&u.hashes);
        }
        w.tree(&self.state);
        w.opt_bytes(self.checkpoint.as_deref());
        w.0
    }

    /// Parses a record; anything malformed is [`StoreError::Corrupt`].
    pub fn decode(b: &[u8]) -> Result<Self, StoreError> {
        let mut r = R {
            b,
            what: "a sequenced batch",
        };
        r.magic(BATCH_MAGIC)?;
        let start = r.u64()?;
        let n = r.u32()? as usize;
        let mut entries = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let data = r.bytes()?;
            let leaf_hash = r.hash()?;
            let idempotency = match r.u8()? {
                0 => None,
                1 => {
                    let k = r.hash()?.0;
                    let q = r.hash()?.0;
                    Some((IdempotencyKey(k), q))
                }
                _ => return Err(r.bad("bad flag")),
            };
            entries.push(BatchEntry {
                data,
                leaf_hash,
                idempotency,
            });
        }
        let t = r.u32()? as usize;
        let mut tiles = Vec::with_capacity(t.min(1 << 12));
        for _ in 0..t {
            let level = r.u8()?;
            let index = r.u64()?;
            let width = r.u16()?;
            let offset = r.u16()?;
            let hashes = r.hashes()?;
            if !(1..=256).contains(&width)
                || usize::from(offset) + hashes.len() != usize::from(width)
            {
                return Err(r.bad("a tile update does not add up"));
            }
            tiles.push(TileUpdate {
                tile: Tile {
                    level,
                    index,
                    width,
                },
                offset,
                hashes,
            });
        }
        let state = r.tree()?;
        let checkpoint = r.opt_bytes()?;
        r.end()?;
        if state.size().0 != start.saturating_add(entries.len() as u64) {
            return Err(r.bad("its tree size does not match its entries"));
        }
        Ok(BatchRecord {
            start,
            entries,
            tiles,
            state,
            checkpoint,
        })
    }
}

/// A batch's idempotency records; empty if it has none.
pub(crate) fn encode_idempotency(rec: &BatchRecord) -> Vec<u8> {
    let mut w = W(IDEM_MAGIC.to_vec());
    let mut any = false;
    for (i, e) in rec.entries.iter().enumerate() {
        if let Some((k, q)) = &e.idempotency {
            any = true;
            w.u64(rec.start + i as u64);
            w.0.extend_from_slice(&k.0);
            w.0.extend_from_slice(q);
        }
    }
    if any { w.0 } else { Vec::new() }
}

/// Parses [`encode_idempotency`]'s bytes: (index, key, request digest).
pub(crate) fn decode_idempotency(
    b: &[u8],
) -> Result<Vec<(u64, IdempotencyKey, [u8; 32])>, StoreError> {
    let mut r = R {
        b,
        what: "an idempotency object",
    };
    r.magic(IDEM_MAGIC)?;
    let mut out = Vec::new();
    while !r.b.is_empty() {
        let idx = r.u64()?;
        let k = r.hash()?.0;
        let q = r.hash()?.0;
        out.push((idx, IdempotencyKey(k), q));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_corrupt_not_a_panic() {
        let tree = TreeState::new(TreeSize(2), vec![Hash([7; 32])]).unwrap();
        let rec = BatchRecord {
            start: 1,
            entries: vec![BatchEntry {
                data: b"leaf".to_vec(),
                leaf_hash: Hash([1; 32]),
                idempotency: Some((IdempotencyKey([2; 32]), [3; 32])),
            }],
            tiles: vec![TileUpdate {
                tile: Tile {
                    level: 0,
                    index: 0,
                    width: 2,
                },
                offset: 1,
                hashes: vec![Hash([1; 32])],
            }],
            state: tree.clone(),
            checkpoint: Some(b"note".to_vec()),
        };
        let b = rec.encode();
        assert_eq!(BatchRecord::decode(&b).unwrap(), rec);
        for cut in 0..b.len() {
            assert!(matches!(
                BatchRecord::decode(&b[..cut]),
                Err(StoreError::Corrupt(_))
            ));
        }
        let s = StateDoc {
            tree,
            checkpoint: None,
        };
        assert_eq!(StateDoc::decode(&s.encode()).unwrap(), s);
        let idem = encode_idempotency(&rec);
        assert_eq!(
            decode_idempotency(&idem).unwrap(),
            vec![(1, IdempotencyKey([2; 32]), [3; 32])]
        );
    }
}
