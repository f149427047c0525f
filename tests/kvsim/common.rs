//! Builders for tiny, hand-computable scenarios.

use std::path::{Path, PathBuf};

use kvsim::engine::{RunOutput, simulate};
use kvsim::hardware::cost::FixedCost;
use kvsim::scenario::Scenario;
use kvsim::units::SimDuration;

/// A one-layer model with one KV head of 64: 256 bytes of KV per token (bf16).
pub const TINY_MODEL: &str = r#"
[model]
name = "tiny"
params = 1000000
layers = 1
hidden = 64
heads = 1
kv_heads = 1
head_dim = 64
intermediate = 256
vocab = 1000
max_model_len = 4096
"#;

/// A GPU with plenty of memory; tests then set the KV budget exactly.
pub const BIG_GPU: &str = r#"
[hardware.gpu]
name = "test-gpu"
vram_bytes = 85899345920
hbm_bandwidth = 2.0e12
peak_flops = 1.0e15
interconnect_bandwidth = 4.5e11
pcie_bandwidth = 6.4e10
efficiency = { mbu = 0.8, mfu = 0.5, step_overhead_s = 0.0, allreduce_latency_s = 0.0 }
"#;

/// Bytes of KV per token of [`TINY_MODEL`].
pub const TINY_BPT: u64 = 256;

/// A scenario from `body` (everything but model and GPU), with the KV budget
/// set to exactly `budget_tokens` tokens.
pub fn scenario(body: &str, budget_tokens: u64) -> Scenario {
    scenario_with(body, budget_tokens, &[])
}

/// [`scenario`] with `--set` style overrides (e.g. of the tiny model).
pub fn scenario_with(body: &str, budget_tokens: u64, overrides: &[&str]) -> Scenario {
    let text = format!("{body}\n{TINY_MODEL}\n{BIG_GPU}");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let mut s = Scenario::from_toml(&text, Path::new("test.toml"), &overrides)
        .unwrap_or_else(|e| panic!("{e}"));
    s.budget.kv_bytes = budget_tokens * s.budget.bytes_per_token;
    s
}

/// `users` closed-loop users with no think time, `requests` in total, fixed
/// lengths, plus `extra` TOML.
pub fn closed(users: u32, requests: u32, prompt: u32, output: u32, extra: &str) -> String {
    format!(
        r#"
name = "hand"
requests = {requests}
[traffic]
arrival = {{ kind = "closed", users = {users}, think_s = 0.0 }}
prompt = {{ kind = "fixed", value = {prompt} }}
output = {{ kind = "fixed", value = {output} }}
{extra}
"#
    )
}

/// Every step takes 10 ms, whatever it does.
pub fn ten_ms() -> FixedCost {
    FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::ZERO,
        per_swap_kib: SimDuration::ZERO,
    }
}

/// Runs `s` with the 10 ms mock.
pub fn run(s: &Scenario) -> RunOutput {
    simulate(s, s.seed, ten_ms()).unwrap()
}

/// Seconds to milliseconds, rounded to the nanosecond grid.
pub fn ms(t: Option<kvsim::units::SimTime>) -> f64 {
    (t.expect("time is set").as_nanos() as f64 / 1e6 * 1e6).round() / 1e6
}

/// The bundled scenarios' paths, in name order.
pub fn bundled_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    out
}
