//! Invariants over random scenarios (proptest): every request ends exactly
//! once, time never goes back, KV usage never exceeds the budget, and the same
//! seed gives the same bytes.

use kvsim::metrics::Outcome;
use kvsim::report::requests_csv;
use proptest::prelude::*;

use crate::common::{TINY_BPT, run, scenario_with};

#[derive(Debug, Clone)]
struct Case {
    closed: bool,
    rate: f64,
    users: u32,
    requests: u32,
    prompt_max: u32,
    output_max: u32,
    policy: &'static str,
    admission: &'static str,
    on_oom: &'static str,
    chunked: bool,
    max_num_seqs: u32,
    max_batched_tokens: u32,
    budget_tokens: u64,
    seed: u64,
    /// Parallel samples per request.
    n: u32,
    /// Multi-turn sessions of this many turns (0: none).
    turns: u32,
    /// Share prompt prefixes (paged family without windows only).
    prefix_caching: bool,
    /// Give the (two-layer) model a 24-token window on one layer.
    hybrid: bool,
}

impl Case {
    fn toml(&self) -> String {
        let arrival = if self.closed {
            format!(
                "{{ kind = \"closed\", users = {}, think_s = 0.05 }}",
                self.users
            )
        } else {
            format!("{{ kind = \"poisson\", rate = {} }}", self.rate)
        };
        let window = if self.policy == "sliding" {
            "window = 64\n"
        } else {
            ""
        };
        let dtype = if self.policy == "quantized" {
            "kv_dtype = \"int4\"\n"
        } else {
            ""
        };
        // "contiguous-buddy": contiguous placement from a buddy allocator.
        let (policy, allocator) = match self.policy {
            "contiguous-buddy" => ("contiguous", "allocator = \"buddy\"\n"),
            p => (p, ""),
        };
        let prefix_caching = self.prefix_caching
            && policy != "contiguous"
            && self.policy != "sliding"
            && !self.hybrid;
        let mut traffic_extra = format!("n = {}\n", if self.turns > 0 { 1 } else { self.n });
        if self.turns > 0 {
            traffic_extra += &format!(
                "session = {{ turns = {{ kind = \"uniform\", min = 1, max = {} }}, think_s = 0.02 }}\n",
                self.turns
            );
        } else if prefix_caching {
            traffic_extra += "prefix = { count = 2, tokens = 40, fraction = 0.7 }\n";
        }
        format!(
            r#"
name = "prop"
seed = {seed}
requests = {requests}
[traffic]
arrival = {arrival}
prompt = {{ kind = "uniform", min = 1, max = {pmax} }}
output = {{ kind = "uniform", min = 1, max = {omax} }}
{traffic_extra}
[cache]
policy = "{policy}"
prefix_caching = {prefix_caching}
{window}{dtype}{allocator}
[scheduler]
admission = "{admission}"
on_oom = "{on_oom}"
chunked_prefill = {chunked}
max_num_seqs = {mns}
max_batched_tokens = {mbt}
restart_s = 0.5
"#,
            seed = self.seed,
            requests = self.requests,
            pmax = self.prompt_max,
            omax = self.output_max,
            admission = self.admission,
            on_oom = self.on_oom,
            chunked = self.chunked,
            mns = self.max_num_seqs,
            mbt = self.max_batched_tokens,
        )
    }
}

fn cases() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        1.0f64..200.0,
        1u32..40,
        1u32..120,
        1u32..400,
        1u32..300,
        prop::sample::select(vec![
            "contiguous",
            "contiguous-buddy",
            "paged",
            "sliding",
            "quantized",
        ]),
        (
            prop::sample::select(vec!["reserve", "optimistic"]),
            prop::sample::select(vec!["crash", "reject", "preempt-recompute", "preempt-swap"]),
            any::<bool>(),
        ),
        (1u32..64, 16u32..2048),
        (64u64..4000, 0u64..(i64::MAX as u64)),
        (
            1u32..4,
            prop::sample::select(vec![0u32, 0, 4]),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                closed,
                rate,
                users,
                requests,
                prompt_max,
                output_max,
                policy,
                (admission, on_oom, chunked),
                (mns, mbt),
                (budget_tokens, seed),
                (n, turns, prefix_caching, hybrid),
            )| Case {
                closed,
                rate,
                users,
                requests,
                prompt_max,
                output_max,
                policy,
                admission,
                on_oom,
                chunked,
                // A request's samples count against max_num_seqs together,
                // and more of them than it holds is refused at load.
                max_num_seqs: mns.max(n),
                max_batched_tokens: mbt,
                budget_tokens,
                seed,
                n,
                turns,
                prefix_caching,
                hybrid,
            },
        )
}

proptest! {
    // 256 cases by default; PROPTEST_CASES=N runs a deeper search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_on_random_scenarios(case in cases()) {
        let hybrid: &[&str] = if case.hybrid {
            &["model.layers=2", "model.sliding_window={ window = 24, layers = 1 }"]
        } else {
            &[]
        };
        let s = scenario_with(&case.toml(), case.budget_tokens, hybrid);
        let out = run(&s);
        let m = &out.summary;

        // Every request that was issued ends exactly once, in one outcome.
        prop_assert_eq!(out.records.len() as u32, case.requests);
        let ended = m.ok + m.oom + m.unservable + m.crashed + m.timeout;
        prop_assert_eq!(ended, m.requests);
        for r in &out.records {
            let outcome = r.outcome.expect("every request ends");
            let fin = r.finished.expect("every request has an end time");
            prop_assert!(fin >= r.arrival);
            if let Some(a) = r.admitted { prop_assert!(a >= r.arrival && a <= fin); }
            if let Some(f) = r.first_token {
                prop_assert!(f >= r.admitted.unwrap() && f <= fin);
            }
            prop_assert!(r.output_tokens <= r.output_target);
            prop_assert!(r.output_target <= r.max_tokens * r.samples);
            if outcome == Outcome::Ok {
                prop_assert_eq!(r.output_tokens, r.output_target);
            }
        }

        // Time never goes back.
        for w in out.timeline.windows(2) {
            prop_assert!(w[0].time <= w[1].time);
        }

        // KV usage never exceeds the budget.
        let budget = case.budget_tokens * s.budget.bytes_per_token;
        let _ = TINY_BPT;
        for t in &out.timeline {
            prop_assert!(t.kv_used_bytes() <= budget, "{} > {}", t.kv_used_bytes(), budget);
            prop_assert!(t.fractions().kv <= 1.0);
        }
        prop_assert!(m.kv_peak_frac <= 1.0);

        // Reservations under reserve admission with a max-tokens reservation
        // cannot run out mid-generation.
        if case.admission == "reserve" && case.policy != "sliding" && !case.hybrid && case.n == 1 {
            prop_assert_eq!(m.oom, 0);
            prop_assert_eq!(m.crashed, 0);
        }

        // The waste breakdown partitions what is allocated, to the byte.
        for t in &out.timeline {
            let l = t.levels;
            prop_assert!(l.used + l.reserved + l.internal <= l.kv);
            prop_assert!(l.used + l.reserved + l.internal + l.external <= l.budget);
            if case.policy != "contiguous-buddy" {
                // Without allocator rounding, external waste is free memory.
                prop_assert!(l.kv + l.external <= l.budget);
            }
        }

        // Same seed, same bytes.
        let again = run(&s);
        prop_assert_eq!(requests_csv(&out.records).unwrap(), requests_csv(&again.records).unwrap());
    }
}
