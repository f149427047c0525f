//! Sweeps from the command line: determinism across threads and shards, the
//! partial file of a failing sweep, and regression checks.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A small sweep: 3 loads x 2 policies, 2 replicates, in `dir`.
fn scenario(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"
name = "sweep-test"
seed = 9
requests = 150
replicates = 2
[model]
preset = "llama-2-13b"
[hardware]
gpu = "a100-40gb"
[traffic]
arrival = {{ kind = "poisson", rate = 4.0 }}
prompt = {{ kind = "lognormal", mean = 300, sigma = 0.8, min = 4, max = 2048 }}
output = {{ kind = "lognormal", mean = 200, sigma = 0.8, min = 1, max = 1024 }}
[slo]
tpot_p99 = 0.05
[sweep]
"traffic.arrival.rate" = [2.0, 6.0, 12.0]
"cache.policy" = ["contiguous", "paged"]
{extra}
"#
    );
    let p = dir.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep(sc: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    kvsim()
        .args([
            "sweep",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn one_thread_and_two_threads_write_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(sweep(&sc, &a, &["--threads", "1"]).status.success());
    assert!(sweep(&sc, &b, &["--threads", "2"]).status.success());
    let (x, y) = (
        std::fs::read(a.join("sweep.csv")).unwrap(),
        std::fs::read(b.join("sweep.csv")).unwrap(),
    );
    assert_eq!(x, y);
    // The sweep drew its default charts.
    for chart in ["oom_rate", "batch", "tpot", "ttft_p99", "waste"] {
        let png = std::fs::read(a.join("plots").join(format!("{chart}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{chart}");
    }
    let text = String::from_utf8(x).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("point,traffic.arrival.rate,cache.policy,replicates,requests,"));
    assert!(header.contains("tpot_p99,tpot_p99_ci95"));
    assert!(header.ends_with("slo_ttft_p99,slo_tpot_p99"));
    assert_eq!(text.lines().count(), 1 + 6);
    // Axis columns come in grid order, first axis outermost.
    let second = text.lines().nth(2).unwrap();
    assert!(second.starts_with("1,2.0,paged,2,"), "{second}");
}

#[test]
fn shards_merge_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let whole = dir.path().join("whole");
    assert!(sweep(&sc, &whole, &[]).status.success());
    let parts = dir.path().join("parts");
    for i in 0..3 {
        let out = sweep(&sc, &parts, &["--shard", &format!("{i}/3")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let merged = dir.path().join("merged.csv");
    let mut cmd = kvsim();
    cmd.arg("merge");
    for i in 0..3 {
        cmd.arg(parts.join(format!("sweep.shard-{i}-of-3.csv")));
    }
    cmd.args(["--out", merged.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(whole.join("sweep.csv")).unwrap()
    );
    // A shard is part of a table: no charts.
    assert!(!parts.join("plots").exists());
    // A missing shard is named.
    kvsim()
        .arg("merge")
        .arg(parts.join("sweep.shard-0-of-3.csv"))
        .arg(parts.join("sweep.shard-2-of-3.csv"))
        .args(["--out", dir.path().join("bad.csv").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing"));
}

/// Every variable `--shard auto` reads (and the hint's `SLURM_JOB_ID`):
/// removed from a test's kvsim, so that a test suite run inside a Slurm job
/// or a Kubernetes pod sees only the variables the test sets.
const JOB_ARRAY_VARS: &[&str] = &[
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

/// `kvsim sweep SC --shard SHARD --out OUT` with exactly the job-array
/// variables `vars`, started (not waited for).
fn spawn_auto(sc: &Path, out: &Path, shard: &str, vars: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("kvsim"));
    cmd.args(["sweep", sc.to_str().unwrap(), "--shard", shard, "--out"])
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for v in JOB_ARRAY_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// `kvsim merge` of `parts` into `out`, which must succeed.
fn merge_into(parts: &[PathBuf], out: &Path) {
    kvsim()
        .arg("merge")
        .args(parts)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// `--shard auto` run as a Slurm array would run it (every task at once,
/// each with the variables sbatch sets, ids from 1 as in `--array=1-4`) and
/// as a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, `--shard auto/3`):
/// each task finds its shard, its file is the one `--shard I/N` writes, and
/// the merged table is the single run's, byte for byte.
#[test]
fn shard_auto_in_a_slurm_array_and_an_indexed_job_merges_into_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let whole = dir.path().join("whole");
    assert!(sweep(&sc, &whole, &["--no-plots"]).status.success());
    let single = std::fs::read(whole.join("sweep.csv")).unwrap();

    // Slurm: sbatch --array=1-4, four tasks at once sharing one directory.
    let slurm = dir.path().join("slurm");
    let tasks: Vec<_> = (1..=4)
        .map(|id| {
            let vars = [
                ("SLURM_JOB_ID", format!("{}", 700 + id)),
                ("SLURM_ARRAY_JOB_ID", "700".to_string()),
                ("SLURM_ARRAY_TASK_ID", id.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", "4".to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".to_string()),
                ("SLURM_ARRAY_TASK_MAX", "4".to_string()),
                ("SLURM_ARRAY_TASK_STEP", "1".to_string()),
            ];
            spawn_auto(&sc, &slurm, "auto", &vars)
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let o = task.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "task {}: {err}", i + 1);
        assert!(
            err.contains(&format!(
                "shard {i}/4 (from SLURM_ARRAY_TASK_ID={}, SLURM_ARRAY_TASK_MIN=1, \
                 SLURM_ARRAY_TASK_COUNT=4)",
                i + 1
            )),
            "{err}"
        );
    }
    let parts: Vec<PathBuf> = (0..4)
        .map(|i| slurm.join(format!("sweep.shard-{i}-of-4.csv")))
        .collect();
    // The fingerprint records the resolved shard: the file is the one
    // `--shard 2/4` writes.
    let given = dir.path().join("given");
    assert!(sweep(&sc, &given, &["--shard", "2/4"]).status.success());
    assert_eq!(
        std::fs::read(&parts[2]).unwrap(),
        std::fs::read(given.join("sweep.shard-2-of-4.csv")).unwrap()
    );
    let merged = dir.path().join("slurm.csv");
    merge_into(&parts, &merged);
    assert_eq!(std::fs::read(&merged).unwrap(), single);

    // Kubernetes: an Indexed Job of 3 completions.
    let k8s = dir.path().join("k8s");
    let pods: Vec<_> = (0..3)
        .map(|i| {
            let vars = [("JOB_COMPLETION_INDEX", i.to_string())];
            spawn_auto(&sc, &k8s, "auto/3", &vars)
        })
        .collect();
    for (i, pod) in pods.into_iter().enumerate() {
        let o = pod.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "pod {i}: {err}");
        assert!(
            err.contains(&format!("shard {i}/3 (from JOB_COMPLETION_INDEX={i} of 3)")),
            "{err}"
        );
    }
    let parts: Vec<PathBuf> = (0..3)
        .map(|i| k8s.join(format!("sweep.shard-{i}-of-3.csv")))
        .collect();
    let merged = dir.path().join("k8s.csv");
    merge_into(&parts, &merged);
    assert_eq!(std::fs::read(&merged).unwrap(), single);
}

/// What `--shard auto` refuses, from the command line: exit 2 before any
/// work, a message naming the variable and the reason, no panic, nothing
/// written.
#[test]
fn shard_auto_refusals_name_the_variable_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let out = dir.path().join("out");
    let slurm = |id: &str, count: &str, min: &str, max: &str, step: &str| {
        vec![
            ("SLURM_JOB_ID", "9".to_string()),
            ("SLURM_ARRAY_TASK_ID", id.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
            ("SLURM_ARRAY_TASK_MIN", min.to_string()),
            ("SLURM_ARRAY_TASK_MAX", max.to_string()),
            ("SLURM_ARRAY_TASK_STEP", step.to_string()),
        ]
    };
    // (--shard value, the variables set, what the message must say)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            "auto",
            vec![],
            &[
                "--shard auto: neither SLURM_ARRAY_TASK_ID",
                "JOB_COMPLETION_INDEX",
            ],
        ),
        (
            "auto",
            vec![("SLURM_JOB_ID", "9".to_string())],
            &["SLURM_JOB_ID=9 is set: a Slurm job, but not a task of a job array"],
        ),
        (
            "auto",
            vec![("SLURM_ARRAY_TASK_ID", "2".to_string())],
            &["SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not"],
        ),
        (
            "auto",
            slurm("two", "4", "0", "3", "1"),
            &["SLURM_ARRAY_TASK_ID=`two` is not a non-negative integer"],
        ),
        (
            "auto",
            slurm("0", "0", "0", "0", "1"),
            &["SLURM_ARRAY_TASK_COUNT=0: a job array has at least one task"],
        ),
        // sbatch --array=0-6:2
        (
            "auto",
            slurm("2", "4", "0", "6", "2"),
            &["SLURM_ARRAY_TASK_STEP=2: the array's task ids have gaps"],
        ),
        // sbatch --array=0,2,5 (Slurm sets a step of 1)
        (
            "auto",
            slurm("5", "3", "0", "5", "1"),
            &["SLURM_ARRAY_TASK_MAX=5 and SLURM_ARRAY_TASK_COUNT=3 are not one range"],
        ),
        (
            "auto",
            slurm("9", "4", "4", "7", "1"),
            &["SLURM_ARRAY_TASK_ID=9 is outside the array's ids 4..=7"],
        ),
        (
            "auto/8",
            slurm("1", "4", "0", "3", "1"),
            &["--shard auto/8: SLURM_ARRAY_TASK_COUNT=4: the Slurm array has 4 tasks, not 8"],
        ),
        (
            "auto",
            vec![("JOB_COMPLETION_INDEX", "1".to_string())],
            &["JOB_COMPLETION_INDEX=1 is set", "give it as --shard auto/N"],
        ),
        (
            "auto/3",
            vec![("JOB_COMPLETION_INDEX", "3".to_string())],
            &["JOB_COMPLETION_INDEX=3 is not below the shard count 3"],
        ),
        (
            "auto/3",
            vec![("JOB_COMPLETION_INDEX", "x".to_string())],
            &["JOB_COMPLETION_INDEX=`x` is not a non-negative integer"],
        ),
        (
            "auto/3",
            [
                slurm("1", "3", "0", "2", "1"),
                vec![("JOB_COMPLETION_INDEX", "1".to_string())],
            ]
            .concat(),
            &["both SLURM_ARRAY_TASK_ID=1", "and JOB_COMPLETION_INDEX=1"],
        ),
        // The flag itself (clap's message, same exit code).
        (
            "auto/0",
            vec![],
            &["`auto/0`: the shard count N must be at least 1"],
        ),
        ("auto/x", vec![], &["`auto/x`: `x` is not a shard count"]),
        ("automatic", vec![], &["expected I/N", "auto or auto/N"]),
    ];
    for (shard, vars, wants) in cases {
        let o = spawn_auto(&sc, &out, shard, &vars)
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--shard {shard} {vars:?}: {err}");
        for w in wants {
            assert!(
                err.contains(w),
                "--shard {shard} {vars:?}: no `{w}` in {err}"
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !out.exists(),
            "--shard {shard} {vars:?} wrote {}",
            out.display()
        );
    }
}

#[test]
fn a_failing_point_keeps_the_finished_rows_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    // llama-2-13b does not fit on an L4: those points fail, the others run.
    let sc = scenario(dir.path(), "\"hardware.gpu\" = [\"a100-40gb\", \"l4\"]");
    let out = dir.path().join("out");
    let o = sweep(&sc, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("hardware.gpu=l4") && err.contains("does not fit"),
        "{err}"
    );
    assert!(err.contains("sweep.partial.csv"), "{err}");
    assert!(!out.join("sweep.csv").exists());
    let partial = std::fs::read_to_string(out.join("sweep.partial.csv")).unwrap();
    assert_eq!(
        partial.lines().count(),
        1 + 6,
        "the six a100 points are kept"
    );
    assert!(partial.lines().skip(1).all(|l| l.contains(",a100-40gb,")));
}

#[test]
fn check_passes_its_own_baseline_and_fails_a_moved_value() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let baseline = dir.path().join("baseline.csv");
    let check = |extra: &[&str]| {
        kvsim()
            .args([
                "check",
                sc.to_str().unwrap(),
                "--baseline",
                baseline.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(check(&["--update"]).status.success());
    let ok = check(&[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // Move point 3's TPOT p99 by 20 % and its completed count by one.
    let text = std::fs::read_to_string(&baseline).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (tpot, okc) = (col("tpot_p99"), col("ok"));
    let moved: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut cells: Vec<String> = l.split(',').map(String::from).collect();
            if i == 4 {
                let v: f64 = cells[tpot].parse().unwrap();
                cells[tpot] = format!("{}", v * 1.2);
                let n: f64 = cells[okc].parse().unwrap();
                cells[okc] = format!("{}", n + 1.0);
            }
            cells.join(",")
        })
        .collect();
    std::fs::write(&baseline, moved.join("\n") + "\n").unwrap();
    let bad = check(&[]);
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(
        out.contains("point 3 (traffic.arrival.rate=6.0, cache.policy=paged)"),
        "{out}"
    );
    assert!(out.contains("tpot_p99") && out.contains("ok"), "{out}");
    // A loose enough tolerance forgives the TPOT move but never the count.
    let loose = check(&["--rtol", "0.5"]);
    assert_eq!(loose.status.code(), Some(1));
    let out = String::from_utf8_lossy(&loose.stdout);
    assert!(!out.contains("tpot_p99") && out.contains(" ok "), "{out}");
}

/// `--threads` beyond the runs there are (or the cores) is clamped, with a
/// note on stderr, and gives the same table.
#[test]
fn too_many_threads_are_clamped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let started = std::time::Instant::now();
    let out = sweep(&sc, &a, &["--threads", "10000", "--no-plots"]);
    let wall = started.elapsed().as_secs_f64();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: --threads 10000 clamped to"), "{err}");
    // 6 points x 2 replicates: never more than 12 threads.
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    assert!(
        err.contains(&format!("clamped to {} (", cores.min(12))),
        "{err}"
    );
    // 10,000 threads took 44 s here; a clamped pool takes what the runs take.
    assert!(wall < 20.0, "{wall} s");
    assert!(
        sweep(&sc, &b, &["--threads", "1", "--no-plots"])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(a.join("sweep.csv")).unwrap(),
        std::fs::read(b.join("sweep.csv")).unwrap()
    );
    // Asking for no more than there is says nothing.
    let c = dir.path().join("c");
    let out = sweep(&sc, &c, &["--threads", "1", "--no-plots"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("clamped"));
}

#[test]
fn zero_threads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), "");
    let out = sweep(&sc, &dir.path().join("a"), &["--threads", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--threads") && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn thread_clamping_takes_the_smaller_of_cores_and_jobs() {
    use kvsim::cli::clamp_threads;
    assert_eq!(clamp_threads(4, 12, 8), (4, None));
    assert_eq!(clamp_threads(8, 12, 8), (8, None));
    let (n, note) = clamp_threads(10_000, 12, 8);
    assert_eq!(n, 8);
    assert!(note.unwrap().contains("8 hardware threads available"));
    let (n, note) = clamp_threads(10_000, 3, 8);
    assert_eq!(n, 3);
    assert!(note.unwrap().contains("3 runs to do"));
    let (n, note) = clamp_threads(2, 1, 8);
    assert_eq!(n, 1);
    assert!(note.unwrap().contains("1 run to do"));
}

/// Sweeping a key that is also a metric column (`requests`, `duration_s`)
/// gives the axis a column of its own (`sweep.requests`), so kvsim reads its
/// own table back: check passes its baseline and plot draws it.
#[test]
fn an_axis_named_like_a_metric_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("s.toml");
    std::fs::write(
        &sc,
        r#"
name = "axis-named-like-a-metric"
seed = 3
requests = 20
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "poisson", rate = 5.0 }
prompt = { kind = "fixed", value = 100 }
output = { kind = "fixed", value = 20 }
[sweep]
requests = [10, 20]
"#,
    )
    .unwrap();
    let baseline = dir.path().join("b.csv");
    let check = |extra: &[&str]| {
        kvsim()
            .args(["check", sc.to_str().unwrap(), "--baseline"])
            .arg(&baseline)
            .args(extra)
            .assert()
            .success();
    };
    check(&["--update"]);
    check(&[]);
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        text.starts_with("point,sweep.requests,replicates,requests,"),
        "{text}"
    );
    kvsim()
        .args(["plot"])
        .arg(&baseline)
        .arg("--out")
        .arg(dir.path().join("plots"))
        .assert()
        .success();
}
