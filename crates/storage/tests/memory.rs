//! The conformance suite on the in-memory reference backend.

cairn_storage::conformance_tests!(((), cairn_storage::MemoryStore::new()));
