//! Seeded random streams.
//!
//! Every random component (arrivals, prompt lengths, output lengths, ...) draws
//! from its own ChaCha8 stream of the scenario seed, so adding a draw in one
//! component never shifts another. ChaCha8 is used instead of `StdRng` because
//! its output is specified and stable across `rand` versions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream identifiers; one per random component. Never renumber: that would
/// change every seeded result.
pub mod stream {
    /// Inter-arrival gaps.
    pub const ARRIVALS: u64 = 1;
    /// Prompt lengths.
    pub const PROMPT: u64 = 2;
    /// True output lengths.
    pub const OUTPUT: u64 = 3;
    /// Per-request output caps (`max_tokens`).
    pub const MAX_TOKENS: u64 = 4;
    /// Closed-loop think times.
    pub const THINK: u64 = 5;
    /// Paired (prompt, output) samples from a trace.
    pub const PAIRED: u64 = 6;
    /// Shared system prompts: whether a request uses one, and which.
    pub const PREFIX: u64 = 7;
    /// Turns per multi-turn session.
    pub const SESSION_TURNS: u64 = 8;
    /// Think times between the turns of a session.
    pub const SESSION_THINK: u64 = 9;
    /// Output lengths of a request's extra parallel samples (`n > 1`).
    pub const SAMPLES: u64 = 10;
}

/// The random stream `stream` of `seed`.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: u64 = stream_rng(7, stream::ARRIVALS).random();
        let b: u64 = stream_rng(7, stream::PROMPT).random();
        let a2: u64 = stream_rng(7, stream::ARRIVALS).random();
        assert_ne!(a, b);
        assert_eq!(a, a2);
    }
}
