//! The HTTP side: each log's C2SP tlog-tiles tree under `/logs/<name>/`
//! (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`,
//! `healthz`), the default log's also at `/`, `GET /logs` (every log with
//! its origin, verifier key, size and state, as JSON), `/healthz`,
//! `/healthz/writer` (ready to take appends: not a standby or replica) and
//! `/metrics` for the process.
//!
//! Full tiles never change, so they are served as immutable; partial tiles
//! and the checkpoint change with every batch and are not cached. Reads go
//! straight to the store.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cairn_core::hash::LeafIndex;
use cairn_core::tile::{TILE_WIDTH, Tile, TilePath, encode_entry_bundle};
use cairn_log::{Log, LogError};

use crate::auth::{Authorizer, Identity, Scope};
use crate::error::ServerError;
use crate::service::Logs;

#[derive(Clone)]
struct Http {
    logs: Logs,
    auth: Option<Arc<Authorizer>>,
    /// The appending side, shared with gRPC (OTLP, NDJSON).
    inner: Arc<crate::service::Inner>,
}

/// A request's credentials: its `authorization` header and, on an mTLS
/// connection, the client's verified certificate chain.
pub(crate) struct Creds {
    header: Option<String>,
    peer: Option<Arc<Vec<rustls_pki_types::CertificateDer<'static>>>>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Creds {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Creds {
            header: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            peer: parts
                .extensions
                .get::<axum::extract::ConnectInfo<crate::tls::PeerCerts>>()
                .and_then(|c| c.0.0.clone()),
        })
    }
}

impl Http {
    /// The caller's identity if it has `need` (`None`: no check needed);
    /// otherwise the 401/403 answer. Public reads open `Read` only:
    /// `/metrics` (admin) stays closed. Refusals are counted in
    /// `cairn_errors_total`.
    fn identity(&self, creds: &Creds, need: Scope) -> Result<Option<Identity>, ServerError> {
        let Some(a) = self.auth.as_ref() else {
            return Ok(None);
        };
        if need == Scope::Read && a.public_reads() {
            return Ok(None);
        }
        a.check_credentials(
            creds.header.as_deref(),
            creds.peer.as_deref().map(Vec::as_slice),
            need,
        )
        .map(Some)
        .map_err(ServerError::Auth)
    }

    /// The caller's identity if it may append (`None` on an open server).
    fn identity_for_append(&self, creds: &Creds) -> Result<Option<Identity>, ServerError> {
        self.identity(creds, Scope::Append)
    }

    /// The log `name` names (`""`: the default log), for a caller with
    /// `Read` that may use it.
    fn log(&self, creds: &Creds, name: &str) -> Result<Arc<Log>, ServerError> {
        let id = self.identity(creds, Scope::Read)?;
        self.logs.resolve(name, id.as_ref()).cloned()
    }
}

/// The router. With witnesses configured, a log's `checkpoint` is the
/// newest checkpoint that met its witness quorum (with their
/// cosignatures).
pub fn router(logs: Logs, auth: Option<Arc<Authorizer>>) -> Router {
    router_for(&crate::service::LogService::new(logs, auth))
}

/// [`router`] over an existing service (sharing its logs, credentials and
/// quota buckets with the gRPC listeners).
pub fn router_for(service: &crate::service::LogService) -> Router {
    let inner = service.shared();
    let (logs, auth) = (inner.logs.clone(), inner.auth.clone());
    let ingest_limit = axum::extract::DefaultBodyLimit::max(crate::service::MAX_OTLP_BYTES);
    Router::new()
        .route("/v1/logs", post(otlp_http).layer(ingest_limit))
        .route("/append", post(default_append).layer(ingest_limit))
        .route("/logs/{log}/append", post(append).layer(ingest_limit))
        .route("/checkpoint", get(default_checkpoint))
        .route("/tile/{*path}", get(default_tile))
        .route("/logs", get(list))
        .route("/logs/{log}/checkpoint", get(checkpoint))
        .route("/logs/{log}/tile/{*path}", get(tile))
        .route("/logs/{log}/healthz", get(log_healthz))
        .route("/healthz", get(healthz))
        .route("/healthz/writer", get(healthz_writer))
        .route("/metrics", get(metrics))
        .route("/logs/{log}/entries", get(entries_json))
        .route("/logs/{log}/proof/inclusion", get(inclusion_json))
        .route("/logs/{log}/proof/consistency", get(consistency_json))
        .route("/logs/{log}/search", get(search_json))
        .route("/logs/{log}/subjects/{kid}", get(subject_json))
        .route(
            "/explorer",
            get(|| async { axum::response::Redirect::permanent("/explorer/") }),
        )
        .route("/explorer/", get(|| explorer_asset(Path(String::new()))))
        .route("/explorer/{file}", get(explorer_asset))
        .route(
            "/explorer/vendor/{file}",
            get(|Path(f): Path<String>| explorer_asset(Path(format!("vendor/{f}")))),
        )
        .with_state(Http { logs, auth, inner })
}

/// An explorer asset, with its Content-Security-Policy
/// ([`crate::explorer`]). Public like `/healthz`: the page holds no
/// data; what it reads goes through the read rules.
async fn explorer_asset(Path(file): Path<String>) -> Response {
    let Some((ctype, body)) = crate::explorer::asset(&file) else {
        return text(StatusCode::NOT_FOUND, "no such page\n".into());
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype),
            (header::CONTENT_SECURITY_POLICY, crate::explorer::CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A JSON answer that is never cached and never sniffed.
fn json(v: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        v.to_string(),
    )
        .into_response()
}

/// A query string's parameters.
type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// One JSON read of one log (the explorer's): resolves the log under the
/// read rules, runs `f`, and answers its value as JSON, or its error
/// through the one status map.
async fn json_read<F, Fut>(h: Http, log: String, creds: Creds, f: F) -> Response
where
    F: FnOnce(Arc<Log>) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ServerError>>,
{
    let r = async { f(h.log(&creds, &log)?).await };
    match r.await {
        Ok(v) => json(&v),
        Err(e) => e.into_http(),
    }
}

/// Hashes as base64 strings.
fn b64s(hashes: &[cairn_core::Hash]) -> Vec<String> {
    hashes.iter().map(|x| b64(&x.0)).collect()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A query parameter as a number; a bad one is `INVALID_ARGUMENT`.
fn param_u64(
    q: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<Option<u64>, ServerError> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ServerError::Log(LogError::InvalidArgument(format!(
                "{name} must be a whole number ({} bytes given)",
                v.len()
            )))
        }),
    }
}

/// Most entries one `GET /logs/<name>/entries` returns.
const MAX_JSON_ENTRIES: u64 = 100;

/// `GET /logs/<name>/entries?start=A&end=B`: the stored (masked) leaves in
/// `[A, B)`, at most 100, base64: `{"entries":[{"index":i,"leaf":…}]}`.
async fn entries_json(
    State(h): State<Http>,
    Path(log): Path<String>,
    axum::extract::Query(q): Params,
    creds: Creds,
) -> Response {
    json_read(h, log, creds, |log| async move {
        let start = param_u64(&q, "start")?.unwrap_or(0);
        let end = param_u64(&q, "end")?.unwrap_or(start.saturating_add(MAX_JSON_ENTRIES));
        let size = log.latest().size.0;
        if start > end {
            return Err(ServerError::Log(LogError::InvalidArgument(format!(
                "start {start} is after end {end}"
            ))));
        }
        if end > size {
            return Err(ServerError::Log(LogError::OutOfRange(format!(
                "entries [{start}, {end}) are not within the tree of {size}"
            ))));
        }
        let n = (end - start).min(MAX_JSON_ENTRIES) as usize;
        let got = log.entries(LeafIndex(start), n).await?;
        let list: Vec<serde_json::Value> = got
            .iter()
            .enumerate()
            .map(|(i, e)| serde_json::json!({"index": start + i as u64, "leaf": b64(e)}))
            .collect();
        Ok(serde_json::json!({ "entries": list }))
    })
    .await
}

/// `GET /logs/<name>/proof/inclusion?index=N|leaf_hash=B64[&size=S]`: the
/// audit path of one entry in the tree of `size` (default: the latest
/// checkpoint's): `{"index","size","leaf_hash","path":[…]}`. The page
/// verifies it; nothing here needs to be trusted.
async fn inclusion_json(
    State(h): State<Http>,
    Path(log): Path<String>,
    axum::extract::Query(q): Params,
    creds: Creds,
) -> Response {
    json_read(h, log, creds, |log| async move {
        let at = match (param_u64(&q, "index")?, q.get("leaf_hash")) {
            (Some(i), _) => cairn_log::LeafRef::Index(LeafIndex(i)),
            (None, Some(b)) => {
                use base64::Engine as _;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .ok()
                    .and_then(|r| cairn_core::Hash::from_slice(&r).ok())
                    .ok_or_else(|| {
                        ServerError::Log(LogError::InvalidArgument(
                            "leaf_hash must be 32 bytes of base64".into(),
                        ))
                    })?;
                cairn_log::LeafRef::Hash(raw)
            }
            (None, None) => {
                return Err(ServerError::Log(LogError::InvalidArgument(
                    "give index or leaf_hash".into(),
                )));
            }
        };
        let p = log
            .inclusion_proof(at, param_u64(&q, "size")?.unwrap_or(0))
            .await?;
        let path = b64s(&p.path);
        Ok(serde_json::json!({
            "index": p.index.0,
            "size": p.size.0,
            "leaf_hash": b64(&p.leaf_hash.0),
            "path": path,
        }))
    })
    .await
}

/// `GET /logs/<name>/proof/consistency?old=A[&new=B]`: the consistency
/// proof between two sizes (default new: the latest checkpoint's):
/// `{"old","new","path":[…]}`.
async fn consistency_json(
    State(h): State<Http>,
    Path(log): Path<String>,
    axum::extract::Query(q): Params,
    creds: Creds,
) -> Response {
    json_read(h, log, creds, |log| async move {
        let old = param_u64(&q, "old")?.unwrap_or(0);
        let new = param_u64(&q, "new")?.unwrap_or(0);
        let (o, n, path) = log.consistency_proof(old, new).await?;
        let path = b64s(&path);
        Ok(serde_json::json!({"old": o.0, "new": n.0, "path": path}))
    })
    .await
}

/// `GET /logs/<name>/subjects/<key id>`: whether the subject behind a
/// sealed value's key id still has its key: `{"key_id","state"}` with
/// `state` `live`, `erased` (and `erasure_record`, the index of the
/// erasure record, once written) or `unknown`. Erasures are public in the
/// log anyway (its erasure records); a key id is a keyed hash.
async fn subject_json(
    State(h): State<Http>,
    Path((log, kid)): Path<(String, String)>,
    creds: Creds,
) -> Response {
    json_read(h, log, creds, |log| async move {
        Ok(match log.subject_state(&kid).await? {
            cairn_log::SubjectState::Live => serde_json::json!({"key_id": kid, "state": "live"}),
            cairn_log::SubjectState::Erased(at) => {
                serde_json::json!({"key_id": kid, "state": "erased", "erasure_record": at})
            }
            cairn_log::SubjectState::Unknown => {
                serde_json::json!({"key_id": kid, "state": "unknown"})
            }
        })
    })
    .await
}

/// Entries one `GET /logs/<name>/search` reads at most.
const SEARCH_SPAN: u64 = 65_536;

/// Whether `t` is a keyed token as masking writes it:
/// `tok:<epoch>:<base64url>` (cairn-masking's `token` action).
fn is_token(t: &str) -> bool {
    let mut parts = t.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("tok"), Some(epoch), Some(mac))
            if !epoch.is_empty()
                && epoch.len() <= 20
                && epoch.bytes().all(|b| b.is_ascii_digit())
                && !mac.is_empty()
                && mac.len() <= 64
                && mac.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    )
}

/// `GET /logs/<name>/search?token=tok:…[&before=N]`: the entries whose
/// masked leaf holds exactly this keyed token (as a JSON string), newest
/// first, among the up to 65,536 entries before `before` (default: the
/// tree size): `{"token","matches":[…],"scanned_from","before"}`. The page
/// asks again with `before = scanned_from` to search older entries, so
/// every request does bounded work. The token is the stored (keyed) value:
/// nothing here reverses it.
async fn search_json(
    State(h): State<Http>,
    Path(log): Path<String>,
    axum::extract::Query(q): Params,
    creds: Creds,
) -> Response {
    json_read(h, log, creds, |log| async move {
        let token = q.get("token").map(String::as_str).unwrap_or_default();
        if !is_token(token) {
            // Not echoed: a client typed it, and it may be a raw value.
            return Err(ServerError::Log(LogError::InvalidArgument(format!(
                "token must be a keyed token as stored, tok:<epoch>:<base64url> ({} bytes given)",
                token.len()
            ))));
        }
        let size = log.latest().size.0;
        let before = param_u64(&q, "before")?.unwrap_or(size);
        if before > size {
            return Err(ServerError::Log(LogError::OutOfRange(format!(
                "before {before} is beyond the tree of {size}"
            ))));
        }
        let from = before.saturating_sub(SEARCH_SPAN);
        let needle = format!("\"{token}\"");
        let mut matches = Vec::new();
        let mut at = from;
        while at < before {
            let n = (before - at).min(4096);
            let got = log.entries(LeafIndex(at), n as usize).await?;
            if got.is_empty() {
                break;
            }
            for (i, e) in got.iter().enumerate() {
                if memchr::memmem::find(e, needle.as_bytes()).is_some() {
                    matches.push(at + i as u64);
                }
            }
            at += got.len() as u64;
        }
        matches.reverse();
        Ok(serde_json::json!({
            "token": token,
            "matches": matches,
            "scanned_from": from,
            "before": before,
        }))
    })
    .await
}

/// OTLP/HTTP alone (`POST /v1/logs`), for OTLP's own listener.
pub fn otlp_router(service: &crate::service::LogService) -> Router {
    let inner = service.shared();
    let (logs, auth) = (inner.logs.clone(), inner.auth.clone());
    let ingest_limit = axum::extract::DefaultBodyLimit::max(crate::service::MAX_OTLP_BYTES);
    Router::new()
        .route("/v1/logs", post(otlp_http).layer(ingest_limit))
        .with_state(Http { logs, auth, inner })
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn default_checkpoint(State(h): State<Http>, creds: Creds) -> Response {
    checkpoint(State(h), Path(String::new()), creds).await
}

async fn checkpoint(State(h): State<Http>, Path(log): Path<String>, creds: Creds) -> Response {
    let log = match h.log(&creds, &log) {
        Ok(l) => l,
        Err(e) => return e.into_http(),
    };
    let note = match h.logs.witnessing(log.name()) {
        None => log.latest().note.clone(),
        Some(w) => match w.latest() {
            Some(c) => c.note.clone(),
            None => {
                let mut r = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no checkpoint has reached the witness quorum yet\n".into(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        },
    };
    let mut r = text(StatusCode::OK, note);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// One log in `GET /logs`.
#[derive(serde::Serialize)]
struct LogJson {
    name: String,
    origin: String,
    vkey: String,
    size: Option<u64>,
    checkpoint: Option<String>,
    frozen: bool,
    healthy: bool,
    unhealthy: Option<String>,
    default: bool,
    /// `writer`, `standby` or `read-only` (absent if it could not start).
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    /// The witnesses' verifier keys (empty: none).
    witnesses: Vec<String>,
    /// Cosignatures a checkpoint needs (0: no witnesses).
    witness_quorum: u32,
}

/// `GET /logs`: every log the caller may read, as JSON.
async fn list(State(h): State<Http>, creds: Creds) -> Response {
    let id = match h.identity(&creds, Scope::Read) {
        Ok(i) => i,
        Err(e) => return e.into_http(),
    };
    let logs: Vec<LogJson> = h
        .logs
        .registry
        .iter()
        .filter(|(n, _)| id.as_ref().is_none_or(|i| i.may_use(n.as_str())))
        .map(|(n, hosted)| {
            let i = crate::service::log_info(&h.logs, n, hosted);
            LogJson {
                size: i.checkpoint.as_ref().map(|c| c.size),
                checkpoint: i.checkpoint.map(|c| c.note),
                healthy: i.unhealthy.is_empty(),
                unhealthy: (!i.unhealthy.is_empty()).then_some(i.unhealthy),
                name: i.name,
                origin: i.origin,
                vkey: i.vkey,
                frozen: i.frozen,
                default: i.is_default,
                role: (!i.role.is_empty()).then_some(i.role),
                witnesses: i.witnesses,
                witness_quorum: i.witness_quorum,
            }
        })
        .collect();
    match serde_json::to_string_pretty(&logs) {
        Ok(body) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body + "\n",
        )
            .into_response(),
        Err(e) => ServerError::Log(LogError::Unavailable(format!("listing logs: {e}"))).into_http(),
    }
}

/// Why one log is not healthy, if it is not: it stopped writing (a fatal
/// store error: reads go on, appends are refused), its store could not be
/// opened, or its fork guard lags the store (a guard write failed; the log
/// writes on, and the next checkpoint tries the guard again). A frozen
/// log is healthy: it is meant to take no appends.
fn unhealthy(hosted: &cairn_log::Hosted) -> Option<String> {
    match hosted {
        cairn_log::Hosted::Failed { reason, .. } => Some(format!("not serving: {reason}")),
        cairn_log::Hosted::Running(l) => {
            let halted = l.halted();
            let guard = l.sequencer().guard_lag().borrow().clone();
            match (halted, guard) {
                (Some(why), _) => Some(format!("the log has stopped writing: {why}")),
                (None, Some(why)) => Some(format!(
                    "the log is writing, but its fork guard lags: {why}"
                )),
                (None, None) => None,
            }
        }
    }
}

/// `200 ok` while every log is healthy; `503` naming each log that is
/// not, and why. Open to everyone, like the gRPC health service: it says
/// only whether the logs are writing (reasons are client-safe summaries).
async fn healthz(State(h): State<Http>) -> Response {
    let bad: Vec<String> = h
        .logs
        .registry
        .iter()
        .filter_map(|(n, hosted)| unhealthy(hosted).map(|why| format!("log \"{n}\": {why}")))
        .collect();
    if bad.is_empty() {
        text(StatusCode::OK, "ok\n".into())
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, bad.join("\n") + "\n")
    }
}

/// `200 ok` while every log is healthy *and written by this process*:
/// the readiness of a server that takes appends. A warm standby or a read
/// replica answers `503` naming its role (it is healthy: `/healthz`).
async fn healthz_writer(State(h): State<Http>) -> Response {
    let bad: Vec<String> = h
        .logs
        .registry
        .iter()
        .filter_map(|(n, hosted)| {
            let why = match hosted {
                cairn_log::Hosted::Running(l) if l.role() != "writer" => {
                    Some(format!("this server is a {} of it", l.role()))
                }
                other => unhealthy(other),
            };
            why.map(|why| format!("log \"{n}\": {why}"))
        })
        .collect();
    if bad.is_empty() {
        text(StatusCode::OK, "ok\n".into())
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, bad.join("\n") + "\n")
    }
}

/// One log's health, as `/healthz` says it.
async fn log_healthz(State(h): State<Http>, Path(log): Path<String>) -> Response {
    let found = h.logs.registry.iter().find(|(n, _)| n.as_str() == log);
    match found {
        None => ServerError::from(cairn_log::LogError::NotFound(format!(
            "no log has that name ({} bytes); GET /logs lists them",
            log.len()
        )))
        .into_http(),
        Some((_, hosted)) => match unhealthy(hosted) {
            None => text(StatusCode::OK, "ok\n".into()),
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why + "\n"),
        },
    }
}

async fn metrics(State(h): State<Http>, creds: Creds) -> Response {
    if let Err(e) = h.identity(&creds, Scope::Admin) {
        return e.into_http();
    }
    // A log that could not start reports only `cairn_log_halted 1`.
    let owned: Vec<(&str, Arc<cairn_log::metrics::LogMetrics>)> = h
        .logs
        .registry
        .iter()
        .map(|(n, hosted)| match hosted {
            cairn_log::Hosted::Running(l) => (n.as_str(), l.metrics().clone()),
            cairn_log::Hosted::Failed { .. } => {
                let m = cairn_log::metrics::LogMetrics::default();
                m.halted.store(1, std::sync::atomic::Ordering::Relaxed);
                (n.as_str(), Arc::new(m))
            }
        })
        .collect();
    let logs: Vec<(&str, &cairn_log::metrics::LogMetrics)> =
        owned.iter().map(|(n, m)| (*n, &**m)).collect();
    text(StatusCode::OK, crate::metrics::METRICS.render(&logs))
}

async fn default_tile(State(h): State<Http>, Path(rest): Path<String>, creds: Creds) -> Response {
    tile(State(h), Path((String::new(), rest)), creds).await
}

async fn tile(
    State(h): State<Http>,
    Path((log, rest)): Path<(String, String)>,
    creds: Creds,
) -> Response {
    let log = match h.log(&creds, &log) {
        Ok(l) => l,
        Err(e) => return e.into_http(),
    };
    let path = format!("tile/{rest}");
    let parsed = match TilePath::parse(&path) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let size = log.latest().size;
    let (full, body) = match parsed {
        TilePath::Hashes(t) => {
            // The tile must exist at this width in the published tree.
            match Tile::at_size(t.level, t.index, size) {
                Some(have) if have.width >= t.width => {}
                _ => return text(StatusCode::NOT_FOUND, "no such tile\n".into()),
            }
            let store = log.store().clone();
            let read = tokio::task::spawn_blocking(move || store.read_tiles(&[t])).await;
            match read {
                Ok(Ok(mut tiles)) => {
                    let hashes = tiles.pop().unwrap_or_default();
                    let mut bytes = Vec::with_capacity(hashes.len() * 32);
                    for x in hashes {
                        bytes.extend_from_slice(&x.0);
                    }
                    (t.is_full(), bytes)
                }
                Ok(Err(e)) => return ServerError::from(e).into_http(),
                Err(e) => {
                    return ServerError::Log(LogError::Unavailable(format!("worker failed: {e}")))
                        .into_http();
                }
            }
        }
        TilePath::Entries { index, width } => {
            let start = index.saturating_mul(TILE_WIDTH);
            let have = size.0.saturating_sub(start).min(TILE_WIDTH);
            if have < u64::from(width) {
                return text(StatusCode::NOT_FOUND, "no such entry bundle\n".into());
            }
            let store = log.store().clone();
            let read = tokio::task::spawn_blocking(move || {
                store.read_entries(LeafIndex(start), usize::from(width))
            })
            .await;
            match read {
                Ok(Ok(entries)) => match encode_entry_bundle(entries.iter().map(Vec::as_slice)) {
                    Ok(b) => (u64::from(width) == TILE_WIDTH, b),
                    Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "bad entry\n".into()),
                },
                Ok(Err(e)) => return ServerError::from(e).into_http(),
                Err(e) => {
                    return ServerError::Log(LogError::Unavailable(format!("worker failed: {e}")))
                        .into_http();
                }
            }
        }
    };
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// Inflates a gzip body, refusing one that inflates past `max` bytes (a
/// small body can inflate a thousandfold).
fn gunzip(body: &[u8], max: usize) -> Result<bytes::Bytes, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| "the body is not valid gzip".to_owned())?;
    if out.len() > max {
        return Err(format!("the body inflates past {max} bytes"));
    }
    Ok(out.into())
}

/// `POST /v1/logs`: OTLP/HTTP, `application/x-protobuf` or
/// `application/json`, uncompressed or gzip, answered in the same encoding
/// (`crate::otlp`).
async fn otlp_http(
    State(h): State<Http>,
    creds: Creds,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    use cairn_api::opentelemetry::proto::collector::logs::v1 as collector;
    let id = match h.identity_for_append(&creds) {
        Ok(i) => i,
        Err(e) => return e.into_http(),
    };
    let body = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => body,
        Some(b"gzip") => match gunzip(&body, crate::service::MAX_OTLP_BYTES) {
            Ok(b) => b,
            Err(why) => {
                return ServerError::Log(LogError::InvalidArgument(format!("OTLP export: {why}")))
                    .into_http();
            }
        },
        Some(_) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be gzip or identity\n".into(),
            );
        }
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = match ct.as_str() {
        "application/json" => true,
        "application/x-protobuf" => false,
        _ => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/x-protobuf or application/json\n".into(),
            );
        }
    };
    let req = if json {
        crate::otlp::decode_json(&body)
    } else {
        <collector::ExportLogsServiceRequest as prost::Message>::decode(body.as_ref())
            .map_err(|_| "not an OTLP ExportLogsServiceRequest".to_owned())
    };
    drop(body);
    let req = match req {
        Ok(r) => r,
        Err(why) => {
            return ServerError::Log(LogError::InvalidArgument(format!("OTLP export: {why}")))
                .into_http();
        }
    };
    let log = h.logs.otlp_log.clone();
    let out = match crate::otlp::ingest(&h.inner, id.as_ref(), req, &log).await {
        Ok(o) => o,
        Err(e) => return e.into_http(),
    };
    let resp = out.response();
    if json {
        let body = match &resp.partial_success {
            None => serde_json::json!({}),
            Some(p) => serde_json::json!({"partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }}),
        };
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            prost::Message::encode_to_vec(&resp),
        )
            .into_response()
    }
}

async fn default_append(
    State(h): State<Http>,
    creds: Creds,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    append(State(h), Path(String::new()), creds, headers, body).await
}

/// Longest `Idempotency-Key` header accepted (each line's key is the
/// header, `/`, and the line number).
const MAX_IDEMPOTENCY_HEADER: usize = 100;

/// `POST /logs/<name>/append` (and `/append` for the default log): one
/// JSON event per line (NDJSON); one answer per non-blank line, in order,
/// as NDJSON: a receipt (`line`, `index`, `leaf_hash`, `tree_size`,
/// `checkpoint`, `inclusion_proof`) or `{"line": N, "error": {"code",
/// "message"}}` for a refused line (never its content). With an
/// `Idempotency-Key` header, line N is appended with the key
/// `<header>/<N>`: resending the same body with the same header appends
/// nothing twice.
async fn append(
    State(h): State<Http>,
    Path(log): Path<String>,
    creds: Creds,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let id = match h.identity_for_append(&creds) {
        Ok(i) => i,
        Err(e) => return e.into_http(),
    };
    let t = match h.inner.logs.target(&log, id.as_ref()) {
        Ok(t) => Arc::new(t),
        Err(e) => return e.into_http(),
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) if v.len() <= MAX_IDEMPOTENCY_HEADER => Some(v.as_bytes().to_vec()),
        Some(v) => {
            return ServerError::Log(LogError::InvalidArgument(format!(
                "Idempotency-Key is {} bytes; the limit is {MAX_IDEMPOTENCY_HEADER}",
                v.len()
            )))
            .into_http();
        }
    };
    let mut lines: Vec<(usize, crate::pb::AppendRequest)> = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let idempotency_key = key
            .as_ref()
            .map(|k| [k.as_slice(), format!("/{}", i + 1).as_bytes()].concat())
            .unwrap_or_default();
        lines.push((
            i + 1,
            crate::pb::AppendRequest {
                event: line.to_vec(),
                content_type: crate::pb::ContentType::Json as i32,
                idempotency_key,
                ..Default::default()
            },
        ));
    }
    drop(body);
    let mut out = String::new();
    let mut rest = lines.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<_> = rest
            .by_ref()
            .take(crate::service::MAX_BATCH_EVENTS)
            .collect();
        let numbers: Vec<usize> = chunk.iter().map(|(n, _)| *n).collect();
        let resp = h
            .inner
            .batch(
                t.clone(),
                id.as_ref(),
                crate::pb::AppendBatchRequest {
                    events: chunk.into_iter().map(|(_, e)| e).collect(),
                    log: log.clone(),
                    receipt_form: crate::pb::ReceiptForm::Proof as i32,
                },
            )
            .await;
        let resp = match resp {
            Ok(r) => r,
            // Lines answered before this batch stay answered.
            Err(e) if out.is_empty() => return e.into_http(),
            Err(e) => {
                let message = e.to_string();
                let code = tonic::Status::from(e).code() as i32;
                for n in numbers {
                    out.push_str(&line_error(n, code, &message));
                }
                continue;
            }
        };
        for (n, r) in numbers.into_iter().zip(resp.receipts) {
            match r.error {
                Some(e) => out.push_str(&line_error(n, e.code, &e.message)),
                None => {
                    let cp = resp
                        .checkpoints
                        .iter()
                        .find(|c| c.size == r.checkpoint_size)
                        .map(|c| c.note.clone());
                    let proof: Vec<String> = r
                        .inclusion_proof
                        .iter()
                        .map(|h| cairn_core::encoding::encode_base64(h))
                        .collect();
                    let v = serde_json::json!({
                        "line": n,
                        "index": r.index,
                        "leaf_hash": cairn_core::encoding::encode_base64(&r.leaf_hash),
                        "tree_size": r.checkpoint_size,
                        "checkpoint": cp,
                        "inclusion_proof": proof,
                        "duplicate": r.duplicate,
                    });
                    out.push_str(&v.to_string());
                    out.push('\n');
                }
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        out,
    )
        .into_response()
}

/// A refused line's answer: its number, the gRPC code's name, the reason.
fn line_error(line: usize, code: i32, message: &str) -> String {
    let v = serde_json::json!({
        "line": line,
        "error": {"code": format!("{:?}", tonic::Code::from(code)), "message": message},
    });
    format!("{v}\n")
}
