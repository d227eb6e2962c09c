//! The embedded S3 kept in a directory: `<dir>/<bucket>/bucket.json` (Region, creation time) and,
//! per object, `objects/<SHA-256 of the key>.body` and `.json` (the key, metadata, ETag, time).
//! The body is written before its description, each atomically, so a crash leaves whole objects
//! only; a body without a description is ignored at start.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::object::{Bucket, Object};
use crate::{files::write_atomically, ids::hex};

#[derive(Serialize, Deserialize)]
struct BucketFile {
    region: String,
    created: f64,
}

#[derive(Serialize, Deserialize)]
struct ObjectFile {
    key: String,
    metadata: BTreeMap<String, String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    last_modified: f64,
    etag: String,
    seq: u64,
}

/// A bucket read back: name, Region, creation time, objects in the order they were written.
pub(super) type Saved = (String, String, DateTime, Vec<(String, Object)>);

fn objects_dir(dir: &Path, bucket: &str) -> PathBuf {
    dir.join(bucket).join("objects")
}

fn object_stem(dir: &Path, bucket: &str, key: &str) -> PathBuf {
    objects_dir(dir, bucket).join(hex(&Sha256::digest(key.as_bytes())))
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub(super) fn write_bucket(dir: &Path, name: &str, bucket: &Bucket) -> io::Result<()> {
    std::fs::create_dir_all(objects_dir(dir, name))?;
    let file = BucketFile {
        region: bucket.region.clone(),
        created: bucket.created.as_secs_f64(),
    };
    write_atomically(
        &dir.join(name).join("bucket.json"),
        &serde_json::to_vec(&file).map_err(invalid)?,
    )
}

pub(super) fn remove_bucket(dir: &Path, name: &str) -> io::Result<()> {
    match std::fs::remove_dir_all(dir.join(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn write_object(dir: &Path, bucket: &str, key: &str, object: &Object) -> io::Result<()> {
    let stem = object_stem(dir, bucket, key);
    write_atomically(&stem.with_extension("body"), &object.body)?;
    let file = ObjectFile {
        key: key.to_owned(),
        metadata: object.metadata.clone(),
        content_type: object.content_type.clone(),
        content_encoding: object.content_encoding.clone(),
        last_modified: object.last_modified.as_secs_f64(),
        etag: object.etag.clone(),
        seq: object.seq,
    };
    write_atomically(
        &stem.with_extension("json"),
        &serde_json::to_vec(&file).map_err(invalid)?,
    )
}

pub(super) fn remove_object(dir: &Path, bucket: &str, key: &str) -> io::Result<()> {
    let stem = object_stem(dir, bucket, key);
    for ext in ["json", "body"] {
        match std::fs::remove_file(stem.with_extension(ext)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Every bucket kept in `dir` (created when missing).
pub(super) fn read(dir: &Path) -> io::Result<Vec<Saved>> {
    std::fs::create_dir_all(dir)?;
    let mut saved = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        let Ok(text) = std::fs::read(path.join("bucket.json")) else {
            continue; // not a bucket of ours
        };
        let bucket: BucketFile = serde_json::from_slice(&text)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let mut objects = Vec::new();
        for entry in std::fs::read_dir(objects_dir(dir, &name))? {
            let described = entry?.path();
            if described.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let file: ObjectFile = serde_json::from_slice(&std::fs::read(&described)?)
                .map_err(|e| invalid(format!("{}: {e}", described.display())))?;
            let body = std::fs::read(described.with_extension("body"))?;
            let object = Object {
                body: body.into(),
                metadata: file.metadata,
                content_type: file.content_type,
                content_encoding: file.content_encoding,
                last_modified: DateTime::from_secs_f64(file.last_modified),
                etag: file.etag,
                seq: file.seq,
            };
            objects.push((file.key, object));
        }
        objects.sort_by_key(|(_, o)| o.seq);
        saved.push((
            name,
            bucket.region,
            DateTime::from_secs_f64(bucket.created),
            objects,
        ));
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::super::store::Buckets;
    use super::Object;

    #[test]
    fn a_restart_keeps_the_objects() {
        let dir = std::env::temp_dir().join(format!("ctl-s3-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = aws_smithy_types::DateTime::from_secs(1_700_000_000);
        {
            let mut s3 = Buckets::new(1 << 20);
            s3.keep_in(&dir).unwrap();
            s3.create("logs", "eu-west-1", now).unwrap();
            let mut meta = std::collections::BTreeMap::new();
            meta.insert("signature".to_owned(), "abcd".to_owned());
            for key in ["a/1", "a/2", "b/ü"] {
                let object = Object::new(key.as_bytes().to_vec(), meta.clone(), None, now);
                s3.put("logs", key, object).unwrap();
            }
            s3.delete("logs", "a/2").unwrap();
        }
        let mut s3 = Buckets::new(1 << 20);
        assert_eq!(s3.keep_in(&dir).unwrap(), 2);
        assert_eq!(s3.region_of("logs").unwrap(), "eu-west-1");
        let object = s3.get("logs", "b/ü").unwrap();
        assert_eq!(&*object.body, "b/ü".as_bytes());
        assert_eq!(object.metadata["signature"], "abcd");
        assert!(s3.get("logs", "a/2").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
