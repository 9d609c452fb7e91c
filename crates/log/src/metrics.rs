//! Prometheus metrics: counters, gauges and fixed-bucket histograms on
//! atomics, rendered as text for `/metrics`. Each log has its own
//! [`LogMetrics`] (every series labelled `log="<name>"`); the process has
//! [`METRICS`] (request errors by status category, counted where the one
//! error mapping answers them). Labels never carry event content: log
//! names, detector names, status categories and witness names only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// A histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The series of one log (the HELP and TYPE lines are the caller's).
    fn render(&self, out: &mut String, name: &str, log: &str) {
        let log = escape(log);
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{log=\"{log}\",le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{log=\"{log}\",le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum{{log=\"{log}\"}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{log=\"{log}\"}} {n}");
    }
}

/// One log's metrics: every series carries a `log="<name>"` label.
/// Shared by the log's sequencer, its masking and its witnessing.
pub struct LogMetrics {
    /// Entries appended (durable and checkpointed).
    pub appended: AtomicU64,
    /// Entries per batch.
    pub batch_size: Histogram,
    /// Seconds from a batch closing to its checkpoint being stored.
    pub batch_seconds: Histogram,
    masked: Mutex<BTreeMap<String, u64>>,
    witness: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Size of the newest checkpoint that met the witness quorum.
    pub cosigned_size: AtomicU64,
    /// 1 once the log has stopped writing (a fatal store error, or a store
    /// that could not be opened).
    pub halted: AtomicU64,
    /// 1 once the log is frozen (appends refused for good).
    pub frozen: AtomicU64,
    /// Appends answered with an earlier entry (a repeated idempotency key).
    pub duplicates: AtomicU64,
    /// Fork-guard writes that failed after a durable checkpoint.
    pub guard_failures: AtomicU64,
    /// Leaves in the latest signed checkpoint.
    pub tree_size: AtomicU64,
}

impl std::fmt::Debug for LogMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMetrics").finish_non_exhaustive()
    }
}

impl Default for LogMetrics {
    fn default() -> Self {
        LogMetrics {
            appended: AtomicU64::new(0),
            batch_size: Histogram::new(&[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0]),
            batch_seconds: Histogram::new(&[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
            ]),
            masked: Mutex::new(BTreeMap::new()),
            witness: Mutex::new(BTreeMap::new()),
            cosigned_size: AtomicU64::new(0),
            halted: AtomicU64::new(0),
            frozen: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            guard_failures: AtomicU64::new(0),
            tree_size: AtomicU64::new(0),
        }
    }
}

/// The metrics of the process itself (not of one log).
pub struct Metrics {
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    errors: Mutex::new(BTreeMap::new()),
});

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K) {
    *m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(k)
        .or_default() += 1;
}

impl LogMetrics {
    /// The masking decisions of one event, by detector or field-rule name
    /// (one lock per event, and none for an event with nothing masked).
    pub fn masked<'a>(&self, detectors: impl IntoIterator<Item = &'a str>) {
        let mut it = detectors.into_iter().peekable();
        if it.peek().is_none() {
            return;
        }
        let mut m = self
            .masked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in it {
            match m.get_mut(d) {
                Some(n) => *n += 1,
                None => {
                    m.insert(d.to_owned(), 1);
                }
            }
        }
    }

    /// One submission to a witness, by result.
    pub fn witness(&self, witness: &str, result: &'static str) {
        bump(&self.witness, (witness.to_owned(), result));
    }
}

impl Metrics {
    /// One request failed with this status category.
    pub fn error(&self, category: &'static str) {
        bump(&self.errors, category);
    }

    /// Prometheus text for the process and every log in `logs` (name and
    /// metrics, in the order given).
    pub fn render(&self, logs: &[(&str, &LogMetrics)]) -> String {
        let mut out = String::new();
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed);
        type Get = fn(&LogMetrics) -> &AtomicU64;
        let families: [(&str, &str, &str, Get); 7] = [
            (
                "cairn_tree_size",
                "gauge",
                "Leaves in the latest signed checkpoint.",
                |m| &m.tree_size,
            ),
            (
                "cairn_appended_total",
                "counter",
                "New entries appended (durable and checkpointed; repeats of an idempotency key are not counted).",
                |m| &m.appended,
            ),
            (
                "cairn_duplicates_total",
                "counter",
                "Appends answered with an earlier entry (a repeated idempotency key).",
                |m| &m.duplicates,
            ),
            (
                "cairn_log_halted",
                "gauge",
                "1 when the log has stopped writing after a fatal store error, or its store could not be opened (see the error log).",
                |m| &m.halted,
            ),
            (
                "cairn_log_frozen",
                "gauge",
                "1 when the log is frozen: its final checkpoint is signed and appends are refused.",
                |m| &m.frozen,
            ),
            (
                "cairn_guard_write_failures_total",
                "counter",
                "Fork-guard writes that failed after a durable checkpoint.",
                |m| &m.guard_failures,
            ),
            (
                "cairn_cosigned_size",
                "gauge",
                "Size of the newest checkpoint that met the witness quorum.",
                |m| &m.cosigned_size,
            ),
        ];
        for (name, kind, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (log, m) in logs {
                let _ = writeln!(out, "{name}{{log=\"{}\"}} {}", escape(log), load(get(m)));
            }
        }
        let _ = writeln!(
            out,
            "# HELP cairn_batch_entries Entries per batch.\n# TYPE cairn_batch_entries histogram"
        );
        for (log, m) in logs {
            m.batch_size.render(&mut out, "cairn_batch_entries", log);
        }
        let _ = writeln!(
            out,
            "# HELP cairn_batch_seconds Time from a batch closing to its signed checkpoint being stored (integrate, durable commit, sign, store).\n# TYPE cairn_batch_seconds histogram"
        );
        for (log, m) in logs {
            m.batch_seconds.render(&mut out, "cairn_batch_seconds", log);
        }
        family(
            &mut out,
            "cairn_masked_total",
            "Values masked, by detector or field rule (never the values).",
            logs.iter().flat_map(|(log, m)| {
                snapshot(&m.masked).into_iter().map(move |(d, n)| {
                    (
                        format!("log=\"{}\",detector=\"{}\"", escape(log), escape(&d)),
                        n,
                    )
                })
            }),
        );
        family(
            &mut out,
            "cairn_witness_submissions_total",
            "Checkpoint submissions to witnesses, by result.",
            logs.iter().flat_map(|(log, m)| {
                snapshot(&m.witness).into_iter().map(move |((w, r), n)| {
                    (
                        format!(
                            "log=\"{}\",witness=\"{}\",result=\"{r}\"",
                            escape(log),
                            escape(&w)
                        ),
                        n,
                    )
                })
            }),
        );
        family(
            &mut out,
            "cairn_errors_total",
            "Failed requests, by status category.",
            snapshot(&self.errors)
                .into_iter()
                .map(|(c, n)| (format!("category=\"{c}\""), n)),
        );
        out
    }
}

/// A copy of a labelled counter map (the lock held only to copy).
fn snapshot<K: Clone + Ord>(m: &Mutex<BTreeMap<K, u64>>) -> Vec<(K, u64)> {
    m.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

/// One counter family: its HELP and TYPE lines, then a line per labelled
/// value (`labels` already escaped).
fn family(out: &mut String, name: &str, help: &str, rows: impl IntoIterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, n) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {n}");
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
