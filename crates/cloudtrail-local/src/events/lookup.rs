//! LookupEvents over one account's history: its parameters checked as CloudTrail checks them, newest
//! first, pages bounded by count and bytes, tokens bound to the query that made them.

use super::*;

/// The most event bytes one LookupEvents page holds (then it ends early, with a NextToken): a page
/// of 50 large events stays well inside a gRPC message.
pub const MAX_PAGE_BYTES: usize = 1 << 20;

impl EventStore {
    pub fn lookup(&self, ctx: &Ctx, body: &Value) -> Result<Value, ApiError> {
        let query = Query::parse(body, ctx.now)?;
        let start_key = match &query.token {
            Some(token) => query.decode_token(token)?,
            None => (i64::MAX, u32::MAX, u64::MAX),
        };
        let mut events = Vec::with_capacity(query.max_results);
        let mut bytes = 0;
        let mut next_token = None;
        let Some(stored) = self.regions.get(ctx.region) else {
            return Ok(json!({ "Events": [] }));
        };
        for (key, e) in stored.range(..start_key).rev() {
            let time = DateTime::from_secs_and_nanos(key.0, key.1);
            if query.end.is_some_and(|end| time > end) {
                continue;
            }
            if query.start.is_some_and(|start| time < start) {
                break;
            }
            if !query.matches(e) {
                continue;
            }
            if events.len() == query.max_results || bytes + e.json.len() > MAX_PAGE_BYTES {
                // One more matches: the page is full and the token points after its last event.
                if !events.is_empty() {
                    next_token = Some(query.encode_token(last_key(&events)));
                    break;
                }
            }
            bytes += e.json.len();
            events.push((*key, e));
        }
        let list: Vec<Value> = events
            .iter()
            .map(|(key, e)| lookup_event(*key, e))
            .collect();
        let mut answer = json!({ "Events": list });
        if let Some(token) = next_token {
            answer["NextToken"] = json!(token);
        }
        Ok(answer)
    }
}

fn last_key(events: &[(Key, &StoredEvent)]) -> Key {
    events
        .last()
        .map(|(k, _)| *k)
        .unwrap_or((i64::MAX, u32::MAX, u64::MAX))
}

fn lookup_event(key: Key, e: &StoredEvent) -> Value {
    let mut v = json!({
        "EventId": e.id,
        "EventName": e.name,
        "EventTime": DateTime::from_secs_and_nanos(key.0, key.1).as_secs_f64(),
        "EventSource": e.source,
        "Resources": e.resources.iter()
            .map(|(ty, name)| json!({"ResourceType": ty, "ResourceName": name}))
            .collect::<Vec<_>>(),
        "CloudTrailEvent": e.json,
    });
    if let Some(ro) = e.read_only {
        v["ReadOnly"] = json!(ro.to_string());
    }
    if let Some(k) = &e.access_key_id {
        v["AccessKeyId"] = json!(k);
    }
    if let Some(u) = &e.username {
        v["Username"] = json!(u);
    }
    v
}

struct Query {
    attribute: Option<(String, String)>,
    start: Option<DateTime>,
    end: Option<DateTime>,
    insight: bool,
    max_results: usize,
    token: Option<String>,
    /// Hash of the parameters other than the token: a token is valid only with the same ones.
    fingerprint: String,
}

const LOOKUP_KEYS: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

impl Query {
    fn parse(body: &Value, now: DateTime) -> Result<Self, ApiError> {
        let attributes = body
            .get("LookupAttributes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if attributes.len() > 1 {
            return Err(ApiError::new(
                "InvalidLookupAttributesException",
                "You cannot specify more than one lookup attribute.",
            ));
        }
        let attribute = match attributes.first() {
            None => None,
            Some(a) => {
                let key = a
                    .get("AttributeKey")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let value = a
                    .get("AttributeValue")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !LOOKUP_KEYS.contains(&key) || value.is_empty() {
                    return Err(ApiError::new(
                        "InvalidLookupAttributesException",
                        format!("Invalid lookup attribute: {key}={value}"),
                    ));
                }
                Some((key.to_owned(), value.to_owned()))
            }
        };
        let (start, end) = wire::time_range(body, now)?;
        let insight = match body.get("EventCategory").and_then(Value::as_str) {
            None => false,
            Some("insight") => true,
            Some(other) => {
                return Err(ApiError::new(
                    "InvalidEventCategoryException",
                    format!("Invalid event category: {other}"),
                ));
            }
        };
        let max_results = match body.get("MaxResults").and_then(Value::as_i64) {
            None => 50,
            Some(n @ 1..=50) => n as usize,
            Some(n) => {
                return Err(ApiError::new(
                    "InvalidMaxResultsException",
                    format!("MaxResults must be between 1 and 50, got {n}."),
                ));
            }
        };
        let mut params = body.clone();
        if let Some(map) = params.as_object_mut() {
            map.remove("NextToken");
        }
        let fingerprint = ids::hex(&Sha256::digest(params.to_string().as_bytes())[..8]);
        Ok(Query {
            attribute,
            start,
            end,
            insight,
            max_results,
            token: body
                .get("NextToken")
                .and_then(Value::as_str)
                .map(str::to_owned),
            fingerprint,
        })
    }

    fn matches(&self, e: &StoredEvent) -> bool {
        let wanted = if self.insight {
            Category::Insight
        } else {
            Category::Management
        };
        if e.category != wanted {
            return false;
        }
        let Some((key, value)) = &self.attribute else {
            return true;
        };
        let eq = |s: Option<&str>| s == Some(value.as_str());
        match key.as_str() {
            "EventId" => eq(Some(&e.id)),
            "EventName" => eq(Some(&e.name)),
            "ReadOnly" => eq(e.read_only.map(|r| if r { "true" } else { "false" })),
            "Username" => eq(e.username.as_deref()),
            "ResourceType" => e.resources.iter().any(|(t, _)| t == value),
            "ResourceName" => e.resources.iter().any(|(_, n)| n == value),
            "EventSource" => eq(Some(&e.source)),
            "AccessKeyId" => eq(e.access_key_id.as_deref()),
            _ => false,
        }
    }

    fn encode_token(&self, after: Key) -> String {
        let raw = format!("{}:{}:{}:{}", self.fingerprint, after.0, after.1, after.2);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode_token(&self, token: &str) -> Result<Key, ApiError> {
        let invalid = || ApiError::new("InvalidNextTokenException", "Invalid NextToken.");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid())?;
        let raw = String::from_utf8(raw).map_err(|_| invalid())?;
        let parts: Vec<&str> = raw.split(':').collect();
        let [fingerprint, secs, nanos, seq] = parts.as_slice() else {
            return Err(invalid());
        };
        if *fingerprint != self.fingerprint {
            return Err(ApiError::new(
                "InvalidNextTokenException",
                "NextToken is valid only with the parameters of the call that returned it.",
            ));
        }
        Ok((
            secs.parse().map_err(|_| invalid())?,
            nanos.parse().map_err(|_| invalid())?,
            seq.parse().map_err(|_| invalid())?,
        ))
    }
}
