//! `kvsim kv` (the KV arithmetic of one model shape) and `kvsim catalog`
//! (the built-in models, GPUs and engine presets).

use serde::Serialize;

use super::{CatalogArgs, CatalogKind, KvArgs, say};
use crate::cache::{KvGroup, paged_held_bytes};
use crate::error::Error;
use crate::hardware::budget::kv_layout;
use crate::model::{Dtype, LayerKind, Model};
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
    /// KV bytes per token over every layer group (recurrent state excluded).
    bytes_per_token: u64,
    /// Recurrent state per sequence, bytes (0 without recurrent layers).
    state_bytes_per_sequence: u64,
    /// What one sequence of `seq_len` tokens keeps, bytes (exact).
    bytes_per_sequence: u64,
    /// What a paged cache of `block_size`-token blocks holds for it at
    /// `seq_len` tokens (each group's blocks over what it keeps, the last
    /// one filled or not), bytes: what `kvsim run` holds.
    paged_bytes_per_sequence: u64,
    /// Tokens per block for `paged_bytes_per_sequence`.
    block_size: u32,
    total_bytes: u64,
    total_gib: f64,
    double_seq_len_bytes: u64,
    double_batch_bytes: u64,
    /// The layer groups, each with what it keeps at `seq_len`.
    groups: Vec<KvGroupReport>,
    /// What the windows, chunks and recurrent state save against every
    /// attention layer keeping every token (absent for a uniform model).
    #[serde(skip_serializing_if = "Option::is_none")]
    savings: Option<KvSavings>,
}

/// One layer group in `kvsim kv`'s report.
#[derive(Debug, Serialize)]
struct KvGroupReport {
    /// `full`, `sliding`, `chunked`, `mla`, `recurrent` or `none`.
    kind: &'static str,
    /// Words: `sliding 1024, 16 x 128`.
    shape: String,
    layers: u32,
    /// Tokens the group keeps: `all`, `window W`, `chunk C`.
    keeps: String,
    bytes_per_token: u64,
    /// Tokens of a `seq_len`-token sequence it keeps.
    kept_tokens: u64,
    /// Recurrent state per sequence, bytes.
    state_bytes: u64,
    /// What one sequence holds in this group, bytes.
    bytes_per_sequence: u64,
}

/// What a non-uniform layout saves in `kvsim kv`'s report.
#[derive(Debug, Serialize)]
struct KvSavings {
    /// What the batch would hold if every sliding, chunked and recurrent
    /// layer were a full-attention layer keeping every token (recurrent
    /// layers with the model's `kv_heads` x `head_dim`), bytes.
    all_global_bytes: u64,
    /// `all_global_bytes - total_bytes`.
    saved_bytes: u64,
}

fn shape_from_args(a: &KvArgs) -> Result<Model, Error> {
    if let Some(path) = &a.hf_config {
        return crate::scenario::import_hf_config(path);
    }
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
                expert_dtype: None,
                groups: Vec::new(),
            })
        }
        _ => Err(Error::Usage(
            "give --model NAME, --hf-config FILE, or all of --layers, --kv-heads and --head-dim"
                .into(),
        )),
    }
}

pub(super) fn kv(a: &KvArgs) -> Result<(), Error> {
    let (model, r) = kv_report(a)?;
    if a.json {
        say(serde_json::to_string_pretty(&r).expect("a plain struct serializes"))?;
        return Ok(());
    }
    say(report::print_kv_report(&kv_rows(&model, &r)))?;
    Ok(())
}

/// What `kvsim kv --json` prints for `a` (its `json` field aside), as a
/// JSON value: the KV bytes of the shape at the sequence length and batch,
/// per layer group, and what doubling either costs.
pub fn kv_json(a: &KvArgs) -> Result<serde_json::Value, Error> {
    let (_, r) = kv_report(a)?;
    Ok(serde_json::to_value(&r).expect("a plain struct serializes"))
}

/// The model `a` names and the numbers `kvsim kv` reports about it.
fn kv_report(a: &KvArgs) -> Result<(Model, KvReport), Error> {
    let model = shape_from_args(a)?;
    let overflow = || {
        Error::Usage(format!(
            "{} tokens x {} sequences overflows 64-bit bytes",
            a.seq_len, a.batch
        ))
    };
    if model.checked_kv_bytes_per_token(a.kv_dtype).is_none()
        || model.state_bytes_per_seq().is_none()
    {
        return Err(Error::Usage(format!(
            "{} layers x 2 x {} KV heads x {} head_dim overflows 64-bit bytes per token",
            model.layers, model.kv_heads, model.head_dim
        )));
    }
    // The layouts' arithmetic takes lengths of at most u32::MAX tokens, as
    // every sequence in a run has; doubling must stay within that too.
    let len = u32::try_from(a.seq_len)
        .ok()
        .filter(|l| l.checked_mul(2).is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--seq-len {} exceeds the longest sequence kvsim models ({} tokens)",
                a.seq_len,
                u32::MAX / 2
            ))
        })?;
    // The same per-layer-group layout the simulator's caches use (one GPU's
    // view is the replica's: tp = 1), so a model's own sliding window keeps
    // its windowed layers at `window` tokens here as in `kvsim run`.
    let layout = kv_layout(&model, a.kv_dtype, 1, None);
    let bpt = layout.bytes_per_token();
    let state = layout.state_bytes();
    let per_seq = layout.checked_kept_bytes(len).ok_or_else(overflow)?;
    let total = per_seq.checked_mul(a.batch).ok_or_else(overflow)?;
    let double_seq = layout
        .checked_kept_bytes(2 * len)
        .and_then(|b| b.checked_mul(a.batch))
        .ok_or_else(overflow)?;
    let double_batch = total.checked_mul(2).ok_or_else(overflow)?;
    let block_size = a.block_size;
    let paged = paged_held_bytes(&layout, block_size, len).ok_or_else(overflow)?;
    // Every model group, cache-less ones included (the layout drops those,
    // so its groups do not line up with the model's one to one).
    let groups: Vec<KvGroupReport> = model
        .layer_groups()
        .iter()
        .map(|m| {
            let g = KvGroup {
                bytes_per_token: m
                    .bytes_per_token(a.kv_dtype, 1)
                    .expect("checked above: the total fits 64 bits"),
                span: m.span(),
                layers: m.layers,
                state_bytes: m.state_bytes().expect("checked above"),
                flops_per_pair: 0,
            };
            let kept = if g.bytes_per_token > 0 {
                g.kept_tokens(len)
            } else {
                0
            };
            KvGroupReport {
                kind: m.kind_name(),
                shape: m.describe(),
                layers: m.layers,
                keeps: if g.bytes_per_token > 0 {
                    g.span.describe()
                } else {
                    "no tokens".into()
                },
                bytes_per_token: g.bytes_per_token,
                kept_tokens: u64::from(kept),
                state_bytes: g.state_bytes,
                bytes_per_sequence: u64::from(kept) * g.bytes_per_token
                    + if len > 0 { g.state_bytes } else { 0 },
            }
        })
        .collect();
    let savings = if model.is_uniform() {
        None
    } else {
        let global = kv_layout(&model.all_global(), a.kv_dtype, 1, None);
        let all = global
            .checked_kept_bytes(len)
            .and_then(|b| b.checked_mul(a.batch))
            .ok_or_else(overflow)?;
        Some(KvSavings {
            all_global_bytes: all,
            saved_bytes: all.saturating_sub(total),
        })
    };
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
        state_bytes_per_sequence: state,
        bytes_per_sequence: per_seq,
        paged_bytes_per_sequence: paged,
        block_size,
        total_bytes: total,
        total_gib: gib(total),
        double_seq_len_bytes: double_seq,
        double_batch_bytes: double_batch,
        groups,
        savings,
    };
    Ok((model, r))
}

/// The rows of `kvsim kv`'s table.
fn kv_rows(model: &Model, r: &KvReport) -> Vec<(String, String)> {
    let bytes = |b: u64| format!("{} bytes ({:.3} GiB)", group(b), gib(b));
    let ratio = |x: u64| {
        if r.total_bytes == 0 {
            String::new()
        } else {
            format!("{:.2}x", x as f64 / r.total_bytes as f64)
        }
    };
    let mut rows = vec![("model".to_string(), model.name.clone())];
    if model.is_uniform() {
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
        rows.push(("shape".to_string(), format!("{shape}, {}", r.kv_dtype)));
    } else {
        rows.push((
            "shape".to_string(),
            format!(
                "{} layers in {} groups, {}",
                model.layers,
                r.groups.len(),
                r.kv_dtype
            ),
        ));
        for g in &r.groups {
            let what = if g.state_bytes > 0 {
                format!("state {} B/seq", group(g.state_bytes))
            } else if g.bytes_per_token == 0 {
                "nothing".to_string()
            } else {
                format!(
                    "{} B/token x {}",
                    group(g.bytes_per_token),
                    group(g.kept_tokens)
                )
            };
            rows.push((
                format!("{} x {}", g.layers, g.shape),
                format!("{what} = {}", group(g.bytes_per_sequence)),
            ));
        }
    }
    rows.push((
        "bytes per token".to_string(),
        format!(
            "{} ({:.1} KiB)",
            group(r.bytes_per_token),
            r.bytes_per_token as f64 / 1024.0
        ),
    ));
    if r.state_bytes_per_sequence > 0 {
        rows.push((
            "state per sequence".to_string(),
            format!(
                "{} ({:.1} MiB)",
                group(r.state_bytes_per_sequence),
                r.state_bytes_per_sequence as f64 / (1024.0 * 1024.0)
            ),
        ));
    }
    rows.extend([
        (
            format!("1 sequence of {} tokens", group(r.seq_len)),
            bytes(r.bytes_per_sequence),
        ),
        (format!("x batch {}", r.batch), bytes(r.total_bytes)),
    ]);
    if let Some(w) = &r.savings {
        rows.push((
            "vs all layers global".to_string(),
            format!(
                "saves {:.3} of {:.3} GiB ({:.0} %)",
                gib(w.saved_bytes),
                gib(w.all_global_bytes),
                100.0 * w.saved_bytes as f64 / w.all_global_bytes.max(1) as f64
            ),
        ));
    }
    let (seq_note, batch_note) = if model.is_uniform() {
        ("2x".to_string(), "2x again".to_string())
    } else {
        (
            ratio(r.double_seq_len_bytes),
            format!("{} again", ratio(r.double_batch_bytes)),
        )
    };
    rows.extend([
        (
            "double the sequence length".to_string(),
            format!("{}: {seq_note}", bytes(r.double_seq_len_bytes)),
        ),
        (
            "double the batch".to_string(),
            format!("{}: {batch_note}", bytes(r.double_batch_bytes)),
        ),
    ]);
    rows
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
        let doc = catalog_json(a.kind);
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
            if !m.groups.is_empty() {
                let kinds: Vec<String> = m
                    .groups
                    .iter()
                    .filter(|g| !matches!(g.kind, LayerKind::Full { .. }))
                    .map(|g| match g.kind {
                        LayerKind::Sliding { window, .. } => {
                            format!("window {window} on {}/{}", g.layers, m.layers)
                        }
                        LayerKind::Chunked { chunk, .. } => {
                            format!("chunk {chunk} on {}/{}", g.layers, m.layers)
                        }
                        _ => format!("{} on {}/{}", g.kind_name(), g.layers, m.layers),
                    })
                    .collect();
                notes.extend(kinds);
                if let Some(state) = m.state_bytes_per_seq().filter(|&b| b > 0) {
                    notes.push(format!("state {:.1} MiB/seq", state as f64 / 1048576.0));
                }
            }
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

/// What `kvsim catalog --json` prints: the built-in models, GPUs and engine
/// presets (those of `kind`, or all), each entry's fields then its `source`.
pub fn catalog_json(kind: Option<CatalogKind>) -> serde_json::Value {
    let show = |k: CatalogKind| kind.is_none() || kind == Some(k);
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
    serde_json::Value::Object(doc)
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
        let flat = |h: &str| h.replace("\n/", "/").replace('\n', " ");
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
