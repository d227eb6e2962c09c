//! LookupEvents where a source of the event store covers the target: up to the store's watermark
//! from the store, the newer part (not delivered yet) from CloudTrail, newest first and without gap
//! or repeat (`auto`); or from the store only (`store`).
//!
//! The watermark is fixed by the first page and carried in the page token, with the phase (the
//! CloudTrail part with CloudTrail's own token, then the store part with its position), so later
//! pages split the window at the same time. Tokens are bound to the request and the target, as
//! CloudTrail binds its own. When the store fails, the store's part is asked of CloudTrail instead.

use aws_sdk_cloudtrail::Client;
use base64::Engine;
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Status;

use super::{Gateway, Routed};
use crate::{
    convert::events::{self, from_millis as timestamp, millis as ms},
    error::Error,
    ingest::{History, Mode, now_ms},
    pb,
    store::lookup::Position,
    target::Target,
    telemetry,
};

/// A page is cut before its records pass this many bytes (the embedded CloudTrail's bound too):
/// 50 large events stay well inside a gRPC message.
const MAX_PAGE_BYTES: usize = 1 << 20;

const TOKEN_VERSION: &str = "s1";

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Store,
    CloudTrail,
    /// Both: the page ends CloudTrail's part and begins the store's.
    Both,
}

impl From {
    pub fn label(self) -> &'static str {
        match self {
            From::Store => "store",
            From::CloudTrail => "cloudtrail",
            From::Both => "store+cloudtrail",
        }
    }
}

/// A page answered with the store's help.
pub struct Answer {
    pub response: pb::LookupEventsResponse,
    pub from: From,
    /// The watermark the window was split at, in milliseconds.
    pub watermark_ms: Option<i64>,
}

/// Which part of the window a token continues.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// CloudTrail's part (newer than the watermark), with CloudTrail's token ("" to begin).
    CloudTrail(String),
    /// The store's part, after a position (None to begin).
    Store(Option<Position>),
    /// The store's part asked of CloudTrail, the store having failed.
    Fallback(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The end of the store's part: the last millisecond of the watermark's second.
    split_ms: Option<i64>,
    phase: Phase,
}

fn fingerprint(target: &Target, request: &pb::LookupEventsRequest) -> String {
    let mut bare = request.clone();
    bare.next_token.clear();
    let mut hash = Sha256::new();
    hash.update(target.to_string().as_bytes());
    hash.update(bare.encode_to_vec());
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Token {
    fn encode(&self, fingerprint: &str) -> String {
        let split = self.split_ms.map_or("-".to_owned(), |s| s.to_string());
        let phase = match &self.phase {
            Phase::CloudTrail(t) => format!("c|{t}"),
            Phase::Store(None) => "s|".to_owned(),
            Phase::Store(Some(p)) => format!("s|{}.{}", p.time_ms, p.seq),
            Phase::Fallback(t) => format!("f|{t}"),
        };
        let text = format!("{TOKEN_VERSION}|{fingerprint}|{split}|{phase}");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(token: &str, fingerprint: &str) -> Result<Token, Error> {
        let invalid = |why: &str| Error::invalid("next_token", why);
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid("not a token this gateway issued"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| invalid("not a token this gateway issued"))?;
        let parts: Vec<&str> = text.splitn(5, '|').collect();
        let [TOKEN_VERSION, fp, split, phase, rest] = parts.as_slice() else {
            return Err(invalid("not a token this gateway issued"));
        };
        if *fp != fingerprint {
            return Err(invalid(
                "valid only with the parameters and target of the call that returned it",
            ));
        }
        let split_ms = match *split {
            "-" => None,
            s => Some(s.parse().map_err(|_| invalid("corrupt token"))?),
        };
        let phase = match (*phase, *rest) {
            ("c", t) => Phase::CloudTrail(t.to_owned()),
            ("f", t) => Phase::Fallback(t.to_owned()),
            ("s", "") => Phase::Store(None),
            ("s", p) => {
                let (time, seq) = p.split_once('.').ok_or_else(|| invalid("corrupt token"))?;
                Phase::Store(Some(Position {
                    time_ms: time.parse().map_err(|_| invalid("corrupt token"))?,
                    seq: seq.parse().map_err(|_| invalid("corrupt token"))?,
                }))
            }
            _ => return Err(invalid("corrupt token")),
        };
        Ok(Token { split_ms, phase })
    }
}

/// One page's lookup, with what answers it.
struct Ask<'a> {
    history: &'a History,
    mode: Mode,
    request: pb::LookupEventsRequest,
    fingerprint: String,
    context: Routed<'a>,
    client: &'a Client,
}

impl Gateway {
    /// The store, mode and watermark that answer LookupEvents at `target`, unless CloudTrail
    /// answers alone (no source covers it, or its mode is `cloudtrail`).
    pub(super) fn history_for(&self, target: &Target) -> Option<(&History, Mode, Option<i64>)> {
        let history = self.history.as_ref()?;
        let source = history.sources.covering(&target.account, &target.region)?;
        let mode = source.status.mode;
        (mode != Mode::CloudTrail).then(|| {
            let watermark = source.status.watermark(&target.account, &target.region);
            (history, mode, watermark)
        })
    }

    /// One page of a lookup the store takes part in (the request checked already).
    pub(super) async fn history_lookup(
        &self,
        context: Routed<'_>,
        client: &Client,
        (history, mode, watermark): (&History, Mode, Option<i64>),
        request: pb::LookupEventsRequest,
    ) -> Result<Answer, Status> {
        let fingerprint = fingerprint(context.target, &request);
        let end_ms = request.end_time.as_ref().map_or(i64::MAX, ms);
        let token = if request.next_token.is_empty() {
            let split_ms = match mode {
                // The store's part ends with the watermark's second.
                Mode::Auto => watermark.map(|w| w.div_euclid(1000) * 1000 + 999),
                _ => Some(i64::MAX),
            };
            let phase = match split_ms {
                Some(split) if end_ms <= split => Phase::Store(None),
                _ => Phase::CloudTrail(String::new()),
            };
            Token { split_ms, phase }
        } else {
            Token::decode(&request.next_token, &fingerprint)?
        };
        let ask = Ask {
            history,
            mode,
            request,
            fingerprint,
            context,
            client,
        };
        let (response, from) = match token.phase {
            Phase::CloudTrail(upstream) => self.newer_part(&ask, token.split_ms, upstream).await?,
            Phase::Store(after) => self.store_part(&ask, token.split_ms, after).await?,
            Phase::Fallback(upstream) => (
                self.fallback(&ask, token.split_ms, upstream).await?,
                From::CloudTrail,
            ),
        };
        Ok(Answer {
            response,
            from,
            watermark_ms: watermark,
        })
    }

    /// CloudTrail's part: newer than the split; then the store's part begins.
    async fn newer_part(
        &self,
        ask: &Ask<'_>,
        split_ms: Option<i64>,
        upstream_token: String,
    ) -> Result<(pb::LookupEventsResponse, From), Status> {
        let start_ms = ask.request.start_time.as_ref().map_or(i64::MIN, ms);
        // The store's part: the request's window up to the split.
        let store_part = split_ms.filter(|split| start_ms <= *split);
        let mut part = ask.request.clone();
        part.next_token = upstream_token;
        if let Some(split) = store_part {
            part.start_time = Some(timestamp(split + 1));
        }
        let (page, _) = self.coalesced_lookup(ask.context, ask.client, part).await?;
        let mut response = page.as_ref().clone();
        if response.next_token.is_empty() && store_part.is_some() {
            if response.events.is_empty() {
                // Nothing newer than the watermark: the store's part begins on this page.
                let (page, from) = self.store_part(ask, split_ms, None).await?;
                let from = if from == From::Store {
                    From::Both
                } else {
                    from
                };
                return Ok((page, from));
            }
            response.next_token = Token {
                split_ms,
                phase: Phase::Store(None),
            }
            .encode(&ask.fingerprint);
        } else if !response.next_token.is_empty() {
            response.next_token = Token {
                split_ms,
                phase: Phase::CloudTrail(std::mem::take(&mut response.next_token)),
            }
            .encode(&ask.fingerprint);
        }
        Ok((response, From::CloudTrail))
    }

    /// The store's part: up to the split, after `after`.
    async fn store_part(
        &self,
        ask: &Ask<'_>,
        split_ms: Option<i64>,
        after: Option<Position>,
    ) -> Result<(pb::LookupEventsResponse, From), Status> {
        let target = ask.context.target;
        let mut query = events::store_lookup(
            &ask.request,
            &target.account,
            &target.region,
            MAX_PAGE_BYTES,
        );
        query.end_ms = query.end_ms.min(split_ms.unwrap_or(i64::MAX));
        query.after = after;
        match ask.history.store.lookup(query).await {
            Ok(page) => {
                let next_token = page
                    .next
                    .map(|p| {
                        Token {
                            split_ms,
                            phase: Phase::Store(Some(p)),
                        }
                        .encode(&ask.fingerprint)
                    })
                    .unwrap_or_default();
                let response = pb::LookupEventsResponse {
                    events: page.events.into_iter().map(pb::Event::from).collect(),
                    next_token,
                };
                Ok((response, From::Store))
            }
            Err(e) => {
                tracing::warn!(error = %e, %target, "event store: a lookup failed");
                metrics::counter!(telemetry::STORE_ERRORS, "source" => "lookup", "kind" => "store")
                    .increment(1);
                // CloudTrail cannot resume at a store's position, nor answer in `store` mode.
                if after.is_some() || ask.mode == Mode::Store {
                    return Err(unavailable(&e).into());
                }
                let page = self.fallback(ask, split_ms, String::new()).await?;
                Ok((page, From::CloudTrail))
            }
        }
    }

    /// The store's part, asked of CloudTrail (the store failed).
    async fn fallback(
        &self,
        ask: &Ask<'_>,
        split_ms: Option<i64>,
        upstream_token: String,
    ) -> Result<pb::LookupEventsResponse, Status> {
        let mut part = ask.request.clone();
        part.next_token = upstream_token;
        if let Some(split) = split_ms.filter(|s| *s < now_ms()) {
            let end = part.end_time.as_ref().map_or(i64::MAX, ms);
            part.end_time = Some(timestamp(end.min(split)));
        }
        let (page, _) = self.coalesced_lookup(ask.context, ask.client, part).await?;
        let mut response = page.as_ref().clone();
        if !response.next_token.is_empty() {
            response.next_token = Token {
                split_ms,
                phase: Phase::Fallback(std::mem::take(&mut response.next_token)),
            }
            .encode(&ask.fingerprint);
        }
        Ok(response)
    }
}

fn unavailable(e: &crate::store::StoreError) -> Error {
    Error::Refused(
        crate::error::Refused::new(
            tonic::Code::Unavailable,
            "EVENT_STORE_UNAVAILABLE",
            format!("the event store cannot answer: {e}"),
        )
        .retry_after(std::time::Duration::from_secs(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_request() {
        for phase in [
            Phase::CloudTrail("abc|def".into()),
            Phase::CloudTrail(String::new()),
            Phase::Store(None),
            Phase::Store(Some(Position {
                time_ms: 1_700_000_000_123,
                seq: 42,
            })),
            Phase::Fallback("x".into()),
        ] {
            let token = Token {
                split_ms: Some(1_700_000_000_999),
                phase,
            };
            assert_eq!(Token::decode(&token.encode("fp"), "fp").unwrap(), token);
            assert!(Token::decode(&token.encode("fp"), "other").is_err());
        }
        assert!(Token::decode("not base64 !", "fp").is_err());
        let foreign = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("s1|fp|x|s|");
        assert!(Token::decode(&foreign, "fp").is_err());
    }
}
