//! Tutel's MoE layer (`moe_impl = "tutel"`) priced on the A100 preset: dearer than Megatron's
//! padded experts on the same plan, and monotone in the micro-batch's tokens and the largest
//! expert count.

use moesim::hardware::{preset, PriceKnobs};
use moesim::workload::step_ops::{
    step_ops, ExpertKernel, KernelClass, Load, MoeImpl, Op, OpsConfig, RoutedBy, StepOps,
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
