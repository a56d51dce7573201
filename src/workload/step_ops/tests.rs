//! Tests of the step operation list: hand-counted FLOPs of a small model, agreement with the
//! model's FLOP count, recompute semantics shared with memory, GQA, MLA, routing loads.

use super::super::arch::Arch;
use super::super::memory::{
    activation_bytes_per_layer, memory_per_gpu, stored_activation_bytes_per_layer,
};
use super::super::model::presets::{deepseek_v3, llama2_7b, mixtral_8x7b};
use super::super::model::{FfnKind, ModelSpec, MoeSpec};
use super::super::plan::{ParallelPlan, Recompute};
use super::super::precision::Precision;
use super::*;

/// d_model 512, 4 layers (1 and 3 MoE), 8 heads / 2 KV heads (head_dim 64), seq 128,
/// vocab 1000, dense FFN 2048, 8 experts top-2 of width 1024, SwiGLU.
fn small() -> ModelSpec {
    ModelSpec {
        name: "small".into(),
        layers: 4,
        d_model: 512,
        heads: 8,
        kv_heads: 2,
        seq_len: 128,
        vocab: 1000,
        ffn_hidden: 2048,
        ffn: FfnKind::Moe(MoeSpec {
            experts: 8,
            top_k: 2,
            capacity_factor: None,
            expert_ffn_hidden: 1024,
            shared_experts: 0,
            moe_every: 2,
        }),
        arch: Arch::default(),
    }
}

/// The fixture's one-GPU plan: one micro-batch of 2 sequences.
fn plan1() -> ParallelPlan {
    super::tests_fixture::plan(Precision::Bf16, 1)
}

fn ops(m: &ModelSpec, p: &ParallelPlan) -> StepOps {
    step_ops(m, p, &OpsConfig::default()).unwrap()
}

fn fwd_flops(s: &StepOps, name: &str, layer: Option<u32>) -> f64 {
    s.stages
        .iter()
        .flat_map(|st| st.forward.iter())
        .filter(|o| o.name == name && (layer.is_none() || o.layer == layer))
        .map(|o| o.flops)
        .sum()
}

fn class_flops(s: &StepOps, phase: Phase, classes: &[KernelClass]) -> f64 {
    s.stages
        .iter()
        .flat_map(|st| st.micro_batch())
        .filter(|o| o.phase == phase && classes.contains(&o.class))
        .map(|o| o.flops)
        .sum()
}

#[test]
fn small_model_op_flops_match_hand_count() {
    let m = small();
    m.validate().unwrap();
    let s = ops(&m, &plan1());
    // T = 2 sequences x 128 = 256 tokens; head_dim = 512 / 8 = 64.
    let t = 256.0;
    // QKV: n = 8*64 + 2*2*64 = 768 -> 2 * 256 * 768 * 512.
    assert_eq!(fwd_flops(&s, "attn.qkv", Some(0)), 2.0 * t * 768.0 * 512.0);
    assert_eq!(fwd_flops(&s, "attn.qkv", Some(0)), 201_326_592.0);
    // Out projection: 2 * 256 * 512 * 512.
    assert_eq!(fwd_flops(&s, "attn.out", Some(0)), 134_217_728.0);
    // Flash attention, causal: keys per query on average (128 + 1) / 2 = 64.5;
    // 2 * batch 2 * seq 128 * 64.5 * heads 8 * (64 + 64).
    assert_eq!(
        fwd_flops(&s, "attn.flash", Some(0)),
        2.0 * 2.0 * 128.0 * 64.5 * 8.0 * 128.0
    );
    assert_eq!(fwd_flops(&s, "attn.flash", Some(0)), 33_816_576.0);
    // Dense layer 0: fc1 = gate + up, 2 * 256 * (2 * 2048) * 512; fc2 2 * 256 * 512 * 2048.
    assert_eq!(fwd_flops(&s, "ffn.fc1", Some(0)), 1_073_741_824.0);
    assert_eq!(fwd_flops(&s, "ffn.fc2", Some(0)), 536_870_912.0);
    assert_eq!(fwd_flops(&s, "ffn.fc1", Some(1)), 0.0, "layer 1 is MoE");
    // MoE layer 1: router 2 * 256 * 8 * 512; experts see 256 * 2 = 512 assignments:
    // fc1 2 * 512 * 2048 * 512, fc2 2 * 512 * 512 * 1024.
    assert_eq!(fwd_flops(&s, "moe.router", Some(1)), 2_097_152.0);
    assert_eq!(fwd_flops(&s, "moe.expert_fc1", Some(1)), 1_073_741_824.0);
    assert_eq!(fwd_flops(&s, "moe.expert_fc2", Some(1)), 536_870_912.0);
    // LM head: 2 * 256 * 1000 * 512.
    assert_eq!(fwd_flops(&s, "head.logits", None), 262_144_000.0);
    // Backward: GEMMs 2x (input + weight gradient), flash 2.5x (FA2).
    let g = [KernelClass::Gemm, KernelClass::GroupedGemm];
    let fa = [KernelClass::FlashAttention];
    let r = class_flops(&s, Phase::Backward, &g) / class_flops(&s, Phase::Forward, &g);
    assert!((r - 2.0).abs() < 1e-12, "{r}");
    let r = class_flops(&s, Phase::Backward, &fa) / class_flops(&s, Phase::Forward, &fa);
    assert!((r - 2.5).abs() < 1e-12, "{r}");
    // Every class a step launches is there.
    let classes: std::collections::HashSet<KernelClass> =
        s.stages[0].micro_batch().map(|o| o.class).collect();
    for k in [
        KernelClass::Gemm,
        KernelClass::GroupedGemm,
        KernelClass::FlashAttention,
        KernelClass::Elementwise,
        KernelClass::Norm,
        KernelClass::Softmax,
        KernelClass::TopK,
        KernelClass::Permute,
        KernelClass::Scatter,
        KernelClass::Embedding,
        KernelClass::CrossEntropy,
    ] {
        assert!(classes.contains(&k), "{k:?} missing");
    }
    assert_eq!(
        s.stages[0].per_step.last().unwrap().class,
        KernelClass::Optimizer
    );
}

#[test]
fn forward_flops_agree_with_flops_per_token_train_up_to_causal_attention() {
    // Op-list forward matmul + attention FLOP per token = flops_per_token_train / 3, except
    // the attention core: the model count uses all `s` keys per query (Hoffmann et al. App. F),
    // the flash kernel computes the causal `(s + 1) / 2` on average.
    for (m, p) in [
        (small(), plan1()),
        (llama2_7b(), ParallelPlan::single_gpu(Precision::Bf16)),
        (mixtral_8x7b(), ParallelPlan::single_gpu(Precision::Bf16)),
    ] {
        let s = ops(&m, &p);
        let t = p.micro_batch_seqs as f64 * m.seq_len as f64;
        let got = class_flops(
            &s,
            Phase::Forward,
            &[
                KernelClass::Gemm,
                KernelClass::GroupedGemm,
                KernelClass::FlashAttention,
            ],
        ) / t;
        let attn_model = m.layers as f64 * 4.0 * m.seq_len as f64 * m.attn_core_width();
        let attn_causal = m.layers as f64 * 4.0 * m.causal_keys_mean() * m.attn_core_width();
        let expect = m.flops_per_token_train() / 3.0 - attn_model + attn_causal;
        assert!(
            (got / expect - 1.0).abs() < 1e-9,
            "{}: {got} vs {expect}",
            m.name
        );
        // The other kernels (norms, element-wise, router softmax/top-k, loss) add < 1 %.
        let all: f64 = s
            .stages
            .iter()
            .flat_map(|x| x.forward.iter())
            .map(|o| o.flops)
            .sum();
        assert!(all / t / got - 1.0 < 0.01, "{}: {}", m.name, all / t / got);
    }
}

#[test]
fn memory_and_ops_read_the_same_recompute_setting() {
    let m = small();
    let base = plan1();
    let fwd_layer = |s: &StepOps| -> f64 {
        s.stages[0]
            .forward
            .iter()
            .filter(|o| o.layer.is_some())
            .map(|o| o.flops)
            .sum()
    };
    fn rc(s: &StepOps) -> Vec<&Op> {
        s.stages[0]
            .backward
            .iter()
            .filter(|o| o.phase == Phase::Recompute)
            .collect()
    }
    // None: nothing recomputed; every activation stored.
    let p = ParallelPlan {
        recompute: Recompute::None,
        ..base.clone()
    };
    let s = ops(&m, &p);
    assert!(rc(&s).is_empty());
    assert_eq!(
        stored_activation_bytes_per_layer(&m, &p, 0),
        activation_bytes_per_layer(&m, &p, 0)
    );
    let none_mem = memory_per_gpu(&m, &p).activations_bytes;
    // Selective: only the attention core is recomputed; memory drops only its log-sum-exp.
    let p = ParallelPlan {
        recompute: Recompute::Selective,
        ..base.clone()
    };
    let s = ops(&m, &p);
    assert!(!rc(&s).is_empty());
    assert!(rc(&s)
        .iter()
        .all(|o| o.class == KernelClass::FlashAttention));
    let sel_mem = memory_per_gpu(&m, &p).activations_bytes;
    assert!(sel_mem < none_mem && sel_mem > 0.99 * none_mem);
    // Full: a whole forward of every layer again; memory keeps each layer's input (2sbh).
    let p = ParallelPlan {
        recompute: Recompute::Full,
        ..base.clone()
    };
    let s = ops(&m, &p);
    let rc_flops: f64 = rc(&s).iter().map(|o| o.flops).sum();
    assert!((rc_flops / fwd_layer(&s) - 1.0).abs() < 1e-12);
    assert_eq!(
        stored_activation_bytes_per_layer(&m, &p, 0),
        2.0 * 256.0 * 512.0
    );
    assert!(memory_per_gpu(&m, &p).activations_bytes < sel_mem);
    // The scenario's legacy `recompute = true` is what sim/step.rs charges: a full forward.
    assert_eq!(Recompute::from_legacy_bool(true), Recompute::Full);
    assert_eq!(Recompute::from_legacy_bool(false), Recompute::None);
    assert_eq!(Recompute::parse("selective"), Some(Recompute::Selective));
}

#[test]
fn gqa_reduces_kv_projection_flops() {
    let mut mha = small();
    mha.kv_heads = 8;
    let gqa = small();
    let f = |m: &ModelSpec| fwd_flops(&ops(m, &plan1()), "attn.qkv", Some(0));
    // MHA: n = 8*64*3 = 1536; GQA (2 KV heads): 768. Queries unchanged, K and V 4x smaller.
    assert_eq!(f(&mha) - f(&gqa), 2.0 * 256.0 * 512.0 * (2.0 * 6.0 * 64.0));
    // Attention-core FLOPs do not depend on the KV heads.
    let a = |m: &ModelSpec| fwd_flops(&ops(m, &plan1()), "attn.flash", Some(0));
    assert_eq!(a(&mha), a(&gqa));
}

#[test]
fn head_dim_and_sliding_window_and_gelu_and_tied() {
    let mut m = small();
    m.arch.head_dim = Some(128); // 8 x 128 = 1024 query width, wider than d_model
    let s = ops(&m, &plan1());
    assert_eq!(
        fwd_flops(&s, "attn.qkv", Some(0)),
        2.0 * 256.0 * (1024.0 + 512.0) * 512.0
    );
    assert_eq!(
        fwd_flops(&s, "attn.out", Some(0)),
        2.0 * 256.0 * 512.0 * 1024.0
    );
    let mut w = small();
    w.arch.sliding_window = Some(32);
    // Keys per query: (1 + ... + 32 + 96 * 32) / 128 = (528 + 3072) / 128 = 28.125.
    assert_eq!(w.causal_keys_mean(), 28.125);
    assert!(w.flops_per_token_train() < small().flops_per_token_train());
    let mut g = small();
    g.arch.act = crate::workload::Act::Gelu;
    assert_eq!(g.dense_ffn_params(), 2.0 * 512.0 * 2048.0);
    assert_eq!(
        fwd_flops(&ops(&g, &plan1()), "ffn.fc1", Some(0)),
        2.0 * 256.0 * 2048.0 * 512.0
    );
    let mut t = small();
    t.arch.tied_embeddings = true;
    assert_eq!(small().params_total() - t.params_total(), 1000.0 * 512.0);
    let mut f = small();
    f.arch.first_dense_layers = 2;
    // MoE layers from layer 2 on, every 2nd: layer 3 only.
    assert_eq!(f.moe_layers(), 1);
    assert!(!f.is_moe_layer(1) && f.is_moe_layer(3));
}

#[test]
fn deepseek_v3_mla_counts_match_published_671b_total_37b_active() {
    let m = deepseek_v3();
    m.validate().unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b;
    assert!(rel(m.params_total(), 671e9) < 0.01, "{}", m.params_total());
    assert!(rel(m.params_active(), 37e9) < 0.03, "{}", m.params_active());
    // Op-list forward matmul FLOP per token = 2 x active matmul weights (embedding lookup,
    // norms excluded): 37B active -> ~74 GFLOP per token, with the attention core apart.
    let p = ParallelPlan {
        dp: 8,
        ep: 8,
        global_batch_seqs: 8,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    };
    let s = ops(&m, &p);
    let t = m.seq_len as f64;
    let gemm = class_flops(
        &s,
        Phase::Forward,
        &[KernelClass::Gemm, KernelClass::GroupedGemm],
    ) / t;
    let weights = m.params_active()
        - m.vocab as f64 * m.d_model as f64
        - m.layers as f64 * m.norm_params_per_layer()
        - m.final_norm_params();
    assert!(
        rel(gemm, 2.0 * weights) < 1e-9,
        "{gemm} vs {}",
        2.0 * weights
    );
    // MLA attention core: qk 192, v 128 per head.
    let flash = fwd_flops(&s, "attn.flash", Some(0));
    assert_eq!(
        flash,
        2.0 * t * m.causal_keys_mean() * 128.0 * (192.0 + 128.0)
    );
}

#[test]
fn routed_ops_resize_with_the_routing_load() {
    let m = mixtral_8x7b();
    let p = ParallelPlan {
        dp: 8,
        tp: 2,
        ep: 8,
        global_batch_seqs: 8,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    };
    let s = ops(&m, &p);
    let (recv, per_expert) = uniform_expert_tokens(&m, &p);
    assert_eq!(recv, 4096.0 * 2.0);
    assert_eq!(per_expert, recv);
    let fc1 = s.stages[0]
        .forward
        .iter()
        .find(|o| o.name == "moe.expert_fc1")
        .unwrap();
    assert!(fc1.is_routed());
    let twice = fc1.at_tokens(2.0 * recv);
    assert!((twice.flops / fc1.flops - 2.0).abs() < 1e-12);
    assert_eq!(twice.gemm.unwrap().m, 2.0 * recv);
    assert!(twice.bytes < 2.0 * fc1.bytes, "weights are the fixed part");
    assert_eq!(fc1.at_tokens(recv), *fc1);
    // Weight gradient: tokens are the reduction dim.
    let wg = s.stages[0]
        .backward
        .iter()
        .find(|o| o.name == "moe.expert_fc1" && o.grad == Some(Grad::Weight))
        .unwrap();
    assert_eq!(wg.at_tokens(3.0 * recv).gemm.unwrap().k, 3.0 * recv);
    // Dispatch and combine are EP all-to-alls sized by the routing: per rank 7/8 of the
    // assignments of its tp shard of tokens.
    let disp = s.stages[0]
        .forward
        .iter()
        .find(|o| o.name == "moe.dispatch")
        .unwrap();
    let c = disp.comm.unwrap();
    assert_eq!((c.group, c.size), (GroupKind::Ep, 8));
    assert_eq!(c.bytes_per_rank, recv / 2.0 * 4096.0 * 2.0 * 7.0 / 8.0);
    let c2 = disp.at_tokens(0.5 * recv).comm.unwrap();
    assert!((c2.bytes_per_rank / c.bytes_per_rank - 0.5).abs() < 1e-12);
}

#[test]
fn router_and_expert_kernel_launch_counts() {
    let m = mixtral_8x7b();
    let p = ParallelPlan::single_gpu(Precision::Bf16);
    let launches = |cfg: OpsConfig, name_prefix: &str| -> u32 {
        let s = step_ops(&m, &p, &cfg).unwrap();
        s.stages[0]
            .forward
            .iter()
            .filter(|o| o.layer == Some(0) && o.name.starts_with(name_prefix))
            .map(|o| o.launches)
            .sum()
    };
    let eager = OpsConfig::default();
    let fused = OpsConfig {
        router_kernel: RouterKernel::Fused,
        ..eager
    };
    // Router (gate, score, top-k, normalise, scatter, aux loss): 13 eager, 3 fused.
    let router = |cfg| {
        launches(cfg, "moe.router")
            + launches(cfg, "moe.score")
            + launches(cfg, "moe.topk")
            + launches(cfg, "moe.route_map")
            + launches(cfg, "moe.aux_loss")
    };
    assert_eq!(router(eager), 13);
    assert_eq!(router(fused), 3);
    assert!(launches(fused, "moe.permute") < launches(eager, "moe.permute"));
    // Looped experts: a kernel chain per local expert; grouped: one per matrix.
    let looped = OpsConfig {
        expert_kernel: ExpertKernel::Loop,
        ..eager
    };
    assert_eq!(launches(eager, "moe.expert_"), 3);
    assert_eq!(launches(looped, "moe.expert_"), 3 * 8);
}

#[test]
fn tensor_parallel_collectives_follow_sequence_parallelism() {
    let m = llama2_7b();
    let p = ParallelPlan {
        tp: 4,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    };
    let count = |cfg: OpsConfig, class: KernelClass| {
        let s = step_ops(&m, &p, &cfg).unwrap();
        s.stages[0]
            .micro_batch()
            .filter(|o| o.layer == Some(0) && o.class == class)
            .count()
    };
    let sp = OpsConfig::default();
    assert_eq!(count(sp, KernelClass::AllGather), 4); // 2 forward, 2 backward
    assert_eq!(count(sp, KernelClass::ReduceScatter), 4);
    assert_eq!(count(sp, KernelClass::AllReduce), 0);
    let ar = OpsConfig {
        sequence_parallel: false,
        ..sp
    };
    assert_eq!(count(ar, KernelClass::AllReduce), 4); // Megatron: 2 forward, 2 backward
    assert_eq!(count(ar, KernelClass::AllGather), 0);
}

#[test]
fn zero_stages_and_optimizer_traffic() {
    let m = llama2_7b();
    let at = |zero: u8| {
        let p = ParallelPlan {
            dp: 8,
            zero_stage: zero,
            global_batch_seqs: 8,
            ..ParallelPlan::single_gpu(Precision::Bf16)
        };
        ops(&m, &p)
    };
    let classes = |s: &StepOps| -> Vec<KernelClass> {
        s.stages[0].per_step.iter().map(|o| o.class).collect()
    };
    assert_eq!(
        classes(&at(0)),
        vec![KernelClass::AllReduce, KernelClass::Optimizer]
    );
    assert_eq!(
        classes(&at(1)),
        vec![
            KernelClass::ReduceScatter,
            KernelClass::Optimizer,
            KernelClass::AllGather
        ]
    );
    // ZeRO-3: per layer, gather before forward and backward, reduce-scatter after backward.
    let z3 = at(3);
    let per_layer = |class| {
        z3.stages[0]
            .micro_batch()
            .filter(|o| o.layer == Some(5) && o.class == class && o.name.starts_with("zero3"))
            .count()
    };
    assert_eq!(
        (
            per_layer(KernelClass::AllGather),
            per_layer(KernelClass::ReduceScatter)
        ),
        (2, 1)
    );
    // Adam at bf16: 38 B per locally owned parameter; ZeRO >= 1 owns 1/dp of them.
    assert_eq!(optimizer_bytes_per_param(OptimizerKind::Adam, 2.0), 38.0);
    let opt = |s: &StepOps| {
        s.stages[0]
            .per_step
            .iter()
            .find(|o| o.class == KernelClass::Optimizer)
            .unwrap()
            .bytes
    };
    assert!((opt(&at(0)) / (38.0 * m.params_total()) - 1.0).abs() < 1e-9);
    assert!((opt(&at(0)) / opt(&at(1)) - 8.0).abs() < 1e-9);
}

#[test]
fn pipeline_stages_split_layers_and_send_boundaries() {
    let m = llama2_7b();
    let p = ParallelPlan {
        pp: 4,
        global_batch_seqs: 8,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    };
    let s = ops(&m, &p);
    assert_eq!(s.micro_batches, 8);
    assert_eq!(s.stages.len(), 4);
    assert_eq!(s.stages[1].layers, 8..16);
    assert!(s.stages[0].forward.first().unwrap().class == KernelClass::Embedding);
    assert!(s.stages[3]
        .forward
        .iter()
        .any(|o| o.class == KernelClass::CrossEntropy));
    assert!(s.stages[3].backward.first().unwrap().class == KernelClass::CrossEntropy);
    assert!(s.stages[0].backward.last().unwrap().class == KernelClass::Embedding);
    for (i, st) in s.stages.iter().enumerate() {
        let sends = |v: &[Op]| {
            v.iter()
                .filter(|o| o.class == KernelClass::SendRecv)
                .count()
        };
        assert_eq!(sends(&st.forward), usize::from(i < 3));
        assert_eq!(sends(&st.backward), usize::from(i > 0));
    }
    // Whole-step forward GEMM FLOPs = micro-batches x one micro-batch, summed over stages.
    let total = s.total(|o| {
        if o.phase == Phase::Forward && o.class == KernelClass::Gemm {
            o.flops
        } else {
            0.0
        }
    });
    let one: f64 = s
        .stages
        .iter()
        .flat_map(|x| x.forward.iter())
        .filter(|o| o.class == KernelClass::Gemm)
        .map(|o| o.flops)
        .sum();
    assert!((total / one - 8.0).abs() < 1e-12);
}

// The unfused (pre-FlashAttention) Megatron-LM core, hand-counted on the small model: micro-batch
// 2 x 8 heads x 128^2 = 262,144 score elements n, head_dim 64. Forward: QK^T and PV 2 n 64 FLOP
// each over the full square (the causal mask does not shrink them); the score matrix is written
// by QK^T (2 B/elem), softmax output (2 B) and dropout mask (1 B) are stored: the 5 a s^2 b
// bytes of Korthikanti et al. 2022, Sec. 4.1. Selective recompute replays all four core ops.
#[test]
fn unfused_attention_core_matches_hand_count_and_is_recomputed_selectively() {
    let mut m = ModelSpec {
        ffn: FfnKind::Dense,
        ..small()
    };
    // Megatron-LM's default `--attention-dropout 0.1`, which the 5as^2b count assumes.
    m.arch.attention_dropout = 0.1;
    let cfg = OpsConfig {
        attention_kernel: AttentionKernel::Unfused,
        ..OpsConfig::default()
    };
    let p = ParallelPlan {
        recompute: Recompute::Selective,
        ..plan1()
    };
    let s = step_ops(&m, &p, &cfg).unwrap();
    let n = 2.0 * 8.0 * 128.0 * 128.0;
    assert_eq!(fwd_flops(&s, "attn.core.scores", Some(0)), 2.0 * n * 64.0);
    assert_eq!(fwd_flops(&s, "attn.core.context", Some(0)), 2.0 * n * 64.0);
    assert_eq!(fwd_flops(&s, "attn.flash", Some(0)), 0.0);
    let layer0 = |phase: Phase| {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.layer == Some(0) && o.phase == phase && o.name.starts_with("attn.core."))
            .collect::<Vec<_>>()
    };
    let fwd = layer0(Phase::Forward);
    assert_eq!(fwd.len(), 4);
    let stored: f64 = fwd
        .iter()
        .filter(|o| o.name != "attn.core.context")
        .map(|o| o.bytes)
        .sum::<f64>();
    // Scores written (2 B) + softmax read/write (4 B) + dropout read/write/mask (5 B) per score
    // element, + Q (256 tokens x 8 heads x 64 x 2 B) and K (2 KV heads) read by QK^T.
    let (q, k) = (256.0 * 8.0 * 64.0 * 2.0, 256.0 * 2.0 * 64.0 * 2.0);
    assert_eq!(stored, 11.0 * n + q + k);
    assert_eq!(layer0(Phase::Recompute).len(), 4);
    // Backward: 4 GEMMs (dQ, dK, dP, dV) and the softmax and dropout backward.
    assert_eq!(layer0(Phase::Backward).len(), 6);
    let flash = step_ops(&m, &p, &OpsConfig::default()).unwrap();
    let recomputed = |s: &StepOps| {
        s.stages[0]
            .micro_batch()
            .filter(|o| o.layer == Some(0) && o.phase == Phase::Recompute)
            .count()
    };
    assert_eq!(recomputed(&flash), 1);
}

// Hand count of the eager vocab-parallel cross-entropy (Megatron-LM / GPT-NeoX): per logit the
// forward reads the logits in bf16 (2 B), casts to fp32 (write 4), max (read 4), subtract
// (read 4, write 4), exp (read 4, write 4), sum (read 4), normalise in place (read 4, write 4);
// the backward multiplies the saved softmax by the loss gradient (read 4, write 4) and casts
// back (read 4, write 2). 2 sequences x 128 tokens x vocab 1000 logits.
#[test]
fn cross_entropy_bytes_match_the_eager_pass_count() {
    let s = ops(&small(), &plan1());
    let logits = 2.0 * 128.0 * 1000.0;
    let st = &s.stages[0];
    let f = st.forward.iter().find(|o| o.name == "loss.cross_entropy");
    let b = st.backward.iter().find(|o| o.name == "loss.cross_entropy");
    let (f, b) = (f.expect("forward loss"), b.expect("backward loss"));
    assert_eq!(f.bytes, (2.0 + 4.0 + 4.0 + 8.0 + 8.0 + 4.0 + 8.0) * logits);
    assert_eq!(b.bytes, (8.0 + 4.0 + 2.0) * logits);
}

// Megatron-LM's scatter/gather optimization (Narayanan et al. 2021, Sec. 4.1): between pipeline
// stages each TP rank sends 1/tp of the boundary activation, and without sequence parallelism the
// receiver all-gathers it over TP; with sequence parallelism the rank's t/tp tokens are sent as
// they are and nothing is gathered. Llama 2 7B shape, micro-batch 1 (4096 tokens), tp 2, pp 2, bf16.
#[test]
fn pipeline_sends_are_split_over_tensor_parallel_ranks() {
    let m = llama2_7b();
    let p = ParallelPlan {
        tp: 2,
        pp: 2,
        global_batch_seqs: 2,
        ..ParallelPlan::single_gpu(Precision::Bf16)
    };
    let full = m.seq_len as f64 * m.d_model as f64 * 2.0;
    for sp in [false, true] {
        let cfg = OpsConfig {
            sequence_parallel: sp,
            ..OpsConfig::default()
        };
        let s = step_ops(&m, &p, &cfg).unwrap();
        let send = s.stages[0]
            .forward
            .iter()
            .find(|o| o.class == KernelClass::SendRecv)
            .expect("send");
        let bytes = send.comm.as_ref().map(|c| c.bytes_per_rank);
        assert_eq!(bytes, Some(full / 2.0), "sp {sp}");
        let gathers = |v: &[Op]| v.iter().filter(|o| o.name == "pp.recv_gather").count();
        assert_eq!(gathers(&s.stages[1].forward), usize::from(!sp), "sp {sp}");
        assert_eq!(gathers(&s.stages[0].backward), usize::from(!sp), "sp {sp}");
        assert_eq!(
            gathers(&s.stages[0].forward) + gathers(&s.stages[1].backward),
            0
        );
    }
}
