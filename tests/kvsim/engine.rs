//! Hand-computed scenarios: a 10 ms-per-step mock cost model, known lengths,
//! exact expected times, batches and outcomes.

use kvsim::metrics::Outcome;

use crate::common::{TINY_BPT, closed, ms, run, scenario};

#[test]
fn three_requests_batch_together_and_decode_in_lockstep() {
    // t=0: all three prefill (one step); t=10 ms: first tokens; four decode
    // steps later, at t=50 ms, each has its 5 tokens.
    let s = scenario(&closed(3, 3, 10, 5, ""), 10_000);
    let out = run(&s);
    assert_eq!(out.records.len(), 3);
    for r in &out.records {
        assert_eq!(r.outcome, Some(Outcome::Ok));
        assert_eq!(ms(Some(r.arrival)), 0.0);
        assert_eq!(ms(r.first_token), 10.0);
        assert_eq!(ms(r.finished), 50.0);
        assert_eq!(r.output_tokens, 5);
        assert_eq!(r.tpot_s(), Some(0.010));
    }
    let m = &out.summary;
    assert_eq!(m.steps, 5);
    assert_eq!(m.batch_peak, 3);
    assert_eq!(m.batch_mean, 3.0);
    assert_eq!(m.ttft_p50, Some(0.010));
    assert_eq!(m.tpot_p99, Some(0.010));
    assert_eq!(m.e2e_p99, Some(0.050));
    assert_eq!(m.duration_s, 0.050);
    assert_eq!(m.oom_rate, 0.0);
    // 15 output tokens in 50 ms.
    assert!((m.throughput_tok_s - 300.0).abs() < 1e-9);
}

#[test]
fn max_num_seqs_queues_the_rest_first_come_first_served() {
    // Only two run at once: the third waits for a whole request (5 steps).
    let s = scenario(
        &closed(3, 3, 10, 5, "[scheduler]\nmax_num_seqs = 2"),
        10_000,
    );
    let out = run(&s);
    let finish: Vec<f64> = out.records.iter().map(|r| ms(r.finished)).collect();
    assert_eq!(finish, vec![50.0, 50.0, 100.0]);
    assert_eq!(ms(out.records[2].admitted), 50.0);
    assert_eq!(ms(out.records[2].first_token), 60.0);
    assert_eq!(out.summary.batch_peak, 2);
}

#[test]
fn chunked_prefill_splits_a_long_prompt_across_steps() {
    // 100-token prompt, 32 tokens per step: 4 prefill steps (32+32+32+4), the
    // first token at the end of the 4th.
    let s = scenario(
        &closed(
            1,
            1,
            100,
            3,
            "[scheduler]\nmax_batched_tokens = 32\nchunked_prefill = true",
        ),
        10_000,
    );
    let out = run(&s);
    let r = &out.records[0];
    assert_eq!(ms(r.first_token), 40.0);
    assert_eq!(ms(r.finished), 60.0);
    assert_eq!(out.summary.steps, 6);
}

#[test]
fn without_chunked_prefill_a_prompt_longer_than_the_step_budget_is_unservable() {
    let s = scenario(
        &closed(
            1,
            1,
            100,
            3,
            "[scheduler]\nmax_batched_tokens = 32\nchunked_prefill = false",
        ),
        10_000,
    );
    let out = run(&s);
    assert_eq!(out.records[0].outcome, Some(Outcome::Unservable));
    assert_eq!(out.summary.oom_rate, 1.0);
}

/// Without chunked prefill a preempted sequence recomputes its prompt and
/// what it had generated in one step: once that outgrows
/// `max_batched_tokens` it can never be scheduled again. It ends as
/// `unservable` (as such a prompt does at arrival), not as an OOM.
#[test]
fn a_recomputed_prompt_past_the_step_budget_is_unservable_not_oom() {
    // Two sequences of prompt 20 and output 40 in 5 blocks of 16: both cross
    // 32 tokens (3 blocks each) at 13 generated tokens, so the newer is
    // preempted with 33 tokens to recompute, more than the 32 a step holds.
    let s = scenario(
        &closed(
            2,
            2,
            20,
            40,
            "[cache]\npolicy = \"paged\"\nblock_size = 16\n\
             [scheduler]\nmax_batched_tokens = 32\nchunked_prefill = false\n\
             on_oom = \"preempt-recompute\"",
        ),
        80,
    );
    let out = run(&s);
    let outcomes: Vec<_> = out.records.iter().map(|r| r.outcome).collect();
    assert!(out.summary.preemptions >= 1, "{:?}", out.summary);
    assert!(outcomes.contains(&Some(Outcome::Ok)), "{outcomes:?}");
    assert!(
        outcomes.contains(&Some(Outcome::Unservable)),
        "{outcomes:?}"
    );
    assert_eq!(out.summary.oom, 0);
    assert_eq!(out.summary.oom_events, 0);
}

/// Two requests of prompt 16 and output 40 (55 tokens at the end: 4 blocks of
/// 16 each) in a 4-block cache: together they fill it when both reach 32
/// tokens, at the start of step 18.
fn two_growing(on_oom: &str) -> kvsim::scenario::Scenario {
    scenario(
        &closed(
            2,
            2,
            16,
            40,
            &format!(
                "[cache]\npolicy = \"paged\"\nblock_size = 16\n[scheduler]\non_oom = \"{on_oom}\"\nrestart_s = 1.0"
            ),
        ),
        64,
    )
}

#[test]
fn preempt_recompute_evicts_the_newest_and_recomputes_it_later() {
    let out = run(&two_growing("preempt-recompute"));
    let (a, b) = (&out.records[0], &out.records[1]);
    // A never stops: 40 steps.
    assert_eq!(a.outcome, Some(Outcome::Ok));
    assert_eq!(ms(a.first_token), 10.0);
    assert_eq!(ms(a.finished), 400.0);
    assert_eq!(a.preemptions, 0);
    // B had 17 tokens when evicted at 170 ms; it waits for A (its 33-token
    // recompute needs 3 blocks), prefills 33 tokens at 400 ms, emits token 18
    // at 410 ms, and its last 22 tokens take until 630 ms.
    assert_eq!(b.outcome, Some(Outcome::Ok));
    assert_eq!(b.preemptions, 1);
    assert_eq!(ms(b.first_token), 10.0);
    assert_eq!(ms(b.finished), 630.0);
    assert_eq!(b.output_tokens, 40);
    let m = &out.summary;
    assert_eq!(m.preemptions, 1);
    assert_eq!(m.oom_events, 0);
    assert_eq!(m.oom_rate, 0.0);
    assert_eq!(m.steps, 63);
    assert_eq!(m.kv_peak_frac, 1.0);
    assert!(
        out.timeline
            .iter()
            .all(|t| t.kv_used_bytes() <= 64 * TINY_BPT)
    );
}

#[test]
fn reject_fails_the_sequence_that_cannot_grow() {
    let out = run(&two_growing("reject"));
    let (a, b) = (&out.records[0], &out.records[1]);
    // A (oldest, scheduled first) cannot grow at the start of step 18.
    assert_eq!(a.outcome, Some(Outcome::Oom));
    assert_eq!(ms(a.finished), 170.0);
    assert_eq!(a.output_tokens, 17);
    assert_eq!(b.outcome, Some(Outcome::Ok));
    assert_eq!(ms(b.finished), 400.0);
    assert_eq!(out.summary.oom_events, 1);
    assert_eq!(out.summary.oom_rate, 0.5);
}

#[test]
fn crash_fails_everything_in_flight() {
    let out = run(&two_growing("crash"));
    for r in &out.records {
        assert_eq!(r.outcome, Some(Outcome::Crashed));
        assert_eq!(ms(r.finished), 170.0);
    }
    assert_eq!(out.summary.oom_events, 1);
    assert_eq!(out.summary.oom_rate, 1.0);
}

#[test]
fn arrivals_while_the_server_is_down_are_refused() {
    // Open loop, one arrival every 50 ms; the crash at 170 ms takes the server
    // down for 1 s, so arrivals at 200 ms .. 1150 ms are refused.
    let s = scenario(
        r#"
name = "down"
requests = 40
[traffic]
arrival = { kind = "constant", rate = 20.0 }
prompt = { kind = "fixed", value = 16 }
output = { kind = "fixed", value = 40 }
[cache]
block_size = 16
[scheduler]
on_oom = "crash"
restart_s = 1.0
"#,
        64,
    );
    let out = run(&s);
    let crash_at = out
        .records
        .iter()
        .filter(|r| r.outcome == Some(Outcome::Crashed))
        .map(|r| r.finished.unwrap())
        .min()
        .expect("the server crashes");
    let back = crash_at.as_nanos() + 1_000_000_000;
    for r in &out.records {
        let t = r.arrival.as_nanos();
        if t > crash_at.as_nanos() && t < back {
            assert_eq!(r.outcome, Some(Outcome::Crashed), "arrival at {t} ns");
            assert_eq!(r.finished, Some(r.arrival));
        }
    }
    assert!(out.summary.oom_events >= 1);
}

#[test]
fn contiguous_reservation_admits_only_what_fits_and_never_ooms() {
    // Reserve prompt + max_tokens - 1 = 16 + 40 - 1 = 55 slots each: one at a
    // time in 64 slots, so the second waits for the first.
    let s = scenario(
        &closed(
            2,
            2,
            16,
            40,
            "[cache]\npolicy = \"contiguous\"\nreserve = \"max-tokens\"\n[scheduler]\non_oom = \"crash\"",
        ),
        64,
    );
    let out = run(&s);
    let (a, b) = (&out.records[0], &out.records[1]);
    assert_eq!(a.outcome, Some(Outcome::Ok));
    assert_eq!(b.outcome, Some(Outcome::Ok));
    assert_eq!(ms(a.finished), 400.0);
    assert_eq!(ms(b.admitted), 400.0);
    assert_eq!(ms(b.finished), 800.0);
    assert_eq!(out.summary.oom_events, 0);
    assert_eq!(out.summary.batch_peak, 1);
    assert_eq!(out.summary.batch_ceiling, 1);
}

#[test]
fn a_prompt_larger_than_the_whole_cache_is_unservable_at_once() {
    let s = scenario(&closed(1, 1, 100, 5, ""), 64);
    let out = run(&s);
    assert_eq!(out.records[0].outcome, Some(Outcome::Unservable));
    assert_eq!(out.records[0].finished, Some(out.records[0].arrival));
    assert_eq!(out.summary.steps, 0);
}

#[test]
fn a_sequence_that_outgrows_an_empty_cache_fails_instead_of_looping() {
    // 16 + 100 - 1 = 115 tokens can never fit in 64: preemption cannot help.
    let s = scenario(&closed(1, 1, 16, 100, "[cache]\nblock_size = 16"), 64);
    let out = run(&s);
    let r = &out.records[0];
    assert_eq!(r.outcome, Some(Outcome::Oom));
    assert_eq!(r.output_tokens, 49); // 64 tokens stored = 16 + 48 decodes
    assert_eq!(out.summary.oom_events, 1);
}

#[test]
fn a_sliding_window_lets_a_long_generation_run_in_a_small_cache() {
    // Window 32 in blocks of 16: at most 3 blocks (48 tokens) per sequence.
    let s = scenario(
        &closed(
            1,
            1,
            16,
            500,
            "[cache]\npolicy = \"sliding\"\nwindow = 32\nblock_size = 16",
        ),
        64,
    );
    let out = run(&s);
    assert_eq!(out.records[0].outcome, Some(Outcome::Ok));
    assert!(
        out.timeline
            .iter()
            .all(|t| t.kv_used_bytes() <= 48 * TINY_BPT)
    );
    assert_eq!(out.summary.steps, 500);
}

#[test]
fn queue_timeout_fails_requests_that_wait_too_long() {
    let s = scenario(
        &closed(
            3,
            3,
            10,
            50,
            "[scheduler]\nmax_num_seqs = 1\nqueue_timeout_s = 0.6",
        ),
        10_000,
    );
    let out = run(&s);
    let outcomes: Vec<_> = out.records.iter().map(|r| r.outcome.unwrap()).collect();
    // The first runs 500 ms; the second starts at 500 ms (waited 0.5 s < 0.6);
    // the third would start at 1 s: it times out.
    assert_eq!(outcomes, vec![Outcome::Ok, Outcome::Ok, Outcome::Timeout]);
}

#[test]
fn trace_replay_reproduces_the_file_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,prompt_tokens,output_tokens\n0.0,10,3\n0.015,20,2\n1.0,5,1\n",
    )
    .unwrap();
    let text = format!(
        "name = \"trace\"\n[traffic]\narrival = {{ kind = \"trace\", path = \"t.csv\" }}\n{}\n{}",
        crate::common::TINY_MODEL,
        crate::common::BIG_GPU
    );
    let s = kvsim::scenario::Scenario::from_toml(&text, &dir.path().join("s.toml"), &[]).unwrap();
    let out = run(&s);
    let got: Vec<(f64, u32, u32)> = out
        .records
        .iter()
        .map(|r| (ms(Some(r.arrival)), r.prompt_tokens, r.output_tokens))
        .collect();
    assert_eq!(got, vec![(0.0, 10, 3), (15.0, 20, 2), (1000.0, 5, 1)]);
    // The second request arrives mid-step and joins at the next step (20 ms):
    // first token at 30 ms, second at 40 ms.
    assert_eq!(ms(out.records[1].admitted), 20.0);
    assert_eq!(ms(out.records[1].finished), 40.0);
    // A one-token request ends with its prefill.
    assert_eq!(ms(out.records[2].finished), 1010.0);
}

/// Regression (found by the property test): when the only running sequence
/// failed alone, the scheduler skipped admissions for that pass and then
/// failed the innocent request at the head of the queue as if it could never
/// fit; and a failed request of `n = 2` that had not forked yet never ended.
#[test]
fn regression_a_failing_batch_does_not_fail_the_next_request_or_lose_samples() {
    let s = crate::common::scenario_with(
        r#"
name = "regression"
seed = 5783004158109482148
requests = 16
[traffic]
arrival = { kind = "poisson", rate = 1.0 }
prompt = { kind = "uniform", min = 1, max = 234 }
output = { kind = "uniform", min = 1, max = 98 }
n = 2
[cache]
policy = "paged"
[scheduler]
admission = "optimistic"
on_oom = "preempt-recompute"
chunked_prefill = false
max_num_seqs = 2
max_batched_tokens = 230
"#,
        128,
        &[],
    );
    let out = run(&s);
    assert!(
        out.records.iter().all(|r| r.outcome.is_some()),
        "every request ends"
    );
    // Request 10 (a 60-token prompt) fits an empty 128-token cache: it must
    // at least be admitted and prefilled (whether its second sample, whose
    // length is drawn at the fork, then fits is another matter).
    let r = &out.records[10];
    assert_eq!(r.prompt_tokens, 60);
    assert!(r.admitted.is_some() && r.output_tokens >= 1, "{r:?}");
}

/// Each step's batch is held by one limit, and a run reports the share of
/// busy time each held (hand-counted steps of 10 ms).
#[test]
fn the_limit_that_held_the_batch_is_counted_step_by_step() {
    use kvsim::metrics::BatchLimit;
    // max_num_seqs: two run while the third waits (5 steps), then it runs
    // alone with nothing waiting (5 steps).
    let s = scenario(
        &closed(3, 3, 10, 5, "[scheduler]\nmax_num_seqs = 2"),
        10_000,
    );
    let m = run(&s).summary;
    assert_eq!((m.batch_bound_seqs, m.batch_bound_load), (0.5, 0.5));
    assert_eq!((m.batch_bound_kv, m.batch_bound_tokens), (0.0, 0.0));

    // The token budget: without chunked prefill the second 100-token prompt
    // waits while the first one's prefill (1 step) and decodes (2 steps)
    // leave less than 100 tokens in each step; then it runs alone (3 steps).
    let s = scenario(
        &closed(
            2,
            2,
            100,
            3,
            "[scheduler]\nmax_batched_tokens = 100\nchunked_prefill = false",
        ),
        10_000,
    );
    let m = run(&s).summary;
    assert_eq!((m.batch_bound_tokens, m.batch_bound_load), (0.5, 0.5));

    // KV memory: both grow until B is preempted at the 18th step; B cannot
    // come back until A ends (23 steps held by memory), then runs alone.
    let m = run(&two_growing("preempt-recompute")).summary;
    assert_eq!(m.steps, 63);
    assert_eq!(m.batch_bound_kv, 23.0 / 63.0);
    assert_eq!(m.batch_bound_load, 40.0 / 63.0);
    assert_eq!(m.batch_limit(), BatchLimit::Load);
    // The in-flight ceiling: the budget over the KV a running sequence held
    // on average, here more than one (both fit while young).
    assert!(m.batch_ceiling_inflight >= 1, "{m:?}");
}

/// Goodput counts requests over the arrival window, not the drain: one user
/// sends three 5-step requests back to back (arrivals at 0, 50 and 100 ms;
/// the last ends at 150 ms): 3 good requests over 0.1 s, not 0.15 s.
#[test]
fn goodput_is_over_the_arrival_window() {
    let out = run(&scenario(&closed(1, 3, 10, 5, ""), 10_000));
    let arrivals: Vec<f64> = out.records.iter().map(|r| ms(Some(r.arrival))).collect();
    assert_eq!(arrivals, [0.0, 50.0, 100.0]);
    assert_eq!(out.summary.duration_s, 0.15);
    assert!(
        (out.summary.goodput_rps - 30.0).abs() < 1e-9,
        "{}",
        out.summary.goodput_rps
    );
}

/// A request's parallel samples count against `max_num_seqs` together, as
/// vLLM schedules them: with 4 samples and room for 6 sequences, one request
/// runs at a time (never 8 sequences); more samples than room is refused.
#[test]
fn parallel_samples_count_against_max_num_seqs() {
    let s = scenario(
        &closed(3, 6, 10, 5, "n = 4\n[scheduler]\nmax_num_seqs = 6"),
        10_000,
    );
    let out = run(&s);
    assert_eq!(out.summary.batch_peak, 4);
    assert!(out.timeline.iter().all(|t| t.running <= 4));
    assert_eq!(out.summary.ok, 6);
    let text = format!(
        "{}\n{}\n{}",
        closed(3, 6, 10, 5, "n = 4\n[scheduler]\nmax_num_seqs = 3"),
        crate::common::TINY_MODEL,
        crate::common::BIG_GPU
    );
    let e = kvsim::scenario::Scenario::from_toml(&text, std::path::Path::new("s.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`traffic.n`: 4 samples per request exceed scheduler.max_num_seqs = 3"),
        "{e}"
    );
}

/// A run read for its summary alone (sweeps, plans) or its records and
/// summary (validation) records no timeline and keeps exactly what the full
/// run keeps: every bundled scenario (one engine, replicas behind a router,
/// KV tiers, a disaggregated deployment), the summary field by field through
/// `summary.json`'s serialization.
#[test]
fn a_summary_alone_is_the_full_runs_summary() {
    use kvsim::engine::{Limits, simulate_limited, simulate_summary, simulate_without_timeline};
    use kvsim::hardware::cost::RooflineCost;
    let mut ran = 0;
    for path in crate::common::bundled_scenarios() {
        let s = kvsim::scenario::Scenario::load(&path, &[]).expect("a bundled scenario");
        let cost = || RooflineCost::new(&s.model, &s.deployment, &s.deployment.efficiency);
        let full = simulate_limited(&s, s.seed, cost(), &Limits::default()).expect("runs");
        assert!(!full.timeline.is_empty(), "{}", path.display());
        let alone = simulate_summary(&s, s.seed, cost(), &Limits::default()).expect("runs");
        assert_eq!(
            serde_json::to_string(&alone).unwrap(),
            serde_json::to_string(&full.summary).unwrap(),
            "{}",
            path.display()
        );
        let untimed = simulate_without_timeline(&s, s.seed, cost(), &Limits::default()).unwrap();
        assert!(untimed.timeline.is_empty(), "{}", path.display());
        assert_eq!(untimed.records, full.records, "{}", path.display());
        ran += 1;
    }
    assert!(ran >= 13, "{ran} bundled scenarios");
}

/// `.ci/run`'s invariants pass sets `KVSIM_REQUIRE_INVARIANTS`: there the
/// library these tests link (and the binary they run) must check its
/// invariants. Built without the `invariants` feature, the pass would check
/// nothing, silently.
#[test]
fn required_invariant_checks_are_compiled_in() {
    let required = std::env::var_os("KVSIM_REQUIRE_INVARIANTS").is_some();
    assert!(
        kvsim::INVARIANT_CHECKS || !required,
        "KVSIM_REQUIRE_INVARIANTS is set but the invariant checks are compiled out: \
         build with --features invariants (or in debug)"
    );
}
