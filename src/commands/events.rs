//! Prints engine events while a run goes on: progress lines for people, NDJSON for machines,
//! and collects check results for the final report.

use crate::views::{Output, progress};
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::plan::CheckResult;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The printing task.
pub struct Printer {
    task: tokio::task::JoinHandle<Vec<CheckResult>>,
    tx: mpsc::UnboundedSender<Event>,
}

impl Printer {
    /// Waits until every event sent so far is printed; returns the check results seen.
    pub async fn finish(self) -> Vec<CheckResult> {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

/// A sink and its printer. `machine`: NDJSON when `ndjson`, otherwise nothing (the caller
/// prints a document); people get timestamped progress lines. While planning, check results are
/// not printed as they come: the plan lists them.
pub fn printer(
    out: &Output,
    machine: bool,
    ndjson: bool,
    planning: bool,
) -> (Arc<dyn EventSink>, Printer) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let out = Output {
        no_color: out.no_color,
    };
    let task = tokio::spawn(async move {
        let mut checks = Vec::new();
        let mut lines = progress::Progress::new();
        while let Some(e) = rx.recv().await {
            if let Event::Check { result } = &e {
                checks.push(result.clone());
            }
            let now = time::OffsetDateTime::now_utc();
            if ndjson {
                out.stdout(&progress::ndjson(&e, now));
            } else if !(machine || planning && matches!(e, Event::Check { .. }))
                && let Some(line) = lines.line(&e, now)
            {
                out.stdout(&line);
            }
        }
        if !machine && let Some(line) = lines.finish(time::OffsetDateTime::now_utc()) {
            out.stdout(&line);
        }
        checks
    });
    let sink: Arc<dyn EventSink> = Arc::new(tx.clone());
    (sink, Printer { task, tx })
}
