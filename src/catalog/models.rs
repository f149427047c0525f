//! Built-in model shapes.
//!
//! Every number comes from the model's Hugging Face `config.json` (the fields
//! `num_hidden_layers`, `hidden_size`, `num_attention_heads`,
//! `num_key_value_heads`, `head_dim`, `vocab_size`, `max_position_embeddings`,
//! `sliding_window`, `intermediate_size`) or from its model card / paper. Each
//! entry's comment names the source and says how any derived number was
//! derived.
//!
//! Parameter counts: where the card gives only a rounded figure ("8B"), the
//! exact count is recomputed from `config.json` (embedding + per-layer
//! projections, MLP, norms, biases; untied `lm_head` where the config says so)
//! and the comment shows the sum; the recomputed counts agree with the rounded
//! card figures and, where Hugging Face shows an exact safetensors count, with
//! that count.

use super::ModelEntry;
use crate::model::{Dtype, Mla, Model, Moe, SlidingWindow};

/// Every built-in model, in catalog order.
pub(super) fn all() -> Vec<ModelEntry> {
    vec![
        // https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json:
        // 32 layers, hidden 4096, 32 heads, 32 KV heads (MHA), head_dim
        // 4096/32 = 128, vocab 32000, max_position_embeddings 4096,
        // intermediate 11008, torch_dtype float16 (so vLLM's default
        // dtype=auto serves it in fp16; the same holds for 13B and 70B).
        // Params: 2*32000*4096 (embed + lm_head) + 32*(4*4096^2 + 3*4096*11008
        // + 2*4096) + 4096 = 6,738,415,616 (Llama 2 paper, arXiv:2307.09288:
        // "7B"; HF safetensors: 6.74B).
        ModelEntry {
            model: Model {
                name: "llama-2-7b".into(),
                params: 6_738_415_616,
                active_params: 6_738_415_616,
                layers: 32,
                hidden: 4096,
                heads: 32,
                kv_heads: 32,
                head_dim: 128,
                intermediate: 11_008,
                vocab: 32_000,
                max_model_len: 4096,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Fp16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-2-7b-hf config.json; Llama 2 paper arXiv:2307.09288",
        },
        // https://huggingface.co/meta-llama/Llama-2-13b-hf/blob/main/config.json:
        // 40 layers, hidden 5120, 40 heads, 40 KV heads (MHA), head_dim 128,
        // vocab 32000, max_position_embeddings 4096, intermediate 13824,
        // float16.
        // Params: 2*32000*5120 + 40*(4*5120^2 + 3*5120*13824 + 2*5120) + 5120
        // = 13,015,864,320 (paper: "13B").
        ModelEntry {
            model: Model {
                name: "llama-2-13b".into(),
                params: 13_015_864_320,
                active_params: 13_015_864_320,
                layers: 40,
                hidden: 5120,
                heads: 40,
                kv_heads: 40,
                head_dim: 128,
                intermediate: 13_824,
                vocab: 32_000,
                max_model_len: 4096,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Fp16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-2-13b-hf config.json; Llama 2 paper arXiv:2307.09288",
        },
        // https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json:
        // 80 layers, hidden 8192, 64 heads, 8 KV heads (GQA), head_dim 128,
        // vocab 32000, max_position_embeddings 4096, intermediate 28672,
        // float16.
        // Params: 2*32000*8192 + 80*(2*8192^2 + 2*8192*1024 + 3*8192*28672
        // + 2*8192) + 8192 = 68,976,648,192 (paper: "70B"; HF: 69.0B).
        ModelEntry {
            model: Model {
                name: "llama-2-70b".into(),
                params: 68_976_648_192,
                active_params: 68_976_648_192,
                layers: 80,
                hidden: 8192,
                heads: 64,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 28_672,
                vocab: 32_000,
                max_model_len: 4096,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Fp16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-2-70b-hf config.json; Llama 2 paper arXiv:2307.09288",
        },
        // https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json:
        // 32 layers, hidden 4096, 32 heads, 8 KV heads, head_dim 128, vocab
        // 128256, max_position_embeddings 131072 (the documented 128K context),
        // intermediate 14336, bfloat16.
        // Params: 2*128256*4096 + 32*(2*4096^2 + 2*4096*1024 + 3*4096*14336
        // + 2*4096) + 4096 = 8,030,261,248 (model card: 8.03B).
        ModelEntry {
            model: Model {
                name: "llama-3.1-8b".into(),
                params: 8_030_261_248,
                active_params: 8_030_261_248,
                layers: 32,
                hidden: 4096,
                heads: 32,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 14_336,
                vocab: 128_256,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-3.1-8B config.json; Llama 3 paper arXiv:2407.21783",
        },
        // https://huggingface.co/meta-llama/Llama-3.1-70B/blob/main/config.json:
        // 80 layers, hidden 8192, 64 heads, 8 KV heads, head_dim 128, vocab
        // 128256, max_position_embeddings 131072, intermediate 28672, bfloat16.
        // Params: 2*128256*8192 + 80*(2*8192^2 + 2*8192*1024 + 3*8192*28672
        // + 2*8192) + 8192 = 70,553,706,496 (model card: 70.6B).
        ModelEntry {
            model: Model {
                name: "llama-3.1-70b".into(),
                params: 70_553_706_496,
                active_params: 70_553_706_496,
                layers: 80,
                hidden: 8192,
                heads: 64,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 28_672,
                vocab: 128_256,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-3.1-70B config.json; Llama 3 paper arXiv:2407.21783",
        },
        // https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json:
        // 126 layers, hidden 16384, 128 heads, 8 KV heads, head_dim 128, vocab
        // 128256, max_position_embeddings 131072, intermediate 53248, bfloat16.
        // KV heads: the Llama 3 paper (arXiv:2407.21783, Table 3) gives 8; an
        // early upload of the -Instruct repo (and the MP16 checkpoint) carried
        // 16 duplicated KV heads (HF discussion "why num_key_value_heads: 16",
        // meta-llama/Llama-3.1-405B-Instruct #14; Lightning-AI/litgpt#1942 notes
        // the current config says 8). The model has 8; duplicating them for
        // TP16 is a serving choice, not the architecture.
        // Params: 2*128256*16384 + 126*(2*16384^2 + 2*16384*1024
        // + 3*16384*53248 + 2*16384) + 16384 = 405,853,388,800 (card: 405B).
        ModelEntry {
            model: Model {
                name: "llama-3.1-405b".into(),
                params: 405_853_388_800,
                active_params: 405_853_388_800,
                layers: 126,
                hidden: 16_384,
                heads: 128,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 53_248,
                vocab: 128_256,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "meta-llama/Llama-3.1-405B config.json; Llama 3 paper arXiv:2407.21783 Table 3",
        },
        // https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json:
        // 32 layers, hidden 4096, 32 heads, 8 KV heads, head_dim 128, vocab
        // 32000, max_position_embeddings 32768, sliding_window 4096 (on every
        // layer: Mistral 7B paper arXiv:2310.06825, sec. 2, window W = 4096),
        // intermediate 14336, bfloat16.
        // max_model_len: 32768 is what config.json (and so vLLM) allows; the
        // paper trained with 8192-token sequences. The window bounds what is
        // cached and read, not what is accepted.
        // Params: 2*32000*4096 + 32*(2*4096^2 + 2*4096*1024 + 3*4096*14336
        // + 2*4096) + 4096 = 7,241,732,096 (card: 7.24B).
        ModelEntry {
            model: Model {
                name: "mistral-7b-v0.1".into(),
                params: 7_241_732_096,
                active_params: 7_241_732_096,
                layers: 32,
                hidden: 4096,
                heads: 32,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 14_336,
                vocab: 32_000,
                max_model_len: 32_768,
                sliding_window: Some(SlidingWindow {
                    window: 4096,
                    layers: 32,
                }),
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "mistralai/Mistral-7B-v0.1 config.json; Mistral 7B paper arXiv:2310.06825",
        },
        // https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json:
        // 32 layers, hidden 4096, 32 heads, 8 KV heads, head_dim 128, vocab
        // 32000, max_position_embeddings 32768, num_local_experts 8,
        // num_experts_per_tok 2, intermediate 14336 (per expert),
        // sliding_window null (Mixtral paper arXiv:2401.04088: 32k dense
        // context, no sliding window), bfloat16.
        // Params: 2*32000*4096 + 32*(2*4096^2 + 2*4096*1024
        // + 8*3*4096*14336 + 8*4096 (router) + 2*4096) + 4096
        // = 46,702,792,704 (paper: 47B total; HF: 46.7B).
        // Active: the same with 2 of 8 experts: 2*32000*4096 + 32*(2*4096^2
        // + 2*4096*1024 + 2*3*4096*14336 + 8*4096 + 2*4096) + 4096
        // = 12,879,925,248 (paper: "13B active", commonly quoted as 12.9B).
        ModelEntry {
            model: Model {
                name: "mixtral-8x7b".into(),
                params: 46_702_792_704,
                active_params: 12_879_925_248,
                layers: 32,
                hidden: 4096,
                heads: 32,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 14_336,
                vocab: 32_000,
                max_model_len: 32_768,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 8,
                    experts_per_token: 2,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "mistralai/Mixtral-8x7B-v0.1 config.json; Mixtral paper arXiv:2401.04088",
        },
        // https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json:
        // 28 layers, hidden 3584, 28 heads, 4 KV heads, head_dim 3584/28 = 128,
        // vocab 152064, max_position_embeddings 131072 (card: context 131,072
        // tokens), intermediate 18944, use_sliding_window false (so no window
        // although `sliding_window` is present), untied embeddings, bfloat16.
        // Params (q/k/v carry biases): 2*152064*3584 + 28*(2*3584^2 + 3584
        // + 2*3584*512 + 2*512 + 3*3584*18944 + 2*3584) + 3584
        // = 7,615,616,512 (card: 7.61B, 6.53B non-embedding).
        ModelEntry {
            model: Model {
                name: "qwen2.5-7b".into(),
                params: 7_615_616_512,
                active_params: 7_615_616_512,
                layers: 28,
                hidden: 3584,
                heads: 28,
                kv_heads: 4,
                head_dim: 128,
                intermediate: 18_944,
                vocab: 152_064,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "Qwen/Qwen2.5-7B config.json and model card; Qwen2.5 report arXiv:2412.15115",
        },
        // https://huggingface.co/Qwen/Qwen2.5-72B/blob/main/config.json:
        // 80 layers, hidden 8192, 64 heads, 8 KV heads, head_dim 128, vocab
        // 152064, max_position_embeddings 131072, intermediate 29568,
        // use_sliding_window false, bfloat16.
        // Params: 2*152064*8192 + 80*(2*8192^2 + 8192 + 2*8192*1024 + 2*1024
        // + 3*8192*29568 + 2*8192) + 8192 = 72,706,203,648 (card: 72.7B).
        ModelEntry {
            model: Model {
                name: "qwen2.5-72b".into(),
                params: 72_706_203_648,
                active_params: 72_706_203_648,
                layers: 80,
                hidden: 8192,
                heads: 64,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 29_568,
                vocab: 152_064,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "Qwen/Qwen2.5-72B config.json and model card; Qwen2.5 report arXiv:2412.15115",
        },
        // https://huggingface.co/facebook/opt-13b/blob/main/config.json:
        // 40 layers, hidden 5120, 40 heads (MHA, head_dim 128), ffn_dim 20480,
        // vocab 50272, max_position_embeddings 2048, torch_dtype float16 (the
        // OPT checkpoints are fp16; OPT paper arXiv:2205.01068).
        // Params (biases everywhere, LayerNorm weight+bias, 2048+2 learned
        // positions, lm_head tied to the embedding): 50272*5120 + 2050*5120
        // + 40*(4*(5120^2 + 5120) + 5120*20480 + 20480 + 20480*5120 + 5120
        // + 4*5120) + 2*5120 = 12,853,473,280 (paper: "13B").
        ModelEntry {
            model: Model {
                name: "opt-13b".into(),
                params: 12_853_473_280,
                active_params: 12_853_473_280,
                layers: 40,
                hidden: 5120,
                heads: 40,
                kv_heads: 40,
                head_dim: 128,
                intermediate: 20_480,
                vocab: 50_272,
                max_model_len: 2048,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Fp16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "facebook/opt-13b config.json; OPT paper arXiv:2205.01068",
        },
        // https://huggingface.co/tiiuae/falcon-7b/blob/main/config.json:
        // 32 layers (n_layer), hidden 4544, 71 heads (n_head), head_dim
        // 4544/71 = 64, multi_query true (one shared KV head), vocab 65024,
        // parallel attention, 4x MLP (4*4544 = 18176), torch_dtype bfloat16.
        // The card says the model was trained in bfloat16 and the original
        // config.json says "bfloat16", so the weights are bf16 here (not fp16).
        // Context: 2048 tokens (model card; later FalconConfig default
        // max_position_embeddings 2048).
        // Params (no biases, one LayerNorm per parallel block, tied lm_head):
        // 65024*4544 + 32*(4544*(4544 + 2*64) + 4544^2 + 2*4544*18176
        // + 2*4544) + 2*4544 = 6,921,720,704 (HF: 6.92B; card: "7B").
        ModelEntry {
            model: Model {
                name: "falcon-7b".into(),
                params: 6_921_720_704,
                active_params: 6_921_720_704,
                layers: 32,
                hidden: 4544,
                heads: 71,
                kv_heads: 1,
                head_dim: 64,
                intermediate: 18_176,
                vocab: 65_024,
                max_model_len: 2048,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "tiiuae/falcon-7b config.json and model card; Falcon paper arXiv:2311.16867",
        },
        // https://huggingface.co/google/gemma-2-9b/blob/main/config.json:
        // 42 layers, hidden 3584, 16 heads, 8 KV heads, head_dim 256 (explicit
        // in config; 16*256 = 4096 != hidden), vocab 256000,
        // max_position_embeddings 8192, sliding_window 4096, intermediate
        // 14336, bfloat16. Gemma 2 report (arXiv:2408.00118, sec. 2):
        // local sliding-window (4096) and global (8192) attention alternate
        // layer by layer, so 21 of the 42 layers use the window.
        // Params (4 RMSNorms per layer, tied lm_head): 256000*3584
        // + 42*(3584*4096 + 2*3584*2048 + 4096*3584 + 3*3584*14336 + 4*3584)
        // + 3584 = 9,241,705,984 (card: 9.24B).
        ModelEntry {
            model: Model {
                name: "gemma-2-9b".into(),
                params: 9_241_705_984,
                active_params: 9_241_705_984,
                layers: 42,
                hidden: 3584,
                heads: 16,
                kv_heads: 8,
                head_dim: 256,
                intermediate: 14_336,
                vocab: 256_000,
                max_model_len: 8192,
                sliding_window: Some(SlidingWindow {
                    window: 4096,
                    layers: 21,
                }),
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "google/gemma-2-9b config.json; Gemma 2 report arXiv:2408.00118",
        },
        // https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json:
        // 61 layers (first_k_dense_replace 3 dense, 58 MoE), hidden 7168,
        // 128 heads, num_key_value_heads 128, kv_lora_rank 512,
        // qk_rope_head_dim 64, qk_nope_head_dim 128, v_head_dim 128,
        // q_lora_rank 1536, vocab 129280, max_position_embeddings 163840 (YaRN
        // factor 40 over 4096; the paper advertises 128K), n_routed_experts
        // 256, num_experts_per_tok 8, n_shared_experts 1, intermediate 18432
        // (the 3 dense layers; routed experts use moe_intermediate_size 2048),
        // quantization_config fp8 e4m3 with 128x128 block scales.
        // MLA convention here: `heads` = `kv_heads` = 128 query heads and
        // `head_dim` = v_head_dim 128 (the per-head width of the attention
        // output); the KV arithmetic ignores them because `mla` is set and
        // caches kv_lora_rank + qk_rope_dim = 576 elements per token per layer
        // (DeepSeek-V2 paper arXiv:2405.04434, sec. 2.1.3).
        // Params, recomputed from config.json: embed + lm_head 2*129280*7168;
        // attention per layer 7168*1536 + 1536 + 1536*128*192 + 7168*576 + 512
        // + 512*128*256 + 128*128*7168 = 187,107,328; norms 2*7168;
        // dense MLP 3*7168*18432; MoE layer: 256 routed + 1 shared expert of
        // 3*7168*2048, router 256*7168 + 256 bias. Total = 671,026,419,200
        // (paper arXiv:2412.19437: 671B, excluding the 14B multi-token-
        // prediction module that the HF checkpoint also ships).
        // Active per token: all but 248 of 256 routed experts per MoE layer
        // = 37,552,297,472 (paper: 37B activated).
        // weight_dtype fp8: 1 byte per parameter (the 128x128 block scales add
        // 1/4096 and the bf16 embeddings/norms are not modelled).
        ModelEntry {
            model: Model {
                name: "deepseek-v3".into(),
                params: 671_026_419_200,
                active_params: 37_552_297_472,
                layers: 61,
                hidden: 7168,
                heads: 128,
                kv_heads: 128,
                head_dim: 128,
                intermediate: 18_432,
                vocab: 129_280,
                max_model_len: 163_840,
                sliding_window: None,
                mla: Some(Mla {
                    kv_lora_rank: 512,
                    qk_rope_dim: 64,
                }),
                moe: Some(Moe {
                    experts: 256,
                    experts_per_token: 8,
                }),
                weight_dtype: Dtype::Fp8,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "deepseek-ai/DeepSeek-V3 config.json; DeepSeek-V3 report arXiv:2412.19437",
        },
    ]
}
