//! The committed `VALIDATION.md` is current, and every case meets its target
//! (or, for a documented known miss, its wider bound).

use std::path::Path;

use super::cases::KNOWN_MISSES;
use super::*;

fn validation_md() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("VALIDATION.md")
}

#[test]
fn validation_md_is_generated_not_edited() {
    let committed = std::fs::read_to_string(validation_md()).expect("VALIDATION.md at the root");
    let generated = render_markdown(&run_cases());
    assert!(
        committed == generated,
        "VALIDATION.md differs from the generator's output: regenerate it with \
         `cargo run --release -- validate` (or `cargo test --release --lib \
         validate::tests::write_validation_md -- --ignored`)"
    );
}

#[test]
fn every_case_meets_its_target_or_its_known_miss_bound() {
    let results = run_cases();
    let mut failures = Vec::new();
    for r in &results {
        match KNOWN_MISSES.iter().find(|(id, _)| *id == r.id) {
            Some((_, bound)) => {
                // NaN errors fail too.
                if r.error().abs() > *bound || r.error().is_nan() {
                    failures.push(format!(
                        "{} (known miss) error {} beyond {bound}",
                        r.id,
                        r.error()
                    ));
                }
            }
            None => {
                if !r.within() {
                    failures.push(format!(
                        "{} error {} beyond {:?}",
                        r.id,
                        r.error(),
                        r.tolerance
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn known_misses_name_real_cases_and_say_so() {
    let results = run_cases();
    for (id, _) in KNOWN_MISSES {
        let r = results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no case {id}"));
        assert!(
            r.note.contains("Known miss"),
            "{id}'s note must say it is a known miss"
        );
        // A case that now meets its target leaves the list, so the tests hold
        // it to the stated tolerance from then on.
        assert!(
            !r.within(),
            "{id} now meets its target: remove it from KNOWN_MISSES"
        );
    }
}

#[test]
fn ids_are_unique_and_groups_known() {
    let results = run_cases();
    let mut ids: Vec<&str> = results.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate case ids");
    for r in &results {
        assert!(
            super::cases::GROUPS.contains(&r.group),
            "{}: unknown group",
            r.id
        );
        assert!(
            r.published.is_finite() && r.kvsim.is_finite(),
            "{}: non-finite",
            r.id
        );
    }
}

#[test]
fn the_arithmetic_is_exact() {
    for r in run_cases()
        .iter()
        .filter(|r| r.tolerance == Tolerance::Exact)
    {
        assert_eq!(r.kvsim, r.published, "{}", r.id);
    }
}

#[test]
fn errors_and_targets() {
    let case = |published, kvsim, tolerance| CaseResult {
        id: "t",
        group: "g",
        source: "s",
        configuration: String::new(),
        metric: "m",
        unit: "u",
        published,
        kvsim,
        tolerance,
        note: String::new(),
    };
    assert!(case(10.0, 11.0, Tolerance::Relative(0.1)).within());
    assert!(!case(10.0, 11.5, Tolerance::Relative(0.1)).within());
    assert!((case(10.0, 9.0, Tolerance::Relative(0.1)).error() + 0.1).abs() < 1e-12);
    assert!(case(20.4, 30.0, Tolerance::Absolute(10.0)).within());
    assert!(!case(20.4, 30.5, Tolerance::Absolute(10.0)).within());
    assert!(case(5.0, 5.0, Tolerance::Exact).within());
    assert!(!case(5.0, 5.000001, Tolerance::Exact).within());
}

/// Writes `VALIDATION.md` (run once after changing a case or the model):
/// `cargo test --release --lib validate::tests::write_validation_md -- --ignored`.
#[test]
#[ignore]
fn write_validation_md() {
    std::fs::write(validation_md(), render_markdown(&run_cases())).expect("write VALIDATION.md");
}
