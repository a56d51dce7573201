//! Ops of an encoder-decoder's stacks: the per-stack contexts (lengths, masks), a decoder block's cross-attention, and the ops between the stacks.
//!
//! The encoder's blocks run at the input length with bidirectional self-attention, the
//! decoder's at the target length with causal self-attention and cross-attention over the
//! encoder output (see `workload::enc_dec` for the model and its sources). Everything else in a
//! block (norms, projections, FFN, collectives) is the decoder-only block of `layer`, emitted
//! at the stack's token count.

use super::super::model::ModelSpec;
use super::super::plan::ParallelPlan;
use super::dropout::residual;
use super::layer::{core, norm, tp_enter, tp_exit, Ctx, Emit, Span};
use super::{Framework, KernelClass as K, Op, OpsConfig, Phase};

/// The two stacks' views of an encoder-decoder (decoder-only models of each stack's length),
/// which the stacks' contexts borrow.
pub(super) struct Views {
    enc: ModelSpec,
    dec: ModelSpec,
}

impl Views {
    /// The views of `model`, if it is an encoder-decoder.
    pub(super) fn of(model: &ModelSpec) -> Option<Views> {
        model.enc_dec().map(|_| Views {
            enc: model.stack_view(true),
            dec: model.stack_view(false),
        })
    }
}

/// The encoder output a decoder block cross-attends to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Cross {
    /// Encoder tokens per sequence [tokens].
    pub mem_len: f64,
    /// The first decoder block (its K/V input gradient starts the encoder output's gradient).
    pub first_layer: u32,
}

/// Per-stack contexts of one micro-batch on one GPU.
pub(super) struct Stacks<'a> {
    /// Encoder: `micro_batch_seqs x seq_len` tokens, every query attends to every input token.
    pub enc: Ctx<'a>,
    /// Decoder: `micro_batch_seqs x target_len` tokens, causal, cross-attending to `seq_len`.
    pub dec: Ctx<'a>,
}

impl<'a> Stacks<'a> {
    /// The contexts of the views `v` of `model`.
    pub(super) fn new(
        model: &ModelSpec,
        v: &'a Views,
        plan: &'a ParallelPlan,
        cfg: &'a OpsConfig,
    ) -> Stacks<'a> {
        let mut enc = Ctx::new(&v.enc, plan, cfg);
        // Bidirectional: every query attends to all input tokens (Raffel et al. 2020,
        // Sec. 3.2.1, "fully-visible" mask of the encoder).
        enc.span.keys_mean = enc.span.kv;
        let mut dec = Ctx::new(&v.dec, plan, cfg);
        dec.cross = Some(Cross {
            mem_len: model.seq_len as f64,
            first_layer: model.encoder_layers(),
        });
        Stacks { enc, dec }
    }

    /// The context of 0-based `layer` of `model`.
    pub(super) fn of(&self, model: &ModelSpec, layer: u32) -> &Ctx<'a> {
        if model.is_encoder_layer(layer) {
            &self.enc
        } else {
            &self.dec
        }
    }
}

/// A decoder block's cross-attention, after its self-attention: norm, the query projection on
/// the targets, the key/value projection of the encoder output over its `mem` tokens per
/// sequence (in every decoder block), the core with every target attending to every input
/// token (no causal mask), the output projection, TP collectives and the residual. Backward, the
/// K/V projection's input gradient is added into the encoder output's gradient (one add per
/// decoder block after the first) and, under tensor parallelism, reduced over TP: the
/// projection's heads are split there, so its input gradient is a partial sum (Mesh TensorFlow
/// splits `heads` over `model`; Megatron-LM's column-parallel K/V linear). Megatron-LM reduces it
/// in every decoder block (the linear's backward all-reduce, or reduce-scatter with sequence
/// parallelism); Mesh TensorFlow keeps the partial sums lazy and all-reduces their total once,
/// when the encoder's final norm needs it: the einsum gradient's reduction over a split
/// dimension is a `LazyAllreduceSum` (`mesh_tensorflow/ops.py`: "it saves bandwidth to first add
/// and then allreduce"), and `SimdMeshImpl.slicewise(tf.add, ..)` of two of them stays lazy
/// (`simd_mesh_impl.py`, 2019), so the 24 decoder blocks' contributions are added locally and
/// reduced in one all-reduce (charged on the first decoder block, whose backward runs last).
pub(super) fn cross_attention(e: &mut Emit, c: &Ctx, layer: u32, x: Cross) {
    let mem = x.mem_len;
    let m = c.model;
    let (t, tp, p, d) = (c.t, c.tp, c.p, c.d);
    let b = c.plan.micro_batch_seqs as f64;
    let tm = b * mem;
    let hl = m.heads as f64 / tp;
    let kvl = m.kv_heads as f64 / tp;
    let dh = m.head_dim() as f64;
    norm(e, c, "cross.norm", c.ts, d);
    tp_enter(e, c, "cross.tp_gather", t * d * p);
    e.linear(c, "cross.q", t, hl * dh, d, true);
    if layer > x.first_layer {
        // Backward only: d(encoder output) += this block's K/V input gradient (read 2, write 1).
        let n = tm * d;
        let mut acc = Op::compute("cross.memory_grad_add", K::Elementwise, n, 3.0 * n * p);
        acc.layer = e.layer;
        acc.phase = Phase::Backward;
        e.bwd.push(acc);
    }
    if c.cfg.framework != Framework::MeshTensorflow || layer == x.first_layer {
        tp_enter(e, c, "cross.memory_tp_gather", tm * d * p);
    }
    // The encoder output leaves the encoder's final norm.
    e.linear(c, "cross.kv", tm, 2.0 * kvl * dh, d, true);
    // The decoder view's `seq_len` is the target length.
    let span = Span {
        q: m.seq_len as f64,
        kv: mem,
        keys_mean: mem,
    };
    core(e, c, kvl, dh, dh, span);
    e.linear(c, "cross.out", t, d, hl * dh, false);
    tp_exit(e, c, "cross.tp_reduce", t * d * p);
    residual(e, c, "cross.residual");
}

/// Between the stacks, after the last encoder block (forward order): the encoder's final norm
/// on the input tokens, then the decoder's embedding lookup of the targets in the shared table
/// (`emit_embedding` with the decoder's context).
pub(super) fn encoder_final_norm(e: &mut Emit, enc: &Ctx) {
    norm(e, enc, "enc.final_norm", enc.ts, enc.d);
}

#[cfg(test)]
mod tests {
    use super::super::super::enc_dec::EncDecSpec;
    use super::super::super::precision::Precision;
    use super::super::{step_ops, AttentionKernel, OpsConfig};
    use super::*;

    /// The tiny T5 of `workload::enc_dec`'s tests, untied, with `encoder_layers` encoder blocks
    /// (0: the decoder-only model of the same widths).
    fn tiny(encoder_layers: u32) -> ModelSpec {
        let mut m = crate::workload::enc_dec::tests::tiny();
        m.arch.tied_embeddings = false;
        m.arch.enc_dec = (encoder_layers > 0).then_some(EncDecSpec {
            encoder_layers,
            target_len: 3,
        });
        m
    }

    /// The step_ops fixture's plan at `tp`, two micro-batches per step.
    fn plan(tp: u32) -> ParallelPlan {
        ParallelPlan {
            global_batch_seqs: 4,
            ..super::super::tests_fixture::plan(Precision::Bf16, tp)
        }
    }

    fn flops_of(ops: &super::super::StepOps, phase: Phase) -> f64 {
        ops.stages[0]
            .micro_batch()
            .filter(|o| o.phase == phase)
            .map(|o| o.flops)
            .sum()
    }

    /// The op list's matmul and attention FLOPs of a tiny encoder-decoder, forward, against a
    /// hand count per micro-batch of 2 sequences (6 input, 3 target tokens each); the unfused
    /// core computes the whole score square, so its FLOPs match the model's count exactly.
    #[test]
    fn gemm_flops_match_a_hand_count() {
        let m = tiny(2);
        let cfg = OpsConfig {
            attention_kernel: AttentionKernel::Unfused,
            ..OpsConfig::default()
        };
        let ops = step_ops(&m, &plan(1), &cfg).expect("ops");
        let gemm: f64 = ops.stages[0]
            .forward
            .iter()
            .filter(|o| o.class == K::Gemm)
            .map(|o| o.flops)
            .sum();
        // Encoder: 2 blocks x 12 tokens x 2 x (QKV 192 + out 64 + FFN 256) + scores and
        // context 2 x 2 heads x 6 x 6 x 4 x 2 each.
        let enc = 2.0 * (12.0 * 2.0 * 512.0 + 2.0 * (2.0 * 2.0 * 36.0 * 4.0 * 2.0));
        // Decoder: 3 blocks x [6 tokens x 2 x (512 + cross Q 64 + cross out 64) + cross K/V
        // 12 encoder tokens x 2 x 128 + self core 2 x (2 x 2 x 9 x 4 x 2) + cross core
        // 2 x (2 x 2 x 18 x 4 x 2)].
        let dec = 3.0
            * (6.0 * 2.0 * 640.0
                + 12.0 * 2.0 * 128.0
                + 2.0 * (2.0 * 2.0 * 9.0 * 8.0)
                + 2.0 * (2.0 * 2.0 * 18.0 * 8.0));
        // Head on the 6 target tokens: 2 x 6 x 10 x 8.
        let head = 2.0 * 6.0 * 80.0;
        assert_eq!(gemm, enc + dec + head);
        // And per input token, x 3 for the backward, the model's own count.
        assert!((3.0 * gemm / 12.0 - m.flops_per_token_train()).abs() < 1e-9);
        // Backward GEMMs are twice the forward ones.
        let bwd: f64 = ops.stages[0]
            .backward
            .iter()
            .filter(|o| o.class == K::Gemm)
            .map(|o| o.flops)
            .sum();
        assert_eq!(bwd, 2.0 * gemm);
        assert!(flops_of(&ops, Phase::Recompute) == 0.0);
    }

    /// The encoder attends to all keys, the decoder causally, the cross-attention to all input
    /// tokens; the head and loss run on the targets only.
    #[test]
    fn flash_spans_and_head_rows() {
        let m = tiny(2);
        let ops = step_ops(&m, &plan(1), &OpsConfig::default()).expect("ops");
        let st = &ops.stages[0];
        let flash: Vec<&Op> = st
            .forward
            .iter()
            .filter(|o| o.name == "attn.flash")
            .collect();
        // 2 encoder self, 3 decoder self, 3 cross.
        assert_eq!(flash.len(), 8);
        let g = |o: &Op| o.gemm.map(|g| (g.m, g.n)).expect("shape");
        assert_eq!(g(flash[0]), (6.0, 6.0));
        assert_eq!(g(flash[2]), (3.0, 2.0)); // causal mean over 3: (1 + 2 + 3) / 3
        assert_eq!(g(flash[3]), (3.0, 6.0));
        let head = st
            .forward
            .iter()
            .find(|o| o.name == "head.logits")
            .expect("head");
        assert_eq!(head.gemm.map(|g| g.m), Some(6.0));
        let lookups = st
            .forward
            .iter()
            .filter(|o| o.name == "embed.lookup")
            .count();
        assert_eq!(lookups, 2);
        assert!(st.forward.iter().any(|o| o.name == "enc.final_norm"));
        // D - 1 gradient adds into the encoder output.
        let adds = st
            .backward
            .iter()
            .filter(|o| o.name == "cross.memory_grad_add")
            .count();
        assert_eq!(adds, 2);
    }

    /// Under tensor parallelism without sequence parallelism (Mesh TF), every decoder block
    /// all-reduces its K/V projection's input gradient over the encoder's tokens.
    #[test]
    fn tp_reduces_the_memory_gradient_per_decoder_block() {
        let m = tiny(2);
        let cfg = OpsConfig {
            sequence_parallel: false,
            ..OpsConfig::default()
        };
        let ops = step_ops(&m, &plan(2), &cfg).expect("ops");
        let ar: Vec<&Op> = ops.stages[0]
            .backward
            .iter()
            .filter(|o| o.name == "cross.memory_tp_gather")
            .collect();
        assert_eq!(ar.len(), 3);
        let c = ar[0].comm.expect("comm");
        assert_eq!((c.size, c.bytes_per_rank), (2, 12.0 * 8.0 * 2.0));
        // Mesh TensorFlow adds the partial sums first and all-reduces the total once, in fp32
        // over more than 8 cores (tp 8 chips = 16 cores).
        let cfg = OpsConfig {
            framework: Framework::MeshTensorflow,
            ..cfg
        };
        let ops = step_ops(&m, &plan(8), &cfg).expect("ops");
        let ar: Vec<&Op> = ops.stages[0]
            .backward
            .iter()
            .filter(|o| o.name == "cross.memory_tp_gather")
            .collect();
        assert_eq!(ar.len(), 1);
        assert_eq!(ar[0].layer, Some(2));
        assert_eq!(ar[0].comm.map(|c| c.bytes_per_rank), Some(12.0 * 8.0 * 4.0));
    }

    /// A decoder-only model's op list is untouched by this module.
    #[test]
    fn no_encoder_is_the_decoder_only_model() {
        let m = tiny(0);
        assert_eq!(m.enc_dec(), None);
        let ops = step_ops(&m, &plan(1), &OpsConfig::default()).expect("ops");
        assert!(!ops.stages[0]
            .micro_batch()
            .any(|o| o.name.starts_with("cross.") || o.name == "enc.final_norm"));
        // Five identical blocks at seq_len 6.
        let per_layer = |l: u32| -> f64 {
            ops.stages[0]
                .forward
                .iter()
                .filter(|o| o.layer == Some(l))
                .map(|o| o.flops)
                .sum()
        };
        assert_eq!(per_layer(0), per_layer(4));
        // An encoder block is the decoder-only block with a full (not causal) span: the same
        // projections and FFN, more attention FLOPs.
        let ed = step_ops(&tiny(2), &plan(1), &OpsConfig::default()).expect("ops");
        let enc0: f64 = ed.stages[0]
            .forward
            .iter()
            .filter(|o| o.layer == Some(0) && o.name != "attn.flash")
            .map(|o| o.flops)
            .sum();
        let dec_only0: f64 = ops.stages[0]
            .forward
            .iter()
            .filter(|o| o.layer == Some(0) && o.name != "attn.flash")
            .map(|o| o.flops)
            .sum();
        assert_eq!(enc0, dec_only0);
    }
}
