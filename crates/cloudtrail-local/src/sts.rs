//! STS, as far as a caller's identity needs it: AssumeRole (with SourceIdentity, session tags, an
//! external id, a duration, role chaining) and GetCallerIdentity, in STS's query protocol (XML
//! answers). Roles are the ones added with `LocalCloudTrail::add_role`; a role's trust decides
//! whether it may be assumed with a SourceIdentity (`sts:SetSourceIdentity`) or tags
//! (`sts:TagSession`). Its own reading of STS's documented rules, like `rules` for CloudTrail's.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use serde_json::Value;

use crate::{
    identity::{Identity, SessionCredentials},
    ids,
    wire::{ApiError, NAMESPACE, escape},
};

/// A role STS can issue sessions of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub account_id: String,
    pub name: String,
    /// When set, AssumeRole must present this external id.
    pub external_id: Option<String>,
    /// Whether the trust policy allows `sts:SetSourceIdentity`.
    pub allow_source_identity: bool,
    /// Whether the trust policy allows `sts:TagSession`.
    pub allow_tags: bool,
    /// The role's maximum session duration (1-12 hours).
    pub max_session_duration: Duration,
}

impl Role {
    /// A role that trusts its account's principals for AssumeRole, SetSourceIdentity and TagSession,
    /// with the default maximum session of one hour.
    pub fn new(account_id: impl Into<String>, name: impl Into<String>) -> Role {
        Role {
            account_id: account_id.into(),
            name: name.into(),
            external_id: None,
            allow_source_identity: true,
            allow_tags: true,
            max_session_duration: Duration::from_secs(3600),
        }
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, self.name)
    }
}

/// The roles, with the stable id STS gives each.
#[derive(Debug, Default)]
pub struct Roles {
    by_arn: HashMap<String, (Role, String)>,
}

impl Roles {
    pub fn add(&mut self, role: Role) {
        let id = format!("AROA{}", ids::base32(17));
        self.by_arn.insert(role.arn(), (role, id));
    }
}

fn validation(message: String) -> ApiError {
    ApiError::new("ValidationError", message)
}

fn access_denied(message: String) -> ApiError {
    let mut e = ApiError::new("AccessDenied", message);
    e.http_status = 403;
    e
}

/// `[\w+=,.@-]{min,max}`: role session names, source identities.
fn check_name(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let length = value.chars().count();
    if length < min || length > max {
        return Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have length between {min} and {max}"
        )));
    }
    if !value.chars().all(ok_char) {
        return Err(validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    Ok(())
}

/// Session tag keys and values: `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, keys 1-128, values 0-256, at most 50.
fn check_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if tags.len() > 50 {
        return Err(validation(
            "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50".into(),
        ));
    }
    for (key, value) in tags {
        let key_ok = (1..=128).contains(&key.chars().count()) && key.chars().all(ok_char);
        let value_ok = value.chars().count() <= 256 && value.chars().all(ok_char);
        if !key_ok || !value_ok {
            return Err(validation(format!(
                "1 validation error detected: Value at 'tags' failed to satisfy constraint: the tag '{key}' or its value does not satisfy the constraints"
            )));
        }
    }
    Ok(())
}

fn param<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// `Tags.member.N.Key` / `.Value`, in order of N.
fn tags_of(body: &Value) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for n in 1.. {
        let Some(key) = param(body, &format!("Tags.member.{n}.Key")) else {
            break;
        };
        let value = param(body, &format!("Tags.member.{n}.Value")).unwrap_or_default();
        tags.push((key.to_owned(), value.to_owned()));
    }
    tags
}

/// A successful AssumeRole: the session's identity and for how long.
pub struct Assumed {
    pub identity: Identity,
    pub duration: Duration,
}

/// Checks an AssumeRole request by `caller` as STS would, and says what session to issue.
pub fn assume_role(roles: &Roles, caller: &Identity, body: &Value) -> Result<Assumed, ApiError> {
    let role_arn = param(body, "RoleArn").unwrap_or_default();
    let session_name = param(body, "RoleSessionName").unwrap_or_default();
    check_name("roleSessionName", session_name, 2, 64)?;
    let requested_source = param(body, "SourceIdentity");
    if let Some(source) = requested_source {
        check_name("sourceIdentity", source, 2, 256)?;
        if source.to_ascii_lowercase().starts_with("aws:") {
            return Err(validation(
                "SourceIdentity cannot start with the prefix 'aws:'".into(),
            ));
        }
    }
    let tags = tags_of(body);
    check_tags(&tags)?;
    let chained = caller.is_role_session();
    let duration = match param(body, "DurationSeconds") {
        None => 3600,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| validation(format!("DurationSeconds '{text}' is not a number")))?,
    };
    if !(900..=43200).contains(&duration) {
        return Err(validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
        )));
    }
    let not_authorized = |action: &str| {
        access_denied(format!(
            "User: {} is not authorized to perform: {action} on resource: {role_arn}",
            caller.arn()
        ))
    };
    let Some((role, role_id)) = roles.by_arn.get(role_arn) else {
        return Err(not_authorized("sts:AssumeRole"));
    };
    if role.external_id.is_some() && role.external_id.as_deref() != param(body, "ExternalId") {
        return Err(not_authorized("sts:AssumeRole"));
    }
    if requested_source.is_some() && !role.allow_source_identity {
        return Err(not_authorized("sts:SetSourceIdentity"));
    }
    if !tags.is_empty() && !role.allow_tags {
        return Err(not_authorized("sts:TagSession"));
    }
    if chained && duration > 3600 {
        return Err(validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
        ));
    }
    if duration > role.max_session_duration.as_secs() {
        return Err(validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role ({} s).",
            role.max_session_duration.as_secs()
        )));
    }
    // Once set, a source identity stays with every session chained from it and cannot change.
    let source_identity = match (caller.source_identity(), requested_source) {
        (Some(held), Some(asked)) if held != asked => {
            return Err(access_denied(format!(
                "The source identity of this session is already set to '{held}' and cannot be changed"
            )));
        }
        (Some(held), _) => Some(held.to_owned()),
        (None, asked) => asked.map(str::to_owned),
    };
    Ok(Assumed {
        identity: Identity::AssumedRole {
            account: role.account_id.clone(),
            role_name: role.name.clone(),
            role_id: role_id.clone(),
            session_name: session_name.to_owned(),
            source_identity,
            issued: SystemTime::now(),
        },
        duration: Duration::from_secs(duration),
    })
}

pub fn assume_role_xml(
    session: &Identity,
    credentials: &SessionCredentials,
    request_id: &str,
) -> String {
    let expiration =
        crate::clock::rfc3339(aws_smithy_types::DateTime::from(credentials.expiration));
    let source = session
        .source_identity()
        .map(|s| format!("<SourceIdentity>{}</SourceIdentity>", escape(s)))
        .unwrap_or_default();
    format!(
        "<AssumeRoleResponse xmlns=\"{NAMESPACE}\"><AssumeRoleResult>{source}<AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></AssumeRoleResponse>",
        escape(&session.user_id()),
        escape(&session.arn()),
        credentials.access_key_id,
        escape(&credentials.secret_access_key),
        escape(&credentials.session_token),
    )
}

pub fn caller_identity_xml(caller: &Identity, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{NAMESPACE}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        escape(&caller.arn()),
        escape(&caller.user_id()),
        caller.account(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Identity {
        Identity::User {
            account: "123456789012".into(),
            name: "gateway".into(),
            user_id: "AIDAX".into(),
        }
    }

    fn roles() -> Roles {
        let mut roles = Roles::default();
        roles.add(Role::new("111111111111", "audit"));
        roles.add(Role {
            external_id: Some("ext-1".into()),
            allow_source_identity: false,
            ..Role::new("222222222222", "strict")
        });
        roles
    }

    #[test]
    fn assume_role_checks_what_sts_checks() {
        let roles = roles();
        let ok = json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "team-a", "SourceIdentity": "team-a", "Tags.member.1.Key": "principal", "Tags.member.1.Value": "spiffe://td/ns/x"});
        let assumed = assume_role(&roles, &user(), &ok).unwrap();
        assert_eq!(assumed.identity.source_identity(), Some("team-a"));
        assert_eq!(assumed.identity.account(), "111111111111");
        for (body, code) in [
            (
                json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "spiffe://td/x"}),
                "ValidationError",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "a"}),
                "ValidationError",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "ok", "SourceIdentity": "alice@example.com/x"}),
                "ValidationError",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::111111111111:role/nope", "RoleSessionName": "ok"}),
                "AccessDenied",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::222222222222:role/strict", "RoleSessionName": "ok"}),
                "AccessDenied",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::222222222222:role/strict", "RoleSessionName": "ok", "ExternalId": "ext-1", "SourceIdentity": "who"}),
                "AccessDenied",
            ),
            (
                json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "ok", "DurationSeconds": "60"}),
                "ValidationError",
            ),
        ] {
            assert_eq!(
                assume_role(&roles, &user(), &body)
                    .err()
                    .map(|e| e.code.into_owned())
                    .as_deref(),
                Some(code),
                "{body}"
            );
        }
        let strict = json!({"RoleArn": "arn:aws:iam::222222222222:role/strict", "RoleSessionName": "ok", "ExternalId": "ext-1"});
        assert!(assume_role(&roles, &user(), &strict).is_ok());
    }

    #[test]
    fn a_source_identity_persists_through_chaining_and_cannot_change() {
        let roles = roles();
        let first = json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "s1", "SourceIdentity": "alice"});
        let session = assume_role(&roles, &user(), &first).unwrap().identity;
        let chained =
            json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "s2"});
        let again = assume_role(&roles, &session, &chained).unwrap();
        assert_eq!(again.identity.source_identity(), Some("alice"));
        let changed = json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "s3", "SourceIdentity": "mallory"});
        assert_eq!(
            assume_role(&roles, &session, &changed)
                .err()
                .map(|e| e.code.into_owned())
                .as_deref(),
            Some("AccessDenied")
        );
        let long = json!({"RoleArn": "arn:aws:iam::111111111111:role/audit", "RoleSessionName": "s4", "DurationSeconds": "7200"});
        assert_eq!(
            assume_role(&roles, &session, &long)
                .err()
                .map(|e| e.code.into_owned())
                .as_deref(),
            Some("ValidationError"),
            "role chaining: 1 hour at most"
        );
    }
}
