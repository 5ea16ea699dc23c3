//! The apply session over the scripted fake provider, with a lock verb and a recording view.
use super::*;
use crate::address::Address;
use crate::graph::{GraphBuilder, Mode};
use crate::testing::FakeProvider;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

const A: ResourceType = ResourceType::of("test.a");
const B: ResourceType = ResourceType::of("test.b");

/// A journal of what happened, in order, shared by the provider, its locks and the view.
type Journal = Arc<Mutex<Vec<String>>>;

fn note(j: &Journal, s: impl Into<String>) {
    j.lock().unwrap().push(s.into());
}

struct TestLock {
    journal: Journal,
    lose: bool,
    signal: CancellationToken,
}

#[async_trait]
impl ScopeLock for TestLock {
    async fn ensure_held(&self) -> Result<(), Diagnostic> {
        note(&self.journal, "ensure-held");
        if self.lose {
            Err(Diagnostic::error("lock-lost", "the lock of x was lost"))
        } else {
            Ok(())
        }
    }
    fn lost(&self) -> Option<Diagnostic> {
        None
    }
    fn lost_signal(&self) -> CancellationToken {
        self.signal.clone()
    }
    async fn release(&self) -> Result<(), Diagnostic> {
        note(&self.journal, "release");
        Ok(())
    }
}

/// The fake provider with a `lock` verb (and what unreachable resources leave behind).
struct Locking {
    fake: FakeProvider,
    journal: Journal,
    fail_lock: bool,
    lose: bool,
}

#[async_trait]
impl Provider for Locking {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.fake.resource_types()
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        note(&self.journal, format!("read {}", req.address));
        self.fake.read(req).await
    }
    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.fake.plan(req).await
    }
    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        note(&self.journal, format!("apply {}", req.change.address));
        self.fake.apply(req).await
    }
    async fn check(&self, req: CheckRequest) -> CheckResponse {
        self.fake.check(req).await
    }
    async fn lock(&self, req: LockRequest) -> LockResponse {
        let mut names: Vec<String> = req.resources.iter().map(|(a, _)| a.to_string()).collect();
        names.sort();
        note(&self.journal, format!("lock {}", names.join(",")));
        (req.on_wait)(&LockWaiting {
            scope: "x".into(),
            holder: "someone".into(),
            waited: Duration::ZERO,
            timeout: req.timeout,
        });
        let lock: Arc<dyn ScopeLock> = Arc::new(TestLock {
            journal: self.journal.clone(),
            lose: self.lose,
            signal: CancellationToken::new(),
        });
        LockResponse {
            locks: vec![lock],
            diagnostics: if self.fail_lock {
                Diagnostic::error("locked", "x is locked by someone").into()
            } else {
                Diagnostics::new()
            },
        }
    }
    async fn left_behind(&self, req: &ReadRequest) -> Diagnostics {
        Diagnostic::warning("left", format!("{} stays", req.address)).into()
    }
}

struct TestView {
    journal: Journal,
    approve: bool,
    asked: AtomicBool,
}

#[async_trait]
impl SessionView for TestView {
    fn lock_waiting(&self, w: &LockWaiting) {
        note(&self.journal, format!("waiting {} {}", w.scope, w.holder));
    }
    fn planning(&self) -> Arc<dyn EventSink> {
        Arc::new(crate::events::NoEvents)
    }
    async fn planned(&self, result: Result<(&Plan, &Diagnostics), &Diagnostics>) {
        let warnings = match result {
            Ok((_, w)) => w.len(),
            Err(_) => 0,
        };
        note(&self.journal, format!("planned ({warnings} warnings)"));
    }
    async fn approve(&self, _: &Plan, _: &CancellationToken) -> bool {
        self.asked.store(true, Ordering::SeqCst);
        self.approve
    }
    fn applying(&self, _: &Plan) -> Arc<dyn EventSink> {
        Arc::new(crate::events::NoEvents)
    }
    async fn applied(&self, _: &Plan, report: Option<&ApplyReport>) {
        note(&self.journal, format!("applied {}", report.is_some()));
    }
}

struct World {
    provider: Arc<Locking>,
    providers: Providers,
    graph: ResourceGraph,
    view: TestView,
    journal: Journal,
}

/// `test.a.one` (managed) → `test.b.two` (managed, or a plan-time check), one provider.
fn world(fail_lock: bool, lose: bool, b_mode: Mode) -> World {
    let journal: Journal = Arc::default();
    let mut fake = FakeProvider::new(&[A, B]);
    fake.check_fn = Some(Box::new(|_| CheckStatus::Fail));
    let provider = Arc::new(Locking {
        fake,
        journal: journal.clone(),
        fail_lock,
        lose,
    });
    let mut providers = Providers::new();
    providers.register(provider.clone());
    let mut b = GraphBuilder::new();
    let (one, two) = (Address::new(A, "one"), Address::new(B, "two"));
    b.node(one.clone(), Mode::Managed, &json!({"v": 1}), "f:1:1");
    b.node(two.clone(), b_mode, &json!({"v": 2}), "f:2:1");
    b.edge(&two, &one);
    World {
        provider,
        providers,
        graph: b.finish().unwrap(),
        view: TestView {
            journal: journal.clone(),
            approve: true,
            asked: AtomicBool::new(false),
        },
        journal,
    }
}

fn options() -> SessionOptions {
    SessionOptions {
        holder: "me".into(),
        lock_timeout: Duration::from_secs(1),
        parallelism: 4,
        ..Default::default()
    }
}

async fn run_plan(w: &World, opts: &SessionOptions, mode: crate::plan::PlanMode) -> Finished {
    let source = Source::Plan {
        graph: &w.graph,
        options: PlanOptions {
            mode,
            stack: "s".into(),
            ..Default::default()
        },
    };
    run(&w.providers, source, opts, &w.view).await
}

fn journal(w: &World) -> Vec<String> {
    w.journal.lock().unwrap().clone()
}

#[tokio::test]
async fn locks_every_touched_resource_before_reading_and_releases_after_applying() {
    let w = world(false, false, Mode::Managed);
    let f = run_plan(&w, &options(), crate::plan::PlanMode::Normal).await;
    assert!(f.outcome.is_success(), "{:?}", f.outcome);
    assert!(f.release.is_empty());
    let j = journal(&w);
    assert_eq!(j[0], "lock test.a.one,test.b.two", "{j:?}");
    assert_eq!(
        j[1], "waiting x someone",
        "the view hears of the wait: {j:?}"
    );
    let first_read = j.iter().position(|s| s.starts_with("read")).unwrap();
    assert!(first_read > 0);
    // Every apply is preceded by proof that the lock is held; release comes last.
    for (i, s) in j.iter().enumerate().filter(|(_, s)| s.starts_with("apply")) {
        assert_eq!(j[i - 1], "ensure-held", "{j:?}");
        let _ = s;
    }
    assert_eq!(j.last().map(String::as_str), Some("release"), "{j:?}");
    assert!(w.view.asked.load(Ordering::SeqCst), "changes need approval");
    // A second run has nothing to do and asks nothing.
    let w2 = World {
        view: TestView {
            journal: w.journal.clone(),
            approve: false,
            asked: AtomicBool::new(false),
        },
        ..w
    };
    let f = run_plan(&w2, &options(), crate::plan::PlanMode::Normal).await;
    assert!(
        matches!(f.outcome, SessionOutcome::NothingToDo(_)),
        "{:?}",
        f.outcome
    );
    assert!(!w2.view.asked.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_lock_that_cannot_be_taken_stops_the_run_before_anything_is_read() {
    let w = world(true, false, Mode::Managed);
    let f = run_plan(&w, &options(), crate::plan::PlanMode::Normal).await;
    let SessionOutcome::LockFailed(d) = &f.outcome else {
        panic!("{:?}", f.outcome)
    };
    assert_eq!(d.iter().next().unwrap().code, "locked");
    let j = journal(&w);
    assert!(!j.iter().any(|s| s.starts_with("read")), "{j:?}");
    assert_eq!(
        j.last().map(String::as_str),
        Some("release"),
        "what was taken is given back: {j:?}"
    );
}

#[tokio::test]
async fn a_lost_lock_fails_the_change_and_stops_the_apply() {
    let w = world(false, true, Mode::Managed);
    let f = run_plan(&w, &options(), crate::plan::PlanMode::Normal).await;
    assert!(!f.outcome.is_success());
    let SessionOutcome::Applied { lost, report, .. } = &f.outcome else {
        panic!("{:?}", f.outcome)
    };
    assert_eq!(lost.as_ref().unwrap().code, "lock-lost");
    assert!(!report.is_success());
    assert!(
        w.provider.fake.calls_of("apply").is_empty(),
        "nothing was applied"
    );
    assert_eq!(journal(&w).last().map(String::as_str), Some("release"));
}

#[tokio::test]
async fn failed_checks_and_refused_approval_change_nothing() {
    let w = world(false, false, Mode::PlanCheck);
    let f = run_plan(&w, &options(), crate::plan::PlanMode::Normal).await;
    assert!(
        matches!(f.outcome, SessionOutcome::ChecksFailed(_)),
        "{:?}",
        f.outcome
    );
    assert!(
        !w.view.asked.load(Ordering::SeqCst),
        "a failing plan is not offered"
    );
    assert!(w.provider.fake.calls_of("apply").is_empty());

    let mut w = world(false, false, Mode::Managed);
    w.view.approve = false;
    let f = run_plan(&w, &options(), crate::plan::PlanMode::Normal).await;
    assert!(
        matches!(f.outcome, SessionOutcome::Refused(_)),
        "{:?}",
        f.outcome
    );
    assert!(w.provider.fake.calls_of("apply").is_empty());
    assert_eq!(journal(&w).last().map(String::as_str), Some("release"));
}

#[tokio::test]
async fn a_saved_plan_with_failed_checks_or_stale_state_is_refused() {
    let w = world(false, false, Mode::Managed);
    let source = Source::Plan {
        graph: &w.graph,
        options: PlanOptions {
            stack: "s".into(),
            ..Default::default()
        },
    };
    // Plan only (refuse), keep the plan, then change the live state under it.
    let mut refusing = world(false, false, Mode::Managed);
    refusing.view.approve = false;
    let f = run(&w.providers, source, &options(), &refusing.view).await;
    let SessionOutcome::Refused(plan) = f.outcome else {
        panic!("{:?}", f.outcome)
    };
    w.provider
        .fake
        .live
        .lock()
        .unwrap()
        .insert(Address::new(A, "one"), json!({"v": 7}));
    let f = run(
        &w.providers,
        Source::Saved(plan.clone()),
        &options(),
        &w.view,
    )
    .await;
    let SessionOutcome::Stale(_, stale) = &f.outcome else {
        panic!("{:?}", f.outcome)
    };
    assert_eq!(stale[0].address, Address::new(A, "one"));
    assert!(w.provider.fake.calls_of("apply").is_empty());

    let mut failing = plan;
    failing.checks.push(CheckResult {
        address: Address::new(B, "c"),
        status: CheckStatus::Fail,
        summary: "no".into(),
        fix: None,
        details: None,
        depends_on: Vec::new(),
        desired: None,
    });
    let before = journal(&w).len();
    let f = run(&w.providers, Source::Saved(failing), &options(), &w.view).await;
    assert!(
        matches!(f.outcome, SessionOutcome::ChecksFailed(_)),
        "{:?}",
        f.outcome
    );
    assert_eq!(journal(&w).len(), before, "not even locked");
}

#[tokio::test]
async fn unreachable_types_are_not_locked_read_or_changed_and_say_what_stays() {
    let w = world(false, false, Mode::Managed);
    // Apply first, so there is something to destroy.
    assert!(
        run_plan(&w, &options(), crate::plan::PlanMode::Normal)
            .await
            .outcome
            .is_success()
    );
    let opts = SessionOptions {
        unreachable: vec![B],
        ..options()
    };
    let before = journal(&w).len();
    let f = run_plan(&w, &opts, crate::plan::PlanMode::Destroy).await;
    assert!(f.outcome.is_success(), "{:?}", f.outcome);
    let j = journal(&w)[before..].to_vec();
    assert_eq!(j[0], "lock test.a.one", "{j:?}");
    assert!(
        !j.iter()
            .any(|s| s.contains("test.b.two") && !s.starts_with("planned")),
        "{j:?}"
    );
    assert!(j.contains(&"planned (1 warnings)".to_owned()), "{j:?}");
    assert!(j.contains(&"apply test.a.one".to_owned()), "{j:?}");
    assert!(
        w.provider
            .fake
            .live
            .lock()
            .unwrap()
            .contains_key(&Address::new(B, "two"))
    );
}
