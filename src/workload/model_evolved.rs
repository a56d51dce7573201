//! The Evolved Transformer's shapes (Tensor2Tensor `models/evolved_transformer.py`): which
//! combinations its cells support, and each cell's weights, depthwise taps, biases and norms.

use super::arch::{EtSpec, NormKind};
use super::error::{invalid, WorkloadError};
use super::model::ModelSpec;

/// Heads of the Evolved Transformer decoder's wide self-attention branch: `num_heads` doubled up
/// to 16, never fewer than `num_heads` (T2T `_capped_double_heads(num_heads, cap=16)`).
pub fn et_wide_heads(heads: u32) -> u32 {
    heads.saturating_mul(2).min(16).max(heads)
}

/// Weight counts of one Evolved Transformer cell ([`ModelSpec::et_cell`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EtCell {
    /// An encoder cell (else a decoder cell).
    pub encoder: bool,
    /// A decoder cell with the two attend-to-encoder branches.
    pub cross: bool,
    /// Matmul weights, each used once per token [parameters].
    pub gemm_weights: f64,
    /// Depthwise-convolution taps x channels, each used once per token [parameters].
    pub depthwise: f64,
    /// Biases and LayerNorm scales and biases [parameters].
    pub other: f64,
    /// Attention cores (scores + context) per token.
    pub attention_cores: f64,
}

impl EtCell {
    /// All parameters of the cell.
    pub fn params(&self) -> f64 {
        self.gemm_weights + self.depthwise + self.other
    }
}

impl ModelSpec {
    /// The combinations the Evolved Transformer cells support (T2T `evolved_transformer.py`):
    /// multi-head attention over `d_model / heads` wide heads, dense cells, fixed `4 d` widths.
    pub(super) fn validate_et(&self, et: &EtSpec) -> Result<(), WorkloadError> {
        let a = &self.arch;
        let refuse = |what: &str| {
            invalid(
                "model.block",
                "\"evolved-transformer\"",
                format!("the Evolved Transformer cells (T2T evolved_transformer.py) have no {what}; use block = \"standard\" or remove it"),
            )
        };
        if self.moe().is_some() {
            return Err(refuse("MoE layers"));
        }
        if a.mla.is_some() {
            return Err(refuse("multi-head latent attention"));
        }
        if a.head_dim.is_some() {
            return Err(refuse("`head_dim` (heads are d_model / heads wide)"));
        }
        if a.parallel_residual {
            return Err(refuse(
                "parallel attention + MLP block (`parallel_residual`)",
            ));
        }
        if a.position != super::arch::Position::Rotary {
            return Err(refuse(
                "`position` kind (T2T adds a sinusoidal timing signal, charged with the embedding)",
            ));
        }
        if a.sliding_window.is_some() {
            return Err(refuse("sliding-window attention"));
        }
        if self.kv_heads != self.heads {
            return Err(refuse(
                "grouped-query attention (kv_heads must equal heads)",
            ));
        }
        if a.norm != NormKind::LayerNorm {
            return Err(refuse(
                "RMSNorm (T2T norm_type = \"layer\": set norm = \"layernorm\")",
            ));
        }
        let four_d = 4 * self.d_model;
        if self.ffn_hidden != four_d {
            return Err(invalid(
                "model.ffn_hidden",
                self.ffn_hidden,
                format!("the Evolved Transformer's dense and branch widths are fixed at 4 x d_model (evolved_transformer.py `int(hparams.hidden_size * 4)`): set ffn_hidden = {four_d}"),
            ));
        }
        if !self.d_model.is_multiple_of(2)
            || !self.d_model.is_multiple_of(et_wide_heads(self.heads))
        {
            return Err(invalid(
                "model.d_model",
                self.d_model,
                format!("the Evolved Transformer cells need an even d_model (their d_model / 2 branches) that the {} heads of the wide attention branch divide", et_wide_heads(self.heads)),
            ));
        }
        if et.encoder_cells >= self.layers {
            return Err(invalid(
                "model.encoder_layers",
                et.encoder_cells,
                format!(
                    "must be below model.layers = {} (the decoder cells follow the encoder cells)",
                    self.layers
                ),
            ));
        }
        Ok(())
    }

    /// Weight shapes of `layer` if the model's blocks are Evolved Transformer cells: an encoder
    /// cell for the first `encoder_layers` layers, else a decoder cell (with its two
    /// attend-to-encoder branches when there are encoder cells). Read from Tensor2Tensor
    /// `models/evolved_transformer.py` (`evolved_transformer_encoder` / `_decoder`), `d` =
    /// d_model, attention key/value channels = `d` (T2T default), projections without bias
    /// (`common_attention.compute_attention_component`, `use_bias=False`), every `Dense`,
    /// `Conv1D` and `SeparableConv1D` with a bias (TF default `use_bias=True`), LayerNorm scale
    /// and bias per channel (`norm_type = "layer"`).
    ///
    /// Encoder cell: GLU (two `d x d` dense), a `d x 4d` ReLU dense beside a 3x1 `d -> d/2` ReLU
    /// conv, LayerNorm over `4d`, a 9x1 separable conv `4d -> d/2`, self-attention (`4 d^2`), a
    /// `d -> 4d -> d` ReLU FFN; norms `d, d, 4d, d, d` (+ the final encoder norm on the last
    /// encoder cell). Decoder cell: self-attention with `min(2h, 16)` (at least `h`) heads
    /// (`4 d^2`) beside an attend-to-encoder branch (`4 d^2`), an 11x1 separable conv
    /// `d -> 2d` (ReLU) beside a 7x1 separable conv `d -> d/2`, LayerNorm over `2d`, a 7x1
    /// separable conv `2d -> d`, self-attention, a second attend-to-encoder, a `d -> 4d` swish
    /// dense, LayerNorm over `4d`, a `4d -> d` dense; norms `d, d, 2d, d, (d), d, 4d`.
    pub fn et_cell(&self, layer: u32) -> Option<EtCell> {
        let et = self.arch.block.et()?;
        let d = self.d_model as f64;
        let d2 = d * d;
        if layer < et.encoder_cells {
            let final_norm = if layer + 1 == et.encoder_cells {
                d
            } else {
                0.0
            };
            Some(EtCell {
                encoder: true,
                cross: false,
                // GLU 2d^2, left dense 4d^2, 3x1 conv 3 d (d/2), pointwise 4d (d/2), attention
                // 4d^2, FFN 8d^2.
                gemm_weights: (2.0 + 4.0 + 1.5 + 2.0 + 4.0 + 8.0) * d2,
                // 9x1 depthwise over 4d channels.
                depthwise: 9.0 * 4.0 * d,
                // Biases: GLU 2d, left dense 4d, conv d/2, separable d/2, FFN 4d + d; norms.
                other: 12.0 * d + 2.0 * (8.0 * d + final_norm),
                attention_cores: 1.0,
            })
        } else {
            let cross = et.encoder_cells > 0;
            let x = if cross { 1.0 } else { 0.0 };
            Some(EtCell {
                encoder: false,
                cross,
                // Wide attention 4d^2 (+ cross 4d^2), pointwise 2d^2 + d^2/2 + 2d^2, attention
                // 4d^2 (+ second cross 4d^2), FFN 8d^2.
                gemm_weights: (4.0 + 2.0 + 0.5 + 2.0 + 4.0 + 8.0 + 8.0 * x) * d2,
                // 11x1 over d, 7x1 over d, 7x1 over 2d.
                depthwise: (11.0 + 7.0 + 14.0) * d,
                // Biases: separable 2d + d/2 + d, FFN 4d + d; norms d, d, 2d, d, (d), d, 4d.
                other: 8.5 * d + 2.0 * (10.0 + x) * d,
                attention_cores: 2.0 + 2.0 * x,
            })
        }
    }
}
