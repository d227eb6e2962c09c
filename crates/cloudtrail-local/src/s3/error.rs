//! S3's errors: a code, an HTTP status, a message.

/// An S3 error: its code, HTTP status and message, as S3 answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct S3Error {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl S3Error {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        S3Error {
            code,
            status,
            message: message.into(),
        }
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        S3Error::new(
            "NoSuchBucket",
            404,
            format!("The specified bucket does not exist: {bucket}"),
        )
    }

    pub fn no_such_key() -> Self {
        S3Error::new("NoSuchKey", 404, "The specified key does not exist.")
    }
}
