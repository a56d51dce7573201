//! Transformer-XL's position parameters of a model (`position = "transformer-xl"`): the
//! per-layer projection of the relative encodings and the query biases.

use super::arch::Position;
use super::model::ModelSpec;

impl ModelSpec {
    /// Position parameters inside every layer: Transformer-XL's projection of the relative
    /// encodings `W_r`, `d_model x heads*head_dim` (kimiyoung/transformer-xl `tf/model.py`:
    /// `tf.layers.dense(r, n_head * d_head, use_bias=False, name='r')` in each layer), and its
    /// two query biases `u`, `v` of `heads x head_dim` counted per layer (the code's
    /// `untie_r = True`; its default ties them across layers, `L - 1` copies fewer, < 0.01 % of
    /// a model); 0 for the other kinds. With `W_r` a layer holds `13 d^2` at `ffn = 4d`, which
    /// is what Gopher's published sizes count (Rae et al. 2021 Table 1: 80 layers, d 16,384,
    /// vocab 32k, untied: `80 x 13 d^2 + 2 x 32k d` = 280.2B, "280B"; without `W_r` 258B).
    pub fn position_params_per_layer(&self) -> f64 {
        match self.arch.position {
            Position::TransformerXl => {
                let w = (self.heads * self.head_dim()) as f64;
                self.d_model as f64 * w + 2.0 * w
            }
            Position::Rotary | Position::Learned | Position::Alibi | Position::Relative => 0.0,
        }
    }

    /// Matmul weights of Transformer-XL's per-layer projection `W_r` (`d_model x heads*head_dim`;
    /// 0 for the other kinds), counted in the model FLOPs as a weight used per token: the
    /// `6N` convention PaLM's MFU applies to Gopher's 280B (Chowdhery et al. 2022 App. B). The
    /// step's own op list charges what the projection really runs (once per micro-batch over
    /// the table's rows, weight gradient only: `step_ops::positions::transformer_xl`).
    pub fn rel_proj_weights(&self) -> f64 {
        match self.arch.position {
            Position::TransformerXl => self.d_model as f64 * (self.heads * self.head_dim()) as f64,
            _ => 0.0,
        }
    }
}
