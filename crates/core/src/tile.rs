//! C2SP tlog-tiles maths: tile coordinates, paths and entry bundles.
//!
//! A tile of height 8 at level `L`, index `N` holds up to 256 hashes of tree
//! level `8·L`: the nodes `N·256 .. N·256+255` of that level, each the root of
//! a perfect subtree of `256^L` leaves. Level-0 tiles hold leaf hashes. Only
//! complete nodes are stored; the hashes of tree levels that are not a
//! multiple of 8, and of the incomplete right edge, are recomputed from
//! tiles when a proof needs them. A tile with fewer than 256 hashes is
//! *partial*, and its path carries its width: `tile/<L>/<N>.p/<W>`.
//!
//! Spec: <https://c2sp.org/tlog-tiles> ("Merkle Tree" and "Entry bundles").

use std::fmt::Write;

use crate::hash::TreeSize;

/// Tree levels per tile.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile (and entries in a full entry bundle).
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Longest entry an entry bundle can carry (its length prefix is a `u16`).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;
/// Highest tile level that can hold a node of a tree with up to `2^64 - 1` leaves.
pub const MAX_TILE_LEVEL: u8 = 7;

/// A hash tile at a given width: level `level`, index `index`, holding the
/// first `width` (1..=256) hashes of that tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile level `L`: the tile holds nodes of tree level `8·L`.
    pub level: u8,
    /// Tile index `N` within its level.
    pub index: u64,
    /// Number of hashes, 1..=256; 256 means a full tile.
    pub width: u16,
}

impl Tile {
    /// The tile `(level, index)` as it stands in a tree of `size` leaves,
    /// or `None` if that tree has no complete node in it yet.
    pub fn at_size(level: u8, index: u64, size: TreeSize) -> Option<Tile> {
        if level > MAX_TILE_LEVEL {
            return None;
        }
        // Complete nodes at tree level 8·L in a tree of `size` leaves.
        let nodes = size.0 >> (TILE_HEIGHT * u32::from(level));
        let first = index.checked_mul(TILE_WIDTH)?;
        let avail = nodes.checked_sub(first)?;
        if avail == 0 {
            return None;
        }
        let width = avail.min(TILE_WIDTH) as u16;
        Some(Tile {
            level,
            index,
            width,
        })
    }

    /// Whether this tile has all 256 hashes (and so never changes again).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The C2SP path: `tile/<L>/<N>` or `tile/<L>/<N>.p/<W>`.
    pub fn path(&self) -> String {
        let mut s = format!("tile/{}/", self.level);
        push_index_and_width(&mut s, self.index, self.width);
        s
    }
}

/// The C2SP path of an entry bundle: `tile/entries/<N>` or
/// `tile/entries/<N>.p/<W>`. `width` is the number of entries, 1..=256.
pub fn entries_path(index: u64, width: u16) -> String {
    let mut s = String::from("tile/entries/");
    push_index_and_width(&mut s, index, width);
    s
}

/// Writes `N` as 3-digit groups, each but the last prefixed with `x`
/// (`1234067` → `x001/x234/067`), then `.p/<W>` when the tile is partial.
fn push_index_and_width(s: &mut String, index: u64, width: u16) {
    let digits = index.to_string();
    let pad = (3 - digits.len() % 3) % 3;
    let padded = format!("{}{}", "0".repeat(pad), digits);
    let groups = padded.len() / 3;
    for g in 0..groups {
        if g + 1 < groups {
            s.push('x');
        }
        s.push_str(&padded[3 * g..3 * g + 3]);
        if g + 1 < groups {
            s.push('/');
        }
    }
    if u64::from(width) < TILE_WIDTH {
        // Writing into a String cannot fail.
        let _ = write!(s, ".p/{width}");
    }
}

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TilePath {
    /// A hash tile, `tile/<L>/<N>[.p/<W>]`.
    Hashes(Tile),
    /// An entry bundle, `tile/entries/<N>[.p/<W>]`.
    Entries {
        /// Bundle index `N`: entries `N·256 ..`.
        index: u64,
        /// Number of entries, 1..=256.
        width: u16,
    },
}

/// A tile path was not in the canonical C2SP form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    /// The path does not start with `tile/`.
    #[error("tile path must start with \"tile/\"")]
    Prefix,
    /// The level is neither `entries` nor a decimal 0..=63 without leading zeros.
    #[error("invalid tile level")]
    Level,
    /// The index is not in canonical `x001/x234/067` form, or overflows 64 bits.
    #[error("invalid tile index (expected 3-digit groups like x001/x234/067)")]
    Index,
    /// The partial width is not a decimal 1..=255 without leading zeros.
    #[error("invalid partial tile width (expected .p/<1..255>)")]
    Width,
}

impl TilePath {
    /// Parses a path strictly: it must be exactly what [`Tile::path`] or
    /// [`entries_path`] would produce, so one tile has exactly one path.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        let rest = path.strip_prefix("tile/").ok_or(TilePathError::Prefix)?;
        let (level_str, rest) = rest.split_once('/').ok_or(TilePathError::Level)?;
        let level = if level_str == "entries" {
            None
        } else {
            let l = crate::encoding::parse_decimal(level_str).ok_or(TilePathError::Level)?;
            if l > 63 {
                return Err(TilePathError::Level);
            }
            Some(l as u8)
        };
        let (index_str, width) = match rest.split_once(".p/") {
            None => (rest, TILE_WIDTH as u16),
            Some((i, w)) => {
                let w = crate::encoding::parse_decimal(w).ok_or(TilePathError::Width)?;
                if w == 0 || w >= TILE_WIDTH {
                    return Err(TilePathError::Width);
                }
                (i, w as u16)
            }
        };
        let index = parse_index(index_str)?;
        Ok(match level {
            None => TilePath::Entries { index, width },
            Some(level) => TilePath::Hashes(Tile {
                level,
                index,
                width,
            }),
        })
    }
}

fn parse_index(s: &str) -> Result<u64, TilePathError> {
    let groups: Vec<&str> = s.split('/').collect();
    let mut value: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last {
            *g
        } else {
            g.strip_prefix('x').ok_or(TilePathError::Index)?
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TilePathError::Index);
        }
        // A leading all-zero group would give one index two paths.
        if i == 0 && !last && digits == "000" {
            return Err(TilePathError::Index);
        }
        let d: u64 = digits.parse().map_err(|_| TilePathError::Index)?;
        value = value
            .checked_mul(1000)
            .and_then(|v| v.checked_add(d))
            .ok_or(TilePathError::Index)?;
    }
    Ok(value)
}

/// A complete node of the tree: tree level `level` (0 = leaves), position
/// `index` within that level. It is the root of leaves
/// `index·2^level .. (index+1)·2^level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves, 0..=63.
    pub level: u8,
    /// Position within the level.
    pub index: u64,
}

impl NodeId {
    /// Where this node's hash comes from: the tile `(level, index)` holding
    /// its descendants at tree level `8·L`, and the run `start .. start+count`
    /// of hashes there whose perfect subtree it is the root of. `count` is
    /// `2^(level mod 8)`, so a node stored directly in a tile has `count = 1`.
    pub fn tile_location(self) -> (u8, u64, usize, usize) {
        let tile_level = self.level / TILE_HEIGHT as u8;
        let r = u32::from(self.level) % TILE_HEIGHT;
        // First descendant at tree level 8·L.
        let first = self.index << r;
        let tile_index = first >> TILE_HEIGHT;
        let start = (first & (TILE_WIDTH - 1)) as usize;
        (tile_level, tile_index, start, 1usize << r)
    }
}

/// An entry in a bundle was longer than the `u16` length prefix allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// An entry was longer than 65,535 bytes.
    #[error("entry of {0} bytes is too large for a tile entry bundle (max 65535)")]
    EntryTooLarge(usize),
    /// The bundle ended inside a length prefix or an entry.
    #[error("entry bundle is truncated")]
    Truncated,
    /// The bundle held more than 256 entries.
    #[error("entry bundle holds more than 256 entries")]
    TooManyEntries,
}

/// Appends one entry to a bundle: a big-endian `u16` length, then the bytes.
pub fn push_bundle_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), BundleError> {
    let len = u16::try_from(entry.len()).map_err(|_| BundleError::EntryTooLarge(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Encodes entries as a C2SP entry bundle.
pub fn encode_entry_bundle<'a, I>(entries: I) -> Result<Vec<u8>, BundleError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out = Vec::new();
    for (n, e) in entries.into_iter().enumerate() {
        if n as u64 >= TILE_WIDTH {
            return Err(BundleError::TooManyEntries);
        }
        push_bundle_entry(&mut out, e)?;
    }
    Ok(out)
}

/// Splits an entry bundle into its entries, without copying.
pub fn parse_entry_bundle(mut bundle: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut out = Vec::new();
    while !bundle.is_empty() {
        if out.len() as u64 >= TILE_WIDTH {
            return Err(BundleError::TooManyEntries);
        }
        let (len, rest) = bundle.split_at_checked(2).ok_or(BundleError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (entry, rest) = rest.split_at_checked(len).ok_or(BundleError::Truncated)?;
        out.push(entry);
        bundle = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_groups() {
        let t = |index, width| Tile {
            level: 0,
            index,
            width,
        };
        assert_eq!(t(0, 256).path(), "tile/0/000");
        assert_eq!(t(5, 256).path(), "tile/0/005");
        assert_eq!(t(1234, 256).path(), "tile/0/x001/234");
        assert_eq!(t(1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(t(1_234_067, 7).path(), "tile/0/x001/x234/067.p/7");
        assert_eq!(entries_path(1000, 256), "tile/entries/x001/000");
        assert_eq!(entries_path(3, 255), "tile/entries/003.p/255");
    }

    #[test]
    fn width_at_size() {
        assert_eq!(Tile::at_size(0, 0, TreeSize(0)), None);
        assert_eq!(Tile::at_size(0, 0, TreeSize(1)).map(|t| t.width), Some(1));
        assert_eq!(
            Tile::at_size(0, 0, TreeSize(300)).map(|t| t.width),
            Some(256)
        );
        assert_eq!(
            Tile::at_size(0, 1, TreeSize(300)).map(|t| t.width),
            Some(44)
        );
        assert_eq!(Tile::at_size(1, 0, TreeSize(300)).map(|t| t.width), Some(1));
        assert_eq!(Tile::at_size(1, 0, TreeSize(255)), None);
        assert_eq!(Tile::at_size(8, 0, TreeSize(u64::MAX)), None);
    }

    #[test]
    fn node_location() {
        // A leaf lives directly in a level-0 tile.
        assert_eq!(
            NodeId {
                level: 0,
                index: 257
            }
            .tile_location(),
            (0, 1, 1, 1)
        );
        // Level 3 node 33 covers leaves 264..272: tile 0/1 hashes 8..16.
        assert_eq!(
            NodeId {
                level: 3,
                index: 33
            }
            .tile_location(),
            (0, 1, 8, 8)
        );
        // Level 8 node 5 is stored in tile 1/0 at position 5.
        assert_eq!(NodeId { level: 8, index: 5 }.tile_location(), (1, 0, 5, 1));
        // Level 15 node 1 covers level-8 nodes 128..256 of tile 1/0.
        assert_eq!(
            NodeId {
                level: 15,
                index: 1
            }
            .tile_location(),
            (1, 0, 128, 128)
        );
    }

    #[test]
    fn bundle_limits() {
        let big = vec![0u8; MAX_ENTRY_LEN + 1];
        assert_eq!(
            encode_entry_bundle([big.as_slice()]),
            Err(BundleError::EntryTooLarge(65536))
        );
        let max = vec![7u8; MAX_ENTRY_LEN];
        let b = encode_entry_bundle([max.as_slice(), b"".as_slice(), b"ab".as_slice()]).unwrap();
        assert_eq!(&b[..2], &[0xff, 0xff]);
        let parsed = parse_entry_bundle(&b).unwrap();
        assert_eq!(parsed, vec![max.as_slice(), b"", b"ab"]);
        assert_eq!(
            parse_entry_bundle(&[0, 3, 1, 2]),
            Err(BundleError::Truncated)
        );
        assert_eq!(parse_entry_bundle(&[0]), Err(BundleError::Truncated));
    }
}
