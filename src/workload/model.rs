//! Transformer architecture description (dense or MoE), its validation, parameter counts and training FLOPs.

use super::arch::{Arch, Position};
use super::error::{invalid, WorkloadError};
pub use super::model_evolved::{et_wide_heads, EtCell};

/// Mixture-of-Experts configuration of the MoE layers.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeSpec {
    /// Routed experts per MoE layer.
    pub experts: u32,
    /// Routed experts each token is sent to.
    pub top_k: u32,
    /// Capacity factor (expert capacity = factor x tokens x top_k / experts); `None` = dropless.
    pub capacity_factor: Option<f64>,
    /// Hidden width of one expert's FFN (`ModelSpec::arch.act` says how many matrices).
    pub expert_ffn_hidden: u32,
    /// Shared (always active) experts per MoE layer, each `expert_ffn_hidden` wide.
    pub shared_experts: u32,
    /// Every Nth layer after `arch.first_dense_layers` is an MoE layer (layers `f+N-1, f+2N-1, ...`,
    /// 0-based); 1 = all layers from `f` on.
    pub moe_every: u32,
}

/// Kind of feed-forward block.
#[derive(Clone, Debug, PartialEq)]
pub enum FfnKind {
    /// Every layer has a dense SwiGLU FFN of width `ModelSpec::ffn_hidden`.
    Dense,
    /// MoE layers as described; the other layers are dense.
    Moe(MoeSpec),
}

/// Transformer (decoder-only, or encoder-decoder with `arch.enc_dec`; pre-norm, rotary positions; by default RMSNorm, SwiGLU, untied
/// embeddings, `head_dim = d_model / heads`; see [`Arch`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    /// Display name.
    pub name: String,
    /// Transformer layers (blocks); an encoder-decoder counts both stacks (`arch.enc_dec`).
    pub layers: u32,
    /// Residual-stream width.
    pub d_model: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (GQA; `== heads` is multi-head attention).
    pub kv_heads: u32,
    /// Training sequence length [tokens]; an encoder-decoder's input (encoder) length.
    pub seq_len: u32,
    /// Vocabulary size [tokens].
    pub vocab: u32,
    /// Dense FFN width (SwiGLU, 3 matrices), used by the non-MoE layers.
    pub ffn_hidden: u32,
    /// Dense or MoE feed-forward blocks.
    pub ffn: FfnKind,
    /// Further architecture keys (head width, MLA, sliding window, ...); default = the model above.
    pub arch: Arch,
}

impl ModelSpec {
    /// The MoE configuration, if any.
    pub fn moe(&self) -> Option<&MoeSpec> {
        match &self.ffn {
            FfnKind::Dense => None,
            FfnKind::Moe(m) => Some(m),
        }
    }

    /// Width of one attention head (`arch.head_dim`, else `d_model / heads`).
    pub fn head_dim(&self) -> u32 {
        self.arch
            .head_dim
            .unwrap_or(self.d_model / self.heads.max(1))
    }

    /// Per-head query/key width (MLA: nope + rope dims).
    pub fn qk_head_dim(&self) -> u32 {
        match &self.arch.mla {
            Some(m) => m.qk_nope_head_dim + m.qk_rope_head_dim,
            None => self.head_dim(),
        }
    }

    /// Per-head value width (MLA: `v_head_dim`).
    pub fn v_head_dim(&self) -> u32 {
        match &self.arch.mla {
            Some(m) => m.v_head_dim,
            None => self.head_dim(),
        }
    }

    /// Keys one query can attend to at most: `min(seq_len, sliding_window)`.
    pub fn attended_keys_max(&self) -> u32 {
        match self.arch.sliding_window {
            Some(w) => w.min(self.seq_len),
            None => self.seq_len,
        }
    }

    /// Mean keys attended per query under a causal mask (and the sliding window):
    /// `sum_{i=1..s} min(i, w) / s` (full causal: `(s + 1) / 2`).
    pub fn causal_keys_mean(&self) -> f64 {
        let s = self.seq_len as f64;
        let w = self.attended_keys_max() as f64;
        // sum_{i=1..w} i + (s - w) * w
        (w * (w + 1.0) / 2.0 + (s - w) * w) / s
    }

    /// Check counts, ranges and divisibility; each error names the field and what is valid.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let positive: [(&'static str, u32); 6] = [
            ("model.layers", self.layers),
            ("model.d_model", self.d_model),
            ("model.heads", self.heads),
            ("model.kv_heads", self.kv_heads),
            ("model.seq_len", self.seq_len),
            ("model.vocab", self.vocab),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, v, "must be at least 1"));
            }
        }
        if self.arch.head_dim.is_none()
            && self.arch.mla.is_none()
            && !self.d_model.is_multiple_of(self.heads)
        {
            return Err(invalid(
                "model.heads",
                self.heads,
                format!("must divide model.d_model = {}", self.d_model),
            ));
        }
        if self.kv_heads > self.heads || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(invalid(
                "model.kv_heads",
                self.kv_heads,
                format!("must divide model.heads = {}", self.heads),
            ));
        }
        self.validate_arch()?;
        self.validate_enc_dec()?;
        if let Some(m) = self.moe() {
            if m.experts == 0 {
                return Err(invalid("model.experts", m.experts, "must be at least 1"));
            }
            if m.top_k == 0 || m.top_k > m.experts {
                return Err(invalid(
                    "model.top_k",
                    m.top_k,
                    format!("must be between 1 and model.experts = {}", m.experts),
                ));
            }
            if m.expert_ffn_hidden == 0 {
                return Err(invalid("model.expert_ffn_hidden", 0, "must be at least 1"));
            }
            let moe_span = self.layers.saturating_sub(self.arch.first_dense_layers);
            if m.moe_every == 0 || m.moe_every > moe_span {
                return Err(invalid(
                    "model.moe_every",
                    m.moe_every,
                    format!(
                        "must be between 1 and model.layers - model.first_dense_layers = {moe_span}"
                    ),
                ));
            }
            if let Some(cf) = m.capacity_factor {
                if !cf.is_finite() || cf <= 0.0 {
                    return Err(invalid(
                        "model.capacity_factor",
                        cf,
                        "must be a finite number > 0 (typically 1.0-2.0), or absent for dropless routing",
                    ));
                }
            }
        }
        if self.dense_layers() > 0 && self.ffn_hidden == 0 {
            return Err(invalid(
                "model.ffn_hidden",
                0,
                "must be at least 1 (the model has dense FFN layers)",
            ));
        }
        Ok(())
    }

    fn validate_arch(&self) -> Result<(), WorkloadError> {
        let a = &self.arch;
        if let Some(et) = a.block.et() {
            self.validate_et(et)?;
        }
        for (field, rate) in [
            ("model.hidden_dropout", a.hidden_dropout),
            ("model.embedding_dropout", a.embedding_dropout),
            ("model.attention_dropout", a.attention_dropout),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(invalid(
                    field,
                    rate,
                    "must be a dropout rate in [0, 1) (0 = no dropout)",
                ));
            }
        }
        if a.head_dim == Some(0) {
            return Err(invalid("model.head_dim", 0, "must be at least 1"));
        }
        if a.sliding_window == Some(0) {
            return Err(invalid(
                "model.sliding_window",
                0,
                "must be at least 1 (keys per query), or absent for full attention",
            ));
        }
        if a.first_dense_layers >= self.layers && self.moe().is_some() {
            return Err(invalid(
                "model.first_dense_layers",
                a.first_dense_layers,
                format!(
                    "must be below model.layers = {} (an MoE model needs MoE layers)",
                    self.layers
                ),
            ));
        }
        if a.parallel_residual && self.moe().is_some() {
            return Err(invalid(
                "model.parallel_residual",
                true,
                "must be false for an MoE model (the parallel block is built for dense FFN layers)",
            ));
        }
        if a.mla.is_some() && a.position != Position::Rotary {
            return Err(invalid(
                "model.position",
                a.position.name(),
                "must be rotary with MLA (its keys carry decoupled rotary dims)",
            ));
        }
        if a.position == Position::TransformerXl {
            // The relative term is built here for a decoder-only stack over its full causal span.
            if a.enc_dec.is_some() {
                return Err(invalid(
                    "model.position",
                    a.position.name(),
                    "must not be transformer-xl for an encoder-decoder (its relative term is built for a decoder-only stack); valid: rotary, learned, alibi, relative",
                ));
            }
            if let Some(w) = a.sliding_window {
                return Err(invalid(
                    "model.sliding_window",
                    w,
                    "must be absent with position = transformer-xl (its relative term scores every key of the sequence)",
                ));
            }
        }
        if let Some(m) = &a.mla {
            let dims: [(&'static str, u32); 3] = [
                ("model.mla.kv_lora_rank", m.kv_lora_rank),
                ("model.mla.qk_nope_head_dim", m.qk_nope_head_dim),
                ("model.mla.v_head_dim", m.v_head_dim),
            ];
            for (field, v) in dims {
                if v == 0 {
                    return Err(invalid(field, v, "must be at least 1"));
                }
            }
            if self.kv_heads != self.heads {
                return Err(invalid(
                    "model.kv_heads",
                    self.kv_heads,
                    format!(
                        "must equal model.heads = {} with MLA (keys/values come from the latent per head)",
                        self.heads
                    ),
                ));
            }
        }
        Ok(())
    }

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

    /// Layers with an MoE FFN.
    pub fn moe_layers(&self) -> u32 {
        match self.moe() {
            None => 0,
            Some(m) => {
                self.layers.saturating_sub(self.arch.first_dense_layers) / m.moe_every.max(1)
            }
        }
    }

    /// Layers with a dense FFN.
    pub fn dense_layers(&self) -> u32 {
        self.layers - self.moe_layers()
    }

    /// Whether 0-based `layer` has an MoE FFN (with `f = arch.first_dense_layers`, layers
    /// `f + moe_every - 1, f + 2*moe_every - 1, ...`).
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        match self.moe() {
            None => false,
            Some(m) => {
                let every = m.moe_every.max(1);
                let f = self.arch.first_dense_layers;
                layer < self.layers && layer >= f && (layer - f + 1).is_multiple_of(every)
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

    /// Norm parameters of one layer: two norms of `d_model` (gains; LayerNorm also biases), plus
    /// MLA's latent norms (`q_lora_rank + kv_lora_rank`).
    pub fn norm_params_per_layer(&self) -> f64 {
        let latent = self
            .arch
            .mla
            .map_or(0.0, |m| (m.q_lora_rank + m.kv_lora_rank) as f64);
        (2.0 * self.d_model as f64 + latent) * self.arch.norm.params_per_channel()
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

/// Published architectures used as presets and in tests.
pub mod presets {
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
}

#[cfg(test)]
mod tests {
    use super::presets::*;
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b
    }

    #[test]
    fn mixtral_counts_match_published_46_7b_total_12_9b_active() {
        // Mistral AI, "Mixtral of experts" (2023-12-11, mistral.ai/news/mixtral-of-experts):
        // 46.7B total, 12.9B used per token; the paper (arXiv:2401.04088) rounds to 47B / 13B.
        let m = mixtral_8x7b();
        m.validate().unwrap();
        assert!(
            rel(m.params_total(), 46.7e9) < 0.005,
            "{}",
            m.params_total()
        );
        assert!(
            rel(m.params_active(), 12.9e9) < 0.005,
            "{}",
            m.params_active()
        );
    }

    #[test]
    fn llama2_7b_counts_6_74b() {
        // HF model card: 6,738,415,616 parameters.
        let m = llama2_7b();
        assert!(
            rel(m.params_total(), 6.738_415_616e9) < 0.001,
            "{}",
            m.params_total()
        );
        assert_eq!(m.params_total(), m.params_active());
    }

    #[test]
    fn gpt3_counts_175b() {
        let m = gpt3_175b();
        m.validate().unwrap();
        assert!(
            rel(m.params_total(), 175.0e9) < 0.01,
            "{}",
            m.params_total()
        );
    }

    #[test]
    fn llama2_70b_counts_69b() {
        // HF model card: 68,976,648,192 parameters.
        assert!(rel(llama2_70b().params_total(), 68.977e9) < 0.002);
    }

    #[test]
    fn flops_per_token_is_close_to_6n_at_seq_2048() {
        // Kaplan et al. 2020 / Hoffmann et al. 2022: C ~ 6 N D.
        for mut m in [llama2_7b(), llama2_70b(), gpt3_175b()] {
            m.seq_len = 2048;
            let ratio = m.flops_per_token_train() / (6.0 * m.params_active());
            assert!((0.9..1.1).contains(&ratio), "{}: {ratio}", m.name);
        }
        // For MoE the 6N rule applies to active parameters.
        let mut m = mixtral_8x7b();
        m.seq_len = 2048;
        let ratio = m.flops_per_token_train() / (6.0 * m.params_active());
        assert!((0.9..1.1).contains(&ratio), "mixtral: {ratio}");
    }

    #[test]
    fn moe_every_selects_layers() {
        let mut m = mixtral_8x7b();
        if let FfnKind::Moe(s) = &mut m.ffn {
            s.moe_every = 2;
        }
        assert_eq!(m.moe_layers(), 16);
        assert!(!m.is_moe_layer(0));
        assert!(m.is_moe_layer(1));
        assert!(!m.is_moe_layer(32));
        let moe_count = (0..m.layers).filter(|&l| m.is_moe_layer(l)).count() as u32;
        assert_eq!(moe_count, m.moe_layers());
        // Fewer MoE layers -> fewer total parameters than all-MoE Mixtral.
        assert!(m.params_total() < mixtral_8x7b().params_total());
    }

    fn field_of(e: WorkloadError) -> &'static str {
        match e {
            WorkloadError::InvalidField { field, .. } => field,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn validation_rejects_top_k_above_experts() {
        let mut m = mixtral_8x7b();
        if let FfnKind::Moe(s) = &mut m.ffn {
            s.top_k = 9;
        }
        let e = m.validate().unwrap_err();
        assert!(
            e.to_string().contains("between 1 and model.experts = 8"),
            "{e}"
        );
        assert_eq!(field_of(e), "model.top_k");
    }

    #[test]
    fn validation_rejects_zero_counts() {
        let mut m = llama2_7b();
        m.layers = 0;
        assert_eq!(field_of(m.validate().unwrap_err()), "model.layers");
        let mut m = llama2_7b();
        m.ffn_hidden = 0;
        assert_eq!(field_of(m.validate().unwrap_err()), "model.ffn_hidden");
        let mut m = mixtral_8x7b();
        if let FfnKind::Moe(s) = &mut m.ffn {
            s.experts = 0;
        }
        assert_eq!(field_of(m.validate().unwrap_err()), "model.experts");
        let mut m = mixtral_8x7b();
        if let FfnKind::Moe(s) = &mut m.ffn {
            s.moe_every = 0;
        }
        assert_eq!(field_of(m.validate().unwrap_err()), "model.moe_every");
        let mut m = mixtral_8x7b();
        if let FfnKind::Moe(s) = &mut m.ffn {
            s.capacity_factor = Some(-1.0);
        }
        assert_eq!(field_of(m.validate().unwrap_err()), "model.capacity_factor");
    }

    #[test]
    fn validation_rejects_non_dividing_heads() {
        let mut m = llama2_7b();
        m.heads = 31;
        assert_eq!(field_of(m.validate().unwrap_err()), "model.heads");
        let mut m = llama2_7b();
        m.kv_heads = 5;
        assert_eq!(field_of(m.validate().unwrap_err()), "model.kv_heads");
    }
}
