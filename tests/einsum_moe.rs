//! The einsum MoE layer (`moe_impl = "einsum"`, Mesh TensorFlow `transformer_moe_layer_v1`): its
//! groups and capacity against `_split_into_groups` and moe.py's capacity rule, its FLOPs against
//! a hand count of the dispatch/combine einsums, router and experts of a tiny MoE, the padding a
//! capacity floor adds, and its all-to-alls of the whole padded buffer.

use moesim::workload::step_ops::{
    einsum_activation_bytes, expert_capacity, split_into_groups, step_ops, EinsumConfig,
    ExpertKernel, Framework, GroupKind, KernelClass, MoeImpl, Op, OpsConfig, StepOps,
};
use moesim::workload::{
    Act, Arch, FfnKind, ModelSpec, MoeSpec, ParallelPlan, Precision, Recompute,
};

const D: f64 = 64.0;
const FE: f64 = 128.0;
const SEQ: u32 = 128;

fn model(experts: u32, top_k: u32) -> ModelSpec {
    ModelSpec {
        name: "einsum-tiny".into(),
        layers: 2,
        d_model: D as u32,
        heads: 4,
        kv_heads: 4,
        seq_len: SEQ,
        vocab: 1000,
        ffn_hidden: 256,
        ffn: FfnKind::Moe(MoeSpec {
            experts,
            top_k,
            capacity_factor: Some(1.0),
            expert_ffn_hidden: FE as u32,
            shared_experts: 0,
            moe_every: 1,
        }),
        arch: Arch {
            act: Act::Gelu,
            ..Arch::default()
        },
    }
}

fn plan(ep: u32) -> ParallelPlan {
    ParallelPlan {
        dp: ep,
        tp: 1,
        pp: 1,
        ep,
        micro_batch_seqs: 1,
        global_batch_seqs: ep * 2,
        zero_stage: 0,
        recompute: Recompute::None,
        precision: Precision::Bf16,
    }
}

fn einsum(group_size: u32, min_capacity: u32) -> OpsConfig {
    OpsConfig {
        moe_impl: MoeImpl::Einsum,
        expert_kernel: ExpertKernel::Padded,
        einsum: EinsumConfig {
            group_size,
            min_capacity,
        },
        ..OpsConfig::default()
    }
}

/// FLOPs of layer 0's ops named `name` in one pass.
fn flops(s: &StepOps, fwd: bool, name: &str) -> f64 {
    let st = &s.stages[0];
    let list = if fwd { &st.forward } else { &st.backward };
    list.iter()
        .filter(|o| o.layer == Some(0) && o.name == name)
        .map(|o| o.flops)
        .sum()
}

fn layer0(s: &StepOps, fwd: bool) -> Vec<&Op> {
    let st = &s.stages[0];
    let list = if fwd { &st.forward } else { &st.backward };
    list.iter().filter(|o| o.layer == Some(0)).collect()
}

#[test]
fn groups_and_capacity_follow_mesh_tensorflow() {
    // `_split_into_groups`: 2048 tokens on a 2-core chip, group_size 1024 -> 2 x 1024; a larger
    // group size still gives one group per core; 1000 tokens, 300 per group -> 4 x 250 (3 does
    // not divide 1000).
    assert_eq!(split_into_groups(2048, 1024, 2), (2, 1024));
    assert_eq!(split_into_groups(2048, 8192, 2), (2, 1024));
    assert_eq!(split_into_groups(1000, 300, 1), (4, 250));
    assert_eq!(split_into_groups(4096, 1024, 1), (4, 1024));
    // Capacity `max(min(S, floor(S cf / E)), min)`: Switch-C-sized groups hit the floor of 4.
    assert_eq!(expert_capacity(1024, 1.0, 2048, 4), 4);
    assert_eq!(expert_capacity(2048, 2.0, 2048, 1), 2);
    assert_eq!(expert_capacity(64, 1.0, 4, 4), 16);
    assert_eq!(expert_capacity(8, 100.0, 2, 1), 8);
    assert_eq!(expert_capacity(1000, 1.25, 4, 4), 312);
}

#[test]
fn einsum_flops_match_a_hand_count_of_a_tiny_moe() {
    // 128 tokens, groups of 64 (G = 2, S = 64), E = 4, cf 1 -> C = 16: E * C = S, no padding.
    let (t, g, s, e, c) = (128.0, 2.0, 64.0, 4.0, 16.0);
    let ops = step_ops(&model(4, 1), &plan(1), &einsum(64, 4)).unwrap();
    let einsum_flops = 2.0 * g * s * e * c * D;
    assert_eq!(einsum_flops, 1_048_576.0);
    assert_eq!(flops(&ops, true, "einsum.dispatch"), einsum_flops);
    // Backward of dispatch: the inputs' gradient only (the dispatch tensor has none).
    assert_eq!(flops(&ops, false, "einsum.dispatch"), einsum_flops);
    assert_eq!(flops(&ops, true, "einsum.combine"), einsum_flops);
    // Backward of combine: the expert outputs' and the combine tensor's gradients.
    assert_eq!(flops(&ops, false, "einsum.combine"), 2.0 * einsum_flops);
    // fp32 router `t x E x M`, its two backward GEMMs.
    assert_eq!(flops(&ops, true, "moe.router"), 2.0 * t * e * D);
    assert_eq!(flops(&ops, false, "moe.router"), 4.0 * t * e * D);
    // Experts over G * E * C = 128 slots (GELU: one up-projection).
    let slots = g * e * c;
    assert_eq!(flops(&ops, true, "moe.expert_fc1"), 2.0 * slots * FE * D);
    assert_eq!(flops(&ops, true, "moe.expert_fc2"), 2.0 * slots * D * FE);
    assert_eq!(flops(&ops, false, "moe.expert_fc1"), 4.0 * slots * FE * D);
    // The router GEMM moves fp32: inputs, weights and logits at 4 bytes.
    let router = layer0(&ops, true)
        .into_iter()
        .find(|o| o.name == "moe.router")
        .expect("router");
    assert_eq!(router.bytes, 4.0 * (t * D + D * e + t * e));
    // One router cast, the Switch input jitter, softmax, top-1, one-hot, aux loss,
    // positions, combine tensor: each once.
    for name in [
        "einsum.router_cast",
        "einsum.jitter",
        "moe.score",
        "moe.topk",
        "einsum.one_hot",
        "moe.aux_loss",
        "einsum.positions",
        "einsum.combine_tensor",
    ] {
        let n = layer0(&ops, true).iter().filter(|o| o.name == name).count();
        assert_eq!(n, 1, "{name}");
    }
    // No gather/scatter/permute: dispatch and combine are matmuls.
    assert!(layer0(&ops, true).iter().all(|o| !matches!(
        o.class,
        KernelClass::Gather | KernelClass::Scatter | KernelClass::Permute
    )));
}

#[test]
fn the_capacity_floor_pads_the_einsums_and_experts() {
    // E = 8, groups of 16, cf 1: floor(16 / 8) = 2 slots, Mesh TF's floor raises them to 4, so
    // E * C = 32 slots per 16-token group: twice the expert rows and einsum work of floor 1.
    let m = model(8, 1);
    let pad = step_ops(&m, &plan(1), &einsum(16, 4)).unwrap();
    let tight = step_ops(&m, &plan(1), &einsum(16, 1)).unwrap();
    for name in ["einsum.dispatch", "einsum.combine", "moe.expert_fc1"] {
        assert_eq!(
            flops(&pad, true, name),
            2.0 * flops(&tight, true, name),
            "{name}"
        );
    }
    // G = 8 groups of 16, E = 8, C = 4: 256 slots.
    assert_eq!(flops(&pad, true, "moe.expert_fc1"), 2.0 * 256.0 * FE * D);
    // The router does not change.
    assert_eq!(
        flops(&pad, true, "moe.router"),
        flops(&tight, true, "moe.router")
    );
}

#[test]
fn top2_adds_the_second_slot_and_no_jitter() {
    let one = step_ops(&model(4, 1), &plan(1), &einsum(64, 4)).unwrap();
    let two = step_ops(&model(4, 2), &plan(1), &einsum(64, 4)).unwrap();
    let has = |s: &StepOps, n: &str| layer0(s, true).iter().any(|o| o.name == n);
    assert!(has(&one, "einsum.jitter") && !has(&two, "einsum.jitter"));
    assert!(has(&two, "einsum.mask_top1") && !has(&one, "einsum.mask_top1"));
    // cf is per token (Mesh TF): top-2 keeps C = S cf / E, the same einsum sizes.
    assert_eq!(
        flops(&one, true, "einsum.dispatch"),
        flops(&two, true, "einsum.dispatch")
    );
    let pos = |s: &StepOps| flops(s, true, "einsum.positions");
    assert!(pos(&two) > pos(&one));
}

#[test]
fn all_to_alls_carry_the_padded_buffer_and_are_fixed() {
    // ep 4: every device sends (ep - 1) / ep of its [E, G, C, M] bf16 buffer each way.
    let s = step_ops(&model(4, 1), &plan(4), &einsum(64, 4)).unwrap();
    let a2a: Vec<&Op> = layer0(&s, true)
        .into_iter()
        .filter(|o| o.class == KernelClass::AllToAll)
        .collect();
    assert_eq!(a2a.len(), 2);
    let buffer = 2.0 * 4.0 * 16.0 * D * 2.0; // G E C M, bf16
    for o in &a2a {
        let c = o.comm.expect("comm");
        assert_eq!(c.group, GroupKind::Ep);
        assert_eq!(c.bytes_per_rank, buffer * 0.75);
        assert!(!o.is_routed());
    }
    assert!(s.stages[0].micro_batch().all(|o| !o.is_routed()));
}

#[test]
fn mesh_tensorflow_splits_a_chip_into_two_core_groups() {
    // 128 tokens, group_size 128: one group on a GPU, two (one per TPU core) under Mesh TF.
    let m = model(4, 1);
    let gpu = step_ops(&m, &plan(1), &einsum(128, 1)).unwrap();
    let tpu = step_ops(
        &m,
        &plan(1),
        &OpsConfig {
            framework: Framework::MeshTensorflow,
            ..einsum(128, 1)
        },
    )
    .unwrap();
    // Dispatch FLOPs 2 G S E C M: G S = 128 either way, C = S / E halves with S.
    assert_eq!(
        flops(&gpu, true, "einsum.dispatch"),
        2.0 * flops(&tpu, true, "einsum.dispatch")
    );
}

#[test]
fn the_dispatch_and_combine_tensors_are_kept_activations() {
    // Tiny MoE, bf16, top-1, cf 1: G = 2, S = 64, E = 4, C = 16 (128 slots = 128 tokens).
    // Dispatch + combine 2 x 2 B x G S E C = 32768; no extra slots; expert outputs 128 x 64 x 2 B
    // = 16384; fp32 router input and probabilities 128 x (64 + 4) x 4 B = 34816.
    let m = model(4, 1);
    let cfg = EinsumConfig {
        group_size: 64,
        min_capacity: 4,
    };
    assert_eq!(
        einsum_activation_bytes(&m, &plan(1), cfg, Framework::Megatron),
        32768.0 + 16384.0 + 34816.0
    );
    // E = 8, groups of 16, floor 4: G = 8, C = 4, 256 slots for 128 tokens. Tensors
    // 2 x 2 B x 4096 = 16384; 128 extra slots x (2 x 64 + 4 x 128) units x 1 B = 81920;
    // outputs 256 x 64 x 2 B = 32768; router 128 x 72 x 4 B = 36864.
    let cfg = EinsumConfig {
        group_size: 16,
        min_capacity: 4,
    };
    assert_eq!(
        einsum_activation_bytes(&model(8, 1), &plan(1), cfg, Framework::Megatron),
        16384.0 + 81920.0 + 32768.0 + 36864.0
    );
}
