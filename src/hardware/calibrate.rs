//! Least-squares calibration of the H100 efficiency and power curves from the measured CSVs.

use std::collections::HashMap;
use std::path::Path;

use nalgebra::{DMatrix, DVector};

use super::kernels::{experts_fwd_bwd, router_fwd_bwd_with, ExpertKernel, ROUTER_SMALL_KERNELS};
use super::{Accelerator, HardwareError, Precision};

/// A CSV file as rows of named fields, with the 1-based line of each row.
struct Table {
    path: String,
    rows: Vec<(u64, HashMap<String, String>)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, HardwareError> {
        let p = path.display().to_string();
        let mut rdr = csv::Reader::from_path(path).map_err(|e| HardwareError::Io {
            path: p.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let headers = rdr
            .headers()
            .map_err(|e| csv_err(&p, 1, "header", &e.to_string()))?
            .clone();
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|q| q.line()).unwrap_or(0);
                csv_err(&p, line, "row", &e.to_string())
            })?;
            let line = rec.position().map(|q| q.line()).unwrap_or(0);
            let map = headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.trim().to_string()))
                .collect();
            rows.push((line, map));
        }
        Ok(Table { path: p, rows })
    }

    fn str<'a>(
        &self,
        row: &'a HashMap<String, String>,
        line: u64,
        f: &str,
    ) -> Result<&'a str, HardwareError> {
        row.get(f)
            .map(String::as_str)
            .ok_or_else(|| csv_err(&self.path, line, f, "column missing"))
    }

    fn num(&self, row: &HashMap<String, String>, line: u64, f: &str) -> Result<f64, HardwareError> {
        self.opt(row, line, f)?
            .ok_or_else(|| csv_err(&self.path, line, f, "empty; expected a finite number"))
    }

    fn opt(
        &self,
        row: &HashMap<String, String>,
        line: u64,
        f: &str,
    ) -> Result<Option<f64>, HardwareError> {
        let s = self.str(row, line, f)?;
        if s.is_empty() || s == "-" {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(csv_err(
                &self.path,
                line,
                f,
                &format!("'{s}' is not a finite number"),
            )),
        }
    }
}

fn csv_err(path: &str, line: u64, field: &str, message: &str) -> HardwareError {
    HardwareError::Csv {
        path: path.to_string(),
        line,
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// One row of micro.csv.
#[derive(Clone, Debug)]
pub struct MicroRow {
    /// Kernel kind ("idle", "gemm_bf16", "gemm_fp32", "copy_bf16", "silu_bf16").
    pub kind: String,
    /// Shape text ("MxKxN" for GEMMs).
    pub shape: String,
    /// Mean power from the energy counter [W].
    pub mean_w: f64,
    /// Mean sampled SM clock [MHz].
    pub mean_sm_mhz: f64,
    /// FLOPs per call [FLOP].
    pub flops: Option<f64>,
    /// Bytes per call [bytes].
    pub bytes: Option<f64>,
    /// Time per call [s].
    pub s_per_iter: Option<f64>,
    /// Energy per call [J].
    pub j_per_iter: Option<f64>,
}

impl MicroRow {
    /// GEMM dimensions (m, k, n) parsed from the shape, if this is a GEMM row.
    pub fn gemm_mkn(&self) -> Option<(f64, f64, f64)> {
        let mut it = self.shape.split('x').map(|s| s.parse::<f64>().ok());
        let (m, k, n) = (it.next()??, it.next()??, it.next()??);
        Some((m, k, n))
    }
}

/// Read micro.csv.
pub fn read_micro(path: &Path) -> Result<Vec<MicroRow>, HardwareError> {
    let t = Table::read(path)?;
    let mut out = Vec::with_capacity(t.rows.len());
    for (line, r) in &t.rows {
        out.push(MicroRow {
            kind: t.str(r, *line, "kind")?.to_string(),
            shape: t.str(r, *line, "shape")?.to_string(),
            mean_w: t.num(r, *line, "mean_w")?,
            mean_sm_mhz: t.num(r, *line, "mean_sm_mhz")?,
            flops: t.opt(r, *line, "flops")?,
            bytes: t.opt(r, *line, "bytes")?,
            s_per_iter: t.opt(r, *line, "s_per_iter")?,
            j_per_iter: t.opt(r, *line, "j_per_iter")?,
        });
    }
    Ok(out)
}

/// One row of attn.csv.
#[derive(Clone, Debug)]
pub struct AttnRow {
    /// Batch size.
    pub batch: f64,
    /// Sequence length [tokens].
    pub seq: f64,
    /// Attention heads.
    pub heads: f64,
    /// Head dimension.
    pub head_dim: f64,
    /// FLOPs per fwd+bwd (causal half, backward 2.5x forward) [FLOP].
    pub flops: f64,
    /// Mean sampled SM clock [MHz].
    pub mean_sm_mhz: f64,
    /// Time per fwd+bwd [s].
    pub s_per_iter: f64,
    /// Energy per fwd+bwd [J].
    pub j_per_iter: f64,
}

/// Read attn.csv.
pub fn read_attn(path: &Path) -> Result<Vec<AttnRow>, HardwareError> {
    let t = Table::read(path)?;
    let mut out = Vec::with_capacity(t.rows.len());
    for (line, r) in &t.rows {
        out.push(AttnRow {
            batch: t.num(r, *line, "batch")?,
            seq: t.num(r, *line, "seq")?,
            heads: t.num(r, *line, "heads")?,
            head_dim: t.num(r, *line, "head_dim")?,
            flops: t.num(r, *line, "flops")?,
            mean_sm_mhz: t.num(r, *line, "mean_sm_mhz")?,
            s_per_iter: t.num(r, *line, "s_per_iter")?,
            j_per_iter: t.num(r, *line, "j_per_iter")?,
        });
    }
    Ok(out)
}

/// One row of moe_layer.csv.
#[derive(Clone, Debug)]
pub struct MoeRow {
    /// Tokens in the layer's batch.
    pub tokens: f64,
    /// Model width.
    pub hidden: f64,
    /// Expert (or dense) FFN width.
    pub ffn: f64,
    /// Number of experts.
    pub experts: f64,
    /// Experts per token.
    pub top_k: f64,
    /// Routing distribution label.
    pub dist: String,
    /// "dropless", "capacity1.25", "routing_only" or "dense_equal_active".
    pub mode: String,
    /// Tokens assigned to each expert (empty when not applicable).
    pub counts: Vec<u32>,
    /// Time per fwd+bwd [s].
    pub s_per_iter: f64,
    /// Energy per fwd+bwd [J].
    pub j_per_iter: f64,
}

/// Read moe_layer.csv.
pub fn read_moe(path: &Path) -> Result<Vec<MoeRow>, HardwareError> {
    let t = Table::read(path)?;
    let mut out = Vec::with_capacity(t.rows.len());
    for (line, r) in &t.rows {
        let counts_s = t.str(r, *line, "counts")?;
        let mut counts = Vec::new();
        if !counts_s.is_empty() {
            for c in counts_s.split(';') {
                let v = c.trim().parse::<u32>().map_err(|_| {
                    csv_err(
                        &t.path,
                        *line,
                        "counts",
                        &format!("'{c}' is not a non-negative integer; expected e.g. 2009;2037"),
                    )
                })?;
                counts.push(v);
            }
        }
        out.push(MoeRow {
            tokens: t.num(r, *line, "tokens")?,
            hidden: t.num(r, *line, "hidden")?,
            ffn: t.num(r, *line, "ffn")?,
            experts: t.num(r, *line, "experts")?,
            top_k: t.num(r, *line, "top_k")?,
            dist: t.str(r, *line, "dist")?.to_string(),
            mode: t.str(r, *line, "mode")?.to_string(),
            counts,
            s_per_iter: t.num(r, *line, "s_per_iter")?,
            j_per_iter: t.num(r, *line, "j_per_iter")?,
        });
    }
    Ok(out)
}

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
    /// Knee exponent.
    pub exponent: f64,
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

/// Fit the H100 curves from micro.csv rows. `peak_bf16` and `peak_fp32` are the peaks at
/// `max_clock_mhz` [FLOP/s], `bw` the HBM bandwidth [bytes/s].
///
/// * idle power = the idle row; launch floor = the fastest GEMM call;
/// * efficiency `eff = achieved / (peak * clock/max)` of every GEMM that is not launch-bound
///   (time > 1.5x floor) fitted as `1/eff = 1/max_eff + (half/max_eff) * flops^-p`
///   (linear least squares per p, p on a 0.01 grid, residuals weighted to relative error);
/// * memory efficiency = copy bandwidth / datasheet bandwidth;
/// * power `P - idle = a_t * u_t * phi^gamma + a_m * u_m` over the same GEMMs and the copy
///   (linear least squares at the given clock exponent `gamma`, which these rows cannot identify:
///   every power-limited GEMM sits at 0.66-0.76 of max clock); the fp32 row gives the SIMT
///   coefficient and efficiency scale.
pub fn fit_h100(
    rows: &[MicroRow],
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
    // (flops, phi, eff, u_m, power above idle)
    let mut pts = Vec::new();
    for r in &gemms {
        let (f, t) = (r.flops.unwrap_or(0.0), r.s_per_iter.unwrap_or(0.0));
        if t <= 1.5 * launch {
            continue;
        }
        let phi = r.mean_sm_mhz / max_clock_mhz;
        let eff = f / t / (peak_bf16 * phi);
        let u_m = r.bytes.unwrap_or(0.0) / t / bw;
        pts.push((f, phi, eff, u_m, r.mean_w - idle_w));
    }
    if pts.len() < 4 {
        return Err(HardwareError::Fit(
            "need at least 4 busy gemm_bf16 rows".into(),
        ));
    }
    // Efficiency curve.
    let mut best: Option<(f64, f64, f64, f64)> = None; // (ssr, max_eff, half, p)
    let n = pts.len();
    let mut p = 0.5;
    while p <= 4.0 + 1e-9 {
        let x = DMatrix::from_fn(n, 2, |i, j| {
            let w = pts[i].2;
            if j == 0 {
                w
            } else {
                w * (pts[i].0 / 1e10).powf(-p)
            }
        });
        let y = DVector::from_element(n, 1.0); // w * (1/eff) with w = eff
        if let Some((b, ssr)) = lstsq(&x, &y) {
            if b[0] > 0.0 && b[1] > 0.0 && best.is_none_or(|bb| ssr < bb.0) {
                best = Some((ssr, 1.0 / b[0], 1e10 * (b[1] / b[0]).powf(1.0 / p), p));
            }
        }
        p += 0.01;
    }
    let (_, max_eff, half_flops, exponent) = best.ok_or_else(|| {
        HardwareError::Fit("efficiency curve fit found no positive solution".into())
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

    // Power: rows = busy GEMMs + copy, linear least squares for (a_t, a_m) at the given gamma.
    let m = n + 1;
    let x = DMatrix::from_fn(m, 2, |i, j| {
        if i < n {
            if j == 0 {
                pts[i].2 * pts[i].1.powf(gamma)
            } else {
                pts[i].3
            }
        } else if j == 0 {
            0.0
        } else {
            mem_eff
        }
    });
    let y = DVector::from_fn(m, |i, _| {
        if i < n {
            pts[i].4
        } else {
            copy.mean_w - idle_w
        }
    });
    let (b, _) =
        lstsq(&x, &y).ok_or_else(|| HardwareError::Fit("power least squares failed".into()))?;
    let (tensor_coef_w, mem_coef_w) = (b[0], b[1]);
    if tensor_coef_w <= 0.0 || mem_coef_w < 0.0 {
        return Err(HardwareError::Fit(format!(
            "power fit gave non-physical coefficients a_t={tensor_coef_w} a_m={mem_coef_w}"
        )));
    }

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
    let simt_coef_w = (fp32.mean_w - idle_w) / (u_s * phi.powf(gamma));
    Ok(MicroFit {
        idle_w,
        launch_overhead_s: launch,
        max_eff,
        half_flops,
        exponent,
        mem_eff,
        simt_eff_scale,
        tensor_coef_w,
        simt_coef_w,
        mem_coef_w,
        gamma,
    })
}

/// Copy a [`MicroFit`] into an accelerator's curves.
pub fn apply_micro_fit(acc: &mut Accelerator, f: &MicroFit) {
    acc.idle_w = f.idle_w;
    acc.launch_overhead_s = f.launch_overhead_s;
    acc.efficiency.max_eff = f.max_eff;
    acc.efficiency.half_flops = f.half_flops;
    acc.efficiency.exponent = f.exponent;
    acc.efficiency.mem_eff = f.mem_eff;
    acc.efficiency.simt_eff_scale = f.simt_eff_scale;
    acc.power.tensor_coef_w = f.tensor_coef_w;
    acc.power.simt_coef_w = f.simt_coef_w;
    acc.power.mem_coef_w = f.mem_coef_w;
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

/// Small-kernel launch count of the router, from the moe_layer.csv `routing_only` row: the
/// measured time minus the modelled gate GEMMs and gathers, over the launch floor.
pub fn fit_router_launches(acc: &Accelerator, rows: &[MoeRow]) -> Result<f64, HardwareError> {
    let r = rows
        .iter()
        .find(|r| r.mode == "routing_only")
        .ok_or_else(|| HardwareError::Fit("moe_layer.csv has no routing_only row".into()))?;
    let base = router_fwd_bwd_with(
        acc,
        r.tokens,
        r.hidden,
        r.experts,
        r.top_k,
        Precision::Bf16,
        0.0,
        0.0,
    );
    Ok(((r.s_per_iter - base.time_s) / acc.launch_overhead_s)
        .round()
        .max(0.0))
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
            .map(|r| {
                let e = experts_fwd_bwd(
                    &a,
                    &r.counts,
                    r.hidden,
                    r.ffn,
                    ExpertKernel::Loop,
                    None,
                    Precision::Bf16,
                    0.0,
                );
                let rt = router_fwd_bwd_with(
                    &a,
                    r.tokens,
                    r.hidden,
                    r.experts,
                    r.top_k,
                    Precision::Bf16,
                    0.0,
                    ROUTER_SMALL_KERNELS,
                );
                ((e.time_s + rt.time_s) / r.s_per_iter).ln().powi(2)
            })
            .sum()
    })
}

/// Everything fitted for the H100 preset from the directory holding micro.csv, attn.csv and
/// moe_layer.csv: (micro fit, router small-kernel count, attention (max, half), loop GEMM scale).
pub fn fit_h100_all(
    dir: &Path,
    base: &Accelerator,
) -> Result<(MicroFit, f64, (f64, f64), f64), HardwareError> {
    let micro = read_micro(&dir.join("micro.csv"))?;
    let peak_bf16 = base.peak_flops.bf16.unwrap_or(0.0);
    let peak_fp32 = base.peak_flops.fp32.unwrap_or(0.0);
    let f = fit_h100(
        &micro,
        peak_bf16,
        peak_fp32,
        base.hbm_bw_bytes_per_s,
        base.max_clock_mhz,
        base.power.gamma,
    )?;
    let mut acc = base.clone();
    apply_micro_fit(&mut acc, &f);
    let moe = read_moe(&dir.join("moe_layer.csv"))?;
    let launches = fit_router_launches(&acc, &moe)?;
    let attn = read_attn(&dir.join("attn.csv"))?;
    let attn_fit = fit_attention(&attn, peak_bf16, base.max_clock_mhz)?;
    let loop_scale = fit_loop_scale(&acc, &moe);
    Ok((f, launches, attn_fit, loop_scale))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::hardware::preset;
    use std::path::PathBuf;

    /// The shared data directory, from /work/main (`../shared/data`) or a worktree
    /// (`../../shared/data`).
    pub(crate) fn shared_data_dir() -> PathBuf {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let a = root.join("../shared/data");
        if a.is_dir() {
            a
        } else {
            root.join("../../shared/data")
        }
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-30)
    }

    #[test]
    fn preset_constants_match_a_fresh_fit_within_one_percent() {
        let h = preset("h100").expect("h100");
        let dir = shared_data_dir().join("h100");
        let (f, launches, attn, lp) = fit_h100_all(&dir, &h).expect("fit succeeds on shared data");
        println!("{f:?}\nrouter launches {launches}, attention {attn:?}, loop scale {lp}");
        let checks = [
            ("idle_w", h.idle_w, f.idle_w),
            (
                "launch_overhead_s",
                h.launch_overhead_s,
                f.launch_overhead_s,
            ),
            ("max_eff", h.efficiency.max_eff, f.max_eff),
            ("half_flops", h.efficiency.half_flops, f.half_flops),
            ("exponent", h.efficiency.exponent, f.exponent),
            ("mem_eff", h.efficiency.mem_eff, f.mem_eff),
            (
                "simt_eff_scale",
                h.efficiency.simt_eff_scale,
                f.simt_eff_scale,
            ),
            ("tensor_coef_w", h.power.tensor_coef_w, f.tensor_coef_w),
            ("simt_coef_w", h.power.simt_coef_w, f.simt_coef_w),
            ("mem_coef_w", h.power.mem_coef_w, f.mem_coef_w),
            ("router_small_kernels", ROUTER_SMALL_KERNELS, launches),
            ("attention_max_eff", h.efficiency.attention_max_eff, attn.0),
            (
                "attention_half_flops",
                h.efficiency.attention_half_flops,
                attn.1,
            ),
            ("loop_gemm_eff_scale", h.efficiency.loop_gemm_eff_scale, lp),
        ];
        for (name, constant, fitted) in checks {
            assert!(
                close(constant, fitted, 0.01),
                "{name}: preset {constant} vs fit {fitted}"
            );
        }
    }

    #[test]
    fn bad_number_names_file_line_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("micro.csv");
        std::fs::write(&p, "kind,shape,mean_w,mean_sm_mhz,flops,bytes,s_per_iter,j_per_iter\nidle,-,abc,1980,,,,\n")
            .expect("write");
        let msg = read_micro(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("micro.csv:2") && msg.contains("mean_w") && msg.contains("abc"),
            "{msg}"
        );
    }

    #[test]
    fn bad_counts_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("moe.csv");
        std::fs::write(
            &p,
            "tokens,hidden,ffn,experts,top_k,dist,mode,counts,s_per_iter,j_per_iter\n8,4,4,2,1,u,dropless,3;x,0.1,1\n",
        )
        .expect("write");
        let msg = read_moe(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains(":2") && msg.contains("counts") && msg.contains("'x'"),
            "{msg}"
        );
    }
}
