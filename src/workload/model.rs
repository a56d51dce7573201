//! Transformer architecture (dense or MoE): its shape, head widths and MoE layers; `model/` holds its checks, counts, presets.

use super::arch::Arch;
pub use super::model_evolved::{et_wide_heads, EtCell};

mod params;
pub mod presets;
mod validate;

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
}

#[cfg(test)]
mod tests {
    use super::super::error::WorkloadError;
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
