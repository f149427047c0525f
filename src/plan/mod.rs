//! Capacity planning (`kvsim plan`): for each candidate deployment, the highest
//! arrival rate one replica sustains within the SLOs, then the replicas, GPUs
//! and dollars the scenario's target load needs.
//!
//! # The search
//!
//! A *probe* runs the scenario at one arrival rate, `replicates` times on the
//! sweep's replicate seeds, and passes when every replicate meets every
//! objective (TTFT, TPOT and end-to-end p99, and the OOM rate). The same seeds
//! at every rate are common random numbers: a Poisson stream at rate `2r` is
//! the stream at `r` with its clock halved, so probes differ by load, not by
//! dice, and the pass/fail boundary is sharp. The search brackets from
//! `start_rate` (doubling while probes pass, halving while they fail), then
//! bisects until the bracket is narrower than `precision` of its lower end.
//! The answer is the highest rate that passed: a lower bound on capacity, so a
//! plan never promises what a probe did not show.
//!
//! Overload has to be visible: a run whose arrivals outpace the server only
//! shows it as queueing delay, so a plan needs a TTFT or end-to-end objective
//! (a TPOT bound alone would call any rate sustainable).
//!
//! # Replicas and cost
//!
//! `replicas = ceil(target_rate / rate)`: a load balancer that splits a
//! Poisson stream evenly gives each replica a Poisson stream of
//! `target_rate / replicas <= rate`. GPU count is `replicas x tp`; dollars per
//! hour come from the catalog's on-demand prices (or `[plan.prices]`), plus the
//! KV tiers' host memory and SSD per GB-hour (see [`TierPrices`]); dollars per
//! million output tokens divide that by the output tokens the target load
//! produces in an hour.
//!
//! # Candidates
//!
//! `[plan.candidates]` is a grid of dotted scenario keys, as `[sweep]`, and
//! four keys of its own: `host_gb` and `ssd_gb` (the size of that kind's
//! `[[cache.tiers]]` entry, per replica; 0: no such tier), `router`
//! (`hardware.router`) and `shape` (a whole deployment, see below), see
//! [`apply_candidate`].
//!
//! # Deployment shapes and disaggregation
//!
//! A candidate with a `shape` (`"2xTP4"`: two colocated replicas of four
//! GPUs; `"2xTP2 + 1xTP4"`: two prefill replicas of two GPUs and one decode
//! replica of four, `[deployment] mode = "disaggregated"`) is planned as a
//! whole: the *replica* of the search above is then the whole deployment,
//! whose highest sustainable rate is found by simulating all its replicas
//! (both pools, the KV transfers between them), and the target load is met
//! with copies of it (`replicas` in `plan.csv`). `[plan] disaggregated =
//! true` makes the shapes an axis of their own: every colocated and every
//! prefill/decode split of `plan.gpus` GPUs over the `plan.tp` degrees
//! ([`shapes_of`]), all compared at the same GPU count and the same
//! objectives, ranked by cost. The search is bounded before any simulation
//! ([`disagg`]): shapes whose pools cannot hold the model or receive the
//! longest request are infeasible at load time, shapes whose decode step
//! alone breaks the TPOT objective are infeasible without a probe, and a
//! shape whose roofline upper bound on its rate is below the rate another
//! shape of its mode already sustained is pruned, not simulated.

pub mod crossover;
pub mod disagg;
mod report;
mod report_shapes;
mod shape;
mod tiers;

pub use disagg::Bounds;
pub use report::{CostPoint, cost_figure, plan_csv, plan_figure, plan_table, series_detail};
pub use shape::{COLOCATED, DISAGGREGATED, Group, SHAPE, Shape, shapes_of};
pub use tiers::{
    HOST_GB, HOST_GB_HOUR, HOST_PRICE_KEY, ROUTER, SSD_GB, SSD_GB_HOUR, SSD_PRICE_KEY, TierCost,
    TierPrices, apply_candidate, set_tier,
};

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::engine::simulate_summary;
use crate::error::{Error, SpecError};
use crate::hardware::cost::RooflineCost;
use crate::metrics::Summary;
use crate::scenario::{Scenario, apply_override};
use crate::sweep::{Assignments, Grid, replicate_seed};

pub use crate::scenario::commands::PlanSpec;

/// The objectives a probe must meet.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Objectives {
    /// TTFT p99, seconds.
    pub ttft_p99: Option<f64>,
    /// TPOT p99, seconds.
    pub tpot_p99: Option<f64>,
    /// End-to-end latency p99, seconds.
    pub e2e_p99: Option<f64>,
    /// OOM rate (fraction of requests).
    pub oom_rate: f64,
}

impl Objectives {
    /// How far `m` is from meeting the objectives: the largest ratio of a
    /// metric to its bound (at most 1 when every objective is met), and that
    /// metric's name. A latency the run could not measure (no request
    /// finished) is infinitely far.
    pub fn excess(&self, m: &Summary) -> (f64, &'static str) {
        let mut worst = (0.0_f64, "none");
        let mut consider = |value: Option<f64>, bound: Option<f64>, name: &'static str| {
            if let Some(b) = bound {
                let r = match value {
                    Some(v) if b > 0.0 => v / b,
                    Some(v) if v <= 0.0 => 0.0,
                    _ => f64::INFINITY,
                };
                if r > worst.0 {
                    worst = (r, name);
                }
            }
        };
        consider(m.ttft_p99, self.ttft_p99, "ttft_p99");
        consider(m.tpot_p99, self.tpot_p99, "tpot_p99");
        consider(m.e2e_p99, self.e2e_p99, "e2e_p99");
        // A zero OOM bound: any OOM is a miss, by more the more requests fail.
        let oom = if self.oom_rate > 0.0 {
            m.oom_rate / self.oom_rate
        } else if m.oom_rate > 0.0 {
            1.0 + m.oom_rate
        } else {
            0.0
        };
        if oom > worst.0 {
            worst = (oom, "oom_rate");
        }
        worst
    }

    /// Whether `m` meets every objective.
    pub fn met_by(&self, m: &Summary) -> bool {
        self.excess(m).0 <= 1.0
    }

    /// The objectives as people read them: `ttft_p99 <= 2 s`, `tpot_p99 <=
    /// 50 ms`, `oom_rate <= 0.01`.
    pub fn describe(&self) -> Vec<String> {
        [
            self.ttft_p99.map(|v| format!("ttft_p99 <= {v} s")),
            self.tpot_p99.map(|v| format!("tpot_p99 <= {} ms", v * 1e3)),
            self.e2e_p99.map(|v| format!("e2e_p99 <= {v} s")),
            Some(format!("oom_rate <= {}", self.oom_rate)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Sets objectives from `--slo ttft_p99=2,tpot_p99=0.05,oom_rate=0.01`.
    pub fn apply_cli(&mut self, text: &str) -> Result<(), Error> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "--slo `{part}`: expected NAME=VALUE, e.g. ttft_p99=2 (seconds)"
                ))
            })?;
            let v: f64 = value
                .trim()
                .parse()
                .map_err(|_| Error::Usage(format!("--slo {key}: `{value}` is not a number")))?;
            // The latencies have the range of `[slo]`'s keys.
            let latency = |v: f64| {
                crate::ranges::LATENCY_S
                    .check(&format!("--slo {}", key.trim()), v)
                    .map_err(|e| Error::Usage(e.to_string()))
            };
            match key.trim() {
                "ttft_p99" => self.ttft_p99 = Some(latency(v)?),
                "tpot_p99" => self.tpot_p99 = Some(latency(v)?),
                "e2e_p99" => self.e2e_p99 = Some(latency(v)?),
                "oom_rate" => {
                    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                        return Err(Error::Usage(format!(
                            "--slo oom_rate: {v} must be a fraction in [0, 1]"
                        )));
                    }
                    self.oom_rate = v;
                }
                other => {
                    return Err(Error::Usage(format!(
                        "--slo: unknown objective `{other}` (expected ttft_p99, tpot_p99, e2e_p99 \
                         or oom_rate)"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A validated `[plan]`.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Requests per second the deployment must serve.
    pub target_rate: f64,
    /// What every probe must meet.
    pub objectives: Objectives,
    /// Search knobs.
    pub search: SearchOptions,
    /// Runs per probe.
    pub replicates: u32,
    /// The candidate grid.
    pub candidates: Grid,
    /// USD per GPU-hour overrides by GPU name.
    pub prices: BTreeMap<String, f64>,
    /// USD per GB-hour of host memory and SSD (`[plan.prices]`
    /// `host_gb_hour` and `ssd_gb_hour`, or the cited defaults).
    pub tier_prices: TierPrices,
    /// The shortest span of arrivals a probe may have, seconds: the
    /// tightest TTFT or end-to-end objective over the precision (see
    /// [`probe_at`]).
    pub window_s: f64,
    /// Whether the candidates are deployment shapes (a `shape` axis, given
    /// or made by `disaggregated`): each is planned as a whole deployment.
    pub by_shape: bool,
    /// `[plan] disaggregated = true`: the GPU count every shape has.
    pub gpus: Option<u32>,
}

/// Most shapes a disaggregated plan may generate.
pub const MAX_SHAPES: usize = 256;

/// Candidate keys a shape sets itself, refused beside one.
const SHAPE_KEYS: [&str; 7] = [
    "hardware.tp",
    "hardware.replicas",
    "deployment.mode",
    "deployment.prefill.hardware.tp",
    "deployment.prefill.hardware.replicas",
    "deployment.decode.hardware.tp",
    "deployment.decode.hardware.replicas",
];

/// Most arrivals one probe may have when kvsim lengthens it to reach a
/// steady state (a scenario's own `requests` may be larger): a rate that
/// would need more is not probed, and the rate below it is reported as a
/// floor.
pub const MAX_PROBE_ARRIVALS: f64 = 1e6;

/// A probe that passes must span at least this many of its median
/// end-to-end latencies of arrivals: a shorter one ends before the batch
/// and the KV cache fill up to their steady level.
pub const STEADY_SPANS: f64 = 10.0;

/// Times a probe is lengthened before it is declared unable to reach a
/// steady state.
const STEADY_TRIES: u32 = 4;

/// Bisection steps at most: from a factor-of-two bracket, 0.1 % takes ten.
const MAX_BISECTIONS: u32 = 60;

/// How the rate search brackets and bisects.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// First rate probed.
    pub start_rate: f64,
    /// Highest rate probed.
    pub max_rate: f64,
    /// Lowest rate probed before a candidate is declared infeasible.
    pub min_rate: f64,
    /// Relative bracket width at which bisection stops.
    pub precision: f64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            start_rate: 1.0,
            max_rate: 1e5,
            min_rate: 1e-4,
            precision: 0.05,
        }
    }
}

fn spec_error(path: &Path, key: &str, reason: impl Into<String>) -> Error {
    Error::Scenario {
        path: path.to_path_buf(),
        source: SpecError::new(key, reason),
    }
}

impl Plan {
    /// The plan of scenario table `base` (read from `path`, `--set` applied),
    /// with `slo_override` (the `--slo` flag) over the scenario's `[slo]`.
    pub fn from_table(
        base: &toml::Table,
        path: &Path,
        slo_override: Option<&str>,
    ) -> Result<Plan, Error> {
        // The scenario itself must be valid (this also validates `[plan]`).
        let scenario = Scenario::from_table(base.clone(), path)?;
        let spec = scenario.spec.plan.clone().ok_or_else(|| {
            spec_error(
                path,
                "plan",
                "missing: `kvsim plan` needs a [plan] table with at least target_rate",
            )
        })?;
        // Rates: the physical range of arrival rates (docs/ranges.md).
        let rate = |key: &str, v: f64| {
            crate::ranges::RATE
                .check(&format!("plan.{key}"), v)
                .map_err(|source| Error::Scenario {
                    path: path.to_path_buf(),
                    source,
                })
        };
        let target_rate = rate(
            "target_rate",
            spec.target_rate.ok_or_else(|| {
                spec_error(
                    path,
                    "plan.target_rate",
                    "missing: the requests per second the deployment must serve",
                )
            })?,
        )?;
        let oom_rate = spec.oom_rate.unwrap_or(0.0);
        if !(oom_rate.is_finite() && (0.0..=1.0).contains(&oom_rate)) {
            return Err(spec_error(
                path,
                "plan.oom_rate",
                format!(
                    "must be a fraction in [0, 1], got {}",
                    crate::ranges::number(oom_rate)
                ),
            ));
        }
        let in_range = |range: &crate::ranges::Range, key: &str, v: f64| {
            range.check(key, v).map_err(|source| Error::Scenario {
                path: path.to_path_buf(),
                source,
            })
        };
        let precision = in_range(
            &crate::ranges::PLAN_PRECISION,
            "plan.precision",
            spec.precision.unwrap_or(0.05),
        )?;
        let search = SearchOptions {
            start_rate: rate("start_rate", spec.start_rate.unwrap_or(1.0))?,
            max_rate: rate("max_rate", spec.max_rate.unwrap_or(1e5))?,
            min_rate: 1e-4,
            precision,
        };
        if search.start_rate > search.max_rate {
            return Err(spec_error(
                path,
                "plan.start_rate",
                format!(
                    "{} exceeds plan.max_rate ({})",
                    search.start_rate, search.max_rate
                ),
            ));
        }
        let replicates = spec.replicates.unwrap_or(3);
        in_range(
            &crate::ranges::PLAN_REPLICATES,
            "plan.replicates",
            f64::from(replicates),
        )?;
        let mut gpu_prices = spec.prices.clone();
        let mut tier_prices = TierPrices::default();
        for (key, slot) in [
            (HOST_PRICE_KEY, &mut tier_prices.host_gb_hour),
            (SSD_PRICE_KEY, &mut tier_prices.ssd_gb_hour),
        ] {
            if let Some(price) = gpu_prices.remove(key) {
                *slot = in_range(
                    &crate::ranges::PRICE_PER_GB_HOUR,
                    &format!("plan.prices.{key}"),
                    price,
                )?;
            }
        }
        for (gpu, price) in &gpu_prices {
            in_range(
                &crate::ranges::PRICE_PER_HOUR,
                &format!("plan.prices.\"{gpu}\""),
                *price,
            )?;
        }
        let mut objectives = Objectives {
            ttft_p99: scenario.slo.ttft,
            tpot_p99: scenario.slo.tpot,
            e2e_p99: scenario.slo.e2e,
            oom_rate,
        };
        if let Some(text) = slo_override {
            objectives.apply_cli(text)?;
        }
        if objectives.ttft_p99.is_none() && objectives.e2e_p99.is_none() {
            return Err(spec_error(
                path,
                "slo.ttft_p99",
                "a plan needs a TTFT or end-to-end objective ([slo] ttft_p99 or e2e_p99, or \
                 --slo ttft_p99=...): overload shows only as queueing delay, so without one \
                 every rate would look sustainable",
            ));
        }
        use crate::traffic::ArrivalSpec;
        match scenario.spec.traffic.arrival {
            ArrivalSpec::Poisson { .. }
            | ArrivalSpec::Gamma { .. }
            | ArrivalSpec::Constant { .. } => {}
            _ => {
                return Err(spec_error(
                    path,
                    "traffic.arrival",
                    "a plan varies the arrival rate: use an open-loop arrival with a `rate` \
                     (poisson, gamma or constant)",
                ));
            }
        }
        let (candidate_table, by_shape, shape_gpus) = shape_axis(&spec, &scenario, path)?;
        let candidates = Grid::from_table(&candidate_table).map_err(|mut e| {
            e.key = format!("plan.candidates.{}", e.key.trim_start_matches("sweep."));
            Error::Scenario {
                path: path.to_path_buf(),
                source: e,
            }
        })?;
        // Every candidate must be a valid scenario before any probe runs; a
        // model that does not fit a candidate's memory is a valid question
        // with an infeasible answer, reported in the table.
        let mut gpus: Vec<String> = crate::catalog::gpus()
            .into_iter()
            .map(|e| e.gpu.name)
            .collect();
        for i in 0..candidates.len() {
            let point = candidates.point(i);
            match scaled_scenario(by_shape, base, path, &point, None, 1, 0.0) {
                Ok(s) => {
                    gpus.push(s.deployment.gpu.name.clone());
                    if let Some(d) = &s.disagg {
                        gpus.push(d.prefill.deployment.gpu.name.clone());
                    }
                }
                Err(Error::Scenario { source, .. })
                    if crate::hardware::budget::does_not_fit(&source)
                        || (by_shape && disagg::shape_does_not_fit(&source)) => {}
                Err(e) => {
                    let reason = match e {
                        Error::Scenario { source, .. } => source.to_string(),
                        other => other.to_string(),
                    };
                    return Err(spec_error(
                        path,
                        "plan.candidates",
                        format!(
                            "candidate {} of {} ({}) is not a valid scenario: {reason}",
                            i + 1,
                            candidates.len(),
                            describe(&point)
                        ),
                    ));
                }
            }
        }
        for gpu in gpu_prices.keys() {
            if !gpus.contains(gpu) {
                let closest = gpus
                    .iter()
                    .map(String::as_str)
                    .chain([HOST_PRICE_KEY, SSD_PRICE_KEY])
                    .min_by_key(|g| edit_distance(g, gpu))
                    .filter(|g| edit_distance(g, gpu) <= 3)
                    .map(|g| format!("did you mean `{g}`? "))
                    .unwrap_or_default();
                gpus.sort();
                gpus.dedup();
                return Err(spec_error(
                    path,
                    &format!("plan.prices.\"{gpu}\""),
                    format!(
                        "no GPU `{gpu}` in the catalog or among the candidates, so this price \
                         would price nothing; {closest}known: {} (and {HOST_PRICE_KEY}, \
                         {SSD_PRICE_KEY}: USD per GB-hour of host memory and SSD)",
                        gpus.join(", ")
                    ),
                ));
            }
        }
        // A replica overloaded by `precision` builds a queue whose delay
        // grows by `precision` seconds a second: over this window it reaches
        // the tightest queueing objective, so the probe fails.
        let tightest = [objectives.ttft_p99, objectives.e2e_p99]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let window_s = tightest / precision;
        Ok(Plan {
            target_rate,
            objectives,
            search,
            replicates,
            candidates,
            prices: gpu_prices,
            tier_prices,
            window_s,
            by_shape,
            gpus: shape_gpus,
        })
    }
}

/// The candidate axes of `spec` with the `shape` axis of a disaggregated
/// plan added (every shape of `plan.gpus` GPUs over the `plan.tp` degrees),
/// whether the candidates are shapes, and the disaggregated plan's GPU
/// count; refuses the keys a shape sets beside a `shape` axis.
fn shape_axis(
    spec: &PlanSpec,
    scenario: &Scenario,
    path: &Path,
) -> Result<(toml::Table, bool, Option<u32>), Error> {
    let mut table = spec.candidates.clone();
    let disaggregated = spec.disaggregated.unwrap_or(false);
    let mut gpus = None;
    if disaggregated {
        if table.contains_key(SHAPE) {
            return Err(spec_error(
                path,
                "plan.candidates.shape",
                "a disaggregated plan makes the shapes itself from plan.gpus and plan.tp: \
                 remove `shape`, or `disaggregated` to plan the shapes listed",
            ));
        }
        let own = match &scenario.disagg {
            Some(d) => {
                d.prefill_gpus()
                    + u64::from(scenario.deployment.tp)
                        * u64::from(scenario.deployment.replicas.max(1))
            }
            None => {
                u64::from(scenario.deployment.tp) * u64::from(scenario.deployment.replicas.max(1))
            }
        };
        let n = spec
            .gpus
            .unwrap_or_else(|| u32::try_from(own).unwrap_or(u32::MAX));
        if !(1..=4096).contains(&n) {
            return Err(spec_error(
                path,
                "plan.gpus",
                format!("must be a GPU count in [1, 4096], got {n}"),
            ));
        }
        let tps = spec.tp.clone().unwrap_or_else(|| vec![1, 2, 4, 8]);
        if tps.is_empty() || tps.iter().any(|t| !(1..=n).contains(t)) {
            return Err(spec_error(
                path,
                "plan.tp",
                format!(
                    "must be a non-empty list of tensor-parallel degrees in [1, plan.gpus = \
                     {n}], got {tps:?}"
                ),
            ));
        }
        let shapes = shapes_of(n, &tps);
        if shapes.is_empty() {
            return Err(spec_error(
                path,
                "plan.tp",
                format!("no deployment of exactly {n} GPUs has tensor-parallel degrees {tps:?}"),
            ));
        }
        if shapes.len() > MAX_SHAPES {
            return Err(spec_error(
                path,
                "plan.gpus",
                format!(
                    "{n} GPUs over tp {tps:?} make {} shapes, more than the {MAX_SHAPES} a plan \
                     searches: lower plan.gpus or give fewer plan.tp degrees",
                    shapes.len()
                ),
            ));
        }
        table.insert(
            SHAPE.into(),
            toml::Value::Array(
                shapes
                    .iter()
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
        );
        gpus = Some(n);
    } else {
        for key in ["gpus", "tp"] {
            let set = match key {
                "gpus" => spec.gpus.is_some(),
                _ => spec.tp.is_some(),
            };
            if set {
                return Err(spec_error(
                    path,
                    &format!("plan.{key}"),
                    "applies to a disaggregated plan only: set `plan.disaggregated = true`",
                ));
            }
        }
    }
    let by_shape = table.contains_key(SHAPE);
    if by_shape {
        if let Some(toml::Value::Array(values)) = table.get(SHAPE) {
            for v in values {
                let parsed = match v {
                    toml::Value::String(text) => Shape::parse(text),
                    other => Err(format!(
                        "must be deployment shapes such as \"2xTP4\" or \"2xTP2 + 1xTP4\", got \
                         the {} {}",
                        other.type_str(),
                        crate::sweep::cell_of(other)
                    )),
                };
                parsed.map_err(|reason| spec_error(path, "plan.candidates.shape", reason))?;
            }
        }
        if let Some(key) = SHAPE_KEYS.iter().find(|k| table.contains_key(**k)) {
            return Err(spec_error(
                path,
                &format!("plan.candidates.\"{key}\""),
                "a deployment shape sets the tensor-parallel degree, the replicas and the mode \
                 itself: give the shapes you want in `shape` (or plan.tp) instead",
            ));
        }
    }
    Ok((table, by_shape, gpus))
}

impl Plan {
    /// The largest simulations the plan may run, for a memory estimate
    /// before it starts: for every candidate that builds, its first probe
    /// (the scenario's own length), a probe of [`MAX_PROBE_ARRIVALS`]
    /// arrivals at the rate whose window that fills (for a scenario that
    /// stops after `requests`), and the
    /// whole-deployment check at the most replicas it simulates.
    pub fn largest_probes(&self, base: &toml::Table, path: &Path) -> Vec<Scenario> {
        let longest_rate = (MAX_PROBE_ARRIVALS / self.window_s)
            .min(self.search.max_rate)
            .max(self.search.min_rate);
        let mut out = Vec::new();
        for i in 0..self.candidates.len() {
            let point = self.candidates.point(i);
            // A probe that stops after a request count is lengthened up to
            // the arrival cap; one that stops after `duration_s` keeps its
            // duration (past the window), so its first probe sizes it.
            let by_shape = self.by_shape;
            let lengthened = base.contains_key("requests").then(|| {
                scaled_scenario(
                    by_shape,
                    base,
                    path,
                    &point,
                    Some(longest_rate),
                    1,
                    self.window_s,
                )
            });
            let probes = [
                scaled_scenario(
                    by_shape,
                    base,
                    path,
                    &point,
                    Some(self.search.start_rate),
                    1,
                    0.0,
                ),
                lengthened.unwrap_or_else(|| Err(Error::Usage(String::new()))),
                scaled_scenario(
                    by_shape,
                    base,
                    path,
                    &point,
                    Some(self.target_rate),
                    self.max_scale(&point),
                    0.0,
                ),
            ];
            out.extend(probes.into_iter().flatten());
        }
        out
    }

    /// The most replicas (copies of a shape) the whole-deployment check of
    /// candidate `point` simulates: [`MAX_VERIFIED_REPLICAS`] replicas in all.
    fn max_scale(&self, point: &[(String, toml::Value)]) -> u64 {
        match shape_of(point) {
            Some(shape) => {
                let replicas = match shape {
                    Shape::Colocated(g) => u64::from(g.replicas),
                    Shape::Disaggregated { prefill, decode } => {
                        u64::from(prefill.replicas) + u64::from(decode.replicas)
                    }
                };
                (MAX_VERIFIED_REPLICAS / replicas.max(1)).max(1)
            }
            None => MAX_VERIFIED_REPLICAS,
        }
    }
}

/// The shape candidate `point` sets, if any.
pub fn shape_of(point: &[(String, toml::Value)]) -> Option<Shape> {
    point
        .iter()
        .find(|(k, _)| k == SHAPE)
        .and_then(|(_, v)| v.as_str())
        .and_then(|t| Shape::parse(t).ok())
}

/// A candidate's assignments as `key=value, ...` (TOML keys and values).
fn describe(point: &[(String, toml::Value)]) -> String {
    if point.is_empty() {
        return "the scenario itself".into();
    }
    point
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::sweep::cell_of(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Levenshtein distance, for suggesting a misspelt name.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// One probe: the rate and whether (and by how much) it met the objectives.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Requests per second offered to one replica.
    pub rate: f64,
    /// Largest metric-to-objective ratio over the replicates (<= 1: passed).
    pub excess: f64,
    /// The metric behind `excess`.
    pub worst: &'static str,
    /// One summary per replicate.
    pub runs: Vec<Summary>,
    /// Seconds of arrivals the probe spanned.
    pub span_s: f64,
    /// Whether the probe could not be made long enough to reach a steady
    /// state (it would need more than [`MAX_PROBE_ARRIVALS`] arrivals): it
    /// does not pass, whatever its metrics.
    pub unsteady: bool,
}

impl Probe {
    /// Whether every replicate met every objective in a steady state.
    pub fn passed(&self) -> bool {
        self.excess <= 1.0 && !self.unsteady
    }

    /// A failed probe that was not (or not fully) run: `worst` says why.
    pub fn failed(rate: f64, worst: &'static str) -> Probe {
        Probe {
            rate,
            excess: f64::INFINITY,
            worst,
            runs: Vec::new(),
            span_s: 0.0,
            unsteady: false,
        }
    }
}

/// What the rate search found.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// The highest rate that passed, with its runs (`None`: none passed).
    pub best: Option<Probe>,
    /// The probe that came closest without passing (the lowest failing rate).
    pub nearest_miss: Option<Probe>,
    /// Whether the best rate is only a floor (it passed at `max_rate`).
    pub capped: bool,
    /// Probes run.
    pub probes: u32,
}

impl SearchResult {
    /// Whether the best rate is only a lower bound on capacity: it passed at
    /// `max_rate`, or the next rate up could not be probed long enough to
    /// reach a steady state.
    pub fn is_floor(&self) -> bool {
        self.capped || self.nearest_miss.as_ref().is_some_and(|p| p.unsteady)
    }
}

/// Finds the highest rate at which `probe` passes: brackets from
/// `opts.start_rate` by doubling or halving, then bisects to `opts.precision`.
///
/// `probe` is assumed monotone (passing at `r` implies passing below `r`);
/// where noise breaks that, the answer is still a rate that passed.
pub fn search_rate(opts: &SearchOptions, mut probe: impl FnMut(f64) -> Probe) -> SearchResult {
    let mut probes = 0u32;
    let mut run = |r: f64| {
        probes += 1;
        probe(r)
    };
    let first = run(opts.start_rate);
    let (mut lo, mut hi): (Option<Probe>, Option<Probe>) = if first.passed() {
        (Some(first), None)
    } else {
        (None, Some(first))
    };
    // Bracket: double while passing, halve while failing.
    loop {
        match (&lo, &hi) {
            (Some(l), None) => {
                if l.rate >= opts.max_rate {
                    return SearchResult {
                        best: lo,
                        nearest_miss: None,
                        capped: true,
                        probes,
                    };
                }
                let p = run((l.rate * 2.0).min(opts.max_rate));
                if p.passed() {
                    lo = Some(p);
                } else {
                    hi = Some(p);
                }
            }
            (None, Some(h)) => {
                if h.rate <= opts.min_rate {
                    return SearchResult {
                        best: None,
                        nearest_miss: hi,
                        capped: false,
                        probes,
                    };
                }
                let p = run((h.rate / 2.0).max(opts.min_rate));
                if p.passed() {
                    lo = Some(p);
                } else {
                    hi = Some(p);
                }
            }
            _ => break,
        }
    }
    // Bisect.
    let (mut lo, mut hi) = (lo.expect("bracketed"), hi.expect("bracketed"));
    // Bounded whatever the precision: a midpoint equal to an end (adjacent
    // floats) cannot narrow the bracket.
    for _ in 0..MAX_BISECTIONS {
        if hi.rate - lo.rate <= opts.precision * lo.rate {
            break;
        }
        let mid = 0.5 * (lo.rate + hi.rate);
        if !(mid > lo.rate && mid < hi.rate) {
            break;
        }
        let p = run(mid);
        if p.passed() {
            lo = p;
        } else {
            hi = p;
        }
    }
    SearchResult {
        best: Some(lo),
        nearest_miss: Some(hi),
        capped: false,
        probes,
    }
}

/// The planning outcome of one candidate.
#[derive(Clone, Debug)]
pub struct CandidateResult {
    /// Its index in the candidate grid.
    pub index: usize,
    /// Its key assignments.
    pub assignments: Assignments,
    /// Catalog name of its GPU.
    pub gpu: String,
    /// GPUs per replica.
    pub tp: u32,
    /// USD per GPU-hour, if known.
    pub price_per_gpu_hour: Option<f64>,
    /// What its KV tiers cost an hour (`None`: it has none).
    pub tier_cost: Option<TierCost>,
    /// The search (`None`: the candidate could not be built, see `error`).
    pub search: Option<SearchResult>,
    /// Why the candidate could not be built (a model that does not fit, say).
    pub error: Option<String>,
    /// Replicas, GPUs and cost at the target load, when it is feasible.
    pub sizing: Option<Sizing>,
    /// Its deployment shape, in a plan of shapes (whose replica is the whole
    /// deployment: `tp` is then its GPUs, `gpu` the prefill pool's GPU and
    /// the decode pool's when they differ, `price_per_gpu_hour` their mean).
    pub shape: Option<Shape>,
    /// The roofline's upper bounds on its rate, in a plan of shapes.
    pub bounds: Option<Bounds>,
    /// Why it was not simulated: a shape of its mode sustained more than its
    /// bound allows.
    pub pruned: Option<Pruned>,
}

/// A shape left out of the search because another shape of its mode
/// already sustained more than its upper bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Pruned {
    /// Its upper bound, requests per second.
    pub bound: f64,
    /// The shape that sustained more.
    pub by: Shape,
    /// The rate that shape sustained.
    pub rate: f64,
}

/// What a feasible candidate needs for the target load.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Sizing {
    /// Sustainable requests per second of one replica.
    pub rate_per_replica: f64,
    /// Replicas for the target load.
    pub replicas: u64,
    /// GPUs (`replicas x tp`).
    pub gpus: u64,
    /// USD per hour of the whole deployment, if the GPU has a price: its
    /// GPUs plus `usd_per_hour_tiers`.
    pub usd_per_hour: Option<f64>,
    /// USD per hour of the deployment's KV tiers (host memory, SSD, a
    /// remote store; 0 without tiers).
    pub usd_per_hour_tiers: f64,
    /// USD per million output tokens at the target load, if priced.
    pub usd_per_m_output_tokens: Option<f64>,
    /// Mean output tokens per request (measured at the sustainable rate).
    pub output_tokens_per_request: f64,
    /// Whether simulating the whole deployment (`replicas` replicas behind
    /// the router, at the target rate) met the objectives; `None` when it was
    /// too large to check, or a deployment kvsim cannot simulate (its scenario
    /// is refused at that many replicas). `replicas` is then what the simulation
    /// needed.
    pub verified: Option<bool>,
}

/// Replicas, GPUs and cost of serving `target_rate` with replicas that each
/// sustain `rate` requests per second.
pub fn size(
    target_rate: f64,
    rate: f64,
    tp: u32,
    price_per_gpu_hour: Option<f64>,
    output_tokens_per_request: f64,
) -> Sizing {
    size_tiered(
        target_rate,
        rate,
        tp,
        price_per_gpu_hour,
        TierCost::default(),
        output_tokens_per_request,
    )
}

/// [`size`] of replicas with KV tiers that cost `tiers`: USD per hour =
/// GPU price x GPUs + `tiers.per_replica` x replicas + `tiers.shared`.
pub fn size_tiered(
    target_rate: f64,
    rate: f64,
    tp: u32,
    price_per_gpu_hour: Option<f64>,
    tiers: TierCost,
    output_tokens_per_request: f64,
) -> Sizing {
    // A relative epsilon keeps 3 x (target / 3) from needing a 4th replica
    // through rounding.
    let replicas = ((target_rate / rate) * (1.0 - 1e-12)).ceil().max(1.0) as u64;
    priced(
        target_rate,
        rate,
        replicas,
        tp,
        price_per_gpu_hour,
        tiers,
        output_tokens_per_request,
    )
}

/// The GPUs and cost of `replicas` replicas of `tp` GPUs with KV tiers
/// costing `tiers`, serving `target_rate` (each sustaining `rate`).
fn priced(
    target_rate: f64,
    rate: f64,
    replicas: u64,
    tp: u32,
    price_per_gpu_hour: Option<f64>,
    tiers: TierCost,
    output_tokens_per_request: f64,
) -> Sizing {
    let gpus = replicas * u64::from(tp);
    let usd_per_hour_tiers = tiers.for_replicas(replicas);
    let usd_per_hour = price_per_gpu_hour.map(|p| p * gpus as f64 + usd_per_hour_tiers);
    let tokens_per_hour = target_rate * output_tokens_per_request * 3600.0;
    let usd_per_m_output_tokens = usd_per_hour
        .filter(|_| tokens_per_hour > 0.0)
        .map(|usd| usd / tokens_per_hour * 1e6);
    Sizing {
        rate_per_replica: rate,
        replicas,
        gpus,
        usd_per_hour,
        usd_per_hour_tiers,
        usd_per_m_output_tokens,
        output_tokens_per_request,
        verified: None,
    }
}

/// Mean output tokens per arrival over `runs`: per finished request, or,
/// when each arrival is a multi-turn session (`sessions`), per session
/// started, `arrivals` per run (the plan's rate counts sessions, and a
/// session's turns all produce tokens).
fn output_tokens_per_request(runs: &[Summary], sessions: bool, arrivals: f64) -> f64 {
    let (tokens, requests) = runs.iter().fold((0.0, 0.0), |(t, r), m| {
        let per_run = if sessions { arrivals } else { m.ok as f64 };
        (t + m.throughput_tok_s * m.duration_s, r + per_run)
    });
    if requests > 0.0 {
        tokens / requests
    } else {
        0.0
    }
}

/// One probe replicate: the simulation of a scenario on a seed (a closure
/// so tests can use a mock cost model); `Ok(None)` when it was stopped
/// before it finished (Ctrl-C), an error when its inputs make it run past
/// the simulated horizon.
pub type Evaluate<'a> = dyn Fn(&Scenario, u64) -> Result<Option<Summary>, Error> + Sync + 'a;

/// Arrivals a probe of `s` at `rate` expects: its request count, or its
/// duration times the rate.
fn expected_arrivals(s: &Scenario, rate: f64) -> f64 {
    match s.stop {
        crate::scenario::Stop::Requests(n) => n as f64,
        crate::scenario::Stop::Duration(d) => rate * d.as_secs_f64(),
        crate::scenario::Stop::TraceEnd => 0.0,
    }
}

/// Runs the scenario at `rate` on the replicate seeds with `evaluate`, long
/// enough to reach a steady state; `None` when a replicate was stopped
/// (Ctrl-C).
///
/// `scenario_at(rate, window)` is the scenario at `rate` whose arrivals span
/// at least `window` seconds. A probe starts with `window_s` (the plan's
/// [`Plan::window_s`]); one that passes but whose arrivals spanned fewer
/// than [`STEADY_SPANS`] median end-to-end latencies is run again, longer.
/// A probe that would need more than [`MAX_PROBE_ARRIVALS`] arrivals (beyond
/// the scenario's own) is not run and does not pass ([`Probe::unsteady`]).
pub fn probe_at(
    scenario_at: &dyn Fn(f64, f64) -> Result<Scenario, Error>,
    evaluate: &Evaluate<'_>,
    objectives: &Objectives,
    replicates: u32,
    rate: f64,
    window_s: f64,
) -> Result<Option<Probe>, Error> {
    let mut window = window_s;
    for _ in 0..STEADY_TRIES {
        let s = scenario_at(rate, window)?;
        let arrivals = expected_arrivals(&s, rate);
        if arrivals > MAX_PROBE_ARRIVALS {
            let own = expected_arrivals(&scenario_at(rate, 0.0)?, rate);
            if arrivals > own {
                break;
            }
        }
        let mut runs = Vec::with_capacity(replicates as usize);
        for r in 0..replicates {
            match evaluate(&s, replicate_seed(s.seed, r))? {
                Some(m) => runs.push(m),
                None => return Ok(None),
            }
        }
        let (excess, worst) = runs
            .iter()
            .map(|m| objectives.excess(m))
            .fold((0.0_f64, "none"), |a, b| if b.0 > a.0 { b } else { a });
        let e2e = runs
            .iter()
            .filter_map(|m| m.e2e_p50)
            .fold(0.0_f64, f64::max);
        let span_s = arrivals / rate;
        let probe = Probe {
            rate,
            excess,
            worst,
            runs,
            span_s,
            unsteady: false,
        };
        if !probe.passed() || span_s >= STEADY_SPANS * e2e {
            return Ok(Some(probe));
        }
        window = (2.0 * window.max(span_s)).max(1.25 * STEADY_SPANS * e2e);
    }
    Ok(Some(Probe {
        unsteady: true,
        ..Probe::failed(rate, "steady state")
    }))
}

/// The scenario of candidate `assignments` of `base` with its arrival rate set
/// to `rate`, on one replica, its arrivals spanning at least `window_s`.
#[cfg(test)]
fn candidate_scenario(
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
    rate: Option<f64>,
    window_s: f64,
) -> Result<Scenario, Error> {
    cluster_scenario(base, path, assignments, rate, 1, window_s)
}

/// The scenario of candidate `assignments` at arrival rate `rate` on
/// `replicas` replicas behind the scenario's router. A run that stops after a
/// request count gets that count per replica, so each replica sees as long a
/// run as a single-replica probe does. Its arrivals span at least
/// `window_s` seconds: a request count is raised to `rate x window_s`, a
/// `duration_s` to `window_s`.
fn cluster_scenario(
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
    rate: Option<f64>,
    replicas: u64,
    window_s: f64,
) -> Result<Scenario, Error> {
    let mut table = candidate_table(base, path, assignments)?;
    if let Some(r) = rate {
        apply_override(&mut table, "traffic.arrival.rate", toml::Value::Float(r))
            .map_err(|reason| spec_error(path, "traffic.arrival.rate", reason))?;
    }
    let replicas = i64::try_from(replicas).unwrap_or(i64::MAX);
    apply_override(
        &mut table,
        "hardware.replicas",
        toml::Value::Integer(replicas),
    )
    .map_err(|reason| spec_error(path, "hardware.replicas", reason))?;
    lengthen(&mut table, rate, replicas, window_s);
    Scenario::from_table(table, path)
}

/// Scales a probe's stop rule for `scale` replicas (or copies of a shape) at
/// `rate`: a request count is multiplied by `scale` and raised to `rate x
/// window_s`, a `duration_s` raised to `window_s`.
fn lengthen(table: &mut toml::Table, rate: Option<f64>, scale: i64, window_s: f64) {
    if let Some(n) = table.get("requests").and_then(toml::Value::as_integer) {
        let mut n = n.saturating_mul(scale);
        if let Some(r) = rate {
            // Saturating float-to-int: a window this long is refused below
            // (or by the probe's arrival cap) anyway.
            n = n.max((r * window_s).ceil() as i64);
        }
        table.insert("requests".into(), toml::Value::Integer(n));
    }
    if let Some(d) = table.get("duration_s").and_then(toml::Value::as_float) {
        if window_s > d {
            table.insert("duration_s".into(), toml::Value::Float(window_s));
        }
    }
}

/// The scenario of shape candidate `assignments` with `copies` copies of
/// its shape (every pool's replicas times `copies`, each pool behind its
/// router) at arrival rate `rate`, its arrivals spanning at least
/// `window_s`; a request count is per copy, as [`cluster_scenario`]'s is per
/// replica.
fn shape_scenario(
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
    rate: Option<f64>,
    copies: u64,
    window_s: f64,
) -> Result<Scenario, Error> {
    let shape = shape_of(assignments).ok_or_else(|| {
        spec_error(
            path,
            "plan.candidates.shape",
            "a shape candidate without a shape",
        )
    })?;
    let rest: Vec<(String, toml::Value)> = assignments
        .iter()
        .filter(|(k, _)| k != SHAPE)
        .cloned()
        .collect();
    let mut table = candidate_table(base, path, &rest)?;
    shape
        .times(u32::try_from(copies).unwrap_or(u32::MAX))
        .apply(&mut table)
        .map_err(|reason| spec_error(path, "plan.candidates.shape", reason))?;
    if let Some(r) = rate {
        apply_override(&mut table, "traffic.arrival.rate", toml::Value::Float(r))
            .map_err(|reason| spec_error(path, "traffic.arrival.rate", reason))?;
    }
    lengthen(
        &mut table,
        rate,
        i64::try_from(copies).unwrap_or(i64::MAX),
        window_s,
    );
    Scenario::from_table(table, path)
}

/// The scenario of a probe of candidate `assignments`: `scale` replicas of
/// it ([`cluster_scenario`]), or, in a plan of shapes, `scale` copies of its
/// shape ([`shape_scenario`]).
pub(crate) fn scaled_scenario(
    by_shape: bool,
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
    rate: Option<f64>,
    scale: u64,
    window_s: f64,
) -> Result<Scenario, Error> {
    if by_shape {
        shape_scenario(base, path, assignments, rate, scale, window_s)
    } else {
        cluster_scenario(base, path, assignments, rate, scale, window_s)
    }
}

/// Scenario table `base` with candidate `assignments` applied (see
/// [`apply_candidate`]): the table of the scenario that candidate describes.
pub fn candidate_table(
    base: &toml::Table,
    path: &Path,
    assignments: &[(String, toml::Value)],
) -> Result<toml::Table, Error> {
    let mut table = base.clone();
    for (key, value) in assignments {
        apply_candidate(&mut table, key, value.clone())
            .map_err(|reason| spec_error(path, &format!("plan.candidates.\"{key}\""), reason))?;
    }
    Ok(table)
}

/// What simulating a whole deployment found.
enum Verified {
    /// These replicas met the objectives.
    Met(u64),
    /// Up to twice the estimate missed them.
    Missed,
    /// The simulation would be too long to run (see [`MAX_PROBE_ARRIVALS`]).
    TooLarge,
    /// kvsim cannot simulate this deployment: its scenario is refused for
    /// that many replicas.
    NotSimulable,
}

/// Checks a sizing by simulating it: `replicas` replicas behind the
/// scenario's router at the target rate, on the probe seeds, for as long a
/// span of arrivals as the sustainable rate's probe (`span_s`), adding
/// replicas while the objectives are missed (an uneven split can overload
/// one replica that the per-replica search assumed evenly fed). An error
/// when a simulation was stopped (Ctrl-C).
fn verify(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &Evaluate<'_>,
    assignments: &[(String, toml::Value)],
    replicas: u64,
    span_s: f64,
) -> Result<Verified, Stopped> {
    let most = (replicas * 2).min(plan.max_scale(assignments));
    let by_shape = plan.by_shape;
    if scaled_scenario(
        by_shape,
        base,
        path,
        assignments,
        Some(plan.target_rate),
        replicas,
        0.0,
    )
    .is_err()
    {
        return Ok(Verified::NotSimulable);
    }
    for r in replicas..=most {
        let at = |rate: f64, w: f64| {
            scaled_scenario(by_shape, base, path, assignments, Some(rate), r, w)
        };
        match probe_at(
            &at,
            evaluate,
            &plan.objectives,
            plan.replicates,
            plan.target_rate,
            span_s,
        ) {
            Ok(Some(p)) if p.passed() => return Ok(Verified::Met(r)),
            Ok(Some(p)) if p.unsteady => return Ok(Verified::TooLarge),
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => return Err(Stopped),
        }
    }
    Ok(Verified::Missed)
}

/// A candidate's planning was stopped before it finished (Ctrl-C).
#[derive(Debug)]
struct Stopped;

/// The largest cluster `kvsim plan` verifies by simulation (more replicas
/// are sized from the per-replica rate alone).
const MAX_VERIFIED_REPLICAS: u64 = 64;

/// The simulation `kvsim plan` runs for one probe replicate.
pub fn roofline_run(s: &Scenario, seed: u64) -> Result<Summary, Error> {
    let d = &s.deployment;
    simulate_summary(
        s,
        seed,
        RooflineCost::new(&s.model, d, &d.efficiency),
        &crate::engine::Limits::default(),
    )
    .map_err(|stopped| stopped.into_error(&s.path, "the probe was not finished"))
}

/// Plans every candidate of `plan` (in parallel, in grid order), with
/// `evaluate` running one probe replicate.
pub fn run_plan(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &(dyn Fn(&Scenario, u64) -> Result<Summary, Error> + Sync),
) -> Vec<CandidateResult> {
    run_plan_stoppable(base, path, plan, &|s, seed| evaluate(s, seed).map(Some)).finished
}

/// What [`run_plan_stoppable`] produced.
#[derive(Clone, Debug)]
pub struct PlanRun {
    /// The candidates whose planning finished, in grid order.
    pub finished: Vec<CandidateResult>,
    /// Whether some candidates did not finish because a simulation was
    /// stopped (Ctrl-C).
    pub interrupted: bool,
}

/// [`run_plan`] with simulations that may be stopped (`evaluate` returning
/// `None`): a candidate with a stopped simulation is left out, the others
/// are kept.
pub fn run_plan_stoppable(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &Evaluate<'_>,
) -> PlanRun {
    if plan.by_shape {
        return disagg::run_shapes(base, path, plan, evaluate, true);
    }
    let results: Vec<Result<CandidateResult, Stopped>> = (0..plan.candidates.len())
        .into_par_iter()
        .map(|index| plan_candidate(base, path, plan, evaluate, index))
        .collect();
    let interrupted = results.iter().any(Result::is_err);
    PlanRun {
        finished: results.into_iter().flatten().collect(),
        interrupted,
    }
}

fn plan_candidate(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &Evaluate<'_>,
    index: usize,
) -> Result<CandidateResult, Stopped> {
    match prepare(base, path, plan, index) {
        Ok((result, built)) => search_and_size(
            base,
            path,
            plan,
            evaluate,
            result,
            &built,
            &plan.search,
            true,
        ),
        Err(result) => Ok(*result),
    }
}

/// Candidate `index` built on one replica (or one copy of its shape), its
/// GPU, GPUs per replica and prices filled in; the result to report when it
/// does not build.
fn prepare(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    index: usize,
) -> Result<(CandidateResult, Scenario), Box<CandidateResult>> {
    let assignments = plan.candidates.point(index);
    let mut result = CandidateResult {
        index,
        assignments: assignments.clone(),
        gpu: String::new(),
        tp: 1,
        price_per_gpu_hour: None,
        tier_cost: None,
        search: None,
        error: None,
        sizing: None,
        shape: None,
        bounds: None,
        pruned: None,
    };
    let built = match scaled_scenario(plan.by_shape, base, path, &assignments, None, 1, 0.0) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(e.to_string());
            return Err(Box::new(result));
        }
    };
    result.gpu = built.deployment.gpu.name.clone();
    result.tp = built.deployment.tp;
    let price_of = |d: &crate::hardware::Deployment| {
        plan.prices
            .get(&d.gpu.name)
            .copied()
            .or(d.gpu.price_per_hour)
    };
    result.price_per_gpu_hour = price_of(&built.deployment);
    result.tier_cost = TierCost::of(built.spec.cache.tiers.as_deref(), &plan.tier_prices);
    if plan.by_shape {
        // The replica of a plan of shapes is the whole deployment: its GPUs,
        // their mean price, and its replicas' tiers.
        let shape = shape_of(&assignments);
        result.shape = shape;
        let replicas = u64::from(built.deployment.replicas.max(1));
        let d_gpus = u64::from(built.deployment.tp) * replicas;
        result.tier_cost = result.tier_cost.map(|t| TierCost {
            per_replica: t.per_replica * replicas as f64,
            shared: t.shared,
        });
        match &built.disagg {
            Some(dis) => {
                let p = &dis.prefill.deployment;
                let p_gpus = dis.prefill_gpus();
                if p.gpu.name != result.gpu {
                    result.gpu = format!("{} + {}", p.gpu.name, result.gpu);
                }
                let all = p_gpus + d_gpus;
                result.tp = u32::try_from(all).unwrap_or(u32::MAX);
                result.price_per_gpu_hour = price_of(p)
                    .zip(result.price_per_gpu_hour)
                    .map(|(pp, dp)| (pp * p_gpus as f64 + dp * d_gpus as f64) / all as f64);
            }
            None => result.tp = u32::try_from(d_gpus).unwrap_or(u32::MAX),
        }
    }
    Ok((result, built))
}

/// Finds the highest rate candidate `result` (built as `built`) sustains
/// with search options `opts`, then sizes it for the target load and, when
/// `check` is set, verifies the sizing by simulating the whole deployment.
#[allow(clippy::too_many_arguments)]
fn search_and_size(
    base: &toml::Table,
    path: &Path,
    plan: &Plan,
    evaluate: &Evaluate<'_>,
    mut result: CandidateResult,
    built: &Scenario,
    opts: &SearchOptions,
    check: bool,
) -> Result<CandidateResult, Stopped> {
    let assignments = result.assignments.clone();
    let tiers = result.tier_cost.unwrap_or_default();
    let scenario_at =
        |r: f64, w: f64| scaled_scenario(plan.by_shape, base, path, &assignments, Some(r), 1, w);
    let mut failure = None;
    let mut stopped = false;
    let search = search_rate(opts, |r| {
        // Once a simulation was stopped the search only has to end: every
        // further probe fails at once (the candidate is dropped below).
        let probe = if stopped {
            Ok(None)
        } else {
            probe_at(
                &scenario_at,
                evaluate,
                &plan.objectives,
                plan.replicates,
                r,
                plan.window_s,
            )
        };
        match probe {
            Ok(Some(p)) => p,
            Ok(None) => {
                stopped = true;
                Probe::failed(r, "interrupted")
            }
            Err(e) => {
                // A rate the scenario rejects (beyond a validation bound) is
                // a failed probe; the error is reported if nothing passed.
                failure.get_or_insert_with(|| e.to_string());
                Probe::failed(r, "invalid")
            }
        }
    });
    if stopped {
        return Err(Stopped);
    }
    if let Some(best) = &search.best {
        let tokens =
            output_tokens_per_request(&best.runs, built.traffic.session(), best.rate * best.span_s);
        let mut sizing = size_tiered(
            plan.target_rate,
            best.rate,
            result.tp,
            result.price_per_gpu_hour,
            tiers,
            tokens,
        );
        if check && sizing.replicas <= plan.max_scale(&assignments) {
            match verify(
                base,
                path,
                plan,
                evaluate,
                &assignments,
                sizing.replicas,
                best.span_s,
            )? {
                Verified::Met(replicas) => {
                    // Price the replicas the simulation needed.
                    sizing = priced(
                        plan.target_rate,
                        best.rate,
                        replicas,
                        result.tp,
                        result.price_per_gpu_hour,
                        tiers,
                        tokens,
                    );
                    sizing.verified = Some(true);
                }
                Verified::Missed => sizing.verified = Some(false),
                Verified::TooLarge | Verified::NotSimulable => {}
            }
        }
        result.sizing = Some(sizing);
    } else if let Some(e) = failure {
        result.error = Some(e);
    }
    result.search = Some(search);
    Ok(result)
}

/// Candidate indices best first: feasible ones by dollars per hour (unpriced
/// after priced, by GPU count), ties by the higher rate per replica (and,
/// between shapes, by the lower worst metric-to-objective ratio at that
/// rate); then those whose whole-deployment simulation missed the
/// objectives; then the infeasible ones by how close they came; then the
/// shapes pruned without simulation, highest bound first.
pub fn ranking(results: &[CandidateResult]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..results.len()).collect();
    let key = |r: &CandidateResult| -> (u8, f64, f64, f64) {
        match &r.sizing {
            Some(s) if s.verified == Some(false) => (2, s.gpus as f64, -s.rate_per_replica, 0.0),
            Some(s) => {
                // Between shapes of equal cost and rate (both held back by
                // the same pool), the one with more headroom at that rate.
                let headroom = match r.shape {
                    Some(_) => r
                        .search
                        .as_ref()
                        .and_then(|s| s.best.as_ref())
                        .map_or(0.0, |p| p.excess),
                    None => 0.0,
                };
                match s.usd_per_hour {
                    Some(usd) => (0, usd, -s.rate_per_replica, headroom),
                    None => (1, s.gpus as f64, -s.rate_per_replica, headroom),
                }
            }
            None if r.pruned.is_some() => {
                // After the infeasible ones: not simulated, dominated.
                let bound = r.pruned.as_ref().map_or(0.0, |p| p.bound);
                (3, -bound, 0.0, 0.0)
            }
            None => {
                let miss = r
                    .search
                    .as_ref()
                    .and_then(|s| s.nearest_miss.as_ref())
                    .map(|p| p.excess)
                    .unwrap_or(f64::INFINITY);
                (2, miss, 0.0, 0.0)
            }
        }
    };
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(&results[a]), key(&results[b]));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.total_cmp(&kb.2))
            .then(ka.3.total_cmp(&kb.3))
            .then(a.cmp(&b))
    });
    order
}

/// Whether each candidate is on the Pareto front of (rate per replica up,
/// dollars per million output tokens down) among the priced feasible ones.
pub fn pareto_front(results: &[CandidateResult]) -> Vec<bool> {
    let point = |r: &CandidateResult| {
        r.sizing
            .and_then(|s| s.usd_per_m_output_tokens.map(|c| (s.rate_per_replica, c)))
    };
    results
        .iter()
        .map(|r| {
            let Some((x, y)) = point(r) else {
                return false;
            };
            !results
                .iter()
                .filter_map(point)
                .any(|(ox, oy)| ox >= x && oy <= y && (ox > x || oy < y))
        })
        .collect()
}

#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;
