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
    /// Which trace requests (or ShareGPT conversations) a replay keeps
    /// (`sample` < 1).
    pub const TRACE_SAMPLE: u64 = 11;
}

/// The own random stream of conversation `n` (the `n`-th session a cluster
/// starts): its later turns' lengths and the think times between them. In a
/// cluster the order in which turns end depends on the router, so drawing
/// them from the shared streams in that order would hand different
/// conversations to different routers; a stream per conversation keeps
/// conversation `n` the same under every router (common random numbers).
/// The key derives from `seed` as [`replica_seed`]'s does, with a salt of
/// its own, and ChaCha's 64-bit stream number is `n`.
pub fn session_rng(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(replicate_seed(seed ^ 0x5E55_1017_C0DE, 1));
    rng.set_stream(n);
    rng
}

/// The random stream `stream` of `seed`.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The seed of replicate `replicate` of every point: the scenario's seed for
/// the first, independent splitmix64 draws for the others.
pub fn replicate_seed(seed: u64, replicate: u32) -> u64 {
    if replicate == 0 {
        return seed;
    }
    let mut z = seed ^ u64::from(replicate).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The traffic seed of replica `replica` of a cluster run on `seed`: a
/// replica's own draws (the sample lengths of its forks) come from streams of
/// their own, apart from the cluster's arrivals, which draw from `seed`.
pub fn replica_seed(seed: u64, replica: usize) -> u64 {
    replicate_seed(seed ^ 0x5EED_C1A5_7E55, replica as u32 + 1)
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

    #[test]
    fn session_streams_are_their_own() {
        let a: u64 = session_rng(7, 0).random();
        let b: u64 = session_rng(7, 1).random();
        let c: u64 = session_rng(8, 0).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, session_rng(7, 0).random::<u64>());
        for s in 0..12 {
            assert_ne!(a, stream_rng(7, s).random::<u64>());
        }
    }

    #[test]
    fn replicate_zero_keeps_the_scenario_seed() {
        assert_eq!(replicate_seed(42, 0), 42);
        assert_ne!(replicate_seed(42, 1), replicate_seed(42, 2));
        assert_ne!(replicate_seed(42, 1), 42);
    }
}
