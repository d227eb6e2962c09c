//! The embedded store: one SQLite file (WAL). Repeated strings (names, sources, users, keys,
//! resources) are stored once in `terms`; each event is a row of term ids pointing at its record in
//! a compressed block (`blocks.rs`); one index per LookupEvents attribute, each ending in time, so a
//! page is one index range read newest first. A file and its events are stored in one transaction:
//! a crash mid-file stores nothing of it, and the file is read again.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
};

use rusqlite::{Connection, OptionalExtension, Transaction, config::DbConfig, params};

use super::{
    blocks::{self, Block, Dictionary},
    error::StoreError,
    lookup::{Attribute, Event, Lookup, Page, Position},
    record::Category,
};
use crate::locks::{lock, read, write};

/// The schema this build writes; a file of another version is refused (#25 adds migrations).
/// Version 2: records in compressed blocks, event ids as bytes.
const SCHEMA_VERSION: i64 = 2;

const META: &str = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS places (id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL,
    UNIQUE (account, region));
CREATE TABLE IF NOT EXISTS dictionaries (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY AUTOINCREMENT, dictionary INTEGER,
    newest INTEGER NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_by_newest ON blocks (newest);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id BLOB NOT NULL UNIQUE,
    place INTEGER NOT NULL,
    category INTEGER NOT NULL,
    time INTEGER NOT NULL,
    name INTEGER, source INTEGER, username INTEGER, access_key INTEGER,
    read_only INTEGER, error_code INTEGER,
    block INTEGER NOT NULL, ord INTEGER NOT NULL);
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
    pub blocks: &'a [Block],
    /// Why it holds nothing to store (then `blocks` is empty): recorded so it is not read again.
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
/// A dictionary is trained once this many blocks are stored without one (~2000 records).
const TRAIN_AFTER_BLOCKS: u64 = 128;
/// Decompressed blocks kept for lookups (newest first pages read the same blocks again).
const CACHED_BLOCK_BYTES: usize = 8 << 20;

#[derive(Debug)]
pub struct Sqlite {
    /// The one writer (ingest, retention).
    connection: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    path: PathBuf,
    /// Term ids already in the file (only committed ones).
    terms: Mutex<HashMap<String, i64>>,
    dictionaries: RwLock<Dictionaries>,
    cache: Mutex<blocks::Cache>,
}

/// The trained dictionaries, and the one new blocks use.
#[derive(Debug, Default)]
struct Dictionaries {
    by_id: HashMap<i64, Arc<Dictionary>>,
    current: Option<Arc<Dictionary>>,
    /// Blocks stored without a dictionary since the last try to train one.
    untrained: u64,
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
        connection.execute_batch(META).map_err(sql)?;
        let version: Option<i64> = connection
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql)?;
        // Checked before the schema is created: a file of another version is left as it was.
        match version {
            None => {
                connection.execute_batch(SCHEMA).map_err(sql)?;
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
            // Every statement a reader runs stays compiled (lookups: one per attribute), and the
            // planner does not look at bound values: with STAT4 (the bundled build has it) it
            // would otherwise re-prepare a lookup on every call, for a plan that never changes.
            reader.set_prepared_statement_cache_capacity(32);
            reader
                .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
                .map_err(sql)?;
            readers.push(Mutex::new(reader));
        }
        let dictionaries = load_dictionaries(&connection)?;
        Ok(Sqlite {
            connection: Mutex::new(connection),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            path: path.to_owned(),
            terms: Mutex::new(HashMap::new()),
            dictionaries: RwLock::new(dictionaries),
            cache: Mutex::new(blocks::Cache::new(CACHED_BLOCK_BYTES)),
        })
    }

    /// The dictionary new blocks are compressed with, if one is trained.
    pub fn dictionary(&self) -> Option<Arc<Dictionary>> {
        read(&self.dictionaries).current.clone()
    }

    /// Trains the dictionary from the blocks stored without one, once there are enough of them.
    fn train_when_due(&self, connection: &Connection, stored: &[Block]) -> Result<(), StoreError> {
        let due = {
            let mut d = write(&self.dictionaries);
            d.untrained += stored.iter().filter(|b| b.dictionary.is_none()).count() as u64;
            d.current.is_none() && d.untrained >= TRAIN_AFTER_BLOCKS
        };
        if !due {
            return Ok(());
        }
        let mut samples = Vec::new();
        {
            let mut statement = connection
                .prepare(
                    "SELECT size, data FROM blocks WHERE dictionary IS NULL ORDER BY id LIMIT ?1",
                )
                .map_err(sql)?;
            let mut rows = statement.query([TRAIN_AFTER_BLOCKS as i64]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let size: i64 = row.get(0).map_err(sql)?;
                let data: Vec<u8> = row.get(1).map_err(sql)?;
                samples.extend(blocks::unpack(&data, size as usize, None)?);
            }
        }
        write(&self.dictionaries).untrained = 0;
        let Some(bytes) = blocks::train(&samples) else {
            tracing::warn!(
                samples = samples.len(),
                "event store: no dictionary could be trained yet; records stay compressed without one"
            );
            return Ok(());
        };
        connection
            .execute("INSERT INTO dictionaries (data) VALUES (?1)", [&bytes])
            .map_err(sql)?;
        let dictionary = Arc::new(Dictionary::new(connection.last_insert_rowid(), &bytes));
        tracing::info!(
            samples = samples.len(),
            bytes = bytes.len(),
            "event store: trained the records' compression dictionary"
        );
        let mut d = write(&self.dictionaries);
        d.by_id.insert(dictionary.id, dictionary.clone());
        d.current = Some(dictionary);
        Ok(())
    }

    /// A block's records, from the cache or the file.
    fn block(&self, connection: &Connection, id: i64) -> Result<Arc<Vec<String>>, StoreError> {
        if let Some(records) = lock(&self.cache).get(id) {
            return Ok(records);
        }
        let (dictionary, size, data): (Option<i64>, i64, Vec<u8>) = connection
            .prepare_cached("SELECT dictionary, size, data FROM blocks WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
            .map_err(sql)?;
        let dictionary =
            match dictionary {
                None => None,
                Some(d) => Some(read(&self.dictionaries).by_id.get(&d).cloned().ok_or_else(
                    || StoreError::Corrupt(format!("block {id}: no dictionary {d}")),
                )?),
            };
        let records = Arc::new(blocks::unpack(&data, size as usize, dictionary.as_deref())?);
        lock(&self.cache).put(id, records.clone());
        Ok(records)
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
            .prepare_cached("SELECT 1 FROM files WHERE source = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row([source, key], |_| Ok(())).optional())
            .map(|found| found.is_some())
            .map_err(sql)
    }

    pub fn cursor(&self, source: &str, prefix: &str) -> Result<Option<String>, StoreError> {
        let connection = self.reader();
        connection
            .prepare_cached("SELECT after FROM cursors WHERE source = ?1 AND prefix = ?2")
            .and_then(|mut s| s.query_row([source, prefix], |r| r.get(0)).optional())
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
        if !outcome.again {
            self.train_when_due(&connection, file.blocks)?;
        }
        Ok(outcome)
    }

    pub fn lookup(&self, q: &Lookup) -> Result<Page, StoreError> {
        let connection = self.reader();
        self.lookup_in(&connection, q)
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
        // A block's events are all gone once its newest is.
        tx.execute("DELETE FROM blocks WHERE newest < ?1", [before_ms])
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
        for block in file.blocks {
            let inserted = insert_block(tx, terms, place, block)?;
            stored.events += inserted;
            stored.duplicates += block.records.len() as u64 - inserted;
            if inserted > 0 {
                newest = newest.max(block.records.iter().map(|e| e.time_ms).max());
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

/// Inserts a block and its events; returns how many were not stored before (a block with none is
/// not kept).
fn insert_block(
    tx: &Transaction,
    terms: &mut Terms,
    place: i64,
    block: &Block,
) -> Result<u64, StoreError> {
    let newest = block.records.iter().map(|e| e.time_ms).max().unwrap_or(0);
    tx.prepare_cached(
        "INSERT INTO blocks (dictionary, newest, size, data) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![
            block.dictionary,
            newest,
            block.size as i64,
            block.data
        ])
    })
    .map_err(sql)?;
    let id = tx.last_insert_rowid();
    let mut inserted = 0;
    for (ord, e) in block.records.iter().enumerate() {
        let name = terms.id(tx, &e.name)?;
        let source = terms.id(tx, &e.source)?;
        let username = terms.optional(tx, e.username.as_deref())?;
        let access_key = terms.optional(tx, e.access_key.as_deref())?;
        let error_code = terms.optional(tx, e.error_code.as_deref())?;
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (event_id, place, category, time, name, source, username, access_key, read_only, error_code, block, ord)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(sql)?;
        // Ignored when the event id is stored already (the only constraint a valid row can break).
        if insert
            .execute(params![
                id_key(&e.event_id),
                place,
                e.category.code(),
                e.time_ms,
                name,
                source,
                username,
                access_key,
                e.read_only,
                error_code,
                id,
                ord as i64
            ])
            .map_err(sql)?
            == 0
        {
            continue;
        }
        inserted += 1;
        let seq = tx.last_insert_rowid();
        for (ord, (ty, name)) in e.resources.iter().enumerate() {
            let ty = terms.id(tx, ty)?;
            let name = terms.id(tx, name)?;
            tx.prepare_cached(
                "INSERT INTO resources (seq, ord, type, name) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![seq, ord as i64, ty, name]))
            .map_err(sql)?;
        }
    }
    if inserted == 0 {
        tx.execute("DELETE FROM blocks WHERE id = ?1", [id])
            .map_err(sql)?;
    }
    Ok(inserted)
}

/// An event id as stored: a canonical (lowercase, hyphenated) UUID, as CloudTrail writes them, in
/// its 16 bytes after a 1; any other id as its text after a 0.
fn id_key(id: &str) -> Vec<u8> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().to_string() == id => {
            let mut key = Vec::with_capacity(17);
            key.push(1);
            key.extend_from_slice(u.as_bytes());
            key
        }
        _ => {
            let mut key = Vec::with_capacity(id.len() + 1);
            key.push(0);
            key.extend_from_slice(id.as_bytes());
            key
        }
    }
}

fn id_text(key: &[u8]) -> Result<String, StoreError> {
    match key.split_first() {
        Some((1, bytes)) => uuid::Uuid::from_slice(bytes)
            .map(|u| u.hyphenated().to_string())
            .map_err(|e| StoreError::Corrupt(e.to_string())),
        Some((0, text)) => {
            String::from_utf8(text.to_vec()).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("an event id of unknown form".into())),
    }
}

fn load_dictionaries(connection: &Connection) -> Result<Dictionaries, StoreError> {
    let mut statement = connection
        .prepare("SELECT id, data FROM dictionaries ORDER BY id")
        .map_err(sql)?;
    let rows = statement
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(sql)?;
    let mut dictionaries = Dictionaries::default();
    for row in rows {
        let (id, bytes) = row.map_err(sql)?;
        let dictionary = Arc::new(Dictionary::new(id, &bytes));
        dictionaries.by_id.insert(id, dictionary.clone());
        dictionaries.current = Some(dictionary);
    }
    Ok(dictionaries)
}

impl Sqlite {
    fn lookup_in(&self, connection: &Connection, q: &Lookup) -> Result<Page, StoreError> {
        let Some(place) = connection
            .prepare_cached("SELECT id FROM places WHERE account = ?1 AND region = ?2")
            .and_then(|mut s| {
                s.query_row([&q.account, &q.region], |r| r.get::<_, i64>(0))
                    .optional()
            })
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
            Some(Attribute::EventId(v)) => ("AND e.event_id = ?7", Some(id_key(v).into())),
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
        let text = lookup_sql(condition);
        let mut statement = connection.prepare_cached(&text).map_err(sql)?;
        let mut bound: Vec<rusqlite::types::Value> = vec![
            place.into(),
            category.code().into(),
            q.start_ms.into(),
            end.into(),
            at_time.into(),
            before_seq.into(),
        ];
        // ?7 is bound even where the condition does not use it: one text per condition, so the
        // statement is compiled once per connection, not once per call.
        bound.push(value.unwrap_or(rusqlite::types::Value::Null));
        bound.push(((q.limit + 1) as i64).into());
        let mut rows = statement
            .query(rusqlite::params_from_iter(bound))
            .map_err(sql)?;
        let mut page = Page::default();
        let mut seqs = Vec::new();
        let mut bytes = 0;
        let mut last = None;
        while let Some(row) = rows.next().map_err(sql)? {
            let seq: i64 = row.get(0).map_err(sql)?;
            let time_ms: i64 = row.get(2).map_err(sql)?;
            let block: i64 = row.get(8).map_err(sql)?;
            let ord: i64 = row.get(9).map_err(sql)?;
            let record = self
                .block(connection, block)?
                .get(ord as usize)
                .cloned()
                .ok_or_else(|| StoreError::Corrupt(format!("block {block} has no record {ord}")))?;
            if page.events.len() == q.limit || bytes + record.len() > q.max_bytes {
                // One more matches: the page is full and the next one starts after its last event.
                if !page.events.is_empty() {
                    page.next = last;
                    break;
                }
            }
            bytes += record.len();
            page.events.push(Event {
                event_id: id_text(&row.get::<_, Vec<u8>>(1).map_err(sql)?)?,
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
                resources: Vec::new(),
                record,
            });
            seqs.push(seq);
            last = Some(Position { time_ms, seq });
        }
        let mut resources = resources_of(connection, &seqs)?;
        for (event, seq) in page.events.iter_mut().zip(&seqs) {
            event.resources = resources.remove(seq).unwrap_or_default();
        }
        Ok(page)
    }
}

/// A lookup's statement: one text per attribute `condition` (its value is ?7, the limit ?8).
fn lookup_sql(condition: &str) -> String {
    format!(
        "SELECT e.seq, e.event_id, e.time, n.text, s.text, u.text, k.text, e.read_only, e.block, e.ord
         FROM events e
         LEFT JOIN terms n ON n.id = e.name LEFT JOIN terms s ON s.id = e.source
         LEFT JOIN terms u ON u.id = e.username LEFT JOIN terms k ON k.id = e.access_key
         WHERE e.place = ?1 AND e.category = ?2 AND e.time >= ?3 AND e.time <= ?4
           AND (e.time < ?5 OR e.seq < ?6) {condition}
         ORDER BY e.time DESC, e.seq DESC LIMIT ?8"
    )
}

/// The resources of a page's events: their seqs go in as one JSON array, so one statement text
/// serves every page size.
const RESOURCES_SQL: &str = "SELECT r.seq, t.text, n.text FROM resources r
    JOIN terms t ON t.id = r.type JOIN terms n ON n.id = r.name
    WHERE r.seq IN (SELECT value FROM json_each(?1)) ORDER BY r.seq, r.ord";

/// The resources of a page's events, in one query.
fn resources_of(
    connection: &Connection,
    seqs: &[i64],
) -> Result<HashMap<i64, Vec<(String, String)>>, StoreError> {
    let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    if seqs.is_empty() {
        return Ok(out);
    }
    let list = serde_json::to_string(seqs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut statement = connection.prepare_cached(RESOURCES_SQL).map_err(sql)?;
    let mut rows = statement.query([list]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        out.entry(row.get(0).map_err(sql)?)
            .or_default()
            .push((row.get(1).map_err(sql)?, row.get(2).map_err(sql)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::record::Indexed;

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

    /// Records packed as ingest packs them (without a dictionary).
    fn packed(records: &[Indexed]) -> Vec<Block> {
        blocks::pack(records.to_vec(), None).unwrap()
    }

    fn file<'a>(key: &'a str, blocks: &'a [Block]) -> File<'a> {
        File {
            source: "s",
            key,
            place: Some(("123456789012", "us-east-1")),
            blocks,
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
        let first = store.store(&file("a", &packed(&records[..6]))).unwrap();
        assert_eq!((first.events, first.duplicates, first.again), (6, 0, false));
        assert!(
            store
                .store(&file("a", &packed(&records[..6])))
                .unwrap()
                .again
        );
        let overlapping = store.store(&file("b", &packed(&records[4..]))).unwrap();
        assert_eq!((overlapping.events, overlapping.duplicates), (4, 2));
        let counts = store.counts().unwrap();
        assert_eq!((counts[0].files, counts[0].events), (2, 10));
        assert_eq!(store.cursor("s", "prefix/").unwrap().as_deref(), Some("b"));
        assert!(store.file_stored("s", "b").unwrap());
    }

    /// A store holding one file of nine GetObject events, two a second.
    fn open_with_nine() -> (tempfile_dir::Dir, Sqlite) {
        let (dir, store) = open();
        let records: Vec<_> = (0..9).map(|i| record(i, "GetObject")).collect();
        store.store(&file("a", &packed(&records))).unwrap();
        (dir, store)
    }

    #[test]
    fn pages_are_newest_first_without_gap_or_repeat() {
        let (_dir, store) = open_with_nine();
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
    fn lookups_run_compiled_statements() {
        let (_dir, store) = open_with_nine();
        let mut q = lookup(None, 2);
        for _ in 0..4 {
            let page = store.lookup(&q).unwrap();
            q.after = page.next;
        }
        // A statement re-prepared on every call costs more than the lookup itself.
        let reader = store.reader();
        for text in [lookup_sql(""), RESOURCES_SQL.to_owned()] {
            let statement = reader.prepare_cached(&text).unwrap();
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{text}"
            );
        }
    }

    #[test]
    fn attributes_filter() {
        let (_dir, store) = open();
        let mut records: Vec<_> = (0..6).map(|i| record(i, "GetObject")).collect();
        records.push(record(6, "PutObject"));
        store.store(&file("a", &packed(&records))).unwrap();
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
        store.store(&file("a", &packed(&records))).unwrap();
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
        let e = store.store(&file("a", &packed(&big))).unwrap_err();
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
        assert_eq!(store.store(&file("a", &packed(&big))).unwrap().events, 200);
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

    #[test]
    fn a_first_version_file_is_refused_and_left_as_it_was() {
        let dir = tempfile_dir::Dir::new();
        let path = dir.path.join("store.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
             INSERT INTO meta VALUES ('schema', 1);
             CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT, record BLOB);",
        )
        .unwrap();
        drop(c);
        let e = Sqlite::open(&path).unwrap_err();
        assert!(matches!(
            e,
            StoreError::Schema {
                found: 1,
                supported: 2
            }
        ));
        assert!(
            e.to_string().contains("rebuilt from the trail's log files"),
            "{e}"
        );
        let c = Connection::open(&path).unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2, "no table of the new schema was added");
    }

    #[test]
    fn event_ids_of_either_form_are_found_and_returned_as_written() {
        let (_dir, store) = open();
        let ids = [
            "3c5b8c3e-41a9-4c0c-9a41-2a3f7b4b1f10",
            "3C5B8C3E-41A9-4C0C-9A41-2A3F7B4B1F11",
            "not-a-uuid",
        ];
        let records: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let mut r = record(i as i64, "GetObject");
                r.event_id = (*id).into();
                r
            })
            .collect();
        store.store(&file("a", &packed(&records))).unwrap();
        for id in ids {
            let page = store
                .lookup(&lookup(Some(Attribute::EventId(id.into())), 50))
                .unwrap();
            assert_eq!(page.events.len(), 1, "{id}");
            assert_eq!(page.events[0].event_id, id);
        }
        let other_case = ids[0].to_uppercase();
        assert!(
            store
                .lookup(&lookup(Some(Attribute::EventId(other_case)), 50))
                .unwrap()
                .events
                .is_empty()
        );
        assert_eq!(id_key(ids[0]).len(), 17, "a canonical UUID takes 16 bytes");
    }

    #[test]
    fn a_dictionary_is_trained_after_the_first_blocks_and_blocks_of_both_kinds_are_read() {
        let (dir, store) = open();
        let n = TRAIN_AFTER_BLOCKS as i64 * blocks::RECORDS_PER_BLOCK as i64;
        let first: Vec<_> = (0..n).map(|i| record(i, "GetObject")).collect();
        assert!(store.dictionary().is_none());
        let plain = packed(&first);
        store.store(&file("a", &plain)).unwrap();
        let dictionary = store
            .dictionary()
            .expect("trained once enough blocks are stored");
        let later: Vec<_> = (n..n + 2 * n).map(|i| record(i, "PutObject")).collect();
        let trained = blocks::pack(later, Some(&dictionary)).unwrap();
        store.store(&file("b", &trained)).unwrap();
        let mean = |b: &[Block]| b.iter().map(|b| b.data.len()).sum::<usize>() / b.len();
        assert!(
            mean(&trained) < mean(&plain),
            "{} < {}",
            mean(&trained),
            mean(&plain)
        );
        drop(store);
        // Reopened: the dictionary is read back, the cache is empty, blocks are read from the file.
        let store = Sqlite::open(&dir.path.join("store.db")).unwrap();
        assert_eq!(store.dictionary().map(|d| d.id), Some(dictionary.id));
        for (name, count, id) in [("GetObject", n, "id-7"), ("PutObject", 2 * n, "id-3000")] {
            let mut q = lookup(Some(Attribute::EventName(name.into())), 50);
            let mut seen = 0;
            loop {
                let page = store.lookup(&q).unwrap();
                for e in &page.events {
                    let json: serde_json::Value = serde_json::from_str(&e.record).unwrap();
                    assert_eq!(json["eventID"], e.event_id.as_str());
                    assert_eq!(json["eventName"], name);
                }
                seen += page.events.len() as i64;
                match page.next {
                    Some(p) => q.after = Some(p),
                    None => break,
                }
            }
            assert_eq!(seen, count, "{name}");
            let page = store
                .lookup(&lookup(Some(Attribute::EventId(id.into())), 50))
                .unwrap();
            assert_eq!(page.events[0].event_id, id);
        }
    }
}
