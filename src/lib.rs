//! kvsim: a discrete-event simulator of LLM serving whose subject is the KV
//! cache, the memory that grows with traffic.
//!
//! A traffic generator draws arrival times and prompt/output lengths; a
//! simulated GPU holds weights and a KV budget and prices each engine step with
//! a memory-bandwidth-bound roofline; a continuous-batching scheduler runs the
//! requests; a pluggable KV cache policy decides where every token's keys and
//! values live.
//!
//! # Layout
//!
//! `docs/ARCHITECTURE.md` describes how the crate is built and its layering
//! (foundation, simulator, commands, command line), which
//! `tests/kvsim/layering.rs` enforces.
//!
//! | module | concern |
//! |---|---|
//! | [`scenario`] | TOML -> `*Spec` structs (as written) -> validated [`scenario::Scenario`] |
//! | [`catalog`] | built-in models and GPUs, each number with its public source |
//! | [`model`] | model shapes, layer groups and the exact KV arithmetic; Hugging Face `config.json` import ([`model::hf`]) |
//! | [`traffic`] | arrival processes, length distributions, closed loops, trace replay |
//! | [`hardware`] | KV budget ([`hardware::budget`]) and step cost ([`hardware::cost`]) |
//! | [`cache`] | the [`cache::KvCache`] trait and its contiguous and paged policies |
//! | [`scheduler`] | continuous-batching rules: admission, OOM handling |
//! | [`engine`] | integer time, the event queue, the simulation loop |
//! | [`metrics`] | per-request records, run summaries, percentiles |
//! | [`report`] | CSV/JSON outputs, terminal tables, plots |
//! | [`output`] | output directories: all or nothing, locked, never over a user's files |
//! | [`interrupt`] | Ctrl-C: one handler for every command |
//! | [`rng`] | seeded random streams and seed derivations |
//! | [`machine`] | physical memory and peak RSS of this machine |
//! | [`input`] | reading user files in bounded memory |
//! | [`sweep`] | grids, common random numbers, parallel runs, shards, `sweep.csv` |
//! | [`plan`] | capacity planning: sustainable rate per candidate, replicas, cost, Pareto front |
//! | [`check`] | baseline comparison for CI regressions |
//! | [`validate`] | kvsim against published measurements (`VALIDATION.md`) |
//! | [`calibrate`] | least-squares fit of the cost model to measured latencies |
//! | [`cli`] | the `kvsim` command line |
//!
//! # Lifecycle of a run
//!
//! ```no_run
//! use kvsim::engine::simulate;
//! use kvsim::hardware::cost::RooflineCost;
//! use kvsim::scenario::Scenario;
//!
//! let scenario = Scenario::load("scenarios/quickstart.toml".as_ref(), &[])?;
//! let d = &scenario.deployment;
//! let cost = RooflineCost::new(&scenario.model, d, &d.efficiency);
//! // Errs only if the inputs make the simulated clock run past ~317 years.
//! let out = simulate(&scenario, scenario.seed, cost)
//!     .map_err(|stopped| stopped.into_error(&scenario.path, "nothing was simulated"))?;
//! println!("OOM rate {:.3}, TPOT p99 {:?} s", out.summary.oom_rate, out.summary.tpot_p99);
//! # Ok::<(), kvsim::Error>(())
//! ```
#![warn(missing_docs)]

#[macro_use]
mod invariants;

pub mod cache;
pub mod calibrate;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod engine;
pub mod error;
pub mod hardware;
pub mod input;
pub mod interrupt;
pub mod machine;
pub mod metrics;
pub mod model;
pub mod output;
pub mod plan;
pub mod ranges;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod scheduler;
pub mod sweep;
pub mod traffic;
pub mod units;
pub mod validate;

pub use error::{Error, Result, SpecError};

/// Whether this build of the library checks the simulator's invariants as it
/// runs (debug builds, and any build with the `invariants` feature; see
/// `.ci/run`). The integration tests assert it where `.ci/run`'s invariants
/// pass requires the checks.
pub const INVARIANT_CHECKS: bool = invariants::IN_LIBRARY;
