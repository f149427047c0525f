//! `kvsim plan` as users meet it: the bundled scenario, exit codes, files.

use std::path::Path;

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A small plan: Llama-3.1-8B on two GPU types, two budgets.
const SMALL_PLAN: &str = r#"
name = "small-plan"
seed = 2
requests = 300

[model]
preset = "llama-3.1-8b"

[hardware]
gpu = "h100-sxm"

[traffic]
arrival = { kind = "poisson", rate = 1.0 }
prompt = { kind = "lognormal", mean = 500, sigma = 0.8, min = 4, max = 4096 }
output = { kind = "lognormal", mean = 120, sigma = 0.8, min = 1, max = 1024 }

[slo]
ttft_p99 = 1.0
tpot_p99 = 0.04

[plan]
target_rate = 30.0
replicates = 2
start_rate = 4.0

[plan.candidates]
"hardware.gpu" = ["a100-80gb", "h100-sxm"]
"cache.kv_dtype" = ["bf16", "fp8"]
"#;

fn plan_in(dir: &Path, text: &str, extra: &[&str]) -> std::process::Output {
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    kvsim()
        .args(["plan", path.to_str().unwrap(), "--out"])
        .arg(dir.join("o"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn plan_ranks_candidates_and_writes_csv_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = plan_in(dir.path(), SMALL_PLAN, &["--format", "svg"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("plan for 30 req/s"), "{stdout}");
    assert!(stdout.contains("pareto"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("o/plan.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    assert_eq!(&header[0], "rank");
    assert_eq!(&header[1], "hardware.gpu");
    assert_eq!(&header[2], "cache.kv_dtype");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    // Ranked by dollars per hour, each row's replicas x rate covering the load.
    let mut last = 0.0;
    for r in &records {
        assert_eq!(&r[col("feasible")], "true");
        let usd: f64 = r[col("usd_per_hour")].parse().unwrap();
        assert!(usd >= last);
        last = usd;
        let replicas: f64 = r[col("replicas")].parse().unwrap();
        let rate: f64 = r[col("rate_per_replica")].parse().unwrap();
        assert!(replicas * rate >= 30.0 && (replicas - 1.0) * rate < 30.0);
    }
    let svg = std::fs::read_to_string(dir.path().join("o/plan.svg")).unwrap();
    assert!(svg.contains("Pareto front"));
}

#[test]
fn an_impossible_objective_exits_1_with_the_nearest_miss() {
    let dir = tempfile::tempdir().unwrap();
    let out = plan_in(
        dir.path(),
        SMALL_PLAN,
        &["--slo", "ttft_p99=0.0001", "--format", "svg"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("infeasible"), "{stdout}");
    assert!(stdout.contains("ttft_p99 at"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no candidate meets the objectives"));
    // The table is still written for the record.
    assert!(dir.path().join("o/plan.csv").exists());
}

#[test]
fn bad_plan_input_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, flags, needle) in [
        (
            SMALL_PLAN.replace("target_rate = 30.0", "target_rate = 0"),
            vec![],
            "plan.target_rate",
        ),
        (
            SMALL_PLAN.replace("replicates = 2", "replicates = 2\nspeed = 3"),
            vec![],
            "speed",
        ),
        (SMALL_PLAN.to_string(), vec!["--slo", "ttft=1"], "ttft"),
        (
            SMALL_PLAN.replace(
                "\"cache.kv_dtype\" = [\"bf16\", \"fp8\"]",
                "\"cache.kv_dtype\" = []",
            ),
            vec![],
            "plan.candidates",
        ),
    ] {
        let out = plan_in(dir.path(), &text, &flags);
        assert_eq!(out.status.code(), Some(2), "{needle}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn the_bundled_plan_scenario_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/plan-llama70b.toml");
    let table = kvsim::scenario::read_table(&path).unwrap();
    let plan = kvsim::plan::Plan::from_table(&table, &path, None).unwrap();
    assert_eq!(plan.candidates.len(), 18);
    assert_eq!(plan.target_rate, 20.0);
}

/// Load-time warnings reach `plan`'s stderr too (once, though all four
/// candidates share the traffic): a log-normal whose clamping makes every
/// prompt its `min`.
#[test]
fn plan_prints_load_time_warnings_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL_PLAN
        .replace(
            "prompt = { kind = \"lognormal\", mean = 500, sigma = 0.8,",
            "prompt = { kind = \"lognormal\", mean = 500, sigma = 50.0,",
        )
        .replace("requests = 300", "requests = 50");
    let out = plan_in(dir.path(), &text, &["--format", "svg"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let warning = "`traffic.prompt`: clamping to [min, max] = [4, 4096] moves the mean from the \
                   requested 500 to 4";
    assert_eq!(err.matches(warning).count(), 1, "{err}");
}

/// A plan whose probes were once 150 requests: at a huge rate that is a
/// burst, not a steady state, and it called a100-80gb good for 512 req/s and
/// h100 for >= 100000. Probes now span the tightest queueing objective over
/// the precision (and ten median end-to-end latencies), so the answer no
/// longer depends on the scenario's request count.
#[test]
fn the_sustainable_rate_does_not_depend_on_the_probe_length() {
    const ATTACK: &str = r#"
name = "atk-plan"
seed = 3
requests = 150
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 5.0 }
prompt = { kind = "fixed", value = 200 }
output = { kind = "fixed", value = 50 }
[slo]
ttft_p99 = 2.0
tpot_p99 = 0.1
[plan]
target_rate = 20.0
replicates = 1
start_rate = 4.0
[plan.candidates]
"hardware.gpu" = ["h100-sxm", "a100-80gb"]
"#;
    let rates = |requests: u32| -> Vec<(String, f64, String)> {
        let dir = tempfile::tempdir().unwrap();
        let text = ATTACK.replace("requests = 150", &format!("requests = {requests}"));
        let out = plan_in(dir.path(), &text, &["--format", "svg"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let csv = std::fs::read_to_string(dir.path().join("o/plan.csv")).unwrap();
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let header = rows.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let mut v: Vec<(String, f64, String)> = rows
            .records()
            .map(Result::unwrap)
            .map(|r| {
                (
                    r[col("gpu")].to_string(),
                    r[col("rate_per_replica")].parse().unwrap(),
                    r[col("rate_is_floor")].to_string(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let short = rates(150);
    let long = rates(15000);
    for (s, l) in short.iter().zip(&long) {
        assert_eq!(s.0, l.0);
        assert!(
            (s.1 / l.1 - 1.0).abs() <= 0.15,
            "{}: {} req/s with 150 requests, {} with 15000",
            s.0,
            s.1,
            l.1
        );
        assert_eq!(s.2, "false", "{short:?}");
    }
    // And far below the burst's 512 and 100000 req/s.
    assert!(short.iter().all(|r| r.1 < 200.0), "{short:?}");
}

/// Host memory among the candidates: the table and `plan.csv` show each
/// row's `host_gb` and split its dollars into GPUs and tiers, priced at
/// `[plan.prices]` `host_gb_hour` (here $0.01 per GB-hour, given with --set).
#[test]
fn host_memory_candidates_are_priced_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let text = SMALL_PLAN
        .replace(
            "\"hardware.gpu\" = [\"a100-80gb\", \"h100-sxm\"]\n\"cache.kv_dtype\" = [\"bf16\", \"fp8\"]",
            "host_gb = [0, 64]",
        )
        .replace("requests = 300", "requests = 150");
    assert!(text.contains("host_gb = [0, 64]"));
    let out = plan_in(
        dir.path(),
        &text,
        &[
            "--format",
            "svg",
            "--set",
            "plan.prices.host_gb_hour=0.01",
            "--set",
            "plan.prices.\"h100-sxm\"=2.0",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("of which tiers"), "{stdout}");
    assert!(stdout.contains("host_gb=64"), "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("o/plan.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    assert_eq!(&header[1], "host_gb");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        let num = |name: &str| r[col(name)].parse::<f64>().unwrap();
        let replicas = num("replicas");
        // $2 per GPU-hour, $0.01 per GB-hour of host memory per replica.
        assert_eq!(num("usd_per_hour_gpus"), 2.0 * replicas);
        assert!((num("usd_per_hour_tiers") - replicas * num("host_gb") * 0.01).abs() < 1e-9);
        assert!(
            (num("usd_per_hour") - num("usd_per_hour_gpus") - num("usd_per_hour_tiers")).abs()
                < 1e-9
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("o/plan.svg")).unwrap();
    assert!(
        svg.contains("host 64 GB"),
        "the chart's legend names the tier"
    );
}

#[test]
fn a_memory_price_out_of_range_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // $2.9 per GB-month of DRAM given as a price per GB-hour.
    let out = plan_in(
        dir.path(),
        SMALL_PLAN,
        &["--set", "plan.prices.host_gb_hour=2.9"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`plan.prices.host_gb_hour`"), "{err}");
    assert!(err.contains("[0, 0.1] USD per GB-hour"), "{err}");
}
