//! The C2SP tlog-witness wire format (<https://c2sp.org/tlog-witness>):
//! the `add-checkpoint` request body, its limits, and the content type of
//! a 409 answer. Parsing and encoding only; the witness's checks and state
//! live with the verifying side (`cairn-client`), the transports in the
//! server.
//!
//! Request body:
//!
//! ```text
//! old <size>\n                 decimal, no leading zeros
//! <base64 hash>\n …            0..=63 consistency proof lines
//! \n
//! <signed checkpoint note>
//! ```

use crate::encoding::parse_decimal;
use crate::hash::Hash;

/// At most this many consistency proof lines ("The client MUST NOT send
/// more than 63 consistency proof lines").
pub const MAX_PROOF_LINES: usize = 63;
/// Largest request body a Cairn witness accepts.
pub const MAX_BODY: usize = 64 * 1024;
/// Content type of a 409 answer's body (the latest cosigned size).
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// An `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the submitter believes the witness last cosigned.
    pub old: u64,
    /// Consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

/// A body that is not a well-formed `add-checkpoint` request (the witness
/// answers 400). The message names the rule, never the body's content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedRequest(pub &'static str);

impl AddCheckpoint {
    /// Parses a request body strictly.
    pub fn parse(body: &[u8]) -> Result<Self, MalformedRequest> {
        if body.len() > MAX_BODY {
            return Err(MalformedRequest("request body too large"));
        }
        let s = std::str::from_utf8(body).map_err(|_| MalformedRequest("body is not UTF-8"))?;
        let (head, note) = s
            .split_once("\n\n")
            .ok_or(MalformedRequest("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(parse_decimal)
            .ok_or(MalformedRequest("first line must be `old <size>`"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(MalformedRequest("more than 63 proof lines"));
            }
            proof.push(
                Hash::from_base64(l)
                    .map_err(|_| MalformedRequest("proof line is not base64 of 32 bytes"))?,
            );
        }
        Ok(AddCheckpoint {
            old,
            proof,
            note: note.to_owned(),
        })
    }

    /// The request body.
    pub fn encode(&self) -> String {
        let mut s = format!("old {}\n", self.old);
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_the_spec_limits() {
        let r = AddCheckpoint {
            old: 4,
            proof: vec![Hash([1; 32]), Hash([2; 32])],
            note: "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— o AAAA\n".into(),
        };
        assert_eq!(AddCheckpoint::parse(r.encode().as_bytes()).unwrap(), r);
        let proof_line = format!("{}\n", Hash([3; 32]).to_base64());
        let body = |lines: usize| format!("old 1\n{}\nnote", proof_line.repeat(lines));
        assert_eq!(
            AddCheckpoint::parse(body(63).as_bytes())
                .unwrap()
                .proof
                .len(),
            63
        );
        assert_eq!(
            AddCheckpoint::parse(body(64).as_bytes()).unwrap_err(),
            MalformedRequest("more than 63 proof lines")
        );
        for bad in ["old 01\n\nx", "old 1", "new 1\n\nx", "old -1\n\nx"] {
            assert!(AddCheckpoint::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(AddCheckpoint::parse(&vec![b'a'; MAX_BODY + 1]).is_err());
    }
}
