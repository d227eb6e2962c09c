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

macro_rules! operations {
    ($($variant:ident: $class:ident),* $(,)?) => {
        /// One CloudTrail operation, served as the RPC of the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $($variant),*
        }

        impl Operation {
            /// Every operation, in the order of their names.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The RPC's (and CloudTrail's) name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$variant => stringify!($variant)),*
                }
            }

            /// The quota group the call spends.
            pub fn quota(self) -> QuotaClass {
                match self {
                    $(Operation::$variant => QuotaClass::$class),*
                }
            }
        }
    };
}

operations! {
    AddTags: Write,
    // Not CloudTrail's: its calls spend their own quotas; Write says it changes things.
    ApplyTrail: Write,
    CreateTrail: Write,
    DeleteTrail: Write,
    DescribeTrails: Read,
    GetEventSelectors: Read,
    GetInsightSelectors: Read,
    GetTrail: Read,
    GetTrailStatus: Read,
    ListPublicKeys: Read,
    ListTags: Read,
    ListTrails: Read,
    LookupEvents: Lookup,
    PutEventSelectors: Write,
    PutInsightSelectors: Write,
    RemoveTags: Write,
    StartLogging: Write,
    StopLogging: Write,
    // Pages of LookupEvents, paced by its quota.
    StreamEvents: Lookup,
    UpdateTrail: Write,
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

    /// Whether the call names one trail (by name or ARN) that it reads or changes in place: a name
    /// is then resolved to the trail's home Region. (CreateTrail names a trail still to be; the tag
    /// operations take ARNs; DescribeTrails lists what a Region sees; ApplyTrail's Region is where
    /// the trail should live.)
    pub fn finds_one_trail(self) -> bool {
        use Operation::*;
        matches!(
            self,
            UpdateTrail
                | DeleteTrail
                | GetTrail
                | GetTrailStatus
                | StartLogging
                | StopLogging
                | GetEventSelectors
                | PutEventSelectors
                | GetInsightSelectors
                | PutInsightSelectors
        )
    }

    /// Whether the RPC answers with a stream of messages.
    pub fn is_streaming(self) -> bool {
        self == Operation::StreamEvents
    }

    /// Whether the call destroys something that cannot be had back by another call.
    pub fn is_destructive(self) -> bool {
        self == Operation::DeleteTrail
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
        let of = |class| {
            Operation::ALL
                .iter()
                .filter(|op| op.quota() == class)
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
    }
}
