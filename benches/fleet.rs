//! A fleet's day in constant memory: a streaming run of many requests,
//! simulated requests per second and the process's peak memory.
//!
//! `cargo bench --bench fleet` runs 100,000,000 requests of quickstart's
//! traffic (Llama-3.1-8B on one H100, paged KV, Poisson arrivals at 25 req/s,
//! chat lengths: a load the GPU sustains, as an overloaded server's queue,
//! and with it the requests in flight, grows without bound) in streaming mode (`output.records = "streaming"`: no
//! per-request records kept, percentiles from sketches) and prints the wall
//! time, the rate and the peak RSS (`VmHWM`, Linux). `KVSIM_FLEET_REQUESTS`
//! sets another count (1,000,000,000 for the billion-request run). The
//! summary's files are not written: what is measured is the simulation and
//! its memory.
//!
//! Not a divan bench: one run of this size is the measurement.

use std::path::Path;
use std::time::Instant;

use kvsim::engine::{peak_rss_bytes, simulate};
use kvsim::hardware::cost::RooflineCost;
use kvsim::scenario::Scenario;

const FLEET: &str = r#"
name = "fleet"
seed = 19
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[cache]
policy = "paged"
[traffic]
arrival = { kind = "poisson", rate = 25.0 }
prompt = { kind = "lognormal", mean = 161, sigma = 1.0, min = 4, max = 4096 }
output = { kind = "lognormal", mean = 338, sigma = 1.0, min = 1, max = 2048 }
max_tokens = { kind = "fixed", value = 2048 }
[output]
records = "streaming"
"#;

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command
    // line.
    let requests: u64 = std::env::var("KVSIM_FLEET_REQUESTS")
        .ok()
        .map(|v| v.parse().expect("KVSIM_FLEET_REQUESTS is a count"))
        .unwrap_or(100_000_000);
    let text = format!("requests = {requests}\n{FLEET}");
    let s = Scenario::from_toml(&text, Path::new("fleet.toml"), &[]).expect("valid scenario");
    let before = peak_rss_bytes();
    let d = &s.deployment;
    let started = Instant::now();
    let out = simulate(&s, s.seed, RooflineCost::new(&s.model, d, &d.efficiency))
        .expect("the run finishes");
    let wall = started.elapsed().as_secs_f64();
    assert!(out.streamed && out.records.is_empty());
    assert_eq!(out.summary.requests, requests);
    let mib = |b: Option<u64>| {
        b.map_or("unknown".into(), |b| {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        })
    };
    println!(
        "fleet: {requests} requests in {wall:.1} s ({:.0} requests/s); peak RSS {} \
         (before the run {}); {} timeline rows; TTFT p99 {:.4} s, TPOT p99 {:.4} s",
        requests as f64 / wall,
        mib(peak_rss_bytes()),
        mib(before),
        out.timeline.len(),
        out.summary.ttft_p99.unwrap_or(f64::NAN),
        out.summary.tpot_p99.unwrap_or(f64::NAN),
    );
}
