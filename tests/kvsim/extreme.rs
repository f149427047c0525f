//! Extreme but valid scenarios work or are refused clearly; runs that would
//! take too long are bounded by `--max-events` / `--time-limit` (exit 3);
//! Ctrl-C keeps a sweep's finished points; an unwritable output directory is
//! an error before anything is simulated.

use std::path::Path;

use assert_cmd::Command;
use kvsim::metrics::Outcome;

use crate::common::{TINY_MODEL, closed, run, scenario, scenario_with};

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

fn ended(out: &kvsim::engine::RunOutput, outcome: Outcome) -> usize {
    out.records
        .iter()
        .filter(|r| r.outcome == Some(outcome))
        .count()
}

#[test]
fn a_ten_million_token_context_runs_when_the_model_allows_it() {
    let body = closed(1, 2, 10_000_000, 4, "");
    let s = scenario_with(&body, 25_000_000, &["model.max_model_len=16000000"]);
    let out = run(&s);
    assert_eq!(ended(&out, Outcome::Ok), 2, "{:?}", out.summary);
    let r = &out.records[0];
    assert_eq!(r.prompt_tokens, 10_000_000);
    // Chunked prefill of 8192 tokens per step: ~1221 steps of 10 ms first.
    assert!(r.first_token.unwrap().as_secs_f64() > 12.0);
}

#[test]
fn a_ten_million_token_prompt_beyond_max_model_len_fails_as_unservable() {
    let out = run(&scenario(&closed(1, 3, 10_000_000, 4, ""), 1 << 20));
    assert_eq!(ended(&out, Outcome::Unservable), 3);
}

#[test]
fn the_cli_warns_when_prompts_reach_max_model_len() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("long.toml");
    std::fs::write(
        &p,
        format!(
            "{}\n{TINY_MODEL}\n[hardware]\ngpu = \"h100-sxm\"\n",
            closed(1, 2, 10_000_000, 4, "")
        ),
    )
    .unwrap();
    let out = kvsim()
        .args(["run", p.to_str().unwrap(), "--json", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prompts of up to 10000000 tokens reach tiny's max_model_len (4096)"),
        "{err}"
    );
}

#[test]
fn a_million_concurrent_users_run_to_completion() {
    let s = scenario(&closed(1_000_000, 1_000_000, 8, 2, ""), 1 << 16);
    let out = run(&s);
    assert_eq!(out.records.len(), 1_000_000);
    assert_eq!(ended(&out, Outcome::Ok), 1_000_000);
}

#[test]
fn a_budget_of_a_few_blocks_serves_one_at_a_time_and_fails_what_never_fits() {
    // Three 16-token blocks: a 40-token sequence fits alone.
    let s = scenario(&closed(4, 12, 20, 20, ""), 48);
    let out = run(&s);
    assert_eq!(ended(&out, Outcome::Ok), 12);
    assert!(out.summary.batch_peak <= 2, "{}", out.summary.batch_peak);
    // Two blocks: each sequence outgrows the whole cache; it fails, never hangs.
    for on_oom in ["preempt-recompute", "preempt-swap", "reject", "crash"] {
        let extra = format!("[scheduler]\non_oom = \"{on_oom}\"");
        let out = run(&scenario(&closed(3, 6, 20, 20, &extra), 32));
        assert_eq!(out.records.len(), 6, "{on_oom}");
        assert_eq!(ended(&out, Outcome::Ok), 0, "{on_oom}");
    }
}

fn open_loop(rate: &str, stop: &str) -> String {
    format!(
        r#"
name = "rates"
{stop}
[traffic]
arrival = {{ kind = "poisson", rate = {rate} }}
prompt = {{ kind = "fixed", value = 16 }}
output = {{ kind = "fixed", value = 4 }}
"#
    )
}

#[test]
fn rates_of_one_in_a_million_and_a_million_per_second_run() {
    let out = run(&scenario(&open_loop("1e-6", "requests = 3"), 1 << 12));
    assert_eq!(ended(&out, Outcome::Ok), 3);
    // Arrivals a million seconds apart on average.
    assert!(out.records[2].arrival.as_secs_f64() > 1e4);
    let out = run(&scenario(&open_loop("1e6", "requests = 20000"), 1 << 16));
    assert_eq!(ended(&out, Outcome::Ok), 20_000);
    assert!(out.records[19_999].arrival.as_secs_f64() < 0.1);
}

#[test]
fn a_month_of_simulated_time_runs() {
    let month = 30.0 * 86400.0;
    let out = run(&scenario(
        &open_loop("1e-3", &format!("duration_s = {month}")),
        1 << 12,
    ));
    // ~2592 requests expected.
    assert!(
        (2300..2900).contains(&out.records.len()),
        "{}",
        out.records.len()
    );
    assert!(out.records.iter().all(|r| r.arrival.as_secs_f64() < month));
    assert_eq!(ended(&out, Outcome::Ok), out.records.len());
}

/// A month of chat traffic at 20 req/s on a real model: hours of CPU.
const MONTH: &str = r#"
name = "month"
duration_s = 2592000
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 20.0 }
prompt = { kind = "lognormal", mean = 500, sigma = 1.0, min = 4, max = 8192 }
output = { kind = "lognormal", mean = 300, sigma = 1.0, min = 1, max = 2048 }
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_long_run_is_announced_and_stopped_by_max_events_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "month.toml", MONTH);
    let out = dir.path().join("o");
    let result = kvsim()
        .args([
            "run",
            sc.to_str().unwrap(),
            "--max-events",
            "20000",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(3));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("warning: ") && err.contains("a large simulation"),
        "{err}"
    );
    assert!(err.contains("--max-events 20000"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!out.join("summary.json").exists());
}

#[test]
fn a_time_limit_stops_a_run_and_a_sweep_keeps_its_finished_points() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "month.toml", MONTH);
    let started = std::time::Instant::now();
    let result = kvsim()
        .args(["run", sc.to_str().unwrap(), "--time-limit", "0.5", "--out"])
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(3));
    assert!(started.elapsed().as_secs_f64() < 30.0);
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("stopped by --time-limit"), "{err}");

    // A quick point and a month-long one: the first is kept.
    let sweep = format!("{MONTH}\n[sweep]\nduration_s = [1.0, 2592000.0]\n");
    let sc = write(dir.path(), "sweep.toml", &sweep);
    let out = dir.path().join("s");
    let result = kvsim()
        .args([
            "sweep",
            sc.to_str().unwrap(),
            "--time-limit",
            "3",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(3));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("point 1 (duration_s=2592000"), "{err}");
    assert!(err.contains("sweep.partial.csv"), "{err}");
    assert_one_point_kept(&out);
}

#[test]
fn guard_flags_refuse_nonsense() {
    for (flag, value) in [
        ("--max-events", "0"),
        ("--max-events", "-3"),
        ("--time-limit", "0"),
        ("--time-limit", "nan"),
        ("--time-limit", "soon"),
    ] {
        kvsim()
            .args(["run", "scenarios/quickstart.toml", flag, value])
            .assert()
            .code(2);
    }
}

#[test]
fn an_unwritable_output_directory_is_an_error_before_simulating() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "month.toml", MONTH);
    // A regular file where the directory should be (permissions do not stop
    // root, a file in the way stops everyone).
    let blocker = write(dir.path(), "not-a-dir", "");
    for cmd in ["run", "sweep"] {
        let started = std::time::Instant::now();
        let result = kvsim()
            .args([cmd, sc.to_str().unwrap(), "--out"])
            .arg(blocker.join("out"))
            .output()
            .unwrap();
        assert_eq!(result.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&result.stderr);
        assert!(err.contains("not-a-dir"), "{err}");
        // The month would take many minutes: nothing was simulated.
        assert!(started.elapsed().as_secs_f64() < 20.0, "{cmd}");
        assert!(!err.contains("a large simulation"), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_a_sweep_keeps_finished_points_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = format!("{MONTH}\n[sweep]\nduration_s = [1.0, 2592000.0, 2592000.0]\n");
    let sc = write(dir.path(), "sweep.toml", &sweep);
    let out = dir.path().join("s");
    let bin = assert_cmd::cargo::cargo_bin("kvsim");
    let child = std::process::Command::new(bin)
        .args([
            "sweep",
            sc.to_str().unwrap(),
            "--threads",
            "1",
            "--no-plots",
            "--out",
        ])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first point (~20 requests) takes milliseconds; then the month runs.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let result = child.wait_with_output().unwrap();
    // The month in flight stopped too, within moments.
    assert!(started.elapsed().as_secs_f64() < 10.0);
    assert_eq!(result.status.code(), Some(130));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("interrupted"), "{err}");
    assert_one_point_kept(&out);
}

#[test]
fn the_kv_calculator_refuses_shapes_that_overflow() {
    let out = kvsim()
        .args([
            "kv",
            "--layers",
            "4294967295",
            "--kv-heads",
            "4294967295",
            "--head-dim",
            "4294967295",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("overflows 64-bit bytes per token"), "{err}");
}

#[test]
fn the_work_estimate_scales_with_the_scenario() {
    let month = kvsim::scenario::Scenario::from_toml(MONTH, Path::new("month.toml"), &[]).unwrap();
    let e = kvsim::engine::estimate_work(&month);
    // 20 req/s for 30 days.
    assert!((e.requests - 20.0 * 2_592_000.0).abs() < 1.0, "{e:?}");
    assert!(e.wall_s > kvsim::engine::WARN_WALL_S, "{e:?}");
    let short = kvsim::scenario::Scenario::from_toml(
        MONTH,
        Path::new("month.toml"),
        &["duration_s=10".to_string()],
    )
    .unwrap();
    let e = kvsim::engine::estimate_work(&short);
    assert!((e.requests - 200.0).abs() < 1e-6, "{e:?}");
    assert!(e.wall_s < 1.0, "{e:?}");
    // Closed loop with a request count: exactly that many.
    let s = scenario(&closed(1_000_000, 1_000_000, 8, 2, ""), 1 << 16);
    assert_eq!(kvsim::engine::estimate_work(&s).requests, 1e6);
}

/// The interrupted or stopped sweep kept its one finished point in
/// `sweep.partial.csv` and wrote no `sweep.csv`.
fn assert_one_point_kept(out: &std::path::Path) {
    let partial = std::fs::read_to_string(out.join("sweep.partial.csv")).unwrap();
    assert_eq!(partial.lines().count(), 2, "{partial}");
    assert!(!out.join("sweep.csv").exists());
}

/// Quickstart traffic (llama-3.1-8b on h100-sxm at 25 req/s) for 200,000
/// requests: the run whose peak memory calibrates the memory estimate.
const MEASURED: &str = r#"
name = "measured"
seed = 7
requests = 200000
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 25.0 }
prompt = { kind = "lognormal", mean = 161, sigma = 1.0, min = 4, max = 4096 }
output = { kind = "lognormal", mean = 338, sigma = 1.0, min = 1, max = 2048 }
max_tokens = { kind = "fixed", value = 2048 }
"#;

/// Runs [`MEASURED`] (with `KVSIM_MEASURE_SET` as one `--set`, if given) and
/// writes its files, then prints how far the run raised this process's peak
/// RSS. Run alone in a process of its own by
/// `the_memory_estimate_covers_a_measured_run`, so the peak is the run's.
#[test]
#[ignore = "run in a process of its own by the_memory_estimate_covers_a_measured_run"]
fn measure_the_peak_memory_of_a_run() {
    let base = kvsim::engine::peak_rss_bytes().expect("Linux /proc");
    let set: Vec<String> = std::env::var("KVSIM_MEASURE_SET").into_iter().collect();
    let s =
        kvsim::scenario::Scenario::from_toml(MEASURED, Path::new("measured.toml"), &set).unwrap();
    let d = &s.deployment;
    let cost = kvsim::hardware::cost::RooflineCost::new(&s.model, d, &d.efficiency);
    let out = kvsim::engine::simulate(&s, s.seed, cost).unwrap();
    // Written as `kvsim run` writes them.
    let dir = tempfile::tempdir().unwrap();
    let target = kvsim::output::OutputDir::begin(&dir.path().join("out"), "run", &[]).unwrap();
    kvsim::report::write_run(&target, &s, s.seed, &out, s.table_format).unwrap();
    target.commit().unwrap();
    let peak = kvsim::engine::peak_rss_bytes().unwrap();
    println!(
        "MEASURED delta={} requests={} rows={} steps={}",
        peak - base,
        out.records.len(),
        out.timeline.len(),
        out.summary.steps
    );
}

/// The memory estimate of a run is at least what a real run's peak RSS
/// grows by, and not wildly more (within 3x): with the default timeline
/// (bounded), a row per step, and a row an hour. Linux only: it reads VmHWM
/// from /proc/self/status.
#[cfg(target_os = "linux")]
#[test]
fn the_memory_estimate_covers_a_measured_run() {
    for set in [
        None,
        Some("output.timeline_max_rows=1000000"),
        Some("output.timeline_interval_s=3600"),
    ] {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "extreme::measure_the_peak_memory_of_a_run",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ]);
        if let Some(s) = set {
            cmd.env("KVSIM_MEASURE_SET", s);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        // The harness may print the test's name on the same line.
        let line = text
            .lines()
            .find_map(|l| l.split_once("MEASURED ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("{text}"));
        let field = |name: &str| -> f64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        let measured = field("delta");
        let sets: Vec<String> = set.map(String::from).into_iter().collect();
        let s = kvsim::scenario::Scenario::from_toml(MEASURED, Path::new("measured.toml"), &sets)
            .unwrap();
        let work = kvsim::engine::estimate_work(&s);
        let est = kvsim::engine::estimate_memory(&s, &work);
        eprintln!(
            "{set:?}: measured {measured} bytes ({:.0} per request, {} rows, {} steps); \
             estimated {:.0} ({} requests, {:.0} rows)",
            measured / field("requests"),
            field("rows"),
            field("steps"),
            est.bytes,
            est.requests,
            est.rows
        );
        assert!(est.bytes >= measured, "{set:?}: {} < {measured}", est.bytes);
        assert!(
            est.bytes <= 3.0 * measured,
            "{set:?}: {} > 3 x {measured}",
            est.bytes
        );
    }
}

/// The run of `scenario-memory-beyond-the-machine.toml` (refused as is, see
/// the bad-input corpus) runs when bounded by `--max-events` or when
/// `--allow-large` is given.
#[cfg(target_os = "linux")]
#[test]
fn a_run_beyond_the_machines_memory_runs_when_bounded_or_allowed() {
    let sc = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad-inputs/scenario-memory-beyond-the-machine.toml");
    let dir = tempfile::tempdir().unwrap();
    let result = kvsim()
        .args(["run", sc.to_str().unwrap(), "--max-events", "2000", "--out"])
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(3));
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("stopped by --max-events"), "{err}");
    let bin = assert_cmd::cargo::cargo_bin("kvsim");
    let mut child = std::process::Command::new(bin)
        .args(["run", sc.to_str().unwrap(), "--allow-large", "--out"])
        .arg(dir.path().join("b"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Still running: not refused.
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(running, "{err}");
    assert!(
        err.contains("warning: ") && err.contains("GiB of memory"),
        "{err}"
    );
}
