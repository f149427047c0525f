//! A deployment of several replicas behind a router.
//!
//! Each replica is a whole [`Engine`] (its own KV cache, batch and clock) in
//! *fed* mode: it draws no arrivals. The cluster draws the scenario's arrival
//! stream once and, at each arrival, first brings every replica up to that
//! instant (all their events due before it), then asks the router where the
//! request goes, looking at the replicas' state as a real load balancer
//! would see it at that moment. The replicas run on after the last arrival
//! until every request has ended.
//!
//! Routing costs one pass over the replicas per arrival: O(replicas), with
//! nothing allocated per request beyond its record.

use std::collections::HashMap;

use super::guard::{Guard, Limits, Stopped};
use super::{Engine, RunOutput};
use crate::hardware::cost::CostModel;
use crate::metrics::{Collector, RequestRecord, TimelineRow, summarize};
use crate::rng::replica_seed;
use crate::scenario::Scenario;
use crate::scheduler::Router;
use crate::traffic::Lengths;
use crate::units::SimTime;

/// What a cluster run adds to a single engine's output.
#[derive(Clone, Debug, Default)]
pub struct ClusterOutput {
    /// The replica each request (in [`RunOutput::records`] order) went to.
    pub replica_of_request: Vec<u32>,
    /// The replica each timeline row (in [`RunOutput::timeline`] order) is of.
    pub replica_of_row: Vec<u32>,
    /// Each replica's own metrics.
    pub replicas: Vec<crate::metrics::Summary>,
}

/// The router's view and memory: where each shared prefix was last sent
/// (prefix-aware routing), and the round-robin cursor.
struct RouterState {
    policy: Router,
    next: usize,
    prefix_home: HashMap<u32, usize>,
}

/// How far above the least loaded replica a prefix's home may be before the
/// prefix-aware router sends the request elsewhere: cache affinity is worth
/// some queueing, not unbounded queueing (SGLang's router balances the same
/// way, with an absolute threshold on outstanding requests).
const PREFIX_IMBALANCE: usize = 8;

impl RouterState {
    fn pick<C: CostModel>(&mut self, replicas: &[Engine<'_, C>], lengths: &Lengths) -> usize {
        let least = |key: &dyn Fn(&Engine<'_, C>) -> u64| {
            // Ties go to the lowest index: deterministic.
            (0..replicas.len())
                .min_by_key(|&r| (key(&replicas[r]), r))
                .unwrap_or(0)
        };
        let least_outstanding = || least(&|e| e.outstanding() as u64);
        match self.policy {
            Router::RoundRobin => {
                let r = self.next % replicas.len();
                self.next = r + 1;
                r
            }
            Router::LeastOutstanding => least_outstanding(),
            Router::LeastKv => least(&|e| e.kv_allocated()),
            Router::PrefixAware => {
                let fallback = least_outstanding();
                let Some(prefix) = lengths.prefix else {
                    return fallback;
                };
                let chosen = match self.prefix_home.get(&prefix.id) {
                    Some(&home)
                        if replicas[home].outstanding()
                            <= replicas[fallback].outstanding() + PREFIX_IMBALANCE =>
                    {
                        home
                    }
                    _ => fallback,
                };
                self.prefix_home.insert(prefix.id, chosen);
                chosen
            }
        }
    }
}

/// Simulates `scenario` on its `hardware.replicas` replicas behind its router.
pub(super) fn simulate_cluster<C: CostModel + Clone>(
    scenario: &Scenario,
    seed: u64,
    cost: C,
    limits: &Limits,
) -> Result<RunOutput, Stopped> {
    let count = scenario.deployment.replicas.max(1) as usize;
    let mut replicas: Vec<Engine<'_, C>> = (0..count)
        .map(|r| {
            let cache = super::build_cache(scenario);
            // A replica's own draws (sample lengths of forks) come from a
            // stream of its own; the arrivals below are the cluster's.
            let traffic = scenario.traffic.instantiate(replica_seed(seed, r));
            let mut e = Engine::new(scenario, cache, cost.clone(), traffic);
            e.fed = true;
            e.guard = Guard::new(*limits);
            e.fast = super::fast::Fast::new(&e);
            e
        })
        .collect();
    let mut traffic = scenario.traffic.instantiate(seed);
    let mut router = RouterState {
        policy: scenario.deployment.router,
        next: 0,
        prefix_home: HashMap::new(),
    };
    let mut replica_of_request: Vec<u32> = Vec::new();
    let mut issued: u64 = 0;
    while let Some((at, lengths)) = traffic.next_arrival() {
        if !scenario.stop.admits(at, issued) {
            break;
        }
        for e in &mut replicas {
            e.advance(Some(at))?;
        }
        let r = router.pick(&replicas, &lengths);
        replicas[r].inject(at, lengths);
        replica_of_request.push(r as u32);
        issued += 1;
    }
    for e in &mut replicas {
        e.advance(None)?;
        super::guard::beyond_horizon(e.now.max(e.last_end))?;
        e.finish_run();
    }
    let end = replicas
        .iter()
        .map(|e| e.last_end)
        .max()
        .unwrap_or(SimTime::ZERO);
    // Records in global arrival order: the k-th arrival is the next record
    // of the replica it was routed to.
    let mut cursors = vec![0usize; count];
    let mut records: Vec<RequestRecord> = Vec::with_capacity(replica_of_request.len());
    for (k, &r) in replica_of_request.iter().enumerate() {
        let r = r as usize;
        let mut rec = replicas[r].records[cursors[r]];
        cursors[r] += 1;
        rec.id = k as u64;
        records.push(rec);
    }
    let summaries: Vec<_> = replicas
        .iter()
        .map(|e| summarize(scenario, &e.records, &e.stats, end))
        .collect();
    let mut timeline: Vec<TimelineRow> = Vec::new();
    let mut replica_of_row = Vec::new();
    for (r, e) in replicas.iter_mut().enumerate() {
        replica_of_row.extend(std::iter::repeat_n(r as u32, e.timeline.len()));
        timeline.append(&mut e.timeline);
    }
    let stats = Collector::merge_replicas(
        &replicas.iter().map(|e| e.stats.clone()).collect::<Vec<_>>(),
        end,
    );
    let summary = summarize(scenario, &records, &stats, end);
    Ok(RunOutput {
        records,
        timeline,
        summary,
        stats,
        cluster: Some(ClusterOutput {
            replica_of_request,
            replica_of_row,
            replicas: summaries,
        }),
    })
}
