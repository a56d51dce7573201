//! Size-dependent compute efficiency (fraction of peak at the current clock) and memory efficiency.

/// Best fraction of tensor peak the first-generation FlashAttention kernels reach, forward +
/// backward: 0.40. FlashAttention-2 paper (Dao 2023, arXiv:2307.08691), abstract: "FlashAttention
/// is still not nearly as fast as optimized matrix-multiply (GEMM) operations, reaching only
/// 25-40% of the theoretical maximum FLOPs/s" (A100); Sec. 4.1: FlashAttention-2 is "around 2x
/// faster than FlashAttention and FlashAttention in xformers (the 'cutlass' implementation)" and
/// reaches up to 73 % of peak. Taken as a fraction of each device's peak (an assumption off the A100).
pub const FLASH1_MAX_EFF: f64 = 0.40;

/// Achieved fraction of peak throughput as a function of kernel size.
///
/// Compute efficiency of a matmul-like kernel with `flops` of work is
/// `max_eff / (1 + (half_flops / flops)^exponent)`: small kernels cannot fill all SMs
/// (wave quantisation, prologue/epilogue), large ones approach `max_eff`. Work [FLOP] is the size
/// measure because, on the H100 data, it orders the measured efficiencies better than output
/// size (m*n) or the smallest dimension.
///
/// A kernel's device time is `kernel_t0_s + flops / (peak * eff(flops))`. With `exponent <= 1`
/// the second term, `flops / max_eff * (1 + (half/flops)^p)`, is non-decreasing in `flops`, so
/// more work never takes less time (an exponent above 1 made a 5.9 GFLOP GEMM slower than a
/// 15 GFLOP one); the preset reader rejects exponents above 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficiencyCurve {
    /// Asymptotic tensor efficiency of a large GEMM [fraction of peak at the running clock].
    pub max_eff: f64,
    /// Work at which efficiency is `max_eff / 2` [FLOP].
    pub half_flops: f64,
    /// Sharpness of the knee, in (0, 1] so that kernel time is monotone in work [dimensionless].
    pub exponent: f64,
    /// Fixed device time of every kernel (prologue, tail wave, epilogue) [s].
    pub kernel_t0_s: f64,
    /// Achieved fraction of HBM bandwidth for streaming (copy-like) kernels.
    pub mem_eff: f64,
    /// Achieved fraction of HBM bandwidth for indexed row moves (permute, gather, scatter-add,
    /// embedding): random rows and atomics run well below streaming.
    pub index_mem_eff: f64,
    /// Lowest efficiency of any kernel, however small [fraction of peak]; tiny matmuls are
    /// launch- or memory-bound long before this matters.
    pub min_eff: f64,
    /// Multiplier on `max_eff` for plain fp32 (SIMT, non-tensor) matmuls.
    pub simt_eff_scale: f64,
    /// Asymptotic efficiency of causal flash attention fwd+bwd [fraction of tensor peak].
    pub attention_max_eff: f64,
    /// Work per (batch x head) at which attention reaches half its asymptote [FLOP]; attention
    /// efficiency is `attention_max_eff / (1 + attention_half_flops / (flops / (batch*heads)))`.
    pub attention_half_flops: f64,
    /// Multiplier on the GEMM efficiency for expert matmuls issued from a per-expert Python loop.
    pub loop_gemm_eff_scale: f64,
}

impl EfficiencyCurve {
    /// Tensor efficiency for a kernel of `flops` work [fraction of peak at the running clock].
    #[inline]
    pub fn compute_eff(&self, flops: f64) -> f64 {
        if flops <= 0.0 || !flops.is_finite() {
            return self.max_eff.max(1e-9);
        }
        let ratio = (self.half_flops / flops).powf(self.exponent);
        (self.max_eff / (1.0 + ratio)).max(self.min_eff).max(1e-9)
    }

    /// Attention fwd+bwd efficiency for `flops_per_head` of work per (batch x head).
    #[inline]
    pub fn attention_eff(&self, flops_per_head: f64) -> f64 {
        if flops_per_head <= 0.0 || !flops_per_head.is_finite() {
            return self.min_eff.max(1e-9);
        }
        (self.attention_max_eff / (1.0 + self.attention_half_flops / flops_per_head))
            .max(self.min_eff)
            .max(1e-9)
    }

    /// Efficiency of first-generation fused attention (flash-attn 1.x, xformers "cutlass",
    /// Triton FlashAttention) for `flops_per_head` of work per (batch x head): the attention
    /// curve's size dependence with its ceiling at [`FLASH1_MAX_EFF`], and never above the
    /// attention curve itself.
    #[inline]
    pub fn attention1_eff(&self, flops_per_head: f64) -> f64 {
        let v2 = self.attention_eff(flops_per_head);
        if flops_per_head <= 0.0 || !flops_per_head.is_finite() {
            return v2;
        }
        let v1 = FLASH1_MAX_EFF / (1.0 + self.attention_half_flops / flops_per_head);
        v1.max(self.min_eff).min(v2).max(1e-9)
    }

    /// The same curve for an accelerator whose peak is `peak_ratio` times this one's: the knee
    /// moves with peak (a faster chip needs proportionally more work to fill) — an assumption.
    pub fn scaled_to_peak(&self, peak_ratio: f64) -> EfficiencyCurve {
        EfficiencyCurve {
            half_flops: self.half_flops * peak_ratio,
            attention_half_flops: self.attention_half_flops * peak_ratio,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> EfficiencyCurve {
        EfficiencyCurve {
            max_eff: 0.9,
            half_flops: 1e10,
            exponent: 0.8,
            kernel_t0_s: 0.0,
            mem_eff: 0.9,
            index_mem_eff: 0.3,
            min_eff: 0.01,
            simt_eff_scale: 1.0,
            attention_max_eff: 0.5,
            attention_half_flops: 1e9,
            loop_gemm_eff_scale: 1.0,
        }
    }

    #[test]
    fn efficiency_rises_with_size_towards_max() {
        let c = curve();
        let small = c.compute_eff(1e9);
        let half = c.compute_eff(1e10);
        let big = c.compute_eff(1e13);
        assert!(small < half && half < big);
        assert!((half - 0.45).abs() < 1e-12);
        assert!(big < 0.9 && big > 0.88);
        assert_eq!(c.compute_eff(1.0), 0.01);
    }

    /// First-generation attention: the same knee under a 40 % ceiling, inside the published
    /// 25-40 % band at training sizes, never faster than the attention curve.
    #[test]
    fn flash1_is_capped_at_forty_percent_and_never_above_the_curve() {
        let c = curve();
        for f in [1e8, 1e9, 1e10, 1e12] {
            let (v1, v2) = (c.attention1_eff(f), c.attention_eff(f));
            assert!(v1 <= v2 && v1 <= FLASH1_MAX_EFF, "{f}: {v1} {v2}");
        }
        assert!((c.attention1_eff(1e9) - 0.20).abs() < 1e-12);
        assert!(c.attention1_eff(1e12) > 0.39);
        let low = EfficiencyCurve {
            attention_max_eff: 0.3,
            ..curve()
        };
        assert_eq!(low.attention1_eff(1e12), low.attention_eff(1e12));
    }

    #[test]
    fn scaling_moves_the_knee() {
        let c = curve().scaled_to_peak(2.0);
        assert!((c.compute_eff(2e10) - 0.45).abs() < 1e-12);
    }
}
