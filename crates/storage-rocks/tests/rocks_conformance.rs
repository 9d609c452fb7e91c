//! The conformance suite on the RocksDB backend, each case in a fresh
//! temporary folder, with compression off (LZ4 is covered by tests/rocks.rs).

#![allow(clippy::expect_used)]

fn fresh() -> (tempfile::TempDir, cairn_storage_rocks::RocksStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = cairn_storage_rocks::StoreOptions::new(dir.path().join("data"));
    opts.compression = cairn_storage_rocks::Compression::None;
    opts.block_cache_bytes = 8 << 20;
    let store = cairn_storage_rocks::RocksStore::open(opts).expect("open store");
    (dir, store)
}

cairn_storage::conformance_tests!(fresh());
