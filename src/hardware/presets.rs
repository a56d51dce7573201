//! Accelerator presets with their datasheet sources; H100 curves fitted from measurements.

use super::tpu_curve::{tpu_efficiency, tpu_v3_efficiency, TPU_MAX_EFF, TPU_V3_MXU_TRANSFER};
use super::{Accelerator, EfficiencyCurve, HardwareError, PeakFlops, PowerModel};

/// Preset keys, in the fixed order of [`presets`].
pub const PRESET_KEYS: [&str; 8] = [
    "h100",
    "h200",
    "a100",
    "a100-40gb",
    "v100",
    "b200",
    "tpu-v3",
    "tpu-v4",
];

/// H100 clock scaling: NVIDIA quotes H100 SXM5 peaks at the 1830 MHz boost clock
/// (989.4 TF bf16 = 132 SMs x 4096 FLOP/clk x 1.83 GHz; https://glennklockwood.com/garden/processors/h100
/// from the NVIDIA H100 whitepaper); the measured card's maximum SM clock is 1980 MHz
/// (../shared/data/h100/env.json), so peaks at max clock are scaled by 1980/1830.
const HOPPER_CLOCK_SCALE: f64 = 1980.0 / 1830.0;

// ---- H100 calibration constants: fitted from ../shared/data/h100/micro.csv (router/attention/
// ---- loop scales from moe_layer.csv and attn.csv) by calibrate::calibrate, the code behind
// ---- `moesim calibrate`; the test calibrate::tests::preset_h100_is_what_calibrate_fits_from_the_shared_data
// ---- recomputes them and checks agreement within 1%.
const H100_IDLE_W: f64 = 122.188;
const H100_LAUNCH_S: f64 = 21.311e-6;
const H100_MAX_EFF: f64 = 0.9913;
const H100_HALF_FLOPS: f64 = 5.0678e9;
const H100_EXPONENT: f64 = 0.51;
const H100_KERNEL_T0_S: f64 = 0.0;
const H100_MEM_EFF: f64 = 0.9036;
const H100_INDEX_MEM_EFF: f64 = 0.1456;
const H100_SIMT_EFF_SCALE: f64 = 0.7707;
// Power: `P = idle + (sm_active * s + tensor * u_t + simt * u_s) * phi^2 + mem * u_m`, fitted by
// calibrate::fit_micro to the busy bf16 GEMMs, the copy and the four flash-attention rows of
// ../shared/data/h100 (micro.csv, attn.csv) together; the SIMT term from the gemm_fp32 row.
// Held out of the fit (hardware::validation::power_curve_fits_the_measured_rows_and_predicts_held_out_ones):
// each attention row in turn and every moe_layer.csv row.
const H100_TENSOR_COEF_W: f64 = 1074.08;
const H100_SIMT_COEF_W: f64 = 512.31;
const H100_MEM_COEF_W: f64 = 164.22;
/// SM-activity power of a kernel occupying all 132 SMs at 1980 MHz, whatever its FLOP rate [W]:
/// fitted (see above). The rows that identify it run the SMs full at low tensor rates: flash
/// attention b8 s1024 h16 d64 draws 590 W at 1980 MHz with 19 % of tensor peak, the copy 511 W.
const H100_SM_ACTIVE_COEF_W: f64 = 236.85;
/// Clock exponent of dynamic power: assumed 2.0. CMOS dynamic power is C*V^2*f with V rising
/// with f over the DVFS range (gamma 1..3); micro.csv cannot identify it (all power-limited GEMMs
/// run at 0.66-0.76 of max clock; the least-squares profile is flat within the noise of the
/// 695-723 W readings), so it is fixed and the coefficients are fitted at it.
const H100_GAMMA: f64 = 2.0;
/// Efficiency floor for tiny kernels: assumed 5% of peak (they are launch-bound anyway).
const MIN_EFF: f64 = 0.05;
const H100_ATTENTION_MAX_EFF: f64 = 0.5141;
const H100_ATTENTION_HALF_FLOPS: f64 = 8.1257e8;
const H100_LOOP_SCALE: f64 = 0.331;
/// Lowest SM clock the controller may use, as a fraction of max: assumed 0.2 (~400 MHz;
/// H100 supported graphics clocks reach down to a few hundred MHz per `nvidia-smi -q -d SUPPORTED_CLOCKS`).
const MIN_CLOCK_FACTOR: f64 = 0.2;
/// Power above idle of an H100 waiting in a collective or a synchronisation [W]: 40 W, i.e. a
/// waiting GPU draws about 162 W. An estimate, bounded, not measured directly (no published or
/// shared measurement of a GPU spinning in NCCL exists, see /work/notes/hardware_constants.md §2).
/// It was derived from the launch-bound row `gemm_bf16 256x2048x1408` of
/// ../shared/data/h100/micro.csv (one 1.476 GFLOP kernel every 21.31 us at 1912 MHz, 5.017 mJ per
/// call; idle with context, 122.19 W, is 2.604 mJ of it) when kernel power followed FLOP
/// utilisation alone: the kernel's own dynamic energy came to 1.64-1.77 mJ and the remaining
/// 0.64-0.77 mJ fell in the 17-19 us wait for the next launch, 34-45 W above idle. With the
/// SM-activity term (2026-12-02) the kernel, ~4.0 us on 35 % of the SMs at 667 W, takes 2.18 mJ
/// and the balance leaves 0.23 mJ, ~13 W above idle, for the drained wait between launches: that
/// row now bounds a host-side wait at ~13 W and no longer sets this figure. It is kept for a
/// polling NCCL kernel, whose spinning CTAs occupy SMs (at this preset's 236.85 W for all 132 SMs,
/// 40 W is ~22 of them) and add NVLink/HBM traffic; cross-check: an H100 fleet with CUDA active at
/// 1980 MHz and 0 % utilisation drew 145.5 +/- 11.2 W (Vadari, arXiv 2605.23918), 23 W above idle.
/// Lower bound: idle, 122.2 W. (Issue 11 item 4: to be replaced by a measured spin power.)
const H100_SPIN_COEF_W: f64 = 40.0;
/// H100 dynamic range `tdp - idle` [W], by which other accelerators' coefficients are scaled.
const H100_DYN_RANGE_W: f64 = 700.0 - H100_IDLE_W;

impl Accelerator {
    /// Power of one accelerator waiting in a collective or a synchronisation (pipeline bubble,
    /// straggler wait, exposed communication) [W]: idle plus `power.spin_coef_w`; if a preset
    /// lacks it, the H100 figure scaled by the dynamic range `(tdp - idle) / (700 - 122.2)`.
    pub fn spin_w(&self) -> f64 {
        self.idle_w
            + self.power.spin_coef_w.unwrap_or_else(|| {
                H100_SPIN_COEF_W * (self.tdp_w - self.idle_w).max(0.0) / H100_DYN_RANGE_W
            })
    }
}

fn h100_efficiency() -> EfficiencyCurve {
    EfficiencyCurve {
        max_eff: H100_MAX_EFF,
        half_flops: H100_HALF_FLOPS,
        exponent: H100_EXPONENT,
        kernel_t0_s: H100_KERNEL_T0_S,
        mem_eff: H100_MEM_EFF,
        index_mem_eff: H100_INDEX_MEM_EFF,
        min_eff: MIN_EFF,
        simt_eff_scale: H100_SIMT_EFF_SCALE,
        attention_max_eff: H100_ATTENTION_MAX_EFF,
        attention_half_flops: H100_ATTENTION_HALF_FLOPS,
        loop_gemm_eff_scale: H100_LOOP_SCALE,
    }
}

fn h100_power() -> PowerModel {
    PowerModel {
        tensor_coef_w: H100_TENSOR_COEF_W,
        simt_coef_w: H100_SIMT_COEF_W,
        mem_coef_w: H100_MEM_COEF_W,
        sm_active_coef_w: H100_SM_ACTIVE_COEF_W,
        gamma: H100_GAMMA,
        min_clock_factor: MIN_CLOCK_FACTOR,
        spin_coef_w: Some(H100_SPIN_COEF_W),
    }
}

const H100_BF16: f64 = 989.4e12 * HOPPER_CLOCK_SCALE;

/// What a preset without its own measurements takes from the H100 fit, stated in its sources.
const EFFICIENCY_ASSUMPTION: &str = "efficiency curves: no measurements of this device — ASSUMED: the H100-measured curve shapes (max efficiency, exponent, attention curve, loop-GEMM scale, memory efficiency; ../shared/data/h100) applied to this device's own roofline (its peak FLOP/s and HBM bandwidth above), the size knee scaled by the bf16 peak ratio to the H100";

/// Build a non-H100 GPU preset: efficiency as [`EFFICIENCY_ASSUMPTION`], the dynamic power
/// coefficients the H100 fit's scaled by the ratio of dynamic ranges `(tdp - idle) / (700 - 122)`
/// (an assumption, stated in the preset's sources).
fn scaled_from_h100(mut a: Accelerator) -> Accelerator {
    let peak = a.peak_flops.bf16.or(a.peak_flops.fp16).unwrap_or(H100_BF16);
    a.efficiency = h100_efficiency().scaled_to_peak(peak / H100_BF16);
    a.power = h100_power().scaled((a.tdp_w - a.idle_w) / H100_DYN_RANGE_W);
    a.sources.push(EFFICIENCY_ASSUMPTION.into());
    a.sources.push(
        "dynamic power coefficients (tensor, SIMT, memory, spin): no measurements of this device — ASSUMED: the H100 fit scaled by (TDP - idle) / (700 - 122.2 W), so a large GEMM is power-limited at TDP as on the H100"
            .into(),
    );
    a
}

/// What a TPU preset takes from the ParaDnn TPU profiles and what it still borrows, in its sources.
const TPU_EFFICIENCY_SOURCE: &str = "efficiency curves: matmul curve max 0.9815 of peak, exponent 0.65, knee 0.0933 GFLOP on a TPU v2 core held at equal time (x chip peak / 22.5 TFLOP/s), and streaming at 0.85 of HBM bandwidth — fitted to the Cloud TPU profiler's per-op measurements of ParaDnn's bf16 FC models on a TPU v2-8 (Wang, Wei, Brooks, arXiv:1907.10701; github.com/Emma926/paradnn scripts/data/fc_trace_10sec_opbreakdown.json, 'output fusion' and 'loop fusion' categories; hardware/tpu_curve.rs); same 128x128 MXU on v3/v4 (ASSUMED same asymptote). Still ASSUMED from the H100 measurements (../shared/data/h100): attention curve, indexed-move, fp32 and loop-GEMM scales, scaled by the bf16 peak ratio";

/// Build a TPU preset from Google's measured min/mean/max chip power (`idle_w` = min,
/// `tdp_w` = max): matmul and streaming efficiency from the ParaDnn TPU profiles
/// ([`super::tpu_curve`]), the other curves as [`EFFICIENCY_ASSUMPTION`]; the tensor coefficient
/// set so that a GEMM at the curve's maximum efficiency and full clock draws the measured maximum
/// (TPUs run a fixed clock: no evidence of the H100's power-limit throttling, so the H100's
/// throttled shape is not copied); SIMT, memory and spin coefficients in the H100 fit's
/// proportions to the tensor coefficient of the ParaDnn (v2-measured) asymptote, so TPU v3's
/// matmul transfer ([`TPU_V3_MXU_TRANSFER`]) moves only the tensor coefficient.
fn tpu_from_measured_power(mut a: Accelerator) -> Accelerator {
    let peak = a.peak_flops.bf16.unwrap_or(H100_BF16);
    let borrowed = h100_efficiency().scaled_to_peak(peak / H100_BF16);
    a.efficiency = if a.key == "tpu-v3" {
        tpu_v3_efficiency(peak, borrowed)
    } else {
        tpu_efficiency(peak, borrowed)
    };
    let max_eff = a.efficiency.max_eff;
    let tensor = (a.tdp_w - a.idle_w) / max_eff;
    // SIMT, memory and spin follow the tensor coefficient of the TPU-measured (v2) asymptote:
    // the v3 matmul transfer changes what the best matmul achieves at the measured max power,
    // not what a memory-bound kernel draws.
    let base = (a.tdp_w - a.idle_w) / TPU_MAX_EFF;
    a.power = h100_power().scaled(base / H100_TENSOR_COEF_W);
    a.power.tensor_coef_w = tensor;
    // The measured max is matched by the tensor term alone: no separate SM-activity term.
    a.power.sm_active_coef_w = 0.0;
    a.sources.push(TPU_EFFICIENCY_SOURCE.into());
    if a.key == "tpu-v3" {
        a.sources.push(format!(
            "TPU v3 matmul asymptote x {TPU_V3_MXU_TRANSFER} (derived): the same JAX trainer measured 63 % MFU on a TPU v2-32 and 44 % on a TPU v3-32 with the same per-core layer shapes (github.com/fattorib/transformer_shmap README, commit 113afde); moesim with the v2-fitted curve predicts 68.1 % and 55.9 %, so the v2 curve carried to v3 overstates v3 by 1/0.851; the scale that makes the predicted v3/v2 ratio the measured one (tests/tpu_calibration.rs). Attributed to the matmuls (ASSUMED: 2 MXUs per v3 core fed by a vector unit that grew with the clock only)"
        ));
    }
    a.sources.push(format!(
        "dynamic power: tensor coefficient {tensor:.0} W = (max {:.0} W - min {:.0} W measured) / max efficiency {max_eff}, so a peak-efficiency GEMM at full clock draws the measured max (derived); SIMT/memory/spin coefficients in the H100 fit's ratios to the tensor coefficient of the ParaDnn asymptote, (max - min) / {TPU_MAX_EFF} (ASSUMED)",
        a.tdp_w, a.idle_w
    ));
    a
}

fn h100() -> Accelerator {
    Accelerator {
        key: "h100".into(),
        name: "NVIDIA H100 SXM5 80GB".into(),
        peak_flops: PeakFlops {
            fp32: Some(66.9e12 * HOPPER_CLOCK_SCALE),
            tf32: Some(494.7e12 * HOPPER_CLOCK_SCALE),
            bf16: Some(H100_BF16),
            fp16: Some(989.4e12 * HOPPER_CLOCK_SCALE),
            fp8: Some(1978.9e12 * HOPPER_CLOCK_SCALE),
        },
        // 80 GiB of HBM3 of which CUDA reports 79.18 GiB usable (../shared/data/h100/env.json).
        hbm_bytes: 79.18 * 1024.0 * 1024.0 * 1024.0,
        hbm_bw_bytes_per_s: 3.35e12,
        tdp_w: 700.0,
        min_power_cap_w: 200.0,
        idle_w: H100_IDLE_W,
        max_clock_mhz: 1980.0,
        intra_node_bw_bytes_per_s: 450e9,
        intra_node_latency_s: 2e-6,
        gpus_per_node: 8,
        node_overhead_w: 2300.0,
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: H100_LAUNCH_S,
        sources: vec![
            "peaks: 989.4 TF bf16/fp16, 494.7 tf32, 1978.9 fp8, 66.9 fp32 dense at 1830 MHz, x1980/1830 — https://glennklockwood.com/garden/processors/h100 (NVIDIA H100 whitepaper)".into(),
            "80 GB HBM3, 3.35 TB/s, 700 W, NVLink 900 GB/s bidirectional (450 GB/s each way) — https://archive-lib.hpctech.co.jp/gpuproduct/nvidia-h100.html (NVIDIA datasheet table)".into(),
            "max SM clock 1980 MHz, power limit 700 W — ../shared/data/h100/env.json".into(),
            "min power cap 200 W — NVIDIA DGX user guide, Redfish PowerLimitWatts AllowableMin 200 / AllowableMax 700 (https://docs.nvidia.com/dgx/dgxb200-user-guide/power-capping.html)".into(),
            "idle power, launch floor, efficiency curves — fitted from ../shared/data/h100/micro.csv (calibrate::fit_micro); power curve (SM-activity, tensor, memory terms) fitted from micro.csv and attn.csv together, SIMT term from the gemm_fp32 row (calibrate::fit_micro)".into(),
            "power while waiting in a collective/sync (spin) 162 W = idle + 40 W — estimated from the launch-bound 256x2048x1408 GEMM row of ../shared/data/h100/micro.csv (a bound, see presets.rs H100_SPIN_COEF_W)".into(),
            "attention efficiency curve, loop-GEMM efficiency scale, router kernel count — fitted from ../shared/data/h100/attn.csv and moe_layer.csv (calibrate::calibrate)".into(),
            "NVLink small-message latency 2 us — assumed (typical NCCL intra-node latency)".into(),
            "node overhead 2300 W — assumed: DGX H100 max system power 10.2 kW (NVIDIA DGX H100 datasheet) minus 8x700 W = 4.6 kW at maximum; half of it taken as typical".into(),
        ],
    }
}

fn h200() -> Accelerator {
    let mut a = h100();
    a.key = "h200".into();
    a.name = "NVIDIA H200 SXM 141GB".into();
    a.hbm_bytes = 141e9;
    a.hbm_bw_bytes_per_s = 4.8e12;
    a.sources = vec![
        "same GH100 compute, clocks and 700 W as H100; 141 GB HBM3e, 4.8 TB/s, NVLink 900 GB/s bidirectional — https://lzwjava.github.io/nvidia-h200-gpu-specs-en (NVIDIA H200 datasheet comparison)".into(),
        "idle power, min cap, curves, launch floor, node overhead: H100 values (assumed identical die and board)".into(),
    ];
    a
}

/// A100 idle power with a CUDA context open [W]: 80.0 W at 1410 MHz (Vadari, arXiv 2605.23918,
/// as quoted in /work/notes/hardware_constants.md §2a [secondary]; the same source's H100 figure,
/// 121.7 W, matches our measured 122.2 W). Bare idle without a context: 53.7 W (same source).
const A100_IDLE_W: f64 = 80.0;

fn a100() -> Accelerator {
    let idle_w = A100_IDLE_W;
    scaled_from_h100(Accelerator {
        key: "a100".into(),
        name: "NVIDIA A100 SXM4 80GB".into(),
        peak_flops: PeakFlops {
            fp32: Some(19.5e12),
            tf32: Some(156e12),
            bf16: Some(312e12),
            fp16: Some(312e12),
            fp8: None,
        },
        hbm_bytes: 80e9,
        hbm_bw_bytes_per_s: 2.039e12,
        tdp_w: 400.0,
        min_power_cap_w: 100.0,
        idle_w,
        max_clock_mhz: 1410.0,
        intra_node_bw_bytes_per_s: 300e9,
        intra_node_latency_s: 2e-6,
        gpus_per_node: 8,
        node_overhead_w: 1650.0,
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: H100_LAUNCH_S,
        sources: vec![
            "312 TF bf16/fp16, 156 tf32, 19.5 fp32 dense; 80 GB HBM2e 2.039 TB/s; 400 W; NVLink 300+300 GB/s — https://glennklockwood.com/garden/processors/A100 (NVIDIA A100 datasheet)".into(),
            "boost (max) clock 1410 MHz — https://www.techpowerup.com/gpu-specs/a100-sxm4-40-gb.c3506".into(),
            "min power cap 100 W — assumed (nvidia-smi range commonly reported for A100 SXM4)".into(),
            "idle power with a context 80.0 W at 1410 MHz — Vadari, arXiv 2605.23918 [secondary quote; same source's H100 value matches our measurement]".into(),
            "node overhead 1650 W — assumed: DGX A100 max 6.5 kW (NVIDIA DGX A100 datasheet) minus 8x400 W, halved".into(),
            "launch floor and latency — H100 values (assumed, same software stack)".into(),
        ],
    })
}

fn a100_40gb() -> Accelerator {
    let mut a = a100();
    a.key = "a100-40gb".into();
    a.name = "NVIDIA A100 SXM4 40GB".into();
    a.hbm_bytes = 40e9;
    a.hbm_bw_bytes_per_s = 1.555e12;
    a.sources[0] = "312 TF bf16/fp16, 156 tf32, 19.5 fp32 dense; 40 GB HBM2 1.555 TB/s; 400 W (SXM4); NVLink 300+300 GB/s — https://glennklockwood.com/garden/processors/A100 (NVIDIA A100 datasheet table)".into();
    a.sources.push(
        "idle power, min cap, node overhead, curves: as the A100 80GB (same GA100 die, clocks and 400 W board power; assumed)".into(),
    );
    a
}

fn v100() -> Accelerator {
    let idle_w = H100_IDLE_W * 300.0 / 700.0;
    scaled_from_h100(Accelerator {
        key: "v100".into(),
        name: "NVIDIA Tesla V100 SXM2 32GB".into(),
        peak_flops: PeakFlops {
            fp32: Some(15.7e12),
            tf32: None,
            bf16: None,
            fp16: Some(125e12),
            fp8: None,
        },
        hbm_bytes: 32e9,
        hbm_bw_bytes_per_s: 900e9,
        tdp_w: 300.0,
        min_power_cap_w: 150.0,
        idle_w,
        max_clock_mhz: 1530.0,
        intra_node_bw_bytes_per_s: 150e9,
        intra_node_latency_s: 3e-6,
        gpus_per_node: 8,
        node_overhead_w: 550.0,
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: H100_LAUNCH_S,
        sources: vec![
            "125 TF fp16 tensor, 15.7 fp32 at 1530 MHz boost; 300 W; NVLink 2.0 300 GB/s bidirectional — NVIDIA Tesla V100 datasheet (https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf); no bf16/tf32 (Volta)".into(),
            "32 GB HBM2 at 900 GB/s — https://www.io-tech.fi/uutinen/nvidia-esitteli-tesla-v100-pci-express-kiihdyttimen-tieteelliseen-laskentaan/".into(),
            "min power cap 150 W, idle (122 W x 300/700), 3 us NVLink latency — assumed".into(),
            "node overhead 550 W — assumed: DGX-1 3.5 kW max minus 8x300 W, halved".into(),
        ],
    })
}

fn b200() -> Accelerator {
    let idle_w = H100_IDLE_W * 1000.0 / 700.0;
    scaled_from_h100(Accelerator {
        key: "b200".into(),
        name: "NVIDIA B200 (HGX, 1000 W)".into(),
        peak_flops: PeakFlops {
            fp32: Some(75e12),
            tf32: Some(1.1e15),
            bf16: Some(2.25e15),
            fp16: Some(2.25e15),
            fp8: Some(4.5e15),
        },
        hbm_bytes: 180e9,
        hbm_bw_bytes_per_s: 7.7e12,
        tdp_w: 1000.0,
        min_power_cap_w: 200.0,
        idle_w,
        max_clock_mhz: 1965.0,
        intra_node_bw_bytes_per_s: 900e9,
        intra_node_latency_s: 2e-6,
        gpus_per_node: 8,
        node_overhead_w: 3150.0,
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: H100_LAUNCH_S,
        sources: vec![
            "HGX B200: 4.5 PF fp16/bf16, 9 PF fp8, 2.2 PF tf32 with sparsity (halved for dense), 75 TF fp32; 180 GB HBM3e 7.7 TB/s; up to 1000 W; NVLink 5 1.8 TB/s bidirectional — NVIDIA GB200 NVL72 / HGX B200 spec table as quoted at https://zdszero.github.io/Computer/Artificial_Intelligence/Hardware.html".into(),
            "min power cap 200 W — NVIDIA DGX B200 user guide, Redfish AllowableMin 200 (https://docs.nvidia.com/dgx/dgxb200-user-guide/power-capping.html)".into(),
            "max clock 1965 MHz — assumed (only used for reporting clocks)".into(),
            "idle (122 W x 1000/700), node overhead 3150 W (DGX B200 ~14.3 kW max minus 8 kW, halved) — assumed".into(),
        ],
    })
}

fn tpu_v3() -> Accelerator {
    tpu_from_measured_power(Accelerator {
        key: "tpu-v3".into(),
        name: "Google Cloud TPU v3 (per chip)".into(),
        peak_flops: PeakFlops {
            fp32: None,
            tf32: None,
            bf16: Some(123e12),
            fp16: None,
            fp8: None,
        },
        hbm_bytes: 32.0 * 1024.0 * 1024.0 * 1024.0,
        hbm_bw_bytes_per_s: 900e9,
        tdp_w: 262.0,
        min_power_cap_w: 262.0,
        idle_w: 123.0,
        max_clock_mhz: 940.0,
        intra_node_bw_bytes_per_s: 340e12 / 1024.0,
        intra_node_latency_s: 5e-6,
        gpus_per_node: 4,
        node_overhead_w: 500.0,
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: 5e-6,
        sources: vec![
            "123 TF bf16 per chip; 32 GiB HBM2 900 GB/s; measured min/mean/max power 123/220/262 W (idle = min, limit = max); pod all-reduce bandwidth 340 TB/s over 1024 chips — https://cloud.google.com/tpu/docs/v3".into(),
            "no user power cap: min_power_cap_w = tdp_w (capping is a no-op)".into(),
            "940 MHz clock — Jouppi et al., 'A Domain-Specific Supercomputer for Training Deep Neural Networks', CACM 2020".into(),
            "4 chips per host (v3-8), 5 us ICI latency, 5 us per XLA op, 500 W host overhead — assumed: no published TPU v3 host or system power was found apart from Patterson et al. 2021 Table 4 (all-in 245-310 W per chip, i.e. ~100-360 W per host), which is not used, to keep those validation cases out of sample. The measured min/mean/max is the chip's, not the system's: the same Cloud TPU figure for v4 (mean 170 W) is well under the 378.5 W measured system power per v4 chip (PaLM App. B), whose host share (~210 W a chip) is above the 125 W a chip assumed here (a v4 host, not a v3 one)".into(),
            "interconnect: a 2-D ICI torus (scenario key cluster.torus; link preset tpu-v3-ici), not a fat-tree".into(),
        ],
    })
}

/// Measured system power per TPU v4 chip while PaLM 540B trained [W]: the chip plus its share of
/// the host (CPUs, DRAM, NICs, fans, power conversion), before PUE — Chowdhery et al. 2022
/// (arXiv:2204.02311) App. B, "378.5W measured system power per TPU v4 chip" (averaged over
/// 8.4M chip-hours that include some downtime). PaLM's energy is not a validation figure
/// (scenarios/validation/palm_540b.toml compares tokens/s only), so this is an input, not a fit.
const TPU_V4_SYSTEM_W_PER_CHIP: f64 = 378.5;
/// Measured mean power of one TPU v4 chip [W] (Cloud TPU v4 docs, min/mean/max 90/170/192 W).
const TPU_V4_MEAN_CHIP_W: f64 = 170.0;
/// Load-proportional node power at full GPU load as a share of the idle-GPU base
/// (`node_overhead_w`): 500 / 2300 = 0.217 (an estimate). Full-load non-GPU power of an 8x H100
/// node: measured node peak ~8.4 kW "with GPUs near full utilization" (Latif et al., arXiv
/// 2412.08602) minus 8 x 700 W GPU limit = 2.8 kW, assuming the GPUs were at their limit at that
/// peak; against the 2.3 kW base of the H100 preset this leaves 0.5 kW that follows the load.
/// Published DGX H100 / A100 idle power was not found, so the base stays the preset's assumed
/// figure (half the 4.6 kW non-GPU share of the DGX H100 10.2 kW nameplate). The same share is
/// assumed for every accelerator; a scenario's `node_overhead_w` sets the base, the load part
/// scales with it.
pub const NODE_LOAD_SHARE: f64 = 500.0 / 2300.0;

/// Base node power of a 4-chip TPU v4 host [W] (derived): PaLM's measured system power per chip
/// less the chip's measured mean is the host's share at that load, 4 x (378.5 - 170) = 834 W per
/// host; moesim's node power at that load is base x (1 + share x load), the chips' load share at
/// their mean being (170 - 90) / (192 - 90), so base = 834 / (1 + 0.217 x 0.784) = 712.5 W.
/// `idle_w` and `max_w` are the chip's measured min and max [W].
fn tpu_v4_host_base_w(idle_w: f64, max_w: f64) -> f64 {
    let load = (TPU_V4_MEAN_CHIP_W - idle_w) / (max_w - idle_w);
    4.0 * (TPU_V4_SYSTEM_W_PER_CHIP - TPU_V4_MEAN_CHIP_W) / (1.0 + NODE_LOAD_SHARE * load)
}

fn tpu_v4() -> Accelerator {
    let mut a = tpu_from_measured_power(Accelerator {
        key: "tpu-v4".into(),
        name: "Google Cloud TPU v4 (per chip)".into(),
        peak_flops: PeakFlops {
            fp32: None,
            tf32: None,
            bf16: Some(275e12),
            fp16: None,
            fp8: None,
        },
        hbm_bytes: 32.0 * 1024.0 * 1024.0 * 1024.0,
        hbm_bw_bytes_per_s: 1200e9,
        tdp_w: 192.0,
        min_power_cap_w: 192.0,
        idle_w: 90.0,
        max_clock_mhz: 1050.0,
        intra_node_bw_bytes_per_s: 1.1e15 / 4096.0,
        intra_node_latency_s: 5e-6,
        gpus_per_node: 4,
        node_overhead_w: 0.0, // set below from the measured chip min/max
        efficiency: h100_efficiency(),
        power: h100_power(),
        launch_overhead_s: 5e-6,
        sources: vec![
            "275 TF bf16 per chip; 32 GiB HBM2 1200 GB/s; measured min/mean/max power 90/170/192 W (idle = min, limit = max); pod all-reduce bandwidth 1.1 PB/s over 4096 chips — https://cloud.google.com/tpu/docs/v4".into(),
            "no user power cap: min_power_cap_w = tdp_w (capping is a no-op)".into(),
            "1050 MHz clock — Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for ML', ISCA 2023".into(),
            "host power: base 712.5 W per 4-chip host (derived) = 4 x (378.5 W measured system power per TPU v4 chip, Chowdhery et al. 2022 'PaLM', arXiv:2204.02311 App. B, - 170 W measured mean chip power) / (1 + 0.217 load share x the chips' 0.784 load at their mean), so a host draws 834 W beside its chips at that load; the 378.5 W average includes some downtime (ASSUMED the chips ran at their fleet mean)".into(),
            "4 chips per host (PaLM Sec. 4: 768 hosts per 3072-chip pod), 5 us ICI latency, 5 us per XLA op — assumed".into(),
            "interconnect: a 3-D ICI torus (scenario key cluster.torus; link preset tpu-v4-ici), not a fat-tree".into(),
        ],
    });
    a.node_overhead_w = tpu_v4_host_base_w(a.idle_w, a.tdp_w);
    a
}

/// All presets, in the order of [`PRESET_KEYS`].
pub fn presets() -> Vec<Accelerator> {
    vec![
        h100(),
        h200(),
        a100(),
        a100_40gb(),
        v100(),
        b200(),
        tpu_v3(),
        tpu_v4(),
    ]
}

/// The preset with `key` (case-insensitive); the error lists the valid keys.
pub fn preset(key: &str) -> Result<Accelerator, HardwareError> {
    let k = key.trim().to_ascii_lowercase();
    presets()
        .into_iter()
        .find(|a| a.key == k)
        .ok_or_else(|| HardwareError::UnknownPreset {
            key: key.to_string(),
            valid: PRESET_KEYS.join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_follow_the_key_table_and_are_sane() {
        let all = presets();
        let keys: Vec<&str> = all.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, PRESET_KEYS);
        for a in &all {
            assert!(a.idle_w > 0.0 && a.idle_w < a.tdp_w, "{}", a.key);
            assert!(a.min_power_cap_w <= a.tdp_w, "{}", a.key);
            assert!(
                a.peak_flops.bf16.or(a.peak_flops.fp16).is_some(),
                "{}",
                a.key
            );
            assert!(
                a.hbm_bw_bytes_per_s > 1e11 && a.hbm_bytes > 1e10,
                "{}",
                a.key
            );
            assert!(!a.sources.is_empty(), "{}", a.key);
            // A large GEMM never draws more than the limit.
            let c = a.gemm(8192.0, 8192.0, 8192.0, super::super::Precision::Bf16, 0.0);
            assert!(c.mean_power_w() <= a.tdp_w + 1e-6, "{}", a.key);
        }
    }

    /// Every preset that is not the measured H100 says what it assumes of its curves and power.
    #[test]
    fn unmeasured_presets_state_their_curve_assumption() {
        for a in presets() {
            let assumed = a.sources.iter().any(|s| s.contains("ASSUMED"));
            match a.key.as_str() {
                "h100" => assert!(!assumed),
                "h200" => assert!(a.sources.iter().any(|s| s.contains("H100 values"))),
                _ => assert!(assumed, "{}", a.key),
            }
        }
    }

    /// TPUs: a peak-efficiency GEMM at full clock draws the measured max (no H100-style
    /// throttling), and idle is the measured min.
    #[test]
    fn tpu_power_spans_the_measured_min_and_max() {
        for (key, min_w, max_w) in [("tpu-v3", 123.0, 262.0), ("tpu-v4", 90.0, 192.0)] {
            let t = preset(key).expect("tpu preset");
            assert_eq!((t.idle_w, t.tdp_w), (min_w, max_w));
            let g = t.gemm(
                16384.0,
                16384.0,
                16384.0,
                super::super::Precision::Bf16,
                0.0,
            );
            assert!(g.mean_power_w() > 0.95 * max_w && g.mean_power_w() <= max_w + 1e-9);
            assert!(g.clock_factor > 0.95, "{key}: clock {}", g.clock_factor);
        }
        let a40 = preset("a100-40gb").expect("a100-40gb");
        let a80 = preset("a100").expect("a100");
        assert_eq!(
            (a40.hbm_bw_bytes_per_s, a80.hbm_bw_bytes_per_s),
            (1.555e12, 2.039e12)
        );
        assert_eq!(a80.idle_w, 80.0);
    }

    /// TPU v4 host: at the chips' measured mean load the host draws PaLM's measured system power
    /// per chip less the chip's mean, 4 x (378.5 - 170) = 834 W (PaLM App. B; Cloud TPU v4).
    #[test]
    fn tpu_v4_host_draws_palm_system_power_less_the_chips_at_mean_load() {
        let t = preset("tpu-v4").expect("tpu-v4");
        let load = (170.0 - t.idle_w) / (t.tdp_w - t.idle_w);
        let host_w = t.node_overhead_w * (1.0 + NODE_LOAD_SHARE * load);
        assert!((host_w - 834.0).abs() < 1e-6, "{host_w}");
        assert!(
            (t.node_overhead_w - 712.5).abs() < 0.5,
            "{}",
            t.node_overhead_w
        );
        // v3 keeps its assumed 500 W (no published v3 host power outside the validation source)
        assert_eq!(preset("tpu-v3").expect("tpu-v3").node_overhead_w, 500.0);
    }

    #[test]
    fn unknown_key_lists_valid_keys() {
        let msg = preset("h300")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("h300") && msg.contains("tpu-v4") && msg.contains("a100"),
            "{msg}"
        );
        assert!(preset("H100").is_ok());
    }
}
