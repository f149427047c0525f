//! The command line: clap definitions (whose `///` comments are the help text)
//! and one function per subcommand that glues the library together.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::catalog;
use crate::engine::{Limits, Stopped, estimate_work, simulate_limited};
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::interrupt::INTERRUPTED;
use crate::model::{Dtype, Model, kv_bytes};
use crate::output::{self, OutputDir};
use crate::report;
use crate::scenario::Scenario;
use crate::units::gib;

/// kvsim: simulate LLM serving and see what the KV cache does to your traffic.
#[derive(Debug, Parser)]
#[command(
    name = "kvsim",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 a failing `check` or an infeasible `plan`; \
                  2 bad input or usage; \
                  3 stopped by --max-events or --time-limit; 130 interrupted (Ctrl-C)."
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// kvsim's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// KV-cache calculator: bytes for a model or shape at a sequence length and batch.
    Kv(KvArgs),
    /// List the built-in models or GPUs.
    Catalog(CatalogArgs),
    /// Simulate one scenario; write summary.json, requests.csv and timeline.csv.
    Run(RunArgs),
    /// Run every point of a scenario's sweep grid in parallel; write sweep.csv.
    Sweep(SweepArgs),
    /// Join the sweep.shard-*.csv files of a sharded sweep into one sweep.csv.
    Merge(MergeArgs),
    /// Run a scenario's sweep and compare it with a baseline sweep.csv (exit 1 on a regression).
    Check(CheckArgs),
    /// Draw the default charts of a sweep.csv or timeline.csv (or one chart with --y).
    Plot(PlotArgs),
    /// Find each candidate's sustainable rate within the SLOs; size and price the target load.
    Plan(PlanArgs),
    /// Compare kvsim with published measurements; write VALIDATION.md.
    Validate(ValidateArgs),
    /// Fit mbu, mfu and step overhead to measured latencies; write a calibration file.
    Calibrate(CalibrateArgs),
    /// Rebuild report.html (one self-contained page) from a run, sweep or plan output directory.
    Report(ReportArgs),
}

/// Arguments of `kvsim report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The output directory of a `kvsim run`, `sweep` or `plan` (e.g.
    /// output/quickstart); its report.html is rewritten from its files.
    pub dir: PathBuf,
}

/// Arguments of `kvsim calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Measurements: batch,context_tokens,prefill_tokens,step_s (engine steps)
    /// or prompt_tokens,output_tokens,ttft_s,tpot_s with an optional
    /// concurrency column (requests).
    pub measured: PathBuf,
    /// The GPU measured (catalog name).
    #[arg(long)]
    pub gpu: String,
    /// The model measured (catalog name).
    #[arg(long)]
    pub model: String,
    /// Tensor-parallel degree of the measured deployment.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// Where to write the calibration file.
    #[arg(long, default_value = "calibration.toml")]
    pub out: PathBuf,
    /// Write the calibration even when the fit leaves a mean error above
    /// 20 % (otherwise such a fit exits 1 and writes nothing).
    #[arg(long)]
    pub allow_poor_fit: bool,
}

/// Arguments of `kvsim plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The scenario (its `[plan]` table lists the candidates and the target load).
    #[command(flatten)]
    pub input: ScenarioInput,
    /// Objectives over the scenario's `[slo]`, e.g. ttft_p99=2,tpot_p99=0.05,oom_rate=0.01
    /// (seconds; oom_rate a fraction).
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub slo: Option<String>,
    /// Output directory (default: `output/<scenario name>`), replaced as a
    /// whole; refused if it holds files kvsim did not write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: one per core; at most the cores and the
    /// runs there are). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Format of the cost-against-capacity chart.
    #[arg(long, default_value = "png")]
    pub format: crate::report::plot::Format,
}

/// Arguments of `kvsim validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Where to write the report.
    #[arg(long, default_value = "VALIDATION.md")]
    pub out: PathBuf,
}

/// Arguments of `kvsim plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A sweep.csv (sweep charts) or timeline.csv (a run's charts).
    pub results: PathBuf,
    /// Column for the x axis (default: the sweep's load axis, or time).
    #[arg(long)]
    pub x: Option<String>,
    /// Column for the y axis: draw only this chart.
    #[arg(long)]
    pub y: Option<String>,
    /// Column whose values split the lines (default: the first text axis).
    #[arg(long)]
    pub series: Option<String>,
    /// Output directory (default: `plots/` beside the input), replaced as a
    /// whole; refused if it holds files kvsim did not write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Image format.
    #[arg(long, default_value = "png")]
    pub format: crate::report::plot::Format,
}

/// A scenario file and `--set` overrides of its keys.
#[derive(Debug, Args)]
pub struct ScenarioInput {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Override a scenario key, e.g. --set traffic.arrival.rate=8 (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
}

/// Guards that stop runs which would take too long (exit code 3).
#[derive(Copy, Clone, Debug, Default, Args)]
pub struct GuardArgs {
    /// Stop a run that needs more than N simulation events (arrivals, steps,
    /// ...) and exit 3; in a sweep the limit applies to each run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,
    /// Stop after SECONDS of wall-clock time and exit 3; a sweep keeps the
    /// points finished by then in sweep.partial.csv.
    #[arg(long, value_name = "SECONDS", value_parser = parse_time_limit)]
    pub time_limit: Option<f64>,
    /// Run even when the run is projected to need more memory than the
    /// machine has (otherwise refused with exit 2).
    #[arg(long)]
    pub allow_large: bool,
}

impl GuardArgs {
    /// The engine limits, the deadline counted from `start`.
    pub fn limits(&self, start: std::time::Instant) -> Limits {
        Limits {
            max_events: self.max_events,
            // A limit too large for the clock is no limit.
            deadline: self
                .time_limit
                .and_then(|t| std::time::Duration::try_from_secs_f64(t).ok())
                .and_then(|d| start.checked_add(d)),
            interrupt: None,
        }
    }
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("expected a whole number of threads, got `{s}`")),
    }
}

/// The worker threads to use for `jobs` independent runs when `--threads`
/// asked for `requested` on a machine with `cores` hardware threads: more
/// threads than either only add start-up and contention (`--threads 10000`
/// once turned a 0.06 s sweep into 44 s). Returns the count and, when it
/// clamped, a note saying so.
pub fn clamp_threads(requested: usize, jobs: u64, cores: usize) -> (usize, Option<String>) {
    let jobs = usize::try_from(jobs.max(1)).unwrap_or(usize::MAX);
    let cores = cores.max(1);
    let cap = cores.min(jobs);
    if requested <= cap {
        return (requested, None);
    }
    let why = if jobs <= cores {
        format!("{jobs} run{} to do", if jobs == 1 { "" } else { "s" })
    } else {
        format!("{cores} hardware threads available")
    };
    (
        cap,
        Some(format!(
            "note: --threads {requested} clamped to {cap} ({why}); more would not help"
        )),
    )
}

/// [`clamp_threads`] for this machine, printing the note on stderr.
fn threads_for(requested: Option<usize>, jobs: u64) -> Option<usize> {
    let n = requested?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (n, note) = clamp_threads(n, jobs, cores);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Some(n)
}

fn parse_time_limit(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive number of seconds, got `{s}`")),
    }
}

/// Arguments of `kvsim sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The scenario (its sweep table is the grid).
    #[command(flatten)]
    pub input: ScenarioInput,
    /// Limits on the runs.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Output directory (default: `output/<scenario name>`), replaced as a
    /// whole; refused if it holds files kvsim did not write. With --shard it
    /// is shared: only the shard's file is written.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: one per core; at most the cores and the
    /// runs there are). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Run only shard I of N (0-based): points p with p % N == I. Writes
    /// sweep.shard-I-of-N.csv for `kvsim merge` (and no plots).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::sweep::Shard>,
    /// Format of the default charts written to `plots/`.
    #[arg(long, default_value = "png")]
    pub format: crate::report::plot::Format,
    /// Do not draw the default charts.
    #[arg(long)]
    pub no_plots: bool,
    /// Print every headline column of the table, however wide (by default
    /// it fits 80 characters).
    #[arg(long)]
    pub wide: bool,
}

/// Arguments of `kvsim merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard files: every shard of one `kvsim sweep --shard I/N` split.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Where to write the merged table (not one of the shards).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `kvsim check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario.
    #[command(flatten)]
    pub input: ScenarioInput,
    /// The baseline sweep.csv.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Relative tolerance for times, rates and fractions, in [0, 1] (default:
    /// the scenario's [check] rtol, else 0.01). Counts must match exactly.
    #[arg(long)]
    pub rtol: Option<f64>,
    /// What fails the check: `regression` (regressions and changes of metrics
    /// with no better direction; improvements are reported and pass) or
    /// `change` (every difference beyond tolerance, improvements included).
    #[arg(long, value_enum, default_value_t = crate::check::FailOn::Regression)]
    pub fail_on: crate::check::FailOn,
    /// Rewrite the baseline with this sweep's results instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Run even when a run is projected to need more memory than the
    /// machine has (otherwise refused with exit 2).
    #[arg(long)]
    pub allow_large: bool,
    /// Worker threads (default: one per core; at most the cores and the
    /// runs there are).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// Arguments of `kvsim kv`.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// A catalog model (see `kvsim catalog models`).
    #[arg(long, conflicts_with_all = ["layers", "kv_heads", "head_dim"])]
    pub model: Option<String>,
    /// Layers of an explicit shape.
    #[arg(long, requires_all = ["kv_heads", "head_dim"])]
    pub layers: Option<u32>,
    /// KV heads of an explicit shape.
    #[arg(long)]
    pub kv_heads: Option<u32>,
    /// Head dimension of an explicit shape.
    #[arg(long)]
    pub head_dim: Option<u32>,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 8192)]
    pub seq_len: u64,
    /// Concurrent sequences.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// KV element format: fp16, bf16, fp8, int8, int4.
    #[arg(long, default_value = "bf16", value_parser = parse_dtype)]
    pub kv_dtype: Dtype,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_dtype(s: &str) -> Result<Dtype, String> {
    s.parse()
}

/// What `kvsim catalog` lists.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum CatalogKind {
    /// Built-in models.
    Models,
    /// Built-in GPUs.
    Gpus,
    /// Serving-engine presets (`[engine] preset`).
    Engines,
}

/// Arguments of `kvsim catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Models, GPUs or engine presets (all if omitted).
    pub kind: Option<CatalogKind>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kvsim run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario.
    #[command(flatten)]
    pub input: ScenarioInput,
    /// Output directory (default: `output/<scenario name>`), replaced as a
    /// whole; refused if it holds files kvsim did not write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Limits on the run.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the summary's rows whole, however wide (by default they wrap
    /// to fit 80 characters).
    #[arg(long)]
    pub wide: bool,
}

/// Prints `text` and a newline to stdout. A closed pipe (`kvsim catalog | head`)
/// is not an error: the reader has what it wanted.
fn say(text: impl std::fmt::Display) -> Result<(), Error> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Kv(a) => kv(&a),
        Command::Catalog(a) => list_catalog(&a),
        Command::Run(a) => run(&a),
        Command::Sweep(a) => sweep(&a),
        Command::Merge(a) => merge(&a),
        Command::Check(a) => check(&a).map(|_| ()),
        Command::Plot(a) => plot(&a),
        Command::Plan(a) => plan(&a).map(|_| ()),
        Command::Validate(a) => validate(&a),
        Command::Calibrate(a) => calibrate(&a).map(|_| ()),
        Command::Report(a) => report::html::regenerate(&a.dir)
            .and_then(|p| say(format_args!("wrote {}", p.display()))),
    }
}

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

fn validate(a: &ValidateArgs) -> Result<(), Error> {
    let results = crate::validate::run_cases();
    report::write_atomic(
        &a.out,
        crate::validate::render_markdown(&results).as_bytes(),
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

fn plot(a: &PlotArgs) -> Result<(), Error> {
    let out = a.out.clone().unwrap_or_else(|| {
        a.results
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("plots")
    });
    let opts = crate::report::plot::PlotOptions {
        format: a.format,
        x: a.x.clone(),
        y: a.y.clone(),
        series: a.series.clone(),
    };
    let charts =
        crate::report::plot::render_charts(crate::report::plot::Table::read(&a.results)?, &opts)?;
    let dir = OutputDir::begin(&out, "plot", &[&a.results])?;
    let mut names = Vec::with_capacity(charts.len());
    for (name, bytes) in charts {
        names.push(dir.write(&name, &bytes)?.display().to_string());
    }
    dir.commit()?;
    say(format_args!("wrote {}", names.join(", ")))
}

/// The numbers `kvsim kv` reports.
#[derive(Debug, Serialize)]
struct KvReport {
    model: String,
    layers: u32,
    kv_heads: u32,
    head_dim: u32,
    mla: bool,
    kv_dtype: &'static str,
    seq_len: u64,
    batch: u64,
    bytes_per_token: u64,
    bytes_per_sequence: u64,
    total_bytes: u64,
    total_gib: f64,
    double_seq_len_bytes: u64,
    double_batch_bytes: u64,
    /// The model's own sliding window and what it saves (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    sliding_window: Option<KvWindow>,
}

/// A model's sliding window in `kvsim kv`'s report.
#[derive(Debug, Serialize)]
struct KvWindow {
    /// Tokens each windowed layer keeps.
    window: u32,
    /// Layers with the window.
    layers: u32,
    /// What the batch would hold if every layer kept every token, bytes.
    full_context_bytes: u64,
    /// `full_context_bytes - total_bytes`.
    saved_bytes: u64,
}

fn shape_from_args(a: &KvArgs) -> Result<Model, Error> {
    if let Some(name) = &a.model {
        return catalog::model(name).ok_or_else(|| {
            let known: Vec<_> = catalog::models()
                .into_iter()
                .map(|e| e.model.name)
                .collect();
            Error::Usage(format!(
                "--model: unknown model `{name}`; known: {}",
                known.join(", ")
            ))
        });
    }
    match (a.layers, a.kv_heads, a.head_dim) {
        (Some(layers), Some(kv_heads), Some(head_dim)) => {
            for (flag, v) in [
                ("--layers", layers),
                ("--kv-heads", kv_heads),
                ("--head-dim", head_dim),
            ] {
                if v == 0 {
                    return Err(Error::Usage(format!("{flag} must be at least 1")));
                }
            }
            Ok(Model {
                name: format!("{layers} layers x {kv_heads} KV heads x {head_dim}"),
                params: 0,
                active_params: 0,
                layers,
                // Not used by the KV arithmetic; saturating so no shape can panic.
                hidden: kv_heads.saturating_mul(head_dim),
                heads: kv_heads,
                kv_heads,
                head_dim,
                intermediate: 0,
                vocab: 0,
                max_model_len: u32::MAX,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
            })
        }
        _ => Err(Error::Usage(
            "give --model NAME, or all of --layers, --kv-heads and --head-dim".into(),
        )),
    }
}

/// Bytes `batch` sequences of `seq_len` tokens hold under `layout`: each
/// layer group keeps at most its window of tokens, as the simulator's caches
/// do (`None` on overflow).
fn held_bytes(layout: &crate::cache::KvLayout, seq_len: u64, batch: u64) -> Option<u64> {
    let mut per_seq: u64 = 0;
    for g in &layout.groups {
        let kept = match g.window {
            Some(w) => seq_len.min(u64::from(w)),
            None => seq_len,
        };
        per_seq = per_seq.checked_add(kept.checked_mul(g.bytes_per_token)?)?;
    }
    per_seq.checked_mul(batch)
}

fn kv(a: &KvArgs) -> Result<(), Error> {
    let model = shape_from_args(a)?;
    let bpt = model
        .checked_kv_bytes_per_token(a.kv_dtype)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} layers x 2 x {} KV heads x {} head_dim overflows 64-bit bytes per token",
                model.layers, model.kv_heads, model.head_dim
            ))
        })?;
    let overflow = || {
        Error::Usage(format!(
            "{} tokens x {} sequences overflows 64-bit bytes",
            a.seq_len, a.batch
        ))
    };
    // The same per-layer-group layout the simulator's caches use (one GPU's
    // view is the replica's: tp = 1), so a model's own sliding window keeps
    // its windowed layers at `window` tokens here as in `kvsim run`.
    let layout = crate::hardware::budget::kv_layout(&model, a.kv_dtype, 1, None);
    let per_seq = held_bytes(&layout, a.seq_len, 1).ok_or_else(overflow)?;
    let total = held_bytes(&layout, a.seq_len, a.batch).ok_or_else(overflow)?;
    let full = kv_bytes(bpt, a.seq_len, a.batch).ok_or_else(overflow)?;
    let double_seq = a
        .seq_len
        .checked_mul(2)
        .and_then(|l| held_bytes(&layout, l, a.batch))
        .ok_or_else(overflow)?;
    let double_batch = total.checked_mul(2).ok_or_else(overflow)?;
    let window = model.sliding_window.map(|w| KvWindow {
        window: w.window,
        layers: w.layers.min(model.layers),
        full_context_bytes: full,
        saved_bytes: full - total,
    });
    let r = KvReport {
        model: model.name.clone(),
        layers: model.layers,
        kv_heads: model.kv_heads,
        head_dim: model.head_dim,
        mla: model.mla.is_some(),
        kv_dtype: a.kv_dtype.name(),
        seq_len: a.seq_len,
        batch: a.batch,
        bytes_per_token: bpt,
        bytes_per_sequence: per_seq,
        total_bytes: total,
        total_gib: gib(total),
        double_seq_len_bytes: double_seq,
        double_batch_bytes: double_batch,
        sliding_window: window,
    };
    if a.json {
        say(serde_json::to_string_pretty(&r).expect("a plain struct serializes"))?;
        return Ok(());
    }
    let shape = match model.mla {
        Some(m) => format!(
            "{} layers x MLA latent ({} + {} rope)",
            model.layers, m.kv_lora_rank, m.qk_rope_dim
        ),
        None => format!(
            "{} layers x 2 (K, V) x {} KV heads x {} head_dim",
            model.layers, model.kv_heads, model.head_dim
        ),
    };
    let ratio = |x: u64| {
        if total == 0 {
            String::new()
        } else {
            format!("{:.2}x", x as f64 / total as f64)
        }
    };
    let mut rows = vec![
        ("model".to_string(), model.name.clone()),
        ("shape".to_string(), format!("{shape}, {}", a.kv_dtype)),
        (
            "bytes per token".to_string(),
            format!("{} ({:.1} KiB)", group(bpt), bpt as f64 / 1024.0),
        ),
    ];
    if let Some(w) = &r.sliding_window {
        rows.push((
            "sliding window".to_string(),
            format!(
                "{} tokens on {}/{} layers: those layers keep at most {} tokens",
                group(u64::from(w.window)),
                w.layers,
                model.layers,
                group(u64::from(w.window))
            ),
        ));
    }
    rows.extend([
        (
            format!("1 sequence of {} tokens", group(a.seq_len)),
            format!("{} bytes ({:.3} GiB)", group(per_seq), gib(per_seq)),
        ),
        (
            format!("x batch {}", a.batch),
            format!("{} bytes ({:.3} GiB)", group(total), gib(total)),
        ),
    ]);
    if let Some(w) = &r.sliding_window {
        rows.push((
            "the window saves".to_string(),
            format!(
                "{} bytes ({:.3} GiB) of {} bytes ({:.3} GiB) without it",
                group(w.saved_bytes),
                gib(w.saved_bytes),
                group(w.full_context_bytes),
                gib(w.full_context_bytes)
            ),
        ));
    }
    let (seq_note, batch_note) = if r.sliding_window.is_some() {
        (ratio(double_seq), format!("{} again", ratio(double_batch)))
    } else {
        ("2x".to_string(), "2x again".to_string())
    };
    rows.extend([
        (
            "double the sequence length".to_string(),
            format!(
                "{} bytes ({:.3} GiB): {seq_note}",
                group(double_seq),
                gib(double_seq)
            ),
        ),
        (
            "double the batch".to_string(),
            format!(
                "{} bytes ({:.3} GiB): {batch_note}",
                group(double_batch),
                gib(double_batch)
            ),
        ),
    ]);
    say(report::print_kv_report(&rows))?;
    Ok(())
}

/// `1234567` -> `1,234,567`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn list_catalog(a: &CatalogArgs) -> Result<(), Error> {
    use comfy_table::Table;
    use comfy_table::presets::UTF8_FULL_CONDENSED;
    let show = |k: CatalogKind| a.kind.is_none() || a.kind == Some(k);
    let show_models = show(CatalogKind::Models);
    let show_gpus = show(CatalogKind::Gpus);
    let show_engines = show(CatalogKind::Engines);
    // Engine defaults that depend on the GPU are shown for this one.
    let reference = catalog::gpu(ENGINE_REFERENCE_GPU).expect("catalog gpu");
    let engine_rows = || {
        catalog::engines().into_iter().map(|e| {
            let d = catalog::engine_defaults(e.name, &reference, 1);
            (e, d)
        })
    };
    if a.json {
        let mut doc = serde_json::Map::new();
        if show_models {
            let models: Vec<_> = catalog::models().into_iter().map(|e| e.model).collect();
            doc.insert(
                "models".into(),
                serde_json::to_value(models).expect("serializable"),
            );
        }
        if show_gpus {
            let gpus: Vec<_> = catalog::gpus().into_iter().map(|e| e.gpu).collect();
            doc.insert(
                "gpus".into(),
                serde_json::to_value(gpus).expect("serializable"),
            );
        }
        if show_engines {
            let engines: Vec<_> = engine_rows()
                .map(|(e, d)| {
                    serde_json::json!({
                        "name": e.name.name(),
                        "version": e.version,
                        "source": e.source,
                        "on_gpu": ENGINE_REFERENCE_GPU,
                        "memory_rule": d.memory.name(),
                        "memory_fraction": d.memory.fraction(),
                        "block_size": d.block_size,
                        "max_batched_tokens": d.max_batched_tokens,
                        "max_num_seqs": d.max_num_seqs,
                        "chunked_prefill": d.chunked_prefill,
                        "prefix_caching": d.prefix_caching,
                        "admission": d.admission.map(|a| a.name()),
                    })
                })
                .collect();
            doc.insert("engines".into(), serde_json::Value::Array(engines));
        }
        say(serde_json::to_string_pretty(&doc).expect("serializable"))?;
        return Ok(());
    }
    if show_models {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "model",
            "params",
            "active",
            "layers",
            "heads/kv",
            "head_dim",
            "KV B/token (bf16)",
            "context",
            "notes",
        ]);
        for e in catalog::models() {
            let m = &e.model;
            let mut notes = Vec::new();
            if let Some(w) = m.sliding_window {
                notes.push(format!(
                    "window {} on {}/{} layers",
                    w.window, w.layers, m.layers
                ));
            }
            if let Some(mla) = m.mla {
                notes.push(format!("MLA {}+{}", mla.kv_lora_rank, mla.qk_rope_dim));
            }
            if let Some(moe) = m.moe {
                notes.push(format!(
                    "MoE {}/{} experts",
                    moe.experts_per_token, moe.experts
                ));
            }
            t.add_row(vec![
                m.name.clone(),
                format!("{:.1}B", m.params as f64 / 1e9),
                format!("{:.1}B", m.active_params as f64 / 1e9),
                m.layers.to_string(),
                format!("{}/{}", m.heads, m.kv_heads),
                m.head_dim.to_string(),
                group(m.kv_bytes_per_token(Dtype::Bf16)),
                group(u64::from(m.max_model_len)),
                notes.join("; "),
            ]);
        }
        say(&t)?;
    }
    if show_gpus {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "gpu",
            "memory",
            "HBM TB/s",
            "bf16 TFLOP/s",
            "fp8 TFLOP/s",
            "link GB/s",
            "mbu",
            "mfu",
            "per layer",
            "$/h",
        ]);
        for e in catalog::gpus() {
            let g = &e.gpu;
            t.add_row(vec![
                g.name.clone(),
                format!("{:.1} GiB", gib(g.vram_bytes)),
                format!("{:.2}", g.hbm_bandwidth / 1e12),
                format!("{:.0}", g.peak_flops / 1e12),
                g.peak_flops_fp8
                    .map(|p| format!("{:.0}", p / 1e12))
                    .unwrap_or_else(|| "-".into()),
                format!("{:.0}", g.interconnect_bandwidth / 1e9),
                format!("{:.2}", g.efficiency.mbu),
                format!("{:.2}", g.efficiency.mfu),
                format!("{:.0} us", g.efficiency.layer_overhead_s * 1e6),
                g.price_per_hour
                    .map(|p| format!("{p:.2}"))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        say(&t)?;
    }
    if show_engines {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "engine",
            "version",
            "KV memory rule",
            "block",
            format!("tokens/step on {ENGINE_REFERENCE_GPU}").as_str(),
            format!("max seqs on {ENGINE_REFERENCE_GPU}").as_str(),
            "chunked prefill",
            "prefix caching",
            "admission",
        ]);
        for (e, d) in engine_rows() {
            t.add_row(vec![
                e.name.name().to_string(),
                e.version.to_string(),
                format!("{} {}", d.memory.name(), d.memory.fraction()),
                d.block_size.to_string(),
                d.max_batched_tokens.to_string(),
                d.max_num_seqs.to_string(),
                yes_no(d.chunked_prefill),
                yes_no(d.prefix_caching),
                d.admission
                    .map(|a| a.name().to_string())
                    .unwrap_or_else(|| "by policy".into()),
            ]);
        }
        say(&t)?;
    }
    Ok(())
}

/// The GPU `kvsim catalog engines` shows GPU-dependent engine defaults for.
const ENGINE_REFERENCE_GPU: &str = "h100-sxm";

fn yes_no(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

/// The directory a run writes to.
fn out_dir(out: &Option<PathBuf>, name: &str) -> PathBuf {
    out.clone()
        .unwrap_or_else(|| Path::new("output").join(name))
}

/// Requests one run may issue: the engine indexes them with 32 bits, and an
/// estimate (of a random process) needs slack below that.
const MAX_RUN_REQUESTS: f64 = (1u64 << 31) as f64;

/// Refuses (exit 2) a run projected to need more memory than the machine
/// has, unless `--allow-large`; warns above half of it. `runs` runs on
/// `threads` threads hold `min(runs, threads)` runs' records at once; a
/// `--max-events` or `--time-limit` bounds what one run can accumulate.
fn memory_check(
    scenario: &Scenario,
    work: &crate::engine::WorkEstimate,
    runs: u64,
    threads: usize,
    guard: &GuardArgs,
) -> Result<(), Error> {
    let total_mem = crate::engine::physical_memory_bytes();
    let Some(total) = total_mem else {
        return Ok(());
    };
    let m = crate::engine::estimate_memory(scenario, work);
    let mut share: f64 = 1.0;
    if let Some(n) = guard.max_events {
        // Every request arrives and every step ends through an event.
        share = share.min(n as f64 / (work.requests + work.steps).max(1.0));
    }
    if let Some(t) = guard.time_limit {
        share = share.min(t / work.wall_s.max(1e-9));
    }
    let at_once = runs.max(1).min(threads.max(1) as u64) as f64;
    let need = crate::engine::BASE_BYTES + m.bytes * share * at_once;
    let runs_note = if at_once > 1.0 {
        format!(" ({at_once:.0} runs at once)")
    } else {
        String::new()
    };
    let what = format!(
        "about {:.1} GiB of memory{runs_note} (~{:.3e} requests' records and ~{:.3e} timeline \
         rows kept until the run ends)",
        need / GIB_F,
        m.requests,
        m.rows
    );
    use crate::engine::MemoryVerdict;
    let verdict = crate::engine::memory_verdict(need, total_mem);
    if verdict == MemoryVerdict::Refuse && !guard.allow_large {
        let key = stop_key(scenario);
        return Err(Error::Scenario {
            path: scenario.path.clone(),
            source: crate::SpecError::new(
                key,
                format!(
                    "the run is projected to need {what}, more than this machine's {:.1} GiB \
                     (MemTotal); shorten duration_s or requests, lower the rate, set \
                     output.timeline_interval_s, bound it with --max-events N, or pass --allow-large \
                     to run anyway",
                    total as f64 / GIB_F
                ),
            ),
        });
    }
    if verdict != MemoryVerdict::Fine {
        eprintln!(
            "warning: {}: the run is projected to need {what}, more than half of this machine's \
             {:.1} GiB",
            scenario.path.display(),
            total as f64 / GIB_F
        );
    }
    Ok(())
}

/// The key that sets how long `scenario` runs, for messages about its size.
fn stop_key(scenario: &Scenario) -> &'static str {
    match scenario.stop {
        crate::scenario::Stop::Duration(_) => "duration_s",
        _ => "requests",
    }
}

/// Bytes per GiB, as a float.
const GIB_F: f64 = (1u64 << 30) as f64;

/// Prints a scenario's load-time warnings on stderr.
fn print_warnings(scenario: &Scenario) {
    for w in scenario.warnings() {
        eprintln!("warning: {}: {w}", scenario.path.display());
    }
}

/// Refuses a scenario too large to run at all; warns on stderr when it would
/// take long (`runs` runs on `threads` threads).
fn size_check(
    scenario: &Scenario,
    runs: u64,
    threads: usize,
    guard: &GuardArgs,
) -> Result<(), Error> {
    let e = estimate_work(scenario);
    if e.requests > MAX_RUN_REQUESTS {
        let key = stop_key(scenario);
        return Err(Error::Scenario {
            path: scenario.path.clone(),
            source: crate::SpecError::new(
                key,
                format!(
                    "one run would issue ~{:.3e} requests, more than the {MAX_RUN_REQUESTS:.0} a run \
                     can hold; shorten duration_s, lower the rate or split the run",
                    e.requests
                ),
            ),
        });
    }
    print_warnings(scenario);
    memory_check(scenario, &e, runs, threads, guard)?;
    let wall = e.wall_s * runs as f64 / threads.max(1) as f64;
    if wall > crate::engine::WARN_WALL_S {
        eprintln!(
            "warning: {}: a large simulation: {e} per run; {} run{} in about {} of wall time. \
             Bound it with --max-events N or --time-limit SECONDS (exit 3 when hit).",
            scenario.path.display(),
            runs,
            if runs == 1 { "" } else { "s" },
            crate::engine::human_secs(wall),
        );
    }
    Ok(())
}

fn run(a: &RunArgs) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let scenario = Scenario::load(&a.input.scenario, &a.input.overrides)?;
    let dir = OutputDir::begin(
        &out_dir(&a.out, &scenario.name),
        "run",
        &[&a.input.scenario],
    )?;
    size_check(&scenario, 1, 1, &a.guard)?;
    let seed = a.seed.unwrap_or(scenario.seed);
    let cost = RooflineCost::new(
        &scenario.model,
        &scenario.deployment,
        &scenario.deployment.efficiency,
    );
    let limits = Limits {
        interrupt: Some(&INTERRUPTED),
        ..a.guard.limits(started)
    };
    let unchanged = format!(
        "nothing was written and {} is as it was",
        dir.target().display()
    );
    let out =
        simulate_limited(&scenario, seed, cost, &limits).map_err(|stopped| match stopped {
            // The metrics of part of a run would count only the requests that
            // happened to finish early: a stopped run keeps nothing.
            Stopped::Interrupted => Error::Interrupted {
                kept: format!("the run stopped before it finished; {unchanged}"),
            },
            // Past the horizon is bad input (exit 2); the limits exit 3.
            stopped => stopped.into_error(&scenario.path, &unchanged),
        })?;
    let wall = started.elapsed();
    let mut written = Vec::new();
    for (name, bytes) in report::run_files(&scenario.path, &scenario, seed, &out)? {
        written.push(dir.write(name, &bytes)?);
    }
    written.push(dir.write(
        "report.html",
        &report::html::run_html(&scenario, seed, &out)?,
    )?);
    dir.commit()?;
    if a.json {
        say(serde_json::to_string_pretty(&out.summary).expect("serializable"))?;
    } else {
        let per_replica = out.cluster.as_ref().map_or(&[][..], |c| &c.replicas[..]);
        let width = (!a.wide).then_some(report::TERMINAL_WIDTH);
        say(report::summary_table(
            &scenario,
            &out.summary,
            per_replica,
            width,
        ))?;
        let names: Vec<_> = written.iter().map(|p| p.display().to_string()).collect();
        say(format_args!(
            "simulated {} requests in {:.2} s of wall time; wrote {}",
            out.summary.requests,
            wall.as_secs_f64(),
            names.join(", ")
        ))?;
    }
    Ok(())
}

/// The scenario table of `path` with `--set` overrides applied, and its name.
fn scenario_table(path: &Path, overrides: &[String]) -> Result<(toml::Table, String), Error> {
    let mut table = crate::scenario::read_table(path)?;
    crate::scenario::apply_cli_overrides(&mut table, overrides)?;
    let name = match table.get("name") {
        Some(toml::Value::String(n)) => n.clone(),
        _ => {
            return Err(Error::Scenario {
                path: path.to_path_buf(),
                source: crate::SpecError::new("name", "missing: every scenario needs a `name`"),
            });
        }
    };
    Ok((table, name))
}

/// What [`run_sweep_cli`] produced: the table of the finished points, and
/// why the others did not finish, if some did not.
struct SweepOutcome {
    table: crate::sweep::SweepTable,
    stop: Option<SweepStop>,
}

/// Why a sweep did not finish every point.
enum SweepStop {
    /// A point could not run (the first in grid order).
    Failed { point: String, source: Error },
    /// Ctrl-C.
    Interrupted,
}

impl SweepStop {
    /// The error to report, `kept` saying what was kept of the finished points.
    fn into_error(self, kept: String) -> Error {
        match self {
            SweepStop::Failed { point, source } => Error::SweepPoint {
                point,
                source: Box::new(source),
                kept,
            },
            SweepStop::Interrupted => Error::Interrupted { kept },
        }
    }
}

/// Runs a sweep with a progress bar (when stderr is a terminal), stopping at
/// Ctrl-C; the caller decides what to keep of a sweep that did not finish.
fn run_sweep_cli(
    path: &Path,
    table: &toml::Table,
    threads: Option<usize>,
    shard: Option<crate::sweep::Shard>,
    limits: Limits,
    guard: &GuardArgs,
) -> Result<SweepOutcome, Error> {
    use std::io::IsTerminal;

    let grid = crate::sweep::grid_of(table, path)?;
    let owned = (0..grid.len())
        .filter(|&p| shard.is_none_or(|s| s.owns(p)))
        .count() as u64;
    // The size of the first point stands for all; an invalid point is
    // reported with the others when the sweep runs.
    let first = crate::sweep::point_scenario(table, path, &grid.point(0));
    let replicates = first.as_ref().map_or(1, |s| u64::from(s.replicates));
    let threads = threads_for(threads, owned * replicates);
    if let Ok(first) = first {
        let threads = threads.unwrap_or_else(rayon::current_num_threads);
        size_check(&first, owned * replicates, threads, guard)?;
    }
    let bar = if std::io::stderr().is_terminal() {
        let replicates = table
            .get("replicates")
            .and_then(toml::Value::as_integer)
            .unwrap_or(1)
            .max(1) as u64;
        let bar = indicatif::ProgressBar::new(owned * replicates);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} runs, eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let opts = crate::sweep::SweepOptions {
        threads,
        shard,
        on_job_done: Some(&tick),
        interrupted: Some(&INTERRUPTED),
        limits,
    };
    let result = crate::sweep::run_sweep(table, path, &opts)?;
    bar.finish_and_clear();
    let keys: Vec<String> = grid.axes.iter().map(|a| a.key.clone()).collect();
    let t = crate::sweep::SweepTable::from_points(&keys, &result.points);
    let stop = match result.failures.into_iter().next() {
        Some(crate::sweep::PointFailure {
            index: p,
            assignments,
            error: source,
        }) => {
            let axes: Vec<String> = assignments
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::sweep::cell_of(v)))
                .collect();
            Some(SweepStop::Failed {
                point: format!("point {p} ({})", axes.join(", ")),
                source,
            })
        }
        None if result.interrupted => Some(SweepStop::Interrupted),
        None => None,
    };
    Ok(SweepOutcome { table: t, stop })
}

/// The headline metrics of a sweep's terminal table, most telling first:
/// columns are dropped from the end to fit [`report::TERMINAL_WIDTH`].
const SWEEP_TABLE_METRICS: [&str; 8] = [
    "oom_rate",
    "batch_peak",
    "batch_ceiling",
    "tpot_p99",
    "ttft_p99",
    "throughput_tok_s",
    "tpot_p50",
    "preemptions",
];

/// A compact view of a sweep table: axes and headline metrics, in at most
/// [`report::TERMINAL_WIDTH`] columns unless `wide` (metrics that do not fit
/// are left out, and a line says so). Axis columns are headed by their last
/// dotted segment (`users` for `traffic.arrival.users`) where that is unique.
fn sweep_summary(t: &crate::sweep::SweepTable, wide: bool) -> String {
    let axes = t.axis_columns().to_vec();
    let short: Vec<String> = axes
        .iter()
        .map(|a| a.rsplit('.').next().unwrap_or(a).to_string())
        .collect();
    let unique = (0..short.len()).all(|i| !short[..i].contains(&short[i]));
    let headers = if unique { short } else { axes.clone() };
    let build = |metrics: &[&str]| {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(
            headers
                .iter()
                .map(String::as_str)
                .chain(metrics.iter().copied()),
        );
        for r in 0..t.rows.len() {
            let cells = axes
                .iter()
                .map(|c| t.get(r, c).unwrap_or("").to_string())
                .chain(metrics.iter().map(|&c| {
                    let v = t.get(r, c).unwrap_or("");
                    match (c, v.parse::<f64>()) {
                        ("oom_rate", Ok(x)) => format!("{:.1} %", x * 100.0),
                        ("tpot_p50" | "tpot_p99", Ok(x)) => format!("{:.1} ms", x * 1e3),
                        ("ttft_p99", Ok(x)) => format!("{x:.3} s"),
                        ("throughput_tok_s", Ok(x)) => format!("{x:.0}"),
                        ("batch_ceiling" | "batch_peak" | "preemptions", Ok(x))
                            if x.fract() != 0.0 =>
                        {
                            format!("{x:.1}")
                        }
                        _ => v.to_string(),
                    }
                }));
            table.add_row(cells);
        }
        table.to_string()
    };
    let width = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut shown = SWEEP_TABLE_METRICS.len();
    let mut text = build(&SWEEP_TABLE_METRICS);
    while !wide && shown > 1 && width(&text) > usize::from(report::TERMINAL_WIDTH) {
        shown -= 1;
        text = build(&SWEEP_TABLE_METRICS[..shown]);
    }
    if shown < SWEEP_TABLE_METRICS.len() {
        text.push_str(&format!(
            "\n{} more with --wide: {}",
            SWEEP_TABLE_METRICS.len() - shown,
            SWEEP_TABLE_METRICS[shown..].join(", ")
        ));
    }
    text
}

fn sweep(a: &SweepArgs) -> Result<(), Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    let target = out_dir(&a.out, &name);
    match a.shard {
        Some(shard) => sweep_shard(a, &table, &target, shard),
        None => sweep_whole(a, &table, &target),
    }
}

/// A whole sweep: `sweep.csv` and `plots/` (or `sweep.partial.csv`) replace
/// the output directory together.
fn sweep_whole(a: &SweepArgs, table: &toml::Table, target: &Path) -> Result<(), Error> {
    let dir = OutputDir::begin(target, "sweep", &[&a.input.scenario])?;
    let started = std::time::Instant::now();
    let outcome = run_sweep_cli(
        &a.input.scenario,
        table,
        a.threads,
        None,
        a.guard.limits(started),
        &a.guard,
    )?;
    let t = outcome.table;
    if let Some(stop) = outcome.stop {
        let kept = if t.rows.is_empty() {
            format!(
                "no point had finished; nothing was written and {} is as it was",
                dir.target().display()
            )
        } else {
            let partial = dir.write("sweep.partial.csv", &t.to_csv())?;
            dir.commit()?;
            format!(
                "the {} finished points are in {}",
                t.rows.len(),
                partial.display()
            )
        };
        return Err(stop.into_error(kept));
    }
    let csv = t.to_csv();
    let file = dir.write("sweep.csv", &csv)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut charts = None;
    if !a.no_plots {
        let opts = crate::report::plot::PlotOptions {
            format: a.format,
            ..Default::default()
        };
        let table = crate::report::plot::Table::parse(&file, &csv)?;
        let drawn = crate::report::plot::render_charts(table, &opts)?;
        let plots = dir.subdir("plots")?;
        for (name, bytes) in &drawn {
            dir.write(&format!("plots/{name}"), bytes)?;
        }
        // Its own marker lets `kvsim plot` redraw plots/ alone.
        dir.mark_subdir("plots")?;
        charts = Some((drawn.len(), plots));
    }
    dir.write(
        "report.html",
        &report::html::sweep_html(&a.input.scenario, table, &csv)?,
    )?;
    dir.commit()?;
    say(sweep_summary(&t, a.wide))?;
    say(format_args!(
        "{} points in {elapsed:.2} s of wall time; wrote {}",
        t.rows.len(),
        file.display()
    ))?;
    if let Some((n, plots)) = charts {
        say(format_args!("drew {n} charts in {}", plots.display()))?;
    }
    Ok(())
}

/// One shard of a sweep: the shards share their output directory, so each
/// writes its one file (atomically, under a lock of its own) and replaces no
/// directory. It draws no charts: a shard is a part of a table.
fn sweep_shard(
    a: &SweepArgs,
    table: &toml::Table,
    target: &Path,
    s: crate::sweep::Shard,
) -> Result<(), Error> {
    output::create_dir(target)?;
    let stem = format!("sweep.shard-{}-of-{}", s.index, s.count);
    let file = target.join(format!("{stem}.csv"));
    let partial = target.join(format!("{stem}.partial.csv"));
    let _lock = output::Lock::acquire(&file, "sweep")?;
    let started = std::time::Instant::now();
    let outcome = run_sweep_cli(
        &a.input.scenario,
        table,
        a.threads,
        Some(s),
        a.guard.limits(started),
        &a.guard,
    )?;
    let t = outcome.table;
    if let Some(stop) = outcome.stop {
        let kept = if t.rows.is_empty() {
            format!(
                "no point of the shard had finished; nothing was written to {}",
                target.display()
            )
        } else {
            report::write_atomic(&partial, &t.to_csv())?;
            // An earlier run's complete shard beside this partial one would
            // be merged as if it were current.
            remove_stale(&file);
            format!(
                "the {} finished points are in {}",
                t.rows.len(),
                partial.display()
            )
        };
        return Err(stop.into_error(kept));
    }
    // The fingerprint lets `kvsim merge` refuse parts of other runs.
    let points = crate::sweep::grid_of(table, &a.input.scenario)?.len();
    let fp = crate::sweep::Fingerprint::new(table, &a.input.overrides, s, points);
    let mut bytes = fp.line().into_bytes();
    bytes.extend(t.to_csv());
    report::write_atomic(&file, &bytes)?;
    remove_stale(&partial);
    say(sweep_summary(&t, a.wide))?;
    say(format_args!(
        "{} points in {:.2} s of wall time; wrote {}",
        t.rows.len(),
        started.elapsed().as_secs_f64(),
        file.display()
    ))
}

/// Deletes `path`, an earlier run's result that the new one supersedes.
fn remove_stale(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => eprintln!(
            "warning: cannot delete {}, an earlier run's result ({e}); delete it by hand",
            path.display()
        ),
        _ => {}
    }
}

/// `kvsim plan`: prints the ranked candidates, writes `plan.csv` and the
/// chart; returns whether any candidate meets the objectives (exit 1 if not).
/// Interrupted (Ctrl-C), it keeps the candidates that finished in
/// `plan.partial.csv`.
pub fn plan(a: &PlanArgs) -> Result<bool, Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    let plan = crate::plan::Plan::from_table(&table, &a.input.scenario, a.slo.as_deref())?;
    let dir = OutputDir::begin(&out_dir(&a.out, &name), "plan", &[&a.input.scenario])?;
    let started = std::time::Instant::now();
    let limits = Limits {
        interrupt: Some(&INTERRUPTED),
        ..Limits::default()
    };
    // The only limit is Ctrl-C; a run past the simulated horizon has wrong
    // inputs, which fails its probe.
    let evaluate = |s: &Scenario, seed: u64| {
        let d = &s.deployment;
        match simulate_limited(
            s,
            seed,
            RooflineCost::new(&s.model, d, &d.efficiency),
            &limits,
        ) {
            Ok(out) => Ok(Some(out.summary)),
            Err(Stopped::Interrupted) => Ok(None),
            Err(stopped) => Err(stopped.into_error(&s.path, "the probe was not finished")),
        }
    };
    let work = || crate::plan::run_plan_stoppable(&table, &a.input.scenario, &plan, &evaluate);
    // Each candidate's load-time warnings, once each (a plan's candidates
    // usually share their traffic); a candidate that does not build is
    // reported in the table.
    let mut warned = std::collections::BTreeSet::new();
    for i in 0..plan.candidates.len() {
        let point = plan.candidates.point(i);
        if let Ok(s) = crate::sweep::point_scenario(&table, &a.input.scenario, &point) {
            for w in s.warnings() {
                if warned.insert(w.clone()) {
                    eprintln!("warning: {}: {w}", a.input.scenario.display());
                }
            }
        }
    }
    let threads = threads_for(a.threads, plan.candidates.len() as u64);
    let run = match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Usage(format!("--threads {n}: {e}")))?
            .install(work),
        None => work(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let results = run.finished;
    let csv_of = |name: &str| {
        crate::plan::plan_csv(&results, &plan).map_err(|e| Error::Io {
            path: dir.final_path(name),
            source: std::io::Error::other(e),
        })
    };
    if run.interrupted {
        let kept = if results.is_empty() {
            format!(
                "no candidate had finished; nothing was written and {} is as it was",
                dir.target().display()
            )
        } else {
            let csv = csv_of("plan.partial.csv")?;
            let partial = dir.write("plan.partial.csv", &csv)?;
            dir.commit()?;
            format!(
                "the {} of {} candidates that finished are in {}",
                results.len(),
                plan.candidates.len(),
                partial.display()
            )
        };
        return Err(Error::Interrupted { kept });
    }
    let csv = csv_of("plan.csv")?;
    let mut written = vec![dir.write("plan.csv", &csv)?.display().to_string()];
    if let Some(fig) = crate::plan::plan_figure(&results, &plan) {
        let name = format!("plan.{}", a.format.extension());
        let bytes = crate::report::plot::render(&fig, a.format).map_err(|source| Error::Io {
            path: dir.final_path(&name),
            source,
        })?;
        written.push(dir.write(&name, &bytes)?.display().to_string());
    }
    let html = report::html::plan_html(&a.input.scenario, &table, &plan, &csv)?;
    written.push(dir.write("report.html", &html)?.display().to_string());
    dir.commit()?;
    let o = &plan.objectives;
    let slo: Vec<String> = [
        o.ttft_p99.map(|v| format!("ttft_p99 <= {v} s")),
        o.tpot_p99.map(|v| format!("tpot_p99 <= {} ms", v * 1e3)),
        o.e2e_p99.map(|v| format!("e2e_p99 <= {v} s")),
        Some(format!("oom_rate <= {}", o.oom_rate)),
    ]
    .into_iter()
    .flatten()
    .collect();
    say(format_args!(
        "plan for {} req/s ({}), {} replicates per probe:",
        plan.target_rate,
        slo.join(", "),
        plan.replicates
    ))?;
    say(crate::plan::plan_table(&results, &plan))?;
    let probes: u32 = results
        .iter()
        .filter_map(|r| r.search.as_ref().map(|s| s.probes))
        .sum();
    say(format_args!(
        "{} candidates, {probes} probes in {elapsed:.2} s of wall time; wrote {}",
        results.len(),
        written.join(", ")
    ))?;
    let feasible = results.iter().any(|r| r.sizing.is_some());
    if !feasible {
        eprintln!("no candidate meets the objectives; the nearest miss is ranked first");
    }
    Ok(feasible)
}

/// Whether `a` and `b` name the same file: the same path once symlinks and
/// `..` are resolved, or (on Unix) the same inode, for hard links. A path
/// that does not exist yet is resolved through its directory.
fn same_file(a: &Path, b: &Path) -> bool {
    fn resolve(p: &Path) -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new(".")).canonicalize().ok()?;
        Some(dir.join(p.file_name()?))
    }
    if resolve(a).is_some_and(|x| resolve(b).is_some_and(|y| x == y)) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

fn merge(a: &MergeArgs) -> Result<(), Error> {
    // Before reading anything: writing over a shard would destroy an input.
    for p in &a.parts {
        if !p.exists() {
            return Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such shard file"),
            ));
        }
        if same_file(p, &a.out) {
            return Err(Error::Usage(format!(
                "--out {} is the input shard {}: merging would overwrite it; choose another --out",
                a.out.display(),
                p.display()
            )));
        }
    }
    for (i, p) in a.parts.iter().enumerate() {
        if let Some(q) = a.parts[..i].iter().find(|q| same_file(q, p)) {
            return Err(Error::Usage(format!(
                "{} and {} are the same file: give each shard once",
                q.display(),
                p.display()
            )));
        }
    }
    let parts = a
        .parts
        .iter()
        .map(|p| crate::sweep::read_shard(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = crate::sweep::merge(&parts)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        output::create_dir(dir)?;
    }
    // A temporary file in the same directory, then a rename: a reader never
    // sees half a table, and a failed merge leaves the old file intact.
    report::write_atomic(&a.out, &merged.to_csv())?;
    say(format_args!(
        "merged {} points from {} shards into {}",
        merged.rows.len(),
        parts.len(),
        a.out.display()
    ))
}

/// Runs `kvsim check`; returns whether the check passes under `--fail-on`.
/// A failing check exits 1 (by the caller), so this returns an error only for
/// bad input.
pub fn check(a: &CheckArgs) -> Result<bool, Error> {
    let (table, name) = scenario_table(&a.input.scenario, &a.input.overrides)?;
    // Loading the scenario validates its [check] table.
    let spec = crate::scenario::Scenario::from_table(table.clone(), &a.input.scenario)?
        .spec
        .check;
    let rtol = match a.rtol {
        Some(r) => crate::check::rtol_in_range(r)
            .map_err(|reason| Error::Usage(format!("--rtol {r}: {reason}")))?,
        None => spec.rtol.unwrap_or(crate::check::DEFAULT_RTOL),
    };
    // A baseline that cannot be compared is refused before the sweep runs.
    let baseline = if a.update {
        None
    } else {
        Some(crate::check::read_baseline(&a.baseline)?)
    };
    let outcome = run_sweep_cli(
        &a.input.scenario,
        &table,
        a.threads,
        None,
        Limits::default(),
        &GuardArgs {
            allow_large: a.allow_large,
            ..GuardArgs::default()
        },
    )?;
    if let Some(stop) = outcome.stop {
        // A comparison (or a new baseline) needs every point.
        let kept = if a.update {
            format!(
                "nothing was written and {} is as it was",
                a.baseline.display()
            )
        } else {
            "nothing was compared".to_string()
        };
        return Err(stop.into_error(kept));
    }
    let fresh = outcome.table;
    crate::check::check_fresh(&fresh)?;
    let Some(baseline) = baseline else {
        if let Some(dir) = a.baseline.parent().filter(|d| !d.as_os_str().is_empty()) {
            output::create_dir(dir)?;
        }
        report::write_atomic(&a.baseline, &fresh.to_csv())?;
        say(format_args!(
            "wrote {} point{} to {}",
            fresh.rows.len(),
            if fresh.rows.len() == 1 { "" } else { "s" },
            a.baseline.display()
        ))?;
        return Ok(true);
    };
    let tol = crate::check::Tolerances {
        rtol,
        by_metric: spec.rtol_by_metric,
    };
    let cmp = crate::check::compare(&baseline, &fresh, &tol);
    let text = crate::check::report(&cmp, a.fail_on);
    if !text.is_empty() {
        say(text.trim_end())?;
    }
    use crate::check::Verdict;
    let count = |n: usize, what: &str| match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "mismatch") => format!("{n} mismatches"),
        _ => format!("{n} {what}s"),
    };
    let fails = cmp.fails(a.fail_on);
    let fail_on = match a.fail_on {
        crate::check::FailOn::Regression => "regression",
        crate::check::FailOn::Change => "change",
    };
    if cmp.mismatches.is_empty() && cmp.moved.is_empty() {
        say(format_args!(
            "{}: {} within tolerance of {} (counts exact, other metrics within {:.2} %)",
            name,
            count(cmp.points_compared, "point"),
            a.baseline.display(),
            rtol * 100.0
        ))?;
    } else {
        say(format_args!(
            "{}: {}, {}, {}, {}, {} against {} over {} compared: {} (--fail-on {fail_on})",
            name,
            count(cmp.mismatches.len(), "mismatch"),
            count(cmp.with_verdict(Verdict::Regression).len(), "regression"),
            count(cmp.with_verdict(Verdict::Change).len(), "change"),
            count(cmp.with_verdict(Verdict::Shift).len(), "shift"),
            count(cmp.with_verdict(Verdict::Improvement).len(), "improvement"),
            a.baseline.display(),
            count(cmp.points_compared, "point"),
            if fails { "FAIL" } else { "pass" },
        ))?;
    }
    Ok(!fails)
}
