//! The command line as users meet it: exit codes, messages, files.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `kvsim run SCENARIO --json --out DIR/o EXTRA...`, which must succeed; its
/// summary, parsed.
fn run_json(scenario: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let out = kvsim()
        .args(["run", scenario.to_str().unwrap(), "--json", "--out"])
        .arg(dir.join("o"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const GOOD: &str = r#"
name = "cli-test"
seed = 1
requests = 200
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 10.0 }
prompt = { kind = "lognormal", mean = 500, sigma = 0.8, min = 4, max = 4096 }
output = { kind = "lognormal", mean = 150, sigma = 0.8, min = 1, max = 1024 }
"#;

#[test]
fn run_writes_the_three_files_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "s.toml", GOOD);
    let out = dir.path().join("out");
    kvsim()
        .args(["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("OOM rate").and(predicate::str::contains("TPOT")));
    for f in [
        "summary.json",
        "requests.csv",
        "timeline.csv",
        "report.html",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["metrics"]["requests"], 200);
    let requests = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    assert_eq!(requests.lines().count(), 201);
    assert!(
        requests
            .starts_with("id,arrival,admitted,first_token,finished,prompt_tokens,output_tokens")
    );
    // No temporary files are left behind: only the marker is hidden.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".kvsim-output")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn set_overrides_any_key_and_seed_changes_the_draws() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "s.toml", GOOD);
    let run = |extra: &[&str]| run_json(&sc, dir.path(), extra);
    let base = run(&[]);
    assert_eq!(base, run(&[]), "same seed, same numbers");
    let fewer = run(&["--set", "requests=50"]);
    assert_eq!(fewer["requests"], 50);
    let contiguous = run(&[
        "--set",
        "cache.policy=contiguous",
        "--set",
        "cache.reserve=max-model-len",
    ]);
    assert!(contiguous["batch_ceiling"].as_u64() < base["batch_ceiling"].as_u64());
    assert_ne!(run(&["--seed", "2"]), base);
}

fn fails_with(scenario: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "bad.toml", scenario);
    let mut pred = predicate::str::contains("bad.toml").boxed();
    for n in needles {
        pred = pred.and(predicate::str::contains(*n)).boxed();
    }
    kvsim()
        .args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(pred.and(predicate::str::contains("panicked").not()));
    assert!(!dir.path().join("o").join("summary.json").exists());
}

#[test]
fn unknown_key_is_named() {
    fails_with(
        &GOOD.replace("[traffic]", "[traffic]\nburstyness = 2"),
        &["traffic", "burstyness"],
    );
}

#[test]
fn negative_rate_is_named() {
    fails_with(
        &GOOD.replace("rate = 10.0", "rate = -3.0"),
        &["traffic.arrival.rate", "-3"],
    );
}

#[test]
fn model_too_large_for_the_gpu_suggests_tensor_parallelism() {
    fails_with(
        &GOOD.replace("llama-3.1-8b", "llama-3.1-70b"),
        &["hardware.tp", "does not fit", "hardware.tp = 2 would fit"],
    );
}

#[test]
fn malformed_trace_row_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "trace.csv",
        "arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n0.5,abc,5\n",
    );
    let sc = GOOD.replace(
        "arrival = { kind = \"poisson\", rate = 10.0 }\nprompt = { kind = \"lognormal\", mean = 500, sigma = 0.8, min = 4, max = 4096 }\noutput = { kind = \"lognormal\", mean = 150, sigma = 0.8, min = 1, max = 1024 }",
        "arrival = { kind = \"trace\", path = \"trace.csv\" }",
    );
    let sc = write(dir.path(), "s.toml", &sc.replace("requests = 200\n", ""));
    kvsim()
        .args([
            "run",
            sc.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("trace.csv").and(predicate::str::contains("line 3")));
}

#[test]
fn bad_set_expression_and_missing_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "s.toml", GOOD);
    kvsim()
        .args(["run", sc.to_str().unwrap(), "--set", "no-equals-sign"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--set no-equals-sign"));
    kvsim()
        .args(["run", dir.path().join("missing.toml").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn kv_needs_a_model_or_a_shape() {
    kvsim()
        .args(["kv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--model"));
    kvsim()
        .args(["kv", "--model", "gpt-5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown model `gpt-5`"));
}

/// `kvsim catalog` fits 80 columns and lists every entry's source under its
/// table; `--wide` puts the sources in the tables; `--json` carries them.
#[test]
fn catalog_tables_fit_80_columns_and_show_every_source() {
    let json = kvsim().args(["catalog", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let out = kvsim().args(["catalog"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 80, "{widest} columns:\n{text}");
    assert_eq!(text.matches("Sources:").count(), 3, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for kind in ["models", "gpus", "engines"] {
        for e in v[kind].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            let source = e["source"].as_str().unwrap();
            assert!(!source.is_empty(), "{kind} {name}: no source");
            let source = source.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&source), "{kind} {name}: source not shown");
        }
    }
    let wide = kvsim()
        .args(["catalog", "gpus", "--wide"])
        .output()
        .unwrap();
    assert!(wide.status.success());
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(!wide.contains("Sources:"), "{wide}");
    let header = wide.lines().nth(1).unwrap();
    for column in ["fp4", "int8", "link", "per", "source"] {
        assert!(header.contains(column), "{column} missing: {header}");
    }
    let b300 = wide.lines().find(|l| l.contains(" b300 ")).unwrap();
    assert!(b300.contains("NVIDIA HGX page (HGX B300)"), "{b300}");
    assert!(b300.chars().count() > 80);
}

#[test]
fn catalog_lists_every_required_entry() {
    let out = kvsim().args(["catalog", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let models = names("models");
    for m in [
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "mistral-7b-v0.1",
        "mixtral-8x7b",
        "qwen2.5-7b",
        "qwen2.5-72b",
        "opt-13b",
        "falcon-7b",
        "gemma-2-9b",
        "deepseek-v3",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "llama-4-scout-17b-16e",
        "gemma-3-27b",
        "deepseek-v3.1",
        "qwen3-next-80b-a3b",
    ] {
        assert!(models.contains(&m.to_string()), "{m} missing");
    }
    let gpus = names("gpus");
    for g in [
        "a100-40gb",
        "a100-80gb",
        "h100-sxm",
        "h100-pcie",
        "h200",
        "l4",
        "l40s",
        "mi300x",
        "b200",
        "b300",
        "gb200",
        "h20",
        "mi325x",
        "mi355x",
        "rtx-pro-6000-se",
    ] {
        assert!(gpus.contains(&g.to_string()), "{g} missing");
    }
    assert_eq!(names("engines"), ["vllm", "sglang", "trtllm", "vllm-0.1"]);
    let trtllm = &v["engines"][2];
    assert_eq!(trtllm["memory_rule"], "free-fraction");
    assert_eq!(trtllm["admission"], "reserve");
    assert_eq!(trtllm["block_size"], 32);
    let h100 = v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "h100-sxm")
        .unwrap();
    assert_eq!(h100["peak_flops_fp8"], 1978.9e12);
}

#[test]
fn calibrate_writes_a_file_that_a_scenario_can_include() {
    let dir = tempfile::tempdir().unwrap();
    // Batch-1 decode of Llama-3.1-8B on an H100 measured at 10 ms per token
    // (slower than the ~8.4 ms the defaults give), and two prefills.
    let measured = write(
        dir.path(),
        "m.csv",
        "batch,context_tokens,prefill_tokens,step_s\n1,500,0,0.0100\n1,2000,0,0.0101\n8,1000,0,0.0106\n0,0,4096,0.200\n0,0,8192,0.420\n",
    );
    let cal = dir.path().join("cal.toml");
    kvsim()
        .args([
            "calibrate",
            measured.to_str().unwrap(),
            "--gpu",
            "h100-sxm",
            "--model",
            "llama-3.1-8b",
        ])
        .args(["--out", cal.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("mean |error|"));
    let text = std::fs::read_to_string(&cal).unwrap();
    assert!(
        text.contains("mbu = ") && text.contains("step_overhead_s = "),
        "{text}"
    );
    let tpot = |extra: &[&str]| {
        let sc = write(dir.path(), "s.toml", GOOD);
        run_json(&sc, dir.path(), extra)["tpot_p50"]
            .as_f64()
            .unwrap()
    };
    let default = tpot(&[]);
    let calibrated = tpot(&["--set", "hardware.calibration=\"cal.toml\""]);
    assert!(
        calibrated > default,
        "calibrated {calibrated} vs default {default}"
    );
    // A bad calibration value names the file and key.
    std::fs::write(&cal, "mbu = 0\nmfu = 0.5\nstep_overhead_s = 0.001\n").unwrap();
    let sc = write(dir.path(), "s.toml", GOOD);
    kvsim()
        .args([
            "run",
            sc.to_str().unwrap(),
            "--set",
            "hardware.calibration=\"cal.toml\"",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cal.toml").and(predicate::str::contains("mbu")));
}

/// Valid inputs that do not do what they say are warned about at load time,
/// on stderr, by `run` and `sweep`: clamping that moves a length's mean by
/// more than 10 %, and prompts longer than one step without chunked prefill.
#[test]
fn load_time_warnings_reach_run_and_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let clamp = "`traffic.prompt`: clamping to [min, max] = [4, 4096] moves the mean from the \
                 requested 161 to 4 (-98 %)";
    let step = "`scheduler.chunked_prefill` is off and `scheduler.max_batched_tokens` is 2048, \
                but the traffic can draw prompts of up to 4096 tokens";
    let sets = [
        "--set",
        "traffic.prompt.sigma=50",
        "--set",
        "scheduler.chunked_prefill=false",
        "--set",
        "scheduler.max_batched_tokens=2048",
        "--set",
        "requests=200",
    ];
    let run = kvsim()
        .args(["run", "scenarios/quickstart.toml", "--out"])
        .arg(dir.path().join("r"))
        .args(sets)
        .output()
        .unwrap();
    assert!(run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("warning: scenarios/quickstart.toml: "),
        "{err}"
    );
    assert!(err.contains(clamp) && err.contains(step), "{err}");
    let swept = dir.path().join("swept.toml");
    std::fs::write(
        &swept,
        std::fs::read_to_string("scenarios/quickstart.toml").unwrap()
            + "\n[sweep]\n\"traffic.arrival.rate\" = [5.0, 10.0]\n",
    )
    .unwrap();
    let sweep = kvsim()
        .args(["sweep", swept.to_str().unwrap(), "--no-plots", "--out"])
        .arg(dir.path().join("s"))
        .args(sets)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&sweep.stderr);
    assert!(sweep.status.success(), "{err}");
    assert!(err.contains(clamp) && err.contains(step), "{err}");
    // A spread that clamping barely moves says nothing.
    let quiet = kvsim()
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--set",
            "requests=50",
            "--out",
        ])
        .arg(dir.path().join("q"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&quiet.stderr);
    assert!(!err.contains("warning"), "{err}");
}
