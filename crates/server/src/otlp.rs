//! The OTLP logs receiver (OpenTelemetry protocol, logs signal): OTLP/gRPC
//! `opentelemetry.proto.collector.logs.v1.LogsService/Export` and OTLP/HTTP
//! `POST /v1/logs` (`application/x-protobuf` and `application/json`).
//!
//! Each `LogRecord` becomes one event (the JSON shape in
//! docs/ingestion.md), masked and appended like any other, to the log its
//! resource names with the attribute `cairn.log`, or else to the
//! receiver's log (`otlp_log`, default: the server's default log). An
//! export succeeds only once every accepted record is durable and covered
//! by a signed checkpoint; records refused one by one (malformed, too
//! large, an unknown log, a log the caller may not use, a frozen log) are
//! counted in `partial_success` with the first reason (which never holds
//! record content). Refusals of the whole export: credentials, the rate
//! limit (retryable: gRPC `RESOURCE_EXHAUSTED`, HTTP 429 with
//! `Retry-After`), a full queue (retryable: `UNAVAILABLE`, HTTP 503;
//! checked before anything is queued, so a retry appends nothing twice), a
//! malformed payload (`INVALID_ARGUMENT`, HTTP 400).

use std::sync::Arc;

use cairn_api::opentelemetry::proto::collector::logs::v1 as collector;
use cairn_api::opentelemetry::proto::common::v1 as common;
use cairn_api::opentelemetry::proto::logs::v1 as logs;
use cairn_api::opentelemetry::proto::resource::v1 as resource;
use cairn_core::encoding::encode_base64;
use cairn_log::LogError;
use serde_json::Value;

use crate::auth::Identity;
use crate::error::ServerError;
use crate::pb;
use crate::service::{Inner, MAX_BATCH_EVENTS};

/// The resource attribute that picks a record's log.
pub const LOG_ATTRIBUTE: &str = "cairn.log";

/// Most records in one export (a Collector's batches are far smaller).
pub const MAX_EXPORT_RECORDS: usize = 100_000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One record as the event Cairn masks and appends (docs/ingestion.md),
/// written straight to JSON bytes (no `serde_json::Value` per record; key
/// order does not matter, the leaf is canonical JSON). Empty fields are
/// left out; an `AnyValue` is written as itself (strings, booleans,
/// numbers, a non-finite double as a string, bytes as base64, arrays,
/// key-value lists as objects where a repeated key keeps its last value);
/// times are decimal strings (JSON numbers lose precision past 2^53).
pub fn record_event_bytes(
    resource: Option<&resource::Resource>,
    scope: Option<&common::InstrumentationScope>,
    r: &logs::LogRecord,
    out: &mut Vec<u8>,
) {
    let mut w = Obj::new(out);
    if let Some(b) = &r.body {
        w.key("body");
        any_bytes(b, w.out);
    }
    if !r.attributes.is_empty() {
        w.key("attributes");
        kv_bytes(&r.attributes, w.out);
    }
    if let Some(res) = resource
        && !res.attributes.is_empty()
    {
        w.key("resource");
        kv_bytes(&res.attributes, w.out);
    }
    if let Some(sc) = scope
        && (!sc.name.is_empty() || !sc.version.is_empty() || !sc.attributes.is_empty())
    {
        w.key("scope");
        let mut s2 = Obj::new(w.out);
        if !sc.name.is_empty() {
            s2.key("name");
            json_str(&sc.name, s2.out);
        }
        if !sc.version.is_empty() {
            s2.key("version");
            json_str(&sc.version, s2.out);
        }
        if !sc.attributes.is_empty() {
            s2.key("attributes");
            kv_bytes(&sc.attributes, s2.out);
        }
        s2.end();
    }
    if r.severity_number != 0 {
        w.key("severity_number");
        w.out
            .extend_from_slice(r.severity_number.to_string().as_bytes());
    }
    if !r.severity_text.is_empty() {
        w.key("severity_text");
        json_str(&r.severity_text, w.out);
    }
    if r.time_unix_nano != 0 {
        w.key("time_unix_nano");
        w.out
            .extend_from_slice(format!("\"{}\"", r.time_unix_nano).as_bytes());
    }
    if r.observed_time_unix_nano != 0 {
        w.key("observed_time_unix_nano");
        w.out
            .extend_from_slice(format!("\"{}\"", r.observed_time_unix_nano).as_bytes());
    }
    if !r.trace_id.is_empty() {
        w.key("trace_id");
        w.out
            .extend_from_slice(format!("\"{}\"", hex(&r.trace_id)).as_bytes());
    }
    if !r.span_id.is_empty() {
        w.key("span_id");
        w.out
            .extend_from_slice(format!("\"{}\"", hex(&r.span_id)).as_bytes());
    }
    if r.flags != 0 {
        w.key("flags");
        w.out.extend_from_slice(r.flags.to_string().as_bytes());
    }
    if !r.event_name.is_empty() {
        w.key("event_name");
        json_str(&r.event_name, w.out);
    }
    w.end();
}

/// Writes a JSON object's members, comma-separated.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json_str(k, self.out);
        self.out.push(b':');
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    // Writing a `str` to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn any_bytes(v: &common::AnyValue, out: &mut Vec<u8>) {
    use common::any_value::Value as V;
    match &v.value {
        None => out.extend_from_slice(b"null"),
        Some(V::StringValue(s)) => json_str(s, out),
        Some(V::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(V::IntValue(i)) => out.extend_from_slice(i.to_string().as_bytes()),
        Some(V::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
            None => json_str(&d.to_string(), out),
        },
        Some(V::BytesValue(b)) => json_str(&encode_base64(b), out),
        Some(V::ArrayValue(a)) => {
            out.push(b'[');
            for (i, x) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                any_bytes(x, out);
            }
            out.push(b']');
        }
        Some(V::KvlistValue(kv)) => kv_bytes(&kv.values, out),
    }
}

/// A key-value list as an object; a repeated key: the last wins.
fn kv_bytes(kvs: &[common::KeyValue], out: &mut Vec<u8>) {
    let mut w = Obj::new(out);
    for (i, kv) in kvs.iter().enumerate() {
        if kvs[i + 1..].iter().any(|later| later.key == kv.key) {
            continue;
        }
        w.key(&kv.key);
        match &kv.value {
            Some(v) => any_bytes(v, w.out),
            None => w.out.extend_from_slice(b"null"),
        }
    }
    w.end();
}

/// The log a resource's records go to: its `cairn.log` attribute, if it
/// has one (a string), else `default`.
fn resource_log<'a>(res: Option<&'a resource::Resource>, default: &'a str) -> &'a str {
    res.and_then(|r| {
        r.attributes
            .iter()
            .find(|kv| kv.key == LOG_ATTRIBUTE)
            .and_then(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(common::any_value::Value::StringValue(s)) => Some(s.as_str()),
                    _ => None,
                },
            )
    })
    .unwrap_or(default)
}

/// What one export did: records appended, records refused and the first
/// refusal's reason (no record content).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Appended (durable and checkpointed).
    pub accepted: u64,
    /// Refused one by one.
    pub rejected: u64,
    /// Why the first refused record was refused.
    pub first_error: Option<String>,
}

impl Outcome {
    /// The OTLP response: `partial_success` only when records were refused.
    pub fn response(&self) -> collector::ExportLogsServiceResponse {
        collector::ExportLogsServiceResponse {
            partial_success: (self.rejected > 0).then(|| collector::ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(self.rejected).unwrap_or(i64::MAX),
                error_message: self.first_error.clone().unwrap_or_default(),
            }),
        }
    }

    fn reject(&mut self, n: u64, why: String) {
        self.rejected += n;
        self.first_error.get_or_insert(why);
    }
}

/// Appends every record of an export, grouped by log and in batches, and
/// waits until each accepted one is durable and checkpointed. `log` is the
/// receiver's log for resources without `cairn.log` (empty: the default).
pub(crate) async fn ingest(
    inner: &Arc<Inner>,
    id: Option<&Identity>,
    req: collector::ExportLogsServiceRequest,
    log: &str,
) -> Result<Outcome, ServerError> {
    let total: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    if total > MAX_EXPORT_RECORDS {
        return Err(ServerError::Log(LogError::InvalidArgument(format!(
            "an export holds at most {MAX_EXPORT_RECORDS} log records; this one has {total}"
        ))));
    }
    // Events by log name, in request order.
    let mut by_log: Vec<(String, Vec<pb::AppendRequest>)> = Vec::new();
    for rl in &req.resource_logs {
        let name = resource_log(rl.resource.as_ref(), log);
        let at = match by_log.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                by_log.push((name.to_owned(), Vec::new()));
                by_log.len() - 1
            }
        };
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let mut bytes = Vec::with_capacity(256);
                record_event_bytes(rl.resource.as_ref(), sl.scope.as_ref(), r, &mut bytes);
                by_log[at].1.push(pb::AppendRequest {
                    event: bytes,
                    content_type: pb::ContentType::Json as i32,
                    ..Default::default()
                });
            }
        }
    }
    drop(req);
    let mut out = Outcome::default();
    for (name, events) in by_log {
        let t = match inner.logs.target(&name, id) {
            Ok(t) => Arc::new(t),
            Err(e) => {
                // Every record of that log is refused; the others go on.
                out.reject(events.len() as u64, e.to_string());
                continue;
            }
        };
        // OTLP's answer to a full queue is a retryable status, not a
        // wait: refused whole (before anything of this log is queued)
        // when the queue has no room for it now but could hold it.
        let (free, free_bytes, all, all_bytes) = t.log.sequencer().room();
        let bytes: usize = events.iter().map(|e| e.event.len()).sum();
        if events.len() <= all && bytes <= all_bytes && (events.len() > free || bytes > free_bytes)
        {
            let why = format!("log \"{name}\"'s queue is full; retry later");
            if out.accepted == 0 && out.rejected == 0 {
                return Err(ServerError::Log(LogError::Unavailable(why)));
            }
            out.reject(events.len() as u64, why);
            continue;
        }
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let chunk: Vec<pb::AppendRequest> = events.by_ref().take(MAX_BATCH_EVENTS).collect();
            let n = chunk.len() as u64;
            let resp = inner
                .batch(
                    t.clone(),
                    id,
                    pb::AppendBatchRequest {
                        events: chunk,
                        log: name.clone(),
                        receipt_form: pb::ReceiptForm::Index as i32,
                    },
                )
                .await;
            match resp {
                Ok(resp) => {
                    for r in resp.receipts {
                        match r.error {
                            None => out.accepted += 1,
                            Some(e) => out.reject(1, e.message),
                        }
                    }
                }
                // A quota refuses what is left of the export: retryable.
                Err(e @ ServerError::Auth(_)) if out.accepted == 0 => return Err(e),
                Err(e) => out.reject(n, e.to_string()),
            }
        }
    }
    Ok(out)
}

/// Decodes an OTLP/JSON export (the OTLP spec's JSON mapping: lowerCamelCase
/// field names, trace and span ids as hex, 64-bit integers as numbers or
/// decimal strings, enums as numbers). Errors name the field, never values.
pub fn decode_json(body: &[u8]) -> Result<collector::ExportLogsServiceRequest, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
    let mut out = collector::ExportLogsServiceRequest::default();
    for rl in arr(&v, "resourceLogs")? {
        let resource = match rl.get("resource") {
            None | Some(Value::Null) => None,
            Some(r) => Some(resource::Resource {
                attributes: kvs(r, "attributes")?,
                ..Default::default()
            }),
        };
        let mut scope_logs = Vec::new();
        for sl in arr(rl, "scopeLogs")? {
            let scope = match sl.get("scope") {
                None | Some(Value::Null) => None,
                Some(s) => Some(common::InstrumentationScope {
                    name: string(s, "name")?,
                    version: string(s, "version")?,
                    attributes: kvs(s, "attributes")?,
                    ..Default::default()
                }),
            };
            let mut log_records = Vec::new();
            for r in arr(sl, "logRecords")? {
                log_records.push(logs::LogRecord {
                    time_unix_nano: uint(r, "timeUnixNano")?,
                    observed_time_unix_nano: uint(r, "observedTimeUnixNano")?,
                    severity_number: i32::try_from(uint(r, "severityNumber")?)
                        .map_err(|_| "severityNumber: out of range".to_owned())?,
                    severity_text: string(r, "severityText")?,
                    body: match r.get("body") {
                        None | Some(Value::Null) => None,
                        Some(b) => Some(any(b, 0)?),
                    },
                    attributes: kvs(r, "attributes")?,
                    flags: u32::try_from(uint(r, "flags")?)
                        .map_err(|_| "flags: out of range".to_owned())?,
                    trace_id: hex_field(r, "traceId")?,
                    span_id: hex_field(r, "spanId")?,
                    event_name: string(r, "eventName")?,
                    ..Default::default()
                });
            }
            scope_logs.push(logs::ScopeLogs {
                scope,
                log_records,
                ..Default::default()
            });
        }
        out.resource_logs.push(logs::ResourceLogs {
            resource,
            scope_logs,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Deepest nesting of values accepted in OTLP/JSON (the masker refuses
/// deeper events anyway; this bounds the decoder's recursion).
const MAX_JSON_DEPTH: usize = 32;

fn arr<'a>(v: &'a Value, k: &str) -> Result<&'a [Value], String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("{k}: expected an array")),
    }
}

fn string(v: &Value, k: &str) -> Result<String, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{k}: expected a string")),
    }
}

/// A 64-bit unsigned integer: a number or a decimal string.
fn uint(v: &Value, k: &str) -> Result<u64, String> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("{k}: not an unsigned integer")),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("{k}: not an unsigned integer")),
        Some(_) => Err(format!("{k}: expected an integer")),
    }
}

fn hex_field(v: &Value, k: &str) -> Result<Vec<u8>, String> {
    let s = string(v, k)?;
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{k}: expected hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("{k}: expected hex")))
        .collect()
}

fn kvs(v: &Value, k: &str) -> Result<Vec<common::KeyValue>, String> {
    kv_list(arr(v, k)?, 0)
}

fn kv_list(items: &[Value], depth: usize) -> Result<Vec<common::KeyValue>, String> {
    items
        .iter()
        .map(|kv| {
            Ok(common::KeyValue {
                key: string(kv, "key")?,
                value: match kv.get("value") {
                    None | Some(Value::Null) => None,
                    Some(x) => Some(any(x, depth + 1)?),
                },
            })
        })
        .collect()
}

fn any(v: &Value, depth: usize) -> Result<common::AnyValue, String> {
    use common::any_value::Value as V;
    if depth > MAX_JSON_DEPTH {
        return Err(format!("values nested deeper than {MAX_JSON_DEPTH}"));
    }
    let Value::Object(m) = v else {
        return Err("an AnyValue must be an object".into());
    };
    let value = if let Some(s) = m.get("stringValue") {
        Some(V::StringValue(
            s.as_str()
                .ok_or("stringValue: expected a string")?
                .to_owned(),
        ))
    } else if let Some(b) = m.get("boolValue") {
        Some(V::BoolValue(
            b.as_bool().ok_or("boolValue: expected a boolean")?,
        ))
    } else if let Some(i) = m.get("intValue") {
        let n = match i {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        Some(V::IntValue(n.ok_or("intValue: expected an integer")?))
    } else if let Some(d) = m.get("doubleValue") {
        let n = match d {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        Some(V::DoubleValue(n.ok_or("doubleValue: expected a number")?))
    } else if let Some(b) = m.get("bytesValue") {
        let s = b.as_str().ok_or("bytesValue: expected base64")?;
        Some(V::BytesValue(
            cairn_core::encoding::decode_base64(s).map_err(|_| "bytesValue: expected base64")?,
        ))
    } else if let Some(a) = m.get("arrayValue") {
        let values = arr(a, "values")?
            .iter()
            .map(|x| any(x, depth + 1))
            .collect::<Result<_, _>>()?;
        Some(V::ArrayValue(common::ArrayValue { values }))
    } else if let Some(kv) = m.get("kvlistValue") {
        Some(V::KvlistValue(common::KeyValueList {
            values: kv_list(arr(kv, "values")?, depth + 1)?,
        }))
    } else {
        None
    };
    Ok(common::AnyValue { value })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The OTLP/JSON example of the OTLP specification's repository
    /// (`examples/logs.json`, opentelemetry-proto v1.9.0), decoded and
    /// mapped to the documented event shape.
    #[test]
    fn the_spec_example_maps_to_the_documented_shape() {
        let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},"scopeLogs":[{"scope":{"name":"my.library","version":"1.0.0","attributes":[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},"logRecords":[{"timeUnixNano":"1544712660300000000","observedTimeUnixNano":"1544712660300000000","severityNumber":10,"severityText":"Information","traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","body":{"stringValue":"Example log record"},"attributes":[{"key":"string.attribute","value":{"stringValue":"some string"}},{"key":"boolean.attribute","value":{"boolValue":true}},{"key":"int.attribute","value":{"intValue":"10"}},{"key":"double.attribute","value":{"doubleValue":637.704}},{"key":"array.attribute","value":{"arrayValue":{"values":[{"stringValue":"many"},{"stringValue":"values"}]}}},{"key":"map.attribute","value":{"kvlistValue":{"values":[{"key":"some.map.key","value":{"stringValue":"some value"}}]}}}]}]}]}]}"#;
        let req = decode_json(body.as_bytes()).unwrap();
        let rl = &req.resource_logs[0];
        let sl = &rl.scope_logs[0];
        let mut bytes = Vec::new();
        record_event_bytes(
            rl.resource.as_ref(),
            sl.scope.as_ref(),
            &sl.log_records[0],
            &mut bytes,
        );
        let e: Value = serde_json::from_slice(&bytes).unwrap();
        let want: Value = serde_json::json!({
            "body": "Example log record",
            "attributes": {
                "string.attribute": "some string",
                "boolean.attribute": true,
                "int.attribute": 10,
                "double.attribute": 637.704,
                "array.attribute": ["many", "values"],
                "map.attribute": {"some.map.key": "some value"}
            },
            "resource": {"service.name": "my.service"},
            "scope": {"name": "my.library", "version": "1.0.0", "attributes": {"my.scope.attribute": "some scope attribute"}},
            "severity_number": 10,
            "severity_text": "Information",
            "time_unix_nano": "1544712660300000000",
            "observed_time_unix_nano": "1544712660300000000",
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174"
        });
        assert_eq!(e, want);
        // The direct writer writes the same value.
        let mut bytes = Vec::new();
        record_event_bytes(
            rl.resource.as_ref(),
            sl.scope.as_ref(),
            &sl.log_records[0],
            &mut bytes,
        );
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), want);
        // The same export as protobuf maps the same way.
        let bytes = prost::Message::encode_to_vec(&req);
        let back: collector::ExportLogsServiceRequest =
            prost::Message::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    /// A repeated key in a key-value list: the last wins.
    #[test]
    fn a_repeated_key_keeps_the_last_value() {
        let kv = |k: &str, v: i64| common::KeyValue {
            key: k.into(),
            value: Some(common::AnyValue {
                value: Some(common::any_value::Value::IntValue(v)),
            }),
        };
        let r = logs::LogRecord {
            attributes: vec![kv("a", 1), kv("b", 2), kv("a", 3)],
            ..Default::default()
        };
        let want = serde_json::json!({"attributes": {"a": 3, "b": 2}});
        let mut bytes = Vec::new();
        record_event_bytes(None, None, &r, &mut bytes);
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), want);
    }

    /// Malformed OTLP/JSON names the field, never the value.
    #[test]
    fn malformed_json_names_the_field() {
        for (body, want) in [
            (r#"{"resourceLogs": 3}"#, "resourceLogs: expected an array"),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz-secret"}]}]}]}"#,
                "traceId: expected hex",
            ),
            (
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"secret"}]}]}]}"#,
                "timeUnixNano: not an unsigned integer",
            ),
            ("{not json secret", "not JSON"),
        ] {
            let e = decode_json(body.as_bytes()).unwrap_err();
            assert!(e.contains(want) && !e.contains("secret"), "{e}");
        }
        let deep = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}{}}}]}}]}}]}}"#,
            r#"{"arrayValue":{"values":["#.repeat(40),
            "]}}".repeat(40)
        );
        assert!(
            decode_json(deep.as_bytes())
                .unwrap_err()
                .contains("nested deeper")
        );
    }
}
