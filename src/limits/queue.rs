//! The limiter's fair queue, one per bucket: start-time fair queueing by principal (weighted), or
//! plain FIFO. A waiter's key is its start tag, the later of the queue's virtual time and its
//! principal's previous finish tag (start + TURN / weight). Ordering by start, not finish, lets a
//! principal with one call at a time (a shared poll) still get its weight's share: its next start
//! comes before the next round of the others.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use tokio::sync::oneshot;

/// How waiting callers share slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fairness {
    /// Principals take turns (weighted by `[weights]`); a principal's own calls keep their order.
    RoundRobin,
    /// First come, first served.
    Fifo,
}

/// Virtual-time units one call costs a principal of weight 1.
const TURN: u64 = 1_000_000;

/// The per-principal virtual times are pruned once this many principals are remembered.
pub const PRUNE_PRINCIPALS_AT: usize = 1024;

/// A waiter's place: (start tag, arrival).
pub type Key = (u64, u64);

#[derive(Debug, Default)]
pub struct Queue {
    /// (start tag, arrival) → the waiter's wake-up.
    pub waiters: BTreeMap<Key, oneshot::Sender<()>>,
    /// Each principal's last finish tag.
    last: HashMap<Arc<str>, u64>,
    /// The start tag of the last call served.
    now: u64,
    arrivals: u64,
    /// A task hands out slots to the waiters.
    pub dispatching: bool,
}

impl Queue {
    /// Queues a call of `principal` (of `weight`): its key, how many wait before it, and what wakes
    /// it when its slot comes.
    pub fn enqueue(
        &mut self,
        principal: &str,
        weight: u32,
        fairness: Fairness,
    ) -> (Key, u32, oneshot::Receiver<()>) {
        let key = match fairness {
            Fairness::Fifo => (self.arrivals, self.arrivals),
            Fairness::RoundRobin => {
                let start = self.last.get(principal).copied().unwrap_or(0).max(self.now);
                let finish = start + TURN / u64::from(weight.max(1));
                if self.last.len() >= PRUNE_PRINCIPALS_AT {
                    // A principal whose last finish is within a turn of the queue's time would
                    // start within a turn of it anyway: forgetting it gives it at most one call's
                    // head start, and keeps the map bounded by the principals with calls queued
                    // well ahead.
                    let horizon = self.now + TURN;
                    self.last.retain(|_, last| *last > horizon);
                }
                self.last.insert(principal.into(), finish);
                (start, self.arrivals)
            }
        };
        self.arrivals += 1;
        let position = self.waiters.range(..key).count() as u32;
        let (sender, receiver) = oneshot::channel();
        self.waiters.insert(key, sender);
        (key, position, receiver)
    }

    /// A slot came: it goes to the first waiter still waiting.
    pub fn serve_next(&mut self) {
        while let Some(((tag, _), sender)) = self.waiters.pop_first() {
            if sender.send(()).is_ok() {
                self.now = self.now.max(tag);
                break;
            }
        }
    }

    /// Whether nobody waits any more (those who went away forgotten); then the dispatcher stops.
    pub fn idle(&mut self) -> bool {
        self.waiters.retain(|_, sender| !sender.is_closed());
        let idle = self.waiters.is_empty();
        if idle {
            self.dispatching = false;
        }
        idle
    }

    /// How many principals it remembers (bounded by pruning).
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.last.len()
    }
}
