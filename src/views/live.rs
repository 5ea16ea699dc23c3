//! Live progress on a terminal (indicatif): a bar per phase (`azure`, `keys`, `clusters`,
//! `agents`, `connected`; `refresh` while planning), each with its count and the latest thing it
//! reported, and a top line with the elapsed time and every count (`keys 120/500 · connected
//! 87/500`). The timestamped lines still print, above the bars.
//!
//! Only on a terminal: never when standard output or standard error is not one, never in CI
//! (`CI` set) or on a dumb terminal, never with `--json` (the NDJSON stream stays pure). The
//! bars carry no colour, so `NO_COLOR` needs nothing more: progress without colour, as
//! Terraform does.

use arcplan_engine::address::Address;
use arcplan_engine::events::Event;
use arcplan_engine::plan::{CheckStatus, Plan};
use arcplan_providers::kinds::{cluster_of, cluster_stage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// A phase of a run: what a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Reading live state (plan).
    Refresh,
    /// Subscription-level resources: providers, resource groups.
    Azure,
    /// One of the kinds a cluster expands into (onboarding keys, connected clusters, agent
    /// installs, clusters Azure shows Connected): its rank and its word, from the providers.
    Cluster(usize, &'static str),
}

impl Phase {
    /// The phase an apply step belongs to.
    pub fn of(a: &Address) -> Phase {
        cluster_stage(&a.rtype).map_or(Phase::Azure, |(rank, word)| Phase::Cluster(rank, word))
    }

    fn label(self) -> &'static str {
        match self {
            Phase::Refresh => "refresh",
            Phase::Azure => "azure",
            Phase::Cluster(_, word) => word,
        }
    }
}

/// How many steps each phase has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals(pub BTreeMap<Phase, u64>);

impl Totals {
    /// A plan's refresh: `n` resources read.
    pub fn refresh(n: usize) -> Self {
        Totals([(Phase::Refresh, n as u64)].into())
    }

    /// An apply of `plan`: its changes and its post-apply checks, by phase.
    pub fn apply(plan: &Plan) -> Self {
        let mut t = BTreeMap::new();
        for c in plan.changes.iter().filter(|c| c.action.is_change()) {
            *t.entry(Phase::of(&c.address)).or_default() += 1;
        }
        for c in plan
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pending)
        {
            *t.entry(Phase::of(&c.address)).or_default() += 1;
        }
        Totals(t)
    }
}

/// Counts per phase as the events arrive, and the top line they make.
#[derive(Debug, Default)]
pub struct Counts {
    totals: Totals,
    done: BTreeMap<Phase, u64>,
    failed: BTreeMap<Phase, u64>,
    finished: HashSet<Address>,
}

impl Counts {
    /// Nothing done yet of `totals`.
    pub fn new(totals: Totals) -> Self {
        Counts {
            totals,
            ..Default::default()
        }
    }

    /// Counts one event; returns the phase it moved, if any.
    pub fn event(&mut self, e: &Event) -> Option<Phase> {
        let (address, phase, ok) = match e {
            Event::RefreshComplete { address, .. } => (address, Phase::Refresh, true),
            Event::ApplyComplete { address, .. } => (address, Phase::of(address), true),
            Event::ApplyErrored { address, .. } | Event::Skipped { address, .. } => {
                (address, Phase::of(address), false)
            }
            _ => return None,
        };
        if !self.totals.0.contains_key(&phase) || !self.finished.insert(address.clone()) {
            return None;
        }
        *self.done.entry(phase).or_default() += 1;
        if !ok {
            *self.failed.entry(phase).or_default() += 1;
        }
        Some(phase)
    }

    /// Done and total of a phase.
    pub fn of(&self, p: Phase) -> (u64, u64) {
        (
            self.done.get(&p).copied().unwrap_or(0),
            self.totals.0.get(&p).copied().unwrap_or(0),
        )
    }

    /// Failed or skipped steps of a phase.
    pub fn failed(&self, p: Phase) -> u64 {
        self.failed.get(&p).copied().unwrap_or(0)
    }

    /// `keys 120/500 · clusters 100/500 · agents 90/500 · connected 87/500` (only the phases
    /// this run has).
    pub fn line(&self) -> String {
        self.totals
            .0
            .keys()
            .map(|p| {
                let (d, t) = self.of(*p);
                let f = self.failed(*p);
                if f > 0 {
                    format!("{} {d}/{t} ({f} failed)", p.label())
                } else {
                    format!("{} {d}/{t}", p.label())
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// True when live progress may be drawn: both output streams are terminals, not CI, not a dumb
/// terminal. (`--json` callers never ask.)
pub fn enabled() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The bars of one run.
pub struct Live {
    multi: MultiProgress,
    top: ProgressBar,
    bars: BTreeMap<Phase, ProgressBar>,
    counts: Counts,
}

impl Live {
    /// Bars for `totals`, drawn to `target` (standard error on a terminal).
    pub fn new(totals: Totals, target: ProgressDrawTarget) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let top = multi.add(ProgressBar::new_spinner());
        top.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let style =
            ProgressStyle::with_template("{prefix:>9} [{bar:24}] {pos:>4}/{len:<4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let bars = totals
            .0
            .iter()
            .map(|(p, n)| {
                let b = multi.add(ProgressBar::new(*n));
                b.set_style(style.clone());
                b.set_prefix(p.label());
                (*p, b)
            })
            .collect();
        let counts = Counts::new(totals);
        top.set_message(counts.line());
        top.enable_steady_tick(Duration::from_millis(250));
        Live {
            multi,
            top,
            bars,
            counts,
        }
    }

    /// Moves the bars for one event.
    pub fn event(&mut self, e: &Event) {
        let message = match e {
            Event::RefreshStart { address } => Some((Phase::Refresh, address.to_string())),
            Event::ApplyStart { address, .. } => Some((Phase::of(address), address.to_string())),
            Event::ApplyProgress {
                address, message, ..
            } => Some((
                Phase::of(address),
                format!(
                    "{}: {}",
                    cluster_of(address).unwrap_or(&address.to_string()),
                    message.lines().next().unwrap_or("")
                ),
            )),
            _ => None,
        };
        if let Some((p, m)) = message
            && let Some(b) = self.bars.get(&p)
        {
            b.set_message(m);
        }
        if let Some(p) = self.counts.event(e)
            && let Some(b) = self.bars.get(&p)
        {
            let (done, total) = self.counts.of(p);
            b.set_position(done);
            if done >= total {
                b.set_message(match self.counts.failed(p) {
                    0 => "done".to_owned(),
                    f => format!("done ({f} failed)"),
                });
            }
            self.top.set_message(self.counts.line());
        }
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        self.multi
            .suspend(|| crate::views::Output { no_color: false }.stdout(line));
    }

    /// Removes the bars.
    pub fn finish(self) {
        for b in self.bars.values() {
            b.finish_and_clear();
        }
        self.top.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcplan_engine::plan::Action;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps what is drawn.
    #[derive(Debug, Clone, Default)]
    struct FakeTerm(Arc<Mutex<String>>);

    impl indicatif::TermLike for FakeTerm {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(&format!("{s}\n"));
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn fleet(n: usize) -> Plan {
        use arcplan_engine::plan::{Change, CheckResult, FORMAT_VERSION, PlanMode};
        let mut changes = vec![Change::new(
            Address::new(arcplan_providers::kinds::RESOURCE_GROUP, "rg"),
            Action::Create,
        )];
        let mut checks = Vec::new();
        for i in 0..n {
            let name = format!("c{i}");
            for t in [
                arcplan_providers::kinds::ONBOARDING_KEY,
                arcplan_providers::kinds::CONNECTED_CLUSTER,
                arcplan_providers::kinds::ARC_AGENTS,
            ] {
                changes.push(Change::new(Address::new(t, name.clone()), Action::Create));
            }
            checks.push(CheckResult {
                address: Address::new(arcplan_providers::kinds::CONNECTIVITY, name),
                status: CheckStatus::Pending,
                summary: String::new(),
                fix: None,
                details: None,
                depends_on: vec![],
                desired: None,
            });
        }
        Plan {
            format_version: FORMAT_VERSION.into(),
            config_digest: String::new(),
            stack: "s".into(),
            mode: PlanMode::Normal,
            changes,
            checks,
            shard: None,
        }
    }

    fn complete(t: arcplan_engine::address::ResourceType, i: usize) -> Event {
        Event::ApplyComplete {
            address: Address::new(t, format!("c{i}")),
            action: Action::Create,
            elapsed_seconds: 1.0,
        }
    }

    #[test]
    fn fleet_counts_per_phase() {
        let mut c = Counts::new(Totals::apply(&fleet(5)));
        assert_eq!(
            c.line(),
            "azure 0/1 · keys 0/5 · clusters 0/5 · agents 0/5 · connected 0/5"
        );
        for i in 0..3 {
            c.event(&complete(arcplan_providers::kinds::ONBOARDING_KEY, i));
        }
        c.event(&complete(arcplan_providers::kinds::ONBOARDING_KEY, 0)); // counted once
        c.event(&complete(arcplan_providers::kinds::CONNECTIVITY, 1));
        c.event(&Event::ApplyErrored {
            address: Address::new(arcplan_providers::kinds::CONNECTIVITY, "c2"),
            action: Action::Read,
            diagnostics: vec![],
        });
        assert_eq!(
            c.line(),
            "azure 0/1 · keys 3/5 · clusters 0/5 · agents 0/5 · connected 2/5 (1 failed)"
        );
    }

    #[test]
    fn a_terminal_shows_the_fleet_counts() {
        let term = FakeTerm::default();
        let mut live = Live::new(
            Totals::apply(&fleet(4)),
            ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100),
        );
        for i in 0..4 {
            live.event(&complete(arcplan_providers::kinds::ONBOARDING_KEY, i));
        }
        live.event(&Event::ApplyProgress {
            address: Address::new(arcplan_providers::kinds::ARC_AGENTS, "c1"),
            message: "3/9 agent deployments available".into(),
            elapsed_seconds: 12.0,
        });
        live.event(&complete(arcplan_providers::kinds::CONNECTIVITY, 0));
        std::thread::sleep(Duration::from_millis(50));
        live.top.tick();
        for b in live.bars.values() {
            b.tick();
        }
        let drawn = term.0.lock().unwrap().clone();
        assert!(drawn.contains("keys 4/4"), "{drawn}");
        assert!(drawn.contains("connected 1/4"), "{drawn}");
        assert!(
            drawn.contains("c1: 3/9 agent deployments available"),
            "{drawn}"
        );
        assert!(drawn.contains("connected ["), "a bar per phase: {drawn}");
        live.finish();
    }
}
