//! Output directories as users meet them: a run's files appear together or
//! not at all, never over files kvsim did not write, one writer at a time,
//! and Ctrl-C leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A run of a few hundred requests: well under a second.
const SMALL: &str = r#"
name = "small"
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
[slo]
ttft_p99 = 1.0
[plan]
target_rate = 10.0
"#;

/// A month of traffic at 20 req/s: many minutes, so it is always still
/// simulating when the tests interrupt it.
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
[slo]
ttft_p99 = 1.0
[plan]
target_rate = 40.0
replicates = 1
"#;

/// A scratch directory holding the scenario `text` (as `s.toml`) and an
/// empty `res/`, the parent of the output directory `res/o`.
struct Setup {
    _tmp: tempfile::TempDir,
    scenario: PathBuf,
    res: PathBuf,
    out: PathBuf,
}

fn setup(text: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.toml");
    std::fs::write(&scenario, text).unwrap();
    let res = tmp.path().join("res");
    std::fs::create_dir(&res).unwrap();
    let out = res.join("o");
    Setup {
        _tmp: tmp,
        scenario,
        res,
        out,
    }
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.insert(name, std::fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, "", &mut out);
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    snapshot(dir).into_keys().collect()
}

/// The names in `dir` (not recursive), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `kvsim ARGS`; its exit code and stderr.
fn kvsim_in(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = kvsim();
    cmd.args(args).timeout(Duration::from_secs(300));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

impl Setup {
    fn scenario(&self) -> &str {
        self.scenario.to_str().unwrap()
    }

    fn out(&self) -> &str {
        self.out.to_str().unwrap()
    }

    /// `kvsim CMD SCENARIO --out OUT EXTRA...`.
    fn kvsim(&self, cmd: &str, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
        let mut args = vec![cmd, self.scenario(), "--out", self.out()];
        args.extend_from_slice(extra);
        kvsim_in(&args, env)
    }

    /// Nothing but the output directory (if any) beside it: no lock, no
    /// temporary or swapped-out directory.
    fn assert_nothing_beside(&self) {
        let left: Vec<String> = listing(&self.res)
            .into_iter()
            .filter(|n| n != "o")
            .collect();
        assert!(left.is_empty(), "left beside the output: {left:?}");
    }
}

#[test]
fn a_rerun_leaves_exactly_the_new_run_s_files() {
    let s = setup(&format!(
        "{SMALL}\n[sweep]\n\"traffic.arrival.rate\" = [5.0, 10.0]\n"
    ));
    let (code, err) = s.kvsim("sweep", &["--format", "svg"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let first = names(&s.out);
    assert!(first.contains(&"plots/waste.svg".to_string()), "{first:?}");
    // The same sweep without charts: the earlier charts must not linger
    // beside the new sweep.csv.
    let (code, err) = s.kvsim("sweep", &["--no-plots"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(names(&s.out), [".kvsim-output", "report.html", "sweep.csv"]);
    // A run into the directory of a sweep: nothing of the sweep is left.
    let (code, err) = s.kvsim("run", &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        names(&s.out),
        [
            ".kvsim-output",
            "report.html",
            "requests.csv",
            "summary.json",
            "timeline.csv"
        ]
    );
    let marker = std::fs::read_to_string(s.out.join(".kvsim-output")).unwrap();
    assert!(marker.contains("command = \"run\""), "{marker}");
    s.assert_nothing_beside();

    // `kvsim plot` replaces its plots/ directory alone; the run that owns
    // the parent directory may still replace it all afterwards.
    let timeline = s.out.join("timeline.csv");
    let (code, err) = kvsim_in(&["plot", timeline.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(s.out.join("plots/occupancy.png").is_file());
    let (code, err) = s.kvsim("run", &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!s.out.join("plots").exists());
}

#[test]
fn a_directory_with_a_file_kvsim_did_not_write_is_refused_and_left_alone() {
    let s = setup(SMALL);
    std::fs::create_dir(&s.out).unwrap();
    std::fs::write(s.out.join("notes.txt"), "mine").unwrap();
    for cmd in ["run", "sweep", "plan"] {
        let (code, err) = s.kvsim(cmd, &[], &[]);
        assert_eq!(code, Some(2), "{cmd}: {err}");
        for needle in [s.out(), "notes.txt", "kvsim did not write", "--out"] {
            assert!(err.contains(needle), "{cmd}: no `{needle}` in: {err}");
        }
        assert_eq!(names(&s.out), ["notes.txt"], "{cmd}");
        assert_eq!(std::fs::read(s.out.join("notes.txt")).unwrap(), b"mine");
        s.assert_nothing_beside();
    }

    // A file added to kvsim's own results makes the directory the user's.
    std::fs::remove_file(s.out.join("notes.txt")).unwrap();
    let (code, err) = s.kvsim("run", &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    std::fs::write(s.out.join("analysis.ipynb"), "{}").unwrap();
    let before = snapshot(&s.out);
    let (code, err) = s.kvsim("run", &["--seed", "2"], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("analysis.ipynb"), "{err}");
    assert_eq!(snapshot(&s.out), before);
    s.assert_nothing_beside();
}

#[test]
fn a_held_lock_makes_a_second_writer_exit_2_and_a_stale_one_is_reclaimed() {
    let s = setup(SMALL);
    let lock = s.res.join(".o.kvsim-lock");
    // Held by a live process: this test.
    let held = format!("pid = {}\n", std::process::id());
    std::fs::write(&lock, &held).unwrap();
    let (code, err) = s.kvsim("run", &[], &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("being written by another kvsim")
            && err.contains(&std::process::id().to_string())
            && err.contains(".o.kvsim-lock"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), held, "not ours");
    assert!(!s.out.exists());

    // Left by a process that has exited (`true` is a Unix command).
    #[cfg(unix)]
    {
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        std::fs::write(&lock, format!("pid = {pid}\n")).unwrap();
        let (code, err) = s.kvsim("run", &[], &[]);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("stale lock"), "{err}");
        assert!(s.out.join("summary.json").is_file());
        s.assert_nothing_beside();
    }
}

#[test]
fn a_failure_mid_write_leaves_the_previous_results_intact() {
    let s = setup(&format!(
        "{SMALL}\n[sweep]\n\"traffic.arrival.rate\" = [5.0]\n"
    ));
    // Into a new directory: nothing appears.
    let fail = |what: &'static str| [("KVSIM_TEST_FAIL_AT", what)];
    let (code, err) = s.kvsim("run", &[], &fail("timeline.csv"));
    assert_eq!(code, Some(2), "{err}");
    assert!(!s.out.exists());
    s.assert_nothing_beside();

    let (code, err) = s.kvsim("run", &[], &[]);
    assert_eq!(code, Some(0), "{err}");
    let before = snapshot(&s.out);
    // A write failing after others succeeded (say, a full disk), the swap
    // failing after the old results were moved aside, and a sweep's last
    // chart failing: each leaves the earlier results as they were.
    for (cmd, what) in [
        ("run", "timeline.csv"),
        ("run", "swap"),
        ("sweep", "plots/waste.png"),
        ("sweep", ".kvsim-output"),
        ("run", "report.html"),
        ("sweep", "report.html"),
    ] {
        let (code, err) = s.kvsim(cmd, &["--set", "seed=7"], &fail(what));
        assert_eq!(code, Some(2), "{cmd} {what}: {err}");
        assert!(err.contains("KVSIM_TEST_FAIL_AT"), "{err}");
        assert!(err.contains(&format!("{} is as it was", s.out())), "{err}");
        assert_eq!(snapshot(&s.out), before, "{cmd} {what}");
        s.assert_nothing_beside();
    }
}

/// Sends SIGINT to `child` once `ready` holds, then waits for it to exit.
#[cfg(unix)]
fn interrupt_when(
    child: &mut std::process::Child,
    ready: impl Fn() -> bool,
) -> std::process::ExitStatus {
    let started = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("kvsim exited ({status}) before it could be interrupted");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "kvsim never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if stopping.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("kvsim did not stop within a minute of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `kvsim ARGS` with stderr to `err`.
#[cfg(unix)]
fn spawn(args: &[&str], err: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("kvsim"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_long_run_keeping_the_previous_results_and_no_lock() {
    let s = setup(MONTH);
    let (code, err) = s.kvsim("run", &["--set", "duration_s=10"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let before = snapshot(&s.out);
    let err_file = s.scenario.with_file_name("stderr.txt");
    // A month of traffic: far more than this machine's memory if it ran to
    // the end, which it never does here.
    let mut child = spawn(
        &["run", s.scenario(), "--out", s.out(), "--allow-large"],
        &err_file,
    );
    let lock = s.res.join(".o.kvsim-lock");
    let pid = format!("pid = {}\n", child.id());
    let locked = || std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&pid));
    let status = interrupt_when(&mut child, || {
        if !locked() {
            return false;
        }
        // While it runs, a second writer is turned away.
        let (code, err) = s.kvsim("run", &["--set", "duration_s=10"], &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("being written by another kvsim"), "{err}");
        true
    });
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    assert!(
        err.contains(&format!("nothing was written and {} is as it was", s.out())),
        "{err}"
    );
    assert_eq!(snapshot(&s.out), before);
    s.assert_nothing_beside();
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_plan_and_says_what_it_kept() {
    let s = setup(MONTH);
    let err_file = s.scenario.with_file_name("stderr.txt");
    let mut child = spawn(
        // A month of traffic per probe: beyond the memory guard, which
        // --allow-large passes (it is interrupted long before the end).
        &[
            "plan",
            s.scenario(),
            "--out",
            s.out(),
            "--threads",
            "1",
            "--allow-large",
        ],
        &err_file,
    );
    let lock = s.res.join(".o.kvsim-lock");
    let status = interrupt_when(&mut child, || lock.exists());
    let err = std::fs::read_to_string(&err_file).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    // Its one candidate was still probing a month of traffic.
    assert!(
        err.contains("interrupted (Ctrl-C): no candidate had finished; nothing was written"),
        "{err}"
    );
    assert!(!s.out.exists());
    s.assert_nothing_beside();
}

/// A shard kvsim wrote into a sweep's directory is kvsim's own: a whole
/// sweep run there afterwards replaces the directory (shard included)
/// instead of calling the shard foreign. A file that only looks like a shard
/// (no fingerprint) is still foreign.
#[test]
fn a_shard_in_a_sweep_directory_is_not_foreign() {
    let s = setup(&format!(
        "{SMALL}\n[sweep]\n\"traffic.arrival.rate\" = [5.0, 10.0]\n"
    ));
    let (scenario, out) = (s.scenario.to_str().unwrap(), s.out.to_str().unwrap());
    let sweep = |extra: &[&str]| {
        let mut args = vec!["sweep", scenario, "--out", out, "--no-plots"];
        args.extend(extra);
        kvsim().args(&args).assert().success();
    };
    sweep(&[]);
    sweep(&["--shard", "0/2"]);
    assert_eq!(
        names(&s.out),
        [
            ".kvsim-output",
            "report.html",
            "sweep.csv",
            "sweep.shard-0-of-2.csv"
        ]
    );
    sweep(&[]);
    assert_eq!(names(&s.out), [".kvsim-output", "report.html", "sweep.csv"]);
    std::fs::write(s.out.join("sweep.shard-1-of-2.csv"), "point,replicates\n").unwrap();
    kvsim()
        .args(["sweep", scenario, "--out", out, "--no-plots"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "holds files kvsim did not write (sweep.shard-1-of-2.csv)",
        ));
}
