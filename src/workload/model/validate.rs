//! Validation of a [`ModelSpec`]: counts, ranges, divisibility and architecture-key combinations.

use super::super::arch::Position;
use super::super::error::{invalid, WorkloadError};
use super::ModelSpec;

impl ModelSpec {
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
}
