"""Exports log records to Cairn with the real OpenTelemetry Python SDK.

    python otel_logs.py MODE ENDPOINT COUNT CANARY [TOKEN]

MODE is grpc (OTLP/gRPC), http (OTLP/HTTP protobuf) or json (OTLP/HTTP
JSON). Each record goes through Python's logging module and the SDK's
LoggingHandler with a batch processor, as an application would send it:
the message and an attribute hold CANARY (a PII value Cairn must mask).
Exits 0 once every record was exported successfully, 1 otherwise.
"""

import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource


def exporter(mode, endpoint, headers):
    if mode == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, insecure=True, headers=headers)
    if mode == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, headers=dict(headers))
    if mode == "json":
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, headers=dict(headers))
    raise SystemExit(f"unknown mode {mode}")


class Counting:
    """Wraps an exporter and counts what it reports as exported."""

    def __init__(self, inner):
        self.inner = inner
        self.ok = 0
        self.failed = 0

    def export(self, batch):
        result = self.inner.export(batch)
        if result == LogRecordExportResult.SUCCESS:
            self.ok += len(batch)
        else:
            self.failed += len(batch)
        return result

    def force_flush(self, timeout_millis=30000):
        return True

    def shutdown(self):
        self.inner.shutdown()


def main():
    mode, endpoint, count, canary = sys.argv[1:5]
    token = sys.argv[5] if len(sys.argv) > 5 else None
    headers = (("authorization", f"Bearer {token}"),) if token else ()
    counting = Counting(exporter(mode, endpoint, headers))
    provider = LoggerProvider(resource=Resource.create({"service.name": f"py-{mode}"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(counting, max_export_batch_size=128))
    log = logging.getLogger(f"cairn.interop.{mode}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    for i in range(int(count)):
        log.info("order %d paid by %s", i, canary, extra={"user.email": canary, "seq": i, "mode": mode})
    provider.force_flush()
    provider.shutdown()
    print(f"exported {counting.ok} failed {counting.failed}")
    sys.exit(0 if counting.ok == int(count) and counting.failed == 0 else 1)


if __name__ == "__main__":
    main()
