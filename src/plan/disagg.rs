//! Plans of deployment shapes (`[plan] disaggregated = true`, or a `shape`
//! axis): each shape's highest sustainable rate by whole-deployment
//! simulation, bounded before any simulation by the roofline.
//!
//! # Bounds
//!
//! For a shape with prefill replicas `P` and decode replicas `D` (the same
//! replicas when colocated), mean prompt `p` and mean output `o` tokens
//! ([`crate::traffic::TrafficPlan::mean_lengths`]), and `t` the time of a
//! decode step of one sequence with nothing to read but the weights (the
//! fastest step a decode replica can take):
//!
//! - **prefill compute**: every prompt token goes once through the linear
//!   layers, `2 x active params` FLOPs at the prefill replica's effective
//!   rate, whatever the batching: `rate <= P / prefill_compute(p)`;
//! - **decode KV** (Little's law): a request holds the KV of its context
//!   (`p + i` tokens at its `i`-th decode step) through each of its `o - 1`
//!   decode steps, each at least `t`, and a decode replica holds at most its
//!   KV budget: `rate <= D x budget / (kv_per_token x ((o - 1) p + (o - 1)
//!   o / 2) x t)` (only for layouts whose bytes grow linearly with the
//!   context: no sliding windows, no recurrent state);
//! - **decode slots**: the same with `max_num_seqs` sequences per replica:
//!   `rate <= D x max_num_seqs / ((o - 1) x t)`.
//!
//! The least of the three is the shape's bound. They assume independent
//! prompt and output lengths and no shared prompt content, so they are not
//! used (no bound, nothing pruned) with paired or traced lengths, system
//! prompts, sessions or parallel samples. And `t` above the TPOT objective
//! makes a shape infeasible without a probe: every token after the first
//! takes at least one decode step.
//!
//! # Pruning
//!
//! The shapes of one mode (colocated or disaggregated) and one point of the
//! other candidate axes are searched one after another, highest bound
//! first; a shape whose bound is below the rate an earlier one sustained
//! cannot sustain more than it at the same GPU count (nor cost less for the
//! same load), so it is pruned, not simulated. Each search starts at the
//! lower of `plan.start_rate` (for the first shape; the best rate so far
//! for the others) and the shape's bound. The chains of different modes and
//! points run in parallel; the order within each is fixed, so the result
//! does not depend on the threads.

use std::path::Path;

use rayon::prelude::*;

use super::{
    CandidateResult, Evaluate, Plan, PlanRun, Pruned, SearchOptions, Stopped, prepare,
    search_and_size,
};
use crate::error::SpecError;
use crate::hardware::cost::{CostModel, RooflineCost, StepWork};
use crate::scenario::Scenario;

/// The roofline's upper bounds on the rate a deployment sustains, requests
/// per second (infinite where a bound does not apply).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Bounds {
    /// The prefill pool's compute.
    pub prefill: f64,
    /// The decode pool's KV memory.
    pub kv: f64,
    /// The decode pool's sequence slots.
    pub slots: f64,
    /// A decode step of one sequence that reads only the weights, seconds.
    pub decode_step_s: f64,
}

impl Bounds {
    /// The least of the bounds.
    pub fn rate(&self) -> f64 {
        self.prefill.min(self.kv).min(self.slots)
    }

    /// The bounds of deployment `s` (a disaggregated one's decode pool, its
    /// prefill pool in `s.disagg`; a colocated one's replicas do both).
    /// `None` when they do not apply (see the module documentation).
    pub fn of(s: &Scenario) -> Option<Bounds> {
        let t = &s.spec.traffic;
        if t.lengths.is_some() || t.prefix.is_some() || t.session.is_some() || t.n > 1 {
            return None;
        }
        let (prompt, output) = s.traffic.mean_lengths();
        let prefill_pool = s.disagg.as_ref().map_or(s, |d| &d.prefill);
        let pd = &prefill_pool.deployment;
        let p_cost = RooflineCost::new(&s.model, pd, &pd.efficiency);
        let per_token = p_cost
            .parts(&StepWork {
                prefill_tokens: 1,
                prefill_seqs: 1,
                ..StepWork::default()
            })
            .linear
            .compute;
        let p_replicas = f64::from(pd.replicas.max(1));
        let prefill = if per_token > 0.0 && prompt > 0.0 {
            p_replicas / (per_token * prompt)
        } else {
            f64::INFINITY
        };
        let d = &s.deployment;
        let d_cost = RooflineCost::new(&s.model, d, &d.efficiency);
        let step = d_cost
            .step_time(&StepWork {
                decode_tokens: 1,
                ..StepWork::default()
            })
            .as_secs_f64();
        let d_replicas = f64::from(d.replicas.max(1));
        let steps = (output - 1.0).max(0.0);
        let busy = steps * step;
        // Token-steps of KV a request holds while decoding: its context is
        // `p + i` at its i-th decode step, so sum (p + i) = (o - 1) p +
        // (o - 1) o / 2, whose mean is at least the same of the means
        // (E[o^2] >= E[o]^2, lengths independent).
        let token_steps = steps * prompt + steps * output / 2.0;
        let kv = if s.layout.is_linear() && busy > 0.0 {
            let bytes = s.layout.bytes_per_token() as f64;
            d_replicas * s.budget.kv_bytes as f64 / (bytes * token_steps * step)
        } else {
            f64::INFINITY
        };
        let slots = if busy > 0.0 {
            d_replicas * f64::from(s.scheduler.max_num_seqs) / busy
        } else {
            f64::INFINITY
        };
        Some(Bounds {
            prefill,
            kv,
            slots,
            decode_step_s: step,
        })
    }
}

/// Whether `e` says a shape's pool cannot hold the model or a request: the
/// weights do not fit a pool's GPUs at its TP, or one decode (prefill)
/// replica cannot receive (hold) the longest request. Such a shape is a
/// valid question with an infeasible answer.
pub fn shape_does_not_fit(e: &SpecError) -> bool {
    let pool_tp = [
        "deployment.prefill.hardware.tp",
        "deployment.decode.hardware.tp",
    ];
    let weights = pool_tp.contains(&e.key.as_str())
        && crate::hardware::budget::does_not_fit(&SpecError::new("hardware.tp", e.reason.clone()));
    let inherited = e.key == "hardware.tp"
        && crate::hardware::budget::does_not_fit(&SpecError::new("hardware.tp", e.reason.clone()));
    weights || inherited || e.key == "deployment.decode" || e.key == "deployment.prefill"
}

/// Plans every shape candidate of `plan`: builds each, bounds it, then runs
/// the chains of one mode and one point of the other axes in parallel,
/// each highest bound first with pruning (module documentation). With
/// `check`, every sized deployment is verified by simulation at the target
/// load, as [`super::run_plan`] does.
pub fn run_shapes(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &Evaluate<'_>,
    check: bool,
) -> PlanRun {
    let n = plan.candidates.len();
    // Build and bound every candidate (cheap: no simulation).
    let prepared: Vec<Result<(CandidateResult, Scenario), Box<CandidateResult>>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (mut result, built) = prepare(base, path, plan, i)?;
            result.bounds = Bounds::of(&built);
            if let (Some(b), Some(tpot)) = (result.bounds, plan.objectives.tpot_p99) {
                let (_, output) = built.traffic.mean_lengths();
                if b.decode_step_s > tpot && output > 1.0 {
                    result.error = Some(format!(
                        "a decode step of one sequence alone takes {:.1} ms on its decode \
                         replicas, above tpot_p99 <= {} ms",
                        b.decode_step_s * 1e3,
                        tpot * 1e3
                    ));
                    return Err(Box::new(result));
                }
            }
            Ok((result, built))
        })
        .collect();
    // The chains: candidates of one mode and one point of the other axes.
    let mut chains: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        let Ok((result, _)) = p else { continue };
        let mode = result.shape.map_or("", |s| s.mode());
        let others: Vec<String> = result
            .assignments
            .iter()
            .filter(|(k, _)| k != super::SHAPE)
            .map(|(k, v)| format!("{k}={}", crate::sweep::cell_of(v)))
            .collect();
        let key = format!("{mode} {}", others.join(" "));
        match chains.iter_mut().find(|c| c.0 == key) {
            Some(c) => c.1.push(i),
            None => chains.push((key, vec![i])),
        }
    }
    let bound = |i: usize| match &prepared[i] {
        Ok((r, _)) => r.bounds.map_or(f64::INFINITY, |b| b.rate()),
        Err(_) => f64::INFINITY,
    };
    for (_, members) in &mut chains {
        // Highest bound first; ties (and no bound) in grid order.
        members.sort_by(|&a, &b| bound(b).total_cmp(&bound(a)).then(a.cmp(&b)));
    }
    let searched: Vec<Vec<Result<CandidateResult, Stopped>>> = chains
        .par_iter()
        .map(|(_, members)| {
            let mut best: Option<(f64, super::Shape)> = None;
            let mut out = Vec::with_capacity(members.len());
            for &i in members {
                let Ok((result, built)) = &prepared[i] else {
                    continue;
                };
                let mut result = result.clone();
                let b = bound(i);
                if let (Some((rate, by)), Some(_)) = (best, result.shape) {
                    if b < rate {
                        result.pruned = Some(Pruned { bound: b, by, rate });
                        out.push(Ok(result));
                        continue;
                    }
                }
                let start = best.map_or(plan.search.start_rate, |(r, _)| r).min(b);
                let opts = SearchOptions {
                    start_rate: start.clamp(plan.search.min_rate, plan.search.max_rate),
                    ..plan.search
                };
                let shape = result.shape;
                let done = search_and_size(base, path, plan, evaluate, result, built, &opts, check);
                if let Ok(r) = &done {
                    let rate = r
                        .search
                        .as_ref()
                        .and_then(|s| s.best.as_ref())
                        .map(|p| p.rate);
                    if let (Some(rate), Some(shape)) = (rate, shape) {
                        if best.is_none_or(|(b, _)| rate > b) {
                            best = Some((rate, shape));
                        }
                    }
                }
                let stop = done.is_err();
                out.push(done);
                if stop {
                    break;
                }
            }
            out
        })
        .collect();
    let mut slots: Vec<Option<Result<CandidateResult, Stopped>>> = (0..n).map(|_| None).collect();
    for (i, p) in prepared.into_iter().enumerate() {
        if let Err(result) = p {
            slots[i] = Some(Ok(*result));
        }
    }
    let mut interrupted = false;
    for r in searched.into_iter().flatten() {
        match r {
            Ok(result) => {
                let i = result.index;
                slots[i] = Some(Ok(result));
            }
            Err(Stopped) => interrupted = true,
        }
    }
    // A chain stopped part-way leaves its later candidates unplanned.
    interrupted |= slots.iter().any(Option::is_none);
    PlanRun {
        finished: slots.into_iter().flatten().flatten().collect(),
        interrupted,
    }
}
