//! S3, embedded: enough of its REST API for aws-sdk-s3, boto3 and the AWS CLI to create buckets,
//! write, read, list and delete objects (path-style or virtual-hosted), answered in S3's REST-XML
//! with S3's error codes. The trails deliver their log and digest files here.

mod disk;
mod error;
mod list;
mod names;
mod object;
mod request;
mod store;
mod xml;

use std::collections::BTreeMap;

use aws_smithy_runtime_api::{
    client::orchestrator::{HttpRequest, HttpResponse},
    http::StatusCode,
};
use aws_smithy_types::{DateTime, body::SdkBody};

pub use error::S3Error;
pub use object::Object;
use request::S3Request;
pub use store::Buckets;

use crate::wire::escape;

/// What one request is answered with: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    /// Headers named at run time: an object's `x-amz-meta-*`.
    metadata: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn ok() -> Self {
        Answer {
            status: 200,
            headers: Vec::new(),
            metadata: Vec::new(),
            body: Vec::new(),
        }
    }

    fn xml(body: &str) -> Self {
        Answer {
            status: 200,
            headers: vec![("content-type", "application/xml".into())],
            metadata: Vec::new(),
            body: xml::document(body).into_bytes(),
        }
    }
}

/// Serves one S3 request from `buckets`.
pub fn serve(
    buckets: &mut Buckets,
    request: &HttpRequest,
    region: String,
    request_id: &str,
) -> HttpResponse {
    let parsed = request::parse(request, region);
    let head = request.method() == "HEAD";
    let (answer, resource) = match parsed {
        Ok(request) => {
            let resource = match (&request.bucket, &request.key) {
                (Some(b), Some(k)) => format!("/{b}/{k}"),
                (Some(b), None) => format!("/{b}"),
                _ => "/".to_owned(),
            };
            (answer(buckets, &request), resource)
        }
        Err(e) => (Err(e), String::new()),
    };
    let answer = answer.unwrap_or_else(|e| Answer {
        status: e.status,
        headers: vec![
            ("content-type", "application/xml".into()),
            ("x-amz-error-code", e.code.into()),
        ],
        metadata: Vec::new(),
        // A HEAD answer has no body: the status says it all, as S3 answers.
        body: if head {
            Vec::new()
        } else {
            xml::error(&e, &resource, request_id).into_bytes()
        },
    });
    let status = StatusCode::try_from(answer.status)
        .unwrap_or_else(|_| StatusCode::from(http::StatusCode::INTERNAL_SERVER_ERROR));
    let length = answer
        .headers
        .iter()
        .any(|(name, _)| *name == "content-length");
    let body_len = answer.body.len();
    let mut response = HttpResponse::new(status, SdkBody::from(answer.body));
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        headers.insert(name, value);
    }
    for (name, value) in answer.metadata {
        headers.insert(name, value);
    }
    if !length {
        headers.insert("content-length", body_len.to_string());
    }
    headers.insert("x-amz-request-id", request_id.to_owned());
    headers.insert("x-amz-id-2", request_id.to_owned());
    response
}

/// The S3 operation a request calls, by S3's names (for planned faults: `GetObject:3:SlowDown`).
pub fn operation_of(request: &HttpRequest) -> &'static str {
    let Ok(r) = request::parse(request, String::new()) else {
        return "Unknown";
    };
    match (r.method.as_str(), r.bucket.is_some(), r.key.is_some()) {
        ("GET", false, _) => "ListBuckets",
        ("PUT", true, false) => "CreateBucket",
        ("HEAD", true, false) => "HeadBucket",
        ("DELETE", true, false) => "DeleteBucket",
        ("GET", true, false) if r.has("location") => "GetBucketLocation",
        ("GET", true, false) if r.query.get("list-type").is_some_and(|v| v == "2") => {
            "ListObjectsV2"
        }
        ("GET", true, false) => "ListObjects",
        ("PUT", true, true) => "PutObject",
        ("GET", true, true) => "GetObject",
        ("HEAD", true, true) => "HeadObject",
        ("DELETE", true, true) => "DeleteObject",
        _ => "Unknown",
    }
}

/// A planned S3 error as S3 sends it: SlowDown and ServiceUnavailable are 503s, InternalError a
/// 500, anything else a 400.
pub fn error_answer(code: &str, message: &str, request_id: &str) -> HttpResponse {
    let status = match code {
        "SlowDown" | "ServiceUnavailable" => 503,
        "InternalError" => 500,
        _ => 400,
    };
    let body = xml::document(&format!(
        "<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
        crate::wire::escape(code),
        crate::wire::escape(message)
    ));
    let mut response = HttpResponse::new(
        StatusCode::try_from(status)
            .unwrap_or_else(|_| StatusCode::from(http::StatusCode::INTERNAL_SERVER_ERROR)),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("content-type", "application/xml");
    response
        .headers_mut()
        .insert("x-amz-request-id", request_id.to_owned());
    response
}

fn not_implemented(what: &str) -> S3Error {
    S3Error::new(
        "NotImplemented",
        501,
        format!("the embedded S3 does not implement {what}"),
    )
}

fn answer(buckets: &mut Buckets, r: &S3Request) -> Result<Answer, S3Error> {
    let method = r.method.as_str();
    let Some(bucket) = r.bucket.as_deref() else {
        return match method {
            "GET" => Ok(Answer::xml(&list_buckets(buckets))),
            _ => Err(S3Error::new(
                "MethodNotAllowed",
                405,
                "The specified method is not allowed against this resource.",
            )),
        };
    };
    let now = DateTime::from(std::time::SystemTime::now());
    let Some(key) = r.key.as_deref() else {
        return match method {
            "PUT" if r.query.is_empty() => {
                let region = location_constraint(&r.body).unwrap_or_else(|| r.region.clone());
                buckets.create(bucket, &region, now)?;
                let mut answer = Answer::ok();
                answer.headers.push(("location", format!("/{bucket}")));
                Ok(answer)
            }
            "HEAD" => {
                let region = buckets.region_of(bucket)?;
                let mut answer = Answer::ok();
                answer
                    .headers
                    .push(("x-amz-bucket-region", region.to_owned()));
                Ok(answer)
            }
            "DELETE" if r.query.is_empty() => {
                buckets.delete_bucket(bucket)?;
                Ok(Answer {
                    status: 204,
                    ..Answer::ok()
                })
            }
            "GET" if r.has("location") => {
                // us-east-1 is the empty constraint, as S3 answers it.
                let region = buckets.region_of(bucket)?;
                let region = if region == "us-east-1" { "" } else { region };
                Ok(Answer::xml(&format!(
                    "<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
                    xml::NAMESPACE,
                    escape(region)
                )))
            }
            "GET" if r.param("list-type") == Some("2") => Ok(Answer::xml(&list::list(
                list::Version::V2,
                bucket,
                buckets.objects(bucket)?,
                r,
            )?)),
            "GET" if !r.query.keys().any(|q| !LIST_PARAMS.contains(&q.as_str())) => {
                Ok(Answer::xml(&list::list(
                    list::Version::V1,
                    bucket,
                    buckets.objects(bucket)?,
                    r,
                )?))
            }
            _ => Err(not_implemented(&format!(
                "{method} on a bucket with ?{}",
                query_names(r)
            ))),
        };
    };
    match method {
        "PUT" if r.header("x-amz-copy-source").is_some() => Err(not_implemented("CopyObject")),
        "PUT" if r.query.is_empty() || r.query.keys().all(|q| q.starts_with("x-id")) => {
            let metadata: BTreeMap<String, String> = r
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    name.strip_prefix("x-amz-meta-")
                        .map(|n| (n.to_owned(), value.clone()))
                })
                .collect();
            let mut object = Object::new(
                r.body.clone(),
                metadata,
                r.header("content-type").map(str::to_owned),
                now,
            );
            object.content_encoding = r
                .header("content-encoding")
                .map(|e| {
                    e.split(',')
                        .map(str::trim)
                        .filter(|e| *e != "aws-chunked")
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|e| !e.is_empty());
            let etag = object.etag.clone();
            buckets.put(bucket, key, object)?;
            let mut answer = Answer::ok();
            answer.headers.push(("etag", etag));
            Ok(answer)
        }
        "GET" | "HEAD"
            if r.query.keys().all(|q| {
                q.starts_with("x-id") || q.starts_with("response-") || q == "partNumber"
            }) =>
        {
            let object = buckets.get(bucket, key)?;
            object_answer(object, r.header("range"), method == "HEAD")
        }
        "DELETE" if r.query.keys().all(|q| q.starts_with("x-id")) => {
            buckets.delete(bucket, key)?;
            Ok(Answer {
                status: 204,
                ..Answer::ok()
            })
        }
        _ => Err(not_implemented(&format!(
            "{method} on an object with ?{}",
            query_names(r)
        ))),
    }
}

/// The parameters ListObjects (V1) takes.
const LIST_PARAMS: [&str; 5] = ["prefix", "delimiter", "marker", "max-keys", "encoding-type"];

fn query_names(r: &S3Request) -> String {
    r.query.keys().cloned().collect::<Vec<_>>().join("&")
}

fn list_buckets(buckets: &Buckets) -> String {
    let mut out = format!(
        "<ListAllMyBucketsResult xmlns=\"{}\"><Owner><ID>cloudtrail-local</ID></Owner><Buckets>",
        xml::NAMESPACE
    );
    for (name, created) in buckets.list() {
        out += &format!(
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
            escape(name),
            xml::last_modified(created)
        );
    }
    out += "</Buckets></ListAllMyBucketsResult>";
    out
}

/// `<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>...`
fn location_constraint(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<LocationConstraint>")? + "<LocationConstraint>".len();
    let end = text[start..].find("</LocationConstraint>")? + start;
    Some(text[start..end].trim().to_owned()).filter(|r| !r.is_empty())
}

/// `bytes=A-B`, `bytes=A-`, `bytes=-N` of a body of `len` bytes: the inclusive range. `None`: the
/// header is not one S3 honours (the whole object is sent); `Err`: unsatisfiable.
fn range(header: &str, len: usize) -> Option<Result<(usize, usize), S3Error>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let unsatisfiable = || {
        Err(S3Error::new(
            "InvalidRange",
            416,
            "The requested range is not satisfiable",
        ))
    };
    let (start, end) = match (first.trim(), last.trim()) {
        ("", "") => return None,
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            if n == 0 || len == 0 {
                return Some(unsatisfiable());
            }
            (len.saturating_sub(n), len - 1)
        }
        (start, end) => {
            let start: usize = start.parse().ok()?;
            let end: usize = if end.is_empty() {
                usize::MAX
            } else {
                end.parse().ok()?
            };
            if end < start {
                return None;
            }
            if start >= len {
                return Some(unsatisfiable());
            }
            (start, end.min(len - 1))
        }
    };
    Some(Ok((start, end)))
}

fn object_answer(
    object: &Object,
    range_header: Option<&str>,
    head: bool,
) -> Result<Answer, S3Error> {
    let len = object.body.len();
    let mut answer = Answer::ok();
    let (start, end) = match range_header.and_then(|h| range(h, len)) {
        Some(Ok((start, end))) => {
            answer.status = 206;
            answer
                .headers
                .push(("content-range", format!("bytes {start}-{end}/{len}")));
            (start, end + 1)
        }
        Some(Err(e)) => return Err(e),
        None => (0, len),
    };
    answer
        .headers
        .push(("content-length", (end - start).to_string()));
    answer.headers.push(("etag", object.etag.clone()));
    answer
        .headers
        .push(("last-modified", xml::http_date(object.last_modified)));
    answer.headers.push(("accept-ranges", "bytes".into()));
    answer.headers.push((
        "content-type",
        object
            .content_type
            .clone()
            .unwrap_or_else(|| "binary/octet-stream".into()),
    ));
    if let Some(encoding) = &object.content_encoding {
        answer.headers.push(("content-encoding", encoding.clone()));
    }
    for (name, value) in &object.metadata {
        answer
            .metadata
            .push((format!("x-amz-meta-{name}"), value.clone()));
    }
    if !head {
        answer.body = object.body[start..end].to_vec();
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(range("bytes=0-3", 10).unwrap().unwrap(), (0, 3));
        assert_eq!(range("bytes=5-", 10).unwrap().unwrap(), (5, 9));
        assert_eq!(range("bytes=-3", 10).unwrap().unwrap(), (7, 9));
        assert_eq!(range("bytes=8-100", 10).unwrap().unwrap(), (8, 9));
        assert_eq!(
            range("bytes=10-", 10).unwrap().unwrap_err().code,
            "InvalidRange"
        );
        assert!(range("bytes=0-1,3-4", 10).is_none());
        assert!(range("items=0-1", 10).is_none());
        assert!(range("bytes=5-2", 10).is_none());
    }

    #[test]
    fn location_constraints() {
        let body = b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(location_constraint(body).as_deref(), Some("eu-west-1"));
        assert_eq!(location_constraint(b""), None);
    }
}
