//! The command line: clap definitions (whose `///` comments are the help text)
//! and one function per subcommand that glues the library together. This file
//! holds the definitions, the dispatch and the helpers every command shares;
//! each family of commands has a file of its own (`run`, `sweep` with `merge`
//! and `check`, `plan`, `calibrate` with `validate`, `kv` with `catalog`,
//! `plot`).

mod calibrate;
pub mod embed;
mod kv;
mod plan;
mod plot;
mod run;
mod sweep;

pub use calibrate::calibrate;
pub use plan::plan;
pub use sweep::check;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::Limits;
use crate::error::Error;
use crate::model::Dtype;
use calibrate::validate;
use kv::{kv, list_catalog};
use plot::plot;
use run::run;
use sweep::{merge, sweep};

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
    /// Plan even when the probes are projected to need more memory than the
    /// machine has (otherwise refused with exit 2).
    #[arg(long)]
    pub allow_large: bool,
    /// Instead of the ranking: goodput per GPU of the best colocated and the
    /// best disaggregated deployment at each input/output length ratio of
    /// `[plan.crossover]`, written as crossover.csv and a chart (default
    /// directory: `output/<scenario name>-crossover`). Needs
    /// `[plan] disaggregated = true`.
    #[arg(long)]
    pub crossover: bool,
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

/// [`clamp_threads`] for this machine, passing the note to `warn`.
fn threads_for(requested: Option<usize>, jobs: u64, warn: &mut dyn FnMut(String)) -> Option<usize> {
    let n = requested?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let (n, note) = clamp_threads(n, jobs, cores);
    if let Some(note) = note {
        warn(note);
    }
    Some(n)
}

/// Prints a warning or note line on stderr: how the commands pass on what
/// the checks they share with [`embed`] report.
fn eprint_line(line: String) {
    eprintln!("{line}");
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
    /// sweep.shard-I-of-N.csv for `kvsim merge` (and no plots). `auto` takes
    /// I and N from the job array running it: in a Slurm array,
    /// SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN (0 if unset) of
    /// SLURM_ARRAY_TASK_COUNT (consecutive ids only: no step, no list); in a
    /// Kubernetes Indexed Job, JOB_COMPLETION_INDEX of the N given as
    /// `auto/N` (the Job's completions; with Slurm, N is checked against
    /// SLURM_ARRAY_TASK_COUNT). Neither, both, or a bad value: exit 2.
    #[arg(long, value_name = "I/N|auto[/N]")]
    pub shard: Option<ShardArg>,
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

/// The value of `kvsim sweep --shard`: a shard given, or one to read from the
/// job array running kvsim (resolved by the command, which reads the
/// environment; see [`crate::sweep::Shard::from_env`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// `I/N`.
    Given(crate::sweep::Shard),
    /// `auto` (`count` None) or `auto/N`.
    Auto {
        /// The `N` of `auto/N`, at least 1.
        count: Option<usize>,
    },
}

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<ShardArg, String> {
        if s.trim() == "auto" {
            return Ok(ShardArg::Auto { count: None });
        }
        if let Some(n) = s.trim().strip_prefix("auto/") {
            return match n.trim().parse::<usize>() {
                Ok(0) => Err(format!("`{s}`: the shard count N must be at least 1")),
                Ok(count) => Ok(ShardArg::Auto { count: Some(count) }),
                Err(_) => Err(format!("`{s}`: `{n}` is not a shard count")),
            };
        }
        if !s.contains('/') {
            return Err(format!(
                "`{s}`: expected I/N (0-based shard I of N, e.g. 0/4), auto or auto/N \
                 (from a Slurm job array or a Kubernetes Indexed Job)"
            ));
        }
        s.parse().map(ShardArg::Given)
    }
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
    /// A Hugging Face config.json to read the model from (its layer groups,
    /// windows, recurrent state and parameters).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model", "layers", "kv_heads", "head_dim"])]
    pub hf_config: Option<std::path::PathBuf>,
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
    /// Tokens per block of the paged cache whose held bytes are reported.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub block_size: u32,
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
    /// Print every column and each entry's source in the table, however wide
    /// (by default a table fits 80 characters and the sources follow it as a
    /// list).
    #[arg(long)]
    pub wide: bool,
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
    /// Format of the per-request and per-step tables: requests.csv and
    /// timeline.csv, or requests.parquet and timeline.parquet (in builds
    /// with the `parquet` feature). Default: the scenario's `output.format`,
    /// else csv.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<crate::scenario::spec::TableFormat>,
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
        Command::Report(a) => crate::report::html::regenerate(&a.dir)
            .and_then(|p| say(format_args!("wrote {}", p.display()))),
    }
}
