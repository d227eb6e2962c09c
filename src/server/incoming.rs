//! Accepting connections, bounded: at most `max_connections` open (beyond, a new connection is closed
//! at once), each given `handshake_timeout` to finish its TLS handshake and send the HTTP/2 preface
//! (idle and half-open connections are closed), then as long again to open its first stream (a
//! preface followed by silence held a place for ~41 s, until keepalive gave up), and accept errors
//! (file descriptors exhausted) back off instead of spinning. What reaches tonic is a connection
//! that has spoken HTTP/2.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use std::future::Future as _;

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::telemetry;

/// What every HTTP/2 connection starts with (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepted connections waiting for tonic to take them.
const QUEUE: usize = 128;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
}

/// A connection that has sent the HTTP/2 preface, which it reads again first; it holds its place
/// among `max_connections` until tonic drops it, and is cut off if it opens no stream in time.
pub struct Prefaced<S> {
    stream: S,
    preface: [u8; 24],
    replayed: usize,
    first_stream: Option<FirstStream>,
    _permit: OwnedSemaphorePermit,
    _open: OpenGauge,
}

/// Waits for a connection's first HEADERS frame, reading frame headers as they pass.
struct FirstStream {
    deadline: Pin<Box<tokio::time::Sleep>>,
    frames: FrameScan,
}

/// Where the reader stands in the frame sequence (RFC 9113, 4.1: a 9-byte header, then the payload).
#[derive(Debug, Default)]
struct FrameScan {
    header: [u8; 9],
    filled: usize,
    skip: usize,
}

/// HEADERS: the frame that opens a stream.
const HEADERS: u8 = 0x1;

impl FrameScan {
    /// Reads `bytes`; whether a HEADERS frame began in them.
    fn opened_stream(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == 9 {
                if self.header[3] == HEADERS {
                    return true;
                }
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                self.filled = 0;
            }
        }
        false
    }
}

/// Counts the connection in the open-connections gauge while it lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> Self {
        metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefaced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.preface.len() {
            let rest = &this.preface[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        let Some(waiting) = &mut this.first_stream else {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if waiting.frames.opened_stream(&buf.filled()[before..]) {
                    this.first_stream = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match waiting.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.first_stream = None;
                    refused(Refused::Idle);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no stream opened within the handshake timeout",
                    )))
                }
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefaced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl<S: Connected> Connected for Prefaced<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// Why a connection was closed before tonic saw it (the metric's `reason` label).
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    Limit,
    Handshake,
    Preface,
    Timeout,
    /// No first stream within the handshake time after the preface.
    Idle,
    /// At the side port's `metrics_max_connections`.
    SidePortLimit,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Limit => "limit",
            Refused::Handshake => "tls_handshake",
            Refused::Preface => "not_http2",
            Refused::Timeout => "handshake_timeout",
            Refused::Idle => "no_stream",
            Refused::SidePortLimit => "side_port_limit",
        }
    }
}

pub fn refused(reason: Refused) {
    metrics::counter!(telemetry::CONNECTIONS_REFUSED, "reason" => reason.label()).increment(1);
}

/// Reads the preface within what is left of the handshake time.
async fn preface<S: AsyncRead + Unpin>(stream: &mut S) -> Result<[u8; 24], Refused> {
    let mut preface = [0u8; 24];
    stream
        .read_exact(&mut preface)
        .await
        .map_err(|_| Refused::Preface)?;
    if &preface == PREFACE {
        Ok(preface)
    } else {
        Err(Refused::Preface)
    }
}

/// A listener's connections, accept errors waited out.
pub struct Accepting {
    listener: TcpListener,
    backoff: Duration,
}

impl Accepting {
    pub fn new(listener: TcpListener) -> Accepting {
        Accepting {
            listener,
            backoff: Duration::from_millis(5),
        }
    }

    /// The next connection. Out of file descriptors, most likely, when accept fails: wait for
    /// connections to close (5 ms, doubling to 1 s) rather than spin on an accept that fails at once.
    pub async fn next(&mut self) -> TcpStream {
        loop {
            match self.listener.accept().await {
                Ok((tcp, _)) => {
                    self.backoff = Duration::from_millis(5);
                    return tcp;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "accept failed");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// How an accepted TCP connection becomes the stream tonic serves.
pub trait Handshake: Clone + Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static;
    fn handshake(
        &self,
        tcp: TcpStream,
    ) -> impl std::future::Future<Output = Result<Self::Stream, Refused>> + Send;
}

/// Plain HTTP/2.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl Handshake for Plain {
    type Stream = TcpStream;
    async fn handshake(&self, tcp: TcpStream) -> Result<TcpStream, Refused> {
        Ok(tcp)
    }
}

/// TLS, then HTTP/2.
#[derive(Clone)]
pub struct Tls(pub TlsAcceptor);

impl Handshake for Tls {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    async fn handshake(&self, tcp: TcpStream) -> Result<Self::Stream, Refused> {
        let peer = tcp.peer_addr().ok();
        self.0.accept(tcp).await.map_err(|e| {
            // A client certificate the CA did not sign, an expired one, no TLS at all: the caller
            // never gets a gRPC status, so this line is what an operator has.
            tracing::warn!(peer = ?peer, error = %e, "TLS handshake failed");
            Refused::Handshake
        })
    }
}

/// The connections of `listener`, handshaken by `handshake`, within `limits`. The accept loop stops
/// when the returned stream is dropped (tonic drops it when it stops serving).
pub fn accept<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    limits: Limits,
) -> ReceiverStream<Result<Prefaced<H::Stream>, io::Error>> {
    for reason in [
        Refused::Limit,
        Refused::Handshake,
        Refused::Preface,
        Refused::Timeout,
        Refused::Idle,
        Refused::SidePortLimit,
    ] {
        metrics::counter!(telemetry::CONNECTIONS_REFUSED, "reason" => reason.label()).increment(0);
    }
    metrics::gauge!(telemetry::CONNECTIONS).increment(0.0);
    let (ready, queue) = mpsc::channel(QUEUE);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let mut accepting = Accepting::new(listener);
        loop {
            let tcp = tokio::select! {
                tcp = accepting.next() => tcp,
                () = ready.closed() => return,
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                refused(Refused::Limit);
                tracing::debug!("connection refused: at max_connections");
                continue; // dropping it closes it
            };
            // Small response frames go out at once (Nagle would hold them for the peer's ACK).
            let _ = tcp.set_nodelay(true);
            let (ready, handshake) = (ready.clone(), handshake.clone());
            tokio::spawn(async move {
                let prefaced = tokio::time::timeout(limits.handshake_timeout, async {
                    let mut stream = handshake.handshake(tcp).await?;
                    let preface = preface(&mut stream).await?;
                    Ok::<_, Refused>((stream, preface))
                })
                .await
                .unwrap_or(Err(Refused::Timeout));
                match prefaced {
                    Ok((stream, preface)) => {
                        let first_stream = FirstStream {
                            deadline: Box::pin(tokio::time::sleep(limits.handshake_timeout)),
                            frames: FrameScan::default(),
                        };
                        let _ = ready
                            .send(Ok(Prefaced {
                                stream,
                                preface,
                                replayed: 0,
                                first_stream: Some(first_stream),
                                _permit: permit,
                                _open: OpenGauge::new(),
                            }))
                            .await;
                    }
                    Err(reason) => refused(reason),
                }
            });
        }
    });
    ReceiverStream::new(queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    #[tokio::test]
    async fn only_connections_that_speak_http2_in_time_get_through() {
        let (l, addr) = listener().await;
        let limits = Limits {
            max_connections: 2,
            handshake_timeout: Duration::from_millis(200),
        };
        let mut incoming = accept(l, Plain, limits);
        // Silent: closed after the handshake time, never handed on.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // Not HTTP/2.
        let mut http1 = TcpStream::connect(addr).await.unwrap();
        http1
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n....")
            .await
            .unwrap();
        // HTTP/2: handed on with its preface replayed.
        let mut good = TcpStream::connect(addr).await.unwrap();
        good.write_all(PREFACE).await.unwrap();
        let mut served = incoming.next().await.unwrap().unwrap();
        let mut replayed = [0u8; 24];
        served.read_exact(&mut replayed).await.unwrap();
        assert_eq!(&replayed, PREFACE);
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), silent.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "the silent one is closed"
        );
        assert!(matches!(http1.read(&mut byte).await, Ok(0) | Err(_)));
    }

    #[test]
    fn frame_headers_are_followed_to_the_first_stream() {
        let settings = [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        let window = [0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        let headers = [0, 0, 1, HEADERS, 0x4, 0, 0, 0, 1, 0x82];
        let mut scan = FrameScan::default();
        assert!(!scan.opened_stream(&settings));
        // Split anywhere, even inside a header.
        assert!(!scan.opened_stream(&window[..5]));
        assert!(!scan.opened_stream(&window[5..]));
        assert!(!scan.opened_stream(&headers[..4]));
        assert!(scan.opened_stream(&headers[4..]));
        // A payload that looks like a HEADERS header is skipped as payload.
        let mut scan = FrameScan::default();
        let data_like = [0, 0, 9, 0x0, 0, 0, 0, 0, 1, 0, 0, 1, HEADERS, 0, 0, 0, 0, 1];
        assert!(!scan.opened_stream(&data_like));
    }

    #[tokio::test]
    async fn a_connection_that_opens_no_stream_is_closed() {
        let (l, addr) = listener().await;
        let limits = Limits {
            max_connections: 2,
            handshake_timeout: Duration::from_millis(200),
        };
        let mut incoming = accept(l, Plain, limits);
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(PREFACE).await.unwrap();
        silent
            .write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        let mut served = incoming.next().await.unwrap().unwrap();
        let mut bytes = [0u8; 64];
        let mut read = 0;
        let ended = loop {
            match served.read(&mut bytes).await {
                Ok(0) => break None,
                Ok(n) => read += n,
                Err(e) => break Some(e.kind()),
            }
        };
        assert_eq!(read, 24 + 9, "the preface and SETTINGS got through");
        assert_eq!(ended, Some(io::ErrorKind::TimedOut));
        // One that opens a stream in time is left alone.
        let mut talker = TcpStream::connect(addr).await.unwrap();
        talker.write_all(PREFACE).await.unwrap();
        talker
            .write_all(&[0, 0, 1, HEADERS, 0x4, 0, 0, 0, 1, 0x82])
            .await
            .unwrap();
        let mut served = incoming.next().await.unwrap().unwrap();
        let mut got = [0u8; 34];
        served.read_exact(&mut got).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        talker.write_all(b"more").await.unwrap();
        let mut more = [0u8; 4];
        served.read_exact(&mut more).await.unwrap();
        assert_eq!(&more, b"more");
    }

    #[tokio::test]
    async fn beyond_max_connections_new_ones_are_closed() {
        let (l, addr) = listener().await;
        let limits = Limits {
            max_connections: 1,
            handshake_timeout: Duration::from_secs(5),
        };
        let mut incoming = accept(l, Plain, limits);
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(PREFACE).await.unwrap();
        let held = incoming.next().await.unwrap().unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        assert!(
            matches!(second.read(&mut byte).await, Ok(0) | Err(_)),
            "closed at once"
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(PREFACE).await.unwrap();
        assert!(incoming.next().await.is_some(), "a place freed up");
    }
}
