//! An S3 REST request as the embedded S3 reads it: the bucket and key from the path (path-style,
//! `/<bucket>/<key>`) or the host (virtual-hosted, `<bucket>.s3.<region>.amazonaws.com`), the query,
//! the headers it uses, and the body with aws-chunked framing removed.

use std::collections::BTreeMap;

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

use super::error::S3Error;
use crate::wire::percent_decode;

#[derive(Debug)]
pub struct S3Request {
    pub method: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// The Region of the SigV4 credential scope (us-east-1 when unsigned).
    pub region: String,
    pub body: Vec<u8>,
}

impl S3Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.query.contains_key(name)
    }
}

/// The bucket named by a virtual-hosted host name (`<bucket>.s3.<...>.amazonaws.com`).
fn bucket_of_host(host: &str) -> Option<&str> {
    let host = host.split(':').next()?;
    if !host.ends_with(".amazonaws.com") {
        return None;
    }
    let at = [".s3.", ".s3-"].iter().filter_map(|m| host.find(m)).min()?;
    (at > 0).then(|| &host[..at])
}

pub fn parse(request: &HttpRequest, region: String) -> Result<S3Request, S3Error> {
    let uri = request.uri();
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let (host, path_and_query) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect();
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = match bucket_of_host(host) {
        Some(bucket) => (Some(bucket.to_owned()), path),
        None => match path.split_once('/') {
            Some((bucket, key)) => (Some(percent_decode(bucket, false)), key),
            None => ((!path.is_empty()).then(|| percent_decode(path, false)), ""),
        },
    };
    let key = (!key.is_empty()).then(|| percent_decode(key, false));
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    let raw = request.body().bytes().unwrap_or_default();
    let chunked = headers
        .get("x-amz-content-sha256")
        .is_some_and(|v| v.starts_with("STREAMING-"))
        || headers
            .get("content-encoding")
            .is_some_and(|v| v.split(',').any(|e| e.trim() == "aws-chunked"));
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Ok(S3Request {
        method: request.method().to_owned(),
        bucket,
        key,
        query,
        headers,
        region,
        body,
    })
}

/// The payload of an `aws-chunked` body: `<hex size>[;chunk-signature=...]\r\n<bytes>\r\n`
/// repeated, ended by a zero-size chunk and optional trailers (checksums, ignored here).
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, S3Error> {
    let bad = || S3Error::new("IncompleteBody", 400, "The aws-chunked body is malformed.");
    let mut out = Vec::with_capacity(raw.len());
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = std::str::from_utf8(&raw[..line_end]).map_err(|_| bad())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 || &raw[size..size + 2] != b"\r\n" {
            return Err(bad());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn request(method: &str, uri: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::empty());
        r.set_uri(uri).unwrap();
        r.set_method(method).unwrap();
        r
    }

    #[test]
    fn path_style_and_virtual_hosted() {
        let r = parse(
            &request(
                "GET",
                "http://127.0.0.1:9000/logs/AWSLogs/a%20b%2Bc/x.json.gz?list-type=2&prefix=A%2F",
            ),
            "us-east-1".into(),
        )
        .unwrap();
        assert_eq!(r.bucket.as_deref(), Some("logs"));
        assert_eq!(r.key.as_deref(), Some("AWSLogs/a b+c/x.json.gz"));
        assert_eq!(r.param("prefix"), Some("A/"));
        let r = parse(
            &request(
                "GET",
                "https://my.logs.s3.eu-west-1.amazonaws.com/k?location",
            ),
            "eu-west-1".into(),
        )
        .unwrap();
        assert_eq!(r.bucket.as_deref(), Some("my.logs"));
        assert_eq!(r.key.as_deref(), Some("k"));
        assert!(r.has("location"));
        let r = parse(
            &request("GET", "http://127.0.0.1:9000/"),
            "us-east-1".into(),
        )
        .unwrap();
        assert_eq!((r.bucket, r.key), (None, None));
    }

    #[test]
    fn aws_chunked_bodies_are_unframed() {
        let framed = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(dechunk(framed).unwrap(), b"hello world");
        assert!(dechunk(b"5\r\nhel").is_err());
        assert!(dechunk(b"zz\r\n").is_err());
    }
}
