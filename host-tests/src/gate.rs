//! A gate a test opens on an event it saw, for the in-process servers to wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a held answer waits for: a test opens it when the event it waits on has happened, so
/// an answer comes after that event however slow the machine is, not after a guessed delay.
#[derive(Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    pub fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_open(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
