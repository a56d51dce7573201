//! Tests of the framework- and precision-specific ops: GPT-NeoX's layout copies around
//! FlashAttention, linear-bias gradients, Transformer Engine's FP8 casts, and the gradient
//! reduction's format.

use super::super::arch::{Arch, NormKind};
use super::super::model::ModelSpec;
use super::super::plan::{ParallelPlan, Recompute};
use super::super::precision::Precision;
use super::tests_fixture::{named, plan};
use super::*;

/// The fixture's dense model, with or without linear biases.
fn dense(bias: bool) -> ModelSpec {
    super::tests_fixture::dense(Arch {
        bias,
        ..Arch::default()
    })
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

/// Transformer Engine's per-module amax/scale updates: one op per layer and pass, with 3 TE
/// modules x 5 launches (TE 0.x-1.3) or x 2 (TE 1.4-1.5); none with TE >= 1.6's fused update,
/// under bf16, or under the DeepSeek recipe.
#[test]
fn te_scale_updates_launch_per_module_and_pass() {
    let m = dense(true);
    let with = |u: Fp8ScaleUpdate, recipe: Fp8Recipe, p: Precision| {
        let cfg = OpsConfig {
            fp8_scale_update: u,
            fp8_recipe: recipe,
            ..OpsConfig::default()
        };
        step_ops(&m, &plan(p, 1), &cfg).unwrap()
    };
    let te = Fp8Recipe::TransformerEngine;
    let jit = with(Fp8ScaleUpdate::PerModuleJit, te, Precision::Fp8);
    for (phase, order) in [
        (Phase::Forward, [Some(0), Some(1)]),
        (Phase::Backward, [Some(1), Some(0)]),
    ] {
        let ops = named(&jit, "fp8.scale_update", phase);
        // One per layer (2 layers, backward in reverse), 3 modules x 5 launches, no work
        // beyond the launches.
        assert!(ops.iter().all(|o| o.launches == 15 && o.bytes == 0.0));
        assert_eq!(ops.iter().map(|o| o.layer).collect::<Vec<_>>(), order);
    }
    let cpp = with(Fp8ScaleUpdate::PerModule, te, Precision::Fp8);
    let ops = named(&cpp, "fp8.scale_update", Phase::Backward);
    assert!(ops.len() == 2 && ops.iter().all(|o| o.launches == 6));
    for s in [
        with(Fp8ScaleUpdate::Fused, te, Precision::Fp8),
        with(Fp8ScaleUpdate::PerModuleJit, te, Precision::Bf16),
        with(
            Fp8ScaleUpdate::PerModuleJit,
            Fp8Recipe::Deepseek,
            Precision::Fp8,
        ),
    ] {
        assert!(named(&s, "fp8.scale_update", Phase::Forward).is_empty());
        assert!(named(&s, "fp8.scale_update", Phase::Backward).is_empty());
    }
}

/// Transformer Engine's amax all-reduce: under `tp_dp` (TE 0.8's default, MLPerf v3.0) one
/// synchronous all-reduce over the `tp x dp` ranks per layer and pass, after the layer's last
/// forward op and after its last backward op, each after a `torch.cat` launch; none under
/// `tp_async` (MLPerf v3.1: TP group, asynchronous), `none`, bf16 or the DeepSeek recipe.
#[test]
fn te_amax_reduction_is_charged_per_layer_and_pass_only_when_synchronous_over_tp_dp() {
    use super::{Comm, Fp8AmaxReduce, GroupKind};
    let m = dense(true);
    let with = |r: Fp8AmaxReduce, recipe: Fp8Recipe, p: Precision| {
        let cfg = OpsConfig {
            fp8_amax_reduce: r,
            fp8_recipe: recipe,
            ..OpsConfig::default()
        };
        let pl = ParallelPlan {
            dp: 16,
            global_batch_seqs: 32,
            ..plan(p, 4)
        };
        step_ops(&m, &pl, &cfg).unwrap()
    };
    let te = Fp8Recipe::TransformerEngine;
    let s = with(Fp8AmaxReduce::TpDp, te, Precision::Fp8);
    for phase in [Phase::Forward, Phase::Backward] {
        let ops = named(&s, "fp8.amax_reduce", phase);
        assert_eq!(ops.len(), 2, "{phase:?}");
        let per = if phase == Phase::Forward { 3.0 } else { 2.0 };
        for o in &ops {
            assert_eq!(o.class, KernelClass::AllReduce);
            assert_eq!(
                o.comm,
                Some(Comm {
                    group: GroupKind::Tp,
                    size: 64,
                    bytes_per_rank: 4.0 * 4.0 * per,
                })
            );
        }
        assert_eq!(named(&s, "fp8.amax_cat", phase).len(), 2);
        // Each layer's pass ends with its reduction.
        let list: Vec<&Op> = s.stages[0]
            .micro_batch()
            .filter(|o| o.phase == phase && o.layer == Some(0))
            .collect();
        assert_eq!(list.last().map(|o| o.name), Some("fp8.amax_reduce"));
    }
    for s in [
        with(Fp8AmaxReduce::TpAsync, te, Precision::Fp8),
        with(Fp8AmaxReduce::None, te, Precision::Fp8),
        with(Fp8AmaxReduce::TpDp, te, Precision::Bf16),
        with(Fp8AmaxReduce::TpDp, Fp8Recipe::Deepseek, Precision::Fp8),
    ] {
        assert!(named(&s, "fp8.amax_reduce", Phase::Forward).is_empty());
        assert!(named(&s, "fp8.amax_reduce", Phase::Backward).is_empty());
    }
}

/// `grad_reduce_dtype`: fp32 under bf16 doubles every gradient reduction (the data-parallel
/// reduce-scatter, ZeRO-3's per-layer reduce-scatters), leaves the parameter all-gathers in bf16;
/// unset keeps the gradients' own 2 bytes, as "bf16" does.
#[test]
fn grad_reduce_dtype_sets_the_gradient_reduction_bytes() {
    let m = dense(false);
    let grads = |zero: u8, d: Option<GradReduceDtype>| {
        let p = ParallelPlan {
            dp: 4,
            zero_stage: zero,
            global_batch_seqs: 8,
            ..plan(Precision::Bf16, 1)
        };
        let cfg = OpsConfig {
            grad_reduce_dtype: d,
            ..OpsConfig::default()
        };
        let s = step_ops(&m, &p, &cfg).unwrap();
        let bytes = |name: &str| -> f64 {
            let st = &s.stages[0];
            st.per_step
                .iter()
                .chain(st.micro_batch())
                .filter(|o| o.name == name)
                .filter_map(|o| o.comm.map(|c| c.bytes_per_rank))
                .sum()
        };
        (
            bytes("dp.grad_sync"),
            bytes("zero3.grad_scatter"),
            bytes("dp.param_gather"),
        )
    };
    let (own, bf16, fp32) = (
        grads(1, None),
        grads(1, Some(GradReduceDtype::Bf16)),
        grads(1, Some(GradReduceDtype::Fp32)),
    );
    assert!(own.0 > 0.0 && own.2 > 0.0);
    assert_eq!(own, bf16);
    assert_eq!(fp32.0, 2.0 * own.0);
    assert_eq!(fp32.2, own.2);
    let (z3, z3_fp32) = (grads(3, None), grads(3, Some(GradReduceDtype::Fp32)));
    assert!(z3.1 > 0.0);
    assert_eq!(z3_fp32.1, 2.0 * z3.1);
}

fn per_step<'a>(s: &'a StepOps, name: &str) -> Vec<&'a Op> {
    s.stages[0]
        .per_step
        .iter()
        .filter(|o| o.name == name)
        .collect()
}

/// GPT-NeoX 1.0 under ZeRO-1 (DeepSpeed pipeline engine + fp16 stage-1 optimizer): the whole
/// fp16 gradient is all-reduced (not reduce-scattered), every gradient tensor is checked and
/// normed with a host read each, the local shard's update moves 56 B per parameter, and the
/// all-gathered weights are copied out of NCCL's flat buffer.
#[test]
fn gpt_neox_zero1_all_reduces_then_checks_every_gradient_tensor() {
    let m = dense(true);
    let mut p = plan(Precision::Fp16, 1);
    (p.dp, p.global_batch_seqs, p.zero_stage) = (4, 8, 1);
    let neox = OpsConfig {
        framework: Framework::GptNeox,
        ..OpsConfig::default()
    };
    let meg = step_ops(&m, &p, &OpsConfig::default()).unwrap();
    let s = step_ops(&m, &p, &neox).unwrap();
    // Parameters on the GPU, from Megatron's reduce-scatter of the same gradients.
    let rs = per_step(&meg, "dp.grad_sync");
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].class, KernelClass::ReduceScatter);
    let n = rs[0].comm.unwrap().bytes_per_rank / 2.0;
    // Hand count (biases are not counted as parameters): 2 layers x (4 d^2 + 2 d f + norms
    // 4d) + embedding and head 2 V d + final norm 2d.
    let (d, f, v) = (512.0, 2048.0, 1000.0);
    let layer = 4.0 * d * d + 2.0 * d * f + 4.0 * d;
    assert_eq!(n, 2.0 * layer + 2.0 * v * d + 2.0 * d);
    let ar = per_step(&s, "dp.grad_sync");
    assert_eq!(ar.len(), 1);
    assert_eq!(ar[0].class, KernelClass::AllReduce);
    assert_eq!(ar[0].comm.unwrap().bytes_per_rank, 2.0 * n);
    assert_eq!(ar[0].phase, Phase::Backward);
    // Flatten, scale and copy back each bucket: 3 x (read + write) of fp16.
    let copy = per_step(&s, "ds.grad_bucket_copy");
    assert_eq!(copy[0].bytes, 12.0 * n);
    // 2 layers x 12 tensors + embedding + final norm (2) + output layer.
    let tensors = 28;
    assert_eq!(copy[0].launches, 2 + tensors);
    for name in ["ds.overflow_check", "ds.grad_norm"] {
        let o = per_step(&s, name);
        assert_eq!(o.len(), 1, "{name}");
        assert_eq!(
            o[0].bytes,
            10.0 * n,
            "{name}: read fp16, write and re-read fp32"
        );
        assert_eq!(o[0].host_syncs, tensors + 1, "{name}");
        assert_eq!(o[0].launches, 2 * tensors, "{name}");
    }
    let up = per_step(&s, "optimizer.update");
    assert_eq!(
        up[0].bytes,
        56.0 * n / 4.0,
        "local quarter at 56 B per parameter"
    );
    let ag = per_step(&s, "dp.param_gather");
    assert_eq!(ag[0].class, KernelClass::AllGather);
    assert_eq!(ag[0].comm.unwrap().bytes_per_rank, 2.0 * n);
    let out = per_step(&s, "ds.gather_copy");
    assert_eq!((out[0].bytes, out[0].launches), (4.0 * n, 4));
    // The generic list has none of DeepSpeed's passes.
    for name in [
        "ds.grad_bucket_copy",
        "ds.overflow_check",
        "ds.grad_norm",
        "ds.gather_copy",
    ] {
        assert!(per_step(&meg, name).is_empty(), "{name}");
    }
    assert_eq!(per_step(&meg, "optimizer.update")[0].bytes, 38.0 * n / 4.0);
}

/// Outside ZeRO stage 1 GPT-NeoX keeps the generic per-step ops (the stage-1 optimizer is the
/// only DeepSpeed path read), and RMSNorm without biases counts one tensor per norm and linear.
#[test]
fn gpt_neox_step_ops_only_replace_zero_stage_one() {
    let neox = OpsConfig {
        framework: Framework::GptNeox,
        ..OpsConfig::default()
    };
    let m = dense(true);
    let mut p = plan(Precision::Fp16, 1);
    (p.dp, p.global_batch_seqs) = (4, 8);
    for z in [0, 2] {
        p.zero_stage = z;
        let a = step_ops(&m, &p, &neox).unwrap();
        let b = step_ops(&m, &p, &OpsConfig::default()).unwrap();
        assert_eq!(a.stages[0].per_step, b.stages[0].per_step, "zero {z}");
    }
    let mut r = dense(false);
    r.arch.norm = NormKind::RmsNorm;
    p.zero_stage = 1;
    let s = step_ops(&r, &p, &neox).unwrap();
    // 2 x (2 norms + 4 linears) + embedding + final norm + output layer.
    assert_eq!(per_step(&s, "ds.overflow_check")[0].host_syncs, 15 + 1);
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
