//! One saturated run of `benches/saturated-chat.toml` (paged) at a given
//! request count, for measuring cost per request and peak memory:
//!
//! ```sh
//! cargo build --release --example scale
//! /usr/bin/time -v target/release/examples/scale 10000000        # fast path
//! /usr/bin/time -v target/release/examples/scale 1000000 reference
//! ```
//!
//! Prints wall time, simulated requests per second and the bytes the run
//! keeps per request.

use std::path::Path;
use std::time::Instant;

use kvsim::engine::{simulate, simulate_reference};
use kvsim::hardware::cost::RooflineCost;
use kvsim::metrics::RequestRecord;
use kvsim::scenario::Scenario;

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args
        .next()
        .map(|a| a.parse().expect("a request count"))
        .unwrap_or(1_000_000);
    let reference = args.next().as_deref() == Some("reference");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/saturated-chat.toml");
    let s = Scenario::load(&path, &[format!("requests={requests}")]).expect("valid scenario");
    let d = &s.deployment;
    let cost = RooflineCost::new(&s.model, d, &d.efficiency);
    let start = Instant::now();
    let out = if reference {
        simulate_reference(&s, s.seed, cost)
    } else {
        simulate(&s, s.seed, cost)
    }
    .expect("the bench scenario stays within the horizon");
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{requests} requests ({}): {wall:.3} s, {:.0} simulated requests/s; ok {}, batch mean {:.1}, peak {}, steps {}; records {} bytes each",
        if reference { "reference" } else { "fast path" },
        requests as f64 / wall,
        out.summary.ok,
        out.summary.batch_mean,
        out.summary.batch_peak,
        out.summary.steps,
        std::mem::size_of::<RequestRecord>(),
    );
}
