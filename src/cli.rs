//! The command line: clap definitions (whose `///` comments are the help text)
//! and one function per subcommand that glues the library together.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::catalog;
use crate::engine::simulate;
use crate::error::Error;
use crate::hardware::cost::RooflineCost;
use crate::model::{Dtype, Model, kv_bytes};
use crate::report;
use crate::scenario::Scenario;
use crate::units::gib;

/// kvsim: simulate LLM serving and see what the KV cache does to your traffic.
#[derive(Debug, Parser)]
#[command(name = "kvsim", version, about, long_about = None)]
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
}

/// Arguments of `kvsim catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Models or GPUs (both if omitted).
    pub kind: Option<CatalogKind>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kvsim run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Output directory (default: `output/<scenario name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a scenario key, e.g. --set traffic.arrival.rate=8 (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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
    }
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
                hidden: kv_heads * head_dim,
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

fn kv(a: &KvArgs) -> Result<(), Error> {
    let model = shape_from_args(a)?;
    let bpt = model.kv_bytes_per_token(a.kv_dtype);
    let overflow = || {
        Error::Usage(format!(
            "{} tokens x {} sequences overflows 64-bit bytes",
            a.seq_len, a.batch
        ))
    };
    let per_seq = kv_bytes(bpt, a.seq_len, 1).ok_or_else(overflow)?;
    let total = kv_bytes(bpt, a.seq_len, a.batch).ok_or_else(overflow)?;
    let doubled = total.checked_mul(2).ok_or_else(overflow)?;
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
        double_seq_len_bytes: doubled,
        double_batch_bytes: doubled,
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
    let rows = vec![
        ("model".to_string(), model.name.clone()),
        ("shape".to_string(), format!("{shape}, {}", a.kv_dtype)),
        (
            "bytes per token".to_string(),
            format!("{} ({:.1} KiB)", group(bpt), bpt as f64 / 1024.0),
        ),
        (
            format!("1 sequence of {} tokens", group(a.seq_len)),
            format!("{} bytes ({:.3} GiB)", group(per_seq), gib(per_seq)),
        ),
        (
            format!("x batch {}", a.batch),
            format!("{} bytes ({:.3} GiB)", group(total), gib(total)),
        ),
        (
            "double the sequence length".to_string(),
            format!("{} bytes ({:.3} GiB): 2x", group(doubled), gib(doubled)),
        ),
        (
            "double the batch".to_string(),
            format!(
                "{} bytes ({:.3} GiB): 2x again",
                group(doubled),
                gib(doubled)
            ),
        ),
    ];
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
    let show_models = a.kind != Some(CatalogKind::Gpus);
    let show_gpus = a.kind != Some(CatalogKind::Models);
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
            "link GB/s",
            "mbu",
            "mfu",
            "overhead",
            "$/h",
        ]);
        for e in catalog::gpus() {
            let g = &e.gpu;
            t.add_row(vec![
                g.name.clone(),
                format!("{:.1} GiB", gib(g.vram_bytes)),
                format!("{:.2}", g.hbm_bandwidth / 1e12),
                format!("{:.0}", g.peak_flops / 1e12),
                format!("{:.0}", g.interconnect_bandwidth / 1e9),
                format!("{:.2}", g.efficiency.mbu),
                format!("{:.2}", g.efficiency.mfu),
                format!("{:.1} ms", g.efficiency.step_overhead_s * 1e3),
                g.price_per_hour
                    .map(|p| format!("{p:.2}"))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        say(&t)?;
    }
    Ok(())
}

/// The directory a run writes to.
fn out_dir(out: &Option<PathBuf>, name: &str) -> PathBuf {
    out.clone()
        .unwrap_or_else(|| Path::new("output").join(name))
}

fn run(a: &RunArgs) -> Result<(), Error> {
    let scenario = Scenario::load(&a.scenario, &a.overrides)?;
    let dir = out_dir(&a.out, &scenario.name);
    report::prepare_dir(&dir)?;
    let seed = a.seed.unwrap_or(scenario.seed);
    let cost = RooflineCost::new(
        &scenario.model,
        &scenario.deployment,
        &scenario.deployment.efficiency,
    );
    let started = std::time::Instant::now();
    let out = simulate(&scenario, seed, cost);
    let wall = started.elapsed();
    let written = report::write_run(&dir, &scenario, seed, &out)?;
    if a.json {
        say(serde_json::to_string_pretty(&out.summary).expect("serializable"))?;
    } else {
        say(report::summary_table(&scenario, &out.summary))?;
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
