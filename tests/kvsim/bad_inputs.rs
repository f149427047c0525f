//! The malformed-input corpus of `tests/bad-inputs/`: every file is fed to the
//! built binary and must be refused with exit code 2 (unless its case says
//! otherwise), no panic, nothing written (to its output or the corpus), the input
//! left as it was, and a
//! message naming the file, the key or line, and what was expected
//! (`tests/bad-inputs/expected.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Substrings the error output must contain.
    contains: Vec<String>,
    /// Expected exit code.
    #[serde(default = "two")]
    exit: i32,
    /// Command line, with placeholders; default from the file's prefix.
    #[serde(default)]
    args: Option<Vec<String>>,
    /// Whether the message must name the file itself.
    #[serde(default = "yes")]
    names_file: bool,
    /// Files the command may leave in the output directory.
    #[serde(default)]
    writes: Vec<String>,
}

fn two() -> i32 {
    2
}

fn yes() -> bool {
    true
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs")
}

/// The command line of a file by its name's prefix (see expected.toml).
fn default_args(name: &str) -> Vec<&'static str> {
    let by_prefix: [(&str, &[&'static str]); 9] = [
        ("hf-", &["kv", "--hf-config", "{file}"]),
        ("scenario-", &["run", "{file}", "--out", "{out}"]),
        (
            "trace-",
            &[
                "run",
                "{support}/trace-base.toml",
                "--out",
                "{out}",
                "--set",
                "traffic.arrival.path={file}",
            ],
        ),
        (
            "measured-",
            &[
                "calibrate",
                "{file}",
                "--gpu",
                "h100-sxm",
                "--model",
                "llama-3.1-8b",
                "--out",
                "{out}/calibration.toml",
            ],
        ),
        (
            "calibration-",
            &[
                "run",
                "{support}/base.toml",
                "--out",
                "{out}",
                "--set",
                "hardware.calibration={file}",
            ],
        ),
        (
            "set-",
            &[
                "run",
                "{support}/base.toml",
                "--out",
                "{out}",
                "--set",
                "{content}",
            ],
        ),
        (
            "check-scenario-",
            &[
                "check",
                "{file}",
                "--baseline",
                "{support}/check-baseline.csv",
            ],
        ),
        (
            "check-baseline-",
            &["check", "{support}/base.toml", "--baseline", "{file}"],
        ),
        (
            "merge-",
            &[
                "merge",
                "{support}/merge-shard-0-of-2.csv",
                "{file}",
                "--out",
                "{out}/sweep.csv",
            ],
        ),
    ];
    by_prefix
        .iter()
        .find(|(p, _)| name.starts_with(p))
        .map(|(_, a)| a.to_vec())
        .unwrap_or_else(|| panic!("{name}: no default command for this prefix; give `args`"))
}

/// Every file left under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            let sub = p.file_name().unwrap().to_string_lossy().into_owned();
            out.extend(files_under(&p).into_iter().map(|f| format!("{sub}/{f}")));
        } else {
            out.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn every_bad_input_is_refused_with_a_message_that_says_where_and_why() {
    let dir = corpus_dir();
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.toml")
        .collect();
    let unlisted: Vec<_> = files
        .iter()
        .filter(|f| !manifest.cases.contains_key(*f))
        .collect();
    assert!(
        unlisted.is_empty(),
        "files without a case in expected.toml: {unlisted:?}"
    );
    let missing: Vec<_> = manifest
        .cases
        .keys()
        .filter(|c| !files.contains(c))
        .collect();
    assert!(missing.is_empty(), "cases without a file: {missing:?}");
    assert!(
        manifest.cases.len() >= 30,
        "the corpus should hold at least 30 inputs"
    );

    // No case may write into the corpus (a case pointing --out at it must be
    // refused without even a lock file beside its directory).
    let corpus_before = files_under(&dir);
    let scratch = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (name, case)) in manifest.cases.iter().enumerate() {
        let file = dir.join(name);
        let out = scratch.path().join(format!("out-{i}"));
        let content = std::fs::read_to_string(&file).unwrap_or_default();
        let before = std::fs::read(&file).unwrap();
        let args: Vec<String> = match &case.args {
            Some(a) => a.clone(),
            None => default_args(name).into_iter().map(String::from).collect(),
        }
        .into_iter()
        .map(|a| {
            a.replace("{file}", file.to_str().unwrap())
                .replace("{support}", dir.join("support").to_str().unwrap())
                .replace("{out}", out.to_str().unwrap())
                .replace("{content}", content.trim())
        })
        .collect();
        let result = Command::cargo_bin("kvsim")
            .unwrap()
            .args(&args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        let mut problems = Vec::new();
        if result.status.code() != Some(case.exit) {
            problems.push(format!(
                "exit {:?}, expected {}",
                result.status.code(),
                case.exit
            ));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        if !stderr.starts_with("error: ") {
            problems.push("the message does not start with `error: `".into());
        }
        if case.names_file && !stderr.contains(name.as_str()) {
            problems.push("the message does not name the file".into());
        }
        for want in &case.contains {
            if !stderr.contains(want.as_str()) {
                problems.push(format!("no `{want}` in the message"));
            }
        }
        let written: Vec<String> = files_under(&out)
            .into_iter()
            .filter(|f| !case.writes.contains(f))
            .collect();
        if !written.is_empty() {
            problems.push(format!("wrote {written:?}"));
        }
        // An input named as an output (`merge --out`) must survive too.
        if std::fs::read(&file).unwrap() != before {
            problems.push("changed the input file".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {}\n  {}",
                problems.join("; "),
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(
        files_under(&dir),
        corpus_before,
        "a case changed the corpus"
    );
}
