//! StreamEvents as a `Stream` that carries on from its last cursor when the call breaks.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    task::{Context, Poll},
};

use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::Status;
use tonic_types::StatusExt;

use crate::{Client, pb};

/// Messages of `StreamEvents` (batches of events, heartbeats), resumed from the last cursor after
/// a broken connection, a drained gateway or a reader that fell behind: no gap, no duplicate.
/// Ends after the last message, or with the status it could not resume from.
#[derive(Debug)]
pub struct EventStream {
    messages: ReceiverStream<Result<pb::StreamEventsResponse, Status>>,
    resumed: Arc<AtomicU32>,
}

impl EventStream {
    pub(crate) fn start(client: Client, request: pb::StreamEventsRequest) -> EventStream {
        // One message ahead of the reader: a slow reader slows the call (the gateway's
        // backpressure), nothing piles up here.
        let (sender, receiver) = mpsc::channel(1);
        let resumed = Arc::new(AtomicU32::new(0));
        tokio::spawn(run(client, request, sender, resumed.clone()));
        EventStream {
            messages: ReceiverStream::new(receiver),
            resumed,
        }
    }

    /// How many times the stream was resumed from its cursor.
    pub fn resumed(&self) -> u32 {
        self.resumed.load(Ordering::Relaxed)
    }
}

impl Stream for EventStream {
    type Item = Result<pb::StreamEventsResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.messages).poll_next(cx)
    }
}

type Sender = mpsc::Sender<Result<pb::StreamEventsResponse, Status>>;

async fn run(
    client: Client,
    mut request: pb::StreamEventsRequest,
    sender: Sender,
    resumed: Arc<AtomicU32>,
) {
    let mut failures = 0;
    loop {
        let status = match open(&client, &request).await {
            Ok(mut stream) => loop {
                tokio::select! {
                    message = stream.message() => match message {
                        Ok(Some(message)) => {
                            failures = 0;
                            request.cursor.clone_from(&message.cursor);
                            if sender.send(Ok(message)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(status) => break status,
                    },
                    () = sender.closed() => return,
                }
            },
            Err(status) => status,
        };
        // A drained gateway or a reader too slow for its feed says where to carry on.
        if let Some(cursor) = status
            .get_details_error_info()
            .and_then(|info| info.metadata.get("cursor").cloned())
        {
            request.cursor = cursor;
        }
        failures += 1;
        let Some(wait) = client.retry.resume_wait(&status, failures) else {
            let _ = sender.send(Err(status)).await;
            return;
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = sender.closed() => return,
        }
        resumed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn open(
    client: &Client,
    request: &pb::StreamEventsRequest,
) -> Result<tonic::Streaming<pb::StreamEventsResponse>, Status> {
    let request = client.request(request.clone(), None)?;
    Ok(client
        .grpc
        .clone()
        .stream_events(request)
        .await?
        .into_inner())
}
