//! Parameter counts of a [`ModelSpec`] (per layer, per part, total and active) and its training FLOPs per token.

use super::super::arch::Position;
use super::ModelSpec;

impl ModelSpec {
    /// Non-expert parameters of one layer: attention, norms, dense FFN (standard block) or the
    /// Evolved Transformer cell (see [`ModelSpec::et_cell`]); router and experts not included.
    pub fn layer_dense_params(&self, layer: u32) -> f64 {
        match self.et_cell(layer) {
            Some(c) => c.params(),
            None => {
                let ffn = if self.is_moe_layer(layer) {
                    0.0
                } else {
                    self.dense_ffn_params()
                };
                self.attn_params_per_layer()
                    + self.position_params_per_layer()
                    + self.norm_params_per_layer()
                    + self.cross_params(layer)
                    + ffn
            }
        }
    }

    /// Attention parameters of one layer. Standard: Q and O (`d x heads*head_dim`), K and V
    /// (`d x kv_heads*head_dim`). MLA (DeepSeek-V2 Sec. 2.1.2-2.1.3): `W_DQ (d x q_lora)`,
    /// `W_UQ (q_lora x heads*(nope+rope))` (or `d x heads*(nope+rope)` without a query latent),
    /// `W_DKV (d x kv_lora + rope)`, `W_UKV (kv_lora x heads*(nope+v))`, `W_O (heads*v x d)`.
    pub fn attn_params_per_layer(&self) -> f64 {
        let d = self.d_model as f64;
        let h = self.heads as f64;
        match &self.arch.mla {
            None => {
                let q = (self.heads * self.head_dim()) as f64;
                let kv = (self.kv_heads * self.head_dim()) as f64;
                2.0 * d * q + 2.0 * d * kv
            }
            Some(m) => {
                let qk = (m.qk_nope_head_dim + m.qk_rope_head_dim) as f64;
                let ql = m.q_lora_rank as f64;
                let q = if m.q_lora_rank > 0 {
                    d * ql + ql * h * qk
                } else {
                    d * h * qk
                };
                let kvl = m.kv_lora_rank as f64;
                let kv = d * (kvl + m.qk_rope_head_dim as f64)
                    + kvl * h * (m.qk_nope_head_dim + m.v_head_dim) as f64;
                q + kv + h * m.v_head_dim as f64 * d
            }
        }
    }

    /// Norm parameters of one layer: two norms of `d_model` (gains; LayerNorm also biases; one
    /// in a parallel block with a shared norm, `arch.parallel_shared_norm`), plus MLA's latent
    /// norms (`q_lora_rank + kv_lora_rank`).
    pub fn norm_params_per_layer(&self) -> f64 {
        let latent = self
            .arch
            .mla
            .map_or(0.0, |m| (m.q_lora_rank + m.kv_lora_rank) as f64);
        let norms = if self.arch.parallel_residual && self.arch.parallel_shared_norm {
            1.0
        } else {
            2.0
        };
        (norms * self.d_model as f64 + latent) * self.arch.norm.params_per_channel()
    }

    /// Parameters of a dense FFN layer (SwiGLU 3 or GELU 2 matrices of `d x ffn_hidden`).
    pub fn dense_ffn_params(&self) -> f64 {
        self.arch.act.matrices() * self.d_model as f64 * self.ffn_hidden as f64
    }

    /// Parameters of one expert (SwiGLU 3 or GELU 2 matrices); 0 for a dense model.
    pub fn expert_params(&self) -> f64 {
        let mats = self.arch.act.matrices();
        self.moe().map_or(0.0, |m| {
            mats * self.d_model as f64 * m.expert_ffn_hidden as f64
        })
    }

    /// Router (gate) parameters of one MoE layer (`d x experts`).
    pub fn router_params(&self) -> f64 {
        self.moe()
            .map_or(0.0, |m| self.d_model as f64 * m.experts as f64)
    }

    /// Embedding + LM head (unless tied) + learned position table + final norm parameters.
    pub fn embedding_params(&self) -> f64 {
        let copies = if self.arch.tied_embeddings { 1.0 } else { 2.0 };
        copies * self.vocab as f64 * self.d_model as f64
            + self.position_params()
            + self.final_norm_params()
    }

    /// Parameters of the position embedding that live with the input embedding (on the first
    /// pipeline stage): the learned absolute table, `seq_len x d_model` (GPT-3's 2048 x 12288 =
    /// 25.2M); 0 for rotary and ALiBi (no parameters). T5's relative bias table (`32 buckets x
    /// heads`, Raffel et al. 2020 Sec. 2.1) is under a thousand parameters and not counted.
    pub fn position_params(&self) -> f64 {
        match self.arch.position {
            Position::Learned => self.seq_len as f64 * self.d_model as f64,
            Position::Rotary | Position::Alibi | Position::Relative | Position::TransformerXl => {
                0.0
            }
        }
    }

    /// Final norm parameters (`d_model` gains; LayerNorm also biases), one per stack (an
    /// encoder-decoder has two).
    pub fn final_norm_params(&self) -> f64 {
        self.final_norms() * self.d_model as f64 * self.arch.norm.params_per_channel()
    }

    /// Attention-core width per token for the FLOP count: `heads * (qk_dim + v_dim) / 2`
    /// (`= d_model` for standard attention with `head_dim = d_model / heads`).
    pub fn attn_core_width(&self) -> f64 {
        self.heads as f64 * (self.qk_head_dim() + self.v_head_dim()) as f64 / 2.0
    }

    /// Routed-expert parameters of the whole model (sharded over expert parallelism).
    pub fn routed_expert_params_total(&self) -> f64 {
        self.moe().map_or(0.0, |m| {
            self.moe_layers() as f64 * m.experts as f64 * self.expert_params()
        })
    }

    /// Non-embedding parameters of the layers (all experts counted; an encoder-decoder's
    /// cross-attention blocks included).
    pub fn params_non_embedding(&self) -> f64 {
        if self.arch.block.et().is_some() {
            return (0..self.layers).map(|l| self.layer_dense_params(l)).sum();
        }
        let mut p = self.layers as f64
            * (self.attn_params_per_layer()
                + self.position_params_per_layer()
                + self.norm_params_per_layer())
            + self.dense_layers() as f64 * self.dense_ffn_params()
            + self.cross_params_total();
        if let Some(m) = self.moe() {
            p += self.moe_layers() as f64
                * ((m.experts + m.shared_experts) as f64 * self.expert_params()
                    + self.router_params());
        }
        p
    }

    /// Total parameters (all experts, embeddings, LM head).
    pub fn params_total(&self) -> f64 {
        self.params_non_embedding() + self.embedding_params()
    }

    /// Parameters used per token: attention, dense FFNs, `top_k` routed + shared experts, router, embeddings.
    pub fn params_active(&self) -> f64 {
        if self.arch.block.et().is_some() {
            return self.params_total();
        }
        let mut p = self.layers as f64
            * (self.attn_params_per_layer()
                + self.position_params_per_layer()
                + self.norm_params_per_layer())
            + self.dense_layers() as f64 * self.dense_ffn_params()
            + self.cross_params_total()
            + self.embedding_params();
        if let Some(m) = self.moe() {
            p += self.moe_layers() as f64
                * ((m.top_k + m.shared_experts) as f64 * self.expert_params()
                    + self.router_params());
        }
        p
    }

    /// Training FLOP per token: 3 x forward (backward = 2 x forward). Forward = 2 FLOP per
    /// active matmul weight (incl. LM head, excl. embedding lookup and norms) + attention scores
    /// and context `4 * seq * d_model` per layer (Hoffmann et al. 2022, Appendix F; no causal
    /// halving). Generalised: `4 * keys * attn_core_width()`, keys = `min(seq, sliding_window)`.
    /// The LM-head GEMM counts whether or not embeddings are tied.
    ///
    /// Evolved Transformer cells: 2 FLOP per matmul weight (dense, pointwise and 3x1 convs,
    /// attention projections; the attend-to-encoder keys and values run over as many encoder
    /// tokens as the decoder has), 2 per depthwise tap and channel, `4 * seq * d_model` per
    /// attention core, and the LM head. An encoder-decoder counts
    /// per input token, both stacks and the cross-attention
    /// ([`ModelSpec::enc_dec_flops_per_token_train`]).
    pub fn flops_per_token_train(&self) -> f64 {
        if let Some(e) = self.arch.enc_dec {
            return self.enc_dec_flops_per_token_train(e);
        }
        let d = self.d_model as f64;
        if self.arch.block.et().is_some() {
            let s = self.seq_len as f64;
            let cells = (0..self.layers)
                .filter_map(|l| self.et_cell(l))
                .map(|c| 2.0 * (c.gemm_weights + c.depthwise) + c.attention_cores * 4.0 * s * d)
                .sum::<f64>();
            return 3.0 * (cells + 2.0 * self.vocab as f64 * d);
        }
        let mut matmul = self.layers as f64
            * (self.attn_params_per_layer() + self.rel_proj_weights())
            + self.dense_layers() as f64 * self.dense_ffn_params()
            + self.vocab as f64 * d;
        if let Some(m) = self.moe() {
            matmul += self.moe_layers() as f64
                * ((m.top_k + m.shared_experts) as f64 * self.expert_params()
                    + self.router_params());
        }
        let attn_core =
            self.layers as f64 * 4.0 * self.attended_keys_max() as f64 * self.attn_core_width();
        3.0 * (2.0 * matmul + attn_core)
    }
}
