//! Fuzzing the input boundary with proptest (cargo-fuzz needs a nightly
//! compiler; this runs on stable and in CI).
//!
//! Mutated scenario files (from the bundled scenarios) and mutated trace CSVs
//! must never panic: each is accepted, or refused with an error that maps to
//! exit code 2 and names the file. An accepted scenario is also simulated for
//! a few hundred events (under `--max-events`), so values that pass
//! validation but break the engine (overflow, a hang) are caught too.
//!
//! The default case count keeps CI fast; `PROPTEST_CASES=100000 cargo test
//! --release fuzz` runs a long campaign. Inputs that once crashed are kept
//! as named cases at the bottom of this file and in `tests/bad-inputs/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kvsim::engine::{Limits, estimate_work, simulate_limited};
use kvsim::hardware::cost::RooflineCost;
use kvsim::scenario::Scenario;
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property: `PROPTEST_CASES` or a CI-sized default.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// Values that have broken parsers before: non-finite, negative, zero, at
/// and beyond integer limits, wrong types.
const NASTY: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0.0",
    "1e-300",
    "1e30",
    "1e308",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "\"x\"",
    "\"\"",
    "[]",
    "[1, 2]",
    "{}",
    "true",
    "1",
    "2",
    "3",
    "16",
    "1000000",
    "10000000",
    "0.5",
    "1.0000001",
    "\"paged\"",
    "\"contiguous\"",
    "\"sliding\"",
    "\"quantized\"",
    "\"int4\"",
    "\"crash\"",
    "\"preempt-swap\"",
    "{ kind = \"closed\", users = 1000000 }",
    "{ kind = \"fixed\", value = 10000000 }",
];

/// One edit of a file's text.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the value after the k-th `=` (to the next `,`, `}` or line end).
    Value(Index, &'static str),
    /// Delete a line.
    DeleteLine(Index),
    /// Repeat a line.
    DuplicateLine(Index),
    /// Overwrite a byte.
    Byte(Index, u8),
    /// Cut the text short.
    Truncate(Index),
    /// Insert a line.
    Insert(Index, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), proptest::sample::select(NASTY)).prop_map(|(i, v)| Mutation::Value(i, v)),
        2 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (
            any::<Index>(),
            proptest::sample::select(&[
                "bogus = 1",
                "[sweep]",
                "\"traffic.arrival.rate\" = []",
                "[cache]",
                "window = 0",
                "duration_s = 1e9",
                "[scheduler]",
                "on_oom = \"crash\"",
                "[[x]]",
                "=",
                "a.b.c = 1",
            ][..])
        )
            .prop_map(|(i, l)| Mutation::Insert(i, l)),
    ]
}

/// Applies `m` to `text` (bytes may stop being UTF-8: lossily repaired, as a
/// file read would be refused anyway and we want to reach the parser).
fn apply(text: &str, m: &Mutation) -> String {
    match m {
        Mutation::Value(i, v) => {
            let eqs: Vec<usize> = text.match_indices('=').map(|(p, _)| p).collect();
            if eqs.is_empty() {
                return text.to_string();
            }
            let start = eqs[i.index(eqs.len())] + 1;
            let rest = &text[start..];
            let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
            format!("{} {v}{}", &text[..start], &rest[end..])
        }
        Mutation::DeleteLine(i) | Mutation::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return String::new();
            }
            let k = i.index(lines.len());
            if matches!(m, Mutation::DeleteLine(_)) {
                lines.remove(k);
            } else {
                lines.insert(k, lines[k]);
            }
            lines.join("\n")
        }
        Mutation::Byte(i, b) => {
            let mut bytes = text.as_bytes().to_vec();
            if !bytes.is_empty() {
                let k = i.index(bytes.len());
                bytes[k] = *b;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(i) => {
            let mut k = i.index(text.len() + 1);
            while !text.is_char_boundary(k) {
                k -= 1;
            }
            text[..k].to_string()
        }
        Mutation::Insert(i, l) => {
            let mut lines: Vec<&str> = text.lines().collect();
            let k = i.index(lines.len() + 1);
            lines.insert(k, l);
            lines.join("\n")
        }
    }
}

/// Replaces the `at`-th number written after an `=` in `text` by `value`
/// (rounded when the original was an integer).
fn renumber(text: &str, at: Index, value: f64) -> String {
    let spans: Vec<(usize, usize, bool)> = text
        .match_indices('=')
        .filter_map(|(p, _)| {
            let start = p + 1;
            let rest = &text[start..];
            let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
            let v = rest[..end].trim();
            v.parse::<f64>()
                .ok()
                .map(|_| (start, start + end, v.parse::<i64>().is_ok()))
        })
        .collect();
    if spans.is_empty() {
        return text.to_string();
    }
    let (start, end, integer) = spans[at.index(spans.len())];
    let v = if integer {
        format!("{}", value.round() as u64)
    } else {
        format!("{value:e}")
    };
    format!("{} {v}{}", &text[..start], &text[end..])
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled scenarios (the fuzzer's seeds) and their paths.
fn seeds() -> Vec<(PathBuf, String)> {
    crate::common::bundled_scenarios()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Inputs accepted and refused so far in this process.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Counts one input; with `KVSIM_FUZZ_STATS` set, reports every 10,000 (to
/// size a campaign: a fuzzer that refuses everything tests only the parser).
fn count(accepted: bool) {
    let (a, r) = if accepted {
        (
            ACCEPTED.fetch_add(1, Ordering::Relaxed) + 1,
            REFUSED.load(Ordering::Relaxed),
        )
    } else {
        (
            ACCEPTED.load(Ordering::Relaxed),
            REFUSED.fetch_add(1, Ordering::Relaxed) + 1,
        )
    };
    if (a + r) % 10_000 == 0 && std::env::var_os("KVSIM_FUZZ_STATS").is_some() {
        eprintln!("fuzz: {} inputs, {a} accepted, {r} refused", a + r);
    }
}

/// Loads `text` as if it were the file `path`; on success simulates a few
/// hundred events. Panics (the property fails) if anything panics or an
/// error does not map to exit code 2 or does not name the file.
fn check_scenario(text: &str, path: &Path) {
    // A crash that kills the process (out of memory, stack overflow) leaves
    // no proptest report: `KVSIM_FUZZ_LOG=FILE` keeps the input in flight.
    if let Some(log) = std::env::var_os("KVSIM_FUZZ_LOG") {
        let _ = std::fs::write(log, format!("# {}\n{text}", path.display()));
    }
    let started = std::time::Instant::now();
    let slow = |what: &str| {
        let t = started.elapsed().as_secs_f64();
        if t > 0.5 && std::env::var_os("KVSIM_FUZZ_STATS").is_some() {
            eprintln!("fuzz: {what} took {t:.1} s:\n{text}\n---");
        }
    };
    match Scenario::from_toml(text, path, &[]) {
        Ok(s) => {
            count(true);
            slow("validation");
            let e = estimate_work(&s);
            assert!(!e.wall_s.is_nan(), "estimate {e:?}");
            let d = &s.deployment;
            let limits = Limits {
                max_events: Some(300),
                ..Limits::default()
            };
            let _ = simulate_limited(
                &s,
                s.seed,
                RooflineCost::new(&s.model, d, &d.efficiency),
                &limits,
            );
            slow("simulation");
        }
        Err(e) => {
            count(false);
            assert_eq!(e.exit_code(), 2, "{e}");
            let msg = e.to_string();
            assert!(!msg.trim().is_empty());
            // A scenario error names the scenario; a data-file error its file.
            if let kvsim::Error::Scenario { path: p, .. } = &e {
                assert_eq!(p, path, "{msg}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    })]

    /// Mutated bundled scenarios: accepted (and simulated a little) or
    /// refused with exit code 2.
    #[test]
    fn mutated_scenarios_never_panic(
        seed in any::<Index>(),
        edits in proptest::collection::vec(mutation(), 1..5),
    ) {
        let seeds = seeds();
        let (path, text) = &seeds[seed.index(seeds.len())];
        let mut text = text.clone();
        for m in &edits {
            text = apply(&text, m);
        }
        check_scenario(&text, path);
    }

    /// Bundled scenarios with numbers replaced by other numbers, from 0 to
    /// 1e12 on a log scale, integral where the original was: most pass
    /// validation, so this drives the engine (and, in debug builds, its
    /// invariants and overflow checks) through extreme but valid settings.
    #[test]
    fn renumbered_scenarios_never_panic(
        seed in any::<Index>(),
        edits in proptest::collection::vec((any::<Index>(), -3.0f64..12.0, any::<bool>()), 1..4),
    ) {
        let seeds = seeds();
        let (path, text) = &seeds[seed.index(seeds.len())];
        let mut text = text.clone();
        for (at, exponent, zero) in &edits {
            text = renumber(&text, *at, if *zero { 0.0 } else { 10f64.powf(*exponent) });
        }
        check_scenario(&text, path);
    }

    /// Mutated traces, replayed by a valid scenario: loaded or refused with
    /// exit code 2 naming the trace file.
    #[test]
    fn mutated_traces_never_panic(
        edits in proptest::collection::vec(mutation(), 1..5),
        extra in proptest::collection::vec(
            (0u32..3, proptest::sample::select(NASTY), 0u32..2000, 0u32..2000),
            0..4,
        ),
    ) {
        let mut text = std::fs::read_to_string(
            root().join("scenarios/data/long-context-crash.csv"),
        )
        .unwrap();
        // Extra rows with a nasty value in one field.
        for (field, nasty, a, b) in &extra {
            let mut row = [format!("{}", 100 + a), a.to_string(), b.to_string()];
            row[*field as usize] = nasty.to_string();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        for m in &edits {
            text = apply(&text, m);
        }
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("fuzzed.csv");
        std::fs::write(&trace, &text).unwrap();
        let scenario = r#"
name = "fuzz-trace"
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "h100-sxm"
[traffic]
arrival = { kind = "trace", path = "fuzzed.csv" }
"#;
        let path = dir.path().join("s.toml");
        match Scenario::from_toml(scenario, &path, &[]) {
            Ok(s) => {
                count(true);
                let d = &s.deployment;
                let limits = Limits { max_events: Some(300), ..Limits::default() };
                let _ = simulate_limited(&s, 0, RooflineCost::new(&s.model, d, &d.efficiency), &limits);
            }
            Err(e) => {
                count(false);
                prop_assert_eq!(e.exit_code(), 2, "{}", e);
                let msg = e.to_string();
                prop_assert!(msg.contains("fuzzed.csv"), "{}", msg);
            }
        }
    }
}

/// Inputs the fuzzer found that crashed kvsim, kept as named cases (each is
/// also in `tests/bad-inputs/` with the message it must produce).
#[test]
fn fuzzer_finds_stay_fixed() {
    let finds = [
        // 2^32 - 1 closed-loop users: one queued event each, 10 GiB, abort.
        (
            "four-billion-users.toml",
            r#"
name = "f"
duration_s = 600
[model]
preset = "llama-2-7b"
[hardware]
gpu = "a100-40gb"
[traffic]
arrival = { kind = "closed", users = 4294967295, think_s = 5.0, think = "exponential" }
prompt = { kind = "lognormal", mean = 600, sigma = 0.6, min = 16, max = 2048 }
output = { kind = "lognormal", mean = 400, sigma = 0.6, min = 1, max = 1024 }
"#,
        ),
    ];
    for (name, text) in finds {
        let path = Path::new(name);
        assert!(Scenario::from_toml(text, path, &[]).is_err(), "{name}");
        check_scenario(text, path);
    }
}
