//! gemma-2 and gemma-3: which layers are local (sliding window) and which
//! global, by transformers' `Gemma2Config` and `Gemma3TextConfig` where a
//! config has no `layer_types`. Their shape is otherwise a Llama's
//! (`llama.rs`, with gemma's extra norms); the defaults their released
//! configs rely on (gemma-3's `vocab_size` and `max_position_embeddings`,
//! tied embeddings, a context already scaled by RoPE) are applied where those
//! fields are read, in `base.rs`.

use super::json::at_least_one;
use super::layers::Layers;
use super::{Family, Reader};
use crate::error::SpecError;

impl Reader<'_> {
    /// The local and global layers of gemma-2 or gemma-3 (`layers` in all),
    /// and their window (`sliding_window`, required).
    pub(super) fn gemma_layers(&mut self, layers: u32) -> Result<Layers, SpecError> {
        let t = self.text;
        let mut l = match self.full_and_sliding(layers)? {
            Some(l) => l,
            // transformers' Gemma2: layer i is local (windowed) when i is
            // even, global when odd.
            None if self.family == Family::Gemma2 => Layers {
                sliding: layers.div_ceil(2),
                full: layers / 2,
                pattern: "(gemma-2: even layers local, odd layers global)".into(),
                ..Layers::default()
            },
            None => {
                // Gemma3TextConfig: layer i is global when (i + 1) is a
                // multiple of sliding_window_pattern (default 6: five local
                // layers, then one global).
                let pattern = at_least_one(
                    t.key("sliding_window_pattern"),
                    t.opt_u32("sliding_window_pattern")?.unwrap_or(6),
                )?;
                Layers {
                    full: layers / pattern,
                    sliding: layers - layers / pattern,
                    pattern: format!("{} (default 6)", t.key("sliding_window_pattern")),
                    ..Layers::default()
                }
            }
        };
        l.window = Some(self.sliding_window()?);
        Ok(l)
    }
}
