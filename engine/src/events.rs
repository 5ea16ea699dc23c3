//! Typed events the engine and providers emit while planning and applying.
//!
//! Nothing in the engine or the providers prints. They send events to an [`EventSink`], and the
//! CLI's views turn them into progress lines, progress bars or an NDJSON stream.

use crate::address::Address;
use crate::diag::Diagnostic;
use crate::plan::{Action, CheckResult};
use serde::Serialize;

/// Something that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Reading a resource's live state started.
    RefreshStart {
        /// The resource.
        address: Address,
    },
    /// Reading a resource's live state finished.
    RefreshComplete {
        /// The resource.
        address: Address,
        /// Whether the resource exists.
        exists: bool,
    },
    /// A change was planned.
    PlannedChange {
        /// The resource.
        address: Address,
        /// What will happen.
        action: Action,
    },
    /// Applying a change started.
    ApplyStart {
        /// The resource.
        address: Address,
        /// What is being done.
        action: Action,
    },
    /// A long operation reports progress (registration, an LRO, a rollout).
    ApplyProgress {
        /// The resource.
        address: Address,
        /// What is happening, in a few words ("Registering", "3/9 agents available").
        message: String,
        /// Seconds since the change started.
        elapsed_seconds: f64,
    },
    /// A change was applied.
    ApplyComplete {
        /// The resource.
        address: Address,
        /// What was done.
        action: Action,
        /// How long it took.
        elapsed_seconds: f64,
    },
    /// A change failed.
    ApplyErrored {
        /// The resource.
        address: Address,
        /// What was attempted.
        action: Action,
        /// The errors.
        diagnostics: Vec<Diagnostic>,
    },
    /// A change was not attempted.
    Skipped {
        /// The resource.
        address: Address,
        /// Why.
        reason: String,
    },
    /// A check was evaluated.
    Check {
        /// The result.
        result: CheckResult,
    },
    /// A warning or error not tied to one change.
    Diagnostic {
        /// The diagnostic.
        diagnostic: Diagnostic,
    },
}

/// Receives events. Implementations must be cheap and must not block.
pub trait EventSink: Send + Sync {
    /// Handles one event.
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: Event) {}
}

/// A sink that forwards events to a Tokio channel (for views running on their own task).
impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) {
        // A closed receiver means nobody is watching any more; dropping the event is right.
        let _ = self.send(event);
    }
}
