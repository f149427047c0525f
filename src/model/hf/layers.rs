//! Which layer is which, and the layer groups the counts make. A family's
//! reader counts its layers by kind (full, sliding window, chunked, MLA,
//! recurrent, none) from its fields (`layer_types`, `sliding_window`, and the
//! family's own patterns) into [`Layers`]; [`Reader::shape`] turns the counts
//! into the model's uniform fields where they say it (all full; full and
//! sliding alike; all MLA), else one [`LayerGroup`] per kind. A window at
//! least as long as the context keeps every token, so such layers are full.

use super::Reader;
use super::base::Base;
use crate::error::SpecError;
use crate::model::{LayerGroup, LayerKind, Model, SlidingWindow};

/// How many layers of each kind, and each kind's parameters.
#[derive(Clone, Debug, Default)]
pub(super) struct Layers {
    pub(super) full: u32,
    pub(super) sliding: u32,
    pub(super) chunked: u32,
    pub(super) mla: u32,
    pub(super) recurrent: u32,
    pub(super) none: u32,
    /// The sliding layers' window, and the field it came from.
    pub(super) window: Option<(u32, String)>,
    /// The chunked layers' chunk, and the field it came from.
    pub(super) chunk: Option<(u32, String)>,
    /// The recurrent layers' state bytes per sequence, and the fields.
    pub(super) state: Option<(u64, String)>,
    /// The field that said which layer is which.
    pub(super) pattern: String,
}

impl Reader<'_> {
    /// Counts of each `layer_types` entry among `allowed` (in order), or
    /// `None` when the field is absent.
    pub(super) fn layer_types(
        &mut self,
        layers: u32,
        allowed: &[&str],
    ) -> Result<Option<Vec<u32>>, SpecError> {
        let t = self.text;
        let Some(types) = t.opt_str_list("layer_types")? else {
            return Ok(None);
        };
        if types.len() != layers as usize {
            return Err(SpecError::new(
                t.key("layer_types"),
                format!(
                    "has {} entries but num_hidden_layers is {layers}: one per layer",
                    types.len()
                ),
            ));
        }
        let mut counts = vec![0u32; allowed.len()];
        for (i, ty) in types.iter().enumerate() {
            let Some(k) = allowed.iter().position(|a| a == ty) else {
                return Err(SpecError::new(
                    format!("{}[{i}]", t.key("layer_types")),
                    format!(
                        "`{}` is not a layer type of this family ({})",
                        crate::input::quote(ty),
                        allowed.join(", ")
                    ),
                ));
            };
            counts[k] += 1;
        }
        Ok(Some(counts))
    }

    /// The sliding window on the layers that have one: `sliding_window`,
    /// `None` if null or absent.
    fn window(&self) -> Result<Option<(u32, String)>, SpecError> {
        let t = self.text;
        Ok(t.opt_u32("sliding_window")?
            .map(|w| (w, t.key("sliding_window"))))
    }

    /// The window of a family whose sliding layers need one:
    /// `sliding_window`, an error if null or absent.
    pub(super) fn sliding_window(&self) -> Result<(u32, String), SpecError> {
        self.window()?
            .ok_or_else(|| self.text.missing("sliding_window"))
    }

    /// Full and sliding layers as `layer_types` lists them, `None` when the
    /// field is absent.
    pub(super) fn full_and_sliding(&mut self, layers: u32) -> Result<Option<Layers>, SpecError> {
        let t = self.text;
        let counts = self.layer_types(layers, &["full_attention", "sliding_attention"])?;
        Ok(counts.map(|c| Layers {
            full: c[0],
            sliding: c[1],
            pattern: t.key("layer_types"),
            ..Layers::default()
        }))
    }

    /// Every layer windowed by `sliding_window`, or every layer full when it
    /// is null or absent (Mistral, Mixtral, Phi-3).
    pub(super) fn windowed_or_full(&self, layers: u32) -> Result<Layers, SpecError> {
        let t = self.text;
        let mut l = Layers {
            window: self.window()?,
            ..Layers::default()
        };
        if l.window.is_some() {
            l.sliding = layers;
            l.pattern = t.key("sliding_window");
        } else {
            l.full = layers;
        }
        Ok(l)
    }

    /// Sets `model`'s layer structure from the counts: the uniform shape's
    /// fields where they say it (all full; full and sliding alike; all MLA),
    /// else one group per kind.
    pub(super) fn shape(
        &mut self,
        model: &mut Model,
        mut l: Layers,
        b: &Base,
    ) -> Result<(), SpecError> {
        // A window at least as long as the context keeps every token.
        if let Some((w, _)) = &l.window {
            if *w >= model.max_model_len {
                l.full += l.sliding;
                l.sliding = 0;
            }
        }
        let total = [l.full, l.sliding, l.chunked, l.mla, l.recurrent, l.none]
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>();
        debug_assert_eq!(total, u64::from(b.layers), "every layer has one kind");
        let window = l.window.as_ref().map(|(w, _)| *w);
        let uniform = l.chunked == 0 && l.recurrent == 0 && l.none == 0;
        if uniform && l.mla == 0 {
            if l.sliding > 0 {
                let (w, key) = l.window.clone().expect("sliding layers have a window");
                model.sliding_window = Some(SlidingWindow {
                    window: w,
                    layers: l.sliding,
                });
                self.source("sliding_window.window", key);
                self.source("sliding_window.layers", l.pattern.clone());
            }
            return Ok(());
        }
        if uniform && l.mla == b.layers {
            return Ok(());
        }
        let (kv_heads, head_dim) = (b.kv_heads, b.head_dim);
        let mut groups = Vec::new();
        let mut push = |r: &mut Self, layers: u32, kind: LayerKind, extra: &[(&str, String)]| {
            if layers == 0 {
                return;
            }
            let i = groups.len();
            groups.push(LayerGroup {
                layers,
                kind,
                kv_dtype: None,
            });
            r.source(&format!("groups[{i}].layers"), l.pattern.clone());
            for (k, v) in extra {
                r.source(&format!("groups[{i}].{k}"), v.clone());
            }
            if matches!(
                kind,
                LayerKind::Full { .. } | LayerKind::Sliding { .. } | LayerKind::Chunked { .. }
            ) {
                let kv = r.source_of("kv_heads");
                let hd = r.source_of("head_dim");
                if let Some(kv) = kv {
                    r.source(&format!("groups[{i}].kv_heads"), kv);
                }
                if let Some(hd) = hd {
                    r.source(&format!("groups[{i}].head_dim"), hd);
                }
            }
        };
        push(self, l.full, LayerKind::Full { kv_heads, head_dim }, &[]);
        if let Some(w) = window {
            let key = l
                .window
                .as_ref()
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            push(
                self,
                l.sliding,
                LayerKind::Sliding {
                    kv_heads,
                    head_dim,
                    window: w,
                },
                &[("window", key)],
            );
        }
        if let Some((c, key)) = l.chunk.clone() {
            push(
                self,
                l.chunked,
                LayerKind::Chunked {
                    kv_heads,
                    head_dim,
                    chunk: c,
                },
                &[("chunk", key)],
            );
        }
        if let Some(m) = model.mla {
            push(
                self,
                l.mla,
                LayerKind::Mla {
                    kv_lora_rank: m.kv_lora_rank,
                    qk_rope_dim: m.qk_rope_dim,
                },
                &[],
            );
        }
        if let Some((s, key)) = l.state.clone() {
            push(
                self,
                l.recurrent,
                LayerKind::Recurrent { state_bytes: s },
                &[("state_bytes", key)],
            );
        }
        push(self, l.none, LayerKind::None, &[]);
        model.groups = groups;
        model.mla = None;
        model.sliding_window = None;
        Ok(())
    }
}
