//! A stream's outgoing messages, bounded twice: at most `STREAM_BUFFER` messages and
//! `STREAM_BUFFER_BYTES` bytes waiting for a reader that has not taken them. A count alone let a few
//! streams with large messages (a page of big events, a long cursor) hold hundreds of megabytes.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;

use super::{STREAM_BUFFER, STREAM_BUFFER_BYTES};

/// Sends a stream's messages, waiting while the reader is behind by count or by bytes.
#[derive(Debug)]
pub struct Sender<T> {
    messages: mpsc::Sender<(T, OwnedSemaphorePermit)>,
    bytes: Arc<Semaphore>,
}

/// What tonic reads: each message gives its bytes back as it is taken.
#[derive(Debug)]
pub struct Receiver<T> {
    messages: mpsc::Receiver<(T, OwnedSemaphorePermit)>,
}

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (messages, receiver) = mpsc::channel(STREAM_BUFFER);
    let sender = Sender {
        messages,
        bytes: Arc::new(Semaphore::new(STREAM_BUFFER_BYTES)),
    };
    (sender, Receiver { messages: receiver })
}

impl<T> Sender<T> {
    /// Sends `message` of `size` bytes (a message larger than the whole budget waits for an empty
    /// buffer); `false` when the reader went away.
    pub async fn send(&self, message: T, size: usize) -> bool {
        let size = size.clamp(1, STREAM_BUFFER_BYTES) as u32;
        let Ok(permit) = self.bytes.clone().acquire_many_owned(size).await else {
            return false;
        };
        self.messages.send((message, permit)).await.is_ok()
    }

    /// Resolves when the reader went away.
    pub async fn closed(&self) {
        self.messages.closed().await
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.messages
            .poll_recv(cx)
            .map(|next| next.map(|(message, _bytes)| message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn a_reader_behind_by_bytes_holds_the_sender() {
        let (sender, mut receiver) = channel::<usize>();
        let half = STREAM_BUFFER_BYTES / 2;
        assert!(sender.send(1, half).await && sender.send(2, half).await);
        // The budget is spent after two messages, though the count allows sixteen.
        let third = tokio::time::timeout(Duration::from_millis(50), sender.send(3, half)).await;
        assert!(third.is_err(), "held: the reader took nothing");
        assert_eq!(receiver.next().await, Some(1));
        assert!(
            sender.send(3, half).await,
            "a message taken gave its bytes back"
        );
        // Larger than the whole budget: sent once the buffer is empty.
        assert_eq!(receiver.next().await, Some(2));
        assert_eq!(receiver.next().await, Some(3));
        assert!(sender.send(4, STREAM_BUFFER_BYTES * 3).await);
        drop(receiver);
        assert!(!sender.send(5, 1).await, "the reader went away");
    }
}
