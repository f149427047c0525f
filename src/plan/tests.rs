use super::*;
use crate::engine::simulate;

fn summary(ttft: f64, tpot: f64, oom: f64) -> Summary {
    Summary {
        ttft_p99: Some(ttft),
        tpot_p99: Some(tpot),
        oom_rate: oom,
        ..Summary::default()
    }
}

/// A probe that passes exactly up to `capacity` (a stand-in for a server).
fn threshold_probe(capacity: f64) -> impl FnMut(f64) -> Probe {
    move |rate| Probe {
        rate,
        excess: rate / capacity,
        worst: "ttft_p99",
        runs: Vec::new(),
        span_s: 0.0,
        unsteady: false,
    }
}

#[test]
fn the_search_brackets_then_bisects_to_the_precision() {
    let opts = SearchOptions::default();
    for capacity in [0.37, 1.0, 37.3, 1234.5] {
        let r = search_rate(&opts, threshold_probe(capacity));
        let best = r.best.expect("feasible").rate;
        assert!(best <= capacity, "{best} passed above capacity {capacity}");
        assert!(
            best >= capacity / (1.0 + opts.precision),
            "{best} not within 5 % of {capacity}"
        );
        let miss = r.nearest_miss.expect("bracketed").rate;
        assert!(miss > capacity && miss <= best * (1.0 + opts.precision) + 1e-12);
        assert!(!r.capped);
        // Bracketing by doubling or halving plus bisection to 5 %: a handful
        // of probes, not a scan.
        assert!(r.probes <= 25, "{} probes", r.probes);
    }
}

#[test]
fn the_search_reports_a_floor_and_an_infeasible_candidate() {
    let opts = SearchOptions {
        max_rate: 100.0,
        ..SearchOptions::default()
    };
    let r = search_rate(&opts, threshold_probe(f64::INFINITY));
    assert!(r.capped);
    assert_eq!(r.best.expect("passes").rate, 100.0);
    let r = search_rate(&opts, threshold_probe(0.0));
    assert!(r.best.is_none());
    assert_eq!(r.nearest_miss.expect("probed").rate, opts.min_rate);
}

#[test]
fn sizing_is_hand_computable() {
    // 20 req/s on replicas that sustain 6: 4 replicas of 4 GPUs at $4/h =
    // $64/h; 20 x 250 x 3600 = 18M output tokens an hour: $3.556 per million.
    let s = size(20.0, 6.0, 4, Some(4.0), 250.0);
    assert_eq!((s.replicas, s.gpus), (4, 16));
    assert_eq!(s.verified, None);
    assert_eq!(s.usd_per_hour, Some(64.0));
    assert!((s.usd_per_m_output_tokens.unwrap() - 64.0 / 18.0).abs() < 1e-12);
    // Exactly divisible loads need no extra replica.
    assert_eq!(size(30.0, 10.0, 1, None, 1.0).replicas, 3);
    assert_eq!(size(0.3, 0.1, 1, None, 1.0).replicas, 3);
    assert_eq!(size(30.1, 10.0, 1, None, 1.0).replicas, 4);
    assert_eq!(size(30.0, 10.0, 1, None, 1.0).usd_per_hour, None);
}

#[test]
fn doubling_the_load_never_needs_fewer_replicas() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..10_000 {
        // xorshift: reproducible loads and capacities over six decades.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let target = 10f64.powf((x % 6000) as f64 / 1000.0 - 2.0);
        let rate = 10f64.powf(((x >> 20) % 6000) as f64 / 1000.0 - 2.0);
        let one = size(target, rate, 2, Some(1.0), 100.0);
        let two = size(2.0 * target, rate, 2, Some(1.0), 100.0);
        assert!(two.replicas >= one.replicas, "{target} at {rate}");
        assert!(two.replicas <= 2 * one.replicas);
    }
}

#[test]
fn objectives_measure_the_worst_metric() {
    let o = Objectives {
        ttft_p99: Some(2.0),
        tpot_p99: Some(0.05),
        e2e_p99: None,
        oom_rate: 0.0,
    };
    let (excess, worst) = o.excess(&summary(1.0, 0.04, 0.0));
    assert!((excess - 0.8).abs() < 1e-12 && worst == "tpot_p99");
    assert!(o.met_by(&summary(2.0, 0.05, 0.0)));
    assert_eq!(o.excess(&summary(3.0, 0.01, 0.0)), (1.5, "ttft_p99"));
    // Any OOM misses a zero bound.
    assert!(!o.met_by(&summary(0.1, 0.01, 0.001)));
    // A run where nothing finished has no latency to meet the bound with.
    let empty = Summary {
        oom_rate: 0.0,
        ..Summary::default()
    };
    assert_eq!(o.excess(&empty).0, f64::INFINITY);
}

#[test]
fn the_slo_flag_overrides_and_rejects_nonsense() {
    let mut o = Objectives::default();
    o.apply_cli("ttft_p99=2, tpot_p99=0.05,oom_rate=0.01")
        .unwrap();
    assert_eq!(o.ttft_p99, Some(2.0));
    assert_eq!(o.tpot_p99, Some(0.05));
    assert_eq!(o.oom_rate, 0.01);
    for bad in [
        "ttft=2",
        "ttft_p99",
        "ttft_p99=x",
        "ttft_p99=-1",
        "oom_rate=2",
        "tpot_p99=inf",
        // The range of `[slo]`'s latencies: (0, 86400] s.
        "ttft_p99=0",
        "ttft_p99=1e300",
    ] {
        assert!(o.apply_cli(bad).is_err(), "{bad} accepted");
    }
    let e = o.apply_cli("ttft_p99=0").unwrap_err().to_string();
    assert!(
        e.contains("`--slo ttft_p99`: 0 is outside its physical range"),
        "{e}"
    );
}

const MOCK_SERVER: &str = r#"
name = "mock-plan"
seed = 3
requests = 2000

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "h100-sxm"

[traffic]
arrival = { kind = "constant", rate = 1.0 }
prompt = { kind = "fixed", value = 16 }
output = { kind = "fixed", value = 10 }

[scheduler]
max_num_seqs = 4

[slo]
ttft_p99 = 0.5

[plan]
target_rate = 100.0
replicates = 1
precision = 0.01
"#;

/// The mock server: every step costs 10 ms whatever it holds.
fn ten_ms_steps(s: &Scenario, seed: u64) -> Result<Summary, Error> {
    use crate::hardware::cost::FixedCost;
    use crate::units::SimDuration;
    let cost = FixedCost {
        per_step: SimDuration::from_nanos(10_000_000),
        per_prefill_token: SimDuration::ZERO,
        per_swap_kib: SimDuration::ZERO,
    };
    Ok(simulate(s, seed, cost).unwrap().summary)
}

fn plan_of(toml_text: &str) -> (toml::Table, Plan) {
    let table: toml::Table = toml_text.parse().unwrap();
    let plan = Plan::from_table(&table, Path::new("mock.toml"), None).unwrap();
    (table, plan)
}

#[test]
fn a_hand_computable_plan() {
    // Four sequences at a time, each holding its slot for 10 steps of 10 ms
    // (the prefill step makes the first token): c = 4 / 0.1 s = 40 requests/s.
    // Above c the queue grows by N (1 - c/r) requests over a run of N = 2000,
    // adding that backlog / c to the last TTFT: the 0.5 s objective tolerates
    // a backlog of 20, so rates up to c / (1 - 20/N) = 40.40 still pass, and
    // a finite run cannot tell them from c. Below c TTFT stays near a step.
    let (table, plan) = plan_of(MOCK_SERVER);
    let results = run_plan(&table, Path::new("mock.toml"), &plan, &ten_ms_steps);
    assert_eq!(results.len(), 1);
    let s = results[0].sizing.expect("feasible");
    assert!(
        (38.0..=40.0 / (1.0 - 20.0 / 2000.0)).contains(&s.rate_per_replica),
        "sustainable rate {}",
        s.rate_per_replica
    );
    // 100 req/s on replicas of about 40: three replicas, one GPU each, at the
    // catalog's H100 price.
    assert_eq!((s.replicas, s.gpus), (3, 3));
    // Three round-robin replicas at 100 req/s each get 33.3 req/s of
    // constant arrivals: the whole-deployment simulation meets the SLO.
    assert_eq!(s.verified, Some(true));
    let price = crate::catalog::gpu("h100-sxm")
        .unwrap()
        .price_per_hour
        .unwrap();
    assert!((s.usd_per_hour.unwrap() - 3.0 * price).abs() < 1e-9);
    assert_eq!(s.output_tokens_per_request, 10.0);
}

#[test]
fn a_stopped_simulation_drops_its_candidate_and_keeps_the_others() {
    // Two candidates; every simulation of the one with 8 slots is stopped
    // (as Ctrl-C would), possibly after some of its probes passed.
    let text = format!("{MOCK_SERVER}\n[plan.candidates]\n\"scheduler.max_num_seqs\" = [4, 8]\n");
    let (table, plan) = plan_of(&text);
    let stop_eight = |s: &Scenario, seed: u64| {
        if s.scheduler.max_num_seqs == 8 {
            Ok(None)
        } else {
            ten_ms_steps(s, seed).map(Some)
        }
    };
    let run = run_plan_stoppable(&table, Path::new("mock.toml"), &plan, &stop_eight);
    assert!(run.interrupted);
    assert_eq!(run.finished.len(), 1);
    assert_eq!(run.finished[0].index, 0);
    let whole = run_plan(&table, Path::new("mock.toml"), &plan, &ten_ms_steps);
    assert_eq!(
        run.finished[0].sizing.unwrap().rate_per_replica,
        whole[0].sizing.unwrap().rate_per_replica,
        "the finished candidate is as in an uninterrupted plan"
    );
}

#[test]
fn more_slots_or_a_faster_gpu_never_lower_the_sustainable_rate() {
    // The mock server with 2, 4 and 8 slots: capacity 20, 40, 80 req/s.
    let mut last = 0.0;
    for seqs in [2, 4, 8] {
        let text = MOCK_SERVER.replace("max_num_seqs = 4", &format!("max_num_seqs = {seqs}"));
        let (table, plan) = plan_of(&text);
        let r = run_plan(&table, Path::new("mock.toml"), &plan, &ten_ms_steps);
        let rate = r[0].sizing.expect("feasible").rate_per_replica;
        // Capacity seqs x 10 req/s, within the finite-run band above.
        let capacity = f64::from(seqs) * 10.0;
        let band = capacity / (1.0 - 0.5 * capacity / 2000.0);
        assert!(rate <= band && rate >= 0.95 * capacity, "{seqs}: {rate}");
        assert!(rate >= last);
        last = rate;
    }
}

const ROOFLINE_PLAN: &str = r#"
name = "roofline-plan"
seed = 5
requests = 400

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "a100-40gb"

[traffic]
arrival = { kind = "poisson", rate = 1.0 }
prompt = { kind = "lognormal", mean = 600, sigma = 0.8, min = 4, max = 4096 }
output = { kind = "lognormal", mean = 150, sigma = 0.8, min = 1, max = 1024 }

[slo]
ttft_p99 = 1.0
tpot_p99 = 0.04

[plan]
target_rate = 50.0
replicates = 2
start_rate = 4.0

[plan.candidates]
"hardware.gpu" = ["a100-40gb", "a100-80gb", "h100-sxm", "h200"]
"hardware.memory_utilization" = [0.6, 0.9]
"#;

#[test]
fn faster_gpus_and_larger_budgets_sustain_at_least_as_much() {
    let (table, plan) = plan_of(ROOFLINE_PLAN);
    let results = run_plan(&table, Path::new("roofline.toml"), &plan, &roofline_run);
    let rate = |gpu: &str, util: f64| {
        results
            .iter()
            .find(|r| {
                r.gpu == gpu
                    && r.assignments.iter().any(|(k, v)| {
                        k.ends_with("memory_utilization") && v.as_float() == Some(util)
                    })
            })
            .and_then(|r| r.sizing)
            .map_or(0.0, |s| s.rate_per_replica)
    };
    // Bandwidth order (A100-40GB < A100-80GB < H100 < H200) at equal budgets,
    // and a larger KV budget on the same GPU, never lose capacity.
    for util in [0.6, 0.9] {
        let order = ["a100-40gb", "a100-80gb", "h100-sxm", "h200"].map(|g| rate(g, util));
        assert!(order[0] > 0.0, "{order:?}");
        for w in order.windows(2) {
            assert!(w[1] >= w[0], "{util}: {order:?}");
        }
    }
    for gpu in ["a100-40gb", "a100-80gb", "h100-sxm", "h200"] {
        assert!(rate(gpu, 0.9) >= rate(gpu, 0.6), "{gpu}");
    }
    // Ranking: every feasible candidate ahead of every infeasible one, in
    // dollars per hour.
    let order = ranking(&results);
    let usd: Vec<f64> = order
        .iter()
        .filter_map(|&i| results[i].sizing.and_then(|s| s.usd_per_hour))
        .collect();
    assert!(usd.windows(2).all(|w| w[0] <= w[1]), "{usd:?}");
}

#[test]
fn the_pareto_front_keeps_only_undominated_candidates() {
    let (table, plan) = plan_of(ROOFLINE_PLAN);
    let results = run_plan(&table, Path::new("roofline.toml"), &plan, &roofline_run);
    let front = pareto_front(&results);
    assert!(front.iter().any(|&f| f));
    let point = |r: &CandidateResult| {
        r.sizing
            .and_then(|s| s.usd_per_m_output_tokens.map(|c| (s.rate_per_replica, c)))
    };
    for (i, r) in results.iter().enumerate() {
        let Some((x, y)) = point(r) else { continue };
        let dominated = results
            .iter()
            .filter_map(point)
            .any(|(ox, oy)| ox >= x && oy <= y && (ox > x || oy < y));
        assert_eq!(front[i], !dominated);
    }
    let csv = String::from_utf8(plan_csv(&results, &plan).unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 1 + results.len());
    assert!(plan_figure(&results, &plan).is_some());
}

#[test]
fn plans_without_a_queueing_objective_or_a_rate_are_refused() {
    let no_ttft = MOCK_SERVER.replace("ttft_p99 = 0.5", "tpot_p99 = 0.5");
    let table: toml::Table = no_ttft.parse().unwrap();
    let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
    assert!(e.to_string().contains("slo.ttft_p99"), "{e}");
    let closed = MOCK_SERVER.replace(
        "{ kind = \"constant\", rate = 1.0 }",
        "{ kind = \"closed\", users = 4 }",
    );
    let table: toml::Table = closed.parse().unwrap();
    let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
    assert!(e.to_string().contains("traffic.arrival"), "{e}");
    let no_plan = MOCK_SERVER.split("[plan]").next().unwrap();
    let table: toml::Table = no_plan.parse().unwrap();
    let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
    assert!(e.to_string().contains("plan"), "{e}");
    let bad = MOCK_SERVER.replace("target_rate = 100.0", "target_rate = -1.0");
    let table: toml::Table = bad.parse().unwrap();
    assert!(Plan::from_table(&table, Path::new("m.toml"), None).is_err());
}

#[test]
fn the_bisection_ends_whatever_the_precision() {
    // A precision below the spacing of floats once made the bisection loop
    // forever (the midpoint of adjacent floats is one of them).
    for precision in [1e-16, 1e-300, 0.0] {
        let opts = SearchOptions {
            precision,
            ..SearchOptions::default()
        };
        let r = search_rate(&opts, threshold_probe(37.3));
        assert!(r.probes <= 100, "{precision}: {} probes", r.probes);
        assert!(r.best.expect("feasible").rate <= 37.3);
    }
}

#[test]
fn a_probe_that_cannot_reach_a_steady_state_does_not_pass() {
    // The mock server passes everything; a window needing more than the
    // arrival cap makes the probe unsteady, and the search reports a floor.
    let (table, plan) = plan_of(MOCK_SERVER);
    let s = |r: f64, w: f64| candidate_scenario(&table, Path::new("m.toml"), &[], Some(r), w);
    let eval = |s: &Scenario, seed: u64| ten_ms_steps(s, seed).map(Some);
    let p = probe_at(&s, &eval, &plan.objectives, 1, 1e4, 1e3)
        .unwrap()
        .unwrap();
    assert!(p.unsteady && !p.passed());
    // At a sustainable rate the probe spans the plan's window.
    let p = probe_at(&s, &eval, &plan.objectives, 1, 10.0, plan.window_s)
        .unwrap()
        .unwrap();
    assert!(p.passed() && p.span_s >= plan.window_s, "{}", p.span_s);
    assert_eq!(plan.window_s, 0.5 / 0.01);
}

#[test]
fn candidates_and_prices_are_checked_at_load() {
    for (extra, needle) in [
        (
            "[plan.candidates]\n\"hardware.tp\" = [0]\n",
            "candidate 1 of 1 (hardware.tp=0)",
        ),
        ("[plan.candidates]\n\"nosuch.key\" = [1]\n", "nosuch"),
        (
            "[plan.prices]\n\"h100-sx\" = 1.0\n",
            "did you mean `h100-sxm`",
        ),
        ("[plan.prices]\n\"h100-sxm\" = -1.0\n", "physical range"),
    ] {
        let table: toml::Table = format!("{MOCK_SERVER}\n{extra}").parse().unwrap();
        let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    // A price for an inline candidate's GPU is accepted.
    let text = format!(
        "{MOCK_SERVER}\n[plan.prices]\n\"mine\" = 1.0\n[plan.candidates]\n\"hardware.gpu\" = \
         [{{ base = \"h100-sxm\", name = \"mine\" }}]\n"
    );
    let table: toml::Table = text.parse().unwrap();
    Plan::from_table(&table, Path::new("m.toml"), None).unwrap();
}

#[test]
fn tier_prices_add_exactly() {
    // 3 replicas of 2 GPUs at $2/GPU-hour = $12; each replica's 100 GB of
    // host memory at $0.01 and 1,000 GB of SSD at $0.001 per GB-hour = $2,
    // $6 for three; a 500 GB remote store at the host price, once: $5.
    // $23/h; 20 req/s x 250 tokens x 3600 s = 18M tokens an hour.
    let tiers = TierCost {
        per_replica: 100.0 * 0.01 + 1000.0 * 0.001,
        shared: 500.0 * 0.01,
    };
    let s = size_tiered(20.0, 7.0, 2, Some(2.0), tiers, 250.0);
    assert_eq!((s.replicas, s.gpus), (3, 6));
    assert!((s.usd_per_hour.unwrap() - 23.0).abs() < 1e-12);
    assert!((s.usd_per_hour_tiers - 11.0).abs() < 1e-12);
    assert!((s.usd_per_m_output_tokens.unwrap() - 23.0 / 18.0).abs() < 1e-12);
    // TierCost::of reads the same from a scenario's tiers.
    let table: toml::Table = r#"
        [[cache.tiers]]
        kind = "host"
        capacity_gb = 100
        [[cache.tiers]]
        kind = "ssd"
        capacity_gb = 1000
        [[cache.tiers]]
        kind = "remote"
        capacity_gb = 500
    "#
    .parse()
    .unwrap();
    let spec: Vec<crate::scenario::spec::TierSpec> =
        table["cache"]["tiers"].clone().try_into().unwrap();
    let prices = TierPrices {
        host_gb_hour: 0.01,
        ssd_gb_hour: 0.001,
    };
    assert_eq!(TierCost::of(Some(&spec), &prices), Some(tiers));
    assert_eq!(TierCost::of(None, &prices), None);
    // An unpriced GPU leaves the whole deployment unpriced.
    assert_eq!(
        size_tiered(20.0, 7.0, 2, None, tiers, 250.0).usd_per_hour,
        None
    );
    // The defaults: Google Cloud's $0.004237 per GiB-hour of N2 memory and
    // $0.08 per GiB-month of Local SSD, per GB (1e9 bytes).
    assert!((HOST_GB_HOUR - 0.003_946).abs() < 5e-7, "{HOST_GB_HOUR}");
    assert!((SSD_GB_HOUR - 0.000_102_06).abs() < 5e-9, "{SSD_GB_HOUR}");
}

#[test]
fn a_planned_tier_is_priced_per_replica() {
    // The mock server (three replicas of about 40 req/s for 100 req/s) with
    // a host tier of 0 or 100 GB and an SSD tier of 0 or 1,000 GB: the
    // tiers cost 100 x $0.01 + 1,000 x $0.001 = $2 per replica-hour over
    // the GPUs' 3 x $2.
    let text = format!(
        "{MOCK_SERVER}\n[plan.prices]\n\"h100-sxm\" = 2.0\nhost_gb_hour = 0.01\n\
         ssd_gb_hour = 0.001\n[plan.candidates]\nhost_gb = [0, 100]\nssd_gb = [0, 1000]\n"
    );
    let (table, plan) = plan_of(&text);
    assert_eq!(plan.tier_prices.host_gb_hour, 0.01);
    assert!(!plan.prices.contains_key("host_gb_hour"));
    let results = run_plan(&table, Path::new("mock.toml"), &plan, &ten_ms_steps);
    assert_eq!(results.len(), 4);
    for r in &results {
        let gb = |key: &str| {
            r.assignments
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.as_integer())
                .unwrap() as f64
        };
        let (host, ssd) = (gb("host_gb"), gb("ssd_gb"));
        let per_replica = host * 0.01 + ssd * 0.001;
        let s = r.sizing.expect("feasible");
        assert_eq!(s.replicas, 3, "{:?}", r.assignments);
        assert!((s.usd_per_hour_tiers - 3.0 * per_replica).abs() < 1e-12);
        assert!((s.usd_per_hour.unwrap() - (3.0 * 2.0 + 3.0 * per_replica)).abs() < 1e-12);
        assert_eq!(r.tier_cost.is_some(), host + ssd > 0.0);
    }
}

#[test]
fn a_candidate_of_0_gb_removes_the_tier_and_keeps_the_others() {
    let base: toml::Table = r#"
        [hardware]
        pcie_gbps = 40.0
        [cache]
        load = "layerwise"
        [[cache.tiers]]
        kind = "ssd"
        capacity_gb = 500
        [[cache.tiers]]
        kind = "host"
        capacity_gb = 64
        store = "on-evict"
    "#
    .parse()
    .unwrap();
    let path = Path::new("t.toml");
    let point = |pairs: &[(&str, toml::Value)]| {
        let assignments: Vec<(String, toml::Value)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        candidate_table(&base, path, &assignments).unwrap()
    };
    let tiers = |t: &toml::Table| -> Vec<toml::Table> {
        t["cache"]
            .get("tiers")
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().map(|v| v.as_table().unwrap().clone()).collect())
            .unwrap_or_default()
    };
    // host_gb = 0: the host entry goes, the SSD entry and the links stay.
    let t = point(&[("host_gb", toml::Value::Integer(0))]);
    let left = tiers(&t);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["kind"].as_str(), Some("ssd"));
    assert_eq!(t["cache"]["load"].as_str(), Some("layerwise"));
    // A new size keeps the entry's other fields (its store policy).
    let t = point(&[("host_gb", toml::Value::Integer(256))]);
    let host = tiers(&t)
        .into_iter()
        .find(|e| e["kind"].as_str() == Some("host"));
    let host = host.unwrap();
    assert_eq!(host["capacity_gb"].as_float(), Some(256.0));
    assert_eq!(host["store"].as_str(), Some("on-evict"));
    // Both 0: no tiers, and no keys that apply only to tiers.
    let t = point(&[
        ("host_gb", toml::Value::Integer(0)),
        ("ssd_gb", toml::Value::Float(0.0)),
    ]);
    assert!(tiers(&t).is_empty());
    assert!(t["cache"].get("tiers").is_none() && t["cache"].get("load").is_none());
    assert!(t["hardware"].get("pcie_gbps").is_none());
    // A tier the scenario does not have is added with the defaults, in
    // kind order; `router` sets hardware.router.
    let bare: toml::Table = "[cache]\npolicy = \"paged\"\n".parse().unwrap();
    let assignments = vec![
        ("ssd_gb".to_string(), toml::Value::Integer(1000)),
        ("host_gb".to_string(), toml::Value::Float(32.5)),
        ("router".to_string(), toml::Value::String("least-kv".into())),
    ];
    let t = candidate_table(&bare, path, &assignments).unwrap();
    let added = tiers(&t);
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["kind"].as_str(), Some("host"));
    assert_eq!(added[0]["capacity_gb"].as_float(), Some(32.5));
    assert_eq!(added[0].len(), 2, "{added:?}");
    assert_eq!(added[1]["kind"].as_str(), Some("ssd"));
    assert_eq!(t["hardware"]["router"].as_str(), Some("least-kv"));
    // Sizes that are not sizes are refused naming the key.
    for bad in [toml::Value::Integer(-64), toml::Value::String("64".into())] {
        let e = candidate_table(&bare, path, &[("host_gb".to_string(), bad)]).unwrap_err();
        assert!(e.to_string().contains("plan.candidates.\"host_gb\""), "{e}");
    }
}

#[test]
fn tier_prices_are_checked_at_load() {
    for (extra, needle) in [
        (
            "[plan.prices]\nhost_gb_hour = 2.9\n",
            "`plan.prices.host_gb_hour`: 2.9 is outside its physical range [0, 0.1] USD per \
             GB-hour",
        ),
        (
            "[plan.prices]\nssd_gb_hour = -0.001\n",
            "`plan.prices.ssd_gb_hour`: -0.001 is outside",
        ),
        (
            "[plan.prices]\nhost_gb_hours = 0.004\n",
            "did you mean `host_gb_hour`",
        ),
        (
            "[plan.candidates]\nhost_gb = [-1]\n",
            "candidate 1 of 1 (host_gb=-1)",
        ),
    ] {
        let table: toml::Table = format!("{MOCK_SERVER}\n{extra}").parse().unwrap();
        let e = Plan::from_table(&table, Path::new("m.toml"), None).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn host_memory_against_more_gpus_on_multi_turn_chat() {
    // scenarios/multi-turn-creep.toml with prefix caching, 300 s long, planned
    // for 2 new conversations a second (the plan's rate is the arrival rate:
    // conversations, each of up to 20 turns) on one H100 per replica, with no
    // host tier, 64 GB or 256 GB, at the default prices. Measured (roofline,
    // one replicate, 5 % precision):
    //
    //   host_gb  conv/s per replica  replicas  $/hour (tiers)   $/M out tok  host hits
    //   0        0.875               3         11.97  (0)       0.856        -
    //   64       0.969               3         12.728 (0.758)   0.900        8 %
    //   256      1.375               2         10.000 (2.020)   0.683        48 %
    //
    // 64 GB holds too little of the conversations to save a replica, so it
    // only adds its price; 256 GB lets two H100s do the work of three, and
    // costs $2.02 an hour against the $3.99 of the H100 it saves. The $/M
    // tokens count every turn's output: tokens per conversation started.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/multi-turn-creep.toml");
    let mut table = crate::scenario::read_table(&path).unwrap();
    for (key, value) in [
        ("cache.prefix_caching", toml::Value::Boolean(true)),
        ("duration_s", toml::Value::Float(300.0)),
        ("plan.target_rate", toml::Value::Float(2.0)),
        ("plan.replicates", toml::Value::Integer(1)),
        ("plan.start_rate", toml::Value::Float(0.5)),
        (
            "plan.candidates.host_gb",
            toml::Value::Array(vec![0.into(), 64.into(), 256.into()]),
        ),
    ] {
        crate::scenario::apply_override(&mut table, key, value).unwrap();
    }
    let plan = Plan::from_table(&table, &path, None).unwrap();
    let results = run_plan(&table, &path, &plan, &roofline_run);
    let sizing: Vec<Sizing> = results
        .iter()
        .map(|r| r.sizing.expect("feasible"))
        .collect();
    let [none, small, large] = [sizing[0], sizing[1], sizing[2]];
    // Host memory raises the rate one H100 sustains, 256 GB by over half.
    assert!(
        large.rate_per_replica > 1.5 * none.rate_per_replica,
        "{sizing:?}"
    );
    assert!(
        large.rate_per_replica > small.rate_per_replica,
        "{sizing:?}"
    );
    assert!(
        small.rate_per_replica >= none.rate_per_replica,
        "{sizing:?}"
    );
    assert_eq!(
        [none.replicas, small.replicas, large.replicas],
        [3, 3, 2],
        "{sizing:?}"
    );
    // GPUs at the catalog's H100 price plus each replica's host memory.
    let h100 = crate::catalog::gpu("h100-sxm")
        .unwrap()
        .price_per_hour
        .unwrap();
    for (s, gb) in [(none, 0.0), (small, 64.0), (large, 256.0)] {
        let replicas = s.replicas as f64;
        assert!((s.usd_per_hour_tiers - replicas * gb * HOST_GB_HOUR).abs() < 1e-9);
        assert!((s.usd_per_hour.unwrap() - replicas * (h100 + gb * HOST_GB_HOUR)).abs() < 1e-9);
    }
    // As the README says them.
    let dollars = |v: f64| format!("{v:.2}");
    assert_eq!(
        [none, small, large].map(|s| dollars(s.usd_per_hour.unwrap())),
        ["11.97", "12.73", "10.00"]
    );
    assert_eq!(dollars(large.usd_per_hour_tiers), "2.02");
    // 256 GB of host memory is cheaper per token than a third H100; 64 GB
    // costs more than it saves.
    let usd = |s: Sizing| s.usd_per_m_output_tokens.unwrap();
    assert!(
        usd(large) < usd(none) && usd(none) < usd(small),
        "{sizing:?}"
    );
    // The host tier is what changed: its hit rate at the sustainable rate.
    let hits = |i: usize| {
        results[i]
            .search
            .as_ref()
            .unwrap()
            .best
            .as_ref()
            .unwrap()
            .runs[0]
            .host_hit_rate
    };
    assert!(hits(0) == 0.0 && hits(2) > hits(1) && hits(1) > 0.0);
    // Clusters run multi-turn sessions: each sizing is checked by simulating
    // the whole deployment, and holds.
    assert!(
        sizing.iter().all(|s| s.verified == Some(true)),
        "{sizing:?}"
    );
}
