//! The load generator: any unary RPC of the gateway's proto (or `grpc.health.v1.Health/Check`), the
//! request given as proto JSON, sent by N callers over M HTTP/2 connections for a duration or a
//! count, closed loop (each caller calls again when its answer arrives) or open loop (a fixed rate,
//! at most N in flight). Like ghz: prints req/s, counts by gRPC code and latency p50/p90/p99/max.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cloudtrail_gateway::pb;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use tonic::{
    Code, Request,
    codegen::http::uri::PathAndQuery,
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::Channel,
};

/// One RPC with its request, ready to be sent many times.
#[derive(Clone)]
pub struct Rpc {
    path: PathAndQuery,
    request: DynamicMessage,
    authorization: Option<AsciiMetadataValue>,
}

fn method(name: &str) -> Result<MethodDescriptor, String> {
    let mut pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())?;
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .map_err(|e| e.to_string())?;
    let (service, wanted) = match name.rsplit_once('/') {
        Some((service, method)) => (Some(service.trim_start_matches('/')), method),
        None => (None, name),
    };
    pool.services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .find(|m| m.name() == wanted && service.is_none_or(|s| m.parent_service().full_name() == s))
        .filter(|m| !m.is_client_streaming() && !m.is_server_streaming())
        .ok_or_else(|| format!("no unary RPC named {name}"))
}

impl Rpc {
    /// `name` is `package.Service/Method` or only the method; `json` the request in proto JSON;
    /// `token` a bearer token to send.
    pub fn new(name: &str, json: &str, token: Option<&str>) -> Result<Rpc, String> {
        let method = method(name)?;
        let mut json = serde_json::Deserializer::from_str(json);
        let request = DynamicMessage::deserialize(method.input(), &mut json)
            .map_err(|e| format!("request for {}: {e}", method.full_name()))?;
        json.end().map_err(|e| e.to_string())?;
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let authorization = token
            .map(|t| MetadataValue::try_from(format!("Bearer {t}")))
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(Rpc {
            path: PathAndQuery::try_from(path).map_err(|e| e.to_string())?,
            request,
            authorization,
        })
    }

    /// One call; its status code (the answer itself is skipped, not decoded).
    pub async fn call(&self, channel: Channel) -> Code {
        let mut grpc = tonic::client::Grpc::new(channel);
        if grpc.ready().await.is_err() {
            return Code::Unavailable;
        }
        let mut request = Request::new(self.request.clone());
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        let codec = tonic_prost::ProstCodec::<DynamicMessage, ()>::default();
        match grpc.unary(request, self.path.clone(), codec).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        }
    }

    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The HTTP/2 request body of one call: the 5-byte gRPC frame header, then the message.
    pub fn framed(&self) -> Vec<u8> {
        use prost::Message;
        let message = self.request.encode_to_vec();
        let mut body = vec![0u8];
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(&message);
        body
    }

    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_ref().and_then(|a| a.to_str().ok())
    }
}

/// A caller for `run`: caller i sends `rpc` on connection i mod n.
pub fn caller(
    rpc: &Rpc,
    channels: Vec<Channel>,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = Code> + Send>> + Clone + Send + Sync + 'static
{
    let (rpc, channels) = (rpc.clone(), Arc::new(channels));
    move |i| {
        let (rpc, channel) = (rpc.clone(), channels[i % channels.len()].clone());
        Box::pin(async move { rpc.call(channel).await })
    }
}

/// `n` HTTP/2 connections to `addr`.
pub async fn connect(addr: SocketAddr, n: usize) -> Result<Vec<Channel>, tonic::transport::Error> {
    let mut channels = Vec::new();
    for _ in 0..n.max(1) {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
        channels.push(endpoint.connect().await?);
    }
    Ok(channels)
}

/// How calls are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each of `concurrency` callers calls again as soon as its answer arrives.
    Closed,
    /// This many calls per second, at most `concurrency` in flight.
    Rate(f64),
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Count(u64),
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    pub pace: Pace,
    pub stop: Stop,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub elapsed: Duration,
    /// Every call's latency in µs, sorted.
    pub latencies: Vec<u64>,
    /// Calls by gRPC status code.
    pub codes: BTreeMap<i32, u64>,
    /// Open loop: calls that found all `concurrency` slots busy and waited for one (the generator
    /// could not keep the rate).
    pub delayed: u64,
}

impl Report {
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), in µs.
    pub fn quantile(&self, q: f64) -> u64 {
        let last = self.latencies.len().saturating_sub(1);
        let at = ((self.latencies.len() as f64 * q) as usize).min(last);
        self.latencies.get(at).copied().unwrap_or(0)
    }

    pub fn errors(&self) -> u64 {
        self.codes
            .iter()
            .filter(|(code, _)| **code != Code::Ok as i32)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn print(&self) {
        println!(
            "{} calls in {:.2} s: {:.0} req/s",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.rps()
        );
        for (code, n) in &self.codes {
            println!("  {:<18} {n}", format!("{:?}", Code::from_i32(*code)));
        }
        println!(
            "latency µs: p50 {}  p90 {}  p99 {}  max {}",
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.latencies.last().copied().unwrap_or(0)
        );
        if self.delayed > 0 {
            println!(
                "{} calls waited for a free slot (rate not kept)",
                self.delayed
            );
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    codes: BTreeMap<i32, u64>,
}

impl Tally {
    fn add(&mut self, code: Code, started: Instant) {
        self.latencies.push(started.elapsed().as_micros() as u64);
        *self.codes.entry(code as i32).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
    }
}

/// Runs `call(i)` (i = the caller's index) under `load`.
pub async fn run<F, Fut>(load: Load, call: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Code> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    // Takes the next call's number, or None when the run is over.
    let next = {
        let issued = issued.clone();
        move || {
            let n = issued.fetch_add(1, Ordering::Relaxed);
            let more = match load.stop {
                Stop::After(d) => started.elapsed() < d,
                Stop::Count(count) => n < count,
            };
            more.then_some(n)
        }
    };
    let (mut tally, delayed) = match load.pace {
        Pace::Closed => {
            let mut callers = Vec::new();
            for i in 0..load.concurrency.max(1) {
                let (call, next) = (call.clone(), next.clone());
                callers.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while next().is_some() {
                        let t = Instant::now();
                        tally.add(call(i).await, t);
                    }
                    tally
                }));
            }
            let mut tally = Tally::default();
            for caller in callers {
                tally.merge(caller.await.unwrap_or_default());
            }
            (tally, 0)
        }
        Pace::Rate(rate) => open_loop(load.concurrency, rate, call, next).await,
    };
    tally.latencies.sort_unstable();
    Report {
        elapsed: started.elapsed(),
        latencies: tally.latencies,
        codes: tally.codes,
        delayed,
    }
}

/// Starts call n at `n / rate` seconds (the timer ticks in ms, so calls due within one ms leave
/// together); latency runs from the moment a call is sent.
async fn open_loop<F, Fut>(
    concurrency: usize,
    rate: f64,
    call: Arc<F>,
    next: impl Fn() -> Option<u64>,
) -> (Tally, u64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Code> + Send,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = tokio::time::Instant::now();
    let mut delayed = 0;
    while let Some(n) = next() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate)).await;
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                delayed += 1;
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                slot
            }
        };
        let (call, tally) = (call.clone(), tally.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let code = call(n as usize).await;
            if let Ok(mut tally) = tally.lock() {
                tally.add(code, t);
            }
            drop(slot);
        });
    }
    // Wait for the calls still in flight.
    let _ = slots.acquire_many(concurrency.max(1) as u32).await;
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    (tally, delayed)
}

/// `load --addr HOST:PORT --rpc NAME [--data JSON] [--token T] [--concurrency N] [--connections M]
/// [--seconds S | --count N] [--rate R]`
pub async fn cli(args: &[String]) -> Result<(), String> {
    let mut flags = BTreeMap::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--bench" {
            continue; // `cargo bench` appends it
        }
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("expected a --flag, got {flag}"))?;
        let value = rest
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_owned(), value.clone());
    }
    let get = |name: &str| flags.get(name).map(String::as_str);
    let number = |name: &str, default: f64| -> Result<f64, String> {
        get(name).map_or(Ok(default), |v| {
            v.trim_end_matches('s')
                .parse()
                .map_err(|_| format!("--{name}: not a number: {v}"))
        })
    };
    let addr: SocketAddr = get("addr")
        .ok_or("--addr is required")?
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    let rpc = Rpc::new(
        get("rpc").ok_or("--rpc is required")?,
        get("data").unwrap_or("{}"),
        get("token"),
    )?;
    let concurrency = number("concurrency", 16.0)? as usize;
    let channels = connect(addr, number("connections", 4.0)? as usize)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let load = Load {
        concurrency,
        pace: match get("rate") {
            Some(_) => Pace::Rate(number("rate", 0.0)?),
            None => Pace::Closed,
        },
        stop: match get("count") {
            Some(_) => Stop::Count(number("count", 0.0)? as u64),
            None => Stop::After(Duration::from_secs_f64(number("seconds", 10.0)?)),
        },
    };
    println!(
        "{} to {addr}: concurrency {concurrency}, {} connections, {load:?}",
        rpc.path(),
        channels.len()
    );
    run(load, caller(&rpc, channels)).await.print();
    Ok(())
}
