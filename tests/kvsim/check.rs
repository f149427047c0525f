//! `kvsim check` cannot be fooled: baselines of NaN, infinities or nothing,
//! missing, extra or repeated points and columns, a renamed axis, unknown
//! metric names and tolerances out of range; and it knows which way each
//! metric is better.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A small sweep (2 rates x 2 policies, one replicate) with `extra` TOML
/// appended, in `dir`.
fn scenario(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"
name = "check-test"
seed = 3
requests = 80
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = {{ kind = "poisson", rate = 4.0 }}
prompt = {{ kind = "lognormal", mean = 300, sigma = 0.8, min = 4, max = 2048 }}
output = {{ kind = "lognormal", mean = 100, sigma = 0.8, min = 1, max = 512 }}
[slo]
tpot_p99 = 0.05
[sweep]
"traffic.arrival.rate" = [2.0, 8.0]
"cache.policy" = ["contiguous", "paged"]
{extra}
"#
    );
    let p = dir.join("check.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `kvsim check SCENARIO --baseline BASELINE EXTRA...`.
fn check(sc: &Path, baseline: &Path, extra: &[&str]) -> std::process::Output {
    kvsim()
        .args(["check", sc.to_str().unwrap(), "--baseline"])
        .arg(baseline)
        .args(extra)
        .output()
        .unwrap()
}

/// Exit code, stdout and stderr of `o`.
fn parts(o: &std::process::Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The scenario and a baseline written by `--update` from it.
fn with_baseline(dir: &Path) -> (PathBuf, PathBuf) {
    let sc = scenario(dir, "");
    let baseline = dir.join("baseline.csv");
    let o = check(&sc, &baseline, &["--update"]);
    assert!(o.status.success(), "{}", parts(&o).2);
    (sc, baseline)
}

/// The CSV at `path` as rows of cells (kvsim's tables quote nothing).
fn cells(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

fn write_cells(path: &Path, rows: &[Vec<String>]) {
    let text: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
    std::fs::write(path, text.join("\n") + "\n").unwrap();
}

/// `baseline` with `edit` applied to a copy of its cells, written to `to`.
fn edited(baseline: &Path, to: &Path, edit: impl FnOnce(&mut Vec<Vec<String>>)) -> PathBuf {
    let mut rows = cells(baseline);
    edit(&mut rows);
    write_cells(to, &rows);
    to.to_path_buf()
}

fn col(rows: &[Vec<String>], name: &str) -> usize {
    rows[0].iter().position(|h| h == name).unwrap()
}

/// Multiplies metric `name` at data row `row` (0-based) by `factor`.
fn scale(rows: &mut [Vec<String>], row: usize, name: &str, factor: f64) {
    let c = col(rows, name);
    let v: f64 = rows[row + 1][c].parse().unwrap();
    rows[row + 1][c] = format!("{}", v * factor);
}

#[test]
fn a_baseline_of_nan_infinities_or_empty_cells_never_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, baseline) = with_baseline(dir.path());
    let ok = check(&sc, &baseline, &[]);
    let (code, out, _) = parts(&ok);
    assert_eq!(code, Some(0), "{out}");
    // The default tolerance is 1 %.
    assert!(
        out.contains("4 points within tolerance") && out.contains("other metrics within 1.00 %"),
        "{out}"
    );
    for value in ["NaN", "inf", "-inf", ""] {
        let bad = edited(&baseline, &dir.path().join("bad.csv"), |rows| {
            let first = col(rows, "requests");
            let last = col(rows, "kv_bytes_per_token");
            for r in rows.iter_mut().skip(1) {
                r[first..=last].fill(value.to_string());
            }
        });
        let (code, out, err) = parts(&check(&sc, &bad, &[]));
        assert_eq!(code, Some(1), "{value:?}: {out}{err}");
        assert!(!out.contains("within tolerance"), "{value:?}: {out}");
        assert!(out.contains("not comparable"), "{value:?}: {out}");
        assert!(out.contains("FAIL"), "{value:?}: {out}");
    }
    // One cell is enough, both ways round.
    let one = edited(&baseline, &dir.path().join("one.csv"), |rows| {
        let c = col(rows, "tpot_p99");
        rows[2][c] = "NaN".into();
    });
    let (code, out, _) = parts(&check(&sc, &one, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("tpot_p99") && out.contains("NaN"), "{out}");
}

#[test]
fn missing_and_extra_points_and_columns_are_named_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, baseline) = with_baseline(dir.path());
    let fewer = edited(&baseline, &dir.path().join("fewer.csv"), |rows| {
        rows.remove(3);
    });
    let (code, out, _) = parts(&check(&sc, &fewer, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "point 2 (traffic.arrival.rate=8.0, cache.policy=contiguous) of the sweep is not in the baseline"
        ),
        "{out}"
    );
    let more = edited(&baseline, &dir.path().join("more.csv"), |rows| {
        let mut extra = rows[4].clone();
        extra[0] = "4".into();
        extra[1] = "16.0".into();
        rows.push(extra);
    });
    let (code, out, _) = parts(&check(&sc, &more, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("point 4 (traffic.arrival.rate=16.0, cache.policy=paged) of the baseline is not in the sweep"),
        "{out}"
    );
    let columns = edited(&baseline, &dir.path().join("columns.csv"), |rows| {
        let c = col(rows, "tpot_p99");
        for r in rows.iter_mut() {
            r.remove(c);
            r.push("1".into());
        }
        *rows[0].last_mut().unwrap() = "mystery".into();
    });
    let (code, out, _) = parts(&check(&sc, &columns, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("column `tpot_p99` of the sweep is not in the baseline"),
        "{out}"
    );
    assert!(
        out.contains("column `mystery` of the baseline is not in the sweep"),
        "{out}"
    );
    // The other metrics were still compared, and agreed.
    assert!(
        out.contains("2 mismatches, 0 regressions, 0 changes"),
        "{out}"
    );
}

#[test]
fn a_renamed_axis_column_fails_naming_both_names() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, baseline) = with_baseline(dir.path());
    let renamed = edited(&baseline, &dir.path().join("renamed.csv"), |rows| {
        let c = col(rows, "cache.policy");
        rows[0][c] = "cache.polcy".into();
    });
    let (code, out, _) = parts(&check(&sc, &renamed, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("axis column `cache.polcy` of the baseline is not an axis of the sweep"),
        "{out}"
    );
    assert!(
        out.contains("axis `cache.policy` of the sweep is not a column of the baseline"),
        "{out}"
    );
    assert!(out.contains("points were not compared"), "{out}");
}

#[test]
fn a_repeated_point_or_an_unreadable_cell_is_bad_input_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, baseline) = with_baseline(dir.path());
    let twice = edited(&baseline, &dir.path().join("twice.csv"), |rows| {
        let again = rows[2].clone();
        rows.push(again);
    });
    let (code, out, err) = parts(&check(&sc, &twice, &[]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("twice.csv, line 6"), "{err}");
    assert!(
        err.contains("point 1 (traffic.arrival.rate=2.0, cache.policy=paged) repeats line 3"),
        "{err}"
    );
    // The same axis values under another point index are the same point.
    let alias = edited(&baseline, &dir.path().join("alias.csv"), |rows| {
        let mut again = rows[2].clone();
        again[0] = "7".into();
        rows.push(again);
    });
    let (code, _, err) = parts(&check(&sc, &alias, &[]));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 6") && err.contains("repeats line 3"),
        "{err}"
    );
    let text = edited(&baseline, &dir.path().join("text.csv"), |rows| {
        let c = col(rows, "ttft_p99");
        rows[3][c] = "fast".into();
    });
    let (code, _, err) = parts(&check(&sc, &text, &[]));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("text.csv, line 4: column `ttft_p99`: `fast` is not a number"),
        "{err}"
    );
}

#[test]
fn tolerances_must_name_known_metrics_and_lie_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let (_, baseline) = with_baseline(dir.path());
    let refused = |extra: &str, args: &[&str], wants: &[&str]| {
        let sc = scenario(dir.path(), extra);
        let (code, out, err) = parts(&check(&sc, &baseline, args));
        assert_eq!(code, Some(2), "{extra} {args:?}: {out}{err}");
        for w in wants {
            assert!(err.contains(w), "{extra} {args:?}: no `{w}` in {err}");
        }
    };
    refused(
        "[check]\nrtol_by_metric = { tpot_p999 = 0.1 }",
        &[],
        &[
            "`check.rtol_by_metric.tpot_p999`",
            "unknown metric",
            "known metrics",
            "tpot_p99,",
            "throughput_tok_s",
        ],
    );
    refused(
        "[check]\nrtol_by_metric = { ok = 0.1 }",
        &[],
        &["`check.rtol_by_metric.ok`", "compared exactly"],
    );
    refused(
        "[check]\nrtol = 5",
        &[],
        &["`check.rtol`", "[0, 1]", "got 5"],
    );
    refused(
        "[check]\nrtol_by_metric = { tpot_p99 = -0.5 }",
        &[],
        &["`check.rtol_by_metric.tpot_p99`", "[0, 1]", "got -0.5"],
    );
    refused("", &["--rtol", "2"], &["--rtol 2", "[0, 1]"]);
    refused("", &["--rtol", "NaN"], &["--rtol NaN", "[0, 1]"]);
    // The bounds themselves are accepted.
    let sc = scenario(
        dir.path(),
        "[check]\nrtol = 1\nrtol_by_metric = { tpot_p99 = 0 }",
    );
    assert_eq!(
        check(&sc, &baseline, &["--rtol", "1"]).status.code(),
        Some(0)
    );
}

#[test]
fn improvements_pass_unless_fail_on_change_and_regressions_always_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (sc, baseline) = with_baseline(dir.path());
    // A worse baseline makes the fresh sweep an improvement: TPOT lower,
    // throughput higher.
    let worse = edited(&baseline, &dir.path().join("worse.csv"), |rows| {
        scale(rows, 1, "tpot_p99", 1.5);
        scale(rows, 1, "throughput_tok_s", 0.5);
    });
    let (code, out, _) = parts(&check(&sc, &worse, &[]));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("improvements (better beyond tolerance"),
        "{out}"
    );
    assert!(
        out.contains("tpot_p99") && out.contains("throughput_tok_s"),
        "{out}"
    );
    assert!(
        out.contains("-33.33 %") && out.contains("+100.00 %"),
        "{out}"
    );
    assert!(
        out.contains("0 mismatches, 0 regressions, 0 changes, 0 shifts, 2 improvements"),
        "{out}"
    );
    assert!(out.contains(": pass (--fail-on regression)"), "{out}");
    let (code, out, _) = parts(&check(&sc, &worse, &["--fail-on", "change"]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(": FAIL (--fail-on change)"), "{out}");
    // A better baseline makes it a regression, which fails either way.
    let better = edited(&baseline, &dir.path().join("better.csv"), |rows| {
        scale(rows, 1, "tpot_p99", 0.5);
    });
    for fail_on in ["regression", "change"] {
        let (code, out, _) = parts(&check(&sc, &better, &["--fail-on", fail_on]));
        assert_eq!(code, Some(1), "{fail_on}: {out}");
        assert!(out.contains("regressions (worse beyond tolerance"), "{out}");
        assert!(out.contains("+100.00 %"), "{out}");
        assert!(out.contains("1 regression,"), "{out}");
    }
    // A metric that follows from the rest (steps) moving is a shift: it
    // fails only with --fail-on change.
    let steps = edited(&baseline, &dir.path().join("steps.csv"), |rows| {
        let c = col(rows, "steps");
        let n: u64 = rows[2][c].parse().unwrap();
        rows[2][c] = (n - 1).to_string();
    });
    let (code, out, _) = parts(&check(&sc, &steps, &[]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("shifts (no better direction"), "{out}");
    assert!(out.contains("1 shift,"), "{out}");
    let (code, out, _) = parts(&check(&sc, &steps, &["--fail-on", "change"]));
    assert_eq!(code, Some(1), "{out}");
    // A metric that defines the experiment (requests) fails on any move.
    let requests = edited(&baseline, &dir.path().join("requests.csv"), |rows| {
        let c = col(rows, "requests");
        let n: u64 = rows[2][c].parse().unwrap();
        rows[2][c] = (n + 1).to_string();
    });
    let (code, out, _) = parts(&check(&sc, &requests, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("changes (the experiment itself"), "{out}");
    assert!(out.contains("1 change,"), "{out}");
}
