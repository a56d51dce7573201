//! Validation of a model's architecture keys: block kind, encoder-decoder stacks, dropout,
//! positions, the einsum MoE layer's groups and capacity.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::workload::arch::Position;
use crate::workload::{self, Arch, Block, BlockKind, EtSpec, FfnKind, MlaSpec};

impl Validator<'_> {
    /// `block` of `[models.X]`; under the Evolved Transformer its encoder cells are the
    /// encoder-decoder key `encoder_layers` (their encoder and decoder run on `seq_len` each, so
    /// `target_len`, when given, must equal it). The retired `et_dropout` / `et_encoder_cells`
    /// are refused with their replacements named.
    pub(super) fn block(&self, which: &str, m: &RawModel) -> Result<Block, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        if let Some(rate) = m.et_dropout {
            return Err(self.loc.invalid(
                &k("et_dropout"),
                format!("is retired: the Evolved Transformer cells read the standard keys; replace it by `hidden_dropout = {rate}` (T2T layer_prepostprocess_dropout: branch outputs, hiddens, embedded inputs) and `attention_dropout = {rate}` (T2T attention_dropout)"),
            ));
        }
        if let Some(n) = m.et_encoder_cells {
            return Err(self.loc.invalid(
                &k("et_encoder_cells"),
                format!("is retired: the Evolved Transformer's encoder cells are the encoder-decoder key; replace it by `encoder_layers = {n}`"),
            ));
        }
        match m.block.unwrap_or(BlockKind::Standard) {
            BlockKind::Standard => Ok(Block::Standard),
            BlockKind::EvolvedTransformer => {
                if let Some(t) = m.target_len {
                    if t != m.seq_len {
                        return Err(self.loc.invalid(
                            &k("target_len"),
                            format!("the Evolved Transformer stack runs its encoder and decoder cells on seq_len = {} tokens each (Meena: 128 and 128); set target_len = {} or remove it, got {t}", m.seq_len, m.seq_len),
                        ));
                    }
                }
                Ok(Block::EvolvedTransformer(EtSpec {
                    encoder_cells: match m.encoder_layers {
                        Some(n) => self.count0(&k("encoder_layers"), n)?,
                        None => 0,
                    },
                }))
            }
        }
    }

    /// The einsum layer's groups and capacity (`moe_group_size`, `moe_min_capacity`): read with
    /// `moe_impl = "einsum"` only, which needs a capacity factor (its slots per expert and
    /// group are fixed) and top-1 or top-2 routing (Mesh TF's `_switch_gating`, `_top_2_gating`).
    pub(super) fn einsum_config(
        &self,
        which: &str,
        m: &RawModel,
        moe_impl: MoeImpl,
        ffn: &FfnKind,
    ) -> Result<workload::step_ops::EinsumConfig, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        let mut cfg = workload::step_ops::EinsumConfig::default();
        if moe_impl != MoeImpl::Einsum {
            for (f, present) in [
                ("moe_group_size", m.moe_group_size.is_some()),
                ("moe_min_capacity", m.moe_min_capacity.is_some()),
            ] {
                if present {
                    return Err(self.loc.invalid(
                        &k(f),
                        "is read only by the einsum MoE layer; set moe_impl = \"einsum\" or remove it",
                    ));
                }
            }
            return Ok(cfg);
        }
        if let FfnKind::Moe(moe) = ffn {
            if moe.capacity_factor.is_none() {
                return Err(self.loc.invalid(
                    &k("capacity_factor"),
                    "moe_impl = \"einsum\" sends every expert a fixed number of slots per group; \
                     capacity_factor must be a number > 0 (e.g. 1.25), not \"dropless\"",
                ));
            }
            if moe.top_k > 2 {
                return Err(self.loc.invalid(
                    &k("top_k"),
                    format!(
                        "moe_impl = \"einsum\" routes top-1 (Switch) or top-2 (GShard); valid: 1 or 2, got {}",
                        moe.top_k
                    ),
                ));
            }
        }
        if let Some(v) = m.moe_group_size {
            cfg.group_size = self.count(&k("moe_group_size"), v)?;
        }
        if let Some(v) = m.moe_min_capacity {
            cfg.min_capacity = self.count(&k("moe_min_capacity"), v)?;
        }
        Ok(cfg)
    }

    /// A count that may be zero (`0..=u32::MAX`).
    pub(super) fn count0(&self, key: &str, v: i64) -> Result<u32, ScenarioError> {
        if v < 0 || v > u32::MAX as i64 {
            return Err(self
                .loc
                .invalid(key, format!("must be an integer ≥ 0, got {v}")));
        }
        Ok(v as u32)
    }

    /// The architecture keys of `[models.X]`; every absent key keeps [`Arch::default`].
    pub(super) fn arch(&self, which: &str, m: &RawModel) -> Result<Arch, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        let mla = match &m.mla {
            None => None,
            Some(a) => Some(MlaSpec {
                q_lora_rank: self.count0(&k("mla.q_lora_rank"), a.q_lora_rank)?,
                kv_lora_rank: self.count(&k("mla.kv_lora_rank"), a.kv_lora_rank)?,
                qk_nope_head_dim: self.count(&k("mla.qk_nope_head_dim"), a.qk_nope_head_dim)?,
                qk_rope_head_dim: self.count0(&k("mla.qk_rope_head_dim"), a.qk_rope_head_dim)?,
                v_head_dim: self.count(&k("mla.v_head_dim"), a.v_head_dim)?,
            }),
        };
        if mla.is_some() && m.head_dim.is_some() {
            return Err(self.loc.invalid(
                &k("head_dim"),
                "with [mla] the head widths are mla.qk_nope_head_dim + mla.qk_rope_head_dim (keys) and mla.v_head_dim (values); remove `head_dim`",
            ));
        }
        let first_dense_layers = match m.first_dense_layers {
            Some(n) => self.count0(&k("first_dense_layers"), n)?,
            None => 0,
        };
        if first_dense_layers > 0 && m.experts.is_none() {
            return Err(self.loc.invalid(
                &k("first_dense_layers"),
                "only an MoE model has dense layers before its MoE layers; remove it from the dense model",
            ));
        }
        if m.router_score.is_some() && m.experts.is_none() {
            return Err(self.loc.invalid(
                &k("router_score"),
                "a dense model has no router; remove `router_score` (or move it to [models.moe])",
            ));
        }
        let block = self.block(which, m)?;
        let et = block.et().is_some();
        if et && m.norm == Some(crate::workload::NormKind::RmsNorm) {
            return Err(self.loc.invalid(
                &k("norm"),
                "the Evolved Transformer cells use LayerNorm (T2T norm_type = \"layer\"); set norm = \"layernorm\" or leave it out",
            ));
        }
        if et && m.act.is_some() {
            return Err(self.loc.invalid(
                &k("act"),
                "the Evolved Transformer cells fix their activations (GLU, ReLU, swish: evolved_transformer.py); remove `act`",
            ));
        }
        // The Evolved Transformer stack carries its encoder cells itself (`block`).
        let enc_dec = if et {
            None
        } else {
            self.enc_dec(which, m, mla.is_some())?
        };
        let rate = |f: &str, v: Option<f64>| -> Result<f64, ScenarioError> {
            match v {
                None => Ok(0.0),
                Some(r) if (0.0..1.0).contains(&r) => Ok(r),
                Some(r) => Err(self.loc.invalid(
                    &k(f),
                    format!("must be a dropout rate in [0, 1) (0 = no dropout), got {r}"),
                )),
            }
        };
        let position = m.position.unwrap_or_default();
        if mla.is_some() && position != Position::Rotary {
            return Err(self.loc.invalid(
                &k("position"),
                "with [mla] the keys carry decoupled rotary dims (mla.qk_rope_head_dim); valid: \"rotary\", or leave it out",
            ));
        }
        if position == Position::TransformerXl {
            if enc_dec.is_some() {
                return Err(self.loc.invalid(
                    &k("position"),
                    "\"transformer-xl\" is built for a decoder-only stack (its relative term has no encoder or cross-attention form here); valid with encoder_layers: \"rotary\", \"learned\", \"alibi\", \"relative\"",
                ));
            }
            if m.sliding_window.is_some() {
                return Err(self.loc.invalid(
                    &k("sliding_window"),
                    "position = \"transformer-xl\" scores every key of the sequence against the relative encodings; remove sliding_window or use another position kind",
                ));
            }
        }
        let hidden_dropout = rate("hidden_dropout", m.hidden_dropout)?;
        // Absent: the hidden rate, as Megatron-LM and GPT-NeoX apply it to the embedding.
        let embedding_dropout = match m.embedding_dropout {
            None => hidden_dropout,
            v => rate("embedding_dropout", v)?,
        };
        if m.parallel_residual == Some(true) && m.experts.is_some() {
            return Err(self.loc.invalid(
                &k("parallel_residual"),
                "the parallel attention + MLP block is built for dense FFN layers; valid: false, or leave it out (or move it to [models.dense])",
            ));
        }
        let parallel_residual = m.parallel_residual.unwrap_or(false);
        let parallel_shared_norm = match m.parallel_norms {
            None => false,
            Some(_) if !parallel_residual => {
                return Err(self.loc.invalid(
                    &k("parallel_norms"),
                    "counts the norms of the parallel attention + MLP block; set parallel_residual = true or remove `parallel_norms`",
                ));
            }
            Some(1) => true,
            Some(2) => false,
            Some(v) => {
                return Err(self.loc.invalid(
                    &k("parallel_norms"),
                    format!("must be 1 (one norm shared by attention and MLP, PaLM) or 2 (one per branch, GPT-NeoX), got {v}"),
                ));
            }
        };
        Ok(Arch {
            parallel_residual,
            parallel_shared_norm,
            hidden_dropout,
            embedding_dropout,
            attention_dropout: rate("attention_dropout", m.attention_dropout)?,
            position,
            block,
            head_dim: m
                .head_dim
                .map(|v| self.count(&k("head_dim"), v))
                .transpose()?,
            mla,
            first_dense_layers,
            sliding_window: m
                .sliding_window
                .map(|v| self.count(&k("sliding_window"), v))
                .transpose()?,
            tied_embeddings: m.tied_embeddings.unwrap_or(false),
            act: m.act.unwrap_or_default(),
            // T2T's `norm_type = "layer"` under the Evolved Transformer.
            norm: m.norm.unwrap_or(if et {
                crate::workload::NormKind::LayerNorm
            } else {
                crate::workload::NormKind::default()
            }),
            router_score: m.router_score.unwrap_or_default(),
            bias: m.bias.unwrap_or(false),
            enc_dec,
        })
    }

    /// `encoder_layers` and `target_len`: both for an encoder-decoder, neither (or
    /// `encoder_layers = 0`) for a decoder-only model; `layers` counts both stacks.
    pub(super) fn enc_dec(
        &self,
        which: &str,
        m: &RawModel,
        mla: bool,
    ) -> Result<Option<workload::EncDecSpec>, ScenarioError> {
        let k = |f: &str| format!("models.{which}.{f}");
        let encoder_layers = match m.encoder_layers {
            None => 0,
            Some(n) => self.count0(&k("encoder_layers"), n)?,
        };
        if encoder_layers == 0 {
            if m.target_len.is_some() {
                return Err(self.loc.invalid(
                    &k("target_len"),
                    "only an encoder-decoder has a target length (a decoder-only model runs on seq_len); add encoder_layers (1..layers-1) or remove target_len",
                ));
            }
            return Ok(None);
        }
        let target_len = self.count(
            &k("target_len"),
            m.target_len.ok_or_else(|| {
                self.loc.invalid(
                    &k("encoder_layers"),
                    "an encoder-decoder needs `target_len`: the decoder's tokens per sequence (seq_len is the encoder's input length)",
                )
            })?,
        )?;
        if m.layers > 0 && encoder_layers as i64 >= m.layers {
            return Err(self.loc.invalid(
                &k("encoder_layers"),
                format!(
                    "encoder_layers = {encoder_layers} leaves no decoder: layers counts the encoder and the decoder blocks (T5-11B: layers = 48, encoder_layers = 24); valid: 1..={}",
                    m.layers - 1
                ),
            ));
        }
        let refuse = |key: &str, what: &str| {
            Err(self.loc.invalid(
                &k(key),
                format!("{what} is not modelled in an encoder-decoder; remove `{key}` or `encoder_layers`"),
            ))
        };
        if m.experts.is_some() {
            return refuse(
                "encoder_layers",
                "an MoE FFN (the routing replay sizes every MoE layer at one token count)",
            );
        }
        if mla {
            return refuse("mla", "multi-head latent attention");
        }
        if m.sliding_window.is_some() {
            return refuse("sliding_window", "sliding-window attention");
        }
        Ok(Some(workload::EncDecSpec {
            encoder_layers,
            target_len,
        }))
    }
}
