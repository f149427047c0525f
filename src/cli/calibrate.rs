//! `kvsim calibrate` (a least-squares fit of the cost model to measured
//! latencies) and `kvsim validate` (kvsim against published measurements).

use super::{CalibrateArgs, ValidateArgs, say};
use crate::error::Error;
use crate::{catalog, report};

/// Runs `kvsim calibrate`: `Ok(false)` (exit 1) when the fit is too poor to
/// write (see [`crate::calibrate::Fit::is_poor`]).
pub fn calibrate(a: &CalibrateArgs) -> Result<bool, Error> {
    let model = catalog::model(&a.model).ok_or_else(|| {
        Error::Usage(format!(
            "--model: unknown model `{}` (see kvsim catalog models)",
            a.model
        ))
    })?;
    let gpu = catalog::gpu(&a.gpu).ok_or_else(|| {
        Error::Usage(format!(
            "--gpu: unknown GPU `{}` (see kvsim catalog gpus)",
            a.gpu
        ))
    })?;
    // The same bounds as a scenario's `hardware.tp`.
    if !(1..=1024).contains(&a.tp) {
        return Err(Error::Usage(format!(
            "--tp must be between 1 and 1024, got {}",
            a.tp
        )));
    }
    crate::scenario::tp_splits(&model, a.tp)
        .map_err(|reason| Error::Usage(format!("--tp: {reason}")))?;
    let gpu_name = gpu.name.clone();
    let deployment = crate::hardware::Deployment::new(gpu, a.tp, model.weight_dtype);
    let rows = crate::calibrate::read_measurements(&a.measured)?;
    // The fit's complaints are about rows of the file: name it.
    let fit = crate::calibrate::fit(&model, &deployment, &rows).map_err(|e| match e {
        Error::Usage(reason) => Error::DataFile {
            path: a.measured.clone(),
            line: None,
            reason,
        },
        e => e,
    })?;
    let refused = fit.is_poor() && !a.allow_poor_fit;
    if !refused {
        report::write_atomic(&a.out, fit.to_toml().as_bytes())?;
    }
    let c = fit.calibration();
    let d = deployment.efficiency;
    let rows = vec![
        (
            "mbu".to_string(),
            format!("{:.4} (default {:.2})", c.mbu, d.mbu),
        ),
        (
            "mfu".to_string(),
            format!("{:.4} (default {:.2})", c.mfu, d.mfu),
        ),
        (
            "step_overhead_s".to_string(),
            format!("{:.6} (default {})", c.step_overhead_s, d.step_overhead_s),
        ),
        (
            "steps by bound".to_string(),
            format!(
                "{} with a memory-bound kernel group, {} with a compute-bound one",
                fit.memory_bound_rows, fit.compute_bound_rows
            ),
        ),
        (
            "mean |error|".to_string(),
            format!("{:.1} % -> {:.1} %", fit.mape_before, fit.mape_after),
        ),
        (
            "max |error|".to_string(),
            format!("{:.1} % -> {:.1} %", fit.max_err_before, fit.max_err_after),
        ),
    ];
    say(report::print_kv_report(&rows))?;
    for w in fit.warnings() {
        eprintln!("warning: {w}");
    }
    if refused {
        eprintln!(
            "error: {}: the fit leaves a mean error of {:.1} % (above {} %): kvsim's roofline does \
             not describe these measurements (mixed setups, or not steps of {} on {} x {}), so \
             {} was not written; --allow-poor-fit writes it anyway",
            a.measured.display(),
            fit.mape_after,
            crate::calibrate::POOR_FIT_MAPE,
            model.name,
            a.tp,
            gpu_name,
            a.out.display()
        );
        return Ok(false);
    }
    // A scenario resolves relative paths against its own directory, not the
    // shell's: print the absolute path, which works from any scenario.
    let absolute = std::fs::canonicalize(&a.out).unwrap_or_else(|_| a.out.clone());
    say(format_args!(
        "fitted {} measurements; wrote {} (in a scenario: [hardware] calibration = \"{}\", \
         or a path relative to the scenario file's directory)",
        fit.rows,
        a.out.display(),
        absolute.display()
    ))?;
    Ok(true)
}

pub(super) fn validate(a: &ValidateArgs) -> Result<(), Error> {
    let results = crate::validate::run_cases();
    report::write_atomic(
        &a.out,
        crate::validate::render_markdown(&results).as_bytes(),
    )?;
    // The held-out rows by GPU and model, which `report.html` quotes (the
    // binary embeds the committed copy; a test keeps it current).
    let csv = a.out.with_file_name("validation-held-out.csv");
    report::write_atomic(
        &csv,
        crate::validate::held_out_csv(&results.rows).as_bytes(),
    )?;
    let h = crate::validate::headline(&results.rows);
    let relative = h
        .relative
        .map(|(median, max)| {
            format!(
                "; median |error| {:.1} %, largest {:.1} %",
                median * 100.0,
                max * 100.0
            )
        })
        .unwrap_or_default();
    say(format_args!(
        "held-out rows: {} of {} within their targets{relative}; wrote {}",
        h.within,
        h.rows,
        a.out.display()
    ))?;
    let missed = crate::validate::missed(&results.rows);
    if !missed.is_empty() {
        say(format_args!(
            "missed ({}, largest error first; VALIDATION.md says why):",
            missed.len()
        ))?;
        for r in missed {
            say(format_args!(
                "  {:<44} {:>9}  (target {})",
                r.id,
                r.error_label(),
                r.tolerance.label()
            ))?;
        }
    }
    Ok(())
}
