//! `kvsim merge` cannot mix experiments: shards carry a fingerprint of what
//! produced them, and merge refuses shards of other scenarios, seeds,
//! overrides, splits or versions, repeated or missing shards, and an `--out`
//! that is one of its inputs.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A 3-point sweep in `dir`, with `rate` in the scenario's own arrival table
/// (the sweep overrides it at every point, but it is part of the file).
fn scenario(dir: &Path, rate: f64) -> PathBuf {
    let text = format!(
        r#"
name = "merge-test"
seed = 9
requests = 60
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = {{ kind = "poisson", rate = {rate:?} }}
prompt = {{ kind = "fixed", value = 200 }}
output = {{ kind = "fixed", value = 50 }}
[sweep]
"traffic.arrival.rate" = [2.0, 4.0, 8.0]
"#
    );
    let p = dir.join("merge.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs shard `shard` (`I/N`) of `sc` into `out` with `extra` arguments;
/// returns the shard file.
fn shard(sc: &Path, out: &Path, shard: &str, extra: &[&str]) -> PathBuf {
    let o = kvsim()
        .args([
            "sweep",
            sc.to_str().unwrap(),
            "--no-plots",
            "--shard",
            shard,
        ])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (i, n) = shard.split_once('/').unwrap();
    out.join(format!("sweep.shard-{i}-of-{n}.csv"))
}

/// `kvsim merge PARTS --out OUT`: exit code and stderr.
fn merge(parts: &[&Path], out: &Path) -> (Option<i32>, String) {
    let o = kvsim()
        .arg("merge")
        .args(parts)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The three shards of the scenario at rate 4, in `dir/parts`.
fn three(dir: &Path) -> (PathBuf, [PathBuf; 3]) {
    let sc = scenario(dir, 4.0);
    let parts = dir.join("parts");
    let files = ["0/3", "1/3", "2/3"].map(|s| shard(&sc, &parts, s, &[]));
    (sc, files)
}

#[test]
fn a_shard_starts_with_its_fingerprint_and_still_reads_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, [a, b, c]) = three(dir.path());
    let text = std::fs::read_to_string(&a).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("# kvsim shard {"), "{first}");
    for field in [
        format!("\"kvsim\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"scenario\":\"fnv1a64:".to_string(),
        "\"seed\":9".to_string(),
        "\"overrides\":[]".to_string(),
        "\"shard\":0,\"of\":3,\"points\":3".to_string(),
    ] {
        assert!(first.contains(&field), "{field} not in {first}");
    }
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("point,traffic.arrival.rate,")
    );
    // A shard plots like any sweep table.
    kvsim()
        .arg("plot")
        .arg(&a)
        .args(["--y", "tpot_p99", "--format", "svg", "--out"])
        .arg(dir.path().join("plots"))
        .assert()
        .success();
    // The merged table is the single run's, without a fingerprint, and
    // `kvsim check` reads it as a baseline.
    let merged = dir.path().join("out").join("sweep.csv");
    std::fs::create_dir_all(merged.parent().unwrap()).unwrap();
    std::fs::write(&merged, "an older file, replaced whole\n").unwrap();
    let (code, err) = merge(&[&c, &a, &b], &merged);
    assert_eq!(code, Some(0), "{err}");
    let whole = dir.path().join("whole");
    kvsim()
        .args(["sweep", sc.to_str().unwrap(), "--no-plots", "--out"])
        .arg(&whole)
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(whole.join("sweep.csv")).unwrap()
    );
    // Written through a temporary file and a rename: nothing else is left.
    let left: Vec<String> = std::fs::read_dir(merged.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["sweep.csv"]);
    kvsim()
        .args(["check", sc.to_str().unwrap(), "--baseline"])
        .arg(&merged)
        .assert()
        .code(0);
}

#[test]
fn shards_of_other_runs_are_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, [a, b, _]) = three(dir.path());
    let out = dir.path().join("merged.csv");
    let refused = |other: &Path, wants: &[&str], not: &[&str]| {
        let (code, err) = merge(&[&a, &b, other], &out);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(a.to_str().unwrap()), "{err}");
        assert!(err.contains(other.to_str().unwrap()), "{err}");
        assert!(err.contains("are not shards of one sweep"), "{err}");
        for w in wants {
            assert!(err.contains(w), "no `{w}` in {err}");
        }
        for n in not {
            assert!(!err.contains(n), "`{n}` in {err}");
        }
        assert!(!out.exists(), "nothing is written");
    };
    // Another seed, by --set.
    let sc = scenario(dir.path(), 4.0);
    let seed = shard(&sc, &dir.path().join("seed"), "2/3", &["--set", "seed=10"]);
    refused(
        &seed,
        &["seed: 9 vs 10", "--set overrides: [] vs [\"seed=10\"]"],
        &["kvsim version"],
    );
    // The same effective scenario reached by an override still differs in
    // its overrides.
    let rate = shard(
        &sc,
        &dir.path().join("rate"),
        "2/3",
        &["--set", "traffic.arrival.rate=4.0"],
    );
    refused(&rate, &["--set overrides"], &["seed:", "scenario ("]);
    // Another scenario file content.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let sc2 = scenario(&other, 5.0);
    let edited = shard(&sc2, &other, "2/3", &[]);
    refused(
        &edited,
        &["scenario (after --set overrides): fnv1a64:"],
        &["seed:", "--set overrides:"],
    );
    // Another split.
    let split = shard(&sc, &dir.path().join("split"), "1/2", &[]);
    refused(&split, &["split: 0/3 vs 1/2"], &["seed:"]);
    // Another kvsim version.
    let version = dir.path().join("version.csv");
    let text = std::fs::read_to_string(dir.path().join("parts/sweep.shard-2-of-3.csv")).unwrap();
    let here = format!("\"kvsim\":\"{}\"", env!("CARGO_PKG_VERSION"));
    std::fs::write(&version, text.replacen(&here, "\"kvsim\":\"0.0.1\"", 1)).unwrap();
    refused(
        &version,
        &[&format!(
            "kvsim version: {} vs 0.0.1",
            env!("CARGO_PKG_VERSION")
        )],
        &["seed:"],
    );
}

#[test]
fn repeated_missing_and_unfingerprinted_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, [a, b, c]) = three(dir.path());
    let out = dir.path().join("merged.csv");
    let copy = dir.path().join("copy-of-0.csv");
    std::fs::copy(&a, &copy).unwrap();
    let (code, err) = merge(&[&a, &b, &c, &copy], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("are both shard 0/3"), "{err}");
    assert!(err.contains("copy-of-0.csv"), "{err}");
    let (code, err) = merge(&[&a, &b, &b], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("are the same file"), "{err}");
    let (code, err) = merge(&[&a, &c], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("shard 1/3 (sweep.shard-1-of-3.csv) missing"),
        "{err}"
    );
    // A whole sweep.csv has no fingerprint.
    let whole = dir.path().join("whole");
    kvsim()
        .args(["sweep", sc.to_str().unwrap(), "--no-plots", "--out"])
        .arg(&whole)
        .assert()
        .success();
    let (code, err) = merge(&[&whole.join("sweep.csv")], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("sweep.csv, line 1: no `# kvsim shard` fingerprint line"),
        "{err}"
    );
    // A row its shard does not own.
    let text = std::fs::read_to_string(&b).unwrap();
    let moved = dir.path().join("moved.csv");
    let lines: Vec<&str> = text.lines().collect();
    let row = lines[2].replacen("1,", "2,", 1);
    std::fs::write(&moved, format!("{}\n{}\n{row}\n", lines[0], lines[1])).unwrap();
    let (code, err) = merge(&[&a, &moved, &c], &out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("moved.csv, line 3: point 2 is not in shard 1/3"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn out_may_not_be_one_of_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (_, [a, b, c]) = three(dir.path());
    let before = std::fs::read(&b).unwrap();
    let parts = dir.path().join("parts");
    // The same file, however it is spelt.
    for out in [
        b.clone(),
        parts.join(".").join("sweep.shard-1-of-3.csv"),
        parts
            .join("..")
            .join("parts")
            .join("sweep.shard-1-of-3.csv"),
    ] {
        let (code, err) = merge(&[&a, &b, &c], &out);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("is the input shard"), "{err}");
        assert!(err.contains("choose another --out"), "{err}");
        assert_eq!(std::fs::read(&b).unwrap(), before, "the shard is intact");
    }
    // Links to it (hard links are found by inode, on Unix).
    #[cfg(unix)]
    {
        let (hard, soft) = (dir.path().join("hard.csv"), dir.path().join("soft.csv"));
        std::fs::hard_link(&b, &hard).unwrap();
        std::os::unix::fs::symlink(&b, &soft).unwrap();
        for out in [hard, soft] {
            let (code, err) = merge(&[&a, &b, &c], &out);
            assert_eq!(code, Some(2), "{}: {err}", out.display());
            assert!(err.contains("is the input shard"), "{err}");
            assert_eq!(std::fs::read(&b).unwrap(), before);
        }
    }
}
