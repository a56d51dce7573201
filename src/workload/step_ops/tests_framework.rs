//! Tests of the framework- and precision-specific ops: GPT-NeoX's layout copies around
//! FlashAttention, linear-bias gradients, and Transformer Engine's FP8 casts.

use super::super::arch::{Act, Arch, NormKind};
use super::super::model::{FfnKind, ModelSpec};
use super::super::plan::{ParallelPlan, Recompute};
use super::super::precision::Precision;
use super::*;

/// Dense d 512, 2 layers, 8 heads of 64, seq 128, vocab 1000, GELU FFN 2048, LayerNorm.
fn dense(bias: bool) -> ModelSpec {
    ModelSpec {
        name: "dense".into(),
        layers: 2,
        d_model: 512,
        heads: 8,
        kv_heads: 8,
        seq_len: 128,
        vocab: 1000,
        ffn_hidden: 2048,
        ffn: FfnKind::Dense,
        arch: Arch {
            act: Act::Gelu,
            norm: NormKind::LayerNorm,
            bias,
            ..Arch::default()
        },
    }
}

fn plan(precision: Precision, tp: u32) -> ParallelPlan {
    ParallelPlan {
        dp: 1,
        tp,
        pp: 1,
        ep: 1,
        micro_batch_seqs: 2,
        global_batch_seqs: 2,
        zero_stage: 0,
        recompute: Recompute::None,
        precision,
    }
}

fn named<'a>(s: &'a StepOps, name: &str, phase: Phase) -> Vec<&'a Op> {
    s.stages[0]
        .micro_batch()
        .filter(|o| o.name == name && o.phase == phase)
        .collect()
}

#[test]
fn gpt_neox_copies_q_k_v_into_the_packed_flash_layout_and_back() {
    let m = dense(false);
    let p = plan(Precision::Bf16, 1);
    let neox = OpsConfig {
        framework: Framework::GptNeox,
        ..OpsConfig::default()
    };
    let s = step_ops(&m, &p, &neox).unwrap();
    // T = 256 tokens, q = k = v = o = 256 x 512 elements, 2 B each.
    let e = 256.0 * 512.0;
    let f = named(&s, "attn.neox_layout", Phase::Forward);
    assert_eq!(f.len(), 2, "one per layer");
    assert_eq!(f[0].bytes, (4.0 * 3.0 * e + 2.0 * e) * 2.0);
    assert_eq!(f[0].launches, 5);
    let b = named(&s, "attn.neox_layout", Phase::Backward);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].bytes, 2.0 * 3.0 * e * 2.0);
    // Megatron has none, and neither has GPT-NeoX's unfused (non-flash) path here.
    let meg = step_ops(&m, &p, &OpsConfig::default()).unwrap();
    assert!(named(&meg, "attn.neox_layout", Phase::Forward).is_empty());
    let unfused = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..neox
    };
    let s = step_ops(&m, &p, &unfused).unwrap();
    assert!(named(&s, "attn.neox_layout", Phase::Forward).is_empty());
}

#[test]
fn linear_biases_add_one_gradient_reduction_per_linear() {
    let p = plan(Precision::Bf16, 2);
    let with = step_ops(&dense(true), &p, &OpsConfig::default()).unwrap();
    let without = step_ops(&dense(false), &p, &OpsConfig::default()).unwrap();
    assert!(named(&without, "linear.bias_grad", Phase::Backward).is_empty());
    let b = named(&with, "linear.bias_grad", Phase::Backward);
    assert_eq!(b.len(), 8, "QKV, out, fc1, fc2 in each of 2 layers");
    // tp 2 with sequence parallelism: QKV and fc1 outputs are local columns over all 256 rows;
    // out and fc2 add their bias after the reduce-scatter, on 128 rows of width 512.
    let bytes: f64 = b.iter().take(4).map(|o| o.bytes).sum();
    let rows_x_width = 256.0 * (3.0 * 512.0 / 2.0) + 256.0 * 2048.0 / 2.0 + 2.0 * 128.0 * 512.0;
    let widths = 3.0 * 512.0 / 2.0 + 2048.0 / 2.0 + 2.0 * 512.0;
    assert_eq!(bytes, rows_x_width * 2.0 + 4.0 * widths);
    // Forward is unchanged: the bias adds ride in the GEMM epilogue and the fused kernels.
    let fwd = |s: &StepOps| s.stages[0].forward.iter().map(|o| o.bytes).sum::<f64>();
    assert_eq!(fwd(&with), fwd(&without));
}

#[test]
fn fp8_keeps_activations_in_bf16_and_adds_transformer_engine_casts() {
    let m = dense(true);
    let bf = step_ops(&m, &plan(Precision::Bf16, 1), &OpsConfig::default()).unwrap();
    let f8 = step_ops(&m, &plan(Precision::Fp8, 1), &OpsConfig::default()).unwrap();
    // Norms, residuals and activations move bf16 bytes under FP8.
    for name in ["attn.norm", "ffn.act", "attn.residual"] {
        assert_eq!(
            named(&bf, name, Phase::Forward)[0].bytes,
            named(&f8, name, Phase::Forward)[0].bytes,
            "{name}"
        );
    }
    // The QKV GEMM reads FP8 inputs and writes bf16: 1 x (256x512 + 512x1536) + 2 x 256x1536.
    let qkv = named(&f8, "attn.qkv", Phase::Forward)[0];
    assert_eq!(
        qkv.bytes,
        256.0 * 512.0 + 512.0 * 1536.0 + 2.0 * 256.0 * 1536.0
    );
    // Casts: QKV and fc1 follow a norm (transpose only, 2 B per input element), out and fc2
    // cast-transpose their bf16 input (4 B); every linear's output gradient gets 4 B.
    let casts = named(&f8, "fp8.cast_transpose", Phase::Forward);
    assert_eq!(casts.len(), 8);
    let per_layer: f64 = casts.iter().take(4).map(|o| o.bytes).sum();
    let e = 256.0 * 512.0;
    assert_eq!(
        per_layer,
        2.0 * e + 4.0 * e + 2.0 * e + 4.0 * 256.0 * 2048.0
    );
    assert_eq!(named(&f8, "fp8.cast_transpose", Phase::Backward).len(), 8);
    // The bias gradient is fused into TE's cast: no separate reduction under FP8.
    assert!(named(&f8, "linear.bias_grad", Phase::Backward).is_empty());
    assert!(named(&bf, "fp8.cast_transpose", Phase::Forward).is_empty());
    // Weights are cast once per step, 4 B per weight.
    let w: Vec<&Op> = f8.stages[0]
        .per_step
        .iter()
        .filter(|o| o.name == "fp8.weight_cast")
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].launches, 8);
    assert!(bf.stages[0]
        .per_step
        .iter()
        .all(|o| o.name != "fp8.weight_cast"));
}

#[test]
fn deepseek_fp8_recipe_keeps_norms_in_bf16_without_te_casts() {
    let m = dense(false);
    let ds = OpsConfig {
        fp8_recipe: Fp8Recipe::Deepseek,
        ..OpsConfig::default()
    };
    let s = step_ops(&m, &plan(Precision::Fp8, 1), &ds).unwrap();
    let bf = step_ops(&m, &plan(Precision::Bf16, 1), &OpsConfig::default()).unwrap();
    assert!(named(&s, "fp8.cast_transpose", Phase::Forward).is_empty());
    assert!(s.stages[0]
        .per_step
        .iter()
        .all(|o| o.name != "fp8.weight_cast"));
    // DeepSeek-V3 report Sec. 3.3.1: normalization operators keep their original precision.
    let norm = |s: &StepOps| named(s, "attn.norm", Phase::Forward)[0].bytes;
    assert_eq!(norm(&s), norm(&bf));
}

/// First-generation flash attention does the same work as FlashAttention-2 (same FLOPs, bytes
/// and launches, forward, backward and selective recompute); only its kernel class differs, so
/// the hardware prices it on the lower first-generation ceiling.
#[test]
fn flash1_is_the_same_work_in_its_own_kernel_class() {
    let m = dense(false);
    let mut p = plan(Precision::Bf16, 1);
    p.recompute = Recompute::Selective;
    let v2 = step_ops(&m, &p, &OpsConfig::default()).unwrap();
    let cfg = OpsConfig {
        attention_kernel: AttentionKernel::Flash1,
        ..OpsConfig::default()
    };
    let v1 = step_ops(&m, &p, &cfg).unwrap();
    for phase in [Phase::Forward, Phase::Backward, Phase::Recompute] {
        let (a, b) = (
            named(&v2, "attn.flash", phase),
            named(&v1, "attn.flash", phase),
        );
        assert_eq!(a.len(), 2, "{phase:?}: one per layer");
        assert_eq!(a.len(), b.len(), "{phase:?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.class, KernelClass::FlashAttention);
            assert_eq!(y.class, KernelClass::FlashAttention1);
            assert_eq!(
                (x.flops, x.bytes, x.launches),
                (y.flops, y.bytes, y.launches)
            );
        }
    }
}

/// Bytes per rank of the step's `name` communication ops, first stage, micro-batch and per-step.
fn comm_bytes(s: &StepOps, name: &str) -> Vec<f64> {
    s.stages[0]
        .micro_batch()
        .chain(s.stages[0].per_step.iter())
        .filter(|o| o.name == name)
        .filter_map(|o| o.comm.map(|c| c.bytes_per_rank))
        .collect()
}

#[test]
fn mesh_tensorflow_all_reduces_over_more_than_8_cores_and_the_gradients_in_fp32() {
    let m = dense(false);
    let no_sp = OpsConfig {
        sequence_parallel: false,
        ..OpsConfig::default()
    };
    let mtf = OpsConfig {
        framework: Framework::MeshTensorflow,
        ..no_sp
    };
    // T = 256 tokens of d 512: a TP all-reduce holds T x d elements.
    let e = 256.0 * 512.0;
    for (tp, wire) in [(4, 2.0), (8, 4.0)] {
        // tp 4 chips = 8 cores stays bf16 (`allreduce_in_bfloat16_max_group_size = 8`); tp 8 = 16
        // cores goes fp32.
        let mut p = plan(Precision::Bf16, tp);
        p.dp = 2;
        p.global_batch_seqs = 4;
        let s = step_ops(&m, &p, &mtf).unwrap();
        let meg = step_ops(&m, &p, &no_sp).unwrap();
        for name in ["attn.tp_reduce", "ffn.tp_reduce", "embed.tp_reduce"] {
            let b = comm_bytes(&s, name);
            assert!(!b.is_empty(), "{name}");
            assert!(b.iter().all(|&x| x == e * wire), "{name} at tp {tp}: {b:?}");
            assert!(comm_bytes(&meg, name).iter().all(|&x| x == e * 2.0));
        }
        // Gradients of the fp32 variables: twice Megatron's bf16 all-reduce.
        let (g, gm) = (
            comm_bytes(&s, "dp.grad_sync"),
            comm_bytes(&meg, "dp.grad_sync"),
        );
        assert_eq!(g.len(), 1);
        assert_eq!(g[0], 2.0 * gm[0]);
    }
}

#[test]
fn tpu_estimator_sums_fp32_gradients_and_updates_fp32_variables_without_a_copy() {
    let m = dense(false);
    let mut p = plan(Precision::Bf16, 1);
    p.dp = 4;
    p.global_batch_seqs = 8;
    let meg = OpsConfig {
        optimizer: OptimizerKind::Adafactor,
        ..OpsConfig::default()
    };
    let est = OpsConfig {
        framework: Framework::TpuEstimator,
        ..meg
    };
    let (s, sm) = (
        step_ops(&m, &p, &est).unwrap(),
        step_ops(&m, &p, &meg).unwrap(),
    );
    let g = comm_bytes(&s, "dp.grad_sync");
    assert_eq!(g[0], 2.0 * comm_bytes(&sm, "dp.grad_sync")[0]);
    let params = g[0] / 4.0;
    let upd = s.stages[0]
        .per_step
        .iter()
        .find(|o| o.name == "optimizer.update")
        .unwrap();
    // Adafactor on fp32 variables: 16 B per parameter, no main-to-model copy (Megatron's bf16
    // path adds 4 + 2 B).
    assert!(
        (upd.bytes / params - 16.0).abs() < 1e-9,
        "{}",
        upd.bytes / params
    );
    let upd_m = sm.stages[0]
        .per_step
        .iter()
        .find(|o| o.name == "optimizer.update")
        .unwrap();
    assert!((upd_m.bytes / params - 22.0).abs() < 1e-9);
}
