//! The one mapping from internal errors (the engine's, storage's, masking's,
//! authorization's) to gRPC status codes and HTTP statuses (the table in
//! docs/api.md), and the one place that counts them in
//! `cairn_errors_total`. The witness's errors have their own table (the
//! tlog-witness spec fixes the HTTP codes), [`witness_status`] for gRPC. Messages never echo event content: masking errors name
//! byte offsets only, and store errors name sizes and paths.

use cairn_core::proof::{ProofError, ProveError};
use cairn_masking::MaskError;
use cairn_storage::StoreError;
use tonic::Status;

use crate::auth::AuthError;
use crate::sequencer::AppendError;
use cairn_log::LogError;

/// Everything a request can fail with: the engine's errors (which carry
/// storage's, masking's and the sequencer's) and authorization's.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// From the engine: the request, the log's state, storage.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Authentication, authorization or a quota
    /// ([`crate::auth::Authorizer`]).
    #[error("{0}")]
    Auth(#[from] AuthError),
}

/// The engine's sources of errors, through [`LogError`]'s mapping.
macro_rules! via_log_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ServerError {
            fn from(e: $t) -> Self {
                ServerError::Log(LogError::from(e))
            }
        }
    )*};
}
via_log_error!(
    AppendError,
    StoreError,
    ProofError,
    ProveError<StoreError>,
    MaskError
);

impl ServerError {
    /// The status family in snake case: the label of
    /// `cairn_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            ServerError::Log(LogError::Mask(_) | LogError::InvalidArgument(_)) => {
                "invalid_argument"
            }
            ServerError::Log(LogError::OutOfRange(_)) => "out_of_range",
            ServerError::Log(LogError::NotFound(_)) => "not_found",
            ServerError::Log(LogError::Busy) => "resource_exhausted",
            ServerError::Log(LogError::Unavailable(_)) => "unavailable",
            ServerError::Log(LogError::FailedPrecondition(_)) => "failed_precondition",
            ServerError::Log(LogError::DeadlineExceeded(_)) => "deadline_exceeded",
            ServerError::Log(LogError::AlreadyExists(_)) => "already_exists",
            ServerError::Auth(AuthError::Unauthenticated(_)) => "unauthenticated",
            ServerError::Auth(AuthError::PermissionDenied { .. } | AuthError::LogDenied { .. }) => {
                "permission_denied"
            }
            ServerError::Auth(AuthError::Exhausted { .. }) => "resource_exhausted",
        }
    }

    /// The HTTP status of the same condition (the table in docs/api.md).
    pub fn http_status(&self) -> u16 {
        match self {
            ServerError::Log(LogError::Mask(_) | LogError::InvalidArgument(_)) => 400,
            ServerError::Log(LogError::OutOfRange(_) | LogError::NotFound(_)) => 404,
            ServerError::Log(LogError::Busy) | ServerError::Auth(AuthError::Exhausted { .. }) => {
                429
            }
            ServerError::Log(LogError::Unavailable(_)) => 503,
            ServerError::Log(LogError::FailedPrecondition(_)) => 412,
            ServerError::Log(LogError::DeadlineExceeded(_)) => 504,
            ServerError::Log(LogError::AlreadyExists(_)) => 409,
            ServerError::Auth(AuthError::Unauthenticated(_)) => 401,
            ServerError::Auth(AuthError::PermissionDenied { .. } | AuthError::LogDenied { .. }) => {
                403
            }
        }
    }

    /// Counts the error and answers it over HTTP: its status, its message
    /// as text, and `Retry-After` (seconds) for a quota.
    pub fn into_http(self) -> axum::response::Response {
        use axum::http::{HeaderValue, StatusCode, header};
        use axum::response::IntoResponse;
        crate::metrics::METRICS.error(self.category());
        let code =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = match &self {
            ServerError::Auth(AuthError::Exhausted { retry_ms, .. }) => {
                Some(retry_ms.div_ceil(1000).max(1))
            }
            _ => None,
        };
        let mut r = (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{self}\n"),
        )
            .into_response();
        if let Some(s) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, s);
        }
        r
    }
}

impl From<ServerError> for Status {
    fn from(e: ServerError) -> Status {
        crate::metrics::METRICS.error(e.category());
        let msg = e.to_string();
        match e {
            ServerError::Log(LogError::Mask(_) | LogError::InvalidArgument(_)) => {
                Status::invalid_argument(msg)
            }
            ServerError::Log(LogError::OutOfRange(_)) => Status::out_of_range(msg),
            ServerError::Log(LogError::NotFound(_)) => Status::not_found(msg),
            ServerError::Log(LogError::Busy) => Status::resource_exhausted(msg),
            ServerError::Log(LogError::Unavailable(_)) => Status::unavailable(msg),
            ServerError::Log(LogError::FailedPrecondition(_)) => Status::failed_precondition(msg),
            ServerError::Log(LogError::DeadlineExceeded(_)) => Status::deadline_exceeded(msg),
            ServerError::Log(LogError::AlreadyExists(_)) => Status::already_exists(msg),
            ServerError::Auth(AuthError::Unauthenticated(_)) => Status::unauthenticated(msg),
            ServerError::Auth(AuthError::PermissionDenied { .. } | AuthError::LogDenied { .. }) => {
                Status::permission_denied(msg)
            }
            ServerError::Auth(AuthError::Exhausted { retry_ms, .. }) => {
                let mut s = Status::resource_exhausted(msg);
                if let Ok(v) = retry_ms.to_string().parse() {
                    s.metadata_mut().insert("retry-after-ms", v);
                }
                s
            }
        }
    }
}

/// The gRPC status of a witness error (the HTTP codes are the spec's:
/// `WitnessError::http_status`). A 409's latest size rides in the
/// `cairn-tlog-size` trailer.
pub fn witness_status(e: &cairn_client::witness::WitnessError) -> Status {
    use cairn_client::witness::WitnessError;
    let msg = e.to_string();
    match e {
        WitnessError::Malformed(_) | WitnessError::OldTooLarge { .. } => {
            Status::invalid_argument(msg)
        }
        WitnessError::Forbidden(_) => Status::permission_denied(msg),
        WitnessError::UnknownOrigin(_) => Status::not_found(msg),
        WitnessError::Conflict { latest } => {
            let mut s = Status::aborted(msg);
            if let Ok(v) = latest.to_string().parse() {
                s.metadata_mut().insert("cairn-tlog-size", v);
            }
            s
        }
        WitnessError::BadProof(_) => Status::failed_precondition(msg),
        WitnessError::Storage(_) => Status::unavailable(msg),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cairn_client::witness::WitnessError;
    use tonic::Code;

    /// Every row of the table in docs/api.md: gRPC code, HTTP status and
    /// metrics category, for one error of each kind.
    #[test]
    fn one_table_for_grpc_http_and_metrics() {
        let rows: Vec<(ServerError, Code, u16, &str)> = vec![
            (
                ServerError::Log(LogError::Mask(MaskError::TooDeep { limit: 1 })),
                Code::InvalidArgument,
                400,
                "invalid_argument",
            ),
            (
                ServerError::Log(LogError::InvalidArgument("x".into())),
                Code::InvalidArgument,
                400,
                "invalid_argument",
            ),
            (
                ServerError::Log(LogError::OutOfRange("x".into())),
                Code::OutOfRange,
                404,
                "out_of_range",
            ),
            (
                ServerError::Log(LogError::NotFound("x".into())),
                Code::NotFound,
                404,
                "not_found",
            ),
            (
                ServerError::Log(LogError::Busy),
                Code::ResourceExhausted,
                429,
                "resource_exhausted",
            ),
            (
                ServerError::Log(LogError::Unavailable("x".into())),
                Code::Unavailable,
                503,
                "unavailable",
            ),
            (
                ServerError::Log(LogError::FailedPrecondition("x".into())),
                Code::FailedPrecondition,
                412,
                "failed_precondition",
            ),
            (
                ServerError::Log(LogError::DeadlineExceeded("x".into())),
                Code::DeadlineExceeded,
                504,
                "deadline_exceeded",
            ),
            (
                ServerError::Log(LogError::AlreadyExists("x".into())),
                Code::AlreadyExists,
                409,
                "already_exists",
            ),
            (
                ServerError::Auth(AuthError::Unauthenticated("no token")),
                Code::Unauthenticated,
                401,
                "unauthenticated",
            ),
            (
                ServerError::Auth(AuthError::PermissionDenied {
                    name: "ingest".into(),
                    need: crate::auth::Scope::Read,
                }),
                Code::PermissionDenied,
                403,
                "permission_denied",
            ),
            (
                ServerError::Auth(AuthError::LogDenied {
                    name: "ingest".into(),
                    log: "payments".into(),
                }),
                Code::PermissionDenied,
                403,
                "permission_denied",
            ),
            (
                ServerError::Auth(AuthError::Exhausted {
                    what: "rate".into(),
                    retry_ms: 1500,
                }),
                Code::ResourceExhausted,
                429,
                "resource_exhausted",
            ),
        ];
        for (e, code, http, category) in rows {
            let what = format!("{e:?}");
            assert_eq!(e.http_status(), http, "{what}");
            assert_eq!(e.category(), category, "{what}");
            let quota = matches!(e, ServerError::Auth(AuthError::Exhausted { .. }));
            let (msg, status) = (e.to_string(), Status::from(e));
            assert_eq!(status.code(), code, "{what}");
            assert_eq!(status.message(), msg, "{what}");
            if quota {
                assert_eq!(status.metadata().get("retry-after-ms").unwrap(), "1500");
            }
        }
        // The engine's own errors, through the same table.
        let halted = ServerError::from(AppendError::Halted("corrupt".into()));
        assert_eq!(Status::from(halted).code(), Code::FailedPrecondition);
        let frozen = ServerError::from(AppendError::Frozen("log \"a\" is frozen".into()));
        assert_eq!(frozen.http_status(), 412);
        assert_eq!(Status::from(frozen).code(), Code::FailedPrecondition);
        let unknown = ServerError::from(
            cairn_log::Registry::new(cairn_log::LogName::default_log())
                .get("nope")
                .unwrap_err(),
        );
        assert_eq!(unknown.http_status(), 404);
        assert_eq!(Status::from(unknown).code(), Code::NotFound);
        let reused = ServerError::from(AppendError::KeyReused {
            index: cairn_core::LeafIndex(3),
        });
        assert_eq!(Status::from(reused).code(), Code::AlreadyExists);
        // Storage: a summary without paths, out-of-range kept apart.
        let io = ServerError::from(StoreError::Io("/srv/cairn/000012.log: EIO".into()));
        assert!(!io.to_string().contains("/srv"), "{io}");
        assert_eq!(io.http_status(), 503);
        let oor = ServerError::from(StoreError::OutOfRange { index: 9, size: 3 });
        assert_eq!(Status::from(oor).code(), Code::OutOfRange);
    }

    #[test]
    fn witness_errors_have_one_grpc_table() {
        for (e, code, http) in [
            (
                WitnessError::Malformed("x".into()),
                Code::InvalidArgument,
                400,
            ),
            (
                WitnessError::OldTooLarge { old: 2, size: 1 },
                Code::InvalidArgument,
                400,
            ),
            (
                WitnessError::Forbidden("x".into()),
                Code::PermissionDenied,
                403,
            ),
            (WitnessError::UnknownOrigin("x".into()), Code::NotFound, 404),
            (WitnessError::Conflict { latest: 7 }, Code::Aborted, 409),
            (
                WitnessError::BadProof("x".into()),
                Code::FailedPrecondition,
                422,
            ),
            (WitnessError::Storage("x".into()), Code::Unavailable, 500),
        ] {
            let s = witness_status(&e);
            assert_eq!((s.code(), e.http_status()), (code, http), "{e}");
            if let WitnessError::Conflict { latest } = e {
                assert_eq!(
                    s.metadata().get("cairn-tlog-size").unwrap(),
                    latest.to_string().as_str()
                );
            }
        }
    }
}
