//! Tests of the Evolved Transformer cells: parameters against Meena's 2.6B from a hand count of
//! T2T's shapes, one cell's FLOPs and weights against a hand count, memory, and the refusals.

use super::super::arch::{Arch, Block, EtSpec, NormKind};
use super::super::model::{FfnKind, ModelSpec};
use super::super::plan::ParallelPlan;
use super::super::precision::Precision;
use super::KernelClass as K;
use super::*;

/// An ET model of `layers` cells, the first `enc` of them encoder cells.
fn et(layers: u32, d: u32, heads: u32, seq: u32, enc: u32, dropout: f64) -> ModelSpec {
    ModelSpec {
        name: "et".into(),
        layers,
        d_model: d,
        heads,
        kv_heads: heads,
        seq_len: seq,
        vocab: 8000,
        ffn_hidden: 4 * d,
        ffn: FfnKind::Dense,
        arch: Arch {
            norm: NormKind::LayerNorm,
            tied_embeddings: true,
            block: Block::EvolvedTransformer(EtSpec { encoder_cells: enc }),
            // Meena's one rate for T2T's layer_prepostprocess and attention dropout.
            hidden_dropout: dropout,
            embedding_dropout: dropout,
            attention_dropout: dropout,
            ..Arch::default()
        },
    }
}

fn plan(mb: u32) -> ParallelPlan {
    ParallelPlan {
        micro_batch_seqs: mb,
        global_batch_seqs: mb,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    }
}

#[test]
fn meena_shapes_count_2_6b_parameters() {
    // Meena (Adiwardana et al. 2020, arXiv:2001.09977, Sec. 3.2): 1 ET encoder + 13 ET decoder
    // blocks, hidden 2560, 32 heads, 8K BPE vocabulary shared by encoder and decoder ("2.6B
    // parameters"). Hand count from evolved_transformer.py's layers (weights + biases + norms):
    let d = 2560.0_f64;
    let ln = |w: f64| 2.0 * w; // LayerNorm scale + bias
    let dense = |i: f64, o: f64| i * o + o;
    let sep = |i: f64, o: f64, k: f64| k * i + i * o + o;
    let attn = 4.0 * d * d;
    let encoder = ln(d) + 2.0 * dense(d, d) // GLU values, gates
        + ln(d) + dense(d, 4.0 * d) + (3.0 * d * d / 2.0 + d / 2.0) // dense beside conv 3x1
        + ln(4.0 * d) + sep(4.0 * d, d / 2.0, 9.0)
        + ln(d) + attn
        + ln(d) + dense(d, 4.0 * d) + dense(4.0 * d, d)
        + ln(d); // the encoder's output norm
    let decoder = ln(d) + attn + attn // 16-head self-attention beside attend-to-encoder
        + ln(d) + sep(d, 2.0 * d, 11.0) + sep(d, d / 2.0, 7.0)
        + ln(2.0 * d) + sep(2.0 * d, d, 7.0)
        + ln(d) + attn
        + ln(d) + attn // second attend-to-encoder
        + ln(d) + dense(d, 4.0 * d) + ln(4.0 * d) + dense(4.0 * d, d);
    let embed = 8000.0 * d + ln(d); // shared embedding/softmax, the decoder's output norm
    let hand = encoder + 13.0 * decoder + embed;
    let m = et(14, 2560, 32, 128, 1, 0.1);
    m.validate().unwrap();
    assert!(
        (m.params_total() / hand - 1.0).abs() < 1e-12,
        "{} vs {hand}",
        m.params_total()
    );
    assert!((hand / 2.6e9 - 1.0).abs() < 0.01, "{hand}");
    // Per-layer parameters reach the optimizer and memory through the same count.
    assert!((m.layer_dense_params(0) / encoder - 1.0).abs() < 1e-12);
    assert!((m.layer_dense_params(5) / decoder - 1.0).abs() < 1e-12);
    // A decoder-only stack of decoder cells has no attend-to-encoder branches: 8 d^2 less each.
    let solo = et(14, 2560, 32, 128, 0, 0.0);
    assert!((solo.layer_dense_params(5) - (decoder - 8.0 * d * d - ln(d))).abs() < 1.0);
}

/// Forward ops of one cell.
fn fwd(m: &ModelSpec, layer: u32, cfg: &OpsConfig) -> Vec<Op> {
    layer_forward_ops(m, &plan(2), cfg, layer)
}

#[test]
fn one_decoder_cell_forward_flops_match_a_hand_count() {
    // d 64, 4 heads (the wide branch: min(8, 16) = 8), seq 16, 2 sequences: t = 32 tokens.
    let (d, s, t) = (64.0, 16.0, 32.0);
    let m = et(3, 64, 4, 16, 1, 0.1);
    m.validate().unwrap();
    let ops = fwd(&m, 1, &OpsConfig::default());
    let sum = |f: &dyn Fn(&Op) -> bool| ops.iter().filter(|o| f(o)).map(|o| o.flops).sum::<f64>();
    // GEMMs: four attentions' q, k, v, out (16 d^2), pointwise d->2d, d->d/2, 2d->d (4.5 d^2),
    // FFN 8 d^2: 2 FLOP per weight per token.
    let gemm = sum(&|o| o.class == K::Gemm);
    assert_eq!(gemm, 2.0 * t * 28.5 * d * d);
    // Depthwise 11x1 over d, 7x1 over d, 7x1 over 2d: 2 k FLOP per output element.
    let dw = sum(&|o| o.name.ends_with("depthwise"));
    assert_eq!(dw, 2.0 * t * (11.0 + 7.0 + 14.0) * d);
    // Attention cores: two causal self-attentions ((s+1)/2 keys) and two over all s encoder
    // keys, 4 FLOP per key and channel.
    let core = sum(&|o| o.class == K::FlashAttention);
    assert_eq!(core, 4.0 * t * d * (2.0 * (s + 1.0) / 2.0 + 2.0 * s));
    // Seven norms (d, d, 2d, d, d, d, 4d wide), each a LayerNorm kernel.
    let norms: Vec<f64> = ops
        .iter()
        .filter(|o| o.class == K::Norm)
        .map(|o| o.bytes)
        .collect();
    assert_eq!(norms.len(), 7);
    assert_eq!(norms.iter().sum::<f64>(), 2.0 * 2.0 * t * 11.0 * d);
    // Dropout after every branch: 0.1 in Meena; none without it.
    assert!(ops.iter().any(|o| o.name == "et.conv.dropout"));
    let quiet = et(3, 64, 4, 16, 1, 0.0);
    assert!(!fwd(&quiet, 1, &OpsConfig::default())
        .iter()
        .any(|o| o.name.contains("dropout")));
}

#[test]
fn one_encoder_cell_forward_flops_and_weights_match_a_hand_count() {
    let (d, s, t) = (64.0, 16.0, 32.0);
    let m = et(3, 64, 4, 16, 1, 0.1);
    let cfg = OpsConfig::default();
    let ops = fwd(&m, 0, &cfg);
    let gemm: f64 = ops
        .iter()
        .filter(|o| o.class == K::Gemm)
        .map(|o| o.flops)
        .sum();
    // GLU 2, dense 4, conv 3x1 1.5, pointwise 4d -> d/2 2, attention 4, FFN 8 (d^2).
    assert_eq!(gemm, 2.0 * t * 21.5 * d * d);
    let core: f64 = ops
        .iter()
        .filter(|o| o.class == K::FlashAttention)
        .map(|o| o.flops)
        .sum();
    assert_eq!(core, 4.0 * t * d * s); // bidirectional
    let dw: f64 = ops
        .iter()
        .filter(|o| o.name.ends_with("depthwise"))
        .map(|o| o.flops)
        .sum();
    assert_eq!(dw, 2.0 * t * 9.0 * 4.0 * d);
    // The weight gradients of the step cover exactly the cell's matmul weights.
    let step = step_ops(&m, &plan(2), &cfg).unwrap();
    for layer in 0..2 {
        let w: f64 = step.stages[0]
            .backward
            .iter()
            .filter(|o| o.layer == Some(layer) && o.grad == Some(Grad::Weight))
            .map(|o| o.gemm.map_or(0.0, |g| g.m * g.n))
            .sum();
        assert_eq!(w, m.et_cell(layer).unwrap().gemm_weights, "layer {layer}");
    }
    // The model FLOPs per token count the same work (causal cores at all s keys).
    let step_fwd: f64 = step.stages[0]
        .forward
        .iter()
        .filter(|o| matches!(o.class, K::Gemm | K::FlashAttention) || o.name.ends_with("depthwise"))
        .map(|o| o.flops)
        .sum();
    let causal_gap = 2.0 * 4.0 * t * d * (s - (s + 1.0) / 2.0) * 2.0; // 2 decoder cells x 2 causal
    let model = m.flops_per_token_train() / 3.0 * t;
    assert!(
        (step_fwd + causal_gap - model).abs() / model < 1e-12,
        "{step_fwd} {model}"
    );
}

#[test]
fn t2t_unfused_core_writes_the_scores_and_drops_them() {
    let m = et(2, 64, 4, 16, 0, 0.1);
    let cfg = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..OpsConfig::default()
    };
    let ops = fwd(&m, 0, &cfg);
    // Two self-attentions: the wide one with 8 heads, the standard with 4.
    let scores: Vec<&Op> = ops
        .iter()
        .filter(|o| o.name == "attn.core.scores")
        .collect();
    assert_eq!(scores.len(), 2);
    let n = |h: f64| 2.0 * h * 16.0 * 16.0;
    assert_eq!(scores[0].bytes - scores[1].bytes, (n(8.0) - n(4.0)) * 2.0);
    assert_eq!(
        ops.iter().filter(|o| o.name == "attn.core.dropout").count(),
        2
    );
}

#[test]
fn activation_memory_grows_with_the_encoder_branches_and_dropout() {
    let p = plan(2);
    let with_enc = et(3, 64, 4, 16, 1, 0.1);
    let solo = et(3, 64, 4, 16, 0, 0.1);
    let quiet = et(3, 64, 4, 16, 1, 0.0);
    let a = |m: &ModelSpec, l| crate::workload::memory::activation_bytes_per_layer(m, &p, l);
    assert!(a(&with_enc, 1) > a(&solo, 1));
    assert!(a(&quiet, 1) < a(&with_enc, 1));
    // Decoder cell with both attend-to-encoder branches, per token in d units: attention
    // 6 + 6 + 10, branches 12.5, FFN 14 at 2 B; masks 12.5 d elements of 1 B; lse of 8 + 4 x 3 heads.
    let (sb, d) = (32.0, 64.0);
    let expect = sb * ((22.0 + 12.5 + 14.0) * d * 2.0 + 12.5 * d + 4.0 * 20.0);
    assert_eq!(a(&with_enc, 1), expect);
}

#[test]
fn evolved_transformer_refuses_what_it_does_not_model() {
    let m = et(3, 64, 4, 16, 1, 0.1);
    let field = |r: Result<(), crate::workload::WorkloadError>| match r {
        Err(crate::workload::WorkloadError::InvalidField { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let mut p = plan(2);
    p.tp = 2;
    assert_eq!(
        field(evolved_plan_fits(
            &m,
            &p,
            Framework::TpuEstimator,
            Precision::Bf16
        )),
        "plan.tp"
    );
    let mut p = plan(2);
    p.pp = 2;
    assert_eq!(
        field(evolved_plan_fits(
            &m,
            &p,
            Framework::TpuEstimator,
            Precision::Bf16
        )),
        "plan.pp"
    );
    assert_eq!(
        field(evolved_plan_fits(
            &m,
            &plan(2),
            Framework::Megatron,
            Precision::Fp8
        )),
        "training.precision"
    );
    assert!(step_ops(&m, &p, &OpsConfig::default()).is_err());
    // Model combinations.
    let check = |f: &dyn Fn(&mut ModelSpec)| {
        let mut m = et(3, 64, 4, 16, 1, 0.1);
        f(&mut m);
        match m.validate() {
            Err(crate::workload::WorkloadError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(check(&|m| m.ffn_hidden = 128), "model.ffn_hidden");
    assert_eq!(check(&|m| m.kv_heads = 2), "model.block");
    assert_eq!(check(&|m| m.arch.norm = NormKind::RmsNorm), "model.block");
    assert_eq!(check(&|m| m.arch.sliding_window = Some(8)), "model.block");
    assert_eq!(
        check(&|m| m.arch.block = Block::EvolvedTransformer(EtSpec { encoder_cells: 3 })),
        "model.encoder_layers"
    );
}
