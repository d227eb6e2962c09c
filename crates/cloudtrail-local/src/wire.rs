//! The wire: CloudTrail's awsJson1_1 (`POST /` with `X-Amz-Target: <prefix>.<Operation>` and a JSON
//! body; answers are JSON, errors HTTP 400 with `{"__type": ..., "message": ...}` like AWS), and STS's
//! query protocol (a form-encoded `Action=...` body; answers in XML, see `sts`). Which one a request
//! speaks is told by its SigV4 credential scope's service.

use std::borrow::Cow;

use aws_smithy_runtime_api::{client::orchestrator::HttpRequest, http::Response, http::StatusCode};
use aws_smithy_types::{DateTime, body::SdkBody};
use serde_json::Value;

/// The target prefix the Rust SDK sends, and the long one botocore (AWS CLI, boto3) sends.
const TARGET_PREFIXES: [&str; 2] = [
    "CloudTrail_20131101.",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.",
];

/// An error answer in CloudTrail's words.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub http_status: u16,
}

impl ApiError {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            http_status: 400,
        }
    }
}

/// The service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    CloudTrail,
    Sts,
}

/// What the emulator needs to know about one request.
#[derive(Debug)]
pub struct Call {
    pub service: Service,
    pub operation: String,
    pub region: String,
    pub access_key_id: String,
    /// `X-Amz-Security-Token`: present with temporary (STS) credentials.
    pub security_token: Option<String>,
    pub user_agent: String,
    /// The JSON body, or the query parameters as one JSON object of strings.
    pub body: Value,
}

/// The Region of a request for S3 (its credential scope names the service `s3`, or, unsigned, its
/// host is S3's); `None` for CloudTrail and STS.
pub fn s3_region(request: &HttpRequest) -> Option<String> {
    let scope = credential_scope(request);
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.get(3) {
        Some(&"s3") => Some(parts.get(2).copied().unwrap_or("us-east-1").to_owned()),
        Some(_) => None,
        None => {
            let host = request
                .uri()
                .split("://")
                .nth(1)?
                .split(['/', ':'])
                .next()?;
            let s3_host = host.starts_with("s3.") || host.contains(".s3.") || host.contains(".s3-");
            s3_host.then(|| "us-east-1".to_owned())
        }
    }
}

/// `Credential=<akid>/<date>/<region>/<service>/aws4_request` of the Authorization header.
fn credential_scope(request: &HttpRequest) -> &str {
    request
        .headers()
        .get("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .unwrap_or_default()
}

/// Reads the service, the operation, the Region (from the SigV4 credential scope, else the host
/// name), the caller's key and the body.
pub fn parse(request: &HttpRequest) -> Result<Call, ApiError> {
    let headers = request.headers();
    let scope = credential_scope(request);
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let access_key_id = scope_parts.first().copied().unwrap_or_default().to_owned();
    let security_token = headers.get("x-amz-security-token").map(str::to_owned);
    let user_agent = headers.get("user-agent").unwrap_or_default().to_owned();
    if scope_parts.get(3) == Some(&"sts") {
        let region = scope_parts
            .get(2)
            .copied()
            .unwrap_or("us-east-1")
            .to_owned();
        let params = form(request.body().bytes().unwrap_or_default());
        let operation = params
            .get("Action")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        return Ok(Call {
            service: Service::Sts,
            operation,
            region,
            access_key_id,
            security_token,
            user_agent,
            body: params,
        });
    }
    let target = headers.get("x-amz-target").unwrap_or_default();
    let operation = TARGET_PREFIXES
        .iter()
        .find_map(|p| target.strip_prefix(p))
        .ok_or_else(|| {
            ApiError::new(
                "UnknownOperationException",
                format!("unknown X-Amz-Target '{target}'"),
            )
        })?
        .to_owned();
    let region = scope_parts
        .get(2)
        .map(|r| (*r).to_owned())
        .or_else(|| region_from_host(request.uri()))
        .ok_or_else(|| {
            ApiError::new(
                "MissingAuthenticationTokenException",
                "request is not signed",
            )
        })?;
    let raw = request.body().bytes().unwrap_or_default();
    let body = if raw.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(raw).map_err(|e| {
            ApiError::new(
                "SerializationException",
                format!("request body is not JSON: {e}"),
            )
        })?
    };
    Ok(Call {
        service: Service::CloudTrail,
        operation,
        region,
        access_key_id,
        security_token,
        user_agent,
        body,
    })
}

/// `application/x-www-form-urlencoded` as one JSON object of strings (the last value of a name wins).
fn form(raw: &[u8]) -> Value {
    let text = String::from_utf8_lossy(raw);
    let params = text
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(name, true),
                Value::String(percent_decode(value, true)),
            )
        })
        .collect();
    Value::Object(params)
}

/// `%XX` escapes decoded; `+` is a space in forms and query strings (`plus_is_space`), itself in
/// paths.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn region_from_host(uri: &str) -> Option<String> {
    let host = uri.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    (labels.next()? == "cloudtrail").then(|| labels.next().map(str::to_owned))?
}

/// `StartTime`/`EndTime` of a request (epoch seconds); the start may not be after the end, which
/// defaults to now.
pub fn time_range(
    body: &Value,
    now: DateTime,
) -> Result<(Option<DateTime>, Option<DateTime>), ApiError> {
    let time = |k: &str| {
        body.get(k)
            .and_then(Value::as_f64)
            .map(DateTime::from_secs_f64)
    };
    let (start, end) = (time("StartTime"), time("EndTime"));
    if start.is_some_and(|s| s > end.unwrap_or(now)) {
        return Err(ApiError::new(
            "InvalidTimeRangeException",
            "Start time must be before the end time.",
        ));
    }
    Ok((start, end))
}

/// An answer that is not CloudTrail's: `status` with an HTML body, as a load balancer sends it.
pub fn respond_status(request_id: &str, status: u16) -> Response<SdkBody> {
    let status = StatusCode::try_from(status)
        .unwrap_or_else(|_| StatusCode::from(http::StatusCode::INTERNAL_SERVER_ERROR));
    let mut response = Response::new(
        status,
        SdkBody::from("<html><body>Service Unavailable</body></html>"),
    );
    response.headers_mut().insert("content-type", "text/html");
    response
        .headers_mut()
        .insert("x-amzn-requestid", request_id.to_owned());
    response
}

/// An STS answer: the XML document, or STS's error document with the error's status.
pub fn respond_xml(request_id: &str, result: &Result<String, ApiError>) -> Response<SdkBody> {
    let (status, body) = match result {
        Ok(xml) => (200, xml.clone()),
        Err(e) => (e.http_status, error_xml(e, request_id)),
    };
    let status = StatusCode::try_from(status)
        .unwrap_or_else(|_| StatusCode::from(http::StatusCode::INTERNAL_SERVER_ERROR));
    let mut response = Response::new(status, SdkBody::from(body));
    response.headers_mut().insert("content-type", "text/xml");
    response
        .headers_mut()
        .insert("x-amzn-requestid", request_id.to_owned());
    response
}

pub fn respond(request_id: &str, result: &Result<Value, ApiError>) -> Response<SdkBody> {
    let (status, body) = match result {
        Ok(value) => (200, value.to_string()),
        Err(e) => (
            e.http_status,
            serde_json::json!({"__type": e.code, "message": e.message}).to_string(),
        ),
    };
    let status = StatusCode::try_from(status)
        .unwrap_or_else(|_| StatusCode::from(http::StatusCode::INTERNAL_SERVER_ERROR));
    let mut response = Response::new(status, SdkBody::from(body));
    let headers = response.headers_mut();
    headers.insert("content-type", "application/x-amz-json-1.1");
    headers.insert("x-amzn-requestid", request_id.to_owned());
    if let Err(e) = result {
        headers.insert("x-amzn-errortype", e.code.to_string());
    }
    response
}

/// Text as XML character data or an attribute value.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// STS's XML namespace (its query protocol answers in XML).
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// STS's error answer.
pub fn error_xml(error: &ApiError, request_id: &str) -> String {
    let kind = if error.http_status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(&error.code),
        escape(&error.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, auth: Option<&str>) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(r#"{"Name":"t1"}"#));
        r.set_uri("https://cloudtrail.eu-west-1.amazonaws.com/")
            .unwrap();
        r.headers_mut().insert("x-amz-target", target.to_owned());
        if let Some(a) = auth {
            r.headers_mut().insert("authorization", a.to_owned());
        }
        r
    }

    #[test]
    fn both_target_spellings_are_accepted() {
        for target in [
            "CloudTrail_20131101.CreateTrail",
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.CreateTrail",
        ] {
            let call = parse(&request(target, None)).unwrap();
            assert_eq!(call.operation, "CreateTrail");
            assert_eq!(call.region, "eu-west-1"); // from the host when unsigned
            assert_eq!(call.body["Name"], "t1");
        }
    }

    #[test]
    fn region_and_key_come_from_the_credential_scope() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/ap-south-2/cloudtrail/aws4_request, SignedHeaders=host, Signature=abc";
        let call = parse(&request("CloudTrail_20131101.GetTrail", Some(auth))).unwrap();
        assert_eq!(
            (call.region.as_str(), call.access_key_id.as_str()),
            ("ap-south-2", "AKIDEXAMPLE")
        );
    }

    #[test]
    fn unknown_targets_are_refused() {
        let err = parse(&request("DynamoDB_20120810.PutItem", None)).unwrap_err();
        assert_eq!(err.code, "UnknownOperationException");
    }
}
