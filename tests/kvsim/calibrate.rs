//! Calibration end to end through files: the example measurement files are
//! read, fitted, written as a calibration file and read back.

use std::path::{Path, PathBuf};

use kvsim::Error;
use kvsim::calibrate::{Fit, fit, read_calibration, read_measurements};
use kvsim::catalog;
use kvsim::hardware::Deployment;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/calibration")
        .join(name)
}

fn fit_example(name: &str) -> Fit {
    let model = catalog::model("llama-3.1-8b").unwrap();
    let gpu = catalog::gpu("h100-sxm").unwrap();
    let deployment = Deployment::new(gpu, 1, model.weight_dtype);
    let rows = read_measurements(&example(name)).unwrap();
    fit(&model, &deployment, &rows).unwrap()
}

/// The example files were generated with mbu 0.62, mfu 0.47 and 2.3 ms of
/// fixed cost per step (beside the GPU's per-layer cost, which the fit holds)
/// plus +-3 % noise; 48 rows each give the coefficients within 5 %.
#[test]
fn example_files_fit_their_generating_coefficients() {
    for name in ["steps.csv", "requests.csv"] {
        let fit = fit_example(name);
        for (key, got, want) in [
            ("mbu", fit.mbu, 0.62),
            ("mfu", fit.mfu, 0.47),
            ("step_overhead_s", fit.step_overhead_s, 2.3e-3),
        ] {
            assert!(
                (got / want - 1.0).abs() < 0.05,
                "{name}: {key} {got} vs {want}"
            );
        }
        assert!(fit.mape_after < fit.mape_before, "{fit:?}");
        assert!(fit.mape_after < 2.0, "{fit:?}");
    }
}

#[test]
fn calibration_file_round_trips_through_the_disk() {
    let fit = fit_example("steps.csv");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h100.toml");
    std::fs::write(&path, fit.to_toml()).unwrap();
    let back = read_calibration(&path).unwrap();
    assert!((back.mbu / fit.mbu - 1.0).abs() < 1e-3);
    assert!((back.mfu / fit.mfu - 1.0).abs() < 1e-3);
    assert!((back.step_overhead_s / fit.step_overhead_s - 1.0).abs() < 1e-3);

    std::fs::write(&path, "mbu = 1.2\nmfu = 0.5\nstep_overhead_s = 0.001\n").unwrap();
    let err = read_calibration(&path).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("h100.toml") && message.contains("`mbu`"),
        "{message}"
    );
}

#[test]
fn missing_and_malformed_measurement_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.csv");
    assert!(matches!(read_measurements(&missing), Err(Error::Io { .. })));
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "batch,context_tokens,prefill_tokens,step_s\n1,100,0,0.01\n1,100,0,abc\n",
    )
    .unwrap();
    let message = read_measurements(&bad).unwrap_err().to_string();
    assert!(
        message.contains("bad.csv, line 3: column `step_s`: `abc` is not a number"),
        "{message}"
    );
}
