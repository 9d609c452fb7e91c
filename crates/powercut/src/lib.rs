//! `cairn-powercut`: a FUSE file system that models a power cut, for the
//! durability tests (`tests/power_loss.rs`, docs/testing.md). Not part of
//! the server.
//!
//! Programs under test run on the mount. Every change is visible to them at
//! once, but reaches the backing folder only when a sync makes it durable
//! under the strict POSIX model in [`model`]. A cut (`cut` or `cut-prefix`
//! on the tool's standard input, or killing it) loses what was not synced;
//! mounting the backing folder again shows what a machine would find after
//! the power came back.

#![forbid(unsafe_code)]

mod fs;
pub mod model;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use model::{Cut, State, Stats};

/// A live mount. Dropping it unmounts (a clean stop; a cut never does).
pub struct Mounted {
    /// The state the mount serves; lock it to stop every operation.
    pub state: Arc<Mutex<State>>,
    _session: fuser::BackgroundSession,
}

/// Mounts `backing`'s durable state at `mountpoint`. `lie` makes every
/// sync answer success without making anything durable (the broken disk
/// the harness's own test must catch).
pub fn mount(backing: &Path, mountpoint: &Path, lie: bool) -> io::Result<Mounted> {
    let state = Arc::new(Mutex::new(State::load(backing, lie)?));
    let meta = std::fs::metadata(backing)?;
    let fs = fs::PowerCutFs {
        state: state.clone(),
        uid: meta.uid(),
        gid: meta.gid(),
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("cairn-powercut".into()),
        fuser::MountOption::RW,
        fuser::MountOption::NoAtime,
    ];
    config.n_threads = Some(2);
    let session = fuser::Session::new(fs, mountpoint, &config)?.spawn()?;
    Ok(Mounted {
        state,
        _session: session,
    })
}

/// Detaches a mount whose server is gone (`fusermount3 -u -z`), so the
/// mount point can be mounted again. Succeeds if nothing is mounted there.
pub fn detach(mountpoint: &Path) -> io::Result<()> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")?
        .lines()
        .any(|l| l.split(' ').nth(1) == mountpoint.to_str());
    if !mounted {
        return Ok(());
    }
    let out = std::process::Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(mountpoint)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "fusermount3 -u -z {}: {}",
            mountpoint.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
