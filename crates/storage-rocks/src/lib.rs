//! `cairn-storage-rocks`: the embedded default backend of the
//! [`LogStore`] contract, on RocksDB. One process, one folder, crash safe,
//! with a [fork guard](cairn_storage::guard) against restored backups.
//! Layout and key encodings: `docs/design/storage.md`. The contract, the
//! memory store and the recovery checks live in `cairn-storage`, which
//! knows nothing of RocksDB; the conformance suite there (feature
//! `testing`) runs against this store too.
//!
//! # Life of a batch (the commit point)
//!
//! `commit_batch` takes the writer lock, then:
//!
//! 1. **Validate** against the durable state (compare-and-swap on the size,
//!    tile continuity, idempotency keys). Nothing is written; a crash here
//!    leaves the store exactly as it was.
//! 2. **Build one `WriteBatch`** in memory: entries, merged tiles, leaf-hash
//!    index, idempotency keys, the new tree state, and the checkpoint if
//!    given. Still nothing on disk.
//! 3. **`write_opt(batch, sync = true)` — the commit point.** RocksDB appends
//!    the whole batch to its write-ahead log as one record and fsyncs it.
//!    A crash before the fsync completes loses the whole batch (WAL replay
//!    stops at the last complete record; the sequencer never acknowledged
//!    it, so nothing acknowledged is lost). A crash after it keeps the whole
//!    batch. There is no state in between.
//! 4. **Update the in-memory copy** of the tree state. Memory only.
//! 5. **Advance the fork guard** if a checkpoint was stored (write, fsync,
//!    rename, fsync folder). A crash before this leaves the guard behind the
//!    store, which start-up accepts and repairs.
//! 6. Return `Ok`: now, and only now, may the caller publish.
//!
//! # Start-up recovery
//!
//! `open` takes the folder lock, opens RocksDB (which replays its WAL),
//! checks the format version, loads the tree state, recomputes the root
//! from the stored tiles (`O(log n)` reads) and checks it against the state
//! and the latest checkpoint, then checks the fork guard. A store that fails
//! any of these is refused with an error that says which check failed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use cairn_core::hash::{HASH_LEN, Hash, LeafIndex, TreeSize};
use cairn_core::tile::{TILE_WIDTH, Tile};
use cairn_core::tree::TreeState;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    Direction, IteratorMode, Options, ReadOptions, SliceTransform, WriteBatch, WriteOptions,
};

use cairn_storage::guard::ForkGuard;
use cairn_storage::verify::{check_checkpoint_request, validate_batch, verify_state};
use cairn_storage::{
    CommitBatch, FORMAT_VERSION, IdempotencyKey, IdempotencyRecord, LoadedState, LogStore,
    StoreError, StoredCheckpoint, WriterLease,
};

const CF_ENTRIES: &str = "entries";
const CF_TILES: &str = "tiles";
const CF_LEAF_INDEX: &str = "leaf_index";
const CF_IDEMPOTENCY: &str = "idempotency";
const CF_CHECKPOINTS: &str = "checkpoints";
const CF_META: &str = "meta";
const META_FORMAT: &[u8] = b"format";
const META_STATE: &[u8] = b"state";
const LOCK_FILE: &str = "cairn.lock";
/// Bytes of the leaf hash used as the leaf-index key prefix. Four bytes
/// keep the index small (a 10^7-entry log has a 0.2% chance per lookup of
/// one extra candidate, which `find_leaf` confirms against the tile).
const LEAF_PREFIX: usize = 4;
/// Bytes of the index in a leaf-index key: 40 bits, so a log holds at most
/// 2^40 (about 1.1 trillion) entries.
const LEAF_INDEX_BYTES: usize = 5;
/// The largest tree this layout can index.
pub const MAX_TREE_SIZE: u64 = 1 << (8 * LEAF_INDEX_BYTES);

/// Compression for stored entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (tests that inspect raw files use this).
    None,
    /// LZ4: cheap to compress and decompress; the default.
    #[default]
    Lz4,
    /// Zstandard: smaller, more CPU.
    Zstd,
}

/// RocksDB's errors as the contract's: I/O (the message names what
/// failed; `StoreError::summary` keeps it from clients).
trait Io<T> {
    fn io(self) -> Result<T, StoreError>;
}

impl<T> Io<T> for Result<T, rocksdb::Error> {
    fn io(self) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Io(e.into_string()))
    }
}

/// How to open a [`RocksStore`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The data folder (created if missing).
    pub dir: PathBuf,
    /// The fork-guard file; `None` means `<dir>.guard` beside the folder.
    pub guard_path: Option<PathBuf>,
    /// Entry compression.
    pub compression: Compression,
    /// Shared block cache size in bytes.
    pub block_cache_bytes: usize,
    /// A store that holds checkpoints but whose guard file is missing is
    /// refused at open ([`StoreError::ForkGuard`]): a restored data volume
    /// without its guard, or a guard moved away, looks exactly like that.
    /// `true` recreates the guard from the store's latest checkpoint
    /// instead (an operator's one-time decision, e.g. after moving the
    /// guard file to a new place), with a warning.
    pub rebuild_missing_guard: bool,
}

impl StoreOptions {
    /// Defaults for a data folder: LZ4, a 1 GiB block cache, the guard beside the folder.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            dir: dir.into(),
            guard_path: None,
            compression: Compression::Lz4,
            // 1 GiB: a 10^7-entry log has ~330 MB of tiles, so every proof
            // tile stays cached, with room for hot entry blocks; small next to
            // 24 GiB of RAM.
            block_cache_bytes: 1 << 30,
            rebuild_missing_guard: false,
        }
    }
}

/// The writer's view, behind the writer lock.
struct Writer {
    tree: TreeState,
    /// Size of the checkpoint the guard holds (0 if none).
    guard_size: u64,
    /// A write failed with an I/O error: RocksDB refuses further writes
    /// until the database is reopened (it has no resume in the C API).
    poisoned: bool,
}

/// A crash-safe [`LogStore`] in a RocksDB folder.
pub struct RocksStore {
    /// `None` only while the database is being reopened after an I/O error.
    db: RwLock<Option<DB>>,
    opts: StoreOptions,
    cache: Cache,
    dir: PathBuf,
    guard: ForkGuard,
    writer: Mutex<Writer>,
    /// The durable tree size, for readers (never ahead of the data).
    size: AtomicU64,
    /// Held for the life of the store: the single-writer lock.
    lease: Arc<FolderLease>,
}

fn entry_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn tile_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn leaf_key(h: &Hash, index: u64) -> [u8; LEAF_PREFIX + LEAF_INDEX_BYTES] {
    let mut k = [0u8; LEAF_PREFIX + LEAF_INDEX_BYTES];
    k[..LEAF_PREFIX].copy_from_slice(&h.0[..LEAF_PREFIX]);
    k[LEAF_PREFIX..].copy_from_slice(&index.to_be_bytes()[8 - LEAF_INDEX_BYTES..]);
    k
}

fn encode_state(t: &TreeState) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + HASH_LEN * t.frontier().len());
    v.extend_from_slice(&t.size().0.to_be_bytes());
    for h in t.frontier() {
        v.extend_from_slice(&h.0);
    }
    v
}

fn decode_state(v: &[u8]) -> Result<TreeState, StoreError> {
    let corrupt = || StoreError::Corrupt("the tree-state record cannot be decoded".into());
    let (size, rest) = v.split_first_chunk::<8>().ok_or_else(corrupt)?;
    if rest.len() % HASH_LEN != 0 {
        return Err(corrupt());
    }
    let frontier = rest
        .chunks_exact(HASH_LEN)
        .map(|c| Hash::from_slice(c).map_err(|_| corrupt()))
        .collect::<Result<Vec<_>, _>>()?;
    TreeState::new(TreeSize(u64::from_be_bytes(*size)), frontier)
        .map_err(|e| StoreError::Corrupt(format!("tree-state record: {e}")))
}

fn decode_hashes(v: &[u8], what: &str) -> Result<Vec<Hash>, StoreError> {
    if !v.len().is_multiple_of(HASH_LEN) || v.len() > HASH_LEN * TILE_WIDTH as usize {
        return Err(StoreError::Corrupt(format!("{what} has a bad length")));
    }
    Ok(v.chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

fn decode_u40(v: &[u8]) -> Result<u64, StoreError> {
    if v.len() != LEAF_INDEX_BYTES {
        return Err(StoreError::Corrupt(
            "leaf-index key has a bad length".into(),
        ));
    }
    Ok(v.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

fn decode_u64(v: &[u8], what: &str) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not an 8-byte integer")))
}

/// Takes the folder's lock file, or explains who holds it.
fn lock_dir(dir: &Path) -> Result<FolderLease, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::Io(format!("opening lock file {}: {e}", path.display())))?;
    // A lock held by a process that is exiting (a restart), or by a child
    // forked by this process in the instant before it execs (fork copies the
    // descriptor), is gone within milliseconds: retry briefly before
    // calling the folder taken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    let mut attempt = f.try_lock();
    while matches!(attempt, Err(TryLockError::WouldBlock)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        attempt = f.try_lock();
    }
    match attempt {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Locked {
                dir: dir.to_path_buf(),
                lock_file: path,
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_owned()
                },
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(StoreError::Io(format!("locking {}: {e}", path.display())));
        }
    }
    // Record who holds the lock, for the next process's error message.
    let me = format!("pid {}", std::process::id());
    f.set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| f.write_all(me.as_bytes()))
        .map_err(|e| StoreError::Io(format!("writing lock file {}: {e}", path.display())))?;
    let held = f
        .metadata()
        .map_err(|e| StoreError::Io(format!("reading lock file {}: {e}", path.display())))?;
    Ok(FolderLease {
        dir: dir.to_path_buf(),
        path,
        inode: (held.dev(), held.ino()),
        _file: f,
    })
}

/// The writer lease of a data folder: an exclusive `flock` on its lock
/// file (`cairn.lock`), held as long as the store is open, the first
/// [`WriterLease`]. `check` confirms the lock file on disk is still the one
/// locked: if it was deleted or replaced, another process could lock the
/// new file and write beside this one, so this one must stop.
#[derive(Debug)]
pub struct FolderLease {
    dir: PathBuf,
    path: PathBuf,
    /// Device and inode of the locked file.
    inode: (u64, u64),
    _file: File,
}

impl WriterLease for FolderLease {
    fn check(&self) -> Result<(), StoreError> {
        let lost = |why: String| StoreError::Locked {
            dir: self.dir.clone(),
            lock_file: self.path.clone(),
            holder: why,
        };
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.inode => Ok(()),
            Ok(_) => Err(lost(
                "the lock file was replaced while this process held it; another process may be writing"
                    .into(),
            )),
            Err(e) => Err(lost(format!(
                "the lock file is gone ({e}); another process may be writing"
            ))),
        }
    }
}

fn cf_options(name: &str, opts: &StoreOptions, cache: &Cache) -> Options {
    let mut o = Options::default();
    let mut t = BlockBasedOptions::default();
    // One block cache shared by every column family, so hot tiles and hot
    // entries compete for the same memory instead of fixed slices.
    t.set_block_cache(cache);
    // Index and filter blocks live in the cache too (bounded memory), and
    // the top-level ones are pinned so a point lookup costs one data block.
    t.set_cache_index_and_filter_blocks(true);
    t.set_pin_l0_filter_and_index_blocks_in_cache(true);
    match name {
        CF_ENTRIES => {
            // 16 KiB blocks: ~50 entries of 300 bytes per block compress
            // much better than 4 KiB, and reading one random entry still
            // decompresses only 16 KiB (a few µs with LZ4).
            t.set_block_size(16 << 10);
            o.set_compression_type(match opts.compression {
                Compression::None => DBCompressionType::None,
                Compression::Lz4 => DBCompressionType::Lz4,
                Compression::Zstd => DBCompressionType::Zstd,
            });
            // Entries dominate the write volume: a larger memtable means
            // fewer, larger L0 files and less write amplification.
            o.set_write_buffer_size(128 << 20);
        }
        CF_TILES => {
            // Hashes do not compress; a full tile is 8 KiB, so 16 KiB blocks
            // hold whole tiles.
            t.set_block_size(16 << 10);
            o.set_compression_type(DBCompressionType::None);
            o.set_write_buffer_size(64 << 20);
        }
        CF_LEAF_INDEX => {
            // Keys are leaf-hash prefix (8 bytes) || index (8 bytes) with no
            // value; lookups are prefix seeks, so the bloom filter is built
            // on the 8-byte prefix and skips files that cannot match:
            // ~1% false positives at 10 bits per key.
            o.set_prefix_extractor(SliceTransform::create_fixed_prefix(LEAF_PREFIX));
            t.set_bloom_filter(10.0, false);
            t.set_whole_key_filtering(false);
            o.set_memtable_prefix_bloom_ratio(0.1);
            // Zstandard with 32 KiB blocks: the keys are delta-encoded, and
            // what is left (index suffixes, RocksDB's per-key trailers,
            // zeroed at the bottom level) compresses well; the index is read
            // rarely, so the extra CPU is cheap.
            o.set_compression_type(DBCompressionType::Zstd);
            o.set_compression_options(-14, 9, 0, 0);
            t.set_block_size(32 << 10);
            // Few restart points: each stores a whole key; lookups scan a
            // little further inside a block, which is cheap for 9-byte keys.
            t.set_block_restart_interval(128);
            o.set_write_buffer_size(64 << 20);
        }
        CF_IDEMPOTENCY => {
            // Point lookups by whole key.
            t.set_bloom_filter(10.0, false);
            o.set_compression_type(DBCompressionType::Lz4);
        }
        _ => {}
    }
    o.set_block_based_table_factory(&t);
    o
}

impl RocksStore {
    /// Opens (or creates) a store: lock, WAL replay, format check, state
    /// verification, fork-guard check. See the module docs.
    pub fn open(opts: StoreOptions) -> Result<Self, StoreError> {
        let dir = opts.dir.clone();
        // Durably: RocksDB syncs the files it makes in the folder, but not
        // the folder's own name in its parent.
        cairn_storage::durable::create_dir_all(&dir)
            .map_err(|e| StoreError::Io(format!("creating data folder {}: {e}", dir.display())))?;
        let lock = lock_dir(&dir)?;

        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let db = open_db(&opts, &cache)?;

        let guard = ForkGuard::new(
            opts.guard_path
                .clone()
                .unwrap_or_else(|| ForkGuard::default_path(&dir)),
        );
        check_format(&db, &dir)?;
        let db = if scrub_legacy_idempotency_keys(&db)? {
            // Reopening writes a fresh MANIFEST (the old one still names
            // the compacted files' boundary keys) and deletes the old one.
            drop(db);
            open_db(&opts, &cache)?
        } else {
            db
        };
        let store = RocksStore {
            db: RwLock::new(Some(db)),
            opts,
            cache,
            dir: dir.clone(),
            guard,
            writer: Mutex::new(Writer {
                tree: TreeState::empty(),
                guard_size: 0,
                poisoned: false,
            }),
            size: AtomicU64::new(0),
            lease: Arc::new(lock),
        };
        let loaded = store.load_state()?;
        let g = store.guard.check(&dir, loaded.tree.size(), &|s| {
            Ok(store.checkpoint(Some(s))?.map(|c| c.note))
        })?;
        let mut guard_size = g.as_ref().map_or(0, |g| g.size.0);
        if let Some(cp) = &loaded.checkpoint {
            if g.is_none() {
                // Checkpoints, but no guard: the guard was lost, moved, or
                // not restored with a backup. Never rebuilt silently: a
                // rebuilt guard would vouch for whatever this store holds.
                if !store.opts.rebuild_missing_guard {
                    return Err(StoreError::ForkGuard(format!(
                        "the fork guard {} is missing, but this store holds signed checkpoints (up to size {}). \
                         A restored backup of the data folder without its guard looks exactly like this, and \
                         serving it could fork the log. If the guard was moved (check guard_file), point to it; \
                         if you know this store is the log's latest state, start once with --rebuild-guard \
                         (CAIRN_REBUILD_GUARD=1) to recreate it from the store's latest checkpoint \
                         (docs/operations.md, \"The fork guard\").",
                        store.guard.path().display(),
                        cp.size
                    )));
                }
                tracing::warn!(
                    guard = %store.guard.path().display(),
                    size = cp.size.0,
                    "the fork guard was missing; recreating it from the store's latest checkpoint, as asked (--rebuild-guard)"
                );
            }
            // The guard may be behind the store (a crash between a
            // checkpoint and its guard update): advance it now.
            if g.is_none() || cp.size.0 > guard_size {
                store
                    .guard
                    .write(&cp.note)
                    .map_err(|e| StoreError::GuardWrite(e.to_string()))?;
                guard_size = cp.size.0;
            }
        }
        store.size.store(loaded.tree.size().0, Ordering::Release);
        *store.lock_writer() = Writer {
            tree: loaded.tree,
            guard_size,
            poisoned: false,
        };
        tracing::info!(dir = %dir.display(), size = store.size.load(Ordering::Acquire), "store opened");
        Ok(store)
    }

    /// The data folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This store's writer lease (the folder lock), for the engine to
    /// check before every commit.
    pub fn lease(&self) -> Arc<dyn WriterLease> {
        self.lease.clone()
    }

    /// The fork-guard file.
    pub fn guard_path(&self) -> &Path {
        self.guard.path()
    }

    /// Flushes memtables and compacts every column family (for size
    /// measurements and backups; not needed for durability).
    pub fn compact(&self) -> Result<(), StoreError> {
        let guard = self.read_db();
        let db = live(&guard)?;
        for name in ALL_CFS {
            let cf = cf(db, name)?;
            db.flush_cf(cf).io()?;
            db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Live table-file bytes per column family (RocksDB's
    /// `rocksdb.live-sst-files-size`; the write-ahead log is not included).
    /// For capacity planning and the bytes-per-entry figure.
    pub fn disk_usage(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let guard = self.read_db();
        let db = live(&guard)?;
        ALL_CFS
            .into_iter()
            .map(|name| {
                let v = db
                    .property_int_value_cf(cf(db, name)?, "rocksdb.live-sst-files-size")
                    .io()?
                    .unwrap_or(0);
                Ok((name, v))
            })
            .collect()
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // Poisoning means a panic while holding the lock; the durable state
        // is in RocksDB and `Writer` is only replaced after a successful
        // write, so the data behind the lock is still valid.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_db(&self) -> RwLockReadGuard<'_, Option<DB>> {
        // The lock only guards the swap of the handle during a reopen; a
        // panic elsewhere cannot leave the handle half-swapped.
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }

    /// After an I/O error RocksDB stops accepting writes until it is
    /// reopened. Reopen it (replaying the WAL), then take the durable state
    /// as the truth: the failed batch is either wholly there or wholly not.
    fn recover(&self, w: &mut Writer) -> Result<(), StoreError> {
        {
            let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
            // Close first: RocksDB's own LOCK file must be released.
            *slot = None;
            *slot = Some(open_db(&self.opts, &self.cache)?);
        }
        let st = self.load_state()?;
        tracing::warn!(size = st.tree.size().0, "store reopened after an I/O error");
        self.size.store(st.tree.size().0, Ordering::Release);
        w.tree = st.tree;
        w.poisoned = false;
        Ok(())
    }

    /// Advances the guard to a durable checkpoint if it is the newest yet.
    /// Records a durable checkpoint in the guard. A failure here comes
    /// after the checkpoint is durable: it is [`StoreError::GuardWrite`],
    /// so the caller can tell "stored, but the guard lags" from "not
    /// stored". The next checkpoint (or start-up) tries again.
    fn advance_guard(&self, w: &mut Writer, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        if size.0 >= w.guard_size {
            self.guard
                .write(note)
                .map_err(|e| StoreError::GuardWrite(e.to_string()))?;
            w.guard_size = size.0;
        }
        Ok(())
    }
}

const ALL_CFS: [&str; 6] = [
    CF_ENTRIES,
    CF_TILES,
    CF_LEAF_INDEX,
    CF_IDEMPOTENCY,
    CF_CHECKPOINTS,
    CF_META,
];

/// Opens RocksDB with Cairn's options (WAL replay happens here).
fn open_db(opts: &StoreOptions, cache: &Cache) -> Result<DB, StoreError> {
    let mut db_opts = Options::default();
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    // Two cores: two background threads for flushes and compactions.
    db_opts.increase_parallelism(2);
    db_opts.set_max_background_jobs(2);
    // Flushes and compactions run at a lower CPU priority than the threads
    // that answer appends: on a small box they otherwise take a core just
    // as a memtable fills, and every receipt of that moment waits (batch
    // appends at half the peak: p99 30-51 ms -> 20-28 ms, medians of 3-6
    // runs, docs/benchmarks.md). Under saturation RocksDB's own write
    // stalls hand them the CPU back. The Env is the process's default one.
    let mut env = rocksdb::Env::new().map_err(|e| StoreError::Io(e.to_string()))?;
    env.lower_thread_pool_cpu_priority();
    env.lower_high_priority_thread_pool_cpu_priority();
    db_opts.set_env(&env);
    // Reuse old WAL files instead of creating (and preallocating) a new
    // one at each memtable switch: the switch no longer waits for the file
    // system, and a synced write into already-allocated blocks needs no
    // inode update. Recovery stays point-in-time: recycled records carry
    // their log number, so a stale tail is told from a torn one.
    db_opts.set_recycle_log_file_num(4);
    // Write SST data back to disk in 1 MiB steps rather than in one big
    // burst at file close, so compaction I/O does not stall the WAL sync.
    db_opts.set_bytes_per_sync(1 << 20);
    // Bound the WAL so a restart replays at most this much.
    db_opts.set_max_total_wal_size(256 << 20);
    db_opts.set_keep_log_file_num(4);
    let cfs: Vec<ColumnFamilyDescriptor> = ALL_CFS
        .iter()
        .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n, opts, cache)))
        .collect();
    DB::open_cf_descriptors(&db_opts, &opts.dir, cfs).map_err(|e| {
        StoreError::Io(format!(
            "opening RocksDB in {}: {}",
            opts.dir.display(),
            e.into_string()
        ))
    })
}

/// The open database, or an error while it is being reopened.
fn live<'a>(guard: &'a RwLockReadGuard<'_, Option<DB>>) -> Result<&'a DB, StoreError> {
    guard
        .as_ref()
        .ok_or_else(|| StoreError::Io("the store is recovering from an I/O error; retry".into()))
}

fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily, StoreError> {
    db.cf_handle(name)
        .ok_or_else(|| StoreError::Corrupt(format!("column family {name} is missing")))
}

/// Idempotency records written before keys were hashed hold the client's
/// key as sent (an email address, say) as their RocksDB key, with an
/// 8-byte value. No lookup can find them any more (keys are now 32-byte
/// keyed hashes, with 40-byte values), so they are deleted at open, and
/// the column family is flushed and compacted so that no SST file or
/// write-ahead log keeps the raw bytes (the caller then reopens the
/// database, for its MANIFEST). Runs once: afterwards there is nothing to
/// find, and the scan of the column family is the only cost. Returns
/// whether anything was deleted.
fn scrub_legacy_idempotency_keys(db: &DB) -> Result<bool, StoreError> {
    let idem = cf(db, CF_IDEMPOTENCY)?;
    let mut wb = WriteBatch::default();
    let mut n = 0u64;
    for item in db.iterator_cf(idem, IteratorMode::Start) {
        let (k, v) = item.io()?;
        if v.len() == 8 {
            wb.delete_cf(idem, k);
            n += 1;
        }
    }
    if n == 0 {
        return Ok(false);
    }
    sync_write(db, wb)?;
    // Flush every column family (so no write-ahead log file still holds
    // the raw keys), then rewrite this one's files without them.
    let all: Vec<_> = ALL_CFS
        .iter()
        .map(|name| cf(db, name))
        .collect::<Result<_, _>>()?;
    db.flush_cfs_opt(&all, &rocksdb::FlushOptions::default())
        .io()?;
    let mut co = rocksdb::CompactOptions::default();
    co.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
    db.compact_range_cf_opt(idem, None::<&[u8]>, None::<&[u8]>, &co);
    tracing::warn!(
        records = n,
        "deleted idempotency records stored before keys were hashed (raw client bytes); retries of those appends will append again"
    );
    Ok(true)
}

fn check_format(db: &DB, dir: &Path) -> Result<(), StoreError> {
    let meta = cf(db, CF_META)?;
    match db.get_cf(meta, META_FORMAT).io()? {
        Some(v) => {
            let found = <[u8; 4]>::try_from(v.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("format-version record is malformed".into()))?;
            if found != FORMAT_VERSION {
                return Err(StoreError::UnknownFormat {
                    dir: dir.to_path_buf(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
        }
        None => {
            // A new store, or one with data but no version record (only
            // possible if it was not written by Cairn).
            if db.get_cf(meta, META_STATE).io()?.is_some() {
                return Err(StoreError::Corrupt(
                    "store has a tree state but no format-version record".into(),
                ));
            }
            let mut wo = WriteOptions::default();
            wo.set_sync(true);
            db.put_cf_opt(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes(), &wo)
                .io()?;
        }
    }
    Ok(())
}

fn sync_write(db: &DB, batch: WriteBatch) -> Result<(), StoreError> {
    let mut wo = WriteOptions::default();
    // The commit point: WAL appended and fsynced before this returns.
    wo.set_sync(true);
    db.write_opt(batch, &wo).io()?;
    Ok(())
}

fn checkpoint_slot_free(db: &DB, size: u64, note: &[u8]) -> Result<bool, StoreError> {
    match db
        .get_cf(cf(db, CF_CHECKPOINTS)?, size.to_be_bytes())
        .io()?
    {
        Some(old) if old == note => Ok(false),
        Some(_) => Err(StoreError::CheckpointConflict { size }),
        None => Ok(true),
    }
}

fn read_tiles_in(db: &DB, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
    let cf = cf(db, CF_TILES)?;
    let keys: Vec<[u8; 9]> = tiles.iter().map(|t| tile_key(t.level, t.index)).collect();
    let results = db.batched_multi_get_cf(cf, &keys, false);
    tiles
        .iter()
        .zip(results)
        .map(|(t, r)| {
            let bytes = r
                .io()?
                .ok_or_else(|| StoreError::MissingTile { path: t.path() })?;
            let want = usize::from(t.width) * HASH_LEN;
            let slice = bytes
                .get(..want)
                .ok_or_else(|| StoreError::MissingTile { path: t.path() })?;
            decode_hashes(slice, "a tile")
        })
        .collect()
}

fn latest_checkpoint<'a>(
    iter: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>> + 'a,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let mut iter = iter;
    match iter.next() {
        None => Ok(None),
        Some(item) => {
            let (k, v) = item.io()?;
            Ok(Some(StoredCheckpoint {
                size: TreeSize(decode_u64(&k, "checkpoint key")?),
                note: v.into_vec(),
            }))
        }
    }
}

impl LogStore for RocksStore {
    fn load_state(&self) -> Result<LoadedState, StoreError> {
        let (tree, checkpoint) = {
            let guard = self.read_db();
            let db = live(&guard)?;
            // The state and the latest checkpoint from one snapshot, so a
            // commit landing between the two reads cannot make them
            // disagree. Tiles are read afterwards: they only grow, and the
            // prefix a size needs never changes.
            let snap = db.snapshot();
            let tree = match snap.get_cf(cf(db, CF_META)?, META_STATE).io()? {
                Some(v) => decode_state(&v)?,
                None => TreeState::empty(),
            };
            let checkpoint =
                latest_checkpoint(snap.iterator_cf(cf(db, CF_CHECKPOINTS)?, IteratorMode::End))?;
            (tree, checkpoint)
        };
        verify_state(self, &tree, checkpoint.as_ref())?;
        Ok(LoadedState { tree, checkpoint })
    }

    fn commit_batch(&self, batch: CommitBatch<'_>) -> Result<(), StoreError> {
        let mut w = self.lock_writer();
        if w.poisoned {
            self.recover(&mut w)?;
        }
        let guard = self.read_db();
        let db = live(&guard)?;
        // 1. Validate. Read the stored bytes of every tile the batch extends
        //    (the partial right-edge tiles) once, for the check and the merge.
        let tiles_cf = cf(db, CF_TILES)?;
        let mut existing = std::collections::HashMap::new();
        for u in batch.tiles {
            if u.offset > 0 {
                let bytes = db
                    .get_cf(tiles_cf, tile_key(u.tile.level, u.tile.index))
                    .io()?
                    .unwrap_or_default();
                existing.insert((u.tile.level, u.tile.index), bytes);
            }
        }
        if batch.state.size().0 > MAX_TREE_SIZE {
            return Err(StoreError::InvalidBatch(format!(
                "the store holds at most {MAX_TREE_SIZE} entries"
            )));
        }
        let idem = cf(db, CF_IDEMPOTENCY)?;
        validate_batch(
            &batch,
            w.tree.size(),
            &|l, i| Ok(existing.get(&(l, i)).map_or(0, |b| b.len() / HASH_LEN)),
            &|k| Ok(db.get_pinned_cf(idem, k.0).io()?.is_some()),
        )?;
        if let Some(note) = batch.checkpoint {
            checkpoint_slot_free(db, batch.state.size().0, note)?;
        }
        // 2. Build one WriteBatch, allocated once at about its final size
        //    (grown by doubling, a batch of thousands of entries would be
        //    copied again at every step).
        let tile_bytes: usize = batch
            .tiles
            .iter()
            .map(|u| u.hashes.len() * HASH_LEN + 64)
            .sum();
        let mut wb = WriteBatch::with_capacity_bytes(
            batch
                .entries
                .iter()
                .map(|e| e.data.len() + 48 + if e.idempotency.is_some() { 96 } else { 0 })
                .sum::<usize>()
                + tile_bytes
                // the right-edge partial tiles' earlier hashes, ~one per level
                + 8 * 8192,
        );
        let (entries, leaves) = (cf(db, CF_ENTRIES)?, cf(db, CF_LEAF_INDEX)?);
        let start = batch.expected_size.0;
        // The leaf-hash index's keys are random: put in key order, each
        // memtable insert starts from where the previous one ended
        // instead of from the top of the skip list.
        let mut leaf_keys: Vec<_> = batch
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| leaf_key(&e.leaf_hash, start + i as u64))
            .collect();
        leaf_keys.sort_unstable();
        for k in &leaf_keys {
            wb.put_cf(leaves, k, []);
        }
        let mut idem_records = Vec::new();
        for (i, e) in batch.entries.iter().enumerate() {
            let idx = start + i as u64;
            wb.put_cf(entries, entry_key(idx), e.data);
            if let Some(k) = e.idempotency {
                // Value: the index, then the request digest.
                let mut v = [0u8; 40];
                v[..8].copy_from_slice(&idx.to_be_bytes());
                v[8..].copy_from_slice(&k.request);
                idem_records.push((k.key.0, v));
            }
        }
        // Keyed hashes: random too, so in key order as well.
        idem_records.sort_unstable_by_key(|r| r.0);
        for (k, v) in &idem_records {
            wb.put_cf(idem, k, v);
        }
        for u in batch.tiles {
            let mut bytes = existing
                .remove(&(u.tile.level, u.tile.index))
                .unwrap_or_default();
            bytes.reserve(u.hashes.len() * HASH_LEN);
            for h in &u.hashes {
                bytes.extend_from_slice(&h.0);
            }
            wb.put_cf(tiles_cf, tile_key(u.tile.level, u.tile.index), bytes);
        }
        if let Some(note) = batch.checkpoint {
            wb.put_cf(
                cf(db, CF_CHECKPOINTS)?,
                batch.state.size().0.to_be_bytes(),
                note,
            );
        }
        wb.put_cf(cf(db, CF_META)?, META_STATE, encode_state(batch.state));
        // 3. The commit point (see the module docs). On an I/O error
        //    (disk full, EIO) RocksDB refuses further writes: the next
        //    write reopens it first (`recover`).
        if let Err(e) = sync_write(db, wb) {
            w.poisoned = true;
            return Err(e);
        }
        drop(guard);
        // 4. Durable: publish the new size to readers.
        w.tree = batch.state.clone();
        self.size.store(batch.state.size().0, Ordering::Release);
        // 5. Advance the fork guard. If this fails the batch is still
        //    durable; the error tells the caller not to publish yet.
        if let Some(note) = batch.checkpoint {
            self.advance_guard(&mut w, batch.state.size(), note)?;
        }
        Ok(())
    }

    fn put_checkpoint(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        let mut w = self.lock_writer();
        if w.poisoned {
            self.recover(&mut w)?;
        }
        check_checkpoint_request(size, note, w.tree.size())?;
        {
            let guard = self.read_db();
            let db = live(&guard)?;
            if checkpoint_slot_free(db, size.0, note)? {
                let mut wb = WriteBatch::default();
                wb.put_cf(cf(db, CF_CHECKPOINTS)?, size.0.to_be_bytes(), note);
                // Commit point: a crash before it leaves no checkpoint for
                // this size (start-up finds the tree ahead of its latest
                // checkpoint and the caller signs it again: Ed25519 is
                // deterministic, so the bytes are the same); a crash after it
                // keeps it.
                if let Err(e) = sync_write(db, wb) {
                    w.poisoned = true;
                    return Err(e);
                }
            }
        }
        self.advance_guard(&mut w, size, note)
    }

    fn read_entries(&self, start: LeafIndex, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        // The size this handle has published. A batch committed a moment
        // ago may not be in it yet (the size is published just after the
        // synced write), while a concurrent `load_state` already sees it:
        // so read past it, in the iterator's snapshot, for as long as the
        // entries run on. Entries are written only in committed batches,
        // so whatever follows without a gap is durable.
        let size = self.size.load(Ordering::Acquire);
        if start.0 > size {
            return Err(StoreError::OutOfRange {
                index: start.0,
                size,
            });
        }
        // At least this many must be there.
        let n = (size - start.0).min(limit as u64) as usize;
        let mut out = Vec::with_capacity(n.min(1 << 16));
        if limit == 0 {
            return Ok(out);
        }
        let guard = self.read_db();
        let db = live(&guard)?;
        let key = entry_key(start.0);
        let iter = db.iterator_cf(
            cf(db, CF_ENTRIES)?,
            IteratorMode::From(&key, Direction::Forward),
        );
        for (expect, item) in (start.0..).zip(iter.take(limit)) {
            let (k, v) = item.io()?;
            if decode_u64(&k, "entry key")? != expect {
                break;
            }
            out.push(v.into_vec());
        }
        if out.len() < n {
            return Err(StoreError::Corrupt(format!(
                "entries {}..{} are missing",
                start.0 + out.len() as u64,
                start.0 + n as u64
            )));
        }
        Ok(out)
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        let guard = self.read_db();
        read_tiles_in(live(&guard)?, tiles)
    }

    fn checkpoint(&self, size: Option<TreeSize>) -> Result<Option<StoredCheckpoint>, StoreError> {
        let guard = self.read_db();
        let db = live(&guard)?;
        let cpf = cf(db, CF_CHECKPOINTS)?;
        match size {
            Some(s) => Ok(db
                .get_cf(cpf, s.0.to_be_bytes())
                .io()?
                .map(|note| StoredCheckpoint { size: s, note })),
            None => latest_checkpoint(db.iterator_cf(cpf, IteratorMode::End)),
        }
    }

    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        let size = self.size.load(Ordering::Acquire);
        let guard = self.read_db();
        let db = live(&guard)?;
        let mut ro = ReadOptions::default();
        ro.set_prefix_same_as_start(true);
        let prefix = &leaf_hash.0[..LEAF_PREFIX];
        let iter = db.iterator_cf_opt(
            cf(db, CF_LEAF_INDEX)?,
            ro,
            IteratorMode::From(prefix, Direction::Forward),
        );
        // Candidates share the 8-byte prefix; confirm each against the full
        // leaf hash in its level-0 tile. Lowest index first.
        for item in iter {
            let (k, _) = item.io()?;
            if !k.starts_with(prefix) {
                break;
            }
            let idx = decode_u40(&k[LEAF_PREFIX..])?;
            if idx >= size {
                continue;
            }
            let tile = Tile {
                level: 0,
                index: idx / TILE_WIDTH,
                width: (idx % TILE_WIDTH + 1) as u16,
            };
            let hashes = read_tiles_in(db, &[tile])?;
            if hashes
                .first()
                .and_then(|t| t.last())
                .is_some_and(|h| h == leaf_hash)
            {
                return Ok(Some(LeafIndex(idx)));
            }
        }
        Ok(None)
    }

    fn find_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let guard = self.read_db();
        let db = live(&guard)?;
        let Some(v) = db.get_pinned_cf(cf(db, CF_IDEMPOTENCY)?, key.0).io()? else {
            return Ok(None);
        };
        let (index, request) = match v.len() {
            // Written before request digests were kept.
            8 => (&v[..], None),
            40 => (&v[..8], <[u8; 32]>::try_from(&v[8..]).ok()),
            n => {
                return Err(StoreError::Corrupt(format!(
                    "idempotency record of {n} bytes (expected 40)"
                )));
            }
        };
        Ok(Some(IdempotencyRecord {
            index: LeafIndex(decode_u64(index, "idempotency record")?),
            request,
        }))
    }
}
