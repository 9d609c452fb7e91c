//! `cairn-storage-s3`: a Cairn log in an S3-compatible bucket (AWS S3,
//! Cloudflare R2, Ceph RGW, MinIO…), through the `object_store` crate.
//!
//! # Layout
//!
//! Under the configured prefix, the bucket is itself a C2SP tlog-tiles
//! endpoint (a client, or a CDN, can read the log straight from it):
//!
//! | object | what | written |
//! |---|---|---|
//! | `tile/<L>/<N>[.p/<W>]` | hash tiles | create-only |
//! | `tile/entries/<N>[.p/<W>]` | entry bundles | create-only |
//! | `checkpoint` | the latest signed checkpoint | overwritten, after the commit point |
//! | `.cairn/batch/<start>` | a sequenced batch: entries, leaf hashes, idempotency records, tile hashes, the new tree | create-only |
//! | `.cairn/idempotency/<start>` | a batch's idempotency records | create-only |
//! | `.cairn/checkpoints/<size>` | every signed checkpoint | create-only |
//! | `.cairn/state` | the commit point: tree size, frontier, latest checkpoint | compare-and-swap (`If-Match`) |
//!
//! # Life of a batch, and what a crash or a zombie leaves at each step
//!
//! 1. **Sequence**: `.cairn/batch/<start>` is written create-only
//!    (`If-None-Match: *`), `start` being the committed size. Exactly one
//!    writer wins a start. A loser whose bytes differ has been fenced
//!    ([`StoreError::Fenced`]: it stops writing, loudly). A crash after this
//!    step leaves a sequenced batch that no client was told about; the next
//!    writer to open the store completes it (step 2 and 3) before anything
//!    else, exactly as a database replays its write-ahead log.
//! 2. **Tiles and bundles** are written create-only. Everything in them is
//!    determined by the batch object and the committed tree, so a second
//!    writer completing the same batch writes the same bytes: an object
//!    that exists with identical bytes counts as written; different bytes
//!    mean two histories (fenced, never signed).
//! 3. **Commit point**: `.cairn/state` is replaced with `If-Match` on the
//!    ETag this writer last saw. Only then is the batch durable for
//!    Cairn. A writer whose ETag is stale (another writer committed since)
//!    gets 412: it is fenced and stops; nothing it did is visible, because
//!    every read path starts from `.cairn/state`.
//! 4. **Checkpoint** ([`LogStore::put_checkpoint`], after the log signed
//!    the tree that step 3 committed): `.cairn/checkpoints/<size>`
//!    create-only, its own commit point (a second, different note for a
//!    size is refused). The state object carries the latest checkpoint from
//!    the next commit on; at open the one at the committed size is looked
//!    up directly. A zombie never gets here: its step 3 failed, and the log
//!    stopped. The public `checkpoint` object is written in the background
//!    by one task (never a newer one overwritten by an older); it may lag
//!    after a crash, until the next checkpoint.
//!
//! Safety never depends on timing or leases: the conditional writes alone
//! keep two writers from both extending the log. At open, the store checks
//! that the bucket honours them at all (some stores ignore the headers):
//! a store that lets two create-only writes of one key both succeed is
//! refused.
//!
//! # Caches
//!
//! The leaf-hash and idempotency indexes and every hash tile are kept in
//! memory, rebuilt from the bucket at open (level-0 tiles carry the leaf
//! hashes: storage never hashes). Entry bundles are read from the bucket.

#![forbid(unsafe_code)]

mod codec;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use cairn_core::hash::{Hash, LeafIndex, TreeSize};
use cairn_core::tile::{TILE_WIDTH, Tile, encode_entry_bundle, entries_path, parse_entry_bundle};
use cairn_core::tree::TreeState;
use cairn_storage::verify::{check_checkpoint_request, validate_batch, verify_state};
use cairn_storage::{
    CommitBatch, IdempotencyKey, IdempotencyRecord, LoadedState, LogStore, MemIndex, NewEntry,
    SharedLogStore, StoreError, StoredCheckpoint, WriterLease,
};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

pub use codec::{BatchEntry, BatchRecord};

/// Where a log's bucket is, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside it (no leading or trailing `/`; may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket/prefix` (the prefix may be empty).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad =
            |why: &str| StoreError::Io(format!("store {url:?}: {why} (want s3://bucket/prefix)"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

/// How to connect to an S3-compatible service.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// The endpoint (`http://127.0.0.1:7780` for a local RGW); `None`: AWS,
    /// or the `AWS_ENDPOINT` variable.
    pub endpoint: Option<String>,
    /// The region; `None`: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Static credentials; `None`: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    pub credentials: Option<(String, String)>,
}

/// A log's store in a bucket. See the crate docs.
pub struct BucketStore {
    /// The store's own runtime (its callers are synchronous), shut down in
    /// the background on drop: the store may be dropped on another runtime.
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `s3://bucket/prefix at endpoint`, for messages.
    describe: String,
    inner: RwLock<Inner>,
    /// One writer call at a time in this process.
    writer: Mutex<()>,
    /// Set once a conditional write was lost: every later write fails.
    fenced: Arc<Mutex<Option<String>>>,
    /// `If-Match` takes the ETag without quotes here (found by the probe).
    bare_etags: std::sync::atomic::AtomicBool,
    /// The newest checkpoint for the public `checkpoint` object, written by
    /// one background task (so a slow write never lands over a newer one).
    publish: tokio::sync::watch::Sender<Vec<u8>>,
    /// A write failed after its batch was sequenced: the next
    /// `load_state` reloads from the bucket and completes that batch.
    needs_reload: std::sync::atomic::AtomicBool,
    /// This process writes the log (opened as its writer, or promoted);
    /// `false`: it follows the bucket read-only ([`SharedLogStore`]).
    writes: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Inner {
    tree: TreeState,
    /// The ETag of `.cairn/state` this writer last wrote or read (as the
    /// store returned it);
    /// `None` while the bucket has none.
    state_etag: Option<String>,
    latest: Option<StoredCheckpoint>,
    checkpoints: BTreeMap<u64, Vec<u8>>,
    /// Tiles, leaf-hash index, idempotency records.
    index: MemIndex,
    /// The entries of the last, partial bundle (size % 256 of them).
    tail: Vec<Vec<u8>>,
}

/// The ETag without its quotes. Ceph RGW 16 answers 412 to the quoted
/// ETag in `If-Match` (as S3 returns it, and as `object_store` sends it)
/// even when it matches, and takes the bare one; `object_store`'s own
/// in-memory store wants the quoted one. The probe at open finds which.
fn unquote(e: &str) -> String {
    e.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

fn io(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{what}: {e}"))
}

fn tiles_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

fn hashes_of(bytes: &[u8], what: &str) -> Result<Vec<Hash>, StoreError> {
    if !bytes.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(format!(
            "{what}: {} bytes is not a whole number of hashes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect())
}

const STATE: &str = ".cairn/state";

/// An object's path under the log's prefix.
fn under(prefix: &str, rel: &str) -> ObjPath {
    if prefix.is_empty() {
        ObjPath::from(rel)
    } else {
        ObjPath::from(format!("{prefix}/{rel}"))
    }
}

fn batch_path(start: u64) -> String {
    format!(".cairn/batch/{start:020}")
}

fn idempotency_path(start: u64) -> String {
    format!(".cairn/idempotency/{start:020}")
}

fn checkpoint_path(size: u64) -> String {
    format!(".cairn/checkpoints/{size:020}")
}

/// How a store is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the log's writer.
    Write,
    /// Read-only, following the writer.
    Follow,
}

/// What a catch-up read from the bucket, applied under one lock.
struct CaughtUp {
    tree: TreeState,
    etag: Option<String>,
    tiles: Vec<((u8, u64), Vec<Hash>)>,
    /// New leaf hashes, from this index on.
    leaves_from: u64,
    tail: Vec<Vec<u8>>,
    idempotency: Vec<(IdempotencyKey, u64, [u8; 32])>,
    checkpoints: Vec<(u64, Vec<u8>)>,
}

/// What happened to a create-only write.
enum Created {
    /// Written now, or found with the same bytes.
    Done,
    /// Another object is there.
    Differs,
}

impl BucketStore {
    /// Opens the log at `location` on an S3-compatible service as its
    /// writer, with credentials from the usual AWS variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`…).
    pub fn open_s3(location: &S3Location, opts: &S3Options) -> Result<Self, StoreError> {
        Self::connect_s3(location, opts, Mode::Write)
    }

    /// Opens the log at `location` read-only, to follow its writer (a read
    /// replica, or a warm standby until it is promoted): see
    /// [`SharedLogStore`]. Read-only credentials are enough; nothing is
    /// written, and an empty bucket is an empty log.
    pub fn follow_s3(location: &S3Location, opts: &S3Options) -> Result<Self, StoreError> {
        Self::connect_s3(location, opts, Mode::Follow)
    }

    fn connect_s3(location: &S3Location, opts: &S3Options, mode: Mode) -> Result<Self, StoreError> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if let Some(e) = &endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let region = opts
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        b = b.with_region(region);
        match &opts.credentials {
            Some((id, secret)) => {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
            }
            // Without credentials the client would ask the cloud's instance
            // metadata service; off AWS that is never what is meant.
            None if endpoint.is_some() && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() => {
                return Err(StoreError::Io(format!(
                    "s3://{} at {}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                    location.bucket,
                    endpoint.as_deref().unwrap_or_default()
                )));
            }
            None => {}
        }
        let store = b
            .build()
            .map_err(|e| io(&format!("configuring s3://{}", location.bucket), e))?;
        let describe = format!(
            "s3://{}/{} at {}",
            location.bucket,
            location.prefix,
            endpoint.as_deref().unwrap_or("AWS")
        );
        Self::open_mode(Arc::new(store), &location.prefix, describe, mode)
    }

    /// Opens the log under `prefix` in any object store as its writer (the
    /// tests use this with small fakes). `describe` names it in messages.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        describe: String,
    ) -> Result<Self, StoreError> {
        Self::open_mode(store, prefix, describe, Mode::Write)
    }

    /// Opens the log under `prefix` in any object store read-only, to
    /// follow its writer ([`BucketStore::follow_s3`]).
    pub fn follow(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        describe: String,
    ) -> Result<Self, StoreError> {
        Self::open_mode(store, prefix, describe, Mode::Follow)
    }

    fn open_mode(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        describe: String,
        mode: Mode,
    ) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-s3")
            .enable_all()
            .build()
            .map_err(|e| io("starting the object-store runtime", e))?;
        let (publish, mut published) = tokio::sync::watch::channel(Vec::<u8>::new());
        {
            let store = store.clone();
            let path = under(prefix.trim_matches('/'), "checkpoint");
            let describe = describe.clone();
            rt.spawn(async move {
                while published.changed().await.is_ok() {
                    let note = published.borrow_and_update().clone();
                    if note.is_empty() {
                        continue;
                    }
                    if let Err(e) = store.put(&path, PutPayload::from(note)).await {
                        tracing::warn!(store = %describe, "writing the public checkpoint: {e}");
                    }
                }
            });
        }
        let s = BucketStore {
            publish,
            handle: rt.handle().clone(),
            rt: Some(rt),
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            describe,
            inner: RwLock::new(Inner::default()),
            writer: Mutex::new(()),
            fenced: Arc::new(Mutex::new(None)),
            needs_reload: std::sync::atomic::AtomicBool::new(false),
            bare_etags: std::sync::atomic::AtomicBool::new(false),
            writes: std::sync::atomic::AtomicBool::new(false),
        };
        match mode {
            Mode::Write => {
                let bare = s.probe_conditional_writes()?;
                s.bare_etags
                    .store(bare, std::sync::atomic::Ordering::SeqCst);
                s.writes.store(true, std::sync::atomic::Ordering::SeqCst);
                s.reload()?;
            }
            Mode::Follow => {
                s.catch_up()?;
            }
        }
        Ok(s)
    }

    fn writes(&self) -> bool {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Refuses a write from a follower.
    fn check_writer(&self) -> Result<(), StoreError> {
        if self.writes() {
            return Ok(());
        }
        Err(StoreError::ReadOnly(format!(
            "this process follows {} read-only (a read replica, or a standby not elected); it does not write the log",
            self.describe
        )))
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, rel: &str) -> ObjPath {
        under(&self.prefix, rel)
    }

    /// Runs a future on the store's own runtime and waits for it (callers
    /// are synchronous, and may themselves be on another runtime).
    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(StoreError::Io("an object-store task failed".into())))
    }

    fn fence(&self, why: String) -> StoreError {
        let mut f = self.fenced.lock().unwrap_or_else(|p| p.into_inner());
        let why = f.get_or_insert(why).clone();
        tracing::error!(store = %self.describe, "fence lost: {why}; this process stops writing this log");
        StoreError::Fenced(why)
    }

    fn check_fence(&self) -> Result<(), StoreError> {
        fence_state(&self.fenced)
    }

    /// A lease to hand the engine: fails once a conditional write was lost.
    pub fn lease(&self) -> Arc<dyn WriterLease> {
        Arc::new(FenceLease {
            fenced: self.fenced.clone(),
        })
    }

    /// Refuses a store that ignores conditional writes: two create-only
    /// writes of one key must not both succeed, an `If-Match` with a wrong
    /// ETag must fail, and one with the object's ETag must succeed. Returns
    /// whether `If-Match` wants the ETag without its quotes.
    fn probe_conditional_writes(&self) -> Result<bool, StoreError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| io("OS random source", e))?;
        let key = self.path(&format!(".cairn/probe/{}", hex::encode(nonce)));
        let store = self.store.clone();
        let describe = self.describe.clone();
        self.run(async move {
            let create = || PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            let update = |e: &str| PutOptions {
                mode: PutMode::Update(UpdateVersion {
                    e_tag: Some(e.to_owned()),
                    version: None,
                }),
                ..Default::default()
            };
            let failed = |e| io(&format!("{describe}: probing conditional writes"), e);
            let refuse = |what: &str| {
                StoreError::Io(format!(
                    "{describe} does not honour {what}; Cairn needs atomic conditional writes to keep two writers from both extending the log (Ceph RGW, AWS S3, R2 and MinIO have them; Garage does not)"
                ))
            };
            let first = store
                .put_opts(&key, PutPayload::from_static(b"1"), create())
                .await
                .map_err(failed)?;
            let result = async {
                match store
                    .put_opts(&key, PutPayload::from_static(b"2"), create())
                    .await
                {
                    Err(object_store::Error::AlreadyExists { .. }) => {}
                    Ok(_) => {
                        return Err(refuse(
                            "create-only writes (If-None-Match: *): a second create of one key succeeded",
                        ));
                    }
                    Err(e) => return Err(failed(e)),
                }
                match store
                    .put_opts(
                        &key,
                        PutPayload::from_static(b"3"),
                        update("\"0123456789abcdef0123456789abcdef\""),
                    )
                    .await
                {
                    Err(object_store::Error::Precondition { .. }) => {}
                    Ok(_) => {
                        return Err(refuse(
                            "compare-and-swap writes (If-Match): a write with a wrong ETag succeeded",
                        ));
                    }
                    Err(e) => return Err(failed(e)),
                }
                let etag = first.e_tag.clone().ok_or_else(|| {
                    refuse("ETags: a write returned none, so nothing can be compared and swapped")
                })?;
                for (e, bare) in [(etag.clone(), false), (unquote(&etag), true)] {
                    match store
                        .put_opts(&key, PutPayload::from_static(b"4"), update(&e))
                        .await
                    {
                        Ok(_) => return Ok(bare),
                        Err(object_store::Error::Precondition { .. }) => {}
                        Err(e) => return Err(failed(e)),
                    }
                }
                Err(refuse(
                    "compare-and-swap writes (If-Match): a write with the object's own ETag failed",
                ))
            }
            .await;
            let _ = store.delete(&key).await;
            result
        })
    }

    /// An ETag as this store's `If-Match` wants it.
    fn if_match(&self, etag: &str) -> String {
        if self.bare_etags.load(std::sync::atomic::Ordering::SeqCst) {
            unquote(etag)
        } else {
            etag.to_owned()
        }
    }

    async fn get(
        store: &Arc<dyn ObjectStore>,
        path: ObjPath,
    ) -> Result<Option<(Bytes, Option<String>)>, StoreError> {
        match store.get(&path).await {
            Ok(r) => {
                let etag = r.meta.e_tag.clone();
                let b = r
                    .bytes()
                    .await
                    .map_err(|e| io(&format!("reading {path}"), e))?;
                Ok(Some((b, etag)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(&format!("reading {path}"), e)),
        }
    }

    fn get_now(&self, rel: &str) -> Result<Option<(Bytes, Option<String>)>, StoreError> {
        let store = self.store.clone();
        let path = self.path(rel);
        self.run(async move { Self::get(&store, path).await })
    }

    /// Reads many objects at once (32 in flight), in the order given
    /// (`None`: absent). A long read (a fresh node on a big log) reports
    /// its progress at every tenth.
    fn get_many(
        &self,
        paths: Vec<ObjPath>,
        what: &'static str,
    ) -> Result<Vec<Option<Bytes>>, StoreError> {
        let store = self.store.clone();
        let describe = self.describe.clone();
        self.run(async move {
            let total = paths.len();
            let mut set = tokio::task::JoinSet::new();
            let sem = Arc::new(tokio::sync::Semaphore::new(32));
            for (i, path) in paths.into_iter().enumerate() {
                let store = store.clone();
                let sem = sem.clone();
                set.spawn(async move {
                    let _p = sem.acquire_owned().await;
                    Self::get(&store, path).await.map(|r| (i, r.map(|(b, _)| b)))
                });
            }
            let started = std::time::Instant::now();
            let mut out = vec![None; total];
            let (mut done, mut shown) = (0, 0);
            while let Some(r) = set.join_next().await {
                let (i, b) = r.map_err(|e| io("an object read task", e))??;
                out[i] = b;
                done += 1;
                let tenth = done * 10 / total.max(1);
                if total >= 1000 && tenth > shown {
                    shown = tenth;
                    tracing::info!(
                        store = %describe,
                        "rebuilding the caches from the bucket: {done} of {total} {what} ({}%) in {:.1?}",
                        tenth * 10,
                        started.elapsed()
                    );
                }
            }
            Ok(out)
        })
    }

    /// Writes objects create-only, many at once; an object already there
    /// with the same bytes counts as written.
    fn put_all(&self, objects: Vec<(String, Bytes)>) -> Result<Vec<(String, Created)>, StoreError> {
        let store = self.store.clone();
        let objects: Vec<(ObjPath, String, Bytes)> = objects
            .into_iter()
            .map(|(rel, b)| (self.path(&rel), rel, b))
            .collect();
        self.run(async move {
            let mut set = tokio::task::JoinSet::new();
            let sem = Arc::new(tokio::sync::Semaphore::new(32));
            for (path, rel, bytes) in objects {
                let store = store.clone();
                let sem = sem.clone();
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let put = store
                        .put_opts(
                            &path,
                            PutPayload::from(bytes.clone()),
                            PutOptions {
                                mode: PutMode::Create,
                                ..Default::default()
                            },
                        )
                        .await;
                    match put {
                        Ok(_) => Ok((rel, Created::Done)),
                        Err(object_store::Error::AlreadyExists { .. }) => {
                            match Self::get(&store, path.clone()).await? {
                                Some((b, _)) if b == bytes => Ok((rel, Created::Done)),
                                _ => Ok((rel, Created::Differs)),
                            }
                        }
                        Err(e) => Err(io(&format!("writing {path}"), e)),
                    }
                });
            }
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                out.push(r.map_err(|e| io("an object write task", e))??);
            }
            Ok(out)
        })
    }

    /// Compare-and-swap of `.cairn/state`: the commit point.
    fn swap_state(
        &self,
        doc: &codec::StateDoc,
        expected: Option<String>,
    ) -> Result<String, StoreError> {
        let store = self.store.clone();
        let path = self.path(STATE);
        let bytes = Bytes::from(doc.encode());
        let describe = self.describe.clone();
        let expected = expected.map(|e| self.if_match(&e));
        let result = self.run(async move {
            let mode = match expected {
                Some(e) => PutMode::Update(UpdateVersion {
                    e_tag: Some(e),
                    version: None,
                }),
                None => PutMode::Create,
            };
            match store
                .put_opts(
                    &path,
                    PutPayload::from(bytes),
                    PutOptions {
                        mode,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(r) => Ok(Ok(r.e_tag)),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => Ok(Err(())),
                Err(e) => Err(io(&format!("{describe}: writing the state object"), e)),
            }
        })?;
        match result {
            Ok(Some(etag)) => Ok(etag),
            Ok(None) => Err(StoreError::Io(format!(
                "{}: the store returned no ETag for the state object; Cairn cannot compare-and-swap without one",
                self.describe
            ))),
            Err(()) => Err(self.fence(format!(
                "the state object of {} changed under this writer (another writer committed)",
                self.describe
            ))),
        }
    }

    /// Brings the caches up to the bucket (all of it at open; after a failed
    /// write, whatever landed since the last commit this writer saw: its
    /// caches change only once a commit point is passed, so they are a
    /// prefix of the bucket's history), then completes a batch that was
    /// sequenced but not committed. Readers keep seeing the last committed
    /// state until the new one is applied.
    fn reload(&self) -> Result<(), StoreError> {
        self.catch_up()?;
        self.complete_sequenced()
    }

    /// Brings the caches up to the bucket's committed state (`.cairn/state`),
    /// reading only what changed since they were last brought up: the
    /// tiles right of the old edge, the last bundle, newer idempotency
    /// records, and the latest checkpoint. From empty caches this is the
    /// whole rebuild (with progress lines on a big log). A history that
    /// does not extend the cached one (a shorter tree, a tile whose old
    /// hashes changed) is `Corrupt`, and the caches stay as they were.
    /// Returns whether the tree or the latest checkpoint moved.
    fn catch_up(&self) -> Result<bool, StoreError> {
        let (s0, old_etag, latest0) = {
            let i = self.read();
            (
                i.tree.size().0,
                i.state_etag.clone(),
                i.latest.as_ref().map(|c| c.size.0),
            )
        };
        let Some((bytes, etag)) = self.get_now(STATE)? else {
            if s0 > 0 {
                return Err(StoreError::Corrupt(format!(
                    "the state object of {} is gone, but {s0} entries were read from it",
                    self.describe
                )));
            }
            // An empty log: its writer signs the empty tree's checkpoint
            // before it commits anything.
            if latest0.is_none()
                && let Some((b, _)) = self.get_now(&checkpoint_path(0))?
            {
                let mut inner = self.write();
                inner.checkpoints.insert(0, b.to_vec());
                inner.latest = Some(StoredCheckpoint {
                    size: TreeSize(0),
                    note: b.to_vec(),
                });
                return Ok(true);
            }
            return Ok(false);
        };
        let doc = codec::StateDoc::decode(&bytes)?;
        let s1 = doc.tree.size().0;
        if s1 < s0 {
            return Err(StoreError::Corrupt(format!(
                "the tree in {} shrank from {s0} to {s1} entries: its history was rewritten",
                self.describe
            )));
        }
        let moved_state = old_etag.is_none() || old_etag != etag;
        let mut up = CaughtUp {
            tree: doc.tree.clone(),
            etag,
            tiles: Vec::new(),
            leaves_from: s0,
            tail: Vec::new(),
            idempotency: Vec::new(),
            checkpoints: Vec::new(),
        };
        if moved_state && s1 > s0 {
            self.read_tiles_since(s0, s1, &mut up)?;
            // The partial bundle at the right edge.
            let in_tail = s1 % TILE_WIDTH;
            if in_tail > 0 {
                let rel = entries_path(s1 / TILE_WIDTH, in_tail as u16);
                let (b, _) = self
                    .get_now(&rel)?
                    .ok_or_else(|| StoreError::Corrupt(format!("entry bundle {rel} is missing")))?;
                up.tail = parse_entry_bundle(&b)
                    .map_err(|e| StoreError::Corrupt(format!("entry bundle {rel}: {e}")))?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
            }
            // Idempotency records of the batches committed since (named
            // by their first index, zero-padded: listed in order).
            let store = self.store.clone();
            let prefix = self.path(".cairn/idempotency");
            let offset = (s0 > 0).then(|| self.path(&idempotency_path(s0 - 1)));
            let listed = self.run(async move {
                use futures_util::TryStreamExt;
                let listing = match &offset {
                    Some(o) => store.list_with_offset(Some(&prefix), o),
                    None => store.list(Some(&prefix)),
                };
                listing
                    .map_ok(|m| m.location)
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(|e| io("listing idempotency records", e))
            })?;
            let records = self.get_many(listed, "idempotency records")?;
            for b in records.into_iter().flatten() {
                for (idx, key, request) in codec::decode_idempotency(&b)? {
                    if (s0..s1).contains(&idx) {
                        up.idempotency.push((key, idx, request));
                    }
                }
            }
        } else if s1 == s0 {
            let i = self.read();
            up.tail = i.tail.clone();
        }
        let mut latest = latest0;
        if let Some(note) = &doc.checkpoint {
            let cp = cairn_storage::verify::parse_checkpoint(note)?;
            up.checkpoints.push((cp.size.0, note.clone()));
            latest = latest.max(Some(cp.size.0));
        }
        // The checkpoint of the committed size is stored after the state
        // that commits it: look for it (a follower may look before the
        // writer stored it, and looks again next time).
        if s1 > 0
            && latest.is_none_or(|l| l < s1)
            && let Some((b, _)) = self.get_now(&checkpoint_path(s1))?
        {
            up.checkpoints.push((s1, b.to_vec()));
            latest = Some(s1);
        }
        let moved = s1 > s0 || latest != latest0;
        if !moved_state && up.checkpoints.is_empty() {
            return Ok(false);
        }
        let mut inner = self.write();
        if inner.tree.size().0 != s0 {
            return Err(StoreError::Io(
                "the caches changed during a catch-up; retry".into(),
            ));
        }
        for ((l, i), hashes) in up.tiles {
            if l == 0 {
                for (j, h) in hashes.iter().enumerate() {
                    let idx = i * TILE_WIDTH + j as u64;
                    if idx >= up.leaves_from {
                        inner.index.leaf_index.entry(*h).or_insert(idx);
                    }
                }
            }
            inner.index.tiles.insert((l, i), hashes);
        }
        for (key, idx, request) in up.idempotency {
            inner.index.idempotency.entry(key).or_insert((idx, request));
        }
        inner.tail = up.tail;
        inner.tree = up.tree;
        inner.state_etag = up.etag;
        for (size, note) in up.checkpoints {
            if inner.latest.as_ref().is_none_or(|c| c.size.0 < size) {
                inner.latest = Some(StoredCheckpoint {
                    size: TreeSize(size),
                    note: note.clone(),
                });
            }
            inner.checkpoints.insert(size, note);
        }
        Ok(moved)
    }

    /// Reads the tiles of the tree at `s1` that differ from the tree at
    /// `s0` (the full ones left of the old edge never change), checking
    /// that each one still begins with the hashes cached for it.
    fn read_tiles_since(&self, s0: u64, s1: u64, up: &mut CaughtUp) -> Result<(), StoreError> {
        let mut wanted = Vec::new();
        for level in 0..=cairn_core::tile::MAX_TILE_LEVEL {
            let nodes = s0
                .checked_shr(cairn_core::tile::TILE_HEIGHT * u32::from(level))
                .unwrap_or(0);
            let mut index = nodes / TILE_WIDTH;
            while let Some(t) = Tile::at_size(level, index, TreeSize(s1)) {
                wanted.push(t);
                index += 1;
            }
        }
        let paths = wanted.iter().map(|t| self.path(&t.path())).collect();
        let fetched = self.get_many(paths, "tiles")?;
        let inner = self.read();
        for (t, got) in wanted.iter().zip(fetched) {
            let rel = t.path();
            let b = got.ok_or_else(|| {
                StoreError::Corrupt(format!("tile {rel} of the committed tree is missing"))
            })?;
            let hashes = hashes_of(&b, &rel)?;
            if hashes.len() != usize::from(t.width) {
                return Err(StoreError::Corrupt(format!(
                    "tile {rel} holds {} hashes",
                    hashes.len()
                )));
            }
            if let Some(old) = inner.index.tiles.get(&(t.level, t.index))
                && !hashes.starts_with(old)
            {
                return Err(StoreError::Corrupt(format!(
                    "tile {rel} in {} no longer begins with the hashes read before: its history was rewritten",
                    self.describe
                )));
            }
            up.tiles.push(((t.level, t.index), hashes));
        }
        Ok(())
    }

    /// A batch sequenced at the committed size but not committed (its
    /// writer crashed or was fenced) is completed now: tiles, bundles and
    /// the state, exactly as its writer would have.
    fn complete_sequenced(&self) -> Result<(), StoreError> {
        let size = self.read().tree.size().0;
        let Some((b, _)) = self.get_now(&batch_path(size))? else {
            return Ok(());
        };
        let rec = codec::BatchRecord::decode(&b)?;
        tracing::warn!(store = %self.describe, start = size, entries = rec.entries.len(), "completing a batch a previous writer sequenced but did not commit");
        self.integrate(&rec)
    }

    /// Steps 2 and 3 of a sequenced batch.
    fn integrate(&self, rec: &codec::BatchRecord) -> Result<(), StoreError> {
        let start = rec.start;
        let mut objects: Vec<(String, Bytes)> = Vec::new();
        let (expected_etag, new_tiles, new_tail, latest) = {
            let inner = self.read();
            if inner.tree.size().0 != start {
                return Err(StoreError::Conflict {
                    actual_size: inner.tree.size().0,
                });
            }
            let mut new_tiles = Vec::new();
            for u in &rec.tiles {
                let mut hashes = inner
                    .index
                    .tiles
                    .get(&(u.tile.level, u.tile.index))
                    .cloned()
                    .unwrap_or_default();
                hashes.truncate(usize::from(u.offset));
                hashes.extend_from_slice(&u.hashes);
                objects.push((u.tile.path(), Bytes::from(tiles_bytes(&hashes))));
                new_tiles.push(((u.tile.level, u.tile.index), hashes));
            }
            let mut bundle: Vec<&[u8]> = inner.tail.iter().map(Vec::as_slice).collect();
            let mut index = start / TILE_WIDTH;
            for e in &rec.entries {
                bundle.push(&e.data);
                if bundle.len() as u64 == TILE_WIDTH {
                    let b = encode_entry_bundle(bundle.iter().copied())
                        .map_err(|e| StoreError::InvalidBatch(e.to_string()))?;
                    objects.push((entries_path(index, TILE_WIDTH as u16), Bytes::from(b)));
                    bundle.clear();
                    index += 1;
                }
            }
            if !bundle.is_empty() {
                let b = encode_entry_bundle(bundle.iter().copied())
                    .map_err(|e| StoreError::InvalidBatch(e.to_string()))?;
                objects.push((entries_path(index, bundle.len() as u16), Bytes::from(b)));
            }
            let new_tail: Vec<Vec<u8>> = bundle.iter().map(|e| e.to_vec()).collect();
            let idem = codec::encode_idempotency(rec);
            if !idem.is_empty() {
                objects.push((idempotency_path(start), Bytes::from(idem)));
            }
            if let Some(note) = &rec.checkpoint {
                objects.push((
                    checkpoint_path(rec.state.size().0),
                    Bytes::from(note.clone()),
                ));
            }
            let latest = match &rec.checkpoint {
                Some(n) => Some(n.clone()),
                None => inner.latest.as_ref().map(|c| c.note.clone()),
            };
            (inner.state_etag.clone(), new_tiles, new_tail, latest)
        };
        for (rel, created) in self.put_all(objects)? {
            if let Created::Differs = created {
                if rel.starts_with(".cairn/checkpoints/") {
                    return Err(StoreError::CheckpointConflict {
                        size: rec.state.size().0,
                    });
                }
                return Err(self.fence(format!(
                    "{rel} in {} holds other bytes than this writer's batch at {start}: two histories",
                    self.describe
                )));
            }
        }
        let doc = codec::StateDoc {
            tree: rec.state.clone(),
            checkpoint: latest.clone(),
        };
        let etag = self.swap_state(&doc, expected_etag)?;
        // Committed: the caches follow.
        let mut inner = self.write();
        inner.state_etag = Some(etag);
        for ((l, i), hashes) in new_tiles {
            inner.index.tiles.insert((l, i), hashes);
        }
        let entries: Vec<NewEntry<'_>> = rec.entries.iter().map(BatchEntry::as_new).collect();
        inner.index.add_entries(start, &entries);
        inner.tail = new_tail;
        inner.tree = rec.state.clone();
        if let Some(note) = &rec.checkpoint {
            inner.checkpoints.insert(rec.state.size().0, note.clone());
            inner.latest = Some(StoredCheckpoint {
                size: rec.state.size(),
                note: note.clone(),
            });
        }
        drop(inner);
        if let Some(note) = &rec.checkpoint {
            self.publish_checkpoint(note.clone());
        }
        // The sequenced batch is no longer needed (a leftover is harmless:
        // only the one at the committed size is ever read).
        let store = self.store.clone();
        let path = self.path(&batch_path(start));
        self.handle.spawn(async move {
            let _ = store.delete(&path).await;
        });
        Ok(())
    }

    /// The public `checkpoint` object, written in the background (the
    /// durable record is `.cairn/checkpoints/`; a crash or a failed write
    /// leaves it one behind until the next checkpoint).
    fn publish_checkpoint(&self, note: Vec<u8>) {
        self.publish.send_replace(note);
    }
}

impl Drop for BucketStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The fence as a [`WriterLease`]: fails once a conditional write was lost.
#[derive(Debug)]
struct FenceLease {
    fenced: Arc<Mutex<Option<String>>>,
}

impl WriterLease for FenceLease {
    fn check(&self) -> Result<(), StoreError> {
        fence_state(&self.fenced)
    }
}

/// `Fenced` once a conditional write was lost.
fn fence_state(fenced: &Mutex<Option<String>>) -> Result<(), StoreError> {
    match &*fenced.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(why) => Err(StoreError::Fenced(why.clone())),
        None => Ok(()),
    }
}

impl SharedLogStore for BucketStore {
    fn refresh(&self) -> Result<bool, StoreError> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.writes() {
            // The writer's caches are the bucket's committed state.
            return Ok(false);
        }
        self.catch_up()
    }

    fn promote(&self) -> Result<(), StoreError> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.writes() {
            return Ok(());
        }
        let bare = self.probe_conditional_writes()?;
        self.catch_up()?;
        self.bare_etags
            .store(bare, std::sync::atomic::Ordering::SeqCst);
        self.writes.store(true, std::sync::atomic::Ordering::SeqCst);
        self.complete_sequenced()
    }

    fn is_writer(&self) -> bool {
        self.writes()
    }
}

impl LogStore for BucketStore {
    fn load_state(&self) -> Result<LoadedState, StoreError> {
        if self
            .needs_reload
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.reload() {
                self.needs_reload
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(e);
            }
        }
        let (tree, checkpoint) = {
            let m = self.read();
            (m.tree.clone(), m.latest.clone())
        };
        verify_state(self, &tree, checkpoint.as_ref())?;
        Ok(LoadedState { tree, checkpoint })
    }

    fn commit_batch(&self, batch: CommitBatch<'_>) -> Result<(), StoreError> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.check_writer()?;
        self.check_fence()?;
        {
            let m = self.read();
            validate_batch(
                &batch,
                m.tree.size(),
                &|l, i| Ok(m.index.tile_width(l, i)),
                &|k| Ok(m.index.idempotency.contains_key(k)),
            )?;
            if let Some(note) = batch.checkpoint {
                match m.checkpoints.get(&batch.state.size().0) {
                    Some(old) if old.as_slice() != note => {
                        return Err(StoreError::CheckpointConflict {
                            size: batch.state.size().0,
                        });
                    }
                    _ => {}
                }
            }
        }
        let rec = codec::BatchRecord::from_batch(&batch);
        // Step 1: sequence.
        let seq = batch_path(rec.start);
        for (rel, created) in self.put_all(vec![(seq, Bytes::from(rec.encode()))])? {
            if let Created::Differs = created {
                return Err(self.fence(format!(
                    "another writer sequenced a batch at {} in {} ({rel})",
                    rec.start, self.describe
                )));
            }
        }
        // Steps 2 and 3. After a failure here the batch is sequenced but
        // maybe not committed: the engine calls `load_state` before writing
        // again, which completes it (the entries land; their clients were
        // told it failed, as the contract allows).
        let r = self.integrate(&rec);
        if r.is_err() {
            self.needs_reload
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }

    /// The checkpoint's own create-only object is its commit point: the
    /// batch it signs was committed (and fenced) by `commit_batch`, and a
    /// second, different note for a size can never be stored. The state
    /// object carries the latest checkpoint from the next commit on; at
    /// open, the one at the committed size is looked up directly.
    fn put_checkpoint(&self, size: TreeSize, note: &[u8]) -> Result<(), StoreError> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.check_writer()?;
        self.check_fence()?;
        let known = {
            let m = self.read();
            check_checkpoint_request(size, note, m.tree.size())?;
            m.checkpoints.get(&size.0).cloned()
        };
        match known {
            Some(old) if old == note => return Ok(()),
            Some(_) => return Err(StoreError::CheckpointConflict { size: size.0 }),
            None => {}
        }
        for (_, created) in self.put_all(vec![(
            checkpoint_path(size.0),
            Bytes::copy_from_slice(note),
        )])? {
            if let Created::Differs = created {
                return Err(StoreError::CheckpointConflict { size: size.0 });
            }
        }
        let newest = {
            let mut m = self.write();
            m.checkpoints.insert(size.0, note.to_vec());
            let newest = m.latest.as_ref().is_none_or(|c| c.size < size);
            if newest {
                m.latest = Some(StoredCheckpoint {
                    size,
                    note: note.to_vec(),
                });
            }
            newest
        };
        if newest {
            self.publish_checkpoint(note.to_vec());
        }
        Ok(())
    }

    fn read_entries(&self, start: LeafIndex, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let (size, tail) = {
            let m = self.read();
            (m.tree.size().0, m.tail.clone())
        };
        if start.0 > size {
            return Err(StoreError::OutOfRange {
                index: start.0,
                size,
            });
        }
        let end = start.0.saturating_add(limit as u64).min(size);
        let mut out = Vec::with_capacity((end - start.0) as usize);
        let mut i = start.0;
        while i < end {
            let bundle = i / TILE_WIDTH;
            let full_end = (bundle + 1) * TILE_WIDTH;
            let entries: Vec<Vec<u8>> = if full_end > size {
                tail.clone()
            } else {
                let rel = entries_path(bundle, TILE_WIDTH as u16);
                let (b, _) = self
                    .get_now(&rel)?
                    .ok_or_else(|| StoreError::Corrupt(format!("entry bundle {rel} is missing")))?;
                parse_entry_bundle(&b)
                    .map_err(|e| StoreError::Corrupt(format!("entry bundle {rel}: {e}")))?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect()
            };
            let from = (i - bundle * TILE_WIDTH) as usize;
            let to = (end.min(full_end) - bundle * TILE_WIDTH) as usize;
            let got = entries.get(from..to).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "entry bundle {bundle} is shorter than the tree says"
                ))
            })?;
            out.extend(got.iter().cloned());
            i = end.min(full_end);
        }
        Ok(out)
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<Hash>>, StoreError> {
        self.read().index.read_tiles(tiles)
    }

    fn checkpoint(&self, size: Option<TreeSize>) -> Result<Option<StoredCheckpoint>, StoreError> {
        let Some(s) = size else {
            return Ok(self.read().latest.clone());
        };
        if let Some(n) = self.read().checkpoints.get(&s.0) {
            return Ok(Some(StoredCheckpoint {
                size: s,
                note: n.clone(),
            }));
        }
        if s > self.read().tree.size() {
            return Ok(None);
        }
        Ok(self.get_now(&checkpoint_path(s.0))?.map(|(b, _)| {
            let note = b.to_vec();
            self.write().checkpoints.insert(s.0, note.clone());
            StoredCheckpoint { size: s, note }
        }))
    }

    fn find_leaf(&self, leaf_hash: &Hash) -> Result<Option<LeafIndex>, StoreError> {
        Ok(self.read().index.find_leaf(leaf_hash))
    }

    fn find_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.read().index.find_idempotency_key(key))
    }
}
