//! What the embedded S3 stores: buckets and their objects.

use std::{collections::BTreeMap, sync::Arc};

use aws_smithy_types::DateTime;
use sha2::{Digest, Sha256};

use crate::ids::hex;

/// One stored object.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Arc<[u8]>,
    /// `x-amz-meta-*` without the prefix, names lower-cased as S3 keeps them.
    pub metadata: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub last_modified: DateTime,
    /// Quoted, as S3 sends it. S3's is the MD5 of the body; here the first 16 bytes of its SHA-256
    /// (clients compare it, none recompute it).
    pub etag: String,
    /// Order of writing, for eviction and for the directory.
    pub(super) seq: u64,
}

impl Object {
    pub fn new(
        body: Vec<u8>,
        metadata: BTreeMap<String, String>,
        content_type: Option<String>,
        now: DateTime,
    ) -> Self {
        let etag = format!("\"{}\"", hex(&Sha256::digest(&body)[..16]));
        Object {
            body: body.into(),
            metadata,
            content_type,
            content_encoding: None,
            last_modified: now,
            etag,
            seq: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Bucket {
    pub(super) region: String,
    pub(super) created: DateTime,
    pub(super) objects: BTreeMap<String, Object>,
}
