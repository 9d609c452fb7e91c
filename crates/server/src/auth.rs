//! Authorization and quotas: bearer tokens with scopes, read visibility,
//! per-identity append rate limits and a per-identity stream cap.
//!
//! **Tokens.** A token file (TOML) holds only SHA-256 hashes of tokens:
//!
//! ```toml
//! [[token]]
//! name = "ingest-eu-1"          # the identity: in logs and quotas
//! sha256 = "<64 hex digits>"    # SHA-256 of the token's UTF-8 bytes
//! scopes = ["append"]           # append, read, admin (implies all but reveal), reveal
//! ```
//!
//! `cairn token new --name N --scopes append,read` prints a fresh token and
//! the entry to add. With several logs, `logs = ["payments", "hr-2026"]`
//! limits an identity (token or certificate) to those logs; without it, an
//! identity may use every log. Clients send `authorization: Bearer <token>`.
//!
//! **Client certificates.** With mTLS (a client CA configured), the same
//! file can name identities by certificate instead of by token:
//!
//! ```toml
//! [[client_cert]]
//! name = "ingest-eu-2"                          # the identity
//! dns_name = "ingest-eu-2.clients.example.com"  # a DNS name the certificate is valid for
//! scopes = ["append"]
//! ```
//!
//! A request without a bearer token whose verified client certificate is
//! valid for a listed `dns_name` (subjectAltName, checked by webpki) acts
//! as that identity. A bearer token, when present, takes precedence.
//!
//! | RPC | scope |
//! |---|---|
//! | `Append`, `AppendStream` | `append` |
//! | `GetCheckpoint`, `GetInclusionProof`, `GetConsistencyProof`, `GetEntries`, `WatchCheckpoints`, HTTP tiles and `/checkpoint` | `read`, unless reads are public |
//! | `/metrics` | `admin`, unless reads are public |
//!
//! | `ListLogs`, `GET /logs` | `read` (a scoped identity sees its logs) |
//! | `FreezeLog`, `Erase` | `admin` |
//! | `Reveal` | `reveal` (not implied by `admin`; every use is recorded in the log) |
//!
//! No credentials → `UNAUTHENTICATED` (HTTP 401); a token without the
//! scope, or scoped to other logs → `PERMISSION_DENIED` (403). Token values are never logged, never
//! echoed, and compared only by hash.
//!
//! **Quotas.** Appends per identity are limited by a token bucket
//! (`rate` per second, `burst` deep); a concurrent-stream cap bounds
//! `AppendStream`s per identity. Both answer `RESOURCE_EXHAUSTED` with a
//! `retry-after-ms` trailer and the same hint in the message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Append events.
    Append,
    /// Read checkpoints, proofs, entries.
    Read,
    /// Everything, and operator endpoints (but not `Reveal`).
    Admin,
    /// Decrypt sealed values (`Reveal`): a separate duty, not implied by
    /// `admin`; every use is recorded in the log.
    Reveal,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<FileToken>,
    #[serde(default)]
    client_cert: Vec<FileCert>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCert {
    name: String,
    dns_name: String,
    scopes: Vec<Scope>,
    logs: Option<Vec<String>>,
}

/// One identity known by its client certificate's DNS name.
#[derive(Clone, Debug)]
struct CertIdentity {
    name: Arc<str>,
    dns_name: rustls_pki_types::ServerName<'static>,
    scopes: Vec<Scope>,
    logs: Option<Arc<[String]>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToken {
    name: String,
    sha256: String,
    scopes: Vec<Scope>,
    logs: Option<Vec<String>>,
}

/// One known token (by hash).
#[derive(Clone, Debug)]
struct Token {
    name: Arc<str>,
    hash: [u8; 32],
    scopes: Vec<Scope>,
    logs: Option<Arc<[String]>>,
}

/// A per-identity append rate limit: `rate` per second, `burst` deep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quota {
    /// Appends per second.
    pub rate: f64,
    /// Appends that may arrive at once.
    pub burst: f64,
}

/// Validated authorization settings.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    tokens: Vec<Token>,
    certs: Vec<CertIdentity>,
    /// Reads need no token.
    pub public_reads: bool,
    /// Appends per second per identity (`None`: unlimited).
    pub rate: Option<f64>,
    /// Bucket depth (appends that may arrive at once).
    pub burst: f64,
    /// Concurrent `AppendStream`s per identity (`0`: unlimited).
    pub max_streams: usize,
}

/// A token file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TokenFileError {
    /// The file.
    pub file: String,
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// What is wrong (never a token value: the file holds none).
    pub message: String,
}

impl AuthConfig {
    /// Parses a token file. `file` labels errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, TokenFileError> {
        let err = |line: usize, message: String| TokenFileError {
            file: file.to_owned(),
            line,
            message,
        };
        let parsed: TokenFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            err(line, e.message().to_owned())
        })?;
        let mut tokens = Vec::new();
        for (i, t) in parsed.token.into_iter().enumerate() {
            let line = text
                .match_indices("[[token]]")
                .nth(i)
                .map_or(0, |(at, _)| text[..at].matches('\n').count() + 1);
            let hash: [u8; 32] = hex_decode(&t.sha256)
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    err(
                        line,
                        format!("token {:?}: sha256 must be 64 hex digits", t.name),
                    )
                })?;
            if t.scopes.is_empty() {
                return Err(err(line, format!("token {:?}: no scopes", t.name)));
            }
            if tokens
                .iter()
                .any(|o: &Token| o.hash == hash || *o.name == *t.name)
            {
                return Err(err(
                    line,
                    format!("token {:?}: duplicate name or hash", t.name),
                ));
            }
            let logs =
                check_logs(&t.logs, &format!("token {:?}", t.name)).map_err(|m| err(line, m))?;
            tokens.push(Token {
                name: t.name.into(),
                hash,
                scopes: t.scopes,
                logs,
            });
        }
        let mut certs: Vec<CertIdentity> = Vec::new();
        for (i, c) in parsed.client_cert.into_iter().enumerate() {
            let line = text
                .match_indices("[[client_cert]]")
                .nth(i)
                .map_or(0, |(at, _)| text[..at].matches('\n').count() + 1);
            let dns_name = rustls_pki_types::ServerName::try_from(c.dns_name.as_str())
                .ok()
                .filter(|n| matches!(n, rustls_pki_types::ServerName::DnsName(_)))
                .map(|n| n.to_owned())
                .ok_or_else(|| {
                    err(
                        line,
                        format!("client_cert {:?}: dns_name is not a DNS name", c.name),
                    )
                })?;
            if c.scopes.is_empty() {
                return Err(err(line, format!("client_cert {:?}: no scopes", c.name)));
            }
            if certs.iter().any(|o| *o.name == *c.name) || tokens.iter().any(|t| *t.name == *c.name)
            {
                return Err(err(
                    line,
                    format!("client_cert {:?}: duplicate name", c.name),
                ));
            }
            let logs = check_logs(&c.logs, &format!("client_cert {:?}", c.name))
                .map_err(|m| err(line, m))?;
            certs.push(CertIdentity {
                name: c.name.into(),
                dns_name,
                scopes: c.scopes,
                logs,
            });
        }
        Ok(AuthConfig {
            tokens,
            certs,
            public_reads: true,
            rate: None,
            burst: 1.0,
            max_streams: 0,
        })
    }

    /// Every log name an identity is scoped to (to warn about typos).
    pub fn log_names(&self) -> impl Iterator<Item = &str> {
        self.tokens
            .iter()
            .filter_map(|t| t.logs.as_deref())
            .chain(self.certs.iter().filter_map(|c| c.logs.as_deref()))
            .flatten()
            .map(String::as_str)
    }

    /// Tokens configured.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Client-certificate identities configured.
    pub fn client_cert_count(&self) -> usize {
        self.certs.len()
    }
}

/// An identity's `logs` list: valid log names, not empty.
fn check_logs(logs: &Option<Vec<String>>, who: &str) -> Result<Option<Arc<[String]>>, String> {
    let Some(logs) = logs else { return Ok(None) };
    if logs.is_empty() {
        return Err(format!(
            "{who}: `logs` is empty (leave it out to allow every log)"
        ));
    }
    for l in logs {
        cairn_log::LogName::new(l).map_err(|e| format!("{who}: {e}"))?;
    }
    Ok(Some(logs.clone().into()))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SHA-256 of a token, hex: what goes in the token file.
pub fn token_hash_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A rate bucket's owner: an identity, in one log or server-wide.
type BucketKey = (Arc<str>, Option<Arc<str>>);

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Checks credentials, scopes and quotas for every request.
pub struct Authorizer {
    cfg: AuthConfig,
    /// By identity, and log when the log has its own rate.
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
    streams: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

/// Who made a request, and the logs it may use (`None`: every log).
#[derive(Clone, Debug)]
pub struct Identity {
    /// The configured name (in logs and quotas).
    pub name: Arc<str>,
    /// The logs it is scoped to, if it is.
    pub logs: Option<Arc<[String]>>,
}

impl Identity {
    /// Whether the identity may use the log `log`.
    pub fn may_use(&self, log: &str) -> bool {
        self.logs
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == log))
    }
}

/// Holds one of an identity's stream slots; frees it when dropped.
pub struct StreamSlot {
    name: Arc<str>,
    streams: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.name) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Why a request was refused by authentication, authorization or a
/// quota. Mapped to gRPC and HTTP in one place (`crate::error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials naming no known identity
    /// (`UNAUTHENTICATED`, HTTP 401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A known identity without the scope (`PERMISSION_DENIED`, 403).
    #[error("identity {name:?} lacks the {need:?} scope")]
    PermissionDenied {
        /// The identity's configured name.
        name: Arc<str>,
        /// The scope the request needs.
        need: Scope,
    },
    /// A known identity scoped to other logs (`PERMISSION_DENIED`, 403).
    #[error("identity {name:?} may not use log {log:?}")]
    LogDenied {
        /// The identity's configured name.
        name: Arc<str>,
        /// The log (a configured name: the request was resolved first).
        log: Arc<str>,
    },
    /// A quota: the append rate or the stream cap (`RESOURCE_EXHAUSTED`,
    /// 429, with a retry hint).
    #[error("{what}; retry in {retry_ms} ms")]
    Exhausted {
        /// Which quota, and whose.
        what: String,
        /// When to retry.
        retry_ms: u64,
    },
}

fn exhausted(what: &str, retry_ms: u64) -> AuthError {
    AuthError::Exhausted {
        what: what.to_owned(),
        retry_ms,
    }
}

impl Authorizer {
    /// An authorizer over validated settings.
    pub fn new(cfg: AuthConfig) -> Self {
        Authorizer {
            cfg,
            buckets: Mutex::new(HashMap::new()),
            streams: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether reads need a token.
    pub fn public_reads(&self) -> bool {
        self.cfg.public_reads
    }

    /// The identity behind an `authorization: Bearer …` value, if it has
    /// `need`: `UNAUTHENTICATED` without a known token, `PERMISSION_DENIED`
    /// without the scope.
    pub fn check_header(&self, header: Option<&str>, need: Scope) -> Result<Identity, AuthError> {
        self.check_credentials(header, None, need)
    }

    /// The identity behind a bearer token or, without one, behind the
    /// verified client certificate `peer` (end-entity first, as rustls
    /// hands it over): `UNAUTHENTICATED` when neither names a known
    /// identity, `PERMISSION_DENIED` without the scope.
    pub fn check_credentials(
        &self,
        header: Option<&str>,
        peer: Option<&[rustls_pki_types::CertificateDer<'_>]>,
        need: Scope,
    ) -> Result<Identity, AuthError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let (name, scopes, logs) = match token {
            Some(token) => {
                let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                let t = self
                    .cfg
                    .tokens
                    .iter()
                    .find(|t| t.hash == hash)
                    .ok_or(AuthError::Unauthenticated("unknown bearer token"))?;
                (&t.name, &t.scopes, &t.logs)
            }
            None => {
                let c = peer
                    .and_then(|chain| chain.first())
                    .and_then(|der| self.cert_identity(der))
                    .ok_or_else(|| {
                        AuthError::Unauthenticated(if peer.is_some_and(|p| !p.is_empty()) {
                            "the client certificate names no known identity and no bearer token was sent"
                        } else {
                            "missing bearer token (authorization: Bearer <token>)"
                        })
                    })?;
                (&c.name, &c.scopes, &c.logs)
            }
        };
        if scopes.contains(&need) || (scopes.contains(&Scope::Admin) && need != Scope::Reveal) {
            Ok(Identity {
                name: name.clone(),
                logs: logs.clone(),
            })
        } else {
            Err(AuthError::PermissionDenied {
                name: name.clone(),
                need,
            })
        }
    }

    /// The configured identity whose DNS name the certificate is valid for.
    fn cert_identity(&self, der: &rustls_pki_types::CertificateDer<'_>) -> Option<&CertIdentity> {
        if self.cfg.certs.is_empty() {
            return None;
        }
        let ee = webpki::EndEntityCert::try_from(der).ok()?;
        self.cfg
            .certs
            .iter()
            .find(|c| ee.verify_is_valid_for_subject_name(&c.dns_name).is_ok())
    }

    /// [`Authorizer::check_credentials`] on a gRPC request; reads pass
    /// without credentials when they are public.
    pub fn check<T>(
        &self,
        req: &tonic::Request<T>,
        need: Scope,
    ) -> Result<Option<Identity>, AuthError> {
        if need == Scope::Read && self.cfg.public_reads {
            return Ok(None);
        }
        let h = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let peer = req.peer_certs();
        self.check_credentials(h, peer.as_deref().map(Vec::as_slice), need)
            .map(Some)
    }

    /// Refuses an identity scoped to other logs (`PERMISSION_DENIED`). An
    /// anonymous caller (open log, public reads) passes.
    pub fn check_log(id: Option<&Identity>, log: &str) -> Result<(), AuthError> {
        match id {
            Some(i) if !i.may_use(log) => Err(AuthError::LogDenied {
                name: i.name.clone(),
                log: log.into(),
            }),
            _ => Ok(()),
        }
    }

    /// Takes `n` appends from the identity's server-wide bucket, or says
    /// when to retry.
    pub fn take(&self, id: Option<&Identity>, n: f64) -> Result<(), AuthError> {
        self.take_in(id, n, None)
    }

    /// Takes `n` appends for the identity: from its bucket in `log` when
    /// that log has its own rate (a `[[log]]` table's `append_rate`), else
    /// from its server-wide bucket.
    pub fn take_in(
        &self,
        id: Option<&Identity>,
        n: f64,
        log: Option<(&Arc<str>, Quota)>,
    ) -> Result<(), AuthError> {
        let Some(id) = id else { return Ok(()) };
        let (rate, burst, key) = match log {
            Some((name, q)) => (q.rate, q.burst, Some(name.clone())),
            None => match self.cfg.rate {
                Some(r) => (r, self.cfg.burst, None),
                None => return Ok(()),
            },
        };
        let mut m = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let burst = burst.max(1.0);
        let b = m.entry((id.name.clone(), key.clone())).or_insert(Bucket {
            tokens: burst,
            at: Instant::now(),
        });
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= n {
            b.tokens -= n;
            Ok(())
        } else {
            let wait = ((n - b.tokens) / rate * 1000.0).ceil() as u64;
            Err(exhausted(
                &match &key {
                    Some(log) => format!("append rate limit for {:?} in log {log:?}", &*id.name),
                    None => format!("append rate limit for {:?}", &*id.name),
                },
                wait.max(1),
            ))
        }
    }

    /// Takes one of the identity's stream slots.
    pub fn open_stream(&self, id: Option<&Identity>) -> Result<Option<StreamSlot>, AuthError> {
        let (Some(id), cap) = (id, self.cfg.max_streams) else {
            return Ok(None);
        };
        if cap == 0 {
            return Ok(None);
        }
        let mut m = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(id.name.clone()).or_default();
        if *n >= cap {
            return Err(exhausted(
                &format!("{:?} already has {cap} open append streams", &*id.name),
                1000,
            ));
        }
        *n += 1;
        Ok(Some(StreamSlot {
            name: id.name.clone(),
            streams: self.streams.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg() -> AuthConfig {
        let text = format!(
            "[[token]]\nname = \"ingest\"\nsha256 = \"{}\"\nscopes = [\"append\"]\n\n[[token]]\nname = \"auditor\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
            token_hash_hex("tok-ingest"),
            token_hash_hex("tok-audit")
        );
        AuthConfig::from_toml("tokens.toml", &text).unwrap()
    }

    #[test]
    fn scopes_and_errors() {
        let mut c = cfg();
        c.public_reads = false;
        let a = Authorizer::new(c);
        assert!(matches!(
            a.check_header(None, Scope::Append).unwrap_err(),
            AuthError::Unauthenticated(_)
        ));
        assert!(matches!(
            a.check_header(Some("Bearer nope"), Scope::Append)
                .unwrap_err(),
            AuthError::Unauthenticated(_)
        ));
        assert_eq!(
            &*a.check_header(Some("Bearer tok-ingest"), Scope::Append)
                .unwrap()
                .name,
            "ingest"
        );
        let e = a
            .check_header(Some("Bearer tok-ingest"), Scope::Read)
            .unwrap_err();
        assert!(matches!(e, AuthError::PermissionDenied { .. }));
        assert!(!e.to_string().contains("tok-ingest"));
        assert!(
            a.check_header(Some("Bearer tok-audit"), Scope::Read)
                .is_ok()
        );
    }

    /// `logs = [...]` limits an identity to those logs; without it, every
    /// log. A bad log name or an empty list is refused with its line.
    #[test]
    fn identities_scoped_to_logs() {
        let text = format!(
            "[[token]]\nname = \"pay\"\nsha256 = \"{}\"\nscopes = [\"append\"]\nlogs = [\"payments\"]\n\n[[token]]\nname = \"all\"\nsha256 = \"{}\"\nscopes = [\"append\"]\n",
            token_hash_hex("tok-pay"),
            token_hash_hex("tok-all")
        );
        let cfg = AuthConfig::from_toml("t.toml", &text).unwrap();
        assert_eq!(cfg.log_names().collect::<Vec<_>>(), ["payments"]);
        let a = Authorizer::new(cfg);
        let pay = a
            .check_header(Some("Bearer tok-pay"), Scope::Append)
            .unwrap();
        let all = a
            .check_header(Some("Bearer tok-all"), Scope::Append)
            .unwrap();
        assert!(Authorizer::check_log(Some(&pay), "payments").is_ok());
        let e = Authorizer::check_log(Some(&pay), "hr").unwrap_err();
        assert_eq!(e.to_string(), "identity \"pay\" may not use log \"hr\"");
        assert!(Authorizer::check_log(Some(&all), "hr").is_ok());
        assert!(Authorizer::check_log(None, "hr").is_ok());
        for (bad, why) in [
            ("logs = []", "is empty"),
            ("logs = [\"Bad Name\"]", "log name"),
        ] {
            let t = format!(
                "[[token]]\nname = \"x\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n{bad}\n",
                token_hash_hex("t")
            );
            let e = AuthConfig::from_toml("t.toml", &t).unwrap_err();
            assert!(e.to_string().contains(why) && e.line == 1, "{e}");
        }
    }

    /// A log's own rate is a separate bucket per identity: spending it
    /// leaves the server-wide one (and other logs) untouched, and the
    /// refusal names the log.
    #[test]
    fn per_log_rates_have_their_own_buckets() {
        let mut cfg = cfg();
        cfg.rate = Some(1000.0);
        cfg.burst = 1000.0;
        let a = Authorizer::new(cfg);
        let id = Identity {
            name: "ingest".into(),
            logs: None,
        };
        let hr: Arc<str> = "hr".into();
        let q = Quota {
            rate: 0.001,
            burst: 2.0,
        };
        a.take_in(Some(&id), 2.0, Some((&hr, q))).unwrap();
        let e = a.take_in(Some(&id), 1.0, Some((&hr, q))).unwrap_err();
        assert!(e.to_string().contains("in log \"hr\""), "{e}");
        a.take(Some(&id), 500.0).unwrap();
        let pay: Arc<str> = "payments".into();
        a.take_in(Some(&id), 2.0, Some((&pay, q))).unwrap();
        // Anonymous callers (an open server) are never limited.
        a.take_in(None, 1e9, Some((&hr, q))).unwrap();
    }

    #[test]
    fn token_file_errors_name_the_line() {
        let e = AuthConfig::from_toml(
            "t.toml",
            "[[token]]\nname = \"a\"\nsha256 = \"xyz\"\nscopes = [\"append\"]\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.file.as_str()), (1, "t.toml"));
        assert!(e.message.contains("64 hex"), "{e}");
        let e = AuthConfig::from_toml(
            "t.toml",
            "[[token]]\nname = \"a\"\nsha256 = \"00\"\nscopes = [\"fly\"]\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn bucket_and_stream_cap() {
        let mut c = cfg();
        c.rate = Some(10.0);
        c.burst = 5.0;
        c.max_streams = 1;
        let a = Authorizer::new(c);
        let id = Identity {
            name: "ingest".into(),
            logs: None,
        };
        for _ in 0..5 {
            a.take(Some(&id), 1.0).unwrap();
        }
        let e = a.take(Some(&id), 1.0).unwrap_err();
        assert!(matches!(e, AuthError::Exhausted { retry_ms, .. } if retry_ms > 0));
        let slot = a.open_stream(Some(&id)).unwrap();
        assert!(a.open_stream(Some(&id)).is_err());
        drop(slot);
        assert!(a.open_stream(Some(&id)).is_ok());
    }
}
