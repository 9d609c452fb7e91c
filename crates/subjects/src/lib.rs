//! `cairn-subjects`: the subject key store behind the `encrypt` masking
//! action (docs/design/erasure.md).
//!
//! Each data subject's values are sealed under that subject's own 256-bit
//! data key. The store keeps each key **wrapped** under a key-encryption key
//! ([`KeyWrap`]; [`LocalKek`] from a file or an environment variable, a KMS
//! later), in **one file per subject**, so erasing a subject is deleting one
//! file: no compaction, WAL or manifest of a database can keep a copy.
//!
//! ```text
//! <dir>/token.key        the subject-token HMAC key, wrapped (created once)
//! <dir>/keys/<key id>    a subject's data key, wrapped
//! <dir>/erased/<key id>  "erased at index N" (or "pending"): no key material
//! ```
//!
//! A subject is named on disk and in leaves only by its key id,
//! `base64url(HMAC-SHA-256(token key, origin 0x00 identifier)[..16])`: the
//! identifier itself is never stored, and without the token key (wrapped
//! under the KEK) a key id cannot be linked to a guessed identifier.
//!
//! **Durability.** A new key's file is written, synced, linked into place
//! create-only and its directory synced before [`SubjectStore::data_key`]
//! returns, so no acknowledged leaf holds a ciphertext whose key could be
//! lost by a crash. Erasure writes the tombstone (synced), then unlinks the
//! key file and syncs the directory: a crash in between leaves the key
//! marked erased (never revealed again) and the unlink is redone by
//! [`SubjectStore::erase`] on retry.
//!
//! **Concurrency.** One process per key store (as one writer per log); the
//! store serialises creation and erasure with a mutex and caches unwrapped
//! keys in memory (zeroized on eviction and drop).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use cairn_masking::seal::{DataKey, KeyId, SubjectKeyError, SubjectKeys};
use cairn_storage::durable;
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

/// What went wrong. Never holds a key, a subject identifier or a path's
/// contents (paths are the operator's own configuration).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key-encryption key could not be loaded.
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// A file could not be read or written.
    #[error("subject key store {path}: {what}")]
    Io {
        /// The file or folder.
        path: String,
        /// The OS error's kind (no OS text that could echo input).
        what: String,
    },
    /// A wrapped key does not open under this KEK (wrong KEK, or tampered).
    #[error(
        "subject key store {path}: the wrapped key does not open under this key-encryption key"
    )]
    Unwrap {
        /// The file.
        path: String,
    },
}

fn io(path: &Path, e: &std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        what: format!("{:?}", e.kind()),
    }
}

/// Wraps and unwraps data keys: the key-encryption key's side. A KMS
/// plugs in here; the store never sees the KEK itself.
pub trait KeyWrap: Send + Sync {
    /// Encrypts `key`, bound to `label` (the key id, or `"token"`).
    fn wrap(&self, label: &str, key: &[u8; 32]) -> Vec<u8>;
    /// Decrypts what [`KeyWrap::wrap`] made for `label`; `None` if it does
    /// not open.
    fn unwrap(&self, label: &str, blob: &[u8]) -> Option<DataKey>;
}

/// A local 256-bit KEK: AES-256-GCM-SIV, random 96-bit nonce per wrap,
/// associated data `"cairn-kek/v1" 0x00 label`.
pub struct LocalKek {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalKek(..)")
    }
}

/// The environment variable a KEK may come from (base64 of 32 bytes).
pub const KEK_ENV: &str = "CAIRN_KEK";

impl LocalKek {
    /// From raw bytes.
    pub fn new(key: [u8; 32]) -> Self {
        LocalKek {
            key: Zeroizing::new(key),
        }
    }

    /// A fresh random KEK, as base64 (for `cairn subjects new-kek`).
    pub fn generate_base64() -> Result<Zeroizing<String>, Error> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *k).map_err(|e| Error::Kek(format!("no OS randomness: {e}")))?;
        Ok(Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(*k),
        ))
    }

    /// From base64 text (a file's content or the environment variable).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| Error::Kek("not valid base64".into()))?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Kek(format!("must be 32 bytes, got {}", bytes.len())))?;
        Ok(LocalKek::new(key))
    }

    /// From a file readable by its owner only (mode 0600 or stricter).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(path).map_err(|e| io(path, &e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(Error::Kek(format!(
                    "{} must be readable by its owner only (chmod 600)",
                    path.display()
                )));
            }
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| io(path, &e))?);
        LocalKek::from_base64(&text).map_err(|e| Error::Kek(format!("{}: {e}", path.display())))
    }

    fn aad(label: &str) -> Vec<u8> {
        let mut a = b"cairn-kek/v1\0".to_vec();
        a.extend_from_slice(label.as_bytes());
        a
    }
}

impl KeyWrap for LocalKek {
    fn wrap(&self, label: &str, key: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        // Without OS randomness no key can be made safely: an all-zero
        // nonce is still safe with GCM-SIV (misuse resistant), and
        // creating the data key itself fails first (`random_key`).
        let _ = getrandom::fill(&mut nonce);
        let c = Aes256GcmSiv::new((&*self.key).into());
        let ct = c
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: key,
                    aad: &Self::aad(label),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    fn unwrap(&self, label: &str, blob: &[u8]) -> Option<DataKey> {
        if blob.len() != 12 + 32 + 16 {
            return None;
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let c = Aes256GcmSiv::new((&*self.key).into());
        let pt = Zeroizing::new(
            c.decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: &Self::aad(label),
                },
            )
            .ok()?,
        );
        let key: [u8; 32] = pt.as_slice().try_into().ok()?;
        Some(Zeroizing::new(key))
    }
}

/// A key id's state in the store.
pub enum KeyState {
    /// The key (unwrapped).
    Live(DataKey),
    /// Erased; the index of the erasure record, once it was written.
    Erased(Option<u64>),
    /// Never created here.
    Unknown,
}

/// Cached unwrapped keys at most (then the cache starts over).
const CACHE_MAX: usize = 100_000;

/// The subject key store of one log.
pub struct SubjectStore {
    dir: PathBuf,
    origin: String,
    wrap: Box<dyn KeyWrap>,
    token_key: Zeroizing<[u8; 32]>,
    state: Mutex<HashMap<KeyId, DataKey>>,
}

impl std::fmt::Debug for SubjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *k).map_err(|e| Error::Kek(format!("no OS randomness: {e}")))?;
    Ok(k)
}

/// Writes `bytes` to `path` durably and create-only: a temporary file,
/// synced, hard-linked to `path` (fails if it exists), the directory
/// synced. Returns false if `path` already existed.
fn create_durable(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    durable::create_new(path, bytes, 0o600).map_err(|e| io(path, &e))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    durable::sync_dir(dir).map_err(|e| io(dir, &e))
}

fn make_dir(dir: &Path) -> Result<(), Error> {
    durable::create_dir_all_mode(dir, 0o700).map_err(|e| io(dir, &e))
}

impl SubjectStore {
    /// Opens (or creates) the key store in `dir` for the log `origin`.
    pub fn open(dir: &Path, origin: &str, wrap: Box<dyn KeyWrap>) -> Result<Self, Error> {
        make_dir(&dir.join("keys"))?;
        make_dir(&dir.join("erased"))?;
        let tpath = dir.join("token.key");
        let token_key = match fs::read(&tpath) {
            Ok(blob) => wrap.unwrap("token", &blob).ok_or_else(|| Error::Unwrap {
                path: tpath.display().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = random_key()?;
                if !create_durable(&tpath, &wrap.wrap("token", &k))? {
                    // Created concurrently: use that one.
                    return SubjectStore::open(dir, origin, wrap);
                }
                k
            }
            Err(e) => return Err(io(&tpath, &e)),
        };
        Ok(SubjectStore {
            dir: dir.to_owned(),
            origin: origin.to_owned(),
            wrap,
            token_key,
            state: Mutex::new(HashMap::new()),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A subject's key id (see the module docs).
    #[allow(clippy::expect_used)]
    pub fn key_id(&self, subject: &str) -> KeyId {
        // HMAC takes keys of any length (RFC 2104 §2): `new_from_slice`
        // only fails for fixed-length MACs, so this expect cannot fire.
        let mut m = <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&*self.token_key)
            .expect("HMAC accepts any key length");
        m.update(b"cairn-subject/v1\0");
        m.update(self.origin.as_bytes());
        m.update(b"\0");
        m.update(subject.as_bytes());
        let full: [u8; 32] = m.finalize().into_bytes().into();
        let mut b = [0u8; 16];
        b.copy_from_slice(&full[..16]);
        KeyId::from_bytes(&b)
    }

    fn key_path(&self, kid: &KeyId) -> PathBuf {
        self.dir.join("keys").join(kid.as_str())
    }

    fn tomb_path(&self, kid: &KeyId) -> PathBuf {
        self.dir.join("erased").join(kid.as_str())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, DataKey>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The erasure state of `kid`: `None` if not erased.
    fn tombstone(&self, kid: &KeyId) -> Result<Option<Option<u64>>, Error> {
        let p = self.tomb_path(kid);
        match fs::read_to_string(&p) {
            Ok(t) => Ok(Some(
                t.trim()
                    .strip_prefix("erased at index ")
                    .and_then(|n| n.parse().ok()),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p, &e)),
        }
    }

    /// The data key of `subject`, created on first use; `None` if the
    /// subject was erased (an erased subject stays erased: new values are
    /// not sealed under a new key).
    pub fn data_key(&self, subject: &str) -> Result<Option<(KeyId, DataKey)>, Error> {
        let kid = self.key_id(subject);
        let mut cache = self.lock();
        if let Some(k) = cache.get(&kid) {
            return Ok(Some((kid, Zeroizing::new(**k))));
        }
        match self.load(&kid)? {
            KeyState::Live(k) => {
                let out = Zeroizing::new(*k);
                remember(&mut cache, kid.clone(), k);
                return Ok(Some((kid, out)));
            }
            KeyState::Erased(_) => return Ok(None),
            KeyState::Unknown => {}
        }
        let k = random_key()?;
        let path = self.key_path(&kid);
        if !create_durable(&path, &self.wrap.wrap(kid.as_str(), &k))? {
            // Another handle made it first: use the file's key.
            drop(cache);
            return self.data_key(subject);
        }
        let out = Zeroizing::new(*k);
        remember(&mut cache, kid.clone(), k);
        Ok(Some((kid, out)))
    }

    fn load(&self, kid: &KeyId) -> Result<KeyState, Error> {
        if let Some(at) = self.tombstone(kid)? {
            return Ok(KeyState::Erased(at));
        }
        let path = self.key_path(kid);
        match fs::read(&path) {
            Ok(blob) => self
                .wrap
                .unwrap(kid.as_str(), &blob)
                .map(KeyState::Live)
                .ok_or(Error::Unwrap {
                    path: path.display().to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyState::Unknown),
            Err(e) => Err(io(&path, &e)),
        }
    }

    /// The key of a key id found in a leaf (for reveal).
    pub fn key(&self, kid: &KeyId) -> Result<KeyState, Error> {
        let cache = self.lock();
        if let Some(k) = cache.get(kid) {
            return Ok(KeyState::Live(Zeroizing::new(**k)));
        }
        drop(cache);
        self.load(kid)
    }

    /// Destroys `subject`'s key: the tombstone first (synced), then the
    /// key file is unlinked and the folder synced. Idempotent. Returns the
    /// key id and whether a key existed.
    pub fn erase(&self, subject: &str) -> Result<(KeyId, bool), Error> {
        let kid = self.key_id(subject);
        let mut cache = self.lock();
        if self.tombstone(&kid)?.is_none() {
            let tomb = self.tomb_path(&kid);
            create_durable(&tomb, b"pending\n")?;
        }
        let path = self.key_path(&kid);
        let existed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&path, &e)),
        };
        sync_dir(&self.dir.join("keys"))?;
        // Dropping the cached key zeroizes it.
        cache.remove(&kid);
        tracing::info!(subject = %kid, existed, "subject key destroyed");
        Ok((kid, existed))
    }

    /// Records the erasure record's index in the tombstone.
    pub fn erased_at(&self, kid: &KeyId, index: u64) -> Result<(), Error> {
        let _cache = self.lock();
        let tomb = self.tomb_path(kid);
        let tmp = self.dir.join("erased").join(format!(".{kid}.tmp"));
        fs::write(&tmp, format!("erased at index {index}\n")).map_err(|e| io(&tmp, &e))?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&tmp, &e))?;
        fs::rename(&tmp, &tomb).map_err(|e| io(&tomb, &e))?;
        sync_dir(&self.dir.join("erased"))
    }

    /// Every wrapped key file left (for audits and the erasure test).
    pub fn wrapped_keys(&self) -> Result<Vec<(KeyId, Vec<u8>)>, Error> {
        let dir = self.dir.join("keys");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io(&dir, &e))? {
            let e = e.map_err(|e| io(&dir, &e))?;
            let name = e.file_name();
            let Some(kid) = name.to_str().and_then(KeyId::parse) else {
                continue;
            };
            let blob = fs::read(e.path()).map_err(|err| io(&e.path(), &err))?;
            out.push((kid, blob));
        }
        Ok(out)
    }

    /// Unwraps a blob from [`SubjectStore::wrapped_keys`] under this
    /// store's KEK, for key id `kid`.
    pub fn unwrap(&self, kid: &KeyId, blob: &[u8]) -> Option<DataKey> {
        self.wrap.unwrap(kid.as_str(), blob)
    }
}

/// Rewraps a whole key store under a new KEK into a new folder (KEK
/// rotation, with the server stopped): the token key and every data key
/// are unwrapped with `old` and wrapped with `new`; tombstones are copied.
/// The old folder is left as it was, so a crash midway leaves a complete
/// old store and a partial new one (start again); point `subject_keys`
/// at `out` once this returns, then delete the old folder. Key ids and
/// leaves do not change. Returns the number of data keys rewrapped.
pub fn rewrap(
    dir: &Path,
    old: &dyn KeyWrap,
    out: &Path,
    new: &dyn KeyWrap,
) -> Result<usize, Error> {
    if out.exists() {
        return Err(Error::Io {
            path: out.display().to_string(),
            what: "already exists (rewrap writes a new folder)".into(),
        });
    }
    let unwrap = |label: &str, path: &Path| -> Result<DataKey, Error> {
        let blob = fs::read(path).map_err(|e| io(path, &e))?;
        old.unwrap(label, &blob).ok_or(Error::Unwrap {
            path: path.display().to_string(),
        })
    };
    make_dir(&out.join("keys"))?;
    make_dir(&out.join("erased"))?;
    let token = unwrap("token", &dir.join("token.key"))?;
    create_durable(&out.join("token.key"), &new.wrap("token", &token))?;
    let mut n = 0;
    let keys = dir.join("keys");
    for e in fs::read_dir(&keys).map_err(|e| io(&keys, &e))? {
        let e = e.map_err(|e| io(&keys, &e))?;
        let Some(kid) = e.file_name().to_str().and_then(KeyId::parse) else {
            continue;
        };
        let k = unwrap(kid.as_str(), &e.path())?;
        create_durable(
            &out.join("keys").join(kid.as_str()),
            &new.wrap(kid.as_str(), &k),
        )?;
        n += 1;
    }
    let erased = dir.join("erased");
    for e in fs::read_dir(&erased).map_err(|e| io(&erased, &e))? {
        let e = e.map_err(|e| io(&erased, &e))?;
        let Some(kid) = e.file_name().to_str().and_then(KeyId::parse) else {
            continue;
        };
        let text = fs::read(e.path()).map_err(|err| io(&e.path(), &err))?;
        create_durable(&out.join("erased").join(kid.as_str()), &text)?;
    }
    Ok(n)
}

fn remember(cache: &mut HashMap<KeyId, DataKey>, kid: KeyId, k: DataKey) {
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(kid, k);
}

/// The store as the masker's key source.
pub struct Keys<'a>(pub &'a SubjectStore);

impl SubjectKeys for Keys<'_> {
    fn data_key(&mut self, subject: &str) -> Result<Option<(KeyId, DataKey)>, SubjectKeyError> {
        self.0
            .data_key(subject)
            .map_err(|e| SubjectKeyError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> SubjectStore {
        SubjectStore::open(dir, "example.com/log", Box::new(LocalKek::new([9; 32]))).unwrap()
    }

    #[test]
    fn keys_are_stable_per_subject_and_survive_reopening() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let (a, ka) = s.data_key("ana@example.com").unwrap().unwrap();
        let (b, kb) = s.data_key("bo@example.com").unwrap().unwrap();
        assert_ne!(a, b);
        assert_ne!(*ka, *kb);
        drop(s);
        let s = store(d.path());
        let (a2, ka2) = s.data_key("ana@example.com").unwrap().unwrap();
        assert_eq!((a, *ka), (a2, *ka2));
        // The identifier is in no file name and no file.
        for e in walk(d.path()) {
            assert!(!e.to_string_lossy().contains("ana"));
            let bytes = fs::read(&e).unwrap();
            assert!(!bytes.windows(3).any(|w| w == b"ana"));
        }
    }

    #[test]
    fn erasure_destroys_the_key_file_and_stays() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let (kid, k) = s.data_key("ana").unwrap().unwrap();
        let blob = fs::read(s.key_path(&kid)).unwrap();
        let (kid2, existed) = s.erase("ana").unwrap();
        assert_eq!((kid2.clone(), existed), (kid.clone(), true));
        assert!(matches!(s.key(&kid).unwrap(), KeyState::Erased(None)));
        s.erased_at(&kid, 41).unwrap();
        assert!(matches!(s.key(&kid).unwrap(), KeyState::Erased(Some(41))));
        // Neither the key nor its wrapped form is in any file.
        for e in walk(d.path()) {
            let bytes = fs::read(&e).unwrap();
            assert!(!bytes.windows(32).any(|w| w == &k[..]));
            assert!(!bytes.windows(blob.len()).any(|w| w == &blob[..]));
        }
        // New values of an erased subject are not sealed.
        assert!(s.data_key("ana").unwrap().is_none());
        let s = store(d.path());
        assert!(s.data_key("ana").unwrap().is_none());
        assert!(!s.erase("ana").unwrap().1);
    }

    #[test]
    fn rewrap_moves_every_key_under_a_new_kek_and_keeps_tombstones() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let (a, ka) = s.data_key("ana").unwrap().unwrap();
        s.data_key("bo").unwrap().unwrap();
        s.erase("bo").unwrap();
        drop(s);
        let out = d.path().join("rotated");
        let (old, new) = (LocalKek::new([9; 32]), LocalKek::new([10; 32]));
        assert_eq!(rewrap(d.path(), &old, &out, &new).unwrap(), 1);
        // Refuses to write over a folder.
        assert!(rewrap(d.path(), &old, &out, &new).is_err());
        let s2 =
            SubjectStore::open(&out, "example.com/log", Box::new(LocalKek::new([10; 32]))).unwrap();
        // The same ids (same token key) and the same data keys.
        let (a2, ka2) = s2.data_key("ana").unwrap().unwrap();
        assert_eq!((a, *ka), (a2, *ka2));
        assert!(s2.data_key("bo").unwrap().is_none(), "still erased");
        // The old KEK no longer opens the new folder.
        assert!(
            SubjectStore::open(&out, "example.com/log", Box::new(LocalKek::new([9; 32]))).is_err()
        );
    }

    #[test]
    fn a_wrong_kek_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        drop(store(d.path()));
        let e = SubjectStore::open(
            d.path(),
            "example.com/log",
            Box::new(LocalKek::new([1; 32])),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not open"), "{e}");
    }

    #[test]
    fn kek_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("kek");
        fs::write(&p, &*LocalKek::generate_base64().unwrap()).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            LocalKek::from_file(&p)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        LocalKek::from_file(&p).unwrap();
        assert!(LocalKek::from_base64("c2hvcnQ=").is_err());
    }

    fn walk(d: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
