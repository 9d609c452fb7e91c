//! The registry of logs: name → running log, for one process.
//!
//! Every log is independent: its own store, key, masker, sequencer, tile
//! cache, metrics and health. A log whose store could not be opened is
//! kept as [`Hosted::Failed`]: it answers `UNAVAILABLE` and reports itself
//! unhealthy while the other logs serve. Requests that name no log go to
//! the default log.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::LogError;
use crate::log::{Log, LogName};

/// One configured log.
#[derive(Debug, Clone)]
pub enum Hosted {
    /// Running.
    Running(Arc<Log>),
    /// Could not start; the reason (client-safe: no paths) says why.
    Failed {
        /// The configured origin.
        origin: String,
        /// Why.
        reason: Arc<str>,
    },
}

/// Every log of the process.
#[derive(Debug, Clone)]
pub struct Registry {
    logs: BTreeMap<LogName, Hosted>,
    default: LogName,
}

impl Registry {
    /// An empty registry whose default log is `default`.
    pub fn new(default: LogName) -> Self {
        Registry {
            logs: BTreeMap::new(),
            default,
        }
    }

    /// Adds a log; refuses a second log of the same name.
    pub fn insert(&mut self, name: LogName, log: Hosted) -> Result<(), String> {
        if self.logs.contains_key(&name) {
            return Err(format!("two logs are named {name:?}"));
        }
        self.logs.insert(name, log);
        Ok(())
    }

    /// The default log's name.
    pub fn default_name(&self) -> &LogName {
        &self.default
    }

    /// Every log, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&LogName, &Hosted)> {
        self.logs.iter()
    }

    /// The running logs.
    pub fn running(&self) -> impl Iterator<Item = &Arc<Log>> {
        self.logs.values().filter_map(|h| match h {
            Hosted::Running(l) => Some(l),
            Hosted::Failed { .. } => None,
        })
    }

    /// The log a request names (`""`: the default log): `NotFound` for a
    /// name no log has (the name is not echoed: a client chose it),
    /// `Unavailable` for a log that could not start.
    pub fn get(&self, name: &str) -> Result<&Arc<Log>, LogError> {
        let name = if name.is_empty() {
            self.default.as_str()
        } else {
            name
        };
        let found = self
            .logs
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, h)| h);
        match found {
            Some(Hosted::Running(l)) => Ok(l),
            Some(Hosted::Failed { reason, .. }) => Err(LogError::Unavailable(format!(
                "log \"{name}\" is not serving: {reason}"
            ))),
            None => Err(LogError::NotFound(format!(
                "no log has that name ({} bytes); GET /logs lists them",
                name.len()
            ))),
        }
    }
}
