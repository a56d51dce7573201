//! Encoder-decoder (T5-style) models: the two stacks, their lengths, parameters, training FLOPs and activation memory.
//!
//! An encoder-decoder model (Vaswani et al. 2017; T5: Raffel et al. 2020, arXiv:1910.10683,
//! Sec. 3.1-3.2) has `ModelSpec::layers` blocks: the first `encoder_layers` are the encoder, the
//! rest the decoder. The encoder reads `seq_len` input tokens per sequence with bidirectional
//! self-attention; each decoder block runs causal self-attention over `target_len` target tokens,
//! then cross-attention (queries from the decoder, keys and values projected from the encoder's
//! output, over its `seq_len` tokens, in every decoder block: Mesh TensorFlow
//! `transformer_layers.EncDecAttention`, Megatron-LM `AttnMaskType.padding` cross-attention), then
//! its FFN. Both stacks end in a final norm; the input embedding is shared by the two stacks
//! (Mesh TensorFlow `Bitransformer(shared_embedding=True)`); the LM head and the loss run on the
//! targets only. The job's tokens count the encoder's input tokens (`seq_len` per sequence), as
//! T5 counts them ("2^11 sequences of length 512 ... about 1 trillion pre-training tokens",
//! Raffel et al. 2020, Sec. 3.7), so FLOP per token is per input token.
//!
//! Not modelled (refused with an error): MoE layers (the routing replay sizes every MoE layer at
//! one token count), multi-head latent attention, sliding-window attention, and pipeline
//! parallelism (stages would have to be placed across the two stacks, with the encoder output
//! sent to every decoder stage: Megatron-LM's `pipeline_model_parallel_split_rank`).

use super::error::{invalid, WorkloadError};
use super::model::ModelSpec;
use super::plan::ParallelPlan;

/// Encoder-decoder structure of a [`ModelSpec`] (`arch.enc_dec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncDecSpec {
    /// Encoder blocks: layers `0..encoder_layers` of `ModelSpec::layers` (the rest are the
    /// decoder's, with cross-attention).
    pub encoder_layers: u32,
    /// Decoder (target) tokens per sequence; the encoder reads `ModelSpec::seq_len` input tokens.
    pub target_len: u32,
}

impl ModelSpec {
    /// The encoder-decoder structure, if the model has one.
    pub fn enc_dec(&self) -> Option<EncDecSpec> {
        self.arch.enc_dec
    }

    /// Encoder blocks (0 for a decoder-only model).
    pub fn encoder_layers(&self) -> u32 {
        self.arch.enc_dec.map_or(0, |e| e.encoder_layers)
    }

    /// Whether 0-based `layer` is an encoder block.
    pub fn is_encoder_layer(&self, layer: u32) -> bool {
        layer < self.encoder_layers()
    }

    /// Whether 0-based `layer` has cross-attention (a decoder block of an encoder-decoder).
    pub fn has_cross_attention(&self, layer: u32) -> bool {
        self.arch.enc_dec.is_some() && !self.is_encoder_layer(layer) && layer < self.layers
    }

    /// Tokens per sequence the LM head and the loss run on [tokens]: `target_len` for an
    /// encoder-decoder, `seq_len` for a decoder-only model.
    pub fn target_len(&self) -> u32 {
        self.arch.enc_dec.map_or(self.seq_len, |e| e.target_len)
    }

    /// Tokens per sequence 0-based `layer` runs on [tokens]: the input length in the encoder,
    /// the target length in the decoder.
    pub fn layer_len(&self, layer: u32) -> u32 {
        if self.is_encoder_layer(layer) {
            self.seq_len
        } else {
            self.target_len()
        }
    }

    /// Parameters of one cross-attention block: Q and O (`d x heads*head_dim`) on the decoder
    /// side, K and V (`d x kv_heads*head_dim`) on the encoder output, plus its norm.
    pub fn cross_params_per_block(&self) -> f64 {
        let d = self.d_model as f64;
        let q = (self.heads * self.head_dim()) as f64;
        let kv = (self.kv_heads * self.head_dim()) as f64;
        2.0 * d * q + 2.0 * d * kv + d * self.arch.norm.params_per_channel()
    }

    /// Cross-attention parameters of 0-based `layer` (0 unless it is a decoder block of an
    /// encoder-decoder).
    pub fn cross_params(&self, layer: u32) -> f64 {
        if self.has_cross_attention(layer) {
            self.cross_params_per_block()
        } else {
            0.0
        }
    }

    /// Cross-attention parameters of the whole model.
    pub fn cross_params_total(&self) -> f64 {
        match self.arch.enc_dec {
            None => 0.0,
            Some(e) => (self.layers - e.encoder_layers) as f64 * self.cross_params_per_block(),
        }
    }

    /// Stacks that end in a final norm: 2 for an encoder-decoder, else 1.
    pub fn final_norms(&self) -> f64 {
        if self.arch.enc_dec.is_some() {
            2.0
        } else {
            1.0
        }
    }

    /// One stack of an encoder-decoder seen as a decoder-only model of that stack's length
    /// (`seq_len` = the input length for the encoder, the target length for the decoder), with
    /// the other keys unchanged; what the per-layer op list and activation memory of a block
    /// (without its cross-attention) are computed on. A decoder-only model is returned as is.
    pub fn stack_view(&self, encoder: bool) -> ModelSpec {
        let mut m = self.clone();
        if let Some(e) = self.arch.enc_dec {
            m.arch.enc_dec = None;
            if !encoder {
                m.seq_len = e.target_len;
            }
        }
        m
    }

    /// The encoder-decoder keys' ranges, and the keys they cannot be combined with.
    pub(crate) fn validate_enc_dec(&self) -> Result<(), WorkloadError> {
        let Some(e) = self.arch.enc_dec else {
            return Ok(());
        };
        if e.encoder_layers == 0 || e.encoder_layers >= self.layers {
            return Err(invalid(
                "model.encoder_layers",
                e.encoder_layers,
                format!(
                    "must be between 1 and model.layers - 1 = {} (model.layers counts the encoder and the decoder blocks)",
                    self.layers.saturating_sub(1)
                ),
            ));
        }
        if e.target_len == 0 {
            return Err(invalid(
                "model.target_len",
                0,
                "must be at least 1 (tokens)",
            ));
        }
        if self.arch.parallel_residual {
            return Err(invalid(
                "model.parallel_residual",
                true,
                "the parallel attention + MLP block is not built with the decoder's cross-attention; set parallel_residual = false or remove encoder_layers",
            ));
        }
        if self.moe().is_some() {
            return Err(invalid(
                "model.encoder_layers",
                e.encoder_layers,
                "an encoder-decoder with MoE layers is not modelled (the routing replay sizes every MoE layer at one token count); use a dense model",
            ));
        }
        if self.arch.mla.is_some() {
            return Err(invalid(
                "model.mla",
                "set",
                "multi-head latent attention is not modelled in an encoder-decoder; remove [mla] or encoder_layers",
            ));
        }
        if let Some(w) = self.arch.sliding_window {
            return Err(invalid(
                "model.sliding_window",
                w,
                "sliding-window attention is not modelled in an encoder-decoder; remove it or encoder_layers",
            ));
        }
        Ok(())
    }

    /// Training FLOP per input token of an encoder-decoder, counted as
    /// [`ModelSpec::flops_per_token_train`] counts a decoder-only model (3 x forward; 2 FLOP per
    /// matmul weight per token it runs on; attention scores and context `4 * keys * width` per
    /// query, no causal halving), per sequence then divided by the input length: encoder blocks
    /// on `seq_len` tokens attending to `seq_len` keys; decoder blocks on `target_len` tokens
    /// attending to `target_len` keys (self) and `seq_len` keys (cross), the cross-attention's Q
    /// and O on the targets and its K and V on the `seq_len` encoder outputs; the LM head on the
    /// targets.
    pub(crate) fn enc_dec_flops_per_token_train(&self, e: EncDecSpec) -> f64 {
        let (s_in, s_tg) = (self.seq_len as f64, e.target_len as f64);
        let d = self.d_model as f64;
        let w = self.attn_core_width();
        let block = self.attn_params_per_layer() + self.dense_ffn_params();
        let q_o = 2.0 * d * (self.heads * self.head_dim()) as f64;
        let k_v = 2.0 * d * (self.kv_heads * self.head_dim()) as f64;
        let enc = e.encoder_layers as f64 * s_in * (2.0 * block + 4.0 * s_in * w);
        let dec = (self.layers - e.encoder_layers) as f64
            * (s_tg * (2.0 * (block + q_o) + 4.0 * s_tg * w + 4.0 * s_in * w) + s_in * 2.0 * k_v);
        let head = s_tg * 2.0 * self.vocab as f64 * d;
        3.0 * (enc + dec + head) / s_in
    }
}

/// The plan keys an encoder-decoder cannot use: pipeline parallelism (its stages would have to
/// be placed across the two stacks, with the encoder output sent to every decoder stage).
pub fn check_plan(model: &ModelSpec, plan: &ParallelPlan) -> Result<(), WorkloadError> {
    if model.arch.enc_dec.is_some() && plan.pp > 1 {
        return Err(invalid(
            "plan.pp",
            plan.pp,
            "an encoder-decoder is modelled without pipeline parallelism (no placement of its two stacks on stages); valid: pp = 1",
        ));
    }
    Ok(())
}

/// Activation bytes one block of an encoder-decoder keeps for its backward, for one micro-batch
/// on one GPU, as [`super::memory::activation_bytes_per_layer`] counts them: the block's
/// self-attention and FFN at its stack's length (term by term as there), and in a decoder block
/// the cross-attention: its norm input and the query projection's input `4 s_t b h`, the
/// output's dropout mask `s_t b h`, Q and the attention output `2 s_t b (q + o)`, K and V over
/// the encoder's tokens `2 s_i b kv` (2-byte units), the fp32 log-sum-exp `4 a s_t b` unless
/// recomputed. The encoder output that every decoder block's K/V projection reads is one tensor,
/// kept once per micro-batch (`2 s_i b h`): it is counted with the first decoder block.
pub(crate) fn activation_bytes(
    model: &ModelSpec,
    plan: &ParallelPlan,
    layer: u32,
    block_bytes: impl Fn(&ModelSpec) -> f64,
) -> f64 {
    let encoder = model.is_encoder_layer(layer);
    let view = model.stack_view(encoder);
    let mut bytes = block_bytes(&view);
    if model.has_cross_attention(layer) {
        bytes += cross_bytes(model, plan, layer);
    }
    bytes
}

/// The cross-attention's share of [`activation_bytes`] (and the encoder output, on the first
/// decoder block).
fn cross_bytes(model: &ModelSpec, plan: &ParallelPlan, layer: u32) -> f64 {
    let b = plan.micro_batch_seqs as f64;
    let (s_in, s_tg) = (model.seq_len as f64, model.target_len() as f64);
    let h = model.d_model as f64;
    let a = model.heads as f64;
    let q = a * model.head_dim() as f64;
    let kv = 2.0 * model.kv_heads as f64 * model.head_dim() as f64;
    let mut units = 5.0 * s_tg * b * h + 2.0 * s_tg * b * 2.0 * q + 2.0 * s_in * b * kv;
    // The `s b h` of the 5 is the residual-dropout mask (1 byte), kept only with hidden dropout
    // (as `memory::hidden_dropout_mask_bytes`).
    if !model.arch.has_hidden_dropout() {
        units -= s_tg * b * h;
    }
    if layer == model.encoder_layers() {
        units += 2.0 * s_in * b * h;
    }
    let fp32 = if plan.recompute == super::plan::Recompute::Selective {
        0.0
    } else {
        4.0 * a * s_tg * b
    };
    (units * plan.precision_bytes() / 2.0 + fp32) / plan.tp.max(1) as f64
}

/// What one block keeps under full recomputation: its input (`2 s b h / t` at its stack's
/// length), and on the first decoder block also the encoder output every decoder block reads.
pub(crate) fn full_recompute_input_elems(
    model: &ModelSpec,
    plan: &ParallelPlan,
    layer: u32,
) -> f64 {
    let b = plan.micro_batch_seqs as f64;
    let mut rows = model.layer_len(layer) as f64 * b;
    if model.arch.enc_dec.is_some() && layer == model.encoder_layers() {
        rows += model.seq_len as f64 * b;
    }
    rows * model.d_model as f64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::workload::arch::{Act, Arch};
    use crate::workload::model::FfnKind;

    /// A tiny T5-shaped model: 2 encoder + 3 decoder blocks, d 8, 2 heads of 4, ReLU-like
    /// two-matrix FFN of 16, inputs 6 tokens, targets 3, vocab 10.
    pub(crate) fn tiny() -> ModelSpec {
        ModelSpec {
            name: "tiny-t5".into(),
            layers: 5,
            d_model: 8,
            heads: 2,
            kv_heads: 2,
            seq_len: 6,
            vocab: 10,
            ffn_hidden: 16,
            ffn: FfnKind::Dense,
            arch: Arch {
                act: Act::Gelu,
                tied_embeddings: true,
                enc_dec: Some(EncDecSpec {
                    encoder_layers: 2,
                    target_len: 3,
                }),
                ..Arch::default()
            },
        }
    }

    #[test]
    fn tiny_counts_by_hand() {
        let m = tiny();
        m.validate().expect("valid");
        // Per block: attention 4 x 8 x 8 = 256, FFN 2 x 8 x 16 = 256, two RMSNorms 16.
        // Decoder blocks add cross-attention 256 and a third norm 8.
        let enc = 2.0 * (256.0 + 256.0 + 16.0);
        let dec = 3.0 * (256.0 + 256.0 + 16.0 + 256.0 + 8.0);
        // Tied embedding 10 x 8, two final norms of 8.
        let emb = 80.0 + 16.0;
        assert_eq!(m.params_total(), enc + dec + emb);
        assert_eq!(m.params_active(), m.params_total());
        // FLOPs per sequence, forward: encoder 2 blocks x 6 tokens x (2 x 512 + 4 x 6 keys x 8);
        // decoder 3 blocks x [3 tokens x (2 x (512 + 128 for cross Q, O) + 4 x 3 x 8 + 4 x 6 x 8)
        // + 6 encoder tokens x 2 x 128 for cross K, V]; head 3 x 2 x 80.
        let fwd_enc = 2.0 * 6.0 * (1024.0 + 192.0);
        let fwd_dec = 3.0 * (3.0 * (1280.0 + 96.0 + 192.0) + 6.0 * 256.0);
        let fwd_head = 3.0 * 160.0;
        let per_input_token = 3.0 * (fwd_enc + fwd_dec + fwd_head) / 6.0;
        assert!((m.flops_per_token_train() - per_input_token).abs() < 1e-9);
    }

    #[test]
    fn layers_split_into_stacks() {
        let m = tiny();
        assert!(m.is_encoder_layer(1) && !m.is_encoder_layer(2));
        assert!(!m.has_cross_attention(1) && m.has_cross_attention(2) && m.has_cross_attention(4));
        assert!(!m.has_cross_attention(5));
        assert_eq!((m.layer_len(0), m.layer_len(4), m.target_len()), (6, 3, 3));
        let v = m.stack_view(false);
        assert_eq!((v.seq_len, v.arch.enc_dec), (3, None));
        assert_eq!(m.stack_view(true).seq_len, 6);
    }

    fn field_of(e: WorkloadError) -> &'static str {
        match e {
            WorkloadError::InvalidField { field, .. } => field,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn bad_enc_dec_keys_name_the_field() {
        let with = |f: &dyn Fn(&mut ModelSpec)| {
            let mut m = tiny();
            f(&mut m);
            m.validate().expect_err("accepted")
        };
        let e = with(&|m| {
            m.arch.enc_dec = Some(EncDecSpec {
                encoder_layers: 5,
                target_len: 3,
            })
        });
        assert!(
            e.to_string().contains("between 1 and model.layers - 1 = 4"),
            "{e}"
        );
        assert_eq!(field_of(e), "model.encoder_layers");
        let e = with(&|m| {
            m.arch.enc_dec = Some(EncDecSpec {
                encoder_layers: 0,
                target_len: 3,
            })
        });
        assert_eq!(field_of(e), "model.encoder_layers");
        let e = with(&|m| {
            m.arch.enc_dec = Some(EncDecSpec {
                encoder_layers: 2,
                target_len: 0,
            })
        });
        assert_eq!(field_of(e), "model.target_len");
        let e = with(&|m| m.arch.sliding_window = Some(4));
        assert_eq!(field_of(e), "model.sliding_window");
        let e = with(&|m| {
            m.ffn = FfnKind::Moe(crate::workload::MoeSpec {
                experts: 4,
                top_k: 1,
                capacity_factor: None,
                expert_ffn_hidden: 16,
                shared_experts: 0,
                moe_every: 1,
            })
        });
        assert!(e.to_string().contains("MoE"), "{e}");
        assert_eq!(field_of(e), "model.encoder_layers");
    }

    /// A decoder block keeps its stack's block activations plus the cross-attention's (and the
    /// first one the encoder output); the logits are the targets'.
    #[test]
    fn activation_memory_by_hand() {
        use crate::workload::memory::{activation_bytes_per_layer, memory_per_gpu};
        let m = tiny();
        let plan = ParallelPlan::single_gpu(crate::workload::Precision::Bf16);
        let (enc, dec) = (m.stack_view(true), m.stack_view(false));
        assert_eq!(
            activation_bytes_per_layer(&m, &plan, 0),
            activation_bytes_per_layer(&enc, &plan, 0)
        );
        // Cross-attention of 3 targets over 6 inputs, d 8, q = kv-per-matrix = 8, bf16, no
        // hidden dropout (so no 1-byte mask of 3 x 8): 4 x 3 x 8 + 2 x 3 x (8 + 8) + 2 x 6 x 16
        // = 384 bytes, + the fp32 log-sum-exp 4 x 2 heads x 3 = 24; the first decoder block also
        // the encoder output 2 x 6 x 8 = 96.
        let dec_block = activation_bytes_per_layer(&dec, &plan, 3);
        assert_eq!(
            activation_bytes_per_layer(&m, &plan, 3),
            dec_block + 384.0 + 24.0
        );
        assert_eq!(
            activation_bytes_per_layer(&m, &plan, 2),
            dec_block + 384.0 + 24.0 + 96.0
        );
        // Logits: fp32 over the 3 targets x vocab 10.
        let acts: f64 = (0..5)
            .map(|l| activation_bytes_per_layer(&m, &plan, l))
            .sum();
        assert_eq!(
            memory_per_gpu(&m, &plan).activations_bytes,
            acts + 4.0 * 3.0 * 10.0
        );
    }

    #[test]
    fn pipeline_parallelism_is_refused() {
        let m = tiny();
        let plan = ParallelPlan {
            pp: 2,
            global_batch_seqs: 4,
            ..ParallelPlan::single_gpu(crate::workload::Precision::Bf16)
        };
        let e = check_plan(&m, &plan).expect_err("pp 2 accepted");
        assert!(e.to_string().contains("valid: pp = 1"), "{e}");
        assert_eq!(field_of(e), "plan.pp");
        let plan = ParallelPlan { pp: 1, ..plan };
        check_plan(&m, &plan).expect("pp 1");
    }
}
