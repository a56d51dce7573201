//! The residuals: a preset's modelled time and energy against every measured row.

use super::data::{AttnRow, CalibrationData, MicroRow, MoeRow};
use crate::hardware::kernels::{experts_fwd_bwd, ExpertKernel};
use crate::hardware::{Accelerator, KernelCost, Precision};

/// Which measurement a residual row belongs to (its group decides the tolerance used by validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowGroup {
    /// The idle row (time fixed at 1 s, energy = idle power × 1 s).
    Idle,
    /// A bf16 GEMM with M ≥ 4096 (compute-bound, not launch-bound).
    LargeGemm,
    /// Another GEMM (small, launch-bound, or fp32).
    OtherGemm,
    /// The memory-bound copy.
    Copy,
    /// Another memory-bound kernel (SiLU).
    OtherMemory,
    /// Causal flash attention forward + backward.
    Attention,
    /// One MoE layer, dropless, experts issued from a per-expert loop.
    MoeDropless,
    /// One MoE layer with capacity factor 1.25 (padded batched matmul).
    MoeCapacity,
    /// Router only, or the dense equal-active FFN (reported, not held to a tolerance).
    MoeOther,
}

/// One measured row against the model.
#[derive(Debug, Clone)]
pub struct Residual {
    /// Source file name (e.g. `micro.csv`).
    pub file: String,
    /// Row label (kind and shape).
    pub label: String,
    /// Group of the row.
    pub group: RowGroup,
    /// Measured time per call [s].
    pub measured_s: f64,
    /// Modelled time per call [s].
    pub model_s: f64,
    /// Measured energy per call [J].
    pub measured_j: f64,
    /// Modelled energy per call [J].
    pub model_j: f64,
}

impl Residual {
    /// Relative time error (model − measured) / measured [fraction].
    pub fn time_err(&self) -> f64 {
        (self.model_s - self.measured_s) / self.measured_s
    }
    /// Relative energy error (model − measured) / measured [fraction].
    pub fn energy_err(&self) -> f64 {
        (self.model_j - self.measured_j) / self.measured_j
    }
}

/// Model against every row of micro.csv.
pub fn micro_residuals(acc: &Accelerator, rows: &[MicroRow]) -> Vec<Residual> {
    let mut out = Vec::new();
    for r in rows {
        let label = format!("{} {}", r.kind, r.shape);
        let push = |out: &mut Vec<Residual>, group, c: KernelCost, t: f64, e: f64| {
            out.push(Residual {
                file: "micro.csv".into(),
                label: label.clone(),
                group,
                measured_s: t,
                model_s: c.time_s,
                measured_j: e,
                model_j: c.energy_j,
            })
        };
        match r.kind.as_str() {
            "idle" => {
                let c = KernelCost {
                    time_s: 1.0,
                    energy_j: acc.idle_w,
                    clock_factor: 1.0,
                };
                push(&mut out, RowGroup::Idle, c, 1.0, r.mean_w);
            }
            "gemm_bf16" | "gemm_fp32" => {
                let (Some((m, k, n)), Some(t), Some(e)) =
                    (r.gemm_mkn(), r.s_per_iter, r.j_per_iter)
                else {
                    continue;
                };
                let bf16 = r.kind == "gemm_bf16";
                let prec = if bf16 {
                    Precision::Bf16
                } else {
                    Precision::Fp32
                };
                let group = if bf16 && m >= 4096.0 {
                    RowGroup::LargeGemm
                } else {
                    RowGroup::OtherGemm
                };
                push(&mut out, group, acc.gemm(m, n, k, prec, 0.0), t, e);
            }
            "copy_bf16" | "silu_bf16" => {
                let (Some(b), Some(t), Some(e)) = (r.bytes, r.s_per_iter, r.j_per_iter) else {
                    continue;
                };
                let group = if r.kind == "copy_bf16" {
                    RowGroup::Copy
                } else {
                    RowGroup::OtherMemory
                };
                push(&mut out, group, acc.memory_op(b, 0.0), t, e);
            }
            _ => {}
        }
    }
    out
}

/// Model against every row of attn.csv.
pub fn attn_residuals(acc: &Accelerator, rows: &[AttnRow]) -> Vec<Residual> {
    rows.iter()
        .map(|r| {
            let c =
                acc.attention_fwd_bwd(r.batch, r.heads, r.seq, r.head_dim, Precision::Bf16, 0.0);
            Residual {
                file: "attn.csv".into(),
                label: format!("b{} s{} h{} d{}", r.batch, r.seq, r.heads, r.head_dim),
                group: RowGroup::Attention,
                measured_s: r.s_per_iter,
                model_s: c.time_s,
                measured_j: r.j_per_iter,
                model_j: c.energy_j,
            }
        })
        .collect()
}

/// Model against every row of moe_layer.csv (experts + router, as `hardware::validation` does).
pub fn moe_residuals(acc: &Accelerator, rows: &[MoeRow]) -> Vec<Residual> {
    let mut out = Vec::new();
    for r in rows {
        let router = super::fit::router_price(acc, r).as_cost();
        let (group, c) = match r.mode.as_str() {
            "dropless" => (RowGroup::MoeDropless, super::fit::dropless_layer(acc, r)),
            "capacity1.25" => {
                let cap = (1.25 * r.tokens * r.top_k / r.experts).ceil() as u32;
                (
                    RowGroup::MoeCapacity,
                    experts_fwd_bwd(
                        acc,
                        &r.counts,
                        r.hidden,
                        r.ffn,
                        ExpertKernel::Padded,
                        Some(cap),
                        Precision::Bf16,
                        0.0,
                    )
                    .then(router),
                )
            }
            "routing_only" => (RowGroup::MoeOther, router),
            _ => (
                RowGroup::MoeOther,
                experts_fwd_bwd(
                    acc,
                    &[r.tokens as u32],
                    r.hidden,
                    r.ffn,
                    ExpertKernel::Grouped,
                    None,
                    Precision::Bf16,
                    0.0,
                ),
            ),
        };
        out.push(Residual {
            file: "moe_layer.csv".into(),
            label: format!("{} {}", r.dist, r.mode),
            group,
            measured_s: r.s_per_iter,
            model_s: c.time_s,
            measured_j: r.j_per_iter,
            model_j: c.energy_j,
        });
    }
    out
}

/// Residuals of `acc` against every row of `data` (micro, then attention, then MoE layer).
pub fn residuals(acc: &Accelerator, data: &CalibrationData) -> Vec<Residual> {
    let mut out = micro_residuals(acc, &data.micro.rows);
    if let Some(m) = &data.attn {
        out.extend(attn_residuals(acc, &m.rows));
    }
    if let Some(m) = &data.moe {
        out.extend(moe_residuals(acc, &m.rows));
    }
    out
}

/// Residuals as a text table (one row per measurement, errors in percent).
pub fn residual_table(rows: &[Residual]) -> String {
    let mut s = format!(
        "{:<14} {:<36} {:>11} {:>11} {:>8} {:>11} {:>11} {:>8}\n",
        "file", "row", "t_meas[s]", "t_model[s]", "err", "E_meas[J]", "E_model[J]", "err"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<14} {:<36} {:>11.4e} {:>11.4e} {:>+7.1}% {:>11.4e} {:>11.4e} {:>+7.1}%\n",
            r.file,
            r.label,
            r.measured_s,
            r.model_s,
            100.0 * r.time_err(),
            r.measured_j,
            r.model_j,
            100.0 * r.energy_err()
        ));
    }
    s
}
