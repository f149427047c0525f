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
