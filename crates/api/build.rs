//! Compiles proto/cairn/v1/{log,witness}.proto and OTLP's logs service with protox (pure Rust: no protoc on
//! the build machine) and generates the tonic service and client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time: a build script compiled once (or taken from a
    // compiler cache) may run for a checkout in another folder.
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("cairn/v1/log.proto"),
        root.join("cairn/v1/witness.proto"),
        // OpenTelemetry's OTLP logs service (v1.9.0, Apache-2.0), for the
        // OTLP receiver.
        root.join("opentelemetry/proto/collector/logs/v1/logs_service.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    // The descriptor set, for gRPC server reflection.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("cairn_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
