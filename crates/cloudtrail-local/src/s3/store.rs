//! The buckets and their objects, in memory and bounded: past the cap on bytes kept, the oldest
//! objects written are evicted (and counted) so a long-running emulator cannot fill memory. With a
//! directory (`disk`), every change is written through and the buckets are read back at start.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use aws_smithy_types::DateTime;

use super::{
    disk,
    error::S3Error,
    names::{check_bucket_name, check_key},
    object::{Bucket, Object},
};

/// Every bucket, bounded by the bytes their objects hold.
#[derive(Debug)]
pub struct Buckets {
    pub(super) buckets: BTreeMap<String, Bucket>,
    capacity: u64,
    held: u64,
    next_seq: u64,
    /// Objects by age: seq → (bucket, key).
    order: BTreeMap<u64, (String, String)>,
    evicted: u64,
    dir: Option<PathBuf>,
}

impl Buckets {
    pub fn new(capacity: u64) -> Self {
        Buckets {
            buckets: BTreeMap::new(),
            capacity: capacity.max(1),
            held: 0,
            next_seq: 0,
            order: BTreeMap::new(),
            evicted: 0,
            dir: None,
        }
    }

    /// Keeps the buckets in `dir` from now on: what it holds is read back (oldest evicted past
    /// the cap), and every later change is written there. Returns how many objects were read.
    pub fn keep_in(&mut self, dir: &Path) -> std::io::Result<usize> {
        let saved = disk::read(dir)?;
        // Set first: an object evicted while reading back leaves the directory too.
        self.dir = Some(dir.to_owned());
        let mut count = 0;
        for (name, region, created, objects) in saved {
            self.buckets.entry(name.clone()).or_insert(Bucket {
                region,
                created,
                objects: BTreeMap::new(),
            });
            for (key, object) in objects {
                self.insert(&name, key, object);
                count += 1;
            }
        }
        for (name, bucket) in &self.buckets {
            disk::write_bucket(dir, name, bucket)?;
        }
        Ok(count)
    }

    /// Bytes the objects hold.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// How many objects were evicted to stay within the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn exists(&self, bucket: &str) -> bool {
        self.buckets.contains_key(bucket)
    }

    pub fn region_of(&self, bucket: &str) -> Result<&str, S3Error> {
        self.buckets
            .get(bucket)
            .map(|b| b.region.as_str())
            .ok_or_else(|| S3Error::no_such_bucket(bucket))
    }

    /// Every bucket with its creation time.
    pub fn list(&self) -> impl Iterator<Item = (&str, DateTime)> {
        self.buckets.iter().map(|(n, b)| (n.as_str(), b.created))
    }

    /// CreateBucket. S3 answers BucketAlreadyOwnedByYou for a bucket of the caller's outside
    /// us-east-1; everything here is the caller's, and us-east-1 answers 200 as S3 does.
    pub fn create(&mut self, name: &str, region: &str, now: DateTime) -> Result<(), S3Error> {
        check_bucket_name(name)?;
        if let Some(existing) = self.buckets.get(name) {
            if existing.region == "us-east-1" && region == "us-east-1" {
                return Ok(());
            }
            return Err(S3Error::new(
                "BucketAlreadyOwnedByYou",
                409,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ));
        }
        let bucket = Bucket {
            region: region.to_owned(),
            created: now,
            objects: BTreeMap::new(),
        };
        if let Some(dir) = &self.dir
            && let Err(e) = disk::write_bucket(dir, name, &bucket)
        {
            return Err(internal(e));
        }
        self.buckets.insert(name.to_owned(), bucket);
        Ok(())
    }

    /// DeleteBucket: only an empty one, as S3.
    pub fn delete_bucket(&mut self, name: &str) -> Result<(), S3Error> {
        let bucket = self
            .buckets
            .get(name)
            .ok_or_else(|| S3Error::no_such_bucket(name))?;
        if !bucket.objects.is_empty() {
            return Err(S3Error::new(
                "BucketNotEmpty",
                409,
                "The bucket you tried to delete is not empty",
            ));
        }
        self.buckets.remove(name);
        if let Some(dir) = &self.dir {
            disk::remove_bucket(dir, name).map_err(internal)?;
        }
        Ok(())
    }

    /// PutObject; an object larger than the whole cap is refused (EntityTooLarge).
    pub fn put(&mut self, bucket: &str, key: &str, object: Object) -> Result<(), S3Error> {
        check_key(key)?;
        if !self.buckets.contains_key(bucket) {
            return Err(S3Error::no_such_bucket(bucket));
        }
        if object.body.len() as u64 > self.capacity {
            return Err(S3Error::new(
                "EntityTooLarge",
                400,
                format!(
                    "Your proposed upload exceeds the embedded S3's capacity of {} bytes.",
                    self.capacity
                ),
            ));
        }
        self.insert(bucket, key.to_owned(), object);
        if let Some(dir) = &self.dir
            && let Ok(object) = self.get(bucket, key)
        {
            disk::write_object(dir, bucket, key, object).map_err(internal)?;
        }
        Ok(())
    }

    /// Stores an object and evicts the oldest past the cap.
    fn insert(&mut self, bucket: &str, key: String, mut object: Object) {
        let seq = self.next_seq;
        self.next_seq += 1;
        object.seq = seq;
        self.held += object.body.len() as u64;
        self.order.insert(seq, (bucket.to_owned(), key.clone()));
        if let Some(b) = self.buckets.get_mut(bucket)
            && let Some(old) = b.objects.insert(key, object)
        {
            self.held -= old.body.len() as u64;
            self.order.remove(&old.seq);
        }
        while self.held > self.capacity {
            let Some((_, (bucket, key))) = self.order.pop_first() else {
                break;
            };
            if self.remove(&bucket, &key).is_some() {
                self.evicted += 1;
            }
        }
    }

    fn remove(&mut self, bucket: &str, key: &str) -> Option<Object> {
        let removed = self.buckets.get_mut(bucket)?.objects.remove(key)?;
        self.held -= removed.body.len() as u64;
        self.order.remove(&removed.seq);
        if let Some(dir) = &self.dir
            && let Err(e) = disk::remove_object(dir, bucket, key)
        {
            eprintln!("cloudtrail-local: s3://{bucket}/{key} removed but not from disk: {e}");
        }
        Some(removed)
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<&Object, S3Error> {
        check_key(key)?;
        self.buckets
            .get(bucket)
            .ok_or_else(|| S3Error::no_such_bucket(bucket))?
            .objects
            .get(key)
            .ok_or_else(S3Error::no_such_key)
    }

    /// DeleteObject: a missing key is no error, as in S3.
    pub fn delete(&mut self, bucket: &str, key: &str) -> Result<(), S3Error> {
        check_key(key)?;
        if !self.buckets.contains_key(bucket) {
            return Err(S3Error::no_such_bucket(bucket));
        }
        self.remove(bucket, key);
        Ok(())
    }

    /// The objects of a bucket in key order.
    pub(super) fn objects(&self, bucket: &str) -> Result<&BTreeMap<String, Object>, S3Error> {
        self.buckets
            .get(bucket)
            .map(|b| &b.objects)
            .ok_or_else(|| S3Error::no_such_bucket(bucket))
    }
}

fn internal(e: std::io::Error) -> S3Error {
    S3Error::new(
        "InternalError",
        500,
        format!("the embedded S3 could not write: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bytes: usize) -> Object {
        Object::new(
            vec![7; bytes],
            BTreeMap::new(),
            None,
            DateTime::from_secs(1),
        )
    }

    #[test]
    fn the_oldest_objects_go_past_the_cap() {
        let mut s3 = Buckets::new(100);
        let now = DateTime::from_secs(1);
        s3.create("logs", "us-east-1", now).unwrap();
        for i in 0..5 {
            s3.put("logs", &format!("k{i}"), object(30)).unwrap();
        }
        assert_eq!(s3.held(), 90);
        assert_eq!(s3.evicted(), 2);
        assert!(s3.get("logs", "k0").is_err() && s3.get("logs", "k1").is_err());
        assert!(s3.get("logs", "k4").is_ok());
        // Overwriting frees the old version's bytes.
        s3.put("logs", "k4", object(10)).unwrap();
        assert_eq!(s3.held(), 70);
        assert_eq!(
            s3.put("logs", "big", object(101)).unwrap_err().code,
            "EntityTooLarge"
        );
    }

    #[test]
    fn s3s_errors() {
        let mut s3 = Buckets::new(1000);
        let now = DateTime::from_secs(1);
        assert_eq!(
            s3.create("Bad_Name", "us-east-1", now).unwrap_err().code,
            "InvalidBucketName"
        );
        s3.create("logs", "eu-west-1", now).unwrap();
        assert_eq!(
            s3.create("logs", "eu-west-1", now).unwrap_err().code,
            "BucketAlreadyOwnedByYou"
        );
        assert_eq!(s3.get("nope", "k").unwrap_err().code, "NoSuchBucket");
        assert_eq!(s3.get("logs", "k").unwrap_err().code, "NoSuchKey");
        let long = "k".repeat(1025);
        assert_eq!(
            s3.put("logs", &long, object(1)).unwrap_err().code,
            "KeyTooLongError"
        );
        s3.put("logs", "k", object(1)).unwrap();
        assert_eq!(s3.delete_bucket("logs").unwrap_err().code, "BucketNotEmpty");
        s3.delete("logs", "k").unwrap();
        s3.delete("logs", "k").unwrap();
        s3.delete_bucket("logs").unwrap();
        assert!(!s3.exists("logs"));
    }
}
