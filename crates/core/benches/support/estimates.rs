//! Shared by the workspace's benchmarks (included with `#[path]`): reads
//! criterion's mean estimate for a benchmark of this run, so each bench can
//! print ratios computed from its own figures.

/// Mean time per iteration, in ns, of `group/id` in this run's criterion
/// output (`$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, or
/// `<target>/criterion` found from the bench executable's path).
pub(crate) fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(|t| std::path::PathBuf::from(t).join("criterion"))
        })
        .or_else(|| {
            // <target>/release/deps/<bench>-<hash>
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.join("criterion"))
        })?;
    let text = std::fs::read_to_string(dir.join(group).join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}
