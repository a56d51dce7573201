//! Architecture keys beyond the basic widths: head width, MLA latent dims, leading dense layers,
//! sliding-window attention, tied embeddings, FFN activation, norm kind, router score function,
//! linear biases, dropout rates, the position-embedding kind, block kind (standard or Evolved
//! Transformer) and encoder-decoder stacks.
//!
//! Every default keeps the behaviour the model had before these keys existed (RMSNorm, SwiGLU,
//! `head_dim = d_model / heads`, full causal attention, untied embeddings, softmax router, no
//! linear biases, no dropout, rotary positions).

/// Feed-forward activation: how many weight matrices an FFN (dense or expert) has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// `down(silu(gate(x)) * up(x))`: 3 matrices (Shazeer 2020, "GLU Variants Improve Transformer").
    #[default]
    SwiGlu,
    /// `down(gelu(up(x)))`: 2 matrices (GPT-2/3, BERT).
    Gelu,
}

impl Act {
    /// Weight matrices of one FFN of this kind.
    pub fn matrices(self) -> f64 {
        match self {
            Act::SwiGlu => 3.0,
            Act::Gelu => 2.0,
        }
    }

    /// Input-side matrices (up, plus gate for a GLU); they run as one fused `fc1` GEMM in
    /// Megatron-LM (`linear_fc1` is `2 x ffn` wide when `gated_linear_unit`).
    pub fn fc1_matrices(self) -> f64 {
        self.matrices() - 1.0
    }
}

/// Normalisation layer kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// RMSNorm (Zhang & Sennrich 2019): a gain per channel.
    #[default]
    RmsNorm,
    /// LayerNorm (Ba et al. 2016): a gain and a bias per channel.
    LayerNorm,
}

impl NormKind {
    /// Parameters per channel.
    pub fn params_per_channel(self) -> f64 {
        match self {
            NormKind::RmsNorm => 1.0,
            NormKind::LayerNorm => 2.0,
        }
    }
}

/// Router score function of the MoE gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterScore {
    /// Softmax over experts (Switch, Mixtral, DeepSeek-V2).
    #[default]
    Softmax,
    /// Per-expert sigmoid (DeepSeek-V3).
    Sigmoid,
}

/// How token positions enter the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    /// Rotary embedding of queries and keys in every layer (Su et al. 2021, RoFormer; LLaMA,
    /// GPT-NeoX/Pythia, Falcon, DeepSeek).
    #[default]
    Rotary,
    /// A learned absolute position table (`seq_len x d_model`) added to the token embedding at
    /// the input (GPT-2/3, Megatron-LM GPT `--position-embedding-type learned_absolute`, OPT,
    /// StarCoder / GPT-BigCode `wpe`).
    Learned,
    /// ALiBi (Press et al. 2022): a per-head linear bias on the attention logits, added inside
    /// the attention kernel (MPT, BLOOM).
    Alibi,
    /// T5's bucketed relative position bias (Raffel et al. 2020, Sec. 2.1): a `heads x s x s`
    /// bias built once per step from a `buckets x heads` table and added to every layer's logits.
    Relative,
    /// Transformer-XL's relative attention (Dai et al. 2019, arXiv:1901.02860, Sec. 3.3; Gopher,
    /// Rae et al. 2021 Sec. 2): every layer projects the sinusoid table of relative distances
    /// with its own `d_model x heads*head_dim` matrix `W_r`, adds the learned biases `u`, `v`
    /// to the queries, and scores queries against the projected positions (a second
    /// `s x s` score term per head) which a relative shift aligns before it joins the
    /// content scores (kimiyoung/transformer-xl `tf/model.py` `rel_multihead_attn`).
    #[serde(rename = "transformer-xl")]
    TransformerXl,
}

impl Position {
    /// The scenario spelling of the kind (`model.position`).
    pub fn name(self) -> &'static str {
        match self {
            Position::Rotary => "rotary",
            Position::Learned => "learned",
            Position::Alibi => "alibi",
            Position::Relative => "relative",
            Position::TransformerXl => "transformer-xl",
        }
    }
}

/// Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, Sec. 2.1; DeepSeek-V3,
/// arXiv:2412.19437, Sec. 2.1.1): queries and keys/values go through low-rank latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlaSpec {
    /// Query latent rank (`q_lora_rank`); 0 = queries projected directly from `d_model`.
    pub q_lora_rank: u32,
    /// Key/value latent rank (`kv_lora_rank`).
    pub kv_lora_rank: u32,
    /// Per-head query/key width without rotary position (`qk_nope_head_dim`).
    pub qk_nope_head_dim: u32,
    /// Per-head query/key width with rotary position (`qk_rope_head_dim`; the key part is shared by all heads).
    pub qk_rope_head_dim: u32,
    /// Per-head value width (`v_head_dim`).
    pub v_head_dim: u32,
}

/// Architecture keys of a [`super::ModelSpec`]; `Arch::default()` is today's model.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Arch {
    /// Width of one attention head; `None` = `d_model / heads`.
    pub head_dim: Option<u32>,
    /// Multi-head latent attention dims; `None` = standard (GQA/MQA) attention.
    pub mla: Option<MlaSpec>,
    /// Leading layers with a dense FFN before the MoE layers start (DeepSeek `first_k_dense_replace`).
    pub first_dense_layers: u32,
    /// Keys each query attends to at most (sliding-window attention, Mistral/Gemma); `None` = all.
    pub sliding_window: Option<u32>,
    /// Input embedding and LM head share one matrix.
    pub tied_embeddings: bool,
    /// FFN activation (dense and experts).
    pub act: Act,
    /// Normalisation layers.
    pub norm: NormKind,
    /// MoE router score function.
    pub router_score: RouterScore,
    /// The attention and dense-FFN linear layers carry biases (GPT-2/3, GPT-NeoX, OPT,
    /// StarCoder; not LLaMA, PaLM, T5). Their backward sums each output gradient over the tokens
    /// (one reduction per biased linear); the bias parameters themselves (`9 d` per layer) are
    /// negligible and not counted.
    pub bias: bool,
    /// Dropout rate on the residual branches (after the attention out-projection and after the
    /// FFN), in `[0, 1)`; 0 = no dropout (Megatron-LM
    /// `--hidden-dropout`, GPT-NeoX `hidden-dropout`, HF `resid_pdrop`). Under
    /// [`Block::EvolvedTransformer`]: T2T's `layer_prepostprocess_dropout`, the rate of every
    /// cell branch's output, the branch and FFN hiddens and the embedded inputs.
    pub hidden_dropout: f64,
    /// Dropout rate on the input embedding, in `[0, 1)` (Megatron-LM and GPT-NeoX apply the
    /// hidden rate there; OPT none: Zhang et al. 2022, Sec. 2.2).
    pub embedding_dropout: f64,
    /// Dropout rate on the attention probabilities, in `[0, 1)`; 0 = none (Megatron-LM
    /// `--attention-dropout`, GPT-NeoX `attention-dropout`, HF `attn_pdrop`; T2T
    /// `attention_dropout` under the Evolved Transformer).
    pub attention_dropout: f64,
    /// Position-embedding kind.
    pub position: Position,
    /// Attention and MLP read the same layer input and their outputs are summed by one TP
    /// reduction (GPT-J, GPT-NeoX `gpt-j-residual`, PaLM, Falcon); dense FFN layers only.
    pub parallel_residual: bool,
    /// The parallel block's two branches read ONE shared norm's output (`models.X.parallel_norms
    /// = 1`: PaLM, Chowdhery et al. 2022 Sec. 2, `y = x + MLP(LayerNorm(x)) + Attention(LayerNorm(x))`,
    /// its two input projections fused); false: one norm per branch (`parallel_norms = 2`, the
    /// default: GPT-NeoX `input_layernorm` + `post_attention_layernorm` under `gpt_j_residual`,
    /// HF Falcon `ln_attn` + `ln_mlp` with `new_decoder_architecture`). Read only with
    /// `parallel_residual`.
    pub parallel_shared_norm: bool,
    /// What one layer (block) is: the standard pre-norm block, or an Evolved Transformer cell.
    pub block: Block,
    /// Encoder-decoder structure (T5-style; see [`super::enc_dec`]); `None` = decoder-only.
    pub enc_dec: Option<super::enc_dec::EncDecSpec>,
}

/// Kind of block (`models.X.block`).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Block {
    /// Pre-norm attention + FFN block (the default).
    #[default]
    Standard,
    /// Evolved Transformer cells (So, Liang & Le 2019, arXiv:1901.11117; Tensor2Tensor
    /// `models/evolved_transformer.py`): see `step_ops::evolved`.
    EvolvedTransformer(EtSpec),
}

/// Evolved Transformer stack of a model's `layers`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct EtSpec {
    /// Leading layers that are ET encoder cells over the same `seq_len` tokens
    /// (`models.X.encoder_layers`); the later layers are decoder cells, which then also attend
    /// to the last encoder cell's output (T2T's two attend-to-encoder branches). 0: a
    /// decoder-only stack of decoder cells without those branches.
    pub encoder_cells: u32,
}

impl Block {
    /// The Evolved Transformer stack, if the blocks are ET cells.
    pub fn et(&self) -> Option<&EtSpec> {
        match self {
            Block::Standard => None,
            Block::EvolvedTransformer(s) => Some(s),
        }
    }
}

/// The key of `models.X.block`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    /// `"standard"`.
    Standard,
    /// `"evolved-transformer"`.
    EvolvedTransformer,
}

impl Arch {
    /// Whether the residual branches apply dropout (the embedding has `embedding_dropout`).
    pub fn has_hidden_dropout(&self) -> bool {
        self.hidden_dropout > 0.0
    }

    /// Whether the attention probabilities go through dropout.
    pub fn has_attention_dropout(&self) -> bool {
        self.attention_dropout > 0.0
    }
}
