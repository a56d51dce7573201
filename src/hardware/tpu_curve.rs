//! TPU matmul and streaming efficiency, from measured per-operation TPU profiles (ParaDnn, TPU v2).
//!
//! Source: Wang, Wei and Brooks, "Benchmarking TPU, GPU, and CPU Platforms for Deep Learning"
//! (ParaDnn, arXiv:1907.10701, 2019), whose repository ships the Cloud TPU profiler's per-op-category
//! output for its fully connected models: github.com/Emma926/paradnn, file
//! `scripts/data/fc_trace_10sec_opbreakdown.json` (commit 60a25ff; the data behind the paper's
//! TPU roofline figures, plotted in `scripts/plotting/Demo.ipynb` against a 180 TFLOP/s,
//! 2400 GB/s board, i.e. a TPU v2-8: 4 chips, 8 cores). Each model is `layers` dense layers of
//! `node x node` in bfloat16 (`paradnn/run/fc_tpu_trace.sh`), global batch `bs` split over the
//! 8 cores, so a hidden layer's forward matmul on one core is `[bs/8, node] x [node, node]`,
//! `2 (bs/8) node^2` FLOP. XLA fuses each matmul with its elementwise consumers into an
//! "output fusion"; the profiler reports that category's FLOPS utilisation (fraction of peak),
//! its measured operational intensity and its HBM bandwidth utilisation.
//!
//! What is taken from it (derived here, see the tests):
//! - the matmul efficiency curve `max_eff / (1 + (half / work)^p)` fitted (least squares on
//!   the utilisation) to the 14 compute-bound shapes below: max 0.9815, exponent 0.65, half
//!   0.0933 GFLOP on a v2 core (4.1 us of work at its peak). Shapes with measured intensity under
//!   150 FLOP/byte (twice the v2 core's 75 FLOP/byte ridge, 22.5 TFLOP/s over 300 GB/s) are left
//!   out: they follow the HBM roofline (their weights stream in fp32, 16 FLOP/byte at 32 rows a
//!   core), which moesim charges separately through bytes and `mem_eff`;
//! - the streaming efficiency: XLA loop fusions (the vector unit's element-wise kernels) run at a
//!   median 85.0 % of HBM bandwidth (162 profiles where they take >= 5 % of the step; the
//!   optimizer's non-fused element-wise ops at 81.9 %).
//!
//! Transfer to TPU v3 / v4 (assumptions, stated): every TPU generation so far multiplies on
//! 128 x 128 systolic MXUs (v2: 1 per TensorCore at 700 MHz; v3: 2 per core at 940 MHz; v4: 4 per
//! core at 1050 MHz; Cloud TPU system-architecture pages; Jouppi et al. CACM 2020 and ISCA 2023),
//! so the same asymptote and knee sharpness are kept, and the knee is held at the same *time*
//! of work, i.e. scaled by peak: a chip's matmul is split over its 2 TensorCores (separate XLA
//! devices on v3, one "megacore" device on v4), each running half the work at half the chip peak,
//! which takes the same time as the whole op at the chip peak, so the per-chip knee is
//! `half_v2_core x chip_peak / v2_core_peak`.
//!
//! TPU v3 (measured, since 2026-12-02): the same asymptote is NOT kept. One trainer measured on
//! both generations with the same per-core layer shapes (fattorib/transformer_shmap: 63 % MFU on
//! a v2-32, 44 % on a v3-32) puts v3 at 0.851 of the v2-to-v3 ratio this curve predicts, so the
//! v3 asymptote is scaled by [`TPU_V3_MXU_TRANSFER`] (tests/tpu_calibration.rs derives it).

use super::EfficiencyCurve;

/// Peak bf16 rate of one TPU v2 TensorCore [FLOP/s]: 180 TFLOP/s per v2-8 board / 8 cores
/// (Cloud TPU v2 system architecture; the ParaDnn roofline's `tpu_peak=180e3` GFLOP/s).
pub const TPU_V2_CORE_PEAK: f64 = 180e12 / 8.0;

/// One measured matmul fusion shape on a TPU v2 core (ParaDnn profiles, see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct TpuMatmulPoint {
    /// Hidden width `node` (the matmul's K and N).
    pub node: f64,
    /// Rows per core (`bs / 8`, the matmul's M).
    pub rows: f64,
    /// Measured FLOPS utilisation of the "output fusion" category [fraction of peak]: the
    /// median over the layer counts profiled for this shape (2-6 models of 4-128 layers).
    pub util: f64,
}

impl TpuMatmulPoint {
    /// Forward work of one hidden layer on one core [FLOP].
    pub fn work_flops(&self) -> f64 {
        2.0 * self.rows * self.node * self.node
    }
}

const fn pt(node: f64, rows: f64, util: f64) -> TpuMatmulPoint {
    TpuMatmulPoint { node, rows, util }
}

/// The compute-bound shapes: medians over the layer counts of the profiles whose measured
/// intensity is >= 150 FLOP/byte, from `fc_trace_10sec_opbreakdown.json` (category "output
/// fusion"). One profile is left out by that rule: 1024 x 2048 rows at 4 layers, whose record
/// (55 FLOP/byte, 59.8 %) repeats the 1024 x 128-row, 4-layer one.
pub const PARADNN_V2_MATMULS: [TpuMatmulPoint; 14] = [
    pt(512.0, 1024.0, 0.762),
    pt(512.0, 2048.0, 0.840),
    pt(1024.0, 512.0, 0.763),
    pt(1024.0, 1024.0, 0.846),
    pt(1024.0, 2048.0, 0.917),
    pt(2048.0, 512.0, 0.920),
    pt(2048.0, 1024.0, 0.944),
    pt(2048.0, 2048.0, 0.957),
    pt(4096.0, 512.0, 0.952),
    pt(4096.0, 1024.0, 0.964),
    pt(4096.0, 2048.0, 0.968),
    pt(8192.0, 512.0, 0.960),
    pt(8192.0, 1024.0, 0.968),
    pt(8192.0, 2048.0, 0.970),
];

/// Asymptotic TPU matmul efficiency [fraction of peak]: fitted to [`PARADNN_V2_MATMULS`]
/// (the test `constants_are_the_fit_of_the_cited_points` refits them).
pub const TPU_MAX_EFF: f64 = 0.9815;
/// Knee sharpness of the TPU matmul curve [dimensionless], fitted as [`TPU_MAX_EFF`].
pub const TPU_EXPONENT: f64 = 0.65;
/// Work at which a TPU v2 core reaches half of [`TPU_MAX_EFF`] [FLOP], fitted as [`TPU_MAX_EFF`].
pub const TPU_V2_CORE_HALF_FLOPS: f64 = 9.33e7;
/// Achieved fraction of HBM bandwidth of streaming (element-wise) kernels on a TPU: the median
/// XLA loop fusion of the ParaDnn profiles, 85.0 % (see the module docs).
pub const TPU_MEM_EFF: f64 = 0.85;

/// Measured MFU of fattorib/transformer_shmap's 2.83B model on a TPU v2-32 [fraction]: README
/// "Results" (github.com/fattorib/transformer_shmap, commit 113afde), 454 TFLOP/s = 63 %.
pub const SHMAP_V2_MFU: f64 = 0.63;
/// Measured MFU of the same trainer's 6.86B model on a TPU v3-32 [fraction]: same README,
/// 867 TFLOP/s = 44 % (the same per-core layer shapes as the v2 run; see [`TPU_V3_MXU_TRANSFER`]).
pub const SHMAP_V3_MFU: f64 = 0.44;

/// Fraction of the TPU v2-measured matmul asymptote a TPU v3 chip reaches [dimensionless]
/// (derived, [D]): the one independent whole-model measurement of the same code on both
/// generations, fattorib/transformer_shmap (JAX `shard_map`, README "Results": 63 % MFU on a
/// v2-32, 44 % on a v3-32; d_model 4096, 16 heads, context 1024, one sequence per micro-batch
/// per data-parallel rank, full remat, dp 4 x mp 8 cores on both, the v2 mesh ASSUMED as the
/// README's v3 example). With this module's curve in sample on v2, moesim predicts the v2 run at
/// 68.1 % and, with the curve carried to v3 unchanged (same asymptote, knee at equal time), the
/// v3 run at 55.9 %: the measured v3/v2 ratio (0.698) is 0.851 of the predicted one (0.821).
/// This constant is the matmul asymptote scale that makes moesim's predicted v3/v2 ratio the
/// measured one, recomputed by `tests/tpu_calibration.rs`
/// (`v3_transfer_is_the_measured_v2_to_v3_ratio`). Why the matmuls (ASSUMED attribution; the
/// whole-step pair cannot split op classes): they are ~74 % of the predicted v3 step, and v3
/// doubled the MXUs per TensorCore (1 -> 2, 700 -> 940 MHz) while the vector unit and the
/// vector registers that feed them and drain their results grew with the clock only and HBM per
/// core 300 -> 450 GB/s (Cloud TPU v3 system architecture; Jouppi et al. CACM 2020), so the
/// v2-measured feed rate does not carry to two MXUs. Not applied to TPU v4 (no v4 measurement
/// of the same code was found).
pub const TPU_V3_MXU_TRANSFER: f64 = 0.82;

/// The TPU efficiency curve for a chip of bf16 peak `chip_peak` [FLOP/s]. Matmul (`max_eff`,
/// `half_flops`, `exponent`) and streaming (`mem_eff`) terms come from the ParaDnn TPU profiles;
/// the rest (attention, indexed moves, fp32 scale, loop-GEMM scale, floor) from `borrowed`, the
/// H100-measured curve already scaled to this chip's peak (no TPU measurement of those).
pub fn tpu_efficiency(chip_peak: f64, borrowed: EfficiencyCurve) -> EfficiencyCurve {
    EfficiencyCurve {
        max_eff: TPU_MAX_EFF,
        half_flops: TPU_V2_CORE_HALF_FLOPS * chip_peak / TPU_V2_CORE_PEAK,
        exponent: TPU_EXPONENT,
        // The fitted curve already holds the per-op fixed cost (measured op times include it).
        kernel_t0_s: 0.0,
        mem_eff: TPU_MEM_EFF,
        ..borrowed
    }
}

/// The TPU v3 chip's curve: [`tpu_efficiency`] with the matmul asymptote scaled by
/// [`TPU_V3_MXU_TRANSFER`] (the measured v2-to-v3 transfer of the same trainer).
pub fn tpu_v3_efficiency(chip_peak: f64, borrowed: EfficiencyCurve) -> EfficiencyCurve {
    let c = tpu_efficiency(chip_peak, borrowed);
    EfficiencyCurve {
        max_eff: c.max_eff * TPU_V3_MXU_TRANSFER,
        ..c
    }
}

/// Least-squares fit of `max_eff / (1 + (half / work)^p)` to `points` on a grid (max_eff
/// 0.95-1.0 by 0.0005, p 0.30-1.00 by 0.01, log10 half 7.0-10.0 by 0.01): `(max_eff, p, half)`.
#[cfg(test)]
fn fit(points: &[TpuMatmulPoint]) -> (f64, f64, f64) {
    let mut best = (f64::INFINITY, 0.0, 0.0, 0.0);
    for j in 0..=70 {
        let p = 0.30 + 0.01 * j as f64;
        for h in 0..=300 {
            let half = 10f64.powf(7.0 + 0.01 * h as f64);
            let r: Vec<f64> = points
                .iter()
                .map(|q| 1.0 / (1.0 + (half / q.work_flops()).powf(p)))
                .collect();
            for i in 0..=100 {
                let m = 0.95 + 0.0005 * i as f64;
                let s: f64 = points
                    .iter()
                    .zip(&r)
                    .map(|(q, r)| (m * r - q.util).powi(2))
                    .sum();
                if s < best.0 {
                    best = (s, m, p, half);
                }
            }
        }
    }
    (best.1, best.2, best.3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{preset, Precision};

    fn v2_core_curve() -> EfficiencyCurve {
        let base = preset("tpu-v3").expect("tpu-v3").efficiency;
        tpu_efficiency(TPU_V2_CORE_PEAK, base)
    }

    #[test]
    fn constants_are_the_fit_of_the_cited_points() {
        let (m, p, half) = fit(&PARADNN_V2_MATMULS);
        assert!((m - TPU_MAX_EFF).abs() < 0.002, "max_eff {m}");
        assert!((p - TPU_EXPONENT).abs() < 0.015, "exponent {p}");
        assert!(
            (half / TPU_V2_CORE_HALF_FLOPS - 1.0).abs() < 0.05,
            "half {half}"
        );
    }

    /// Tolerance: every cited shape within 6 points of utilisation (worst: 1024 x 512 rows,
    /// measured 76.3 %, curve 81.5 %), root-mean-square under 2.5 points.
    #[test]
    fn curve_matches_each_cited_measurement_within_six_points() {
        let c = v2_core_curve();
        let mut ss = 0.0;
        for q in PARADNN_V2_MATMULS {
            let e = c.compute_eff(q.work_flops());
            assert!(
                (e - q.util).abs() <= 0.06,
                "node {} rows {}: curve {e:.3} vs measured {:.3}",
                q.node,
                q.rows,
                q.util
            );
            ss += (e - q.util).powi(2);
        }
        let rms = (ss / PARADNN_V2_MATMULS.len() as f64).sqrt();
        assert!(rms < 0.025, "rms {rms}");
    }

    #[test]
    fn tpu_presets_use_the_measured_curve_with_the_knee_at_equal_time() {
        for (key, peak, scale) in [
            ("tpu-v3", 123e12, TPU_V3_MXU_TRANSFER),
            ("tpu-v4", 275e12, 1.0),
        ] {
            let e = preset(key).expect("tpu preset").efficiency;
            assert_eq!(e.max_eff, TPU_MAX_EFF * scale);
            assert_eq!(e.exponent, TPU_EXPONENT);
            assert_eq!(e.mem_eff, TPU_MEM_EFF);
            let t_knee = e.half_flops / peak;
            let t_v2 = TPU_V2_CORE_HALF_FLOPS / TPU_V2_CORE_PEAK;
            assert!((t_knee / t_v2 - 1.0).abs() < 1e-12, "{key}");
        }
    }

    /// More matmul work never takes less time, and efficiency never falls with size.
    #[test]
    fn tpu_matmul_time_and_efficiency_are_monotone_in_work() {
        for key in ["tpu-v3", "tpu-v4"] {
            let a = preset(key).expect("tpu preset");
            let (mut last_t, mut last_e) = (0.0, 0.0);
            for i in 0..=60 {
                let n = 2f64.powf(3.0 + 0.2 * i as f64);
                let t = a.gemm(n, n, n, Precision::Bf16, 0.0).time_s;
                let e = a.efficiency.compute_eff(2.0 * n * n * n);
                assert!(t >= last_t, "{key}: n {n} time {t} < {last_t}");
                assert!(e >= last_e, "{key}: n {n} eff {e} < {last_e}");
                (last_t, last_e) = (t, e);
            }
        }
    }
}
