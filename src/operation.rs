//! The RPCs the gateway serves: CloudTrail's operations, one RPC each, and ApplyTrail (the gateway's
//! own, made of CloudTrail's). Everything that depends on which operation a call is — its gRPC path,
//! authorization roles, the quota it spends, metrics labels — asks this type; nothing else spells an
//! operation's name. A new RPC starts here.

use crate::pb::cloud_trail_service_server::SERVICE_NAME;

/// CloudTrail's quota groups (per account and Region): LookupEvents alone, the reads, the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaClass {
    Lookup,
    Read,
    Write,
}

impl QuotaClass {
    pub const ALL: [QuotaClass; 3] = [QuotaClass::Lookup, QuotaClass::Read, QuotaClass::Write];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            QuotaClass::Lookup => "lookup",
            QuotaClass::Read => "read",
            QuotaClass::Write => "write",
        }
    }

    /// How refusals describe the quota.
    pub fn describe(self) -> &'static str {
        match self {
            QuotaClass::Lookup => "LookupEvents",
            QuotaClass::Read => "read (Describe/Get/List)",
            QuotaClass::Write => "write",
        }
    }
}

/// What may be true of an operation besides its quota class (a column of the table below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trait {
    /// Its answers are shared by identical calls and kept for `read_cache_ttl` (reads of a trail's
    /// state that pollers repeat).
    Cached,
    /// It names one trail (by name or ARN) that it reads or changes in place: a name is sent to
    /// the trail's home Region. (CreateTrail names a trail still to be; the tag operations take
    /// ARNs; DescribeTrails lists what a Region sees; ApplyTrail's Region is where the trail should
    /// live.)
    FindsOneTrail,
    /// It can add, remove or move a trail: the account's home-Region listing is forgotten.
    Reshapes,
    /// It destroys what cannot be had back by another call (not in the `operator` role).
    Destructive,
    /// It answers with a stream of messages.
    Streaming,
    /// The gateway answers it itself: no CloudTrail call, no quota spent.
    Local,
}

/// One row per RPC: its quota class, then what else holds for it. Every fact that depends on which
/// operation a call is comes from here (roles, the limiter, the read cache, trail-home routing,
/// metrics labels); a test holds the rows against the proto (a `request_id` field marks a mutation,
/// a trail `name`/`trail_name` a call that finds one trail, a server stream `Streaming`).
macro_rules! operations {
    ($($variant:ident: $class:ident $(+ $trait:ident)*),* $(,)?) => {
        /// One CloudTrail operation, served as the RPC of the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($variant),*
        }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The RPC's name (as in the proto and the gRPC path).
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => stringify!($variant)),*
                }
            }

            /// The CloudTrail quota the call spends.
            pub fn quota(self) -> QuotaClass {
                match self {
                    $(Operation::$variant => QuotaClass::$class),*
                }
            }

            /// What else holds for it.
            pub fn traits(self) -> &'static [Trait] {
                match self {
                    $(Operation::$variant => &[$(Trait::$trait),*]),*
                }
            }
        }
    };
}

operations! {
    AddTags: Write,
    ApplyTrail: Write + Reshapes,
    CreateTrail: Write + Reshapes,
    DeleteTrail: Write + FindsOneTrail + Reshapes + Destructive,
    DescribeTrails: Read + Cached,
    GetEventSelectors: Read + Cached + FindsOneTrail,
    GetEventStoreStatus: Read + Local,
    GetInsightSelectors: Read + Cached + FindsOneTrail,
    GetTrail: Read + Cached + FindsOneTrail,
    GetTrailStatus: Read + Cached + FindsOneTrail,
    ListPublicKeys: Read,
    ListTags: Read + Cached,
    ListTrails: Read,
    LookupEvents: Lookup,
    PutEventSelectors: Write + FindsOneTrail,
    PutInsightSelectors: Write + FindsOneTrail,
    RemoveTags: Write,
    StartLogging: Write + FindsOneTrail,
    StopLogging: Write + FindsOneTrail,
    StreamEvents: Lookup + Streaming,
    UpdateTrail: Write + FindsOneTrail + Reshapes,
}

impl Operation {
    /// The operation of an RPC name (`"CreateTrail"`).
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The operation a gRPC request path calls (`/cloudtrail.gateway.v1.CloudTrailService/CreateTrail`).
    pub fn from_path(path: &str) -> Option<Operation> {
        let method = path
            .strip_prefix('/')?
            .strip_prefix(SERVICE_NAME)?
            .strip_prefix('/')?;
        Operation::from_name(method)
    }

    /// The gRPC request path.
    pub fn path(self) -> String {
        format!("/{SERVICE_NAME}/{}", self.name())
    }

    /// Whether the call only reads (CloudTrail's quota groups say the same: lookups and reads).
    pub fn is_read_only(self) -> bool {
        self.quota() != QuotaClass::Write
    }

    pub fn has(self, t: Trait) -> bool {
        self.traits().contains(&t)
    }

    pub fn finds_one_trail(self) -> bool {
        self.has(Trait::FindsOneTrail)
    }

    pub fn is_streaming(self) -> bool {
        self.has(Trait::Streaming)
    }

    pub fn is_destructive(self) -> bool {
        self.has(Trait::Destructive)
    }

    /// Whether its answers go through the read cache.
    pub fn is_cached(self) -> bool {
        self.has(Trait::Cached)
    }

    /// Whether it can add, remove or move a trail.
    pub fn reshapes_trails(self) -> bool {
        self.has(Trait::Reshapes)
    }

    /// The names of the operations with `t`, for help texts ("A, B and C").
    pub fn names_with(t: Trait) -> String {
        let names: Vec<&str> = Operation::ALL
            .iter()
            .filter(|op| op.has(t))
            .map(|op| op.name())
            .collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_round_trip() {
        for &op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            assert_eq!(Operation::from_path(&op.path()), Some(op));
        }
        assert_eq!(
            Operation::CreateTrail.path(),
            "/cloudtrail.gateway.v1.CloudTrailService/CreateTrail"
        );
        assert_eq!(Operation::from_path("/other.Service/CreateTrail"), None);
        assert_eq!(Operation::from_name("LookupEvent"), None);
        let mut sorted = Operation::ALL.to_vec();
        sorted.sort_by_key(|op| op.name());
        assert_eq!(sorted, Operation::ALL);
    }

    #[test]
    fn quota_groups_follow_cloudtrail() {
        // The gateway's own answers (GetEventStoreStatus) spend no CloudTrail quota.
        let of = |class| {
            Operation::ALL
                .iter()
                .filter(|op| op.quota() == class && !op.has(Trait::Local))
                .map(|op| op.name())
                .collect::<Vec<_>>()
        };
        assert_eq!(of(QuotaClass::Lookup), ["LookupEvents", "StreamEvents"]);
        assert_eq!(
            of(QuotaClass::Read),
            [
                "DescribeTrails",
                "GetEventSelectors",
                "GetInsightSelectors",
                "GetTrail",
                "GetTrailStatus",
                "ListPublicKeys",
                "ListTags",
                "ListTrails"
            ]
        );
        assert!(of(QuotaClass::Write).iter().all(|n| !n.starts_with("Get")));
    }

    /// Every RPC of the generated service is an operation and the other way round.
    #[test]
    fn every_rpc_of_the_proto_is_an_operation() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let service = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(package, s)| format!("{package}.{}", s.name()) == SERVICE_NAME)
            .map(|(_, s)| s)
            .expect("the service is in the descriptor set");
        let mut rpcs: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        rpcs.sort();
        let ops: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(rpcs, ops);
        // Each row agrees with its request message: a `request_id` is a mutation's, a trail
        // `name`/`trail_name` (not a creation's) a call that finds one trail, a server stream is
        // `Streaming`. Forgetting a column of a new row fails here.
        let fields_of = |type_name: &str| -> Vec<String> {
            let short = type_name.rsplit('.').next().unwrap_or(type_name);
            set.file
                .iter()
                .flat_map(|f| f.message_type.iter())
                .find(|m| m.name() == short)
                .map(|m| m.field.iter().map(|f| f.name().to_owned()).collect())
                .unwrap_or_default()
        };
        for method in &service.method {
            let op = Operation::from_name(method.name()).expect("an operation");
            let fields = fields_of(method.input_type());
            let has = |name: &str| fields.iter().any(|f| f == name);
            assert_eq!(
                has("request_id"),
                !op.is_read_only(),
                "{op}: a request_id marks a mutation"
            );
            let names_a_trail = (has("name") || has("trail_name")) && op != Operation::CreateTrail;
            assert_eq!(names_a_trail, op.finds_one_trail(), "{op}: FindsOneTrail");
            assert_eq!(
                method.server_streaming(),
                op.is_streaming(),
                "{op}: Streaming"
            );
            assert!(
                !op.is_cached() || op.is_read_only(),
                "{op}: only reads are cached"
            );
            assert!(
                !op.reshapes_trails() || !op.is_read_only(),
                "{op}: a read reshapes nothing"
            );
        }
        assert_eq!(
            Operation::names_with(Trait::Cached),
            "DescribeTrails, GetEventSelectors, GetInsightSelectors, GetTrail, GetTrailStatus and ListTags"
        );
    }
}
