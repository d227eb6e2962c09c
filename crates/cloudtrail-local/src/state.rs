//! Trails kept across restarts: a JSON file of every account's trails (settings, selectors, tags,
//! logging status), written whole after each change and read back at start. The event history is
//! not kept: it is CloudTrail's record of calls, and a restart starts a new one.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{Account, trails::Trail};

const VERSION: u32 = 1;

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state file {path}: not a state file of this version: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    /// Account id → its trails.
    accounts: BTreeMap<String, Vec<Trail>>,
}

/// The trails in `path`, by account; none when the file does not exist yet.
pub(crate) fn read(path: &Path) -> Result<BTreeMap<String, Vec<Trail>>, StateError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let format = |source| StateError::Format {
        path: path.to_owned(),
        source,
    };
    let snapshot: Snapshot = serde_json::from_slice(&text).map_err(format)?;
    if snapshot.version != VERSION {
        return Err(format(serde::de::Error::custom(format!(
            "version {}, expected {VERSION}",
            snapshot.version
        ))));
    }
    Ok(snapshot.accounts)
}

/// Whether `path` can serve as a state file (missing, or one of this version): how many trails it
/// holds. Reads only, for configuration checks.
pub fn check_state_file(path: &Path) -> Result<usize, StateError> {
    Ok(read(path)?.values().map(Vec::len).sum())
}

/// Writes every account's trails to `path` (a new file renamed over the old: a crash leaves the
/// old state or the new, never half of one).
pub(crate) fn write(path: &Path, accounts: &HashMap<String, Account>) -> Result<(), StateError> {
    let snapshot = Snapshot {
        version: VERSION,
        accounts: accounts
            .iter()
            .map(|(id, account)| (id.clone(), account.trails.all().cloned().collect()))
            .collect(),
    };
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_vec_pretty(&snapshot).map_err(|e| io(e.into()))?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

/// `Option<DateTime>` as seconds since the epoch (fractions kept), for serde.
pub(crate) mod epoch_seconds {
    use aws_smithy_types::DateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(DateTime::from_secs_f64))
    }
}
