//! The publisher seam: what runs when a log has a new signed head.
//!
//! Today witness submission follows the sequencer's head channel
//! ([`crate::Sequencer::head`]); tile publishing to object storage and
//! mirrors come next, as [`Publisher`]s given to the sequencer.

use std::sync::Arc;

use crate::pipeline::SignedHead;

/// Told of every new signed head of a log.
///
/// **When.** Once per new head, in tree order, after its batch and its
/// checkpoint are durable (the store returned `Ok`) and before the batch's
/// waiters are answered. A head is never published twice, and never one
/// the store does not hold: a consumer may treat it as the truth.
///
/// **Must not block.** `published` runs on the sequencer's task; it hands
/// the work off (a channel, a queue) and returns. A slow or failing
/// publisher must never delay or fail appends: it retries on its own, and
/// catches up from the newest head (heads only grow, so the newest one
/// subsumes those it missed).
///
/// **Concurrency.** Called from one task at a time per log; `Send + Sync`
/// so one publisher may serve many logs.
pub trait Publisher: Send + Sync + std::fmt::Debug {
    /// A new signed head, durable in the store.
    fn published(&self, head: &Arc<SignedHead>);
}

/// A `watch` channel is a publisher for consumers that only ever need the
/// newest head (witness submission reads it at its own pace).
impl Publisher for tokio::sync::watch::Sender<Arc<SignedHead>> {
    fn published(&self, head: &Arc<SignedHead>) {
        self.send_replace(head.clone());
    }
}
