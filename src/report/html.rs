//! `report.html`: one self-contained page per run, sweep or plan.
//!
//! The page is made from the output directory's own files (`summary.json` and
//! `timeline.csv` of a run, `sweep.csv` of a sweep, `plan.csv` of a plan) plus
//! a small record of what those files do not hold (the scenario file, the
//! resolved configuration with the source of each value, the warnings, the
//! GPUs and models run), which the page carries in an HTML comment. So
//! `kvsim report <dir>` rebuilds the same page from the directory alone.
//!
//! No script, no network, no external file: tables are HTML, charts are the
//! figures `kvsim plot` draws, inlined as SVG. Every piece of user text is
//! escaped.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::output::OutputDir;
use crate::report::plot::{Format, PlotOptions, Table};
use crate::scenario::Scenario;
use crate::scenario::spec::GpuSpec;

/// The file name of the report in an output directory.
pub const REPORT_HTML: &str = "report.html";

/// Opens the comment that carries the [`Meta`] record.
const META_OPEN: &str = "<!-- kvsim-report-meta ";

/// What the report needs that the result files do not hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `run`, `sweep` or `plan`.
    pub kind: String,
    /// The scenario's name.
    pub name: String,
    /// The scenario file, as given on the command line (empty if unknown).
    pub scenario_file: String,
    /// The resolved configuration (of the first point, for a sweep or plan).
    pub config: Vec<ConfigRow>,
    /// The keys a sweep or plan varies.
    pub varies: Vec<String>,
    /// The (GPU, model) pairs run, for the validation status.
    pub hardware: Vec<(String, String)>,
    /// The scenario's load-time warnings (every point's, once each).
    pub warnings: Vec<String>,
    /// A plan's target and objectives.
    pub objectives: Option<String>,
}

/// One value of the resolved configuration and where it comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigRow {
    /// What it is (a scenario key, mostly).
    pub key: String,
    /// Its value in force.
    pub value: String,
    /// Where the value comes from: the scenario file, a catalog entry (with
    /// its citation), an engine preset, kvsim's default, or computed.
    pub source: String,
}

fn row(key: &str, value: impl std::fmt::Display, source: impl Into<String>) -> ConfigRow {
    ConfigRow {
        key: key.to_string(),
        value: value.to_string(),
        source: source.into(),
    }
}

/// Escapes `s` for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The record: built from a scenario at the command, carried in the page.

/// The resolved configuration of `s`, each value with its source.
pub fn config_rows(s: &Scenario) -> Vec<ConfigRow> {
    let spec = &s.spec;
    let mut rows = Vec::new();
    let file = "scenario file";
    let engine = spec.engine.preset.and_then(|p| {
        crate::catalog::engines()
            .into_iter()
            .find(|e| e.name == p)
            .map(|e| format!("engine preset {} ({}; {})", e.name, e.version, e.source))
    });
    let default = engine
        .clone()
        .unwrap_or_else(|| "kvsim default (vLLM's, README \"Scenario files\")".to_string());
    let set_or = |set: bool, otherwise: &str| {
        if set {
            file.to_string()
        } else {
            otherwise.to_string()
        }
    };
    rows.push(row("seed", spec.seed, file));
    match (spec.requests, spec.duration_s) {
        (Some(n), _) => rows.push(row("requests", n, file)),
        (None, Some(d)) => rows.push(row("duration_s", d, file)),
        _ => {}
    }
    // The model.
    let m = &s.model;
    let model_fields = serde_json::to_value(&spec.model)
        .ok()
        .and_then(|v| {
            v.as_object().map(|o| {
                o.keys()
                    .filter(|k| *k != "preset" && *k != "hf_config")
                    .count()
            })
        })
        .unwrap_or(0);
    let cited = match (&spec.model.preset, &spec.model.hf_config) {
        (Some(p), _) => Some(
            crate::catalog::model_entry(p)
                .map(|e| format!("catalog model {p}: {}", e.source))
                .unwrap_or_else(|| format!("catalog model {p}")),
        ),
        (None, Some(path)) => Some(format!("Hugging Face config {}", path.display())),
        (None, None) => None,
    };
    let model_source = match cited {
        Some(cited) if model_fields > 0 => {
            format!("{cited}; {model_fields} field(s) set in the scenario")
        }
        Some(cited) => cited,
        None => file.to_string(),
    };
    // A uniform model's shape in one phrase; any other's layer groups.
    let shape = if m.is_uniform() {
        format!(
            "{} layers, {} KV heads x {}",
            m.layers, m.kv_heads, m.head_dim
        )
    } else {
        let groups: Vec<String> = m
            .layer_groups()
            .iter()
            .map(|g| format!("{} x {}", g.layers, g.describe()))
            .collect();
        format!("{} layers ({})", m.layers, groups.join("; "))
    };
    rows.push(row(
        "model",
        format!(
            "{}: {:.3e} parameters, {shape}, max_model_len {}, {} weights",
            m.name,
            m.params as f64,
            m.max_model_len,
            m.weight_dtype.name()
        ),
        model_source,
    ));
    // The GPU.
    let d = &s.deployment;
    let g = &d.gpu;
    let gpu_source = match &spec.hardware.gpu {
        GpuSpec::Name(n) => crate::catalog::gpu_entry(n)
            .map(|e| format!("catalog GPU {n}: {}", e.source))
            .unwrap_or_else(|| format!("catalog GPU {n}")),
        GpuSpec::Inline(_) => "scenario (inline GPU)".to_string(),
    };
    rows.push(row(
        "hardware.gpu",
        format!(
            "{}: {:.1} GiB, {:.2} TB/s HBM, {:.0} TFLOPS bf16",
            g.name,
            g.vram_bytes as f64 / (1u64 << 30) as f64,
            g.hbm_bandwidth / 1e12,
            g.peak_flops / 1e12
        ),
        gpu_source,
    ));
    let h = &spec.hardware;
    rows.push(row(
        "hardware.tp",
        d.tp,
        set_or(h.tp.is_some(), "default (1)"),
    ));
    if d.replicas > 1 {
        rows.push(row(
            "hardware.replicas",
            format!("{} behind {}", d.replicas, d.router.name()),
            file,
        ));
    }
    let rule_set = spec.engine.memory_rule.is_some()
        || spec.engine.memory_fraction.is_some()
        || h.memory_utilization.is_some();
    rows.push(row(
        "memory rule",
        format!(
            "{} {} ({})",
            d.memory.name(),
            d.memory.fraction(),
            d.memory.engine_key()
        ),
        set_or(rule_set, &default),
    ));
    rows.push(row(
        "compute dtype",
        d.compute_dtype.name(),
        set_or(
            spec.model.compute_dtype.is_some(),
            "derived: the weights' format on this GPU",
        ),
    ));
    let gpu_defaults = format!("catalog GPU {} defaults (src/catalog/gpus.rs)", g.name);
    let factor_source = |set: bool| {
        if set {
            file.to_string()
        } else if h.calibration.is_some() {
            "calibration".to_string()
        } else {
            gpu_defaults.clone()
        }
    };
    let e = &d.efficiency;
    for (key, value, set) in [
        ("hardware.mbu", format!("{}", e.mbu), h.mbu.is_some()),
        ("hardware.mfu", format!("{}", e.mfu), h.mfu.is_some()),
        (
            "hardware.step_overhead_s",
            format!("{}", e.step_overhead_s),
            h.step_overhead_s.is_some(),
        ),
        (
            "hardware.layer_overhead_s",
            format!("{}", e.layer_overhead_s),
            h.layer_overhead_s.is_some(),
        ),
        (
            "hardware.allreduce_latency_s",
            format!("{}", e.allreduce_latency_s),
            h.allreduce_latency_s.is_some(),
        ),
    ] {
        rows.push(row(key, value, factor_source(set)));
    }
    let b = &s.budget;
    let gib = |x: u64| x as f64 / (1u64 << 30) as f64;
    rows.push(row(
        "KV budget",
        format!(
            "{:.2} GiB = {} (weights {:.2} GiB/GPU, activations {:.2}, runtime {:.2})",
            gib(b.kv_bytes),
            b.capacity_words(),
            gib(b.weights_per_gpu),
            gib(b.activation_per_gpu),
            gib(b.runtime_per_gpu)
        ),
        "computed: the memory rule on the GPU and model above",
    ));
    // The cache.
    let c = &s.cache;
    let cs = &spec.cache;
    rows.push(row(
        "cache.policy",
        c.policy.name(),
        set_or(cs.policy.is_some(), "kvsim default (paged)"),
    ));
    if let crate::cache::Placement::Paged { block_size } = c.placement {
        rows.push(row(
            "cache.block_size",
            block_size,
            set_or(cs.block_size.is_some(), &default),
        ));
    }
    rows.push(row(
        "cache.kv_dtype",
        c.kv_dtype.name(),
        set_or(cs.kv_dtype.is_some(), "default: the model's dtype"),
    ));
    if let Some(w) = c.window {
        rows.push(row(
            "cache.window",
            w,
            set_or(cs.window.is_some(), "the model's sliding window"),
        ));
    }
    rows.push(row(
        "cache.prefix_caching",
        c.prefix_caching,
        set_or(cs.prefix_caching.is_some(), &default),
    ));
    // The scheduler.
    let sc = &s.scheduler;
    let ss = &spec.scheduler;
    for (key, value, set) in [
        (
            "scheduler.max_num_seqs",
            sc.max_num_seqs.to_string(),
            ss.max_num_seqs.is_some(),
        ),
        (
            "scheduler.max_batched_tokens",
            sc.max_batched_tokens.to_string(),
            ss.max_batched_tokens.is_some(),
        ),
        (
            "scheduler.chunked_prefill",
            sc.chunked_prefill.to_string(),
            ss.chunked_prefill.is_some(),
        ),
        (
            "scheduler.admission",
            sc.admission.name().to_string(),
            ss.admission.is_some(),
        ),
        (
            "scheduler.on_oom",
            sc.on_oom.name().to_string(),
            ss.on_oom.is_some(),
        ),
    ] {
        rows.push(row(key, value, set_or(set, &default)));
    }
    // Traffic, as written.
    if let Ok(Value::Object(t)) = serde_json::to_value(&spec.traffic) {
        for (k, v) in t {
            rows.push(row(&format!("traffic.{k}"), compact(&v), file));
        }
    }
    if let Ok(Value::Object(o)) = serde_json::to_value(&spec.slo) {
        for (k, v) in o {
            if !v.is_null() {
                rows.push(row(&format!("slo.{k}"), compact(&v), file));
            }
        }
    }
    rows
}

/// A JSON value as one short line: `{kind = poisson, rate = 25}`.
fn compact(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {}", compact(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(compact).collect::<Vec<_>>().join(", ")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The record of a run of `s`, read from `path`.
pub fn run_meta(s: &Scenario, path: &Path) -> Meta {
    Meta {
        kind: "run".into(),
        name: s.name.clone(),
        scenario_file: path.display().to_string(),
        config: config_rows(s),
        varies: Vec::new(),
        hardware: vec![(s.deployment.gpu.name.clone(), s.model.name.clone())],
        warnings: s.warnings(),
        objectives: None,
    }
}

/// The record of the points of a sweep or plan: the first point that builds
/// gives the configuration; every point its GPU, model and warnings.
fn grid_meta(
    kind: &str,
    name: &str,
    table: &toml::Table,
    path: &Path,
    grid: &crate::sweep::Grid,
) -> Meta {
    let mut meta = Meta {
        kind: kind.into(),
        name: name.into(),
        scenario_file: path.display().to_string(),
        varies: grid.axes.iter().map(|a| a.key.clone()).collect(),
        ..Meta::default()
    };
    let mut seen = BTreeSet::new();
    for i in 0..grid.len() {
        let Ok(s) = crate::sweep::point_scenario(table, path, &grid.point(i)) else {
            continue;
        };
        if meta.config.is_empty() {
            meta.config = config_rows(&s);
        }
        let pair = (s.deployment.gpu.name.clone(), s.model.name.clone());
        if seen.insert(pair.clone()) {
            meta.hardware.push(pair);
        }
        for w in s.warnings() {
            if !meta.warnings.contains(&w) {
                meta.warnings.push(w);
            }
        }
    }
    meta
}

// ---------------------------------------------------------------------------
// Entry points of the commands.

/// `report.html` of a run of `scenario` whose tables are written in
/// `format` (the same page `kvsim report` makes from the run's files).
pub fn run_html(
    scenario: &Scenario,
    seed: u64,
    out: &crate::engine::RunOutput,
    format: crate::scenario::spec::TableFormat,
) -> Result<Vec<u8>, Error> {
    let failed = |e: String| {
        Error::io(
            &scenario.path,
            std::io::Error::other(format!("cannot make report.html: {e}")),
        )
    };
    let summary = super::summary_json(scenario, seed, &out.summary, out.cluster.as_ref())
        .map_err(|e| failed(e.to_string()))?;
    let meta = run_meta(scenario, &scenario.path);
    // The charts read the timeline's numbers as a reader of the timeline's
    // file gets them back, without writing and parsing the text again: the
    // page is the one `kvsim report` rebuilds from the files.
    let series = super::timeline_series(&out.timeline);
    let file = format!("timeline.{}", format.extension());
    run_page(&meta, &summary, |page| page.timeline_charts(&series, &file)).map(String::into_bytes)
}

/// `report.html` of a sweep of scenario table `table` (read from `path`)
/// whose `sweep.csv` is `csv`.
pub fn sweep_html(path: &Path, table: &toml::Table, csv: &[u8]) -> Result<Vec<u8>, Error> {
    let grid = crate::sweep::grid_of(table, path)?;
    let name = table.get("name").and_then(|v| v.as_str()).unwrap_or("");
    let meta = grid_meta("sweep", name, table, path, &grid);
    sweep_page(&meta, csv).map(String::into_bytes)
}

/// `report.html` of a plan of scenario table `table` (read from `path`)
/// whose `plan.csv` is `csv`.
pub fn plan_html(
    path: &Path,
    table: &toml::Table,
    plan: &crate::plan::Plan,
    csv: &[u8],
) -> Result<Vec<u8>, Error> {
    let name = table.get("name").and_then(|v| v.as_str()).unwrap_or("");
    let mut meta = grid_meta("plan", name, table, path, &plan.candidates);
    let o = &plan.objectives;
    let slo = o.describe();
    meta.objectives = Some(format!(
        "{} req/s with {}; {} replicates per probe",
        plan.target_rate,
        slo.join(", "),
        plan.replicates
    ));
    plan_page(&meta, csv).map(String::into_bytes)
}

/// `kvsim report <dir>`: rebuilds `dir/report.html` from the directory's
/// files, replacing the directory as a whole (its other files copied
/// unchanged). Returns the report's path.
pub fn regenerate(dir: &Path) -> Result<PathBuf, Error> {
    let has = |f: &str| dir.join(f).is_file();
    let kind: &'static str = if has("summary.json") {
        "run"
    } else if has("sweep.csv") {
        "sweep"
    } else if has("plan.csv") {
        "plan"
    } else {
        return Err(Error::Usage(format!(
            "{}: no summary.json, sweep.csv or plan.csv: not the output directory of a \
             finished kvsim run, sweep or plan",
            dir.display()
        )));
    };
    let out = OutputDir::begin(dir, kind, &[])?;
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| Error::io(dir.join(f), e));
    let old = std::fs::read_to_string(dir.join(REPORT_HTML))
        .ok()
        .and_then(|text| meta_of(&text));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let page = match kind {
        "run" => {
            let summary = read("summary.json")?;
            let meta = old.unwrap_or_else(|| meta_from_summary(&summary, dir));
            if !has("timeline.csv") && has("timeline.parquet") {
                run_page(&meta, &summary, |page| {
                    parquet_charts(page, &dir.join("timeline.parquet"))
                })?
            } else {
                let timeline = read("timeline.csv")?;
                run_page(&meta, &summary, |page| {
                    match Table::parse(Path::new("timeline.csv"), &timeline) {
                        Ok(table) => page.charts(table),
                        Err(e) => page.p(&format!("No charts: {e}")),
                    }
                })?
            }
        }
        "sweep" => {
            let meta = old.unwrap_or_else(|| unrecorded("sweep", &name));
            sweep_page(&meta, &read("sweep.csv")?)?
        }
        _ => {
            let meta = old.unwrap_or_else(|| unrecorded("plan", &name));
            plan_page(&meta, &read("plan.csv")?)?
        }
    };
    copy_tree(&out, dir, "")?;
    out.write(REPORT_HTML, page.as_bytes())?;
    out.commit()?;
    Ok(dir.join(REPORT_HTML))
}

/// The charts section of a run written with `--format parquet`, from its
/// `timeline.parquet` (a build without the `parquet` feature says so).
fn parquet_charts(page: &mut Page, path: &Path) {
    #[cfg(feature = "parquet")]
    match super::parquet::timeline_series(path) {
        Ok(series) => page.timeline_charts(&series, "timeline.parquet"),
        Err(e) => page.p(&format!("No charts: timeline.parquet: {e}")),
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = path;
        page.p(
            "No charts: this run's timeline is timeline.parquet, and this kvsim was built \
             without Parquet support (cargo build --release --features parquet reads it).",
        );
    }
}

/// Copies every file of `dir/prefix` but the markers and the report into
/// `out` (subdirectories with markers are marked again).
fn copy_tree(out: &OutputDir, dir: &Path, prefix: &str) -> Result<(), Error> {
    let here = dir.join(prefix);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(|e| Error::io(&here, e))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{prefix}{name}");
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            out.subdir(&relative)?;
            copy_tree(out, dir, &format!("{relative}/"))?;
            if entry.path().join(crate::output::MARKER).is_file() {
                out.mark_subdir(&relative)?;
            }
        } else if name != crate::output::MARKER && relative != REPORT_HTML {
            out.copy_in(&relative, &entry.path())?;
        }
    }
    Ok(())
}

/// The record of a run directory without a report: what `summary.json` holds.
fn meta_from_summary(summary: &[u8], dir: &Path) -> Meta {
    let doc: Value = serde_json::from_slice(summary).unwrap_or(Value::Null);
    let name = doc["scenario"].as_str().unwrap_or("").to_string();
    let built =
        serde_json::from_value::<crate::scenario::ScenarioSpec>(doc["resolved_scenario"].clone())
            .ok()
            .and_then(|spec| Scenario::from_spec(spec, &dir.join("summary.json")).ok());
    match built {
        Some(s) => Meta {
            scenario_file: String::new(),
            ..run_meta(&s, Path::new(""))
        },
        None => Meta {
            hardware: vec![(
                doc["gpu"].as_str().unwrap_or("").to_string(),
                doc["model"].as_str().unwrap_or("").to_string(),
            )],
            ..unrecorded("run", &name)
        },
    }
}

/// The record of a directory whose report is gone: only its name is known.
fn unrecorded(kind: &str, name: &str) -> Meta {
    Meta {
        kind: kind.into(),
        name: name.into(),
        ..Meta::default()
    }
}

/// The record a page carries, if `text` is a kvsim report.
pub fn meta_of(text: &str) -> Option<Meta> {
    let start = text.find(META_OPEN)? + META_OPEN.len();
    let end = start + text[start..].find(" -->")?;
    serde_json::from_str(&text[start..end]).ok()
}

/// `meta` as JSON that an HTML comment can hold: every `-`, `<`, `>` and `&`
/// is written as a JSON escape, so nothing can end the comment early and no
/// user text appears raw. (The record holds strings only, so each of them is
/// inside a JSON string.)
fn meta_comment(meta: &Meta) -> String {
    let json = serde_json::to_string(meta).expect("plain data serializes");
    let safe = json
        .replace('-', "\\u002d")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("{META_OPEN}{safe} -->\n")
}

// ---------------------------------------------------------------------------
// Pages.

const STYLE: &str = "body{font-family:'DejaVu Sans',sans-serif;margin:2em auto;max-width:1300px;\
color:#141414;line-height:1.4;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;\
margin-top:1.6em;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#eef2f6}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr:nth-child(even) td{background:#f8f9fb}\
.meta{color:#555}.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:.4em .8em;\
margin:.3em 0}.ok{color:#00734d}.miss{color:#b03000}\
figure{margin:1em 0}svg{max-width:100%;height:auto;border:1px solid #ddd}\
code{background:#f0f0f0;padding:0 .2em}.scroll{overflow-x:auto}\
table.grid td,table.grid th{white-space:nowrap;padding:.2em .4em}";

/// A page being written.
struct Page {
    html: String,
}

impl Page {
    fn new(meta: &Meta, title: &str) -> Page {
        let mut html = String::with_capacity(1 << 20);
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        let _ = writeln!(
            html,
            "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
            escape(title)
        );
        html.push_str(&meta_comment(meta));
        let _ = writeln!(html, "<h1>{}</h1>", escape(title));
        let file = if meta.scenario_file.is_empty() {
            "not recorded".to_string()
        } else {
            format!("<code>{}</code>", escape(&meta.scenario_file))
        };
        let _ = writeln!(
            html,
            "<p class=\"meta\">scenario <strong>{}</strong> from {file}; kvsim {} {}</p>",
            escape(&meta.name),
            env!("CARGO_PKG_VERSION"),
            escape(&meta.kind)
        );
        Page { html }
    }

    fn h2(&mut self, id: &str, title: &str) {
        let _ = writeln!(self.html, "<h2 id=\"{id}\">{}</h2>", escape(title));
    }

    fn p(&mut self, text: &str) {
        let _ = writeln!(self.html, "<p>{}</p>", escape(text));
    }

    /// A table: `header`, then `rows`; cells that parse as numbers align right.
    fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.table_of("", header, rows);
    }

    /// [`Page::table`] with a CSS class (`grid`: one line per row, scrolling
    /// sideways when wider than the page).
    fn table_of(&mut self, class: &str, header: &[&str], rows: &[Vec<String>]) {
        if class.is_empty() {
            self.html.push_str("<table>\n");
        } else {
            let _ = writeln!(self.html, "<div class=\"scroll\"><table class=\"{class}\">");
        }
        if header.iter().any(|h| !h.is_empty()) {
            self.html.push_str("<tr>");
            for h in header {
                let _ = write!(self.html, "<th>{}</th>", escape(h));
            }
            self.html.push_str("</tr>\n");
        }
        for r in rows {
            self.html.push_str("<tr>");
            for c in r {
                let num = c.trim_end_matches([' ', '%', 's']).parse::<f64>().is_ok();
                let class = if num { " class=\"n\"" } else { "" };
                let _ = write!(self.html, "<td{class}>{}</td>", escape(c));
            }
            self.html.push_str("</tr>\n");
        }
        self.html.push_str("</table>\n");
        if !class.is_empty() {
            self.html.push_str("</div>\n");
        }
    }

    /// The charts `kvsim plot` draws from `table`, inline.
    fn charts(&mut self, table: Table) {
        let opts = PlotOptions {
            format: Format::Svg,
            ..Default::default()
        };
        // A run with nothing to draw (every request refused, say) still has
        // its report: the page says why there is no chart.
        match crate::report::plot::render_charts(table, &opts) {
            Ok(charts) => {
                for (name, bytes) in charts {
                    self.svg(&name, &bytes);
                }
            }
            Err(e) => self.p(&format!("No charts: {e}")),
        }
    }

    /// The default charts of a run's timeline, from its columns; `file`
    /// names the timeline in messages.
    fn timeline_charts(&mut self, series: &crate::report::plot::TimelineSeries, file: &str) {
        if series.time.is_empty() {
            // What reading the header-only timeline.csv says.
            let e = Error::DataFile {
                path: file.into(),
                line: Some(1),
                reason: "no data rows after the header".into(),
            };
            self.p(&format!("No charts: {e}"));
            return;
        }
        let opts = PlotOptions {
            format: Format::Svg,
            ..Default::default()
        };
        match crate::report::plot::render_timeline_charts(series, &opts, Path::new(file)) {
            Ok(charts) => {
                for (name, bytes) in charts {
                    self.svg(&name, &bytes);
                }
            }
            Err(e) => self.p(&format!("No charts: {e}")),
        }
    }

    /// One SVG chart, inline (the XML namespace is implied in HTML).
    fn svg(&mut self, name: &str, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let start = text.find("<svg").unwrap_or(0);
        let svg = text[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
        let _ = writeln!(
            self.html,
            "<figure id=\"chart-{}\">\n{}\n</figure>",
            escape(name.trim_end_matches(".svg")),
            svg.trim_end()
        );
    }

    fn config(&mut self, meta: &Meta) {
        self.h2("configuration", "Configuration");
        if meta.config.is_empty() {
            self.p(
                "The resolved configuration is not recorded in this directory (its report.html \
                 was removed); rerun the command to record it.",
            );
            return;
        }
        if !meta.varies.is_empty() {
            self.p(&format!(
                "Of the first point; varied over the grid: {}.",
                meta.varies.join(", ")
            ));
        }
        let rows: Vec<Vec<String>> = meta
            .config
            .iter()
            .map(|r| vec![r.key.clone(), r.value.clone(), r.source.clone()])
            .collect();
        self.table(&["key", "value", "source"], &rows);
    }

    fn validation(&mut self, meta: &Meta) {
        self.h2("validation", "Validation status");
        self.p(
            "How far kvsim's held-out rows (published measurements no default was fitted to; \
             VALIDATION.md in kvsim's repository) were off on this hardware.",
        );
        let all = crate::validate::held_out_rows();
        if meta.hardware.is_empty() {
            self.p("No GPU recorded.");
        }
        for (gpu, model) in &meta.hardware {
            let on_gpu: Vec<_> = all.iter().filter(|r| &r.gpu == gpu).collect();
            if on_gpu.is_empty() {
                let _ = writeln!(
                    self.html,
                    "<p><strong>{} / {}</strong>: no held-out rows for this GPU.</p>",
                    escape(gpu),
                    escape(model)
                );
                continue;
            }
            let pair: Vec<_> = on_gpu
                .iter()
                .filter(|r| &r.model == model)
                .copied()
                .collect();
            let _ = writeln!(
                self.html,
                "<p><strong>{} / {}</strong>: {}; with {}: {}.</p>",
                escape(gpu),
                escape(model),
                escape(&stats(&on_gpu, "this GPU")),
                escape(model),
                escape(&if pair.is_empty() {
                    "no held-out rows".to_string()
                } else {
                    stats(&pair, "this model")
                })
            );
            let mut shown = if pair.is_empty() { on_gpu } else { pair };
            shown.sort_by(|a, b| b.error.abs().total_cmp(&a.error.abs()));
            let rows: Vec<Vec<String>> = shown
                .iter()
                .take(10)
                .map(|r| {
                    vec![
                        r.id.clone(),
                        format!("{} x {}", r.model, r.tp),
                        r.metric.clone(),
                        r.error_label.clone(),
                        r.target.clone(),
                        if r.within { "yes" } else { "no" }.to_string(),
                    ]
                })
                .collect();
            self.table(
                &[
                    "case (largest error first)",
                    "model",
                    "metric",
                    "error",
                    "target",
                    "within",
                ],
                &rows,
            );
        }
    }

    fn warnings(&mut self, meta: &Meta) {
        self.h2("warnings", "Warnings");
        if meta.warnings.is_empty() {
            self.p("The scenario raised no load-time warnings.");
        }
        for w in &meta.warnings {
            let _ = writeln!(
                self.html,
                "<div class=\"warn\">warning: {}</div>",
                escape(w)
            );
        }
    }

    fn finish(mut self) -> String {
        self.html.push_str("</body>\n</html>\n");
        self.html
    }
}

/// "9 rows on this GPU, 7 within target, median |error| 8.1 %, largest 40.7 %".
fn stats(rows: &[&crate::validate::HeldOutRow], what: &str) -> String {
    let within = rows.iter().filter(|r| r.within).count();
    let mut rel: Vec<f64> = rows
        .iter()
        .filter(|r| r.relative)
        .map(|r| r.error.abs())
        .collect();
    rel.sort_by(f64::total_cmp);
    let spread = if rel.is_empty() {
        String::new()
    } else {
        format!(
            ", median |error| {:.1} %, largest {:.1} %",
            median(&rel) * 100.0,
            rel[rel.len() - 1] * 100.0
        )
    };
    format!(
        "{} held-out row{} on {what}, {within} within target{spread}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )
}

/// The median of sorted, non-empty `xs`.
fn median(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// A number for a table: integers whole, others to 4 significant digits.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    format!("{v:.digits$}")
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// The batch bounds, largest share first: `offered load 100.0 %`.
const BOUNDS: [(&str, &str); 4] = [
    ("batch_bound_load", "offered load"),
    ("batch_bound_kv", "KV memory"),
    ("batch_bound_seqs", "max_num_seqs"),
    ("batch_bound_tokens", "token budget"),
];

/// The page of a run: `charts` draws its charts section from the timeline.
fn run_page(meta: &Meta, summary: &[u8], charts: impl FnOnce(&mut Page)) -> Result<String, Error> {
    let doc: Value = serde_json::from_slice(summary).map_err(|e| {
        Error::io(
            "summary.json",
            std::io::Error::other(format!("not a kvsim summary: {e}")),
        )
    })?;
    let m = &doc["metrics"];
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    let mut page = Page::new(meta, &format!("kvsim run: {}", meta.name));
    page.h2("summary", "Summary");
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let rows = vec![
        vec![
            "configuration".into(),
            format!(
                "{} on {} x {} | {} ({}, {} admission, on_oom {}) | seed {}",
                s("model"),
                doc["tp"],
                s("gpu"),
                s("policy"),
                s("kv_dtype"),
                s("admission"),
                s("on_oom"),
                doc["seed"]
            ),
        ],
        vec![
            "KV budget".into(),
            format!(
                "{:.2} GiB at {} B/token",
                f("kv_budget_bytes") / (1u64 << 30) as f64,
                num(f("kv_bytes_per_token"))
            ),
        ],
        vec![
            "requests".into(),
            format!(
                "{} arrived: {} ok, {} oom, {} unservable, {} crashed, {} timeout",
                num(f("requests")),
                num(f("ok")),
                num(f("oom")),
                num(f("unservable")),
                num(f("crashed")),
                num(f("timeout"))
            ),
        ],
        vec![
            "OOM rate".into(),
            format!(
                "{} ({} OOM events, {} preemptions)",
                pct(f("oom_rate")),
                num(f("oom_events")),
                num(f("preemptions"))
            ),
        ],
        vec![
            "batch".into(),
            format!(
                "peak {} | mean {:.1} | fits {} in flight, {} at full length",
                num(f("batch_peak")),
                f("batch_mean"),
                num(f("batch_ceiling_inflight")),
                num(f("batch_ceiling"))
            ),
        ],
        vec![
            "TTFT".into(),
            format!(
                "p50 {:.3} s | p90 {:.3} s | p99 {:.3} s",
                f("ttft_p50"),
                f("ttft_p90"),
                f("ttft_p99")
            ),
        ],
        vec![
            "TPOT".into(),
            format!(
                "p50 {:.1} ms | p90 {:.1} ms | p99 {:.1} ms | mean {:.1} ms",
                f("tpot_p50") * 1e3,
                f("tpot_p90") * 1e3,
                f("tpot_p99") * 1e3,
                f("tpot_mean") * 1e3
            ),
        ],
        vec![
            "E2E".into(),
            format!("p50 {:.3} s | p99 {:.3} s", f("e2e_p50"), f("e2e_p99")),
        ],
        vec![
            "throughput".into(),
            format!(
                "{:.0} output tok/s | goodput {:.2} req/s",
                f("throughput_tok_s"),
                f("goodput_rps")
            ),
        ],
        vec![
            "KV occupancy".into(),
            format!(
                "peak {} | mean {} | time above 90 %: {}",
                pct(f("kv_peak_frac")),
                pct(f("kv_mean_frac")),
                pct(f("kv_time_above_90"))
            ),
        ],
        vec![
            "where KV goes".into(),
            format!(
                "used {} | reserved {} | internal {} | external {} (time-averaged share of the \
                 budget)",
                pct(f("waste_used")),
                pct(f("waste_reserved")),
                pct(f("waste_internal")),
                pct(f("waste_external"))
            ),
        ],
        vec![
            "simulated".into(),
            format!(
                "{:.1} s in {} steps (busy {})",
                f("duration_s"),
                num(f("steps")),
                pct(f("busy_frac"))
            ),
        ],
    ];
    page.table(&["", ""], &rows);
    page.h2("batch-limit", "What bound the batch");
    let limit = doc["batch_limit"].as_str().unwrap_or("not recorded");
    page.p(&format!(
        "The batch was held longest by: {limit}. Share of busy time each limit held it:"
    ));
    let bound_rows: Vec<Vec<String>> = BOUNDS
        .iter()
        .map(|(k, label)| vec![label.to_string(), k.to_string(), pct(f(k))])
        .collect();
    page.table(&["limit", "metric", "share of busy time"], &bound_rows);
    if let Some(tiers) = doc["resolved_scenario"]["cache"]["tiers"].as_array() {
        tier_section(&mut page, tiers, &f);
    }
    if doc["resolved_scenario"]["deployment"]["mode"].as_str() == Some("disaggregated") {
        disagg_section(&mut page, &f);
    }
    page.h2("charts", "Charts");
    charts(&mut page);
    page.config(meta);
    page.validation(meta);
    page.warnings(meta);
    page.h2("metrics", "All metrics (summary.json)");
    if let Value::Object(o) = m {
        let rows: Vec<Vec<String>> = o
            .iter()
            .map(|(k, v)| {
                vec![
                    k.clone(),
                    v.as_f64().map(num).unwrap_or_else(|| v.to_string()),
                ]
            })
            .collect();
        page.table(&["metric", "value"], &rows);
    }
    Ok(page.finish())
}

/// The "KV tiers" section of a run whose scenario has `tiers` (its
/// `[[cache.tiers]]` entries as `summary.json` echoes them): hits and traffic
/// per tier, the links' busy shares, and TTFT's parts; `f` reads a metric.
fn tier_section(page: &mut Page, tiers: &[Value], f: &dyn Fn(&str) -> f64) {
    let kinds: Vec<&str> = ["host", "ssd", "remote"]
        .into_iter()
        .filter(|k| tiers.iter().any(|t| t["kind"].as_str() == Some(k)))
        .collect();
    let gb = |k: &str| format!("{:.2}", f(k) / 1e9);
    page.h2("kv-tiers", "KV tiers");
    page.p(&format!(
        "Prompt tokens served from HBM's prefix cache or loaded from a tier, over prompt \
         tokens looked up: {} in all; {} prompt tokens loaded instead of recomputed, {} \
         loads declined as slower than recomputing.",
        pct(f("total_hit_rate")),
        num(f("recompute_avoided_tokens")),
        num(f("loads_declined"))
    ));
    let mut rows = vec![vec![
        "HBM (prefix cache)".to_string(),
        pct(f("prefix_hit_rate")),
        num(f("prefix_hit_tokens")),
        String::new(),
        String::new(),
        String::new(),
    ]];
    rows.extend(kinds.iter().map(|k| {
        vec![
            k.to_string(),
            pct(f(&format!("{k}_hit_rate"))),
            num(f(&format!("{k}_hit_tokens"))),
            gb(&format!("{k}_stored_bytes")),
            gb(&format!("{k}_loaded_bytes")),
            num(f(&format!("{k}_evicted_blocks"))),
        ]
    }));
    page.table(
        &[
            "tier",
            "hit rate",
            "hit tokens",
            "stored (GB)",
            "loaded (GB)",
            "evicted blocks",
        ],
        &rows,
    );
    let mut links = vec![
        ("PCIe, host to GPU", "pcie_h2d_util"),
        ("PCIe, GPU to host", "pcie_d2h_util"),
    ];
    if kinds.contains(&"ssd") {
        links.push(("SSD, busier direction", "ssd_util"));
    }
    if kinds.contains(&"remote") {
        links.push(("NIC, busier direction", "nic_util"));
    }
    let link_rows: Vec<Vec<String>> = links
        .iter()
        .map(|(label, k)| vec![label.to_string(), k.to_string(), pct(f(k))])
        .collect();
    page.table(&["link", "metric", "share of the run busy"], &link_rows);
    percentile_table(
        page,
        "TTFT part",
        &[
            ("queue (arrival to admission)", "ttft_queue"),
            ("load (from tiers)", "ttft_load"),
            ("prefill (the rest)", "ttft_prefill"),
        ],
        f,
    );
}

/// A table of `(label, metric)` rows with the metric's `_p50` and `_p99`
/// in milliseconds (`-` where it has none).
fn percentile_table(page: &mut Page, what: &str, rows: &[(&str, &str)], f: &dyn Fn(&str) -> f64) {
    let ms = |k: &str| {
        let v = f(k);
        if v.is_finite() {
            format!("{:.1}", v * 1e3)
        } else {
            "-".to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, k)| {
            vec![
                label.to_string(),
                ms(&format!("{k}_p50")),
                ms(&format!("{k}_p99")),
            ]
        })
        .collect();
    page.table(&[what, "p50 (ms)", "p99 (ms)"], &rows);
}

/// The "Disaggregation" section of a disaggregated run: TTFT's four parts,
/// the transfers and their links, decode-side stalls and each pool; `f`
/// reads a metric.
fn disagg_section(page: &mut Page, f: &dyn Fn(&str) -> f64) {
    page.h2("disaggregation", "Disaggregation");
    page.p(&format!(
        "{} GPUs in two pools; goodput {} requests/s per GPU. {} GB of KV moved from the \
         prefill to the decode pool; the KV links were busy {} of the run on average, {} at \
         the busiest. {} of requests waited for room on their decode replica.",
        num(f("gpus")),
        num(f("goodput_per_gpu")),
        num(f("kv_transfer_bytes") / 1e9),
        pct(f("kv_link_util")),
        pct(f("kv_link_util_max")),
        pct(f("decode_stall_rate"))
    ));
    percentile_table(
        page,
        "part",
        &[
            ("queue (arrival to prefill admission)", "ttft_queue"),
            ("prefill", "ttft_prefill"),
            ("transfer (prefill end to KV received)", "ttft_transfer"),
            ("first step (KV received to first token)", "ttft_first_step"),
            ("one transfer on the link", "kv_transfer"),
            ("wait for room on the decode replica", "decode_stall"),
        ],
        f,
    );
    let pools: Vec<Vec<String>> = ["prefill", "decode"]
        .iter()
        .map(|p| {
            vec![
                p.to_string(),
                num(f(&format!("{p}_batch_mean"))),
                pct(f(&format!("{p}_kv_mean_frac"))),
                pct(f(&format!("{p}_kv_peak_frac"))),
                pct(f(&format!("{p}_oom_rate"))),
            ]
        })
        .collect();
    page.table(
        &["pool", "batch mean", "KV mean", "KV peak", "OOM rate"],
        &pools,
    );
}

/// The sweep.csv columns the points table shows (those present).
const SWEEP_METRICS: [&str; 9] = [
    "oom_rate",
    "preemptions",
    "batch_peak",
    "batch_ceiling",
    "ttft_p99",
    "tpot_p99",
    "throughput_tok_s",
    "goodput_rps",
    "kv_peak_frac",
];

fn sweep_page(meta: &Meta, csv: &[u8]) -> Result<String, Error> {
    let table = Table::parse(Path::new("sweep.csv"), csv)?;
    let headers = table.headers().to_vec();
    let axes: Vec<usize> = match headers.iter().position(|h| h == "replicates") {
        Some(r) => (1..r).collect(),
        None => Vec::new(),
    };
    let mut page = Page::new(meta, &format!("kvsim sweep: {}", meta.name));
    page.h2("points", "Points");
    let shown: Vec<(usize, &str)> = SWEEP_METRICS
        .iter()
        .filter_map(|m| table.column(m).map(|c| (c, *m)))
        .collect();
    let bounds: Vec<Option<usize>> = BOUNDS.iter().map(|(k, _)| table.column(k)).collect();
    let mut header: Vec<&str> = vec!["point"];
    header.extend(axes.iter().map(|&a| headers[a].as_str()));
    header.extend(shown.iter().map(|(_, m)| *m));
    header.push("batch bound by");
    let cols: Vec<Vec<String>> = (0..headers.len())
        .map(|c| table.texts(c).map(str::to_string).collect())
        .collect();
    let rows: Vec<Vec<String>> = (0..table.len())
        .map(|i| {
            let mut r = vec![cols[0][i].clone()];
            r.extend(axes.iter().map(|&a| cols[a][i].clone()));
            r.extend(shown.iter().map(|&(c, _)| {
                cols[c][i]
                    .parse::<f64>()
                    .map(num)
                    .unwrap_or_else(|_| cols[c][i].clone())
            }));
            let best = bounds
                .iter()
                .zip(BOUNDS)
                .filter_map(|(c, (_, label))| {
                    c.and_then(|c| cols[c][i].parse::<f64>().ok())
                        .map(|v| (v, label))
                })
                .max_by(|a, b| a.0.total_cmp(&b.0));
            r.push(
                best.map(|(v, l)| format!("{l} {}", pct(v)))
                    .unwrap_or_default(),
            );
            r
        })
        .collect();
    page.table_of("grid", &header, &rows);
    page.p(
        "batch bound by: the limit that held the batch for the largest share of busy time \
         (batch_bound_* columns of sweep.csv). Every metric column is in sweep.csv.",
    );
    page.h2("charts", "Charts");
    page.charts(table);
    page.config(meta);
    page.validation(meta);
    page.warnings(meta);
    Ok(page.finish())
}

/// The plan.csv columns the ranking shows after the candidate's axes.
const PLAN_COLUMNS: [&str; 12] = [
    "gpu",
    "tp",
    "rate_per_replica",
    "replicas",
    "gpus",
    "usd_per_hour",
    "usd_per_hour_tiers",
    "usd_per_m_output_tokens",
    "ttft_p99",
    "tpot_p99",
    "pareto",
    "cluster_verified",
];

fn plan_page(meta: &Meta, csv: &[u8]) -> Result<String, Error> {
    let table = Table::parse(Path::new("plan.csv"), csv)?;
    let headers = table.headers().to_vec();
    let cols: Vec<Vec<String>> = (0..headers.len())
        .map(|c| table.texts(c).map(str::to_string).collect())
        .collect();
    let axes: Vec<usize> = match headers.iter().position(|h| h == "gpu") {
        Some(g) => (1..g).collect(),
        None => Vec::new(),
    };
    let mut page = Page::new(meta, &format!("kvsim plan: {}", meta.name));
    if let Some(o) = &meta.objectives {
        page.p(&format!("Target: {o}."));
    }
    page.h2("ranking", "Ranking");
    let shown: Vec<usize> = PLAN_COLUMNS
        .iter()
        .filter_map(|c| table.column(c))
        .collect();
    let note = table.column("note");
    let mut header: Vec<&str> = vec!["rank"];
    header.extend(axes.iter().map(|&a| headers[a].as_str()));
    header.extend(shown.iter().map(|&c| headers[c].as_str()));
    header.push("note");
    let rows: Vec<Vec<String>> = (0..table.len())
        .map(|i| {
            let mut r = vec![cols[0][i].clone()];
            r.extend(axes.iter().map(|&a| cols[a][i].clone()));
            r.extend(shown.iter().map(|&c| {
                cols[c][i]
                    .parse::<f64>()
                    .map(num)
                    .unwrap_or_else(|_| cols[c][i].clone())
            }));
            r.push(note.map(|n| cols[n][i].clone()).unwrap_or_default());
            r
        })
        .collect();
    page.table_of("grid", &header, &rows);
    page.h2("charts", "Charts");
    let cell = |name: &str, i: usize| table.column(name).map(|c| cols[c][i].as_str());
    let points: Vec<crate::plan::CostPoint> = (0..table.len())
        .filter_map(|i| {
            Some(crate::plan::CostPoint {
                gpu: cell("gpu", i)?.to_string(),
                detail: crate::plan::series_detail(
                    axes.iter()
                        .map(|&a| (headers[a].as_str(), cols[a][i].as_str())),
                ),
                rate: cell("rate_per_replica", i)?.parse().ok()?,
                cost: cell("usd_per_m_output_tokens", i)?.parse().ok()?,
                pareto: cell("pareto", i)? == "true",
            })
        })
        .collect();
    let target = (0..table.len())
        .find_map(|i| cell("target_rate", i)?.parse().ok())
        .unwrap_or(f64::NAN);
    match crate::plan::cost_figure(&points, target) {
        Some(fig) => {
            let svg = crate::report::plot::render(&fig, Format::Svg)
                .map_err(|e| Error::io("plan.csv", e))?;
            page.svg("plan", &svg);
        }
        None => page.p("No feasible, priced candidate: no cost chart."),
    }
    page.config(meta);
    page.validation(meta);
    page.warnings(meta);
    Ok(page.finish())
}
