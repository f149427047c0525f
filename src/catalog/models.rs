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
use crate::model::{Dtype, LayerGroup, LayerKind, Mla, Model, Moe, SlidingWindow};

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
        // https://huggingface.co/Qwen/Qwen3-32B/blob/main/config.json:
        // num_hidden_layers 64, hidden_size 5120, num_attention_heads 64,
        // num_key_value_heads 8, head_dim 128, intermediate_size 25600,
        // vocab_size 151936, max_position_embeddings 40960 (the card: 32,768
        // native, 131,072 with YaRN), tie_word_embeddings false,
        // attention_bias false, torch_dtype bfloat16; Qwen3 adds a q_norm and
        // a k_norm of head_dim per layer.
        // Params: 2*151936*5120 (embed + lm_head) + 64*(5120*8192 +
        // 2*5120*1024 + 8192*5120 + 2*128 + 3*5120*25600 + 2*5120) + 5120 =
        // 32,762,123,264 (card: 32.8B, 31.2B non-embedding).
        ModelEntry {
            model: Model {
                name: "qwen3-32b".into(),
                params: 32_762_123_264,
                active_params: 32_762_123_264,
                layers: 64,
                hidden: 5120,
                heads: 64,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 25_600,
                vocab: 151_936,
                max_model_len: 40_960,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "Qwen/Qwen3-32B config.json and model card (32.8B)",
        },
        // https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json:
        // num_hidden_layers 48, hidden_size 2048, num_attention_heads 32,
        // num_key_value_heads 4, head_dim 128, intermediate_size 6144 (no
        // dense layer uses it: decoder_sparse_step 1, mlp_only_layers []),
        // moe_intermediate_size 768, num_experts 128, num_experts_per_tok 8,
        // vocab_size 151936, max_position_embeddings 40960,
        // tie_word_embeddings false, torch_dtype bfloat16.
        // Params: 2*151936*2048 + 48*(2048*4096 + 2*2048*512 + 4096*2048 +
        // 2*128 + 2048*128 (router) + 128*3*2048*768 + 2*2048) + 2048 =
        // 30,532,122,624; active (8 experts) 3,353,032,704 (card: 30.5B total,
        // 3.3B activated).
        ModelEntry {
            model: Model {
                name: "qwen3-30b-a3b".into(),
                params: 30_532_122_624,
                active_params: 3_353_032_704,
                layers: 48,
                hidden: 2048,
                heads: 32,
                kv_heads: 4,
                head_dim: 128,
                intermediate: 6144,
                vocab: 151_936,
                max_model_len: 40_960,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 128,
                    experts_per_token: 8,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: Vec::new(),
            },
            source: "Qwen/Qwen3-30B-A3B config.json and model card (30.5B, 3.3B activated)",
        },
        // https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json:
        // num_hidden_layers 24, hidden_size 2880, num_attention_heads 64,
        // num_key_value_heads 8, head_dim 64, intermediate_size 2880,
        // num_local_experts 32, num_experts_per_tok 4, vocab_size 201088,
        // sliding_window 128, layer_types alternating "sliding_attention" /
        // "full_attention" from layer 0 (12 of each), max_position_embeddings
        // 131072 (YaRN factor 32 over initial_context_length 4096),
        // attention_bias true, tie_word_embeddings false; quantization_config
        // mxfp4 on the MoE experts only (modules_to_not_convert: self_attn,
        // router, embed_tokens, lm_head).
        // Attention sinks: one learned logit per head per layer (64
        // parameters), which changes the softmax, not the cache.
        // Params per layer: attention 2880*4096 + 4096 + 2*(2880*512 + 512)
        // + 4096*2880 + 2880 + 64 sinks = 26,550,144; router 2880*32 + 32;
        // expert 2880*5760 + 5760 (gate_up) + 2880*2880 + 2880 (down) =
        // 24,891,840; norms 2*2880. Total = 2*201088*2880 + 24*(...) + 2880 =
        // 20,914,757,184 (model card: 20.91B); active (4 experts, embedding
        // included) 4,187,440,704 (the card's 3.61B leaves out the 579,133,440
        // input embedding).
        // Weights: bf16, experts in MXFP4 (4-bit values and one 8-bit scale
        // per 32: 4.25 bits), modelled as expert_dtype int4 (4 bits and one
        // fp16 scale per 64: the same 4.25 bits).
        ModelEntry {
            model: Model {
                name: "gpt-oss-20b".into(),
                params: 20_914_757_184,
                active_params: 4_187_440_704,
                layers: 24,
                hidden: 2880,
                heads: 64,
                kv_heads: 8,
                head_dim: 64,
                intermediate: 2880,
                vocab: 201_088,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 32,
                    experts_per_token: 4,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: Some(Dtype::Int4),
                groups: gpt_oss_groups(24),
            },
            source: "openai/gpt-oss-20b config.json; gpt-oss model card (20.91B, 3.61B active)",
        },
        // https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json:
        // as gpt-oss-20b but num_hidden_layers 36 (18 sliding, 18 full) and
        // num_local_experts 128.
        // Params: 2*201088*2880 + 36*(26,550,144 + 2880*128 + 128 +
        // 128*24,891,840 + 2*2880) + 2880 = 116,829,156,672 (model card:
        // 116.83B); active (4 experts) 5,711,982,912 (the card's 5.13B leaves
        // out the input embedding). MXFP4 experts as for gpt-oss-20b: about
        // 65.2 GB of weights.
        ModelEntry {
            model: Model {
                name: "gpt-oss-120b".into(),
                params: 116_829_156_672,
                active_params: 5_711_982_912,
                layers: 36,
                hidden: 2880,
                heads: 64,
                kv_heads: 8,
                head_dim: 64,
                intermediate: 2880,
                vocab: 201_088,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 128,
                    experts_per_token: 4,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: Some(Dtype::Int4),
                groups: gpt_oss_groups(36),
            },
            source: "openai/gpt-oss-120b config.json; gpt-oss model card (116.83B, 5.13B active)",
        },
        // https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E/blob/main/config.json
        // (text_config): num_hidden_layers 48, hidden_size 5120,
        // num_attention_heads 40, num_key_value_heads 8, head_dim 128,
        // intermediate_size 8192 (one expert, and the shared expert),
        // num_local_experts 16, num_experts_per_tok 1,
        // interleave_moe_layer_step 1 (every layer is MoE), vocab_size 202048,
        // max_position_embeddings 10485760, attention_chunk_size 8192,
        // no_rope_layers: 0 on every 4th layer (3, 7, ..., 47), 1 elsewhere.
        // The RoPE layers use chunked local attention (a token sees only its
        // own chunk of 8192), the 12 NoPE layers global attention
        // (transformers' Llama4TextAttention: use_rope -> chunked mask).
        // use_qk_norm true (an L2 norm without weights), tie_word_embeddings
        // false, torch_dtype bfloat16.
        // Params (text model): 2*202048*5120 + 48*(5120*5120 + 2*5120*1024 +
        // 5120*5120 + 5120*16 (router) + 16*3*5120*8192 + 3*5120*8192
        // (shared) + 2*5120) + 5120 = 107,769,861,120; active (1 routed and
        // the shared expert) 17,172,894,720 (card: 17B active, 109B total,
        // which adds the vision encoder, about 0.9B, not modelled here).
        ModelEntry {
            model: Model {
                name: "llama-4-scout-17b-16e".into(),
                params: 107_769_861_120,
                active_params: 17_172_894_720,
                layers: 48,
                hidden: 5120,
                heads: 40,
                kv_heads: 8,
                head_dim: 128,
                intermediate: 8192,
                vocab: 202_048,
                max_model_len: 10_485_760,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 16,
                    experts_per_token: 1,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: vec![
                    LayerGroup {
                        layers: 12,
                        kind: LayerKind::Full {
                            kv_heads: 8,
                            head_dim: 128,
                        },
                        kv_dtype: None,
                    },
                    LayerGroup {
                        layers: 36,
                        kind: LayerKind::Chunked {
                            kv_heads: 8,
                            head_dim: 128,
                            chunk: 8192,
                        },
                        kv_dtype: None,
                    },
                ],
            },
            source: "meta-llama/Llama-4-Scout-17B-16E config.json (text_config); model card (17B active, 109B)",
        },
        // https://huggingface.co/google/gemma-3-27b-it/blob/main/config.json
        // (text_config): num_hidden_layers 62, hidden_size 5376,
        // num_attention_heads 32, num_key_value_heads 16, head_dim 128,
        // intermediate_size 21504, vocab_size 262208, sliding_window 1024,
        // sliding_window_pattern 6 (five local layers, then one global: layers
        // 5, 11, ..., 59 are global, 10 of 62), max_position_embeddings
        // 131072, query_pre_attn_scalar 168; embeddings tied.
        // Params (text model): 262208*5376 + 62*(5376*4096 + 2*5376*2048 +
        // 4096*5376 + 2*128 + 3*5376*21504 + 4*5376) + 5376 = 27,009,346,304
        // (card: 27B; the checkpoint's 27.4B adds the SigLIP vision encoder,
        // not modelled here).
        ModelEntry {
            model: Model {
                name: "gemma-3-27b".into(),
                params: 27_009_346_304,
                active_params: 27_009_346_304,
                layers: 62,
                hidden: 5376,
                heads: 32,
                kv_heads: 16,
                head_dim: 128,
                intermediate: 21_504,
                vocab: 262_208,
                max_model_len: 131_072,
                sliding_window: None,
                mla: None,
                moe: None,
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: vec![
                    LayerGroup {
                        layers: 10,
                        kind: LayerKind::Full {
                            kv_heads: 16,
                            head_dim: 128,
                        },
                        kv_dtype: None,
                    },
                    LayerGroup {
                        layers: 52,
                        kind: LayerKind::Sliding {
                            kv_heads: 16,
                            head_dim: 128,
                            window: 1024,
                        },
                        kv_dtype: None,
                    },
                ],
            },
            source: "google/gemma-3-27b-it config.json (text_config); Gemma 3 report arXiv:2503.19786",
        },
        // https://huggingface.co/deepseek-ai/DeepSeek-V3.1/blob/main/config.json:
        // the shape fields are DeepSeek-V3's (61 layers, hidden 7168, 128
        // heads, kv_lora_rank 512, qk_rope_head_dim 64, n_routed_experts 256,
        // num_experts_per_tok 8, n_shared_experts 1, first_k_dense_replace 3,
        // moe_intermediate_size 2048, intermediate_size 18432, vocab 129280,
        // max_position_embeddings 163840), so the params are V3's
        // (671,026,419,200; 37,552,297,472 active, without the MTP module);
        // V3.1 is a further-trained V3 served in FP8 (quantization_config
        // fp8 e4m3, 128x128 blocks, UE8M0 scales).
        ModelEntry {
            model: Model {
                name: "deepseek-v3.1".into(),
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
            source: "deepseek-ai/DeepSeek-V3.1 config.json (DeepSeek-V3's shape); DeepSeek-V3 report arXiv:2412.19437",
        },
        // https://huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct/blob/main/config.json:
        // num_hidden_layers 48, hidden_size 2048, num_attention_heads 16,
        // num_key_value_heads 2, head_dim 256, intermediate_size 5120,
        // moe_intermediate_size 512, shared_expert_intermediate_size 512,
        // num_experts 512, num_experts_per_tok 10, vocab_size 151936,
        // max_position_embeddings 262144, full_attention_interval 4
        // (layer_types: three "linear_attention", then one "full_attention":
        // 36 Gated DeltaNet and 12 gated-attention layers),
        // linear_num_key_heads 16, linear_num_value_heads 32,
        // linear_key_head_dim 128, linear_value_head_dim 128,
        // linear_conv_kernel_dim 4, tie_word_embeddings false, torch_dtype
        // bfloat16. (The same values as MaxText's qwen3-next-80b-a3b table.)
        // Recurrent state per Gated DeltaNet layer and sequence: the delta-rule
        // state, linear_num_value_heads x linear_key_head_dim x
        // linear_value_head_dim = 32*128*128 = 524,288 elements, and the
        // convolution state, conv_dim x (kernel - 1) with conv_dim = 2*16*128
        // + 32*128 = 8192: 24,576 elements. In bf16 (vLLM's default: both
        // states in the model's dtype) 548,864 x 2 = 1,097,728 bytes; SGLang
        // keeps the delta-rule state in fp32 by default (2,146,304 bytes).
        // Params: full-attention layer 2048*8192 (query and output gate) +
        // 2*2048*512 + 4096*2048 + 2*256 = 27,263,488; linear layer
        // 2048*12288 (in_proj_qkvz) + 2048*64 (in_proj_ba) + 8192*4 (conv) + 32
        // + 32 (A_log, dt_bias) + 128 (norm) + 4096*2048 = 33,718,464; MoE
        // 2048*512 (router) + 512*3*2048*512 + 3*2048*512 (shared) + 2048
        // (shared gate); norms 2*2048. Total = 2*151936*2048 + 12*27,263,488 +
        // 36*33,718,464 + 48*(MoE + norms) + 2048 = 79,674,391,296; active
        // (10 experts) 3,874,929,408 (card: 80B total, 3B activated; the
        // multi-token-prediction layer is not counted).
        ModelEntry {
            model: Model {
                name: "qwen3-next-80b-a3b".into(),
                params: 79_674_391_296,
                active_params: 3_874_929_408,
                layers: 48,
                hidden: 2048,
                heads: 16,
                kv_heads: 2,
                head_dim: 256,
                intermediate: 5120,
                vocab: 151_936,
                max_model_len: 262_144,
                sliding_window: None,
                mla: None,
                moe: Some(Moe {
                    experts: 512,
                    experts_per_token: 10,
                }),
                weight_dtype: Dtype::Bf16,
                expert_dtype: None,
                groups: vec![
                    LayerGroup {
                        layers: 12,
                        kind: LayerKind::Full {
                            kv_heads: 2,
                            head_dim: 256,
                        },
                        kv_dtype: None,
                    },
                    LayerGroup {
                        layers: 36,
                        kind: LayerKind::Recurrent {
                            state_bytes: 548_864 * 2,
                        },
                        kv_dtype: None,
                    },
                ],
            },
            source: "Qwen/Qwen3-Next-80B-A3B-Instruct config.json (linear_* state sizes); model card (80B, 3B activated)",
        },
    ]
}

/// gpt-oss: `layer_types` alternates sliding (window 128) and full attention,
/// 8 KV heads of 64 each, half the layers of each kind.
fn gpt_oss_groups(layers: u32) -> Vec<LayerGroup> {
    vec![
        LayerGroup {
            layers: layers / 2,
            kind: LayerKind::Sliding {
                kv_heads: 8,
                head_dim: 64,
                window: 128,
            },
            kv_dtype: None,
        },
        LayerGroup {
            layers: layers / 2,
            kind: LayerKind::Full {
                kv_heads: 8,
                head_dim: 64,
            },
            kv_dtype: None,
        },
    ]
}
