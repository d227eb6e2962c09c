//! Where a trail lives, by name: the trails ListTrails reports for an account (every Region's, each
//! with its home Region), kept briefly. A call naming a trail by name then goes to the trail's home
//! Region, where the name works; concurrent misses for one account share one listing.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use crate::error::Error;

/// One trail as ListTrails lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub home_region: String,
}

/// An account's trails by name (single-Region trails of different Regions may share a name).
pub type Homes = HashMap<String, Vec<String>>;

/// Accounts kept at most.
const MAX_ACCOUNTS: u64 = 10_000;

pub struct TrailHomes {
    cache: moka::future::Cache<Arc<str>, Arc<Homes>>,
}

impl std::fmt::Debug for TrailHomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrailHomes").finish_non_exhaustive()
    }
}

impl TrailHomes {
    pub fn new(ttl: Duration) -> TrailHomes {
        TrailHomes {
            cache: moka::future::Cache::builder()
                .max_capacity(MAX_ACCOUNTS)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// `account`'s trails, cached or listed by `list`.
    pub async fn of<F>(&self, account: &Arc<str>, list: F) -> Result<Arc<Homes>, Error>
    where
        F: Future<Output = Result<Vec<Listed>, Error>>,
    {
        self.cache
            .try_get_with_by_ref(account, async {
                let mut homes = Homes::new();
                for trail in list.await? {
                    homes.entry(trail.name).or_default().push(trail.home_region);
                }
                Ok::<_, Error>(Arc::new(homes))
            })
            .await
            .map_err(|e| match Arc::try_unwrap(e) {
                Ok(e) => e,
                Err(shared) => Error::Refused(crate::error::Refused::new(
                    tonic::Code::Unavailable,
                    "TrailListingFailed",
                    format!("listing the account's trails failed: {shared}"),
                )),
            })
    }

    /// Forgets `account`'s trails (one was created or deleted through the gateway).
    pub async fn forget(&self, account: &str) {
        self.cache.invalidate(account).await;
    }
}

/// Where a call naming `name` should go, if not `region`: the trail's home Region when the name is
/// not homed in `region` and exactly one trail of that name exists. Otherwise `None`: the call stays
/// (and CloudTrail says whether the trail exists there).
pub fn elsewhere<'a>(homes: &'a Homes, name: &str, region: &str) -> Option<&'a str> {
    match homes.get(name)?.as_slice() {
        [only] if only != region => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_go_home_once_listed() {
        let homes = TrailHomes::new(Duration::from_secs(60));
        let account: Arc<str> = "111111111111".into();
        let listed = vec![
            Listed {
                name: "org".into(),
                home_region: "us-east-1".into(),
            },
            Listed {
                name: "dup".into(),
                home_region: "us-east-1".into(),
            },
            Listed {
                name: "dup".into(),
                home_region: "eu-west-1".into(),
            },
        ];
        let map = homes
            .of(&account, async { Ok(listed.clone()) })
            .await
            .unwrap();
        assert_eq!(elsewhere(&map, "org", "eu-west-1"), Some("us-east-1"));
        assert_eq!(elsewhere(&map, "org", "us-east-1"), None);
        assert_eq!(
            elsewhere(&map, "dup", "ap-south-1"),
            None,
            "ambiguous: stays"
        );
        assert_eq!(elsewhere(&map, "nope", "eu-west-1"), None);
        // Cached: the second listing is not made.
        let again = homes
            .of(&account, async { panic!("listed twice") })
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&map, &again));
        homes.forget(&account).await;
        let fresh = homes.of(&account, async { Ok(Vec::new()) }).await.unwrap();
        assert!(fresh.is_empty());
    }
}
