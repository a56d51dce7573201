//! One pricing of each compute op of the step's operation list: time, energy and mean power on
//! its accelerator, from the calibrated roofline, efficiency curves and power model.
//!
//! Communication ops are priced by `network::price_comm`; the step model (fast path and event
//! level) only adds and schedules these prices.

use super::fp8_curve::fp8_gemm_eff;
use super::{Accelerator, KernelCost, Precision};
use crate::workload::step_ops::{
    gemm_runs_in_fp8, step_ops, ExpertKernel, KernelClass, Load, Op, OpsConfig, RoutedBy,
    RouterKernel,
};
use crate::workload::{Arch, FfnKind, ModelSpec, MoeSpec, ParallelPlan};

/// What a price depends on besides the op: the strategy's power limit and the compute precision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriceKnobs {
    /// GPU power limit [W] (<= 0 or NaN = TDP).
    pub power_limit_w: f64,
    /// Precision of the step's matmuls.
    pub precision: Precision,
}

/// Time, energy and mean power of one op on one device.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PricedOp {
    /// Wall time of the op's launches (host floor, device time, host syncs) [s].
    pub time_s: f64,
    /// Energy of the one device over `time_s`, idle power included [J].
    pub energy_j: f64,
    /// Mean power over `time_s` [W].
    pub power_w: f64,
}

impl PricedOp {
    fn from_cost(c: KernelCost) -> PricedOp {
        PricedOp {
            time_s: c.time_s,
            energy_j: c.energy_j,
            power_w: c.mean_power_w(),
        }
    }

    /// As a [`KernelCost`] (clock factor not tracked: 1).
    pub fn as_cost(self) -> KernelCost {
        KernelCost {
            time_s: self.time_s,
            energy_j: self.energy_j,
            clock_factor: 1.0,
        }
    }

    /// `self` followed by `other` on the same device.
    pub fn then(self, other: PricedOp) -> PricedOp {
        let time_s = self.time_s + other.time_s;
        let energy_j = self.energy_j + other.energy_j;
        PricedOp {
            time_s,
            energy_j,
            power_w: if time_s > 0.0 { energy_j / time_s } else { 0.0 },
        }
    }
}

impl Accelerator {
    /// Price a compute op (a communication op prices as zero here; see `network::price_comm`).
    ///
    /// The op's work is split evenly over its `launches`; each launch takes
    /// `max(launch floor, t0 + work / rate)` (see [`Accelerator::kernel_at_eff`]). GEMMs use the
    /// size curve on one launch's FLOPs (loop-issued expert GEMMs scaled by
    /// `loop_gemm_eff_scale`), FlashAttention the attention curve on the work per
    /// (sequence x head), indexed row moves (permute, gather, scatter, embedding) run at
    /// `index_mem_eff` of HBM bandwidth, everything else streams at `mem_eff`. Each host sync
    /// adds one launch floor during which the drained GPU waits at `spin_w`. Allocation-free.
    ///
    /// There is no separate gap between kernels: the device-side gap of back-to-back launches
    /// is 1-2 us (NVIDIA, "Getting Started with CUDA Graphs", 2019: 0.9 us on a V100 stream;
    /// Hazy Research 2025: ~1.3 us on an H100) and is already inside the calibrated per-call
    /// times, which `../shared/data/h100/micro.csv` measures back to back (its GEMM series has a
    /// 14-17 us intercept per call, an upper bound). The host's eager dispatch is the launch
    /// floor above. See /work/notes/hardware_constants.md Sec. 6d'.
    pub fn price(&self, op: &Op, k: &PriceKnobs) -> PricedOp {
        if op.class.is_comm() {
            return PricedOp::default();
        }
        let n = op.launches.max(1) as f64;
        let (flops, bytes) = (op.flops / n, op.bytes / n);
        let (pl, prec) = (k.power_limit_w, op_precision(op, k.precision));
        let one = match op.class {
            KernelClass::Gemm | KernelClass::GroupedGemm => {
                let scale = match op.load {
                    Load::Routed {
                        by: RoutedBy::LocalExpert(_),
                        ..
                    } => self.efficiency.loop_gemm_eff_scale,
                    _ => 1.0,
                };
                match op.gemm {
                    Some(g) if self.peak_flops.effective(prec) == Precision::Fp8 => {
                        let (eff, fill) = fp8_gemm_eff(
                            &self.efficiency,
                            flops,
                            g.m * g.n / n,
                            scale,
                            self.peak_flops_for(Precision::Fp8),
                            self.hbm_bw_bytes_per_s,
                        );
                        self.kernel_filled(flops, bytes, eff, fill, prec, pl)
                    }
                    _ => self.kernel_scaled(flops, bytes, flops, scale, prec, pl),
                }
            }
            KernelClass::FlashAttention | KernelClass::FlashAttention1 => {
                // The op's GEMM shape counts (sequence x head) instances in `groups`.
                let inst = op.gemm.map_or(1.0, |g| g.groups.max(1) as f64);
                let eff = if op.class == KernelClass::FlashAttention1 {
                    self.efficiency.attention1_eff(flops / inst)
                } else {
                    self.efficiency.attention_eff(flops / inst)
                };
                self.kernel_at_eff(flops, bytes, eff, prec, pl)
            }
            KernelClass::Permute
            | KernelClass::Gather
            | KernelClass::Scatter
            | KernelClass::Embedding => {
                let r = self.efficiency.index_mem_eff / self.efficiency.mem_eff;
                self.memory_op(bytes / r.max(1e-6), pl)
            }
            _ => {
                if flops > 0.0 && bytes <= 0.0 {
                    self.kernel(flops, 0.0, Precision::Fp32, pl)
                } else {
                    self.memory_op(bytes, pl)
                }
            }
        };
        let mut c = one.times(n);
        if op.host_syncs > 0 {
            c = c.then(self.host_syncs(op.host_syncs));
        }
        PricedOp::from_cost(c)
    }

    /// `n` host synchronisations (the host reads a device value and only then issues the next
    /// launch): a launch overhead each, the drained GPU waiting on the host with its clock held
    /// high, so at spin power, not idle ([`Accelerator::spin_w`]). The one rule for every host
    /// sync: an op's `host_syncs` and the loop-issued experts' per-layer sync (`kernels`).
    pub(crate) fn host_syncs(&self, n: u32) -> KernelCost {
        let t = f64::from(n) * self.launch_overhead_s;
        KernelCost {
            time_s: t,
            energy_j: t * self.spin_w(),
            clock_factor: 1.0,
        }
    }
}

/// Precision `op` computes in when the step runs at `step`: under FP8 only the GEMMs an FP8
/// recipe quantises ([`gemm_runs_in_fp8`]: linear layers, not the LM head, the MoE gate or the
/// attention core) use the FP8 peak and the FP8 GEMM curve (`fp8_curve`); everything else runs
/// in bf16, the activation precision of Transformer Engine in the MLPerf rounds and of
/// DeepSeek-V3's recipe. Until 2026-12-02 every op of an FP8 step, flash attention included,
/// was priced at the FP8 peak.
pub fn op_precision(op: &Op, step: Precision) -> Precision {
    if step == Precision::Fp8 && !gemm_runs_in_fp8(op) {
        Precision::Bf16
    } else {
        step
    }
}

/// Names of the router's ops in the operation list (gate GEMM, score, top-k, normalisation,
/// routing map, aux loss) and of the token permutation around the experts.
pub const ROUTER_OPS: [&str; 8] = [
    "moe.router",
    "moe.score",
    "moe.topk",
    "moe.topk_norm",
    "moe.route_map",
    "moe.aux_loss",
    "moe.permute",
    "moe.unpermute",
];

/// Whether `op` is part of the router / permutation (what the measured `routing_only` row holds).
pub fn is_router_op(op: &Op) -> bool {
    ROUTER_OPS.contains(&op.name)
}

/// A one-layer MoE model of the measured `moe_layer.csv` shape: `tokens` tokens of width
/// `hidden` routed top-`top_k` over `experts` SwiGLU experts of width `ffn`, on one GPU.
fn moe_layer_shape(
    tokens: f64,
    hidden: f64,
    ffn: f64,
    experts: f64,
    top_k: f64,
) -> (ModelSpec, ParallelPlan) {
    let d = hidden.max(1.0) as u32;
    let model = ModelSpec {
        name: "moe-layer".into(),
        layers: 1,
        d_model: d,
        // Heads do not enter the router or expert ops; any divisor of d will do.
        heads: 1,
        kv_heads: 1,
        seq_len: tokens.max(1.0) as u32,
        vocab: 1,
        ffn_hidden: ffn.max(1.0) as u32,
        ffn: FfnKind::Moe(MoeSpec {
            experts: experts.max(1.0) as u32,
            top_k: top_k.max(1.0) as u32,
            capacity_factor: None,
            expert_ffn_hidden: ffn.max(1.0) as u32,
            shared_experts: 0,
            moe_every: 1,
        }),
        arch: Arch::default(),
    };
    (
        model,
        ParallelPlan::single_gpu(crate::workload::Precision::Bf16),
    )
}

/// Router and token permutation of one MoE layer of the measured shape (see
/// `moe_layer.csv`), forward + backward, priced from the operation list with `router` kernels.
pub fn moe_layer_router_price(
    acc: &Accelerator,
    tokens: f64,
    hidden: f64,
    experts: f64,
    top_k: f64,
    router: RouterKernel,
    k: &PriceKnobs,
) -> PricedOp {
    let (model, plan) = moe_layer_shape(tokens, hidden, hidden, experts, top_k);
    let cfg = OpsConfig {
        router_kernel: router,
        expert_kernel: ExpertKernel::Loop,
        ..OpsConfig::default()
    };
    match step_ops(&model, &plan, &cfg) {
        Ok(s) => s
            .stages
            .iter()
            .flat_map(|st| st.micro_batch())
            .filter(|o| is_router_op(o))
            .fold(PricedOp::default(), |a, o| a.then(acc.price(o, k))),
        Err(_) => PricedOp::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{experts_fwd_bwd, preset, ExpertKernel as Issue};

    fn knobs() -> PriceKnobs {
        PriceKnobs {
            power_limit_w: 0.0,
            precision: Precision::Bf16,
        }
    }

    fn router(acc: &Accelerator, tokens: f64, top_k: f64, kind: RouterKernel) -> PricedOp {
        moe_layer_router_price(acc, tokens, 4096.0, 8.0, top_k, kind, &knobs())
    }

    // Issue 11: the old model charged 126 launch-bound kernels (~2.7 ms) per MoE layer whatever
    // the size; ../shared/data/h100/moe_layer.csv has routing_only at 5.2 % of the dropless and
    // 7.8 % of the capacity-1.25 layer (8192 tokens, h 4096, ffn 14336, 8 experts, top-2).
    #[test]
    fn priced_router_share_of_the_measured_moe_layer_is_five_to_eight_percent() {
        let a = preset("h100").expect("h100");
        let r = router(&a, 8192.0, 2.0, RouterKernel::Eager).time_s;
        let counts = [2048u32; 8];
        let run = |issue, cap| {
            experts_fwd_bwd(
                &a,
                &counts,
                4096.0,
                14336.0,
                issue,
                cap,
                Precision::Bf16,
                0.0,
            )
            .time_s
        };
        let dropless = r / (r + run(Issue::Loop, None));
        let capacity = r / (r + run(Issue::Padded, Some(2560)));
        assert!(
            (0.05..=0.08).contains(&dropless),
            "dropless share {dropless}"
        );
        assert!(
            (0.05..=0.09).contains(&capacity),
            "capacity share {capacity}"
        );
    }

    // The router follows the work: more tokens or a larger top-k cost more, and fused kernels
    // (fewer launches) cost less than eager ones.
    #[test]
    fn router_price_grows_with_tokens_and_top_k_and_fusion_saves() {
        let a = preset("h100").expect("h100");
        let small = router(&a, 1024.0, 2.0, RouterKernel::Eager);
        let big = router(&a, 8192.0, 2.0, RouterKernel::Eager);
        let k1 = router(&a, 8192.0, 1.0, RouterKernel::Eager);
        let fused = router(&a, 8192.0, 2.0, RouterKernel::Fused);
        assert!(big.time_s > 2.0 * small.time_s, "{small:?} {big:?}");
        assert!(big.time_s > k1.time_s && big.energy_j > k1.energy_j);
        assert!(fused.time_s < big.time_s);
        assert!(big.power_w > a.idle_w && big.power_w <= a.tdp_w);
    }

    // The unfused core of a Megatron GPT 1.7B layer (Narayanan et al. 2021, Table 1: h 2304,
    // 24 heads, s 2048, micro-batch 1) is HBM-bound: it moves the 24 x 2048^2 score matrix
    // several times, so on an A100 it takes longer than the flash kernel of the same layer and
    // at least its bytes over the A100's HBM bandwidth.
    #[test]
    fn unfused_attention_core_is_memory_bound_and_slower_than_flash() {
        use crate::workload::step_ops::AttentionKernel;
        let a = preset("a100").expect("a100");
        let model = ModelSpec {
            name: "gpt-1.7b".into(),
            layers: 1,
            d_model: 2304,
            heads: 24,
            kv_heads: 24,
            seq_len: 2048,
            vocab: 51200,
            ffn_hidden: 9216,
            ffn: FfnKind::Dense,
            arch: Arch::default(),
        };
        let (_, plan) = moe_layer_shape(1.0, 1.0, 1.0, 1.0, 1.0);
        let core = |kernel| {
            let cfg = OpsConfig {
                attention_kernel: kernel,
                ..OpsConfig::default()
            };
            let s = step_ops(&model, &plan, &cfg).expect("ops");
            let ops: Vec<Op> = s.stages[0]
                .micro_batch()
                .filter(|o| o.name.starts_with("attn.core.") || o.name == "attn.flash")
                .cloned()
                .collect();
            let t: f64 = ops.iter().map(|o| a.price(o, &knobs()).time_s).sum();
            let bytes: f64 = ops.iter().map(|o| o.bytes).sum();
            (t, bytes)
        };
        let (t_flash, _) = core(AttentionKernel::Flash);
        let (t_unfused, bytes) = core(AttentionKernel::Unfused);
        assert!(t_unfused > 2.0 * t_flash, "{t_unfused} vs {t_flash}");
        // First-generation flash attention: slower than the FlashAttention-2-class curve, at
        // most 40 % of peak (FLASH1_MAX_EFF), so at least its FLOPs over 0.4 x peak.
        let (t_flash1, _) = core(AttentionKernel::Flash1);
        let peak = a.peak_flops.bf16.expect("bf16 peak");
        let fa_flops: f64 = step_ops(&model, &plan, &OpsConfig::default())
            .expect("ops")
            .stages[0]
            .micro_batch()
            .filter(|o| o.name == "attn.flash")
            .map(|o| o.flops)
            .sum();
        assert!(t_flash1 > t_flash, "{t_flash1} vs {t_flash}");
        assert!(
            t_flash1 >= fa_flops / (super::super::efficiency::FLASH1_MAX_EFF * peak),
            "{t_flash1}"
        );
        assert!(
            t_unfused >= bytes / a.hbm_bw_bytes_per_s,
            "{t_unfused} {bytes}"
        );
    }

    // Under FP8 only the linear layers' GEMMs run in FP8 (at the FP8 curve of `fp8_curve`):
    // flash attention, the LM head and the MoE gate price exactly as at bf16; a linear layer's
    // GEMM runs faster than at bf16 but slower than the FLOP-only curve at the FP8 peak (its
    // bf16 output epilogue), and on a device without FP8 (A100) it is the bf16 price.
    #[test]
    fn fp8_steps_run_only_linear_gemms_in_fp8() {
        use crate::workload::step_ops::GemmShape;
        let a = preset("h100").expect("h100");
        let at = |p| PriceKnobs {
            power_limit_w: 0.0,
            precision: p,
        };
        let (fp8, bf16) = (at(Precision::Fp8), at(Precision::Bf16));
        let (m, n, k) = (2048.0, 12288.0, 12288.0);
        let linear = Op::gemm("ffn.fc1", m, n, k, 1.0);
        let head = Op::gemm("head.logits", m, n, k, 2.0);
        let router = Op::gemm("moe.router", m, 64.0, k, 2.0);
        let mut flash = Op::compute("attn.flash", KernelClass::FlashAttention, 9e10, 1e8);
        flash.gemm = Some(GemmShape {
            m: 2048.0,
            n: 2048.0,
            k: 128.0,
            groups: 24,
        });
        for op in [&head, &router, &flash] {
            assert_eq!(a.price(op, &fp8), a.price(op, &bf16), "{}", op.name);
            assert_eq!(op_precision(op, Precision::Fp8), Precision::Bf16);
        }
        assert_eq!(op_precision(&linear, Precision::Fp8), Precision::Fp8);
        let t8 = a.price(&linear, &fp8).time_s;
        let t16 = a.price(&linear, &bf16).time_s;
        let flop_only = a
            .kernel(linear.flops, linear.bytes, Precision::Fp8, 0.0)
            .time_s;
        assert!(
            t8 < 0.65 * t16 && t8 > flop_only * 1.02,
            "{t8} {t16} {flop_only}"
        );
        let a100 = preset("a100").expect("a100");
        assert_eq!(a100.price(&linear, &fp8), a100.price(&linear, &bf16));
    }

    #[test]
    fn communication_ops_price_as_zero_here() {
        let a = preset("h100").expect("h100");
        let op = Op::comm(
            "x",
            KernelClass::AllReduce,
            crate::workload::step_ops::GroupKind::Dp,
            8,
            1e9,
        );
        assert_eq!(a.price(&op, &knobs()), PricedOp::default());
    }
}
