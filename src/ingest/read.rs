//! One log file from its bucket into the store, whichever way it was found (a listing, a
//! notification): skipped when stored already, read within the size bound, its records stored
//! with the file in one transaction, or the reason it is skipped for good recorded. A failure that
//! may pass (S3, the store's disk) is returned, for the caller to try the file again later.

use aws_sdk_s3::{error::ProvideErrorMetadata, operation::get_object::GetObjectError};

use super::{
    file,
    source::{IngestConfig, Source},
};
use crate::{
    store::{OwnedFile, Store, layout},
    telemetry,
};

/// A failure that may pass: the file is tried again.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("S3 {operation}: {message}")]
    S3 {
        operation: &'static str,
        message: String,
    },
    #[error("SQS {operation}: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("a read task failed: {0}")]
    Task(String),
}

impl ReadError {
    /// The `kind` label of the error counter.
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::S3 { .. } => "s3",
            ReadError::Sqs { .. } => "sqs",
            ReadError::Store(_) | ReadError::Task(_) => "store",
        }
    }
}

pub fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    e: &aws_sdk_s3::error::SdkError<E>,
) -> ReadError {
    let message = match e.code() {
        Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
        None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    };
    ReadError::S3 { operation, message }
}

/// One file to read: where it is, how it was found.
pub struct Found<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// Its size, when a listing said.
    pub size: Option<u64>,
    /// The listing's cursor to move past it (None for a notification).
    pub cursor: Option<&'a str>,
    /// The place a listing found it under (a key outside the layout names none of its own).
    pub listed_place: Option<(&'a str, &'a str)>,
}

/// Reads files of one source into the store.
#[derive(Clone)]
pub struct Reader {
    pub source: Source,
    pub store: Store,
    pub config: IngestConfig,
}

impl Reader {
    /// Reads and stores one file (or records why it is skipped); the place it counted under.
    pub async fn read(&self, found: Found<'_>) -> Result<Option<(String, String)>, ReadError> {
        let prepared = self.prepare(found).await?;
        self.commit(prepared).await
    }

    /// Fetches and parses a file (the parse on the blocking pool, off the async threads): what
    /// `commit` stores. Several may be prepared at once; they are committed in order.
    pub async fn prepare(&self, found: Found<'_>) -> Result<Prepared, ReadError> {
        let c = &self.source.config;
        let (bucket, key) = (found.bucket, found.key);
        let layout = layout::log_key(&c.prefix, key);
        let place = layout
            .as_ref()
            .map(|k| (k.account.clone(), k.region.clone()))
            .or_else(|| {
                found
                    .listed_place
                    .map(|(a, r)| (a.to_owned(), r.to_owned()))
            });
        let name = format!("{bucket}/{key}");
        let mut prepared = Prepared {
            name,
            key: key.to_owned(),
            place,
            cursor: found.cursor.map(str::to_owned),
            records: Ok(file::Records::default()),
            blocks: Vec::new(),
            stored_before: false,
        };
        if self
            .store
            .file_stored(c.name.clone(), prepared.name.clone())
            .await?
        {
            prepared.stored_before = true; // listed again after a rewind, or notified again
            return Ok(prepared);
        }
        let max = self.config.max_file_bytes;
        prepared.records = match layout {
            None => Err(file::Skip::OutsideLayout),
            Some(_) if found.size.is_some_and(|s| s > max) => Err(file::Skip::TooLarge(max)),
            Some(_) => match self.fetch(bucket, key, max).await? {
                Fetched::Body(body) => {
                    let store = self.store.clone();
                    // Parsed and packed here, on the blocking pool, while earlier files are stored.
                    let (records, blocks) =
                        tokio::task::spawn_blocking(move || match file::records(&body, max) {
                            Ok(mut r) => store
                                .pack(std::mem::take(&mut r.records))
                                .map(|blocks| (Ok(r), blocks)),
                            Err(skip) => Ok((Err(skip), Vec::new())),
                        })
                        .await
                        .unwrap_or_else(|e| {
                            Ok((Err(file::Skip::NotCloudTrail(e.to_string())), Vec::new()))
                        })?;
                    prepared.blocks = blocks;
                    records
                }
                Fetched::TooLarge => Err(file::Skip::TooLarge(max)),
                // Found, then deleted: nothing to store, nothing to keep trying.
                Fetched::Gone => Err(file::Skip::Gone),
            },
        };
        Ok(prepared)
    }

    /// Stores a prepared file, or records why it is skipped.
    pub async fn commit(&self, prepared: Prepared) -> Result<Option<(String, String)>, ReadError> {
        let c = &self.source.config;
        let Prepared {
            name,
            key,
            place,
            cursor,
            records,
            blocks,
            stored_before,
        } = prepared;
        if stored_before {
            return Ok(place);
        }
        let (records, skipped) = match records {
            Ok(r) => {
                if r.unusable > 0 {
                    tracing::warn!(source = %c.name, key, unusable = r.unusable, problem = r.first_problem.as_deref().unwrap_or_default(), "event store: records left out of a log file");
                }
                (r, None)
            }
            Err(skip) => {
                tracing::warn!(source = %c.name, key, reason = %skip, "event store: log file skipped");
                metrics::counter!(telemetry::STORE_SKIPPED, "source" => c.name.clone(), "kind" => skip.label())
                    .increment(1);
                (file::Records::default(), Some(skip.to_string()))
            }
        };
        let unusable = records.unusable;
        let stored = self
            .store
            .store(OwnedFile {
                source: c.name.clone(),
                key: name,
                place: place.clone(),
                blocks,
                skipped: skipped.clone(),
                cursor: cursor.map(|cursor| (cursor, key)),
            })
            .await?;
        if stored.again {
            return Ok(place);
        }
        metrics::counter!(telemetry::STORE_FILES, "source" => c.name.clone()).increment(1);
        metrics::counter!(telemetry::STORE_EVENTS, "source" => c.name.clone())
            .increment(stored.events);
        if let Some((account, region)) = &place {
            self.source.status.place(account, region, |p| {
                p.files += 1;
                p.events += stored.events;
                p.duplicates += stored.duplicates;
                p.skipped += u64::from(skipped.is_some());
                p.unusable += unusable;
            });
        }
        Ok(place)
    }

    async fn fetch(&self, bucket: &str, key: &str, max: u64) -> Result<Fetched, ReadError> {
        let answer = self
            .source
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(Fetched::Gone);
            }
            Err(e) => return Err(s3_error("GetObject", &e)),
        };
        if object.content_length.is_some_and(|n| n as u64 > max) {
            return Ok(Fetched::TooLarge);
        }
        let body = object.body.collect().await.map_err(|e| ReadError::S3 {
            operation: "GetObject",
            message: e.to_string(),
        })?;
        Ok(Fetched::Body(body.to_vec()))
    }
}

/// A file read and parsed, waiting to be stored.
pub struct Prepared {
    /// `bucket/key`, the file's name in the store.
    name: String,
    key: String,
    place: Option<(String, String)>,
    cursor: Option<String>,
    /// The file's records (packed into `blocks`), or why it is skipped.
    records: Result<file::Records, file::Skip>,
    blocks: Vec<crate::store::blocks::Block>,
    /// Stored already: nothing to do.
    stored_before: bool,
}

enum Fetched {
    Body(Vec<u8>),
    TooLarge,
    Gone,
}
