//! The fit: least squares of the efficiency and power curves to the measurement rows (nalgebra).

use nalgebra::{DMatrix, DVector};

use super::data::{AttnRow, CalibrationData, MicroRow, MoeRow};
use crate::hardware::kernels::{experts_fwd_bwd, ExpertKernel};
use crate::hardware::{
    moe_layer_router_price, Accelerator, HardwareError, Precision, PriceKnobs, PricedOp,
};
use crate::workload::step_ops::RouterKernel;

/// Output elements of one GEMM tile: 128 x 256, the usual Hopper bf16 cuBLAS/CUTLASS tile
/// (assumed; the exact tile is cuBLAS's heuristic choice).
const GEMM_TILE_ELEMS: f64 = 128.0 * 256.0;
/// Streaming multiprocessors of the calibrated GPU: 132 (../shared/data/h100/env.json `sm_count`).
const SM_COUNT: f64 = 132.0;

/// Coefficients fitted from micro.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct MicroFit {
    /// Idle power [W].
    pub idle_w: f64,
    /// Fastest GEMM call = host issue floor [s].
    pub launch_overhead_s: f64,
    /// Asymptotic GEMM efficiency.
    pub max_eff: f64,
    /// Work at half efficiency [FLOP].
    pub half_flops: f64,
    /// Knee exponent (at most 1).
    pub exponent: f64,
    /// Fixed device time per kernel [s].
    pub kernel_t0_s: f64,
    /// Copy bandwidth efficiency.
    pub mem_eff: f64,
    /// fp32 SIMT efficiency relative to the tensor curve.
    pub simt_eff_scale: f64,
    /// Tensor dynamic power coefficient [W].
    pub tensor_coef_w: f64,
    /// SIMT dynamic power coefficient [W].
    pub simt_coef_w: f64,
    /// Memory dynamic power coefficient [W].
    pub mem_coef_w: f64,
    /// SM-activity power of a kernel occupying every SM at maximum clock [W].
    pub sm_active_coef_w: f64,
    /// Clock exponent of dynamic power.
    pub gamma: f64,
}

/// Least squares `y ~ X b` (no weights) with nalgebra; returns b and the residual sum of squares.
fn lstsq(x: &DMatrix<f64>, y: &DVector<f64>) -> Option<(DVector<f64>, f64)> {
    let svd = x.clone().svd(true, true);
    let b = svd.solve(y, 1e-12).ok()?;
    let r = x * &b - y;
    Some((b, r.norm_squared()))
}

/// Least squares with every coefficient >= 0: the best of the unconstrained fits over every
/// subset of columns whose solution is non-negative (exact for the three columns used here).
fn nonneg_lstsq(x: &DMatrix<f64>, y: &DVector<f64>) -> Option<(DVector<f64>, f64)> {
    let cols = x.ncols();
    let mut best: Option<(DVector<f64>, f64)> = None;
    for mask in 1u32..(1 << cols) {
        let keep: Vec<usize> = (0..cols).filter(|j| mask & (1 << j) != 0).collect();
        let sub = DMatrix::from_fn(x.nrows(), keep.len(), |i, j| x[(i, keep[j])]);
        let Some((b, ssr)) = lstsq(&sub, y) else {
            continue;
        };
        if b.iter().any(|v| *v < 0.0) || best.as_ref().is_some_and(|bb| bb.1 <= ssr) {
            continue;
        }
        let mut full = DVector::zeros(cols);
        for (j, &c) in keep.iter().enumerate() {
            full[c] = b[j];
        }
        best = Some((full, ssr));
    }
    best
}

/// Fit the efficiency and power curves to micro.csv rows (the H100 format). `peak_bf16` and `peak_fp32` are the peaks at
/// `max_clock_mhz` [FLOP/s], `bw` the HBM bandwidth [bytes/s].
///
/// * idle power = the idle row; launch floor = the fastest GEMM call;
/// * every GEMM that is not launch-bound (time > 1.5x floor) fitted as
///   `t = t0 + flops / (peak * clock/max * eff(flops))`, `eff = max_eff / (1 + (half/flops)^p)`,
///   p in (0, 1] so time is monotone in work (linear least squares in (t0, 1/max_eff, ...) per p,
///   p on a 0.01 grid, residuals weighted to relative error);
/// * memory efficiency = copy bandwidth / datasheet bandwidth;
/// * power `P - idle = (a_sm * s + a_t * u_t) * phi^gamma + a_m * u_m` over the same GEMMs, the
///   copy and the `attn` rows (flash attention fills every SM at a low tensor rate: without those
///   rows `a_sm` and `a_t` are nearly collinear), each at its measured clock and rates, `s` the
///   GEMM's SM fill from the size curve (1 for copy and attention); non-negative linear least
///   squares at the given clock exponent `gamma`, which these rows cannot identify (every
///   power-limited GEMM sits at 0.66-0.76 of max clock); the fp32 row gives the SIMT
///   coefficient (above its SM-activity power) and efficiency scale.
pub fn fit_micro(
    rows: &[MicroRow],
    attn: &[AttnRow],
    peak_bf16: f64,
    peak_fp32: f64,
    bw: f64,
    max_clock_mhz: f64,
    gamma: f64,
) -> Result<MicroFit, HardwareError> {
    let idle_w = rows
        .iter()
        .find(|r| r.kind == "idle")
        .map(|r| r.mean_w)
        .ok_or_else(|| HardwareError::Fit("micro.csv has no 'idle' row".into()))?;
    let gemms: Vec<&MicroRow> = rows
        .iter()
        .filter(|r| r.kind == "gemm_bf16" && r.flops.is_some() && r.s_per_iter.is_some())
        .collect();
    let launch = gemms
        .iter()
        .filter_map(|r| r.s_per_iter)
        .fold(f64::INFINITY, f64::min);
    if !launch.is_finite() {
        return Err(HardwareError::Fit(
            "micro.csv has no gemm_bf16 rows with timings".into(),
        ));
    }
    // (flops, phi, eff, u_m, power above idle, time)
    let mut pts = Vec::new();
    for r in &gemms {
        let (f, t) = (r.flops.unwrap_or(0.0), r.s_per_iter.unwrap_or(0.0));
        if t <= 1.5 * launch {
            continue;
        }
        // A GEMM with fewer output tiles than SMs runs one partial wave: its efficiency is set
        // by its shape, not its work, and a work-based curve cannot follow it (the measured
        // 128x4096x14336 call, 15 GFLOP, is slower than the 23.6 GFLOP 4096x2048x1408 one).
        if let Some((m, _, nn)) = r.gemm_mkn() {
            if m * nn / GEMM_TILE_ELEMS < SM_COUNT {
                continue;
            }
        }
        let phi = r.mean_sm_mhz / max_clock_mhz;
        let eff = f / t / (peak_bf16 * phi);
        let u_m = r.bytes.unwrap_or(0.0) / t / bw;
        pts.push((f, phi, eff, u_m, r.mean_w - idle_w, t));
    }
    if pts.len() < 4 {
        return Err(HardwareError::Fit(
            "need at least 4 busy gemm_bf16 rows".into(),
        ));
    }
    // Efficiency curve and fixed kernel time: for each knee exponent p on a 0.01 grid in
    // [0.05, 1] (p <= 1 keeps time monotone in work), `t = t0 + a*x + b*x*(1e10/f)^p` with
    // `x = f/(peak*phi)`, `a = 1/max_eff`, `b = (half/1e10)^p/max_eff` is linear in (t0, a, b);
    // least squares on relative time error, the best p with t0, a, b >= 0 kept.
    let mut best: Option<(f64, f64, f64, f64, f64)> = None; // (ssr, max_eff, half, p, t0)
    let n = pts.len();
    let mut p = 0.05;
    while p <= 1.0 + 1e-9 {
        let row = |i: usize| {
            let (f, phi, t) = (pts[i].0, pts[i].1, pts[i].5);
            let x = f / (peak_bf16 * phi);
            (1.0 / t, x / t, x * (1e10 / f).powf(p) / t)
        };
        let x = DMatrix::from_fn(n, 3, |i, j| {
            let r = row(i);
            [r.0, r.1, r.2][j]
        });
        let y = DVector::from_element(n, 1.0);
        if let Some((b, ssr)) = nonneg_lstsq(&x, &y) {
            if b[1] > 0.0 && best.is_none_or(|bb| ssr < bb.0) {
                let half = if b[2] > 0.0 {
                    1e10 * (b[2] / b[1]).powf(1.0 / p)
                } else {
                    0.0
                };
                best = Some((ssr, 1.0 / b[1], half, p, b[0]));
            }
        }
        p += 0.01;
    }
    let (_, max_eff, half_flops, exponent, kernel_t0_s) = best.ok_or_else(|| {
        HardwareError::Fit("efficiency curve fit found no non-negative solution".into())
    })?;
    let eff_at = |f: f64| max_eff / (1.0 + (half_flops / f).powf(exponent));

    let copy = rows
        .iter()
        .find(|r| r.kind == "copy_bf16")
        .ok_or_else(|| HardwareError::Fit("micro.csv has no 'copy_bf16' row".into()))?;
    let (cb, ct) = (copy.bytes.unwrap_or(0.0), copy.s_per_iter.unwrap_or(0.0));
    if cb <= 0.0 || ct <= 0.0 {
        return Err(HardwareError::Fit(
            "copy_bf16 row lacks bytes or s_per_iter".into(),
        ));
    }
    let mem_eff = cb / ct / bw;

    // Power: busy GEMMs + copy + attention rows, `P - idle = (a_sm*s + a_t*u_t)*phi^gamma + a_m*u_m`
    // at each row's measured clock and rates (see `power_rows`), non-negative least squares on
    // relative error (every row counts alike, whatever its wattage).
    let mut prow: Vec<PowerRow> = pts
        .iter()
        .map(|p| PowerRow {
            fill: (eff_at(p.0) / max_eff).clamp(0.0, 1.0),
            phi: p.1,
            u_t: p.2,
            u_m: p.3,
            dyn_w: p.4,
        })
        .collect();
    prow.push(PowerRow {
        fill: 1.0,
        phi: copy.mean_sm_mhz / max_clock_mhz,
        u_t: 0.0,
        u_m: mem_eff,
        dyn_w: copy.mean_w - idle_w,
    });
    prow.extend(attn_power_rows(attn, idle_w, peak_bf16, bw, max_clock_mhz));
    let (sm_active_coef_w, tensor_coef_w, mem_coef_w) = fit_power_rows(&prow, gamma)?;

    let fp32 = rows
        .iter()
        .find(|r| r.kind == "gemm_fp32")
        .ok_or_else(|| HardwareError::Fit("micro.csv has no 'gemm_fp32' row".into()))?;
    let (ff, ft) = (fp32.flops.unwrap_or(0.0), fp32.s_per_iter.unwrap_or(0.0));
    if ff <= 0.0 || ft <= 0.0 {
        return Err(HardwareError::Fit(
            "gemm_fp32 row lacks flops or s_per_iter".into(),
        ));
    }
    let phi = fp32.mean_sm_mhz / max_clock_mhz;
    let u_s = ff / ft / (peak_fp32 * phi);
    let simt_eff_scale = u_s / eff_at(ff);
    let fill = (eff_at(ff) / max_eff).clamp(0.0, 1.0);
    let simt_coef_w = (fp32.mean_w - idle_w - sm_active_coef_w * fill * phi.powf(gamma))
        / (u_s * phi.powf(gamma));
    if simt_coef_w <= 0.0 {
        return Err(HardwareError::Fit(format!(
            "gemm_fp32 row draws less than the SM-activity power alone: simt coefficient {simt_coef_w}"
        )));
    }
    Ok(MicroFit {
        idle_w,
        launch_overhead_s: launch,
        max_eff,
        half_flops,
        exponent,
        kernel_t0_s,
        mem_eff,
        simt_eff_scale,
        tensor_coef_w,
        simt_coef_w,
        mem_coef_w,
        sm_active_coef_w,
        gamma,
    })
}

/// One measured row of the power fit: a kernel at its measured clock and rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerRow {
    /// Fraction of SMs the kernel occupies (GEMMs: the size curve over its asymptote).
    pub fill: f64,
    /// Measured SM clock over maximum [fraction].
    pub phi: f64,
    /// Achieved fraction of tensor peak at the measured clock.
    pub u_t: f64,
    /// Achieved fraction of HBM bandwidth.
    pub u_m: f64,
    /// Measured mean power above idle [W].
    pub dyn_w: f64,
}

impl PowerRow {
    /// Modelled power above idle for coefficients `(a_sm, a_t, a_m)` at clock exponent `gamma` [W].
    pub fn model_w(&self, c: (f64, f64, f64), gamma: f64) -> f64 {
        let g = self.phi.powf(gamma);
        (c.0 * self.fill + c.1 * self.u_t) * g + c.2 * self.u_m
    }
}

/// Power rows of attn.csv: causal flash attention fwd+bwd fills every SM; its tensor rate is
/// the row's FLOPs over its time, its HBM traffic the 12 tensors of `b*h*s*d` bf16 elements that
/// [`crate::hardware::Accelerator::attention_fwd_bwd`] charges.
pub fn attn_power_rows(
    rows: &[AttnRow],
    idle_w: f64,
    peak_bf16: f64,
    bw: f64,
    max_clock_mhz: f64,
) -> Vec<PowerRow> {
    rows.iter()
        .filter(|r| r.s_per_iter > 0.0 && r.mean_sm_mhz > 0.0)
        .map(|r| {
            let phi = r.mean_sm_mhz / max_clock_mhz;
            let bytes =
                12.0 * r.batch * r.heads * r.seq * r.head_dim * Precision::Bf16.bytes_per_element();
            PowerRow {
                fill: 1.0,
                phi,
                u_t: r.flops / r.s_per_iter / (peak_bf16 * phi),
                u_m: bytes / r.s_per_iter / bw,
                dyn_w: r.j_per_iter / r.s_per_iter - idle_w,
            }
        })
        .collect()
}

/// Fit `(sm_active_coef_w, tensor_coef_w, mem_coef_w)` [W] to `rows` at clock exponent `gamma`:
/// non-negative least squares on relative error of the power above idle.
pub fn fit_power_rows(rows: &[PowerRow], gamma: f64) -> Result<(f64, f64, f64), HardwareError> {
    let rows: Vec<&PowerRow> = rows.iter().filter(|r| r.dyn_w > 0.0).collect();
    if rows.len() < 3 {
        return Err(HardwareError::Fit(format!(
            "power fit needs at least 3 rows drawing above idle, got {}",
            rows.len()
        )));
    }
    let x = DMatrix::from_fn(rows.len(), 3, |i, j| {
        let r = rows[i];
        let g = r.phi.powf(gamma);
        [r.fill * g, r.u_t * g, r.u_m][j] / r.dyn_w
    });
    let y = DVector::from_element(rows.len(), 1.0);
    let (b, _) = nonneg_lstsq(&x, &y)
        .ok_or_else(|| HardwareError::Fit("power least squares failed".into()))?;
    if b[1] <= 0.0 {
        return Err(HardwareError::Fit(format!(
            "power fit gave no tensor power: a_sm={} a_t={} a_m={}",
            b[0], b[1], b[2]
        )));
    }
    Ok((b[0], b[1], b[2]))
}

/// Copy a [`MicroFit`] into an accelerator's curves.
pub fn apply_micro_fit(acc: &mut Accelerator, f: &MicroFit) {
    acc.idle_w = f.idle_w;
    acc.launch_overhead_s = f.launch_overhead_s;
    acc.efficiency.max_eff = f.max_eff;
    acc.efficiency.half_flops = f.half_flops;
    acc.efficiency.exponent = f.exponent;
    acc.efficiency.kernel_t0_s = f.kernel_t0_s;
    acc.efficiency.mem_eff = f.mem_eff;
    acc.efficiency.simt_eff_scale = f.simt_eff_scale;
    acc.power.tensor_coef_w = f.tensor_coef_w;
    acc.power.simt_coef_w = f.simt_coef_w;
    acc.power.mem_coef_w = f.mem_coef_w;
    acc.power.sm_active_coef_w = f.sm_active_coef_w;
    acc.power.gamma = f.gamma;
}

/// Minimise `sum ln(model/measured)^2` over `x` on a grid in `[lo, hi]` with step `step`.
fn grid_min(lo: f64, hi: f64, step: f64, mut err: impl FnMut(f64) -> f64) -> f64 {
    let (mut best_x, mut best_e) = (lo, f64::INFINITY);
    let mut x = lo;
    while x <= hi + 1e-12 {
        let e = err(x);
        if e < best_e {
            best_e = e;
            best_x = x;
        }
        x += step;
    }
    best_x
}

/// Indexed row-move efficiency (fraction of HBM bandwidth of permute / gather / scatter-add
/// kernels) that makes the eager router and permutation of the operation list, priced on `acc`,
/// take the measured time of the moe_layer.csv `routing_only` row (bisection; capped at the
/// streaming `mem_eff`, floored at 0.5 %).
pub fn fit_index_mem_eff(acc: &Accelerator, rows: &[MoeRow]) -> Result<f64, HardwareError> {
    let r = rows
        .iter()
        .find(|r| r.mode == "routing_only")
        .ok_or_else(|| HardwareError::Fit("moe_layer.csv has no routing_only row".into()))?;
    let mut a = acc.clone();
    let mut time_at = |eff: f64| {
        a.efficiency.index_mem_eff = eff;
        router_price(&a, r).time_s
    };
    let (mut lo, mut hi) = (0.005, acc.efficiency.mem_eff);
    if time_at(hi) >= r.s_per_iter {
        return Ok(hi);
    }
    if time_at(lo) <= r.s_per_iter {
        return Ok(lo);
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if time_at(mid) > r.s_per_iter {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// The eager router + permutation of a moe_layer.csv row's shape, priced from the op list.
pub(crate) fn router_price(acc: &Accelerator, r: &MoeRow) -> PricedOp {
    moe_layer_router_price(
        acc,
        r.tokens,
        r.hidden,
        r.experts,
        r.top_k,
        RouterKernel::Eager,
        &PriceKnobs {
            power_limit_w: 0.0,
            precision: Precision::Bf16,
        },
    )
}

/// A measured dropless MoE-layer row as modelled: loop-issued experts at the row's loads, then the
/// router (the calibration's fit and its residuals read the same model).
pub(crate) fn dropless_layer(acc: &Accelerator, r: &MoeRow) -> crate::hardware::KernelCost {
    experts_fwd_bwd(
        acc,
        &r.counts,
        r.hidden,
        r.ffn,
        ExpertKernel::Loop,
        None,
        Precision::Bf16,
        0.0,
    )
    .then(router_price(acc, r).as_cost())
}

/// Attention efficiency curve `(max_eff, half_flops_per_head)`: measured efficiency
/// `flops / time / (peak * clock/max)` of every attn.csv row fitted as
/// `1/eff = 1/max + (half/max) / (flops/(batch*heads))` by linear least squares (relative weights).
pub fn fit_attention(
    rows: &[AttnRow],
    peak_bf16: f64,
    max_clock_mhz: f64,
) -> Result<(f64, f64), HardwareError> {
    if rows.len() < 2 {
        return Err(HardwareError::Fit("attn.csv needs at least 2 rows".into()));
    }
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| {
            let eff = r.flops / r.s_per_iter / (peak_bf16 * r.mean_sm_mhz / max_clock_mhz);
            (r.flops / (r.batch * r.heads) / 1e9, eff)
        })
        .collect();
    let x = DMatrix::from_fn(pts.len(), 2, |i, j| {
        if j == 0 {
            pts[i].1
        } else {
            pts[i].1 / pts[i].0
        }
    });
    let y = DVector::from_element(pts.len(), 1.0);
    let (b, _) =
        lstsq(&x, &y).ok_or_else(|| HardwareError::Fit("attention least squares failed".into()))?;
    if b[0] <= 0.0 || b[1] <= 0.0 {
        return Err(HardwareError::Fit(format!(
            "attention fit non-physical: {b:?}"
        )));
    }
    Ok((1.0 / b[0], 1e9 * b[1] / b[0]))
}

/// Loop-issued expert GEMM efficiency scale: least squares on ln(time) over the moe_layer.csv
/// `dropless` rows, modelled as Loop experts plus the router.
pub fn fit_loop_scale(acc: &Accelerator, rows: &[MoeRow]) -> f64 {
    let mut a = acc.clone();
    grid_min(0.1, 1.5, 0.0005, |s| {
        a.efficiency.loop_gemm_eff_scale = s;
        rows.iter()
            .filter(|r| r.mode == "dropless")
            .map(|r| (dropless_layer(&a, r).time_s / r.s_per_iter).ln().powi(2))
            .sum()
    })
}

/// What [`fit`] produced: the fitted preset and the coefficients behind it.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The fitted preset.
    pub accelerator: Accelerator,
    /// Coefficients fitted from the micro-benchmark file.
    pub micro: MicroFit,
    /// Attention curve `(max_eff, half_flops_per_head [FLOP])`, if an attention file was given.
    pub attention: Option<(f64, f64)>,
    /// Loop-issued expert GEMM efficiency scale, if an MoE-layer file was given.
    pub loop_scale: Option<f64>,
    /// Indexed row-move efficiency fitted from the MoE-layer file's `routing_only` row.
    pub index_mem_eff: Option<f64>,
}

/// Fit `base`'s efficiency and power coefficients to `data`: micro-benchmarks always, attention
/// and MoE-layer rows when given. Peaks, bandwidth, clock and the clock exponent come from
/// `base`; the result is named `key` and its sources name the files fitted.
pub fn fit(base: &Accelerator, key: &str, data: &CalibrationData) -> Result<Fitted, HardwareError> {
    let peak_bf16 = base
        .peak_flops
        .bf16
        .or(base.peak_flops.fp16)
        .ok_or_else(|| {
            HardwareError::Fit(format!("base preset {} has no bf16/fp16 peak", base.key))
        })?;
    let peak_fp32 = base
        .peak_flops
        .fp32
        .ok_or_else(|| HardwareError::Fit(format!("base preset {} has no fp32 peak", base.key)))?;
    let micro = fit_micro(
        &data.micro.rows,
        data.attn.as_ref().map_or(&[][..], |m| &m.rows[..]),
        peak_bf16,
        peak_fp32,
        base.hbm_bw_bytes_per_s,
        base.max_clock_mhz,
        base.power.gamma,
    )?;
    let mut acc = base.clone();
    apply_micro_fit(&mut acc, &micro);
    acc.key = key.to_string();
    acc.sources.push(format!(
        "idle, launch floor, GEMM efficiency and power coefficients fitted by `moesim calibrate` from {}",
        data.micro.path.display()
    ));
    let attention = match &data.attn {
        Some(m) => {
            let a = fit_attention(&m.rows, peak_bf16, base.max_clock_mhz)?;
            acc.efficiency.attention_max_eff = a.0;
            acc.efficiency.attention_half_flops = a.1;
            acc.sources.push(format!(
                "attention efficiency curve fitted from {}",
                m.path.display()
            ));
            Some(a)
        }
        None => None,
    };
    let (loop_scale, index_mem_eff) = match &data.moe {
        Some(m) => {
            let ix = fit_index_mem_eff(&acc, &m.rows)?;
            acc.efficiency.index_mem_eff = ix;
            let s = fit_loop_scale(&acc, &m.rows);
            acc.efficiency.loop_gemm_eff_scale = s;
            acc.sources.push(format!(
                "indexed row-move efficiency (router, permute) and loop-issued expert GEMM efficiency scale fitted from {}",
                m.path.display()
            ));
            (Some(s), Some(ix))
        }
        None => (None, None),
    };
    Ok(Fitted {
        accelerator: acc,
        micro,
        attention,
        loop_scale,
        index_mem_eff,
    })
}
