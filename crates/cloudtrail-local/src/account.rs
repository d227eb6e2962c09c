//! One account's state: its trails and its event history.

use crate::{events::EventStore, trails::Trails};

/// One account's trails and event history.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) trails: Trails,
    pub(crate) events: EventStore,
}
