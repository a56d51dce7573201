//! Tutel's MoE layer (`moe_impl = "tutel"`): its op list against a hand count of `MOELayer.forward`
//! (tutel v0.2.0) — launches, host syncs, collectives, padded sizes — and, priced on the A100
//! preset, dearer than Megatron's padded experts on the same plan and monotone in the
//! micro-batch's tokens and the largest expert count.

use moesim::hardware::{preset, PriceKnobs};
use moesim::workload::step_ops::{
    step_ops, ExpertKernel, GroupKind, KernelClass, Load, MoeImpl, Op, OpsConfig, RoutedBy, StepOps,
};
use moesim::workload::{
    Act, Arch, FfnKind, ModelSpec, MoeSpec, ParallelPlan, Precision, Recompute,
};

fn model(cf: Option<f64>, top_k: u32) -> ModelSpec {
    ModelSpec {
        name: "tutel-small".into(),
        layers: 2,
        d_model: 256,
        heads: 4,
        kv_heads: 4,
        seq_len: 128,
        vocab: 1000,
        ffn_hidden: 1024,
        ffn: FfnKind::Moe(MoeSpec {
            experts: 8,
            top_k,
            capacity_factor: cf,
            expert_ffn_hidden: 1024,
            shared_experts: 0,
            moe_every: 1,
        }),
        arch: Arch {
            act: Act::Gelu,
            ..Arch::default()
        },
    }
}

fn plan(ep: u32, mb: u32) -> ParallelPlan {
    ParallelPlan {
        dp: ep,
        tp: 1,
        pp: 1,
        ep,
        micro_batch_seqs: mb,
        global_batch_seqs: mb * ep * 4,
        zero_stage: 0,
        recompute: Recompute::None,
        precision: Precision::Fp16,
    }
}

fn tutel() -> OpsConfig {
    OpsConfig {
        moe_impl: MoeImpl::Tutel,
        expert_kernel: ExpertKernel::Padded,
        ..OpsConfig::default()
    }
}

fn knobs() -> PriceKnobs {
    PriceKnobs {
        power_limit_w: f64::NAN,
        precision: Precision::Fp16,
    }
}

fn layer0(s: &StepOps) -> Vec<&Op> {
    s.stages[0]
        .micro_batch()
        .filter(|o| o.layer == Some(0))
        .collect()
}

#[test]
fn tutel_costs_more_than_megatron_padded_and_grows_with_the_micro_batch() {
    let acc = preset("a100").unwrap();
    let k = knobs();
    let time = |cfg: &OpsConfig, mb: u32| {
        let s = step_ops(&model(None, 1), &plan(2, mb), cfg).unwrap();
        layer0(&s)
            .iter()
            .map(|o| acc.price(o, &k).time_s)
            .sum::<f64>()
    };
    let padded = OpsConfig {
        expert_kernel: ExpertKernel::Padded,
        ..OpsConfig::default()
    };
    assert!(time(&tutel(), 4) > time(&padded, 4));
    // Monotone in the micro-batch's tokens (small micro-batches sit on the launch floors,
    // so equal is allowed step to step), and larger at 64 sequences than at one.
    let mut last = 0.0;
    for mb in [1, 2, 4, 8, 16, 32, 64] {
        let t = time(&tutel(), mb);
        assert!(t >= last, "mb {mb}: {t} after {last}");
        last = t;
    }
    assert!(time(&tutel(), 64) > time(&tutel(), 1));
}

#[test]
fn tutel_padded_ops_grow_with_the_largest_expert_count() {
    let acc = preset("a100").unwrap();
    let k = knobs();
    let s = step_ops(&model(None, 1), &plan(2, 4), &tutel()).unwrap();
    let routed: Vec<&Op> = layer0(&s).into_iter().filter(|o| o.is_routed()).collect();
    assert!(!routed.is_empty());
    // Zero fills, permute-copies, experts, bias adds, activation, all-to-alls: all padded.
    assert!(routed.iter().all(|o| matches!(
        o.load,
        Load::Routed {
            by: RoutedBy::MaxLocalExpert,
            ..
        }
    )));
    for o in routed.iter().filter(|o| !o.class.is_comm()) {
        let mut last = -1.0;
        for m in [16.0, 64.0, 256.0, 1024.0, 4096.0] {
            let t = acc.price(&o.at_tokens(m), &k).time_s;
            assert!(t >= last, "{} at {m}: {t} < {last}", o.name);
            last = t;
        }
    }
    for o in routed.iter().filter(|o| o.class == KernelClass::AllToAll) {
        let b = |m: f64| o.at_tokens(m).comm.map_or(0.0, |c| c.bytes_per_rank);
        assert!(b(2048.0) > b(1024.0));
        // Rows = E_local * max count: bytes per rank = 4 * m * d * 2 B * (ep - 1) / ep.
        assert_eq!(b(1024.0), 4.0 * 1024.0 * 256.0 * 2.0 * 0.5);
    }
}

/// Layer 0's MoE-block ops (names `moe.*` / `tutel.*`) of one pass.
fn block(s: &StepOps, fwd: bool) -> Vec<Op> {
    let st = &s.stages[0];
    let list = if fwd { &st.forward } else { &st.backward };
    list.iter()
        .filter(|o| o.layer == Some(0))
        .filter(|o| o.name.starts_with("moe.") || o.name.starts_with("tutel."))
        .cloned()
        .collect()
}

fn launches(ops: &[Op]) -> u32 {
    ops.iter()
        .filter(|o| !o.class.is_comm())
        .map(|o| o.launches)
        .sum()
}

fn count(ops: &[Op], class: KernelClass) -> usize {
    ops.iter().filter(|o| o.class == class).count()
}

#[test]
fn tutel_dropless_layer_matches_a_hand_count_of_moe_layer_forward() {
    let s = step_ops(&model(None, 1), &plan(2, 1), &tutel()).unwrap();
    let f = block(&s, true);
    // Hand count, top-1, fp16, dropless, ep 2 (tutel v0.2.0): norm 1, gate GEMM 1, softmax 1,
    // topk 1, one-hot 2, gate mul+sum 2, GShard loss 7, locations (cumsum, mul, sum, cast) 4,
    // index cast 1, capacity (cat, max, clone) 3, host read 1, encode zeros 1, encode scatter
    // 1, dispatch permute-copy 1, fc1 1, bias 1, GELU 1, fc2 1, bias 1, combine permute-copy 1,
    // decode (half2 repeat, gather) 2, residual 1 = 36.
    assert_eq!(
        launches(&f),
        36,
        "{:?}",
        f.iter().map(|o| (o.name, o.launches)).collect::<Vec<_>>()
    );
    assert_eq!(f.iter().map(|o| o.host_syncs).sum::<u32>(), 1);
    assert_eq!(count(&f, KernelClass::AllToAll), 2);
    let ar: Vec<&Op> = f
        .iter()
        .filter(|o| o.class == KernelClass::AllReduce)
        .collect();
    assert_eq!(ar.len(), 1);
    assert_eq!(
        ar[0].comm.map(|c| (c.group, c.bytes_per_rank)),
        Some((GroupKind::Ep, 4.0))
    );
    // Backward: both all-to-alls again, no host sync, no capacity collective.
    let b = block(&s, false);
    assert_eq!(count(&b, KernelClass::AllToAll), 2);
    assert_eq!(count(&b, KernelClass::AllReduce), 0);
    assert_eq!(b.iter().map(|o| o.host_syncs).sum::<u32>(), 0);
    // The padded buffer crosses the all-to-all: E * capacity rows of d at fp16, 1/2 off-rank,
    // sized by the largest expert (uniform: T * k rows).
    let d = f.iter().find(|o| o.name == "moe.dispatch").unwrap();
    let t = 128.0;
    assert_eq!(
        d.comm.map(|c| c.bytes_per_rank),
        Some(t * 256.0 * 2.0 * 0.5)
    );
    assert!(matches!(
        d.load,
        Load::Routed {
            by: RoutedBy::MaxLocalExpert,
            ..
        }
    ));
}

#[test]
fn tutel_static_capacity_has_no_sync_and_pads_to_the_capacity() {
    let s = step_ops(&model(Some(2.0), 1), &plan(2, 1), &tutel()).unwrap();
    let f = block(&s, true);
    // Dropless' cat/max/clone and host read are gone: 36 - 3 - 1 = 32.
    assert_eq!(launches(&f), 32);
    assert_eq!(f.iter().map(|o| o.host_syncs).sum::<u32>(), 0);
    assert_eq!(count(&f, KernelClass::AllReduce), 0);
    // capacity = k * int(cf * ceil(T / E)) = int(2 * 16) = 32 per (rank, expert); 8 experts.
    let fc1 = f.iter().find(|o| o.name == "moe.expert_fc1").unwrap();
    assert_eq!(fc1.gemm.map(|g| (g.m, g.groups)), Some((8.0 * 32.0, 4)));
    assert!(!fc1.is_routed());
}

#[test]
fn tutel_top2_adds_the_second_slot_kernels() {
    let one = launches(&block(
        &step_ops(&model(None, 1), &plan(2, 1), &tutel()).unwrap(),
        true,
    ));
    let two = launches(&block(
        &step_ops(&model(None, 2), &plan(2, 1), &tutel()).unwrap(),
        true,
    ));
    // Per extra slot: one-hot 2, gate 2, locations 6, index cast 1, encode 1, decode repeat 1
    // + gather 1 + slot add 1; gate normalisation 2 * 2 = 4.
    assert_eq!(two - one, 2 + 2 + 6 + 1 + 1 + 3 + 4);
}

#[test]
fn tutel_is_opt_in_the_default_op_list_has_no_tutel_op() {
    let m = step_ops(&model(None, 1), &plan(2, 1), &OpsConfig::default()).unwrap();
    assert!(m.stages[0]
        .micro_batch()
        .all(|o| !o.name.starts_with("tutel.")));
}
