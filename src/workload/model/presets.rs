//! Published architectures used as presets and in tests.

use super::super::arch::{MlaSpec, RouterScore};
use super::{Arch, FfnKind, ModelSpec, MoeSpec};

/// DeepSeek-V3: 61 layers (first 3 dense, FFN 18432), d 7168, 128 heads with MLA
/// (q_lora 1536, kv_lora 512, nope 128, rope 64, v 128), 256 routed experts top-8 + 1 shared,
/// expert FFN 2048, sigmoid router, vocab 129280, seq 4096 (DeepSeek-AI 2024,
/// arXiv:2412.19437, Sec. 4.2; HF config `deepseek-ai/DeepSeek-V3`). Published: 671B total,
/// 37B activated per token (without the 14B multi-token-prediction module, not modelled).
pub fn deepseek_v3() -> ModelSpec {
    ModelSpec {
        name: "deepseek-v3".into(),
        layers: 61,
        d_model: 7168,
        heads: 128,
        kv_heads: 128,
        seq_len: 4096,
        vocab: 129280,
        ffn_hidden: 18432,
        ffn: FfnKind::Moe(MoeSpec {
            experts: 256,
            top_k: 8,
            capacity_factor: None,
            expert_ffn_hidden: 2048,
            shared_experts: 1,
            moe_every: 1,
        }),
        arch: Arch {
            head_dim: None,
            mla: Some(MlaSpec {
                q_lora_rank: 1536,
                kv_lora_rank: 512,
                qk_nope_head_dim: 128,
                qk_rope_head_dim: 64,
                v_head_dim: 128,
            }),
            first_dense_layers: 3,
            router_score: RouterScore::Sigmoid,
            ..Arch::default()
        },
    }
}

/// Mixtral 8x7B: 32 layers, d 4096, 32 heads / 8 KV heads, 8 experts top-2, expert FFN 14336,
/// vocab 32000 (Jiang et al. 2024, "Mixtral of Experts", arXiv:2401.04088, Table 1).
pub fn mixtral_8x7b() -> ModelSpec {
    ModelSpec {
        name: "mixtral-8x7b".into(),
        layers: 32,
        d_model: 4096,
        heads: 32,
        kv_heads: 8,
        seq_len: 4096,
        vocab: 32000,
        ffn_hidden: 14336,
        ffn: FfnKind::Moe(MoeSpec {
            experts: 8,
            top_k: 2,
            capacity_factor: None,
            expert_ffn_hidden: 14336,
            shared_experts: 0,
            moe_every: 1,
        }),
        arch: Arch::default(),
    }
}

/// Llama-2-7B: 32 layers, d 4096, 32 heads, FFN 11008, vocab 32000, seq 4096
/// (Touvron et al. 2023, arXiv:2307.09288; HF config `meta-llama/Llama-2-7b-hf`).
pub fn llama2_7b() -> ModelSpec {
    ModelSpec {
        name: "llama2-7b".into(),
        layers: 32,
        d_model: 4096,
        heads: 32,
        kv_heads: 32,
        seq_len: 4096,
        vocab: 32000,
        ffn_hidden: 11008,
        ffn: FfnKind::Dense,
        arch: Arch::default(),
    }
}

/// Llama-2-70B: 80 layers, d 8192, 64 heads / 8 KV heads, FFN 28672, vocab 32000
/// (Touvron et al. 2023, arXiv:2307.09288; HF config `meta-llama/Llama-2-70b-hf`).
pub fn llama2_70b() -> ModelSpec {
    ModelSpec {
        name: "llama2-70b".into(),
        layers: 80,
        d_model: 8192,
        heads: 64,
        kv_heads: 8,
        seq_len: 4096,
        vocab: 32000,
        ffn_hidden: 28672,
        ffn: FfnKind::Dense,
        arch: Arch::default(),
    }
}

/// GPT-3 175B: 96 layers, d 12288, 96 heads, seq 2048, vocab 50257 (Brown et al. 2020,
/// arXiv:2005.14165, Table 2.1). GPT-3's GELU FFN (2 x d x 4d) is expressed as the SwiGLU
/// width with equal parameters, 8d/3 = 32768; embeddings are untied here (GPT-3 ties them:
/// +0.6B parameters, +0.35%).
pub fn gpt3_175b() -> ModelSpec {
    ModelSpec {
        name: "gpt3-175b".into(),
        layers: 96,
        d_model: 12288,
        heads: 96,
        kv_heads: 96,
        seq_len: 2048,
        vocab: 50257,
        ffn_hidden: 32768,
        ffn: FfnKind::Dense,
        arch: Arch::default(),
    }
}
