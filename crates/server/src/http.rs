//! The HTTP side: C2SP tlog-tiles (`/checkpoint`, `/tile/<L>/<N>[.p/<W>]`,
//! `/tile/entries/<N>[.p/<W>]`), `/healthz` and `/metrics`.
//!
//! Full tiles never change, so they are served as immutable; partial tiles
//! and the checkpoint change with every batch and are not cached. Reads go
//! straight to the store.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cairn_core::hash::LeafIndex;
use cairn_core::tile::{TILE_WIDTH, Tile, TilePath, encode_entry_bundle};
use cairn_storage::LogStore;

use crate::auth::{Authorizer, Scope};
use crate::error::ServerError;
use crate::sequencer::Sequencer;
use crate::witnessing::Witnessing;

#[derive(Clone)]
struct Http {
    store: Arc<dyn LogStore>,
    seq: Sequencer,
    witnessing: Option<Witnessing>,
    auth: Option<Arc<Authorizer>>,
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
    /// `None` if allowed; otherwise the 401/403 answer.
    /// Public reads open `Read` only: `/metrics` (admin) stays closed.
    /// Refusals are counted in `cairn_errors_total`.
    fn deny(&self, creds: &Creds, need: Scope) -> Option<Response> {
        let a = self.auth.as_ref()?;
        if need == Scope::Read && a.public_reads() {
            return None;
        }
        match a.check_credentials(
            creds.header.as_deref(),
            creds.peer.as_deref().map(Vec::as_slice),
            need,
        ) {
            Ok(_) => None,
            Err(e) => Some(ServerError::Auth(e).into_http()),
        }
    }
}

/// The router. With witnesses configured, `/checkpoint` serves the newest
/// checkpoint that met the witness quorum (with their cosignatures).
pub fn router(
    store: Arc<dyn LogStore>,
    seq: Sequencer,
    witnessing: Option<Witnessing>,
    auth: Option<Arc<Authorizer>>,
) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Http {
            store,
            seq,
            witnessing,
            auth,
        })
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn checkpoint(State(h): State<Http>, creds: Creds) -> Response {
    if let Some(r) = h.deny(&creds, Scope::Read) {
        return r;
    }
    let note = match &h.witnessing {
        None => h.seq.head().borrow().note.clone(),
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

/// `200 ok` while the log can write; `503` with the reason once it has
/// stopped writing (a fatal store error: reads go on, appends are refused),
/// or while its fork guard lags the store (a guard write failed; the log
/// writes on, and the next checkpoint tries the guard again).
/// Open to everyone, like the gRPC health service: it says only whether
/// the log is writing (the reason is the client-safe summary).
async fn healthz(State(h): State<Http>) -> Response {
    let halted = h.seq.halted().borrow().clone();
    let guard = h.seq.guard_lag().borrow().clone();
    match (halted, guard) {
        (Some(why), _) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the log has stopped writing: {why}\n"),
        ),
        (None, Some(why)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the log is writing, but its fork guard lags: {why}\n"),
        ),
        (None, None) => text(StatusCode::OK, "ok\n".into()),
    }
}

async fn metrics(State(h): State<Http>, creds: Creds) -> Response {
    if let Some(r) = h.deny(&creds, Scope::Admin) {
        return r;
    }
    let size = h.seq.head().borrow().size.0;
    text(StatusCode::OK, crate::metrics::METRICS.render(size))
}

async fn tile(State(h): State<Http>, Path(rest): Path<String>, creds: Creds) -> Response {
    if let Some(r) = h.deny(&creds, Scope::Read) {
        return r;
    }
    let path = format!("tile/{rest}");
    let parsed = match TilePath::parse(&path) {
        Ok(p) => p,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let size = h.seq.head().borrow().size;
    let (full, body) = match parsed {
        TilePath::Hashes(t) => {
            // The tile must exist at this width in the published tree.
            match Tile::at_size(t.level, t.index, size) {
                Some(have) if have.width >= t.width => {}
                _ => return text(StatusCode::NOT_FOUND, "no such tile\n".into()),
            }
            let store = h.store.clone();
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
                    return ServerError::Unavailable(format!("worker failed: {e}")).into_http();
                }
            }
        }
        TilePath::Entries { index, width } => {
            let start = index.saturating_mul(TILE_WIDTH);
            let have = size.0.saturating_sub(start).min(TILE_WIDTH);
            if have < u64::from(width) {
                return text(StatusCode::NOT_FOUND, "no such entry bundle\n".into());
            }
            let store = h.store.clone();
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
                    return ServerError::Unavailable(format!("worker failed: {e}")).into_http();
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
