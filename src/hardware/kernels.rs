//! MoE expert kernels on one accelerator: SwiGLU experts (loop / grouped / padded), as the
//! measured `moe_layer.csv` runs them (calibration and validation).

use super::{Accelerator, KernelCost, Precision};

/// How the expert matmuls are issued: the operation list's enum (one type for the scenario, the
/// op list and this measured-layer pricing).
pub use crate::workload::step_ops::ExpertKernel;

/// Matmuls per SwiGLU expert forward + backward: 3 forward (gate, up, down), 2 each backward.
const EXPERT_MATMULS_FWD_BWD: f64 = 9.0;
/// Elementwise SwiGLU launches per expert fwd+bwd (silu, mul; backward of both), assumed from
/// the eager PyTorch graph of `down(silu(gate(x)) * up(x))`.
const SWIGLU_ELEMENTWISE_LAUNCHES: f64 = 6.0;
/// Bytes moved by the SwiGLU elementwise ops per hidden activation element, in elements:
/// forward reads 2 writes 1, backward reads 3 writes 2.
const SWIGLU_ELEMENTWISE_ELEMS: f64 = 8.0;
/// SwiGLU experts (3 matmuls each) forward + backward on ONE accelerator for the per-expert
/// token counts `counts`, width `hidden`, expert width `ffn`. With `capacity = Some(c)` each
/// expert keeps at most `c` tokens (overflow dropped); `Padded` computes `c` slots per expert
/// (or the largest count when `capacity` is `None`). Allocation-free.
#[allow(clippy::too_many_arguments)]
pub fn experts_fwd_bwd(
    acc: &Accelerator,
    counts: &[u32],
    hidden: f64,
    ffn: f64,
    kernel: ExpertKernel,
    capacity: Option<u32>,
    prec: Precision,
    power_limit_w: f64,
) -> KernelCost {
    let bpe = prec.bytes_per_element();
    let cap = capacity.unwrap_or(u32::MAX);
    let kept = |c: u32| f64::from(c.min(cap));
    let experts = counts.len() as f64;
    let mut total = KernelCost::default();
    match kernel {
        ExpertKernel::Loop => {
            let scale = acc.efficiency.loop_gemm_eff_scale;
            for &c in counts {
                let c = kept(c);
                if c <= 0.0 {
                    continue;
                }
                let flops = 2.0 * c * hidden * ffn;
                let bytes = (c * hidden + hidden * ffn + c * ffn) * bpe;
                let mm = acc.kernel_scaled(flops, bytes, flops, scale, prec, power_limit_w);
                total = total.then(mm.times(EXPERT_MATMULS_FWD_BWD));
                total = total.then(swiglu_elementwise(acc, c * ffn, bpe, power_limit_w));
            }
            // One host synchronisation per layer (the host reads the per-expert counts before
            // it issues the loop), priced as every host sync is.
            total = total.then(acc.host_syncs(1));
        }
        ExpertKernel::Grouped => {
            let tokens: f64 = counts.iter().map(|&c| kept(c)).sum();
            if tokens > 0.0 {
                let flops = 2.0 * tokens * hidden * ffn;
                let bytes = (tokens * hidden + experts * hidden * ffn + tokens * ffn) * bpe;
                let mm = acc.kernel_scaled(flops, bytes, flops, 1.0, prec, power_limit_w);
                total = total.then(mm.times(EXPERT_MATMULS_FWD_BWD));
                total = total.then(swiglu_elementwise(acc, tokens * ffn, bpe, power_limit_w));
            }
        }
        ExpertKernel::Padded => {
            let slots_per_expert = match capacity {
                Some(c) => f64::from(c),
                None => f64::from(counts.iter().copied().max().unwrap_or(0)),
            };
            let slots = experts * slots_per_expert;
            if slots > 0.0 {
                let flops = 2.0 * slots * hidden * ffn;
                let bytes = (slots * hidden + experts * hidden * ffn + slots * ffn) * bpe;
                let mm = acc.kernel_scaled(flops, bytes, flops, 1.0, prec, power_limit_w);
                total = total.then(mm.times(EXPERT_MATMULS_FWD_BWD));
                total = total.then(swiglu_elementwise(acc, slots * ffn, bpe, power_limit_w));
                // Zero-filled padded buffers for the dispatched tokens and their gradient.
                let fill = acc.memory_op(slots * hidden * bpe, power_limit_w);
                total = total.then(fill.times(2.0));
            }
        }
    }
    total
}

/// SwiGLU elementwise work on `elems` hidden activations (fwd+bwd), split over its launches.
#[inline]
fn swiglu_elementwise(acc: &Accelerator, elems: f64, bpe: f64, power_limit_w: f64) -> KernelCost {
    let bytes = SWIGLU_ELEMENTWISE_ELEMS * elems * bpe / SWIGLU_ELEMENTWISE_LAUNCHES;
    acc.memory_op(bytes, power_limit_w)
        .times(SWIGLU_ELEMENTWISE_LAUNCHES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::preset;

    fn h100() -> Accelerator {
        preset("h100").expect("h100 preset")
    }

    #[test]
    fn grouped_is_faster_than_loop_for_equal_counts() {
        let a = h100();
        let counts = [2048u32; 8];
        let lp = experts_fwd_bwd(
            &a,
            &counts,
            4096.0,
            14336.0,
            ExpertKernel::Loop,
            None,
            Precision::Bf16,
            0.0,
        );
        let gr = experts_fwd_bwd(
            &a,
            &counts,
            4096.0,
            14336.0,
            ExpertKernel::Grouped,
            None,
            Precision::Bf16,
            0.0,
        );
        assert!(gr.time_s < lp.time_s);
    }

    #[test]
    fn padded_cost_follows_capacity_not_skew() {
        let a = h100();
        let even = [2048u32; 8];
        let skew = [6000u32, 4000, 2000, 1000, 800, 400, 200, 16];
        let cap = Some(2560);
        let e = experts_fwd_bwd(
            &a,
            &even,
            4096.0,
            14336.0,
            ExpertKernel::Padded,
            cap,
            Precision::Bf16,
            0.0,
        );
        let s = experts_fwd_bwd(
            &a,
            &skew,
            4096.0,
            14336.0,
            ExpertKernel::Padded,
            cap,
            Precision::Bf16,
            0.0,
        );
        assert!((e.time_s - s.time_s).abs() < 1e-12);
        let unpadded = experts_fwd_bwd(
            &a,
            &skew,
            4096.0,
            14336.0,
            ExpertKernel::Padded,
            None,
            Precision::Bf16,
            0.0,
        );
        assert!(unpadded.time_s > s.time_s);
    }

    #[test]
    fn capacity_drops_work_in_grouped_mode() {
        let a = h100();
        let skew = [6000u32, 4000, 2000, 1000, 800, 400, 200, 16];
        let full = experts_fwd_bwd(
            &a,
            &skew,
            4096.0,
            14336.0,
            ExpertKernel::Grouped,
            None,
            Precision::Bf16,
            0.0,
        );
        let capped = experts_fwd_bwd(
            &a,
            &skew,
            4096.0,
            14336.0,
            ExpertKernel::Grouped,
            Some(2000),
            Precision::Bf16,
            0.0,
        );
        assert!(capped.time_s < full.time_s);
    }

    #[test]
    fn empty_experts_cost_only_the_sync() {
        let a = h100();
        let c = experts_fwd_bwd(
            &a,
            &[0, 0, 0],
            4096.0,
            14336.0,
            ExpertKernel::Loop,
            None,
            Precision::Bf16,
            0.0,
        );
        assert!((c.time_s - a.launch_overhead_s).abs() < 1e-15);
    }
}
