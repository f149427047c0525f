//! Engine throughput: simulated requests per second of wall time, one core.
//!
//! `cargo bench --bench engine` runs a saturated chat workload (Llama-3.1-8B on
//! one H100, ShareGPT-like lengths, arrivals faster than the GPU can serve so
//! the batch sits above 150) for each cache policy, and reports requests/s via
//! divan's item counter.

use std::path::Path;

use divan::counter::ItemsCount;
use kvsim::engine::simulate;
use kvsim::hardware::cost::RooflineCost;
use kvsim::scenario::Scenario;

fn main() {
    divan::main();
}

/// Requests in `benches/saturated-chat.toml`.
const REQUESTS: u64 = 20_000;

fn saturated(policy: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/saturated-chat.toml");
    let mut overrides = vec![format!("cache.policy={policy}")];
    if policy == "sliding" {
        overrides.push("cache.window=1024".into());
    }
    let s = Scenario::load(&path, &overrides).expect("the bench scenario is valid");
    assert_eq!(s.stop, kvsim::scenario::Stop::Requests(REQUESTS));
    s
}

#[divan::bench(args = ["paged", "contiguous", "sliding", "quantized"], sample_count = 5, sample_size = 1)]
fn saturated_chat(bencher: divan::Bencher, policy: &str) {
    let scenario = saturated(policy);
    let d = &scenario.deployment;
    bencher.counter(ItemsCount::new(REQUESTS)).bench(|| {
        let cost = RooflineCost::new(&scenario.model, d, &d.efficiency);
        let out = simulate(&scenario, scenario.seed, cost);
        assert!(out.summary.batch_peak > 100 || policy == "contiguous");
        divan::black_box(out.summary.ok)
    });
}
