//! Traffic: when requests arrive and how long their prompts and outputs are.
//!
//! STUB: the public API below is the contract the engine and scenario loader use;
//! the implementation is being written.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::units::{SimDuration, SimTime};

/// The `[traffic]` table of a scenario file, as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// Placeholder until the real spec lands.
    pub arrival: toml::Value,
}

/// Token lengths of one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Lengths {
    /// Prompt tokens (>= 1).
    pub prompt: u32,
    /// True output tokens the model will generate (>= 1, <= `max_tokens`).
    pub output: u32,
    /// The request's output cap, what a contiguous `max-tokens` reservation uses.
    pub max_tokens: u32,
}

/// Open loop (arrivals independent of service) or closed loop (N users).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// Arrivals come from a process or trace, whatever the server does.
    Open,
    /// `users` users each send a request, wait for it to end, think, repeat.
    Closed {
        /// Concurrent users.
        users: u32,
    },
}

/// Validated traffic, ready to be instantiated for a seed.
#[derive(Clone, Debug)]
pub struct TrafficPlan;

impl TrafficPlan {
    /// Validates `spec`, loading any trace or empirical file relative to `base_dir`.
    pub fn from_spec(
        _spec: &TrafficSpec,
        _base_dir: &Path,
        _scenario: &Path,
    ) -> Result<Self, Error> {
        todo!()
    }
    /// A generator for one run.
    pub fn instantiate(&self, _seed: u64) -> Traffic {
        todo!()
    }
    /// Open or closed loop.
    pub fn loop_kind(&self) -> LoopKind {
        todo!()
    }
    /// Whether arrivals replay a trace (which may stand in for `requests`).
    pub fn is_trace_replay(&self) -> bool {
        todo!()
    }
}

/// A generator of requests for one run.
pub struct Traffic;

impl Traffic {
    /// Open loop: the next arrival and its lengths, nondecreasing in time.
    pub fn next_arrival(&mut self) -> Option<(SimTime, Lengths)> {
        todo!()
    }
    /// Closed loop: the lengths of a user's next request.
    pub fn next_lengths(&mut self) -> Lengths {
        todo!()
    }
    /// Closed loop: a user's think time before the next request.
    pub fn think_time(&mut self) -> SimDuration {
        todo!()
    }
}
