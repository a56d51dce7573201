//! Tests of the dropout and position-embedding ops against hand counts on a small model, and of
//! the memory model keeping exactly the masks the forward writes.

use super::super::arch::{Act, Arch, NormKind, Position};
use super::super::memory::activation_bytes_per_layer;
use super::super::model::{FfnKind, ModelSpec};
use super::super::plan::{ParallelPlan, Recompute};
use super::super::precision::Precision;
use super::tests_fixture::{dense, named, plan};
use super::*;

fn ops(m: &ModelSpec, tp: u32, cfg: &OpsConfig) -> StepOps {
    step_ops(m, &plan(Precision::Bf16, tp), cfg).unwrap()
}

fn phase_bytes(s: &StepOps, phase: Phase) -> f64 {
    s.stages[0]
        .micro_batch()
        .filter(|o| o.phase == phase)
        .map(|o| o.bytes)
        .sum()
}

// T = 2 x 128 = 256 tokens of d 512, bf16.
const N: f64 = 256.0 * 512.0;

#[test]
fn hidden_dropout_adds_the_mask_to_each_residual_and_a_mask_multiply_backward() {
    let cfg = OpsConfig::default();
    let off = ops(&dense(Arch::default()), 1, &cfg);
    let on = ops(
        &dense(Arch {
            hidden_dropout: 0.1,
            embedding_dropout: 0.1,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    // Forward residual: 3 x 2 B + a 1 B mask per element.
    let r = named(&on, "attn.residual", Phase::Forward);
    assert_eq!(r.len(), 2, "one per layer");
    assert_eq!(r[0].bytes, 7.0 * N);
    assert_eq!(
        named(&off, "attn.residual", Phase::Forward)[0].bytes,
        6.0 * N
    );
    // Backward: the mask multiply (read grad 2 + mask 1, write 2) after each of the 2 x 2
    // residuals, plus the embedding dropout's.
    let g = named(&on, "dropout.grad", Phase::Backward);
    assert_eq!(g.len(), 4);
    assert_eq!(g[0].bytes, 5.0 * N);
    assert!(named(&off, "dropout.grad", Phase::Backward).is_empty());
    let e = named(&on, "embed.dropout", Phase::Forward);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].bytes, 5.0 * N);
    // Whole forward: 4 masks + the embedding dropout; backward: 4 mask multiplies + 1.
    let df = phase_bytes(&on, Phase::Forward) - phase_bytes(&off, Phase::Forward);
    assert_eq!(df, 4.0 * N + 5.0 * N);
    let db = phase_bytes(&on, Phase::Backward) - phase_bytes(&off, Phase::Backward);
    assert_eq!(db, 4.0 * 5.0 * N + 5.0 * N);
    // OPT: residual dropout, none on the embedding.
    let opt = ops(
        &dense(Arch {
            hidden_dropout: 0.1,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    assert!(named(&opt, "embed.dropout", Phase::Forward).is_empty());
    assert_eq!(named(&opt, "dropout.grad", Phase::Backward).len(), 4);
}

#[test]
fn memory_keeps_exactly_the_hidden_masks_the_forward_writes() {
    // tp 2 with sequence parallelism: each GPU writes masks over its T/2 tokens.
    let cfg = OpsConfig {
        sequence_parallel: true,
        ..OpsConfig::default()
    };
    let off = dense(Arch::default());
    let on = dense(Arch {
        hidden_dropout: 0.1,
        ..Arch::default()
    });
    let p = plan(Precision::Bf16, 2);
    let mem = activation_bytes_per_layer(&on, &p, 0) - activation_bytes_per_layer(&off, &p, 0);
    let fwd_masks = |m: &ModelSpec| -> f64 {
        step_ops(m, &p, &cfg).unwrap().stages[0]
            .forward
            .iter()
            .filter(|o| o.layer == Some(0) && o.name.ends_with(".residual"))
            .map(|o| o.bytes)
            .sum()
    };
    let written = fwd_masks(&on) - fwd_masks(&off);
    assert_eq!(written, 2.0 * N / 2.0);
    assert_eq!(mem, written, "memory {mem} vs masks written {written}");
}

#[test]
fn flash_attention_dropout_charges_the_philox_work_forward_and_backward() {
    let cfg = OpsConfig::default();
    let on = ops(
        &dense(Arch {
            attention_dropout: 0.1,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    // Score elements computed under the causal mask: b x heads x s x (s + 1) / 2.
    let scores = 2.0 * 8.0 * 128.0 * 129.0 / 2.0;
    for phase in [Phase::Forward, Phase::Backward] {
        let r = named(&on, "attn.dropout_rng", phase);
        assert_eq!(r.len(), 2, "one per layer");
        assert_eq!(r[0].flops, 10.0 * scores);
        assert_eq!(r[0].bytes, 0.0);
    }
    let off = ops(&dense(Arch::default()), 1, &cfg);
    assert!(named(&off, "attn.dropout_rng", Phase::Forward).is_empty());
}

#[test]
fn unfused_attention_dropout_runs_only_with_a_rate() {
    let cfg = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..OpsConfig::default()
    };
    let on = ops(
        &dense(Arch {
            attention_dropout: 0.1,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    // b x heads x s^2 score elements: read 2, write 2 + a 1-byte mask.
    let n = 2.0 * 8.0 * 128.0 * 128.0;
    let d = named(&on, "attn.core.dropout", Phase::Forward);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].bytes, 5.0 * n);
    assert_eq!(
        named(&on, "attn.core.dropout", Phase::Backward)[0].bytes,
        5.0 * n
    );
    let off = ops(&dense(Arch::default()), 1, &cfg);
    assert!(named(&off, "attn.core.dropout", Phase::Forward).is_empty());
}

#[test]
fn learned_positions_replace_rotary_with_an_input_add_and_a_table() {
    let cfg = OpsConfig::default();
    let rot = dense(Arch::default());
    let learned = dense(Arch {
        position: Position::Learned,
        ..Arch::default()
    });
    let r = ops(&rot, 1, &cfg);
    let l = ops(&learned, 1, &cfg);
    // Rotary: q and k of 256 x 512 each, read + write 2 B.
    assert_eq!(
        named(&r, "attn.rotary", Phase::Forward)[0].bytes,
        2.0 * 2.0 * N * 2.0
    );
    assert!(named(&l, "attn.rotary", Phase::Forward).is_empty());
    assert!(named(&r, "embed.position", Phase::Forward).is_empty());
    let look = named(&l, "embed.position", Phase::Forward);
    assert_eq!(look.len(), 1);
    assert_eq!(look[0].bytes, 2.0 * N * 2.0);
    assert_eq!(
        named(&l, "embed.position", Phase::Backward)[0].bytes,
        3.0 * N * 2.0
    );
    assert_eq!(
        named(&l, "embed.position_add", Phase::Forward)[0].bytes,
        3.0 * N * 2.0
    );
    // The table: seq x d parameters, on the first stage, not split over TP.
    assert_eq!(learned.params_total() - rot.params_total(), 128.0 * 512.0);
    let opt = |s: &StepOps| -> f64 {
        s.stages[0]
            .per_step
            .iter()
            .filter(|o| o.class == KernelClass::Optimizer)
            .map(|o| o.bytes)
            .sum()
    };
    let tp2 = |m: &ModelSpec| opt(&ops(m, 2, &cfg));
    let per_param_rot = opt(&r) / (rot.params_total());
    assert!(per_param_rot > 0.0);
    let grew = tp2(&learned) - tp2(&rot);
    assert!(
        (grew / per_param_rot - 128.0 * 512.0).abs() < 1.0,
        "the table's optimizer traffic is not split over TP: {grew}"
    );
}

#[test]
fn alibi_and_relative_bias_ride_in_the_attention_kernel() {
    let cfg = OpsConfig::default();
    let base = ops(&dense(Arch::default()), 1, &cfg);
    let flash = |s: &StepOps, ph: Phase| named(s, "attn.flash", ph)[0].bytes;
    let alibi = ops(
        &dense(Arch {
            position: Position::Alibi,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    // 16 (sequence x head) instances read one row of 128 slopes x 2 B, forward and backward.
    let inst = 2.0 * 8.0;
    assert_eq!(
        flash(&alibi, Phase::Forward) - flash(&base, Phase::Forward),
        inst * 128.0 * 2.0
    );
    assert_eq!(
        flash(&alibi, Phase::Backward) - flash(&base, Phase::Backward),
        inst * 128.0 * 2.0
    );
    assert!(named(&alibi, "attn.rotary", Phase::Forward).is_empty());
    let rel = ops(
        &dense(Arch {
            position: Position::Relative,
            ..Arch::default()
        }),
        1,
        &cfg,
    );
    let ss = 128.0 * 128.0;
    assert_eq!(
        flash(&rel, Phase::Forward) - flash(&base, Phase::Forward),
        inst * ss * 2.0
    );
    assert_eq!(
        flash(&rel, Phase::Backward) - flash(&base, Phase::Backward),
        2.0 * inst * ss * 2.0
    );
    // Bias gradient: read the 16 per-instance gradients, write 8 heads' fp32 sums.
    let g = named(&rel, "attn.pos_bias_grad", Phase::Backward);
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].bytes, inst * ss * 2.0 + 4.0 * 8.0 * ss);
    // Unfused: the bias is an add over the score matrix, replayed by selective recompute.
    let unfused = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..OpsConfig::default()
    };
    let mut p = plan(Precision::Bf16, 1);
    p.recompute = Recompute::Selective;
    let s = step_ops(
        &dense(Arch {
            position: Position::Alibi,
            ..Arch::default()
        }),
        &p,
        &unfused,
    )
    .unwrap();
    let add = named(&s, "attn.core.pos_bias", Phase::Forward);
    assert_eq!(add[0].bytes, 2.0 * inst * ss * 2.0);
    assert_eq!(named(&s, "attn.core.pos_bias", Phase::Recompute).len(), 2);
    assert!(named(&s, "attn.pos_bias_grad", Phase::Backward).is_empty());
}

#[test]
fn bad_dropout_rates_and_mla_without_rotary_are_errors_naming_the_field() {
    let field = |a: Arch| match dense(a).validate() {
        Err(super::super::error::WorkloadError::InvalidField { field, .. }) => field,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        field(Arch {
            hidden_dropout: 1.0,
            ..Arch::default()
        }),
        "model.hidden_dropout"
    );
    assert_eq!(
        field(Arch {
            embedding_dropout: 1.5,
            ..Arch::default()
        }),
        "model.embedding_dropout"
    );
    assert_eq!(
        field(Arch {
            attention_dropout: -0.1,
            ..Arch::default()
        }),
        "model.attention_dropout"
    );
    assert_eq!(
        field(Arch {
            attention_dropout: f64::NAN,
            ..Arch::default()
        }),
        "model.attention_dropout"
    );
    let mut m = super::super::model::presets::deepseek_v3();
    m.arch.position = Position::Learned;
    match m.validate() {
        Err(super::super::error::WorkloadError::InvalidField { field, .. }) => {
            assert_eq!(field, "model.position")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn parallel_residual_reduces_once_per_layer_forward_and_keeps_both_input_gradient_reductions() {
    // GPT-NeoX `gpt_j_residual` at tp 2 without sequence parallelism.
    let cfg = OpsConfig {
        sequence_parallel: false,
        ..OpsConfig::default()
    };
    let serial = dense(Arch {
        bias: true,
        ..Arch::default()
    });
    let par = dense(Arch {
        bias: true,
        parallel_residual: true,
        ..Arch::default()
    });
    let count = |s: &StepOps, phase: Phase| {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.class == KernelClass::AllReduce && o.phase == phase && o.layer == Some(0))
            .count()
    };
    let (s, p) = (ops(&serial, 2, &cfg), ops(&par, 2, &cfg));
    assert_eq!(
        (count(&s, Phase::Forward), count(&p, Phase::Forward)),
        (2, 1)
    );
    assert_eq!(
        (count(&s, Phase::Backward), count(&p, Phase::Backward)),
        (2, 2)
    );
    // Element-wise passes over the 256 x 512 micro-batch (no dropout): attn + bias (read,
    // write), mlp + bias + attn (read 2, write), the residual add (read 2, write); 2 B each.
    let bytes = |name: &str| named(&p, name, Phase::Forward)[0].bytes;
    assert_eq!(bytes("attn.bias_dropout"), 2.0 * N * 2.0);
    assert_eq!(bytes("ffn.residual"), 3.0 * N * 2.0);
    assert_eq!(bytes("par.residual"), 3.0 * N * 2.0);
    assert!(named(&p, "attn.residual", Phase::Forward).is_empty());
    // Both norms read the same layer input; the GEMMs are the serial block's.
    assert_eq!(named(&p, "attn.norm", Phase::Forward).len(), 2);
    let gemm_flops = |s: &StepOps| -> f64 {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.class == KernelClass::Gemm)
            .map(|o| o.flops)
            .sum()
    };
    assert_eq!(gemm_flops(&s), gemm_flops(&p));
    // With dropout the branch outputs carry masks and their backward multiplies by them.
    let pd = ops(
        &dense(Arch {
            bias: true,
            parallel_residual: true,
            hidden_dropout: 0.1,
            ..Arch::default()
        }),
        2,
        &cfg,
    );
    assert_eq!(named(&pd, "ffn.residual", Phase::Forward)[0].bytes, 7.0 * N);
    assert_eq!(named(&pd, "dropout.grad", Phase::Backward).len(), 4);
    // An MoE model is refused.
    let mut m = super::super::model::presets::mixtral_8x7b();
    m.arch.parallel_residual = true;
    assert!(m.validate().is_err());
}

#[test]
fn a_shared_parallel_norm_runs_one_norm_and_enters_tp_once() {
    // PaLM's parallel block (`parallel_norms = 1`) against GPT-NeoX's two norms, at tp 2
    // without sequence parallelism: the normalised input enters TP once, so the backward
    // all-reduces one input gradient per layer instead of two; the forward reduction and the
    // GEMMs are unchanged.
    let cfg = OpsConfig {
        sequence_parallel: false,
        ..OpsConfig::default()
    };
    let two = dense(Arch {
        parallel_residual: true,
        ..Arch::default()
    });
    let one = dense(Arch {
        parallel_residual: true,
        parallel_shared_norm: true,
        ..Arch::default()
    });
    let (a, b) = (ops(&two, 2, &cfg), ops(&one, 2, &cfg));
    let count = |s: &StepOps, class: KernelClass, phase: Phase| {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.class == class && o.phase == phase && o.layer == Some(0))
            .count()
    };
    assert_eq!(
        (
            count(&a, KernelClass::AllReduce, Phase::Backward),
            count(&b, KernelClass::AllReduce, Phase::Backward)
        ),
        (2, 1)
    );
    assert_eq!(count(&b, KernelClass::AllReduce, Phase::Forward), 1);
    assert_eq!(
        (
            count(&a, KernelClass::Norm, Phase::Forward),
            count(&b, KernelClass::Norm, Phase::Forward)
        ),
        (2, 1)
    );
    let gemm_flops = |s: &StepOps| -> f64 {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.class == KernelClass::Gemm)
            .map(|o| o.flops)
            .sum()
    };
    assert_eq!(gemm_flops(&a), gemm_flops(&b));
    // One norm's parameters per layer fewer: d per parameter of a channel (LayerNorm: gain and
    // bias).
    assert_eq!(
        two.norm_params_per_layer() - one.norm_params_per_layer(),
        512.0 * two.arch.norm.params_per_channel()
    );
    // With sequence parallelism the shared input is all-gathered once (GPT-NeoX's: twice).
    let sp = OpsConfig::default();
    let (a, b) = (ops(&two, 2, &sp), ops(&one, 2, &sp));
    assert_eq!(
        (
            count(&a, KernelClass::AllGather, Phase::Forward),
            count(&b, KernelClass::AllGather, Phase::Forward)
        ),
        (2, 1)
    );
}

#[test]
fn learned_positions_under_sequence_parallelism_all_reduce_then_scatter() {
    // tp 2 with sequence parallelism (the default config): rotary reduce-scatters the word
    // embedding (backward all-gather); learned positions all-reduce it (backward nothing), add
    // the positions over all 256 x 512 elements, then keep and clone this rank's half (read +
    // write 2 B) with an all-gather of the gradient in the backward (Megatron-Core
    // `LanguageModelEmbedding`).
    let cfg = OpsConfig::default();
    let rot = ops(&dense(Arch::default()), 2, &cfg);
    let learned = ops(
        &dense(Arch {
            position: Position::Learned,
            ..Arch::default()
        }),
        2,
        &cfg,
    );
    let emb = |s: &StepOps, name: &str, ph: Phase| -> Vec<KernelClass> {
        named(s, name, ph).iter().map(|o| o.class).collect()
    };
    assert_eq!(
        emb(&rot, "embed.tp_reduce", Phase::Forward),
        vec![KernelClass::ReduceScatter]
    );
    assert_eq!(
        emb(&rot, "embed.tp_reduce", Phase::Backward),
        vec![KernelClass::AllGather]
    );
    assert_eq!(
        emb(&learned, "embed.tp_reduce", Phase::Forward),
        vec![KernelClass::AllReduce]
    );
    assert!(emb(&learned, "embed.tp_reduce", Phase::Backward).is_empty());
    let ar = named(&learned, "embed.tp_reduce", Phase::Forward)[0];
    let rs = named(&rot, "embed.tp_reduce", Phase::Forward)[0];
    assert_eq!(ar.comm, rs.comm);
    assert_eq!(
        named(&learned, "embed.position_add", Phase::Forward)[0].bytes,
        3.0 * N * 2.0
    );
    assert_eq!(
        named(&learned, "embed.sp_clone", Phase::Forward)[0].bytes,
        2.0 * (N / 2.0) * 2.0
    );
    assert_eq!(
        emb(&learned, "embed.sp_gather", Phase::Backward),
        vec![KernelClass::AllGather]
    );
    assert!(named(&rot, "embed.sp_clone", Phase::Forward).is_empty());
    // Without sequence parallelism the embedding all-reduces either way and nothing scatters.
    let no_sp = OpsConfig {
        sequence_parallel: false,
        ..OpsConfig::default()
    };
    let l = ops(
        &dense(Arch {
            position: Position::Learned,
            ..Arch::default()
        }),
        2,
        &no_sp,
    );
    assert!(named(&l, "embed.sp_clone", Phase::Forward).is_empty());
    assert_eq!(
        emb(&l, "embed.tp_reduce", Phase::Forward),
        vec![KernelClass::AllReduce]
    );
}

/// The small dense model with Transformer-XL positions.
fn txl() -> ModelSpec {
    dense(Arch {
        position: Position::TransformerXl,
        ..Arch::default()
    })
}

#[test]
fn transformer_xl_projects_the_encodings_scores_them_and_shifts_them_in_every_layer() {
    let cfg = OpsConfig::default();
    let base = ops(&dense(Arch::default()), 1, &cfg);
    let x = ops(&txl(), 1, &cfg);
    // 2 sequences of 128 tokens (klen = s = 128), 8 heads of 64 = 512 wide, d 512, bf16.
    let (s, w, d, p) = (128.0, 512.0, 512.0, 2.0);
    let inst = 2.0 * 8.0;
    let n = inst * s * s;
    // W_r: the 128 x 512 sinusoid table times the 512 x 512 projection, once per layer and
    // micro-batch (not per sequence).
    let proj = named(&x, "attn.pos_proj", Phase::Forward);
    assert_eq!(proj.len(), 2, "one per layer");
    assert_eq!(proj[0].flops, 2.0 * s * w * d);
    assert_eq!(proj[0].bytes, p * (s * d + d * w + s * w));
    // Backward: the weight gradient alone (the table is a constant of the positions).
    let dproj = named(&x, "attn.pos_proj", Phase::Backward);
    assert_eq!(dproj.len(), 2);
    assert_eq!(dproj[0].grad, Some(Grad::Weight));
    assert_eq!(dproj[0].flops, 2.0 * s * w * d);
    // u, v: read the 256 x 512 queries, write both biased copies; backward reads both
    // gradients, writes the query gradient and the two 512-wide fp32 bias gradients.
    let q = 2.0 * s * w;
    assert_eq!(
        named(&x, "attn.pos_qbias", Phase::Forward)[0].bytes,
        3.0 * q * p
    );
    assert_eq!(
        named(&x, "attn.pos_qbias", Phase::Backward)[0].bytes,
        3.0 * q * p + 2.0 * 4.0 * w
    );
    // BD: every (query, key) pair of the 16 instances, 64 deep, written to HBM.
    let bd = named(&x, "attn.core.pos_scores", Phase::Forward);
    assert_eq!(bd.len(), 2);
    assert_eq!(bd[0].flops, 2.0 * n * 64.0);
    assert_eq!(bd[0].bytes, q * p + s * w * p + n * p);
    let dbd = named(&x, "attn.core.pos_scores", Phase::Backward);
    assert_eq!(
        dbd.len(),
        4,
        "the query and the encoding gradients of each layer"
    );
    for o in dbd {
        assert_eq!(o.flops, 2.0 * n * 64.0);
        assert_eq!(o.bytes, n * p + q * p + s * w * p);
    }
    // The relative shift copies the scores forward and their gradient backward.
    for phase in [Phase::Forward, Phase::Backward] {
        let sh = named(&x, "attn.core.rel_shift", phase);
        assert_eq!(sh.len(), 2);
        assert_eq!(sh[0].bytes, 2.0 * n * p);
    }
    // The flash kernel reads the shifted scores as its bias and writes their gradient; no
    // T5 bias reduction, no rotary.
    let flash = |st: &StepOps, ph: Phase| named(st, "attn.flash", ph)[0].bytes;
    assert_eq!(
        flash(&x, Phase::Forward) - flash(&base, Phase::Forward),
        n * p
    );
    assert_eq!(
        flash(&x, Phase::Backward) - flash(&base, Phase::Backward),
        2.0 * n * p
    );
    assert!(named(&x, "attn.pos_bias_grad", Phase::Backward).is_empty());
    assert!(named(&x, "attn.rotary", Phase::Forward).is_empty());
    // tp 2: each rank projects and scores its 4 heads.
    let x2 = ops(&txl(), 2, &cfg);
    assert_eq!(
        named(&x2, "attn.pos_proj", Phase::Forward)[0].flops,
        s * w * d
    );
    assert_eq!(
        named(&x2, "attn.core.pos_scores", Phase::Forward)[0].flops,
        n * 64.0
    );
    // Selective recompute replays the score-sized ops with the core, not the projection; full
    // recompute replays all of them.
    let mut pl = plan(Precision::Bf16, 1);
    pl.recompute = Recompute::Selective;
    let sel = step_ops(&txl(), &pl, &cfg).unwrap();
    assert_eq!(
        named(&sel, "attn.core.pos_scores", Phase::Recompute).len(),
        2
    );
    assert_eq!(
        named(&sel, "attn.core.rel_shift", Phase::Recompute).len(),
        2
    );
    assert!(named(&sel, "attn.pos_proj", Phase::Recompute).is_empty());
    pl.recompute = Recompute::Full;
    let full = step_ops(&txl(), &pl, &cfg).unwrap();
    assert_eq!(named(&full, "attn.pos_proj", Phase::Recompute).len(), 2);
    // Unfused core: `(AC + BD) * scale` reads both score terms and writes the sum; its
    // backward hands the same gradient to both (no op).
    let unfused = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..OpsConfig::default()
    };
    let u = ops(&txl(), 1, &unfused);
    assert_eq!(
        named(&u, "attn.core.pos_bias", Phase::Forward)[0].bytes,
        3.0 * n * p
    );
    assert!(named(&u, "attn.core.pos_bias", Phase::Backward).is_empty());
    assert!(named(&u, "attn.pos_bias_grad", Phase::Backward).is_empty());
}

#[test]
fn transformer_xl_parameters_flops_and_memory_count_its_projection_and_stored_terms() {
    let (rot, x) = (dense(Arch::default()), txl());
    // W_r (512 x 512) and u, v (8 x 64 each) in each of the 2 layers.
    let w = 512.0;
    assert_eq!(
        x.params_total() - rot.params_total(),
        2.0 * (512.0 * w + 2.0 * w)
    );
    // The model FLOPs count W_r as a matmul weight per token (6N), as PaLM's MFU does.
    assert_eq!(
        x.flops_per_token_train() - rot.flops_per_token_train(),
        3.0 * 2.0 * 2.0 * 512.0 * w
    );
    // Gopher (Rae et al. 2021 Table 1): 80 layers, d 16,384, 128 heads of 128, ffn 4d,
    // vocab 32,000: "280B" with W_r in every layer (258B without).
    let gopher = ModelSpec {
        name: "gopher".into(),
        layers: 80,
        d_model: 16384,
        heads: 128,
        kv_heads: 128,
        seq_len: 2048,
        vocab: 32000,
        ffn_hidden: 65536,
        ffn: FfnKind::Dense,
        arch: Arch {
            position: Position::TransformerXl,
            act: Act::Gelu,
            norm: NormKind::RmsNorm,
            ..Arch::default()
        },
    };
    let billions = gopher.params_total() / 1e9;
    assert!((billions - 280.0).abs() < 1.0, "{billions} B");
    // Memory at tp 2: the position term's inputs (rr_head_q, r_head_k) always, the shifted
    // scores unless selective recompute replays them; 2-byte units.
    let (s, b, a, q) = (128.0, 2.0, 8.0, 512.0);
    let extra = |pl: &ParallelPlan| {
        activation_bytes_per_layer(&x, pl, 0) - activation_bytes_per_layer(&rot, pl, 0)
    };
    let mut pl = plan(Precision::Bf16, 2);
    assert_eq!(
        extra(&pl),
        (2.0 * s * b * q + 2.0 * s * q + 2.0 * a * s * s * b) / 2.0
    );
    pl.recompute = Recompute::Selective;
    assert_eq!(extra(&pl), (2.0 * s * b * q + 2.0 * s * q) / 2.0);
}

#[test]
fn transformer_xl_with_an_encoder_or_a_window_is_an_error_naming_the_field() {
    let field = |a: Arch| match dense(a).validate() {
        Err(super::super::error::WorkloadError::InvalidField { field, .. }) => field,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        field(Arch {
            position: Position::TransformerXl,
            sliding_window: Some(64),
            ..Arch::default()
        }),
        "model.sliding_window"
    );
    assert_eq!(
        field(Arch {
            position: Position::TransformerXl,
            enc_dec: Some(super::super::EncDecSpec {
                encoder_layers: 1,
                target_len: 64,
            }),
            ..Arch::default()
        }),
        "model.position"
    );
    // The same window with T5's relative bias is fine.
    assert!(dense(Arch {
        position: Position::Relative,
        sliding_window: Some(64),
        ..Arch::default()
    })
    .validate()
    .is_ok());
}
