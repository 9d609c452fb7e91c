//! Test helper for crash tests: opens a store and commits batches forever,
//! printing `acked <size>` after each batch and its checkpoint are durable.
//! The crash test kills it with SIGKILL at random moments and checks that
//! every acknowledged size survived.
//!
//! Usage: `cairn-store-crash-writer DATA_DIR [SEED]`

use std::io::Write;

use cairn_storage::LogStore;
use cairn_storage::conformance::Harness;
use cairn_storage_rocks::{RocksStore, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: cairn-store-crash-writer DATA_DIR [SEED]")?;
    let mut seed: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1) | 1;
    let store = RocksStore::open(StoreOptions::new(&dir))?;
    let st = store.load_state()?;
    let mut h = Harness::resume(st.tree);
    // A crash may have come between a batch and its checkpoint: sign it now.
    if st.checkpoint.map(|c| c.size) != Some(h.tree.size()) && h.tree.size().0 > 0 {
        store.put_checkpoint(h.tree.size(), &h.sign(&h.tree))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {}", h.tree.size())?;
    out.flush()?;
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = 1 + seed % 600;
        let p = h.prepare(n, true);
        let e = p.entries();
        store.commit_batch(p.batch(&e, false))?;
        store.put_checkpoint(p.integ.state.size(), &p.note)?;
        let size = p.integ.state.size();
        h.accept(p);
        writeln!(out, "acked {size}")?;
        out.flush()?;
    }
}
