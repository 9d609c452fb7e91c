//! C2SP tlog-proof v1 (<https://c2sp.org/tlog-proof>): an offline-verifiable
//! receipt that an entry is in a log, checked against the log key and a
//! witness policy.
//!
//! ```text
//! c2sp.org/tlog-proof@v1\n
//! [extra <base64>\n]
//! index <decimal>\n
//! [<base64 hash>\n]…           inclusion proof, leaf's sibling first
//! \n
//! <signed checkpoint note, verbatim>
//! ```

use crate::checkpoint::{CheckpointError, VerifiedCheckpoint, WitnessPolicy, verify_checkpoint};
use crate::encoding::{decode_base64, encode_base64, parse_decimal};
use crate::hash::{Hash, LeafIndex};
use crate::note::NoteVerifier;
use crate::proof::{ProofError, verify_inclusion};

/// The first line of every tlog-proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data.
    pub extra: Option<Vec<u8>>,
    /// Index of the entry.
    pub index: LeafIndex,
    /// Inclusion proof in the checkpoint's tree.
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// A tlog-proof could not be parsed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// Not well-formed.
    #[error("malformed tlog-proof: {0}")]
    Malformed(&'static str),
    /// The checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof failed.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

impl TlogProof {
    /// Serializes the proof.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(128 + 45 * self.path.len() + self.checkpoint.len());
        s.push_str(HEADER);
        s.push('\n');
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&encode_base64(extra));
            s.push('\n');
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.path {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a proof strictly. The checkpoint is kept verbatim and is
    /// checked by [`TlogProof::verify`].
    pub fn parse(text: &str) -> Result<Self, TlogProofError> {
        let (head, checkpoint) = text.split_once("\n\n").ok_or(TlogProofError::Malformed(
            "no blank line before the checkpoint",
        ))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(TlogProofError::Malformed(
                "first line must be c2sp.org/tlog-proof@v1",
            ));
        }
        let mut line = lines.next();
        let mut extra = None;
        if let Some(e) = line.and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(
                decode_base64(e)
                    .map_err(|_| TlogProofError::Malformed("extra is not valid base64"))?,
            );
            line = lines.next();
        }
        let index = line
            .and_then(|l| l.strip_prefix("index "))
            .and_then(parse_decimal)
            .ok_or(TlogProofError::Malformed(
                "expected an index line with a decimal without leading zeros",
            ))?;
        let path = lines
            .map(|l| {
                Hash::from_base64(l)
                    .map_err(|_| TlogProofError::Malformed("proof hash must be base64 of 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if path.len() > 64 {
            return Err(TlogProofError::Malformed("more than 64 proof hashes"));
        }
        if checkpoint.is_empty() {
            return Err(TlogProofError::Malformed("missing checkpoint"));
        }
        Ok(TlogProof {
            extra,
            index: LeafIndex(index),
            path,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies offline that `leaf` is at the proof's index in the tree of
    /// a checkpoint signed by `log_key` and cosigned per `policy`.
    pub fn verify(
        &self,
        leaf: &Hash,
        origin: Option<&str>,
        log_key: &NoteVerifier,
        policy: &WitnessPolicy,
    ) -> Result<VerifiedCheckpoint, TlogProofError> {
        let cp = verify_checkpoint(self.checkpoint.as_bytes(), origin, log_key, policy)?;
        verify_inclusion(
            leaf,
            self.index,
            cp.checkpoint.size,
            &self.path,
            &cp.checkpoint.root,
        )?;
        Ok(cp)
    }
}
