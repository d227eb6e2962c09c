//! A LookupEvents query as the store answers it, and the page it answers with.

/// The attribute a lookup filters on (LookupEvents allows one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    EventId(String),
    EventName(String),
    /// `"true"` or `"false"`; any other value matches nothing, as in CloudTrail.
    ReadOnly(String),
    Username(String),
    ResourceType(String),
    ResourceName(String),
    EventSource(String),
    AccessKeyId(String),
}

/// Where a page ended: the next page starts after this event (newest first: older than it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub time_ms: i64,
    pub seq: i64,
}

/// One (account, Region)'s lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub account: String,
    pub region: String,
    pub attribute: Option<Attribute>,
    /// Insights events instead of management events.
    pub insight: bool,
    /// Inclusive bounds, in milliseconds since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    /// 1 to 50.
    pub limit: usize,
    /// A page ends early when its records would pass this many bytes (one event at least).
    pub max_bytes: usize,
    pub after: Option<Position>,
}

/// A stored event, as event history shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub time_ms: i64,
    pub name: String,
    pub source: String,
    pub username: Option<String>,
    pub access_key: Option<String>,
    pub read_only: Option<bool>,
    pub resources: Vec<(String, String)>,
    /// The record, as JSON.
    pub record: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub events: Vec<Event>,
    /// Set when more events match.
    pub next: Option<Position>,
}
