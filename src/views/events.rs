//! Prints engine events while a run goes on: progress lines for people (with a heartbeat for
//! every step still in progress at least every 10 seconds, and live bars on a terminal), NDJSON
//! for machines, and collects check results for the final report.

use super::live::{Counts, Live, Totals};
use super::{Output, progress};
use arcplan_engine::events::{Event, EventSink};
use arcplan_engine::plan::CheckResult;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// How often the printer looks for steps owing a heartbeat.
const TICK: Duration = Duration::from_secs(1);

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

/// What the printer prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Nothing (the caller prints a document).
    Silent,
    /// NDJSON, one line per event.
    Ndjson,
    /// Timestamped lines and heartbeats (a log, CI, a pipe).
    Plain,
    /// Timestamped lines above live bars (a terminal).
    Live,
}

/// A sink and its printer in `style`, writing standard output through `out` (live bars, when
/// the style has them, count `totals` on standard error). While `planning`, check results are
/// not printed as they come: the plan lists them.
pub(crate) fn printer(
    out: &Output,
    style: Style,
    planning: bool,
    totals: Totals,
) -> (Arc<dyn EventSink>, Printer) {
    let write: Writer = {
        let out = out.clone();
        Arc::new(move |s: &str| out.stdout(s))
    };
    spawn(style, planning, totals, write)
}

type Writer = Arc<dyn Fn(&str) + Send + Sync>;

/// The wall clock, advanced by Tokio's monotonic clock (so a paused test clock moves it).
struct Clock {
    wall: OffsetDateTime,
    at: tokio::time::Instant,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: OffsetDateTime::now_utc(),
            at: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.wall + self.at.elapsed()
    }
}

/// From this many steps in one phase, a run is a fleet: plain output then gives one heartbeat
/// line for the whole run every 10 s (`Still working: keys 120/500 · clusters 87/500 · ...`)
/// instead of one per silent step.
const FLEET_STEPS: u64 = 20;

fn spawn(
    style: Style,
    planning: bool,
    totals: Totals,
    write: Writer,
) -> (Arc<dyn EventSink>, Printer) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let task = tokio::spawn(async move {
        let clock = Clock::start();
        let mut checks = Vec::new();
        let mut lines = progress::Progress::new();
        let fleet = totals.0.values().any(|n| *n >= FLEET_STEPS);
        let mut counts = Counts::new(totals.clone());
        let mut last_beat = clock.now();
        let mut bars = (style == Style::Live)
            .then(|| Live::new(totals, indicatif::ProgressDrawTarget::stderr()));
        let say = |bars: &Option<Live>, s: &str| match bars {
            Some(b) => b.println(s),
            None => write(s),
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let e = tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
                _ = tick.tick() => {
                    let now = clock.now();
                    if style == Style::Plain && fleet {
                        if (now - last_beat).whole_seconds() >= progress::PROGRESS_EVERY as i64 {
                            last_beat = now;
                            write(&format!("{} Still working: {}", progress::clock(now), counts.line()));
                        }
                    } else if style == Style::Plain {
                        for l in lines.heartbeats(now) {
                            write(&l);
                        }
                    }
                    continue;
                }
            };
            counts.event(&e);
            if let Event::Check { result } = &e {
                checks.push(result.clone());
            }
            let now = clock.now();
            if let Some(b) = bars.as_mut() {
                b.event(&e);
            }
            match style {
                Style::Ndjson => write(&progress::ndjson(&e, now)),
                Style::Silent => {}
                Style::Plain | Style::Live => {
                    if !(planning && matches!(e, Event::Check { .. }))
                        && let Some(line) = lines.line(&e, now)
                    {
                        say(&bars, &line);
                    }
                }
            }
        }
        if matches!(style, Style::Plain | Style::Live)
            && let Some(line) = lines.finish(clock.now())
        {
            say(&bars, &line);
        }
        if let Some(b) = bars {
            b.finish();
        }
        checks
    });
    let sink: Arc<dyn EventSink> = Arc::new(tx.clone());
    (sink, Printer { task, tx })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcplan_engine::address::Address;
    use arcplan_engine::plan::Action;
    use std::sync::Mutex;

    fn capture() -> (Writer, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        (
            Arc::new(move |s: &str| l.lock().unwrap().push(s.to_owned())),
            lines,
        )
    }

    /// A step that stays silent for 25 s (a 4096-bit key being generated) gets a heartbeat
    /// at 10 s and 20 s in plain output; none with NDJSON.
    #[tokio::test(start_paused = true)]
    async fn a_silent_step_gets_a_heartbeat_every_ten_seconds() {
        let key = Address::new(arcplan_providers::kinds::ONBOARDING_KEY, "c1");
        for style in [Style::Plain, Style::Ndjson] {
            let (write, lines) = capture();
            let (sink, printer) = spawn(style, false, Totals::default(), write);
            sink.emit(Event::ApplyStart {
                address: key.clone(),
                action: Action::Create,
            });
            tokio::time::sleep(Duration::from_secs(25)).await;
            sink.emit(Event::ApplyComplete {
                address: key.clone(),
                action: Action::Create,
                elapsed_seconds: 25.0,
            });
            tokio::time::sleep(Duration::from_secs(15)).await;
            drop(sink);
            printer.finish().await;
            let lines = lines.lock().unwrap().clone();
            let still: Vec<&String> = lines.iter().filter(|l| l.contains("Still")).collect();
            if style == Style::Plain {
                assert_eq!(still.len(), 2, "{lines:#?}");
                assert!(
                    still[0].ends_with("k8s.onboardingKey.c1: Still creating... [10s elapsed]")
                );
                assert!(
                    still[1].ends_with("k8s.onboardingKey.c1: Still creating... [20s elapsed]")
                );
                assert!(
                    lines
                        .last()
                        .unwrap()
                        .ends_with("Creation complete after 25s")
                );
                for l in &lines {
                    assert!(
                        !l.contains('\x1b'),
                        "no control sequences off a terminal: {l:?}"
                    );
                }
            } else {
                assert!(still.is_empty(), "{lines:#?}");
                for l in &lines {
                    serde_json::from_str::<serde_json::Value>(l).expect("pure NDJSON");
                }
            }
        }
    }

    /// A fleet's plain output: one heartbeat line for the run every 10 s, with every phase's
    /// count, instead of one line per silent step.
    #[tokio::test(start_paused = true)]
    async fn a_fleet_gets_one_heartbeat_line_every_ten_seconds() {
        let keys: Vec<Address> = (0..30)
            .map(|i| Address::new(arcplan_providers::kinds::ONBOARDING_KEY, format!("c{i}")))
            .collect();
        let mut totals = Totals::default();
        totals
            .0
            .insert(super::super::live::Phase::of(&keys[0]), keys.len() as u64);
        let (write, lines) = capture();
        let (sink, printer) = spawn(Style::Plain, false, totals, write);
        for k in &keys {
            sink.emit(Event::ApplyStart {
                address: k.clone(),
                action: Action::Create,
            });
        }
        for k in &keys[..12] {
            sink.emit(Event::ApplyComplete {
                address: k.clone(),
                action: Action::Create,
                elapsed_seconds: 1.0,
            });
        }
        tokio::time::sleep(Duration::from_secs(25)).await;
        drop(sink);
        printer.finish().await;
        let lines = lines.lock().unwrap().clone();
        let beats: Vec<&String> = lines.iter().filter(|l| l.contains("Still")).collect();
        assert_eq!(beats.len(), 2, "one per 10 s, not one per key: {lines:#?}");
        assert!(beats[0].ends_with("Still working: keys 12/30"), "{beats:?}");
    }
}
