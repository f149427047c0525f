//! `kvsim kv` (the KV arithmetic of one model shape) and `kvsim catalog`
//! (the built-in models, GPUs and engine presets).

use serde::Serialize;

use super::{CatalogArgs, CatalogKind, KvArgs, say};
use crate::error::Error;
use crate::model::{Dtype, Model, kv_bytes};
use crate::units::gib;
use crate::{catalog, report};

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

pub(super) fn kv(a: &KvArgs) -> Result<(), Error> {
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

pub(super) fn list_catalog(a: &CatalogArgs) -> Result<(), Error> {
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
        // Each entry's fields, then its `source`.
        fn with_source(entry: impl Serialize, source: &str) -> serde_json::Value {
            let mut v = serde_json::to_value(entry).expect("serializable");
            if let Some(o) = v.as_object_mut() {
                o.insert("source".into(), source.into());
            }
            v
        }
        let mut doc = serde_json::Map::new();
        if show_models {
            let models: Vec<_> = catalog::models()
                .into_iter()
                .map(|e| with_source(&e.model, e.source))
                .collect();
            doc.insert("models".into(), serde_json::Value::Array(models));
        }
        if show_gpus {
            let gpus: Vec<_> = catalog::gpus()
                .into_iter()
                .map(|e| with_source(&e.gpu, e.source))
                .collect();
            doc.insert("gpus".into(), serde_json::Value::Array(gpus));
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
    let mut out: Vec<String> = Vec::new();
    if show_models {
        let mut t = CatalogTable::new(&[
            "model",
            "layers",
            "KV B/token\n(bf16)",
            "context",
            "params",
            "active",
            "heads\n/kv",
            "head\ndim",
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
            t.row(
                vec![
                    m.name.clone(),
                    m.layers.to_string(),
                    group(m.kv_bytes_per_token(Dtype::Bf16)),
                    group(u64::from(m.max_model_len)),
                    format!("{:.1}B", m.params as f64 / 1e9),
                    format!("{:.1}B", m.active_params as f64 / 1e9),
                    format!("{}/{}", m.heads, m.kv_heads),
                    m.head_dim.to_string(),
                    notes.join("; "),
                ],
                e.source.to_string(),
            );
        }
        out.push(t.render(a.wide));
    }
    if show_gpus {
        let mut t = CatalogTable::new(&[
            "gpu",
            "memory\nGiB",
            "HBM\nTB/s",
            "bf16\nTFLOP/s",
            "fp8\nTFLOP/s",
            "mbu",
            "mfu",
            "$/h",
            "fp4\nTFLOP/s",
            "int8\nTOP/s",
            "link\nGB/s",
            "per\nlayer",
        ]);
        let peak = |p: Option<f64>| {
            p.map(|p| format!("{:.0}", p / 1e12))
                .unwrap_or_else(|| "-".into())
        };
        for e in catalog::gpus() {
            let g = &e.gpu;
            t.row(
                vec![
                    g.name.clone(),
                    format!("{:.1}", gib(g.vram_bytes)),
                    format!("{:.2}", g.hbm_bandwidth / 1e12),
                    format!("{:.0}", g.peak_flops / 1e12),
                    peak(g.peak_flops_fp8),
                    format!("{:.2}", g.efficiency.mbu),
                    format!("{:.2}", g.efficiency.mfu),
                    g.price_per_hour
                        .map(|p| format!("{p:.2}"))
                        .unwrap_or_else(|| "-".into()),
                    peak(g.peak_flops_fp4),
                    peak(g.peak_flops_int8),
                    format!("{:.0}", g.interconnect_bandwidth / 1e9),
                    format!("{:.0} us", g.efficiency.layer_overhead_s * 1e6),
                ],
                e.source.to_string(),
            );
        }
        out.push(t.render(a.wide));
    }
    if show_engines {
        let tokens = format!("tokens/step\non {ENGINE_REFERENCE_GPU}");
        let seqs = format!("max seqs\non {ENGINE_REFERENCE_GPU}");
        let mut t = CatalogTable::new(&[
            "engine",
            "KV memory rule",
            "block",
            &tokens,
            &seqs,
            "chunked\nprefill",
            "prefix\ncaching",
            "admission",
            "version",
        ]);
        for (e, d) in engine_rows() {
            t.row(
                vec![
                    e.name.name().to_string(),
                    format!("{} {}", d.memory.name(), d.memory.fraction()),
                    d.block_size.to_string(),
                    d.max_batched_tokens.to_string(),
                    d.max_num_seqs.to_string(),
                    yes_no(d.chunked_prefill),
                    yes_no(d.prefix_caching),
                    d.admission
                        .map(|a| a.name().to_string())
                        .unwrap_or_else(|| "by policy".into()),
                    e.version.to_string(),
                ],
                e.source.to_string(),
            );
        }
        out.push(t.render(a.wide));
    }
    say(out.join("\n\n"))?;
    Ok(())
}

/// A catalog table: columns in order of importance, and each row's source.
///
/// By default it fits [`report::TERMINAL_WIDTH`]: the last columns are left
/// out until it does (a line names them), and the sources follow the table as
/// a list, with a row's left-out cells beside its name. `--wide` prints every
/// column and the source as the last one, however wide.
struct CatalogTable {
    headers: Vec<String>,
    rows: Vec<(Vec<String>, String)>,
}

impl CatalogTable {
    fn new(headers: &[&str]) -> CatalogTable {
        CatalogTable {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>, source: String) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push((cells, source));
    }

    /// The first `n` columns (and the source column when `source`).
    fn table(&self, n: usize, source: bool) -> String {
        use comfy_table::Table;
        use comfy_table::presets::UTF8_FULL_CONDENSED;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        let mut header: Vec<&str> = self.headers[..n].iter().map(String::as_str).collect();
        if source {
            header.push("source");
        }
        t.set_header(header);
        for (cells, src) in &self.rows {
            let mut row: Vec<&str> = cells[..n].iter().map(String::as_str).collect();
            if source {
                row.push(src);
            }
            t.add_row(row);
        }
        t.to_string()
    }

    fn render(&self, wide: bool) -> String {
        if wide {
            return self.table(self.headers.len(), true);
        }
        let width = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let limit = usize::from(report::TERMINAL_WIDTH);
        let mut shown = self.headers.len();
        let mut text = self.table(shown, false);
        while shown > 2 && width(&text) > limit {
            shown -= 1;
            text = self.table(shown, false);
        }
        let flat = |h: &str| h.replace('\n', " ");
        if shown < self.headers.len() {
            let rest: Vec<String> = self.headers[shown..].iter().map(|h| flat(h)).collect();
            text.push_str(&format!(
                "\n{} more with --wide: {}",
                rest.len(),
                rest.join(", ")
            ));
        }
        text.push_str("\nSources:");
        for (cells, src) in &self.rows {
            let left_out: Vec<String> = self.headers[shown..]
                .iter()
                .zip(&cells[shown..])
                .filter(|(_, c)| !c.is_empty() && c.as_str() != "-")
                .map(|(h, c)| format!("{} {c}", flat(h)))
                .collect();
            let name = &cells[0];
            let entry = if left_out.is_empty() {
                format!("{name}: {src}")
            } else {
                format!("{name} ({}): {src}", left_out.join(", "))
            };
            text.push('\n');
            text.push_str(&wrap(&entry, limit, "  ", "      "));
        }
        text
    }
}

/// `text` wrapped at spaces to lines of at most `width` characters (a word
/// longer than a line stands alone), the first line after `first`, the others
/// after `rest`.
fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let fits = line.chars().count() + usize::from(!empty) + word.chars().count() <= width;
        if !empty && !fits {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines.join("\n")
}

/// The GPU `kvsim catalog engines` shows GPU-dependent engine defaults for.
const ENGINE_REFERENCE_GPU: &str = "h100-sxm";

fn yes_no(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}
