//! Trails kept across restarts: a JSON file of every account's trails (settings, selectors, tags,
//! logging status), their deliveries (status, digest chains) and the Regions' signing keys (so
//! digests chain across a restart and still verify), written whole after each change and read back
//! at start; owner-only. The event history is not kept: it is CloudTrail's record of calls, and a
//! restart starts a new one.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    account::Account,
    delivery::TrailDelivery,
    files::write_atomically,
    keys::{KeyRing, SavedKey},
    trails::Trail,
};

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

#[derive(Debug, Serialize, Deserialize, Default)]
pub(crate) struct Snapshot {
    version: u32,
    /// Account id → its trails.
    pub(crate) accounts: BTreeMap<String, Vec<Trail>>,
    /// Account id → trail ARN → its deliveries.
    #[serde(default)]
    pub(crate) deliveries: BTreeMap<String, BTreeMap<String, TrailDelivery>>,
    /// Region → its digest-signing key.
    #[serde(default)]
    pub(crate) keys: BTreeMap<String, SavedKey>,
}

/// What `path` keeps; nothing when the file does not exist yet. Anything but a regular file (a
/// FIFO would hang the start, a device would be read forever) is refused.
pub(crate) fn read(path: &Path) -> Result<Snapshot, StateError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        _ => {}
    }
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Snapshot::default()),
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
    Ok(snapshot)
}

/// Whether `path` can serve as a state file (missing, or one of this version): how many trails it
/// holds. Reads only, for configuration checks.
pub fn check_state_file(path: &Path) -> Result<usize, StateError> {
    Ok(read(path)?.accounts.values().map(Vec::len).sum())
}

/// Writes every account's trails to `path` (a new file renamed over the old: a crash leaves the
/// old state or the new, never half of one).
pub(crate) fn write(
    path: &Path,
    accounts: &HashMap<String, Account>,
    keys: &KeyRing,
) -> Result<(), StateError> {
    let snapshot = Snapshot {
        version: VERSION,
        accounts: accounts
            .iter()
            .map(|(id, account)| (id.clone(), account.trails.all().cloned().collect()))
            .collect(),
        deliveries: accounts
            .iter()
            .map(|(id, account)| (id.clone(), account.delivery.saved()))
            .collect(),
        keys: keys.saved(),
    };
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_vec_pretty(&snapshot).map_err(|e| io(e.into()))?;
    write_atomically(path, &text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ctl-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The attack: a `<state>.partial` symlink planted beside the state file made every write go
    /// through it to its target.
    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_never_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = dir("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let state = dir.join("state.json");
        std::os::unix::fs::symlink(&victim, dir.join("state.json.partial")).unwrap();
        let keys = KeyRing::new(aws_smithy_types::DateTime::from_secs(1));
        write(&state, &HashMap::new(), &keys).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(
            read(&state).unwrap().accounts.is_empty(),
            "the state was written"
        );
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner only");
        // Nothing left behind but the state and the planted link.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        // A temporary name taken already (even by a link) is an error, not followed.
        let taken = dir.join("taken");
        std::os::unix::fs::symlink(&victim, &taken).unwrap();
        assert!(crate::files::write_new(&taken, b"x").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    /// The attack: a FIFO as state file hung the start.
    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_is_a_state_file() {
        let dir = dir("fifo");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let error = read(&fifo).unwrap_err().to_string();
            assert!(error.contains("not a regular file"), "{error}");
        }
        let error = read(&dir).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }
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

/// `DateTime` as seconds since the epoch (fractions kept), for serde.
pub(crate) mod epoch {
    use aws_smithy_types::DateTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(t.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime, D::Error> {
        Ok(DateTime::from_secs_f64(f64::deserialize(d)?))
    }
}
