//! The one place errors become gRPC statuses.
//!
//! Validation failures become INVALID_ARGUMENT with a `google.rpc.BadRequest`; every CloudTrail
//! exception becomes the gRPC code below with a `google.rpc.ErrorInfo` (reason = the AWS error code,
//! domain = `cloudtrail.amazonaws.com`, metadata `aws_request_id`, `http_status`), plus `RetryInfo` when
//! a retry can help. RPC impls never build a `Status` from an SDK error themselves.

use std::{collections::HashMap, time::Duration};

use aws_sdk_cloudtrail::{
    error::{ProvideErrorMetadata, SdkError},
    operation::RequestId,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every upstream error.
pub const DOMAIN: &str = "cloudtrail.amazonaws.com";
/// `ErrorInfo.domain` of the gateway's own refusals (rate limits, targets, role sessions).
pub const GATEWAY_DOMAIN: &str = "cloudtrail-gateway";

/// How long a throttled caller should wait before retrying: CloudTrail's quotas are per second.
const THROTTLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An error on the way through the gateway, before it is a `Status`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke one or more of CloudTrail's rules; nothing was sent upstream.
    #[error("invalid request: {}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// CloudTrail (or the transport to it) answered with an error.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// The caller's deadline passed before CloudTrail answered.
    #[error("the caller's deadline passed before CloudTrail answered")]
    DeadlineExceeded,
    /// No slot of the quota before the caller's deadline: nothing was sent.
    #[error("{0}")]
    RateLimited(#[from] Refusal),
    /// The gateway refused the call before sending it: a target it does not serve or the caller may
    /// not use, a role session it could not get.
    #[error("{0}")]
    Refused(#[from] Refused),
}

/// A refusal of the gateway's own, with its code and an `ErrorInfo` reason (domain
/// `cloudtrail-gateway`); `RetryInfo` when waiting can help. Clone, so callers that shared one
/// attempt (a role session's single STS call) each get it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub code: Code,
    pub reason: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl Refused {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            code,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, wait: Duration) -> Refused {
        self.retry_after = Some(wait);
        self
    }
}

/// An error from the upstream, reduced to what a caller needs.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UpstreamError {
    pub code: Code,
    /// The AWS error code (`TrailNotFoundException`), or a gateway reason for transport failures.
    pub reason: String,
    pub message: String,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    /// Set when a retry later can help although the code alone would not say so (a propagation
    /// error the caller's deadline left no time to outwait): the status carries RetryInfo.
    pub retry_after: Option<Duration>,
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The status code the caller gets.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::Upstream(up) => up.code,
            Error::DeadlineExceeded => Code::DeadlineExceeded,
            Error::RateLimited(_) => Code::ResourceExhausted,
            Error::Refused(refused) => refused.code,
        }
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Error {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// Whether CloudTrail answered the AWS error `code`.
    pub fn is_aws(&self, code: &str) -> bool {
        matches!(self, Error::Upstream(up) if up.reason == code)
    }

    /// The same error, telling the caller a retry after `wait` may succeed (RetryInfo).
    pub fn retry_after(self, wait: Duration) -> Error {
        match self {
            Error::Upstream(mut up) => {
                up.retry_after = Some(wait);
                Error::Upstream(up)
            }
            Error::Refused(refused) => Error::Refused(refused.retry_after(wait)),
            other => other,
        }
    }

    /// The request id AWS gave the failed call, if it got that far.
    pub fn aws_request_id(&self) -> Option<&str> {
        match self {
            Error::Upstream(up) => up.request_id.as_deref(),
            _ => None,
        }
    }
}

/// A refusal of ours somewhere in `err`'s sources (a role session the credentials provider could
/// not get, say).
fn refusal_within(err: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        source = e.source();
    }
    None
}

impl Error {
    /// An answer without an error code names the operation and the endpoint: an emulator answers
    /// HTTP 500 for an operation it does not implement (moto: LookupEvents, ListPublicKeys), and a
    /// bare "HTTP 500" told a reader nothing.
    pub fn naming(self, operation: &str, endpoint: &str) -> Error {
        match self {
            Error::Upstream(mut up) if up.reason == NO_CODE => {
                up.message = format!(
                    "{endpoint} answered {operation} with HTTP {} and no error code: it failed, or it does not implement {operation}",
                    up.http_status.unwrap_or(0)
                );
                Error::Upstream(up)
            }
            other => other,
        }
    }
}

/// The reason of an error answer that carried no AWS error code.
pub const NO_CODE: &str = "UnknownError";

impl<E> From<SdkError<E, HttpResponse>> for Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        if !matches!(err, SdkError::ServiceError(_))
            && let Some(refused) = refusal_within(&err)
        {
            return Error::Refused(refused);
        }
        let request_id = err.request_id().map(str::to_owned);
        let upstream = match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let aws_code = err.code().unwrap_or(NO_CODE).to_owned();
                UpstreamError {
                    code: grpc_code(&aws_code, status),
                    message: match err.message() {
                        Some(message) => message.to_owned(),
                        None if err.code().is_none() => {
                            format!("CloudTrail answered HTTP {status} without an error code")
                        }
                        None => aws_code.clone(),
                    },
                    reason: aws_code,
                    request_id,
                    http_status: Some(status),
                    retry_after: None,
                }
            }
            SdkError::TimeoutError(_) => return Error::DeadlineExceeded,
            SdkError::DispatchFailure(failure) if failure.is_timeout() => {
                return Error::DeadlineExceeded;
            }
            SdkError::DispatchFailure(failure) => UpstreamError {
                code: Code::Unavailable,
                reason: "UpstreamUnreachable".into(),
                message: match failure.as_connector_error() {
                    Some(e) => format!("cannot reach CloudTrail: {}", DisplayErrorContext(e)),
                    None => "cannot reach CloudTrail".to_owned(),
                },
                request_id: None,
                http_status: None,
                retry_after: None,
            },
            SdkError::ResponseError(response) => UpstreamError {
                code: Code::Unavailable,
                reason: "UpstreamBadResponse".into(),
                message: format!(
                    "CloudTrail answered HTTP {} with a body that is not a CloudTrail response",
                    response.raw().status().as_u16()
                ),
                request_id,
                http_status: Some(response.raw().status().as_u16()),
                retry_after: None,
            },
            // Construction failures and future variants are the gateway's own fault.
            _ => UpstreamError {
                code: Code::Internal,
                reason: "RequestConstructionFailed".into(),
                message: format!(
                    "could not build the CloudTrail request: {}",
                    DisplayErrorContext(&err)
                ),
                request_id: None,
                http_status: None,
                retry_after: None,
            },
        };
        Error::Upstream(upstream)
    }
}

/// The gRPC code for an AWS error code: exact names first, then the naming conventions CloudTrail
/// follows (`Invalid*`, `*NotFoundException`), then the HTTP status class.
pub fn grpc_code(aws_code: &str, http_status: u16) -> Code {
    match aws_code {
        "TrailAlreadyExistsException" => Code::AlreadyExists,
        "ThrottlingException" | "ThrottlingExceptions" | "TooManyRequestsException" => {
            Code::ResourceExhausted
        }
        // State of the account or of other resources must change first; retrying the same call won't help.
        "MaximumNumberOfTrailsExceededException"
        | "TagsLimitExceededException"
        | "InvalidHomeRegionException"
        | "S3BucketDoesNotExistException"
        | "InsufficientS3BucketPolicyException"
        | "InsufficientSnsTopicPolicyException"
        | "InsufficientEncryptionPolicyException"
        | "KmsKeyNotFoundException"
        | "KmsKeyDisabledException"
        | "KmsException"
        | "CloudWatchLogsDeliveryUnavailableException"
        | "CloudTrailAccessNotEnabledException"
        | "OrganizationsNotInUseException"
        | "OrganizationNotInAllFeaturesModeException"
        | "InactiveEventDataStoreException"
        | "InsightNotEnabledException" => Code::FailedPrecondition,
        "AccessDeniedException"
        | "NotOrganizationMasterAccountException"
        | "InsufficientDependencyServiceAccessPermissionException"
        | "NoManagementAccountSLRExistsException"
        | "OperationNotPermittedException" => Code::PermissionDenied,
        // The gateway's own AWS credentials were refused: a deployment fault, not the caller's.
        "CloudTrailInvalidClientTokenIdException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "ExpiredTokenException"
        | "MissingAuthenticationToken" => Code::Internal,
        "ConflictException" => Code::Aborted,
        // An operation the service does not know (awsJson's answer; moto's).
        "UnsupportedOperationException" | "UnknownOperationException" | "NotImplementedError" => {
            Code::Unimplemented
        }
        "TrailNotProvidedException"
        | "CloudTrailARNInvalidException"
        | "ChannelARNInvalidException"
        | "EventDataStoreARNInvalidException"
        | "ResourceTypeNotSupportedException"
        | "ValidationException" => Code::InvalidArgument,
        "InternalFailure" | "InternalServerError" | "ServiceUnavailable" => Code::Unavailable,
        code if code.ends_with("NotFoundException") => Code::NotFound,
        code if code.starts_with("Invalid") => Code::InvalidArgument,
        _ if http_status >= 500 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = err.code();
        match err {
            Error::InvalidArgument(violations) => {
                let message = format!("invalid request: {}", describe_violations(&violations));
                Status::with_error_details(
                    code,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            Error::DeadlineExceeded => {
                let mut details = ErrorDetails::new();
                details.set_error_info("UpstreamTimeout", DOMAIN, HashMap::new());
                Status::with_error_details(code, err.to_string(), details)
            }
            Error::RateLimited(refusal) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(refusal.retry_after));
                details.add_quota_failure_violation(
                    refusal.subject.clone(),
                    format!("{}: {} calls per second", refusal.class, refusal.rate),
                );
                details.set_error_info("RateLimited", GATEWAY_DOMAIN, HashMap::new());
                Status::with_error_details(code, refusal.to_string(), details)
            }
            Error::Refused(refused) => {
                let mut details = ErrorDetails::new();
                details.set_error_info(refused.reason, GATEWAY_DOMAIN, HashMap::new());
                if let Some(wait) = refused.retry_after {
                    details.set_retry_info(Some(wait));
                }
                Status::with_error_details(code, refused.message, details)
            }
            Error::Upstream(up) => {
                let mut metadata = HashMap::new();
                if let Some(id) = up.request_id {
                    metadata.insert("aws_request_id".to_owned(), id);
                }
                if let Some(status) = up.http_status {
                    metadata.insert("http_status".to_owned(), status.to_string());
                }
                let mut details = ErrorDetails::new();
                details.set_error_info(up.reason, DOMAIN, metadata);
                if let Some(wait) = up.retry_after {
                    details.set_retry_info(Some(wait));
                } else if matches!(code, Code::ResourceExhausted | Code::Unavailable) {
                    details.set_retry_info(Some(THROTTLE_RETRY_AFTER));
                }
                Status::with_error_details(code, up.message, details)
            }
        }
    }
}

/// A call that cannot have a slot in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the {class} quota of {subject} ({rate}/s) has no slot within {within}; retry in {retry_after:?}"
)]
pub struct Refusal {
    pub class: &'static str,
    pub rate: f64,
    /// `<account>/<region>`.
    pub subject: String,
    pub retry_after: Duration,
    /// What the wait was bounded by (`Refusal::DEADLINE` unless the caller says otherwise).
    pub within: &'static str,
}

impl Refusal {
    pub const DEADLINE: &'static str = "the call's deadline";
    pub const NO_DEADLINE: &'static str =
        "the wait a call that sets no deadline is given (limit_max_wait_without_deadline)";

    /// The same refusal, for a call that set no deadline of its own.
    pub fn without_deadline(self) -> Refusal {
        Refusal {
            within: Refusal::NO_DEADLINE,
            ..self
        }
    }
}

/// Collects field violations while a request is checked, so a caller learns every problem at once
/// (the first `MAX_VIOLATIONS`, then how many more: a huge bad request gets a small answer).
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>, usize);

/// The most violations one answer lists.
pub const MAX_VIOLATIONS: usize = 100;

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.0.len() < MAX_VIOLATIONS {
            self.0.push(FieldViolation::new(field, description));
        } else {
            self.1 += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found, else the INVALID_ARGUMENT error listing the violations.
    pub fn into_result<T>(self, value: T) -> Result<T, Error> {
        let Violations(mut found, more) = self;
        if found.is_empty() {
            return Ok(value);
        }
        if more > 0 {
            found.push(FieldViolation::new(
                "(request)",
                format!("and {more} more violations"),
            ));
        }
        Err(Error::InvalidArgument(found))
    }
}

#[cfg(test)]
mod tests;
