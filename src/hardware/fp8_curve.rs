//! FP8 GEMM efficiency: the size curve at the FP8 peak plus an un-overlapped bf16 output epilogue, fitted on measured Hopper FP8 GEMMs.
//!
//! An FP8 GEMM halves the main loop's time against bf16 (twice the tensor peak) but still writes
//! its output in bf16 (Transformer Engine and DeepSeek's recipe both do), so the epilogue that a
//! bf16 GEMM hides behind its longer main loop becomes a visible share of an FP8 one. Measured
//! on Hopper: DeepGEMM's normal-GEMM table on an H800 (same 132 SMs, clocks and 700 W as the
//! H100 SXM) has a 4096 x 7168 x 2048 GEMM at 1025 TFLOP/s and a 4096 x 7168 x 16384 one at
//! 1358 (same output, 8x the work), which a FLOP-only curve cannot give (it prices both within
//! 8 % of each other) but a fixed time per output element can. The model here:
//!
//! `1 / eff_fp8 = 1 / eff(flops) + peak_fp8 * t_out * m n / flops`, with `eff` the device's GEMM
//! size curve (`EfficiencyCurve::compute_eff`, the bf16-measured shape, as before) and
//! `t_out = 2 B / (bw * FP8_EPILOGUE_BW_FRACTION)` the time to write one bf16 output element.
//! The one fitted constant, [`FP8_EPILOGUE_BW_FRACTION`], comes from [`DEEPGEMM_H800`] through
//! the H100 preset's roofline and power model (the measured rates are power-limited at 700 W);
//! `tests::epilogue_fraction_is_what_the_deepgemm_table_fits` re-fits it.

use super::EfficiencyCurve;

/// DeepGEMM's normal (dense) FP8 GEMMs on an H800 SXM: `(m, n, k, TFLOP/s)`, the six M = 4096
/// rows (the compute-bound ones; the M = 64/128 rows are decoding shapes bound by HBM).
/// Source: github.com/deepseek-ai/DeepGEMM README.md at its initial commit a6d97a1
/// (2025-02-25), "Normal GEMMs for dense models" (H800, NVCC 12.8; FP8 E4M3 inputs with 1x128 /
/// 128x128 scaling, bf16 output). DeepGEMM promotes the FP8 accumulation on CUDA cores every 128
/// K-elements, work that cuBLAS's per-tensor-scaled FP8 GEMM (Transformer Engine's) does not
/// do, so for a per-tensor GEMM these rates are a lower bound (the promotion is a share of the
/// main loop, proportional to work; the fitted epilogue term is per output element).
pub const DEEPGEMM_H800: [(f64, f64, f64, f64); 6] = [
    (4096.0, 2112.0, 7168.0, 1058.0),
    (4096.0, 24576.0, 1536.0, 990.0),
    (4096.0, 32768.0, 512.0, 590.0),
    (4096.0, 7168.0, 16384.0, 1358.0),
    (4096.0, 4096.0, 7168.0, 1304.0),
    (4096.0, 7168.0, 2048.0, 1025.0),
];

/// Effective HBM bandwidth of an FP8 GEMM's bf16 output epilogue, not overlapped with the main
/// loop, as a fraction of the device's HBM bandwidth: 0.537 (one bf16 element per 1.11 ps on an
/// H100's 3.35 TB/s, i.e. 1.80 TB/s). Fitted (least squares in log rate) to [`DEEPGEMM_H800`]
/// through the H100 preset's size curve, roofline and power model; residuals -8 to +10 % over
/// the six rows (the +10 % row, n = 2112, ends in a partial wave of 128-wide tiles, which the
/// model does not resolve). Other devices: the same fraction of their own HBM bandwidth (an
/// assumption: the epilogue streams the output through HBM).
pub const FP8_EPILOGUE_BW_FRACTION: f64 = 0.537;

/// Bytes of one output element of an FP8 GEMM: bf16 (TE `Linear` and DeepSeek-V3's recipe,
/// report Sec. 3.3, write GEMM outputs in bf16).
pub const FP8_OUTPUT_BYTES: f64 = 2.0;

/// Compute efficiency [fraction of the FP8 peak at the running clock] and SM fill [fraction] of
/// an FP8 GEMM of `flops` [FLOP] writing `out_elems` output elements, on a device with the size
/// curve `curve`, FP8 peak `peak_fp8` [FLOP/s] and HBM bandwidth `hbm_bw` [B/s]; `scale`
/// multiplies the size curve (loop-issued expert GEMMs). The fill (SM occupancy, for the
/// SM-activity power term) is the size curve's, as for any GEMM: the epilogue runs on the same
/// SMs. Non-increasing in `out_elems`; allocation-free.
pub fn fp8_gemm_eff(
    curve: &EfficiencyCurve,
    flops: f64,
    out_elems: f64,
    scale: f64,
    peak_fp8: f64,
    hbm_bw: f64,
) -> (f64, f64) {
    let size = curve.compute_eff(flops);
    let main = (size * scale).max(1e-9);
    let fill = if curve.max_eff > 0.0 {
        (size / curve.max_eff).clamp(0.0, 1.0)
    } else {
        1.0
    };
    // NaN and non-positive sizes take the size curve alone.
    let positive = |x: f64| x > 0.0;
    if ![flops, out_elems, hbm_bw, peak_fp8]
        .into_iter()
        .all(positive)
    {
        return (main, fill);
    }
    let t_out = FP8_OUTPUT_BYTES / (hbm_bw * FP8_EPILOGUE_BW_FRACTION);
    let eff = 1.0 / (1.0 / main + peak_fp8 * t_out * out_elems / flops);
    (eff, fill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{preset, Accelerator, Precision};

    /// Rate [FLOP/s] the H100 preset gives an FP8 GEMM `m x n x k` at 700 W with epilogue
    /// fraction `frac` (inputs 1 B, output bf16), through the real roofline and power model.
    fn rate(a: &Accelerator, m: f64, n: f64, k: f64, frac: f64) -> f64 {
        let flops = 2.0 * m * n * k;
        let bytes = m * k + k * n + FP8_OUTPUT_BYTES * m * n;
        let peak = a.peak_flops.fp8.expect("fp8 peak");
        let bw = a.hbm_bw_bytes_per_s;
        // The same formula as `fp8_gemm_eff`, with the fraction as a parameter.
        let size = a.efficiency.compute_eff(flops);
        let t_out = FP8_OUTPUT_BYTES / (bw * frac);
        let eff = 1.0 / (1.0 / size + peak * t_out * m * n / flops);
        let fill = size / a.efficiency.max_eff;
        let c = a.kernel_filled(flops, bytes, eff, fill, Precision::Fp8, 700.0);
        flops / c.time_s
    }

    fn log_sq_error(a: &Accelerator, frac: f64) -> f64 {
        DEEPGEMM_H800
            .iter()
            .map(|&(m, n, k, t)| (rate(a, m, n, k, frac) / (t * 1e12)).ln().powi(2))
            .sum()
    }

    // The committed constant is the least-squares fit of the source table (within 1 %).
    #[test]
    fn epilogue_fraction_is_what_the_deepgemm_table_fits() {
        let a = preset("h100").expect("h100");
        let best = (100..=1500)
            .map(|i| i as f64 * 1e-3)
            .min_by(|x, y| log_sq_error(&a, *x).total_cmp(&log_sq_error(&a, *y)))
            .expect("grid");
        assert!(
            (best / FP8_EPILOGUE_BW_FRACTION - 1.0).abs() < 0.01,
            "fit {best} vs {FP8_EPILOGUE_BW_FRACTION}"
        );
    }

    // The curve against its source points: every row within -9 / +11 %, the rms under 7 %; the
    // FLOP-only curve it replaces (no epilogue) is off by up to +96 % (k = 512) and +21 % (k = 2048).
    #[test]
    fn curve_reproduces_the_deepgemm_rows() {
        let a = preset("h100").expect("h100");
        let mut sq = 0.0;
        for &(m, n, k, t) in &DEEPGEMM_H800 {
            let r = rate(&a, m, n, k, FP8_EPILOGUE_BW_FRACTION) / 1e12;
            let err = r / t - 1.0;
            assert!((-0.09..=0.11).contains(&err), "{m}x{n}x{k}: {r:.0} vs {t}");
            sq += (r / t).ln().powi(2);
        }
        assert!((sq / 6.0).sqrt() < 0.07, "rms {}", (sq / 6.0).sqrt());
        let flop_only = rate(&a, 4096.0, 7168.0, 2048.0, 1e12) / 1e12;
        assert!(flop_only / 1025.0 > 1.15, "{flop_only}");
    }

    // Kernel time is monotone in work for FP8 GEMMs: more rows (work and output together), or a
    // longer reduction (work alone), never takes less time.
    #[test]
    fn fp8_gemm_time_is_monotone_in_work() {
        let a = preset("h100").expect("h100");
        let peak = a.peak_flops.fp8.expect("fp8");
        let time = |m: f64, n: f64, k: f64| {
            let flops = 2.0 * m * n * k;
            let (eff, fill) =
                fp8_gemm_eff(&a.efficiency, flops, m * n, 1.0, peak, a.hbm_bw_bytes_per_s);
            let bytes = m * k + k * n + 2.0 * m * n;
            a.kernel_filled(flops, bytes, eff, fill, Precision::Fp8, 0.0)
                .time_s
        };
        let mut last = 0.0;
        for i in 0..60 {
            let m = 16.0 * 1.25_f64.powi(i);
            let t = time(m, 4096.0, 4096.0);
            assert!(t >= last, "m {m}: {t} < {last}");
            last = t;
        }
        let mut last = 0.0;
        for i in 0..60 {
            let k = 16.0 * 1.25_f64.powi(i);
            let t = time(2048.0, 12288.0, k);
            assert!(t >= last, "k {k}: {t} < {last}");
            last = t;
        }
    }

    // The epilogue only ever slows a GEMM, and weighs less as the reduction grows.
    #[test]
    fn epilogue_share_falls_with_the_reduction_length() {
        let a = preset("h100").expect("h100");
        let peak = a.peak_flops.fp8.expect("fp8");
        let share = |k: f64| {
            let flops = 2.0 * 4096.0 * 7168.0 * k;
            let (eff, _) = fp8_gemm_eff(&a.efficiency, flops, 4096.0 * 7168.0, 1.0, peak, 3.35e12);
            1.0 - eff / a.efficiency.compute_eff(flops)
        };
        assert!(share(512.0) > share(2048.0) && share(2048.0) > share(16384.0));
        assert!(share(16384.0) > 0.0 && share(512.0) < 1.0);
    }
}
