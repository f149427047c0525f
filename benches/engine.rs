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

const REQUESTS: u64 = 20_000;

fn saturated(policy: &str) -> Scenario {
    let text = format!(
        r#"
name = "bench"
seed = 1
requests = {REQUESTS}
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = {{ kind = "poisson", rate = 200.0 }}
prompt = {{ kind = "lognormal", mean = 700, sigma = 0.8, min = 4, max = 4096 }}
output = {{ kind = "lognormal", mean = 200, sigma = 0.8, min = 1, max = 2048 }}
[cache]
policy = "{policy}"
{extra}
[scheduler]
max_num_seqs = 256
max_batched_tokens = 8192
[output]
timeline_interval_s = 1.0
"#,
        extra = if policy == "sliding" {
            "window = 1024"
        } else {
            ""
        }
    );
    Scenario::from_toml(&text, Path::new("bench.toml"), &[]).expect("the bench scenario is valid")
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
