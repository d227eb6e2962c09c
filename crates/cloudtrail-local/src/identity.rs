//! Who is calling: the access key of a request's SigV4 credential, mapped to the identity it was
//! issued to. CloudTrail records that identity as the event's `userIdentity`, and LookupEvents'
//! `Username` is derived from it as AWS derives it.

use std::{collections::HashMap, sync::Arc};

use serde_json::{Value, json};

use crate::ids;

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
}

impl Identity {
    pub fn account(&self) -> &str {
        match self {
            Identity::User { account, .. } => account,
        }
    }

    /// LookupEvents' `Username` for this identity.
    pub fn username(&self) -> &str {
        match self {
            Identity::User { name, .. } => name,
        }
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
                "arn": format!("arn:aws:iam::{account}:user/{name}"),
                "accountId": account,
                "accessKeyId": access_key_id,
                "userName": name,
            }),
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

/// The access keys issued so far, and the users they belong to.
#[derive(Debug, Default)]
pub struct Keys {
    by_access_key: HashMap<String, Arc<Identity>>,
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
        self.by_access_key
            .insert(key.access_key_id.clone(), Arc::new(identity));
        self.by_user.insert(user, key.clone());
        key
    }

    /// Whom `access_key_id` belongs to, if it was issued here.
    pub fn identity(&self, access_key_id: &str) -> Option<Arc<Identity>> {
        self.by_access_key.get(access_key_id).cloned()
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
        let identity = keys.identity(&alice.access_key_id).unwrap();
        assert_eq!(identity.username(), "alice");
        let record = identity.record(&alice.access_key_id);
        assert_eq!(record["arn"], "arn:aws:iam::123456789012:user/alice");
        assert_eq!(record["type"], "IAMUser");
        assert!(keys.identity("AKIAUNKNOWN").is_none());
        assert!(!format!("{alice:?}").contains(&alice.secret_access_key));
    }
}
