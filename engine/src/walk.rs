//! A generic, concurrent walk over a dependency graph.
//!
//! Every node runs once all its dependencies have succeeded; at most `parallelism` nodes run at
//! once. A failed node skips its dependents (transitively) and nothing else, and they are
//! reported as skipped, not failed, so an error is told once. When the cancellation token fires,
//! no new node starts; nodes in flight finish (they get the token too, to cut long waits short),
//! and everything not started is reported as skipped.
//!
//! The walk knows nothing of resources: the planner and the executor give it meaning.

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::VecDeque;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// How to walk.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// The most nodes running at once (at least 1).
    pub parallelism: usize,
    /// Stops new work from starting.
    pub cancel: CancellationToken,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            parallelism: 10,
            cancel: CancellationToken::new(),
        }
    }
}

/// Why a node did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A dependency (the index given) failed or was skipped for failing.
    DependencyFailed(usize),
    /// The walk was cancelled before the node could start.
    Cancelled,
}

/// What became of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, E> {
    /// It ran and succeeded.
    Done(T),
    /// It ran and failed.
    Failed(E),
    /// It did not run.
    Skipped(Skip),
}

/// Walks nodes `0..deps.len()`, where `deps[i]` lists the nodes `i` depends on, calling `run`
/// for each. Returns one outcome per node, by index.
pub async fn walk<T, E, F, Fut>(
    deps: &[Vec<usize>],
    opts: &WalkOptions,
    mut run: F,
) -> Vec<Outcome<T, E>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let n = deps.len();
    let mut dependents = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if d < n && d != i {
                dependents[d].push(i);
                waiting[i] += 1;
            }
        }
    }
    let mut outcomes: Vec<Option<Outcome<T, E>>> = (0..n).map(|_| None).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut in_flight = FuturesUnordered::new();
    let limit = opts.parallelism.max(1);

    loop {
        while in_flight.len() < limit && !opts.cancel.is_cancelled() {
            let Some(i) = ready.pop_front() else { break };
            if outcomes[i].is_some() {
                continue;
            }
            let fut = run(i);
            in_flight.push(async move { (i, fut.await) });
        }
        let Some((i, result)) = in_flight.next().await else {
            break;
        };
        match result {
            Ok(v) => {
                outcomes[i] = Some(Outcome::Done(v));
                for &d in &dependents[i] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 && outcomes[d].is_none() {
                        ready.push_back(d);
                    }
                }
            }
            Err(e) => {
                outcomes[i] = Some(Outcome::Failed(e));
                let mut stack = dependents[i].clone();
                while let Some(d) = stack.pop() {
                    if outcomes[d].is_none() {
                        outcomes[d] = Some(Outcome::Skipped(Skip::DependencyFailed(i)));
                        stack.extend(dependents[d].iter().copied());
                    }
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Skipped(Skip::Cancelled)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn honours_the_parallel_bound() {
        let deps: Vec<Vec<usize>> = vec![Vec::new(); 20];
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let opts = WalkOptions {
            parallelism: 3,
            ..Default::default()
        };
        let out = walk(&deps, &opts, |_| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ()>(())
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert!(out.iter().all(|o| *o == Outcome::Done(())));
    }

    #[tokio::test]
    async fn failure_skips_dependents_only() {
        // 0 -> 1 -> 2 ; 0 -> 3 ; 4 independent
        let deps = vec![vec![], vec![0], vec![1], vec![0], vec![]];
        let out = walk(&deps, &WalkOptions::default(), |i| async move {
            if i == 1 { Err("boom") } else { Ok(i) }
        })
        .await;
        assert_eq!(out[0], Outcome::Done(0));
        assert_eq!(out[1], Outcome::Failed("boom"));
        assert_eq!(out[2], Outcome::Skipped(Skip::DependencyFailed(1)));
        assert_eq!(out[3], Outcome::Done(3));
        assert_eq!(out[4], Outcome::Done(4));
    }

    #[tokio::test]
    async fn runs_after_dependencies() {
        let deps = vec![vec![2], vec![0], vec![]];
        let order = std::sync::Mutex::new(Vec::new());
        walk(&deps, &WalkOptions::default(), |i| {
            order.lock().unwrap().push(i);
            async move { Ok::<_, ()>(()) }
        })
        .await;
        assert_eq!(*order.lock().unwrap(), vec![2, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_new_work_and_lets_running_work_finish() {
        let deps: Vec<Vec<usize>> = vec![vec![], vec![], vec![0], vec![1]];
        let cancel = CancellationToken::new();
        let opts = WalkOptions {
            parallelism: 2,
            cancel: cancel.clone(),
        };
        let out = walk(&deps, &opts, |i| {
            let cancel = cancel.clone();
            async move {
                if i == 0 {
                    cancel.cancel();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok::<_, ()>(i)
            }
        })
        .await;
        assert_eq!(out[0], Outcome::Done(0), "in-flight work finishes");
        assert_eq!(out[1], Outcome::Done(1), "in-flight work finishes");
        assert_eq!(out[2], Outcome::Skipped(Skip::Cancelled));
        assert_eq!(out[3], Outcome::Skipped(Skip::Cancelled));
    }
}
