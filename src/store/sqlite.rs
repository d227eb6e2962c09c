//! The embedded store: one SQLite file (WAL). Repeated strings (names, sources, users, keys,
//! resources) are stored once in `terms`; each event is a row of term ids with its record deflated;
//! one index per LookupEvents attribute, each ending in time, so a page is one index range read
//! newest first. A file and its events are stored in one transaction: a crash mid-file stores
//! nothing of it, and the file is read again.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
    sync::Mutex,
};

use flate2::read::DeflateDecoder;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    error::StoreError,
    lookup::{Attribute, Event, Lookup, Page, Position},
    record::{Category, Indexed},
};
use crate::locks::lock;

/// The schema this build writes; a file of another version is refused (#25 adds migrations).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS places (id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL,
    UNIQUE (account, region));
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    place INTEGER NOT NULL,
    category INTEGER NOT NULL,
    time INTEGER NOT NULL,
    name INTEGER, source INTEGER, username INTEGER, access_key INTEGER,
    read_only INTEGER, error_code INTEGER,
    record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events (place, category, time);
CREATE INDEX IF NOT EXISTS events_by_name ON events (place, category, name, time);
CREATE INDEX IF NOT EXISTS events_by_source ON events (place, category, source, time);
CREATE INDEX IF NOT EXISTS events_by_username ON events (place, category, username, time);
CREATE INDEX IF NOT EXISTS events_by_access_key ON events (place, category, access_key, time);
CREATE TABLE IF NOT EXISTS resources (seq INTEGER NOT NULL, ord INTEGER NOT NULL,
    type INTEGER NOT NULL, name INTEGER NOT NULL, PRIMARY KEY (seq, ord)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resources_by_type ON resources (type, seq);
CREATE INDEX IF NOT EXISTS resources_by_name ON resources (name, seq);
CREATE TABLE IF NOT EXISTS files (source TEXT NOT NULL, key TEXT NOT NULL, place INTEGER,
    events INTEGER NOT NULL, duplicates INTEGER NOT NULL, skipped TEXT,
    PRIMARY KEY (source, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts (source TEXT NOT NULL, place INTEGER NOT NULL,
    files INTEGER NOT NULL, events INTEGER NOT NULL, newest INTEGER,
    PRIMARY KEY (source, place)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (source TEXT NOT NULL, prefix TEXT NOT NULL, after TEXT NOT NULL,
    PRIMARY KEY (source, prefix)) WITHOUT ROWID;
";

/// One file to store: its records, or why it was skipped.
#[derive(Debug)]
pub struct File<'a> {
    pub source: &'a str,
    pub key: &'a str,
    /// The account and Region its key names (None: not a log file of the layout).
    pub place: Option<(&'a str, &'a str)>,
    pub records: &'a [Indexed],
    /// Why it holds nothing to store (then `records` is empty): recorded so it is not read again.
    pub skipped: Option<&'a str>,
    /// The listing's cursor of the file's prefix, moved past it in the same transaction.
    pub cursor: Option<(&'a str, &'a str)>,
}

/// What storing a file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    pub events: u64,
    /// Events already stored (from another file, or this one read before).
    pub duplicates: u64,
    /// The file itself was stored before: nothing done.
    pub again: bool,
}

/// Counts per source and (account, Region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub source: String,
    pub account: String,
    pub region: String,
    pub files: u64,
    pub events: u64,
    /// The newest event time stored, in milliseconds since the epoch.
    pub newest_ms: Option<i64>,
}

/// Read connections: WAL lets them read while the writer writes, and each other.
const READERS: usize = 4;

#[derive(Debug)]
pub struct Sqlite {
    /// The one writer (ingest, retention).
    connection: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    path: PathBuf,
    /// Term ids already in the file (only committed ones).
    terms: Mutex<HashMap<String, i64>>,
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite(e.to_string())
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let connection = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;",
            )
            .map_err(sql)?;
        connection.execute_batch(SCHEMA).map_err(sql)?;
        let version: Option<i64> = connection
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        match version {
            None => {
                connection
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                        [SCHEMA_VERSION],
                    )
                    .map_err(sql)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Schema {
                    found: other,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open(path).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            reader
                .execute_batch("PRAGMA query_only = 1;")
                .map_err(sql)?;
            readers.push(Mutex::new(reader));
        }
        Ok(Sqlite {
            connection: Mutex::new(connection),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: path.to_owned(),
            terms: Mutex::new(HashMap::new()),
        })
    }

    /// A free read connection, or the next one in turn.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let at = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.readers[at % self.readers.len()])
    }

    pub fn file_stored(&self, source: &str, key: &str) -> Result<bool, StoreError> {
        let connection = self.reader();
        connection
            .query_row(
                "SELECT 1 FROM files WHERE source = ?1 AND key = ?2",
                [source, key],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sql)
    }

    pub fn cursor(&self, source: &str, prefix: &str) -> Result<Option<String>, StoreError> {
        let connection = self.reader();
        connection
            .query_row(
                "SELECT after FROM cursors WHERE source = ?1 AND prefix = ?2",
                [source, prefix],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)
    }

    /// Stores a file's events, once: a file stored before changes nothing, an event stored before
    /// is counted as a duplicate.
    pub fn store(&self, file: &File) -> Result<Stored, StoreError> {
        let mut connection = lock(&self.connection);
        let cached = lock(&self.terms).clone();
        let tx = connection.transaction().map_err(sql)?;
        let mut terms = Terms {
            cached: &cached,
            added: HashMap::new(),
        };
        let outcome = store_in(&tx, &mut terms, file)?;
        tx.commit().map_err(sql)?;
        lock(&self.terms).extend(terms.added);
        Ok(outcome)
    }

    pub fn lookup(&self, q: &Lookup) -> Result<Page, StoreError> {
        let connection = self.reader();
        lookup_in(&connection, q)
    }

    pub fn counts(&self) -> Result<Vec<Count>, StoreError> {
        let connection = self.reader();
        let mut statement = connection
            .prepare(
                "SELECT c.source, p.account, p.region, c.files, c.events, c.newest
                 FROM counts c JOIN places p ON p.id = c.place ORDER BY 1, 2, 3",
            )
            .map_err(sql)?;
        let rows = statement
            .query_map([], |r| {
                Ok(Count {
                    source: r.get(0)?,
                    account: r.get(1)?,
                    region: r.get(2)?,
                    files: r.get::<_, i64>(3)? as u64,
                    events: r.get::<_, i64>(4)? as u64,
                    newest_ms: r.get(5)?,
                })
            })
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }

    /// The bytes of the database and its write-ahead log on disk.
    pub fn bytes_on_disk(&self) -> u64 {
        let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(self.path.clone()) + size(PathBuf::from(wal))
    }

    /// Deletes the events older than `before_ms`; returns how many.
    pub fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut connection = lock(&self.connection);
        let tx = connection.transaction().map_err(sql)?;
        tx.execute(
            "DELETE FROM resources WHERE seq IN (SELECT seq FROM events WHERE time < ?1)",
            [before_ms],
        )
        .map_err(sql)?;
        let deleted = tx
            .execute("DELETE FROM events WHERE time < ?1", [before_ms])
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(deleted as u64)
    }
}

/// Term ids: those committed before, and those this transaction added.
struct Terms<'a> {
    cached: &'a HashMap<String, i64>,
    added: HashMap<String, i64>,
}

impl Terms<'_> {
    fn id(&mut self, tx: &Transaction, text: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.cached.get(text).or_else(|| self.added.get(text)) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO terms (text) VALUES (?1)")
            .and_then(|mut s| s.execute([text]))
            .map_err(sql)?;
        let id = tx
            .prepare_cached("SELECT id FROM terms WHERE text = ?1")
            .and_then(|mut s| s.query_row([text], |r| r.get(0)))
            .map_err(sql)?;
        self.added.insert(text.to_owned(), id);
        Ok(id)
    }

    fn optional(
        &mut self,
        tx: &Transaction,
        text: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        text.map(|t| self.id(tx, t)).transpose()
    }
}

fn place_id(tx: &Transaction, account: &str, region: &str) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO places (account, region) VALUES (?1, ?2)",
        [account, region],
    )
    .map_err(sql)?;
    tx.query_row(
        "SELECT id FROM places WHERE account = ?1 AND region = ?2",
        [account, region],
        |r| r.get(0),
    )
    .map_err(sql)
}

fn store_in(tx: &Transaction, terms: &mut Terms, file: &File) -> Result<Stored, StoreError> {
    let again = tx
        .query_row(
            "SELECT 1 FROM files WHERE source = ?1 AND key = ?2",
            [file.source, file.key],
            |_| Ok(()),
        )
        .optional()
        .map_err(sql)?
        .is_some();
    if let Some((prefix, after)) = file.cursor {
        tx.execute(
            "INSERT INTO cursors (source, prefix, after) VALUES (?1, ?2, ?3)
             ON CONFLICT (source, prefix) DO UPDATE SET after = excluded.after WHERE excluded.after > after",
            [file.source, prefix, after],
        )
        .map_err(sql)?;
    }
    if again {
        return Ok(Stored {
            again: true,
            ..Stored::default()
        });
    }
    let place = file
        .place
        .map(|(account, region)| place_id(tx, account, region))
        .transpose()?;
    let mut stored = Stored::default();
    let mut newest = None::<i64>;
    if let Some(place) = place {
        for event in file.records {
            if insert_event(tx, terms, place, event)? {
                stored.events += 1;
                newest = newest.max(Some(event.time_ms));
            } else {
                stored.duplicates += 1;
            }
        }
        tx.execute(
            "INSERT INTO counts (source, place, files, events, newest) VALUES (?1, ?2, 1, ?3, ?4)
             ON CONFLICT (source, place) DO UPDATE SET files = files + 1,
                 events = events + excluded.events, newest = max(coalesce(newest, excluded.newest), coalesce(excluded.newest, newest))",
            params![file.source, place, stored.events as i64, newest],
        )
        .map_err(sql)?;
    }
    tx.execute(
        "INSERT INTO files (source, key, place, events, duplicates, skipped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            file.source,
            file.key,
            place,
            stored.events as i64,
            stored.duplicates as i64,
            file.skipped
        ],
    )
    .map_err(sql)?;
    Ok(stored)
}

/// Inserts one event; false when its event id is stored already.
fn insert_event(
    tx: &Transaction,
    terms: &mut Terms,
    place: i64,
    e: &Indexed,
) -> Result<bool, StoreError> {
    let name = terms.id(tx, &e.name)?;
    let source = terms.id(tx, &e.source)?;
    let username = terms.optional(tx, e.username.as_deref())?;
    let access_key = terms.optional(tx, e.access_key.as_deref())?;
    let error_code = terms.optional(tx, e.error_code.as_deref())?;
    let mut insert = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (event_id, place, category, time, name, source, username, access_key, read_only, error_code, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(sql)?;
    // Ignored when the event id is stored already (the only constraint a valid row can break).
    let inserted = insert
        .execute(params![
            e.event_id,
            place,
            e.category.code(),
            e.time_ms,
            name,
            source,
            username,
            access_key,
            e.read_only,
            error_code,
            e.deflated
        ])
        .map_err(sql)?;
    if inserted == 0 {
        return Ok(false);
    }
    let seq = tx.last_insert_rowid();
    for (ord, (ty, name)) in e.resources.iter().enumerate() {
        let ty = terms.id(tx, ty)?;
        let name = terms.id(tx, name)?;
        tx.prepare_cached("INSERT INTO resources (seq, ord, type, name) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![seq, ord as i64, ty, name]))
            .map_err(sql)?;
    }
    Ok(true)
}

fn inflate(bytes: &[u8]) -> Result<String, StoreError> {
    let mut text = String::new();
    DeflateDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(text)
}

fn lookup_in(connection: &Connection, q: &Lookup) -> Result<Page, StoreError> {
    let Some(place) = connection
        .query_row(
            "SELECT id FROM places WHERE account = ?1 AND region = ?2",
            [&q.account, &q.region],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(sql)?
    else {
        return Ok(Page::default());
    };
    let category = if q.insight {
        Category::Insight
    } else {
        Category::Management
    };
    let (condition, value): (&str, Option<rusqlite::types::Value>) = match &q.attribute {
        None => ("", None),
        Some(Attribute::EventId(v)) => ("AND e.event_id = ?7", Some(v.clone().into())),
        Some(Attribute::EventName(v)) => (
            "AND e.name = (SELECT id FROM terms WHERE text = ?7)",
            Some(v.clone().into()),
        ),
        Some(Attribute::EventSource(v)) => (
            "AND e.source = (SELECT id FROM terms WHERE text = ?7)",
            Some(v.clone().into()),
        ),
        Some(Attribute::Username(v)) => (
            "AND e.username = (SELECT id FROM terms WHERE text = ?7)",
            Some(v.clone().into()),
        ),
        Some(Attribute::AccessKeyId(v)) => (
            "AND e.access_key = (SELECT id FROM terms WHERE text = ?7)",
            Some(v.clone().into()),
        ),
        Some(Attribute::ReadOnly(v)) => match v.as_str() {
            "true" => ("AND e.read_only = ?7", Some(1i64.into())),
            "false" => ("AND e.read_only = ?7", Some(0i64.into())),
            _ => return Ok(Page::default()),
        },
        Some(Attribute::ResourceType(v)) => (
            "AND e.seq IN (SELECT seq FROM resources WHERE type = (SELECT id FROM terms WHERE text = ?7))",
            Some(v.clone().into()),
        ),
        Some(Attribute::ResourceName(v)) => (
            "AND e.seq IN (SELECT seq FROM resources WHERE name = (SELECT id FROM terms WHERE text = ?7))",
            Some(v.clone().into()),
        ),
    };
    let (end, after_seq) = match q.after {
        Some(Position { time_ms, seq }) => (q.end_ms.min(time_ms), Some((time_ms, seq))),
        None => (q.end_ms, None),
    };
    // Past the position: older, or as old and stored before it.
    let (at_time, before_seq) = after_seq.unwrap_or((i64::MAX, i64::MAX));
    let text = format!(
        "SELECT e.seq, e.event_id, e.time, n.text, s.text, u.text, k.text, e.read_only, e.record
         FROM events e
         LEFT JOIN terms n ON n.id = e.name LEFT JOIN terms s ON s.id = e.source
         LEFT JOIN terms u ON u.id = e.username LEFT JOIN terms k ON k.id = e.access_key
         WHERE e.place = ?1 AND e.category = ?2 AND e.time >= ?3 AND e.time <= ?4
           AND (e.time < ?5 OR e.seq < ?6) {condition}
         ORDER BY e.time DESC, e.seq DESC LIMIT {}",
        q.limit + 1
    );
    let mut statement = connection.prepare_cached(&text).map_err(sql)?;
    let mut bound: Vec<rusqlite::types::Value> = vec![
        place.into(),
        category.code().into(),
        q.start_ms.into(),
        end.into(),
        at_time.into(),
        before_seq.into(),
    ];
    bound.extend(value);
    let mut rows = statement
        .query(rusqlite::params_from_iter(bound))
        .map_err(sql)?;
    let mut page = Page::default();
    let mut bytes = 0;
    let mut last = None;
    while let Some(row) = rows.next().map_err(sql)? {
        let seq: i64 = row.get(0).map_err(sql)?;
        let time_ms: i64 = row.get(2).map_err(sql)?;
        let record = inflate(&row.get::<_, Vec<u8>>(8).map_err(sql)?)?;
        if page.events.len() == q.limit || bytes + record.len() > q.max_bytes {
            // One more matches: the page is full and the next one starts after its last event.
            if !page.events.is_empty() {
                page.next = last;
                break;
            }
        }
        bytes += record.len();
        page.events.push(Event {
            event_id: row.get(1).map_err(sql)?,
            time_ms,
            name: row
                .get::<_, Option<String>>(3)
                .map_err(sql)?
                .unwrap_or_default(),
            source: row
                .get::<_, Option<String>>(4)
                .map_err(sql)?
                .unwrap_or_default(),
            username: row.get(5).map_err(sql)?,
            access_key: row.get(6).map_err(sql)?,
            read_only: row.get(7).map_err(sql)?,
            resources: resources_of(connection, seq)?,
            record,
        });
        last = Some(Position { time_ms, seq });
    }
    Ok(page)
}

fn resources_of(connection: &Connection, seq: i64) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT t.text, n.text FROM resources r JOIN terms t ON t.id = r.type
             JOIN terms n ON n.id = r.name WHERE r.seq = ?1 ORDER BY r.ord",
        )
        .map_err(sql)?;
    let rows = statement
        .query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(i: i64, name: &str) -> Indexed {
        Indexed::of(&json!({
            "eventID": format!("id-{i}"), "eventName": name,
            "eventTime": aws_smithy_types::DateTime::from_secs(1_700_000_000 + i / 2)
                .fmt(aws_smithy_types::date_time::Format::DateTime).unwrap(),
            "eventSource": "s3.amazonaws.com", "readOnly": i % 3 == 0,
            "userIdentity": {"type": "IAMUser", "userName": "alice"},
            "resources": [{"type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::b{}", i % 2)}],
        }))
        .unwrap()
    }

    fn open() -> (tempfile_dir::Dir, Sqlite) {
        let dir = tempfile_dir::Dir::new();
        let store = Sqlite::open(&dir.path.join("store.db")).unwrap();
        (dir, store)
    }

    /// A directory removed on drop (no dependency for one test module).
    mod tempfile_dir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }
        impl Dir {
            pub fn new() -> Dir {
                let path = std::env::temp_dir().join(format!("store-test-{}", crate::ids::uuid()));
                std::fs::create_dir_all(&path).unwrap();
                Dir { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    fn file<'a>(key: &'a str, records: &'a [Indexed]) -> File<'a> {
        File {
            source: "s",
            key,
            place: Some(("123456789012", "us-east-1")),
            records,
            skipped: None,
            cursor: Some(("prefix/", key)),
        }
    }

    fn lookup(attribute: Option<Attribute>, limit: usize) -> Lookup {
        Lookup {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            attribute,
            insight: false,
            start_ms: 0,
            end_ms: i64::MAX,
            limit,
            max_bytes: 1 << 20,
            after: None,
        }
    }

    #[test]
    fn files_and_events_are_stored_once() {
        let (_dir, store) = open();
        let records: Vec<_> = (0..10).map(|i| record(i, "GetObject")).collect();
        let first = store.store(&file("a", &records[..6])).unwrap();
        assert_eq!((first.events, first.duplicates, first.again), (6, 0, false));
        assert!(store.store(&file("a", &records[..6])).unwrap().again);
        let overlapping = store.store(&file("b", &records[4..])).unwrap();
        assert_eq!((overlapping.events, overlapping.duplicates), (4, 2));
        let counts = store.counts().unwrap();
        assert_eq!((counts[0].files, counts[0].events), (2, 10));
        assert_eq!(store.cursor("s", "prefix/").unwrap().as_deref(), Some("b"));
        assert!(store.file_stored("s", "b").unwrap());
    }

    #[test]
    fn pages_are_newest_first_without_gap_or_repeat() {
        let (_dir, store) = open();
        let records: Vec<_> = (0..9).map(|i| record(i, "GetObject")).collect();
        store.store(&file("a", &records)).unwrap();
        let mut q = lookup(None, 4);
        let mut seen = Vec::new();
        loop {
            let page = store.lookup(&q).unwrap();
            seen.extend(page.events.iter().map(|e| e.event_id.clone()));
            match page.next {
                Some(p) => q.after = Some(p),
                None => break,
            }
        }
        // Two events a second: ties go newest-stored first.
        let expected: Vec<_> = (0..9).rev().map(|i| format!("id-{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn attributes_filter() {
        let (_dir, store) = open();
        let mut records: Vec<_> = (0..6).map(|i| record(i, "GetObject")).collect();
        records.push(record(6, "PutObject"));
        store.store(&file("a", &records)).unwrap();
        let count = |a: Attribute| store.lookup(&lookup(Some(a), 50)).unwrap().events.len();
        assert_eq!(count(Attribute::EventName("PutObject".into())), 1);
        assert_eq!(count(Attribute::EventName("Nothing".into())), 0);
        assert_eq!(count(Attribute::ReadOnly("true".into())), 3);
        assert_eq!(count(Attribute::ReadOnly("TRUE".into())), 0);
        assert_eq!(count(Attribute::ResourceName("arn:aws:s3:::b1".into())), 3);
        assert_eq!(count(Attribute::ResourceType("AWS::S3::Bucket".into())), 7);
        assert_eq!(count(Attribute::Username("alice".into())), 7);
        assert_eq!(count(Attribute::EventId("id-2".into())), 1);
        let page = store
            .lookup(&lookup(Some(Attribute::EventId("id-2".into())), 50))
            .unwrap();
        let e = &page.events[0];
        assert_eq!(
            e.resources,
            [("AWS::S3::Bucket".into(), "arn:aws:s3:::b0".into())]
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&e.record).unwrap()["eventID"],
            "id-2"
        );
    }

    #[test]
    fn pruning_drops_the_old() {
        let (_dir, store) = open();
        let records: Vec<_> = (0..4).map(|i| record(i, "GetObject")).collect();
        store.store(&file("a", &records)).unwrap();
        assert_eq!(store.prune(1_700_000_001_000).unwrap(), 2);
        assert_eq!(store.lookup(&lookup(None, 50)).unwrap().events.len(), 2);
        assert!(store.bytes_on_disk() > 0);
    }

    #[test]
    fn a_full_disk_stores_nothing_of_the_file_and_it_is_stored_later() {
        let (_dir, store) = open();
        let pages: i64 = lock(&store.connection)
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        // SQLite's own "database or disk is full" (SQLITE_FULL), as a full disk gives it.
        lock(&store.connection)
            .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
            .unwrap();
        let big: Vec<_> = (0..200).map(|i| record(i, &format!("Name{i}"))).collect();
        let e = store.store(&file("a", &big)).unwrap_err();
        assert!(e.to_string().contains("full"), "{e}");
        assert!(!store.file_stored("s", "a").unwrap());
        assert_eq!(
            store.cursor("s", "prefix/").unwrap(),
            None,
            "the cursor did not move"
        );
        assert!(store.lookup(&lookup(None, 50)).unwrap().events.is_empty());
        lock(&store.connection)
            .execute_batch("PRAGMA max_page_count = 1073741823")
            .unwrap();
        assert_eq!(store.store(&file("a", &big)).unwrap().events, 200);
        assert_eq!(
            store
                .lookup(&lookup(Some(Attribute::EventName("Name7".into())), 50))
                .unwrap()
                .events
                .len(),
            1
        );
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = tempfile_dir::Dir::new();
        let path = dir.path.join("store.db");
        drop(Sqlite::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute("UPDATE meta SET value = 99 WHERE key = 'schema'", [])
            .unwrap();
        drop(c);
        assert!(matches!(
            Sqlite::open(&path),
            Err(StoreError::Schema { found: 99, .. })
        ));
    }
}
