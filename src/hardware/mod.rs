//! Accelerator model: presets, roofline with size-dependent efficiency, launch overhead, power caps.
//!
//! A kernel's busy time is `max(flops / (peak * clock_factor * eff_c(flops)), bytes / (bw * eff_m))`;
//! its wall time is `max(launch_overhead_s, kernel_t0_s + busy)` (back-to-back eager launches:
//! the host cannot issue calls faster than `launch_overhead_s`, and the measured H100 calls of
//! 1.5 and 5.9 GFLOP both take ~21-25 us). The efficiency curve keeps that time non-decreasing in
//! work. Power follows [`PowerModel`].

pub mod calibrate;
mod efficiency;
pub mod fp8_curve;
pub mod kernels;
mod power;
pub mod preset_file;
mod presets;
mod price;
pub mod tpu_curve;
#[cfg(test)]
mod validation;

mod describe;
pub use crate::workload::Precision;
pub use describe::describe;
pub use efficiency::EfficiencyCurve;
pub use kernels::{experts_fwd_bwd, ExpertKernel};
pub use power::PowerModel;
pub use preset_file::{parse_preset, preset_to_toml, read_preset_file, write_preset_file};
pub use presets::{preset, presets, NODE_LOAD_SHARE, PRESET_KEYS};
pub use price::{is_router_op, moe_layer_router_price, PriceKnobs, PricedOp, ROUTER_OPS};

use power::Demand;

/// Errors of the hardware module.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// A preset key that does not exist.
    #[error("unknown accelerator preset '{key}'; valid keys: {valid}")]
    UnknownPreset {
        /// The key asked for.
        key: String,
        /// Comma-separated list of valid keys.
        valid: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A bad value in a calibration CSV file.
    #[error("{path}:{line}: field '{field}': {message}")]
    Csv {
        /// File path.
        path: String,
        /// 1-based line number.
        line: u64,
        /// Column name.
        field: String,
        /// What was wrong and what would be valid.
        message: String,
    },
    /// A calibration fit could not be made from the data given.
    #[error("calibration fit failed: {0}")]
    Fit(String),
    /// A bad accelerator preset file (TOML).
    #[error("{path}{}{}: {message}", if .at.is_empty() { String::new() } else { format!(":{}", .at) }, if .key.is_empty() { String::new() } else { format!(": `{}`", .key) })]
    PresetFile {
        /// File path.
        path: String,
        /// `line:column` of a syntax or type error (empty for range errors).
        at: String,
        /// Dotted key (empty for syntax errors).
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

/// Dense (no sparsity) peak throughput per precision at maximum clock [FLOP/s]; `None` = unsupported.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakFlops {
    /// fp32 on SIMT units [FLOP/s].
    pub fp32: Option<f64>,
    /// TF32 tensor [FLOP/s].
    pub tf32: Option<f64>,
    /// bf16 tensor [FLOP/s].
    pub bf16: Option<f64>,
    /// fp16 tensor [FLOP/s].
    pub fp16: Option<f64>,
    /// fp8 tensor [FLOP/s].
    pub fp8: Option<f64>,
}

impl PeakFlops {
    /// Peak for exactly this precision [FLOP/s], if supported.
    pub fn get(&self, p: Precision) -> Option<f64> {
        match p {
            Precision::Fp32 => self.fp32,
            Precision::Tf32 => self.tf32,
            Precision::Bf16 => self.bf16,
            Precision::Fp16 => self.fp16,
            Precision::Fp8 => self.fp8,
        }
    }

    /// Precision actually used for `p`: `p` if supported, else the first supported of
    /// bf16, fp16, tf32, fp32 (e.g. fp8 on an A100 runs as bf16, bf16 on a V100 as fp16).
    pub fn effective(&self, p: Precision) -> Precision {
        if self.get(p).is_some() {
            return p;
        }
        [
            Precision::Bf16,
            Precision::Fp16,
            Precision::Tf32,
            Precision::Fp32,
        ]
        .into_iter()
        .find(|q| self.get(*q).is_some())
        .unwrap_or(p)
    }
}

/// Time and energy of one kernel (or a sequence of kernels) on one accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct KernelCost {
    /// Wall time [s].
    pub time_s: f64,
    /// Whole-accelerator energy over `time_s`, idle power included [J].
    pub energy_j: f64,
    /// SM clock over maximum clock (time-weighted over busy time for sequences) [fraction].
    pub clock_factor: f64,
}

impl KernelCost {
    /// Cost of `self` followed by `other` on the same accelerator (clock time-weighted).
    #[inline]
    pub fn then(self, other: KernelCost) -> KernelCost {
        let time_s = self.time_s + other.time_s;
        let clock_factor = if time_s > 0.0 {
            (self.clock_factor * self.time_s + other.clock_factor * other.time_s) / time_s
        } else {
            other.clock_factor.max(self.clock_factor)
        };
        KernelCost {
            time_s,
            energy_j: self.energy_j + other.energy_j,
            clock_factor,
        }
    }

    /// `n` back-to-back repetitions of `self`.
    #[inline]
    pub fn times(self, n: f64) -> KernelCost {
        KernelCost {
            time_s: self.time_s * n,
            energy_j: self.energy_j * n,
            clock_factor: self.clock_factor,
        }
    }

    /// Mean power over the cost's time [W] (0 for zero time).
    pub fn mean_power_w(&self) -> f64 {
        if self.time_s > 0.0 {
            self.energy_j / self.time_s
        } else {
            0.0
        }
    }
}

/// One accelerator type: datasheet figures, calibrated curves and their sources.
///
/// It is also the preset file's schema (`preset_file`): serde writes and reads the fields in this
/// order, scalars first, then the three tables.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// Preset key ("h100", "h200", "a100", "v100", "b200", "tpu-v3", "tpu-v4").
    pub key: String,
    /// Full product name.
    pub name: String,
    /// HBM capacity [bytes].
    pub hbm_bytes: f64,
    /// HBM bandwidth [bytes/s].
    pub hbm_bw_bytes_per_s: f64,
    /// Default power limit [W].
    pub tdp_w: f64,
    /// Lowest settable power limit [W].
    pub min_power_cap_w: f64,
    /// Idle power with a context open [W].
    pub idle_w: f64,
    /// Maximum SM clock [MHz].
    pub max_clock_mhz: f64,
    /// Per-accelerator unidirectional NVLink/ICI bandwidth [bytes/s].
    pub intra_node_bw_bytes_per_s: f64,
    /// Intra-node small-message latency [s].
    pub intra_node_latency_s: f64,
    /// Accelerators in a typical node.
    pub gpus_per_node: u32,
    /// Non-accelerator node power (CPUs, DRAM, NICs, fans) [W].
    pub node_overhead_w: f64,
    /// Minimum wall time per eagerly launched kernel [s].
    pub launch_overhead_s: f64,
    /// One line per figure source.
    pub sources: Vec<String>,
    /// Dense peak per precision at `max_clock_mhz` [FLOP/s].
    pub peak_flops: PeakFlops,
    /// Size-dependent efficiency curves.
    pub efficiency: EfficiencyCurve,
    /// Power model coefficients.
    pub power: PowerModel,
}

impl Accelerator {
    /// Power limit actually applied for a requested `power_limit_w` [W]: non-finite or <= 0
    /// means the default (TDP); other values are clamped to `[min_power_cap_w, tdp_w]`.
    #[inline]
    pub fn effective_power_limit_w(&self, power_limit_w: f64) -> f64 {
        if !power_limit_w.is_finite() || power_limit_w <= 0.0 {
            self.tdp_w
        } else {
            power_limit_w.clamp(self.min_power_cap_w.min(self.tdp_w), self.tdp_w)
        }
    }

    /// Peak at maximum clock for `prec`, with the fallback of [`PeakFlops::effective`] [FLOP/s].
    #[inline]
    pub fn peak_flops_for(&self, prec: Precision) -> f64 {
        let p = self.peak_flops.effective(prec);
        self.peak_flops.get(p).unwrap_or(0.0)
    }

    /// Idle power [W].
    pub fn idle_power_w(&self) -> f64 {
        self.idle_w
    }

    /// General kernel model. `size_flops` drives the efficiency curve; `eff_scale` multiplies
    /// the curve (attention, loop-issued GEMMs). Allocation-free.
    pub fn kernel_scaled(
        &self,
        flops: f64,
        bytes: f64,
        size_flops: f64,
        eff_scale: f64,
        prec: Precision,
        power_limit_w: f64,
    ) -> KernelCost {
        let used = self.peak_flops.effective(prec);
        let simt_scale = if used.is_tensor() {
            1.0
        } else {
            self.efficiency.simt_eff_scale
        };
        let size_eff = self.efficiency.compute_eff(size_flops);
        let eff_c = size_eff * eff_scale * simt_scale;
        // The size curve's shortfall below its asymptote is SM under-occupancy (partial waves of
        // a small matmul): that fraction of the SMs is occupied. A scale (loop issue, SIMT) slows
        // SMs that stay occupied.
        let fill = if flops > 0.0 && self.efficiency.max_eff > 0.0 {
            (size_eff / self.efficiency.max_eff).clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.kernel_filled(flops, bytes, eff_c, fill, prec, power_limit_w)
    }

    /// Kernel of `flops` [FLOP] and `bytes` [bytes] whose compute runs at `eff_c` of peak at the
    /// running clock, occupying every SM (flash attention, streaming). Allocation-free.
    pub fn kernel_at_eff(
        &self,
        flops: f64,
        bytes: f64,
        eff_c: f64,
        prec: Precision,
        power_limit_w: f64,
    ) -> KernelCost {
        self.kernel_filled(flops, bytes, eff_c, 1.0, prec, power_limit_w)
    }

    /// [`Accelerator::kernel_at_eff`] on a fraction `fill` of the SMs (the SM-activity power
    /// term of [`PowerModel`] follows it). Allocation-free.
    pub(crate) fn kernel_filled(
        &self,
        flops: f64,
        bytes: f64,
        eff_c: f64,
        fill: f64,
        prec: Precision,
        power_limit_w: f64,
    ) -> KernelCost {
        let flops = if flops > 0.0 { flops } else { 0.0 };
        let bytes = if bytes > 0.0 { bytes } else { 0.0 };
        let used = self.peak_flops.effective(prec);
        let peak = self.peak_flops.get(used).unwrap_or(0.0);
        let coef = if used.is_tensor() {
            self.power.tensor_coef_w
        } else {
            self.power.simt_coef_w
        };
        let eff_c = eff_c.clamp(1e-9, 1.0);
        let (t_compute_s, compute_work_j) = if flops > 0.0 && peak > 0.0 {
            (flops / (peak * eff_c), coef * flops / peak)
        } else {
            (0.0, 0.0)
        };
        let bw = self.hbm_bw_bytes_per_s;
        let (t_memory_s, memory_work_j) = if bytes > 0.0 && bw > 0.0 {
            (
                bytes / (bw * self.efficiency.mem_eff),
                self.power.mem_coef_w * bytes / bw,
            )
        } else {
            (0.0, 0.0)
        };
        let demand = Demand {
            t_compute_s,
            t_memory_s,
            compute_work_j,
            memory_work_j,
            active_w: self.power.sm_active_coef_w * fill,
        };
        let limit = self.effective_power_limit_w(power_limit_w);
        let op = demand.operate(self.idle_w, limit, &self.power);
        // Device time: fixed per-kernel time plus the work at the achieved rate; wall time is
        // at least the host's issue floor. Non-decreasing in flops and bytes (see EfficiencyCurve).
        // The fixed time was fitted on GEMMs (tile prologue, tail wave): charged to kernels
        // that use the tensor or SIMT pipes, not to streaming element-wise kernels.
        let t0 = if t_compute_s > 0.0 {
            self.efficiency.kernel_t0_s
        } else {
            0.0
        };
        let time_s = (t0 + op.busy_s).max(self.launch_overhead_s);
        let energy_j = op.power_w * op.busy_s + self.idle_w * (time_s - op.busy_s);
        KernelCost {
            time_s,
            energy_j,
            clock_factor: op.clock_factor,
        }
    }

    /// Matmul a[m,k] @ b[k,n] at `prec` under `power_limit_w` [W] (<= 0 or NaN = TDP).
    /// FLOPs = 2mnk; bytes = the three matrices once.
    pub fn gemm(&self, m: f64, n: f64, k: f64, prec: Precision, power_limit_w: f64) -> KernelCost {
        let flops = 2.0 * m * n * k;
        let bytes = (m * k + k * n + m * n) * prec.bytes_per_element();
        self.kernel_scaled(flops, bytes, flops, 1.0, prec, power_limit_w)
    }

    /// Generic kernel of `flops` [FLOP] moving `bytes` [bytes]; its size for the efficiency
    /// curve is its own FLOP count (a matmul of equal work), the curve's native measure.
    pub fn kernel(
        &self,
        flops: f64,
        bytes: f64,
        prec: Precision,
        power_limit_w: f64,
    ) -> KernelCost {
        self.kernel_scaled(flops, bytes, flops, 1.0, prec, power_limit_w)
    }

    /// Pure memory-bound op (copy / elementwise) of `bytes` read + written.
    pub fn memory_op(&self, bytes: f64, power_limit_w: f64) -> KernelCost {
        self.kernel_scaled(0.0, bytes, 0.0, 1.0, Precision::Bf16, power_limit_w)
    }

    /// Causal flash attention forward + backward for `batch x heads x seq x head_dim`.
    /// FLOPs = 4*b*h*s^2*d/2 (causal half) forward, backward 2.5x forward; bytes = Q,K,V,O read
    /// and written across fwd+bwd (12 tensors of b*h*s*d). Efficiency from
    /// [`EfficiencyCurve::attention_eff`] of the work per (batch x head).
    pub fn attention_fwd_bwd(
        &self,
        batch: f64,
        heads: f64,
        seq: f64,
        head_dim: f64,
        prec: Precision,
        power_limit_w: f64,
    ) -> KernelCost {
        let fwd = 2.0 * batch * heads * seq * seq * head_dim;
        let flops = fwd * 3.5;
        let bytes = 12.0 * batch * heads * seq * head_dim * prec.bytes_per_element();
        let per_head = flops / (batch * heads).max(1.0);
        let eff = self.efficiency.attention_eff(per_head);
        self.kernel_at_eff(flops, bytes, eff, prec, power_limit_w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100() -> Accelerator {
        preset("h100").expect("h100 preset exists")
    }

    #[test]
    fn power_cap_saves_energy_and_costs_time_on_compute_bound_work() {
        let a = h100();
        let full = a.gemm(8192.0, 8192.0, 8192.0, Precision::Bf16, 700.0);
        let capped = a.gemm(8192.0, 8192.0, 8192.0, Precision::Bf16, 400.0);
        assert!(capped.time_s > full.time_s * 1.1, "{capped:?} vs {full:?}");
        assert!(
            capped.energy_j < full.energy_j * 0.97,
            "{capped:?} vs {full:?}"
        );
        assert!(capped.clock_factor < full.clock_factor);
        assert!(capped.mean_power_w() <= 400.0 + 1e-6);
    }

    #[test]
    fn memory_bound_op_is_barely_clock_sensitive() {
        let a = h100();
        let full = a.memory_op(4.0e9, 700.0);
        let capped = a.memory_op(4.0e9, 600.0);
        assert!((capped.time_s / full.time_s - 1.0).abs() < 0.02);
    }

    #[test]
    fn none_like_limits_mean_tdp_and_limits_are_clamped() {
        let a = h100();
        assert_eq!(a.effective_power_limit_w(f64::NAN), a.tdp_w);
        assert_eq!(a.effective_power_limit_w(0.0), a.tdp_w);
        assert_eq!(a.effective_power_limit_w(5000.0), a.tdp_w);
        assert_eq!(a.effective_power_limit_w(10.0), a.min_power_cap_w);
    }

    #[test]
    fn tiny_kernels_are_launch_bound_at_idle_power() {
        let a = h100();
        let c = a.gemm(16.0, 16.0, 16.0, Precision::Bf16, 0.0);
        assert!((c.time_s - a.launch_overhead_s).abs() < 1e-12);
        assert!(c.mean_power_w() < a.idle_w * 1.05);
    }

    // Issue 11: the old curve (exponent 2.78) priced a 5.9 GFLOP GEMM slower than a 15 GFLOP
    // one. Kernel time must never fall as FLOPs or bytes grow, on every preset, over 12 decades.
    #[test]
    fn kernel_time_is_monotone_in_flops_and_bytes() {
        for a in presets() {
            for (pl, prec) in [(0.0, Precision::Bf16), (300.0, Precision::Fp32)] {
                let mut last = [0.0f64; 4];
                let mut f = 1e3;
                while f < 1e16 {
                    let b = f / 50.0;
                    let t = [
                        a.kernel(f, 1e6, prec, pl).time_s,
                        a.kernel(1e6, b, prec, pl).time_s,
                        a.kernel(f, b, prec, pl).time_s,
                        a.gemm(f.cbrt(), f.cbrt(), f.cbrt(), prec, pl).time_s,
                    ];
                    for i in 0..4 {
                        assert!(
                            t[i] >= last[i] * (1.0 - 1e-12),
                            "{} case {i} at {f:e} FLOP: {} < {}",
                            a.key,
                            t[i],
                            last[i]
                        );
                    }
                    last = t;
                    f *= 1.07;
                }
                // The measured counter-example: 1024x2048x1408 (5.9 GFLOP) vs 128x4096x14336.
                let small = a.gemm(1024.0, 1408.0, 2048.0, prec, pl).time_s;
                let big = a.gemm(128.0, 14336.0, 4096.0, prec, pl).time_s;
                assert!(small <= big, "{}: {small} > {big}", a.key);
            }
        }
    }

    #[test]
    fn unsupported_precision_falls_back() {
        let a100 = preset("a100").expect("a100");
        assert_eq!(a100.peak_flops.effective(Precision::Fp8), Precision::Bf16);
        let v100 = preset("v100").expect("v100");
        assert_eq!(v100.peak_flops.effective(Precision::Bf16), Precision::Fp16);
    }

    #[test]
    fn sequence_combinator_adds_time_and_energy() {
        let a = KernelCost {
            time_s: 1.0,
            energy_j: 10.0,
            clock_factor: 1.0,
        };
        let b = KernelCost {
            time_s: 3.0,
            energy_j: 20.0,
            clock_factor: 0.5,
        };
        let c = a.then(b);
        assert_eq!(c.time_s, 4.0);
        assert_eq!(c.energy_j, 30.0);
        assert!((c.clock_factor - 0.625).abs() < 1e-12);
    }
}
