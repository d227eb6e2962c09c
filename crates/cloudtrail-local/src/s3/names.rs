//! S3's rules for bucket names and object keys, answered with S3's error codes.

use super::error::S3Error;
use crate::rules::is_bucket_name;

/// S3 keys are at most 1024 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

pub fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    if is_bucket_name(name) {
        Ok(())
    } else {
        Err(S3Error::new(
            "InvalidBucketName",
            400,
            format!("The specified bucket is not valid: {name}"),
        ))
    }
}

pub fn check_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(S3Error::new(
            "InvalidArgument",
            400,
            "An object key must not be empty.",
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(
            "KeyTooLongError",
            400,
            "Your key is too long (at most 1024 bytes).",
        ));
    }
    Ok(())
}
