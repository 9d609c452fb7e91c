//! Optional OpenTelemetry trace export (OTLP over gRPC), configured from
//! the environment; see `init_logging` in main.rs.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;

/// Keeps the exporter alive; dropping it flushes queued spans and stops
/// the exporter's runtime.
pub(crate) struct Otel {
    provider: SdkTracerProvider,
    // Dropped after the provider: the tonic exporter runs on it.
    _rt: tokio::runtime::Runtime,
}

impl Drop for Otel {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("cairn: OpenTelemetry shutdown: {e}");
        }
    }
}

/// A boxed layer over the registry.
type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The OTLP layer when `CAIRN_OTLP_ENDPOINT` is set.
pub(crate) fn from_env() -> Result<Option<(Otel, BoxedLayer)>> {
    let Ok(endpoint) = std::env::var("CAIRN_OTLP_ENDPOINT") else {
        return Ok(None);
    };
    let filter = std::env::var("CAIRN_OTLP_FILTER")
        .unwrap_or_else(|_| "info,cairn_server=debug,cairn_log=debug".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("CAIRN_OTLP_FILTER {filter:?}"))?;
    // The tonic exporter needs a Tokio runtime of its own: the command's
    // runtime may not exist yet, and must not be held up by exports.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cairn-otlp")
        .enable_all()
        .build()
        .context("starting the OpenTelemetry runtime")?;
    let provider = rt.block_on(async {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .with_context(|| format!("OTLP exporter for {endpoint}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("cairn")
            .build();
        Ok::<_, anyhow::Error>(
            SdkTracerProvider::builder()
                .with_resource(resource)
                .with_batch_exporter(exporter)
                .build(),
        )
    })?;
    let tracer = provider.tracer("cairn");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter)
        .boxed();
    Ok(Some((Otel { provider, _rt: rt }, layer)))
}
