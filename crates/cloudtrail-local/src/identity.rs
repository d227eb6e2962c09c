//! Who is calling: the access key of a request's SigV4 credential, mapped to the identity it was
//! issued to: an IAM user's long-term key, or the temporary key of a role session STS issued (then
//! the request must carry the session's token, and the session must not have expired). CloudTrail
//! records that identity as the event's `userIdentity`; LookupEvents' `Username` is derived from it
//! as AWS derives it (a user's name, a role session's name).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde_json::{Value, json};

use crate::{ids, wire::ApiError};

/// An identity calls can be made as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An IAM user of an account.
    User {
        account: String,
        name: String,
        /// The stable `AIDA…` id AWS gives every user.
        user_id: String,
    },
    /// A session of an IAM role, made by STS AssumeRole.
    AssumedRole {
        account: String,
        role_name: String,
        /// The role's stable `AROA…` id.
        role_id: String,
        session_name: String,
        /// Set at AssumeRole; recorded on every call of the session, kept by sessions chained from it.
        source_identity: Option<String>,
        issued: SystemTime,
    },
}

impl Identity {
    pub fn account(&self) -> &str {
        match self {
            Identity::User { account, .. } | Identity::AssumedRole { account, .. } => account,
        }
    }

    /// LookupEvents' `Username` for this identity.
    pub fn username(&self) -> &str {
        match self {
            Identity::User { name, .. } => name,
            Identity::AssumedRole { session_name, .. } => session_name,
        }
    }

    pub fn arn(&self) -> String {
        match self {
            Identity::User { account, name, .. } => format!("arn:aws:iam::{account}:user/{name}"),
            Identity::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
        }
    }

    /// What GetCallerIdentity calls `UserId`.
    pub fn user_id(&self) -> String {
        match self {
            Identity::User { user_id, .. } => user_id.clone(),
            Identity::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }

    pub fn source_identity(&self) -> Option<&str> {
        match self {
            Identity::AssumedRole {
                source_identity, ..
            } => source_identity.as_deref(),
            Identity::User { .. } => None,
        }
    }

    pub fn is_role_session(&self) -> bool {
        matches!(self, Identity::AssumedRole { .. })
    }

    /// The `userIdentity` element of a CloudTrail record, for a call made with `access_key_id`.
    pub fn record(&self, access_key_id: &str) -> Value {
        match self {
            Identity::User {
                account,
                name,
                user_id,
            } => json!({
                "type": "IAMUser",
                "principalId": user_id,
                "arn": self.arn(),
                "accountId": account,
                "accessKeyId": access_key_id,
                "userName": name,
            }),
            Identity::AssumedRole {
                account,
                role_name,
                role_id,
                source_identity,
                issued,
                ..
            } => {
                let mut context = json!({
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": role_id,
                        "arn": format!("arn:aws:iam::{account}:role/{role_name}"),
                        "accountId": account,
                        "userName": role_name,
                    },
                    "attributes": {
                        "creationDate": crate::clock::rfc3339((*issued).into()),
                        "mfaAuthenticated": "false",
                    },
                });
                if let Some(source) = source_identity {
                    context["sourceIdentity"] = json!(source);
                }
                json!({
                    "type": "AssumedRole",
                    "principalId": self.user_id(),
                    "arn": self.arn(),
                    "accountId": account,
                    "accessKeyId": access_key_id,
                    "sessionContext": context,
                })
            }
        }
    }
}

/// A long-term access key pair, as IAM's CreateAccessKey returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Temporary credentials of a role session, as STS returns them.
#[derive(Clone)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
}

#[derive(Debug)]
struct Key {
    identity: Arc<Identity>,
    /// For a role session's temporary key: its token and when it expires.
    session: Option<(String, SystemTime)>,
}

/// The access keys issued so far, and who they belong to.
#[derive(Debug, Default)]
pub struct Keys {
    by_access_key: HashMap<String, Key>,
    /// (account, user) → its key, so asking again for a user's key gives the same one.
    by_user: HashMap<(String, String), AccessKey>,
}

impl Keys {
    /// The access key of IAM user `name` in `account`, issued on first request.
    pub fn user_key(&mut self, account: &str, name: &str) -> AccessKey {
        let user = (account.to_owned(), name.to_owned());
        if let Some(key) = self.by_user.get(&user) {
            return key.clone();
        }
        let key = AccessKey {
            access_key_id: format!("AKIA{}", ids::base32(16)),
            secret_access_key: ids::base64(30),
        };
        let identity = Identity::User {
            account: user.0.clone(),
            name: user.1.clone(),
            user_id: format!("AIDA{}", ids::base32(17)),
        };
        self.by_access_key.insert(
            key.access_key_id.clone(),
            Key {
                identity: Arc::new(identity),
                session: None,
            },
        );
        self.by_user.insert(user, key.clone());
        key
    }

    /// Temporary credentials for a new role session, valid for `duration`.
    pub fn issue_session(&mut self, identity: Identity, duration: Duration) -> SessionCredentials {
        let credentials = SessionCredentials {
            access_key_id: format!("ASIA{}", ids::base32(16)),
            secret_access_key: ids::base64(40),
            session_token: ids::base64(200),
            expiration: SystemTime::now() + duration,
        };
        self.by_access_key.insert(
            credentials.access_key_id.clone(),
            Key {
                identity: Arc::new(identity),
                session: Some((credentials.session_token.clone(), credentials.expiration)),
            },
        );
        credentials
    }

    /// Whom a request signed with `access_key_id` (and `token`) comes from: `Ok(None)` for a
    /// long-term key this emulator did not issue (the caller decides what such a key is); an error
    /// for a temporary key that is unknown, carries the wrong token or has expired.
    pub fn check(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<Option<Arc<Identity>>, ApiError> {
        let invalid = || {
            let mut e = ApiError::new(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            );
            e.http_status = 403;
            e
        };
        let Some(key) = self.by_access_key.get(access_key_id) else {
            return if access_key_id.starts_with("ASIA") {
                Err(invalid())
            } else {
                Ok(None)
            };
        };
        if let Some((expected, expires)) = &key.session {
            if token != Some(expected.as_str()) {
                return Err(invalid());
            }
            if SystemTime::now() >= *expires {
                return Err(ApiError::new(
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                ));
            }
        }
        Ok(Some(key.identity.clone()))
    }

    /// Every role session expires now (as when its credentials time out, or are revoked).
    pub fn expire_sessions(&mut self) {
        let now = SystemTime::now();
        for key in self.by_access_key.values_mut() {
            if let Some((_, expires)) = &mut key.session {
                *expires = now;
            }
        }
    }

    /// Forgets role sessions that expired over an hour ago (the map stays bounded).
    pub fn prune(&mut self) {
        let cutoff = SystemTime::now() - Duration::from_secs(3600);
        self.by_access_key.retain(|_, key| {
            key.session
                .as_ref()
                .is_none_or(|(_, expires)| *expires > cutoff)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_keeps_one_key_and_the_key_names_the_user() {
        let mut keys = Keys::default();
        let alice = keys.user_key("123456789012", "alice");
        assert_eq!(keys.user_key("123456789012", "alice"), alice);
        let bob = keys.user_key("123456789012", "bob");
        assert_ne!(alice.access_key_id, bob.access_key_id);
        assert!(alice.access_key_id.starts_with("AKIA") && alice.access_key_id.len() == 20);
        let identity = keys.check(&alice.access_key_id, None).unwrap().unwrap();
        assert_eq!(identity.username(), "alice");
        let record = identity.record(&alice.access_key_id);
        assert_eq!(record["arn"], "arn:aws:iam::123456789012:user/alice");
        assert_eq!(record["type"], "IAMUser");
        assert!(keys.check("AKIAUNKNOWN", None).unwrap().is_none());
        assert!(!format!("{alice:?}").contains(&alice.secret_access_key));
    }

    #[test]
    fn a_session_key_needs_its_token_and_expires() {
        let mut keys = Keys::default();
        let session = Identity::AssumedRole {
            account: "222222222222".into(),
            role_name: "audit".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "team-a".into(),
            source_identity: Some("team-a".into()),
            issued: SystemTime::now(),
        };
        let creds = keys.issue_session(session, Duration::from_secs(900));
        let who = keys
            .check(&creds.access_key_id, Some(&creds.session_token))
            .unwrap()
            .unwrap();
        assert_eq!(who.username(), "team-a");
        assert_eq!(
            who.arn(),
            "arn:aws:sts::222222222222:assumed-role/audit/team-a"
        );
        let record = who.record(&creds.access_key_id);
        assert_eq!(record["sessionContext"]["sourceIdentity"], "team-a");
        assert_eq!(record["type"], "AssumedRole");
        let wrong = keys
            .check(&creds.access_key_id, Some("forged"))
            .unwrap_err();
        assert_eq!(wrong.code, "UnrecognizedClientException");
        assert!(keys.check("ASIANOTISSUED", Some("x")).is_err());
        keys.expire_sessions();
        let expired = keys
            .check(&creds.access_key_id, Some(&creds.session_token))
            .unwrap_err();
        assert_eq!(expired.code, "ExpiredTokenException");
    }
}
