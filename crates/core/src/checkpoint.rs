//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): the signed
//! tree head, and its verification against a log key and a witness policy.
//!
//! ```text
//! <origin>\n                  non-empty, unique log identity
//! <tree size>\n               ASCII decimal, no leading zeros
//! <root hash>\n               standard base64 of 32 bytes
//! [<extension line>\n]…       optional, non-empty, preserved verbatim
//! ```

use crate::encoding::parse_decimal;
use crate::hash::{Hash, TreeSize};
use crate::note::{KeyType, Note, NoteError, NoteSigner, NoteVerifier, VerifiedSignature};

/// A checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: TreeSize,
    /// Tree root.
    pub root: Hash,
    /// Extension lines, without their newlines, in order.
    pub extensions: Vec<String>,
}

/// A checkpoint could not be parsed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note around it is malformed or badly signed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body is not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The origin is not the one expected.
    #[error("checkpoint origin {got:?} is not the expected {expected:?}")]
    OriginMismatch {
        /// Expected origin.
        expected: String,
        /// Origin found.
        got: String,
    },
    /// The log's own signature is missing.
    #[error("checkpoint is not signed by the log key {0}")]
    MissingLogSignature(String),
    /// Too few witnesses cosigned.
    #[error("checkpoint has {got} valid witness cosignatures, policy needs {need}")]
    Quorum {
        /// The policy's quorum.
        need: usize,
        /// Valid cosignatures by distinct policy witnesses.
        got: usize,
    },
}

impl Checkpoint {
    /// Parses a checkpoint body strictly.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin line"));
        }
        if origin.chars().any(char::is_control) {
            return Err(CheckpointError::Malformed("control character in origin"));
        }
        let size = lines
            .next()
            .and_then(parse_decimal)
            .ok_or(CheckpointError::Malformed(
                "tree size must be a decimal without leading zeros",
            ))?;
        let root = lines
            .next()
            .ok_or(CheckpointError::Malformed("missing root hash line"))
            .and_then(|l| {
                Hash::from_base64(l)
                    .map_err(|_| CheckpointError::Malformed("root hash must be base64 of 32 bytes"))
            })?;
        let mut extensions = Vec::new();
        for l in lines {
            if l.is_empty() {
                return Err(CheckpointError::Malformed("empty extension line"));
            }
            if l.chars().any(char::is_control) {
                return Err(CheckpointError::Malformed(
                    "control character in extension line",
                ));
            }
            extensions.push(l.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size: TreeSize(size),
            root,
            extensions,
        })
    }

    /// The body text, each line ending in `\n`.
    pub fn to_body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Signs the body with the log key: the signed note, serialized.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, CheckpointError> {
        let mut note = Note::new(self.to_body())?;
        note.sign(signer)?;
        Ok(note.to_string())
    }
}

/// A k-of-n witness policy: at least `quorum` of `witnesses` must cosign.
/// `quorum == 0` accepts a checkpoint with no cosignatures.
#[derive(Clone, Debug, Default)]
pub struct WitnessPolicy {
    /// Witness cosignature keys (type 0x04).
    pub witnesses: Vec<NoteVerifier>,
    /// Distinct witnesses needed.
    pub quorum: usize,
}

/// A checkpoint whose log signature, origin and witness quorum checked out.
#[derive(Clone, Debug)]
pub struct VerifiedCheckpoint {
    /// The body.
    pub checkpoint: Checkpoint,
    /// The note, with every signature line as received.
    pub note: Note,
    /// Policy witnesses whose cosignatures verified, with their timestamps.
    pub cosignatures: Vec<VerifiedSignature>,
}

/// Verifies a signed checkpoint: strict note syntax, a valid signature by
/// `log_key`, the expected `origin` (the log key's name when `None`), and
/// the witness `policy`. Any failing signature by a known key rejects it.
pub fn verify_checkpoint(
    note_bytes: &[u8],
    origin: Option<&str>,
    log_key: &NoteVerifier,
    policy: &WitnessPolicy,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = Note::parse(note_bytes)?;
    let checkpoint = Checkpoint::parse(note.text())?;
    let expected = origin.unwrap_or(log_key.name());
    if checkpoint.origin != expected {
        return Err(CheckpointError::OriginMismatch {
            expected: expected.to_owned(),
            got: checkpoint.origin.clone(),
        });
    }
    let mut known = Vec::with_capacity(1 + policy.witnesses.len());
    known.push(log_key.clone());
    known.extend(policy.witnesses.iter().cloned());
    let verified = match note.verify(&known) {
        Ok(v) => v,
        Err(NoteError::Unverified) => {
            return Err(CheckpointError::MissingLogSignature(log_key.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if !verified
        .iter()
        .any(|v| v.name == log_key.name() && v.key_id == log_key.key_id())
    {
        return Err(CheckpointError::MissingLogSignature(log_key.to_string()));
    }
    let cosignatures: Vec<VerifiedSignature> = verified
        .into_iter()
        .filter(|v| v.key_type == KeyType::Cosignature)
        .collect();
    if cosignatures.len() < policy.quorum {
        return Err(CheckpointError::Quorum {
            need: policy.quorum,
            got: cosignatures.len(),
        });
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        note,
        cosignatures,
    })
}
