//! Whom a call is made as.

use std::sync::Arc;

use crate::principal::Principal;

/// Whom calls are made as: `key` keeps callers apart (a principal qualified by its source, see
/// `Principal::key`), `name` is what CloudTrail is told (session name, SourceIdentity, the
/// embedded CloudTrail's user).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Who {
    pub key: Arc<str>,
    pub name: Arc<str>,
}

impl Who {
    /// The gateway itself, or one of its own identities (the health probe).
    pub(super) fn own(name: Arc<str>) -> Who {
        Who {
            key: name.clone(),
            name,
        }
    }

    pub(super) fn caller(principal: &Principal) -> Who {
        Who {
            key: principal.key.clone(),
            name: principal.name.clone(),
        }
    }
}
