//! The conformance suite on the bucket store over `object_store`'s
//! in-memory store (atomic conditional writes): fast, and every case on a
//! fresh bucket. The proof on a real S3 (Ceph RGW) is `rgw.rs`.

#![allow(clippy::expect_used)]

fn fresh() -> ((), cairn_storage_s3::BucketStore) {
    let store = cairn_storage_s3::BucketStore::open(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        "log",
        "memory".into(),
    )
    .expect("open store");
    ((), store)
}

cairn_storage::conformance_tests!(fresh());
