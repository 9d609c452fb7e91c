//! `cairn-api`: the wire API, `cairn.v1` (`proto/cairn/v1/log.proto` and
//! `witness.proto`), as generated Rust: the messages, the `Log` and
//! `Witness` clients and servers, and the encoded descriptor set for gRPC
//! reflection. Compatibility rules: `proto/README.md`.
//!
//! Clients (the `cairn` client commands, anything that talks to a log)
//! depend on this crate alone, not on the server: it pulls in prost and
//! tonic, never RocksDB or an HTTP framework.

#![allow(missing_docs, unreachable_pub, clippy::all)]

tonic::include_proto!("cairn.v1");

/// OpenTelemetry's OTLP logs (`proto/opentelemetry`, v1.9.0): the
/// `LogsService` the OTLP receiver serves, and its messages.
pub mod opentelemetry {
    pub mod proto {
        pub mod common {
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.common.v1");
            }
        }
        pub mod resource {
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.resource.v1");
            }
        }
        pub mod logs {
            pub mod v1 {
                tonic::include_proto!("opentelemetry.proto.logs.v1");
            }
        }
        pub mod collector {
            pub mod logs {
                pub mod v1 {
                    tonic::include_proto!("opentelemetry.proto.collector.logs.v1");
                }
            }
        }
    }
}

/// The encoded file descriptor set of `cairn.v1`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cairn_v1_descriptor.bin"));
