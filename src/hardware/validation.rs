//! Calibration tests: the H100 preset against the measured rows in ../shared/data/h100.

use super::calibrate::tests::shared_data_dir;
use super::calibrate::{read_attn, read_micro, read_moe};
use super::kernels::{experts_fwd_bwd, router_fwd_bwd, ExpertKernel};
use super::{preset, Accelerator, KernelCost, Precision};

fn h100() -> Accelerator {
    preset("h100").expect("h100 preset")
}

fn err_pct(model: f64, measured: f64) -> f64 {
    100.0 * (model - measured) / measured
}

/// Print one table row and return (time error %, energy error %).
fn row(label: &str, c: KernelCost, t: f64, e: f64) -> (f64, f64) {
    let (et, ee) = (err_pct(c.time_s, t), err_pct(c.energy_j, e));
    println!(
        "{label:<34} {:>11.4e} {:>11.4e} {:>+7.1}% | {:>10.4e} {:>10.4e} {:>+7.1}% | clk {:.3}",
        t, c.time_s, et, e, c.energy_j, ee, c.clock_factor
    );
    (et, ee)
}

fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<34} {:>11} {:>11} {:>8} | {:>10} {:>10} {:>8}",
        "row", "t_meas[s]", "t_model[s]", "err", "E_meas[J]", "E_model[J]", "err"
    );
}

#[test]
fn micro_rows_large_gemm_idle_and_copy_match_measurements() {
    let a = h100();
    let rows = read_micro(&shared_data_dir().join("h100/micro.csv")).expect("micro.csv");
    header("micro.csv (H100, 700 W)");
    let mut failures = Vec::new();
    for r in &rows {
        let label = format!("{} {}", r.kind, r.shape);
        match r.kind.as_str() {
            "idle" => {
                let e = err_pct(a.idle_power_w(), r.mean_w);
                println!(
                    "{label:<34} idle {:.1} W model {:.1} W {:+.1}%",
                    r.mean_w, a.idle_w, e
                );
                if e.abs() > 5.0 {
                    failures.push(label);
                }
            }
            "gemm_bf16" | "gemm_fp32" => {
                let (Some((m, k, n)), Some(t), Some(e)) =
                    (r.gemm_mkn(), r.s_per_iter, r.j_per_iter)
                else {
                    continue;
                };
                let prec = if r.kind == "gemm_bf16" {
                    Precision::Bf16
                } else {
                    Precision::Fp32
                };
                let (et, ee) = row(&label, a.gemm(m, n, k, prec, 0.0), t, e);
                if r.kind == "gemm_bf16" && m >= 4096.0 && (et.abs() > 15.0 || ee.abs() > 15.0) {
                    failures.push(label);
                }
            }
            "copy_bf16" | "silu_bf16" => {
                let (Some(b), Some(t), Some(e)) = (r.bytes, r.s_per_iter, r.j_per_iter) else {
                    continue;
                };
                let (et, _) = row(&label, a.memory_op(b, 0.0), t, e);
                if r.kind == "copy_bf16" && et.abs() > 15.0 {
                    failures.push(label);
                }
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

#[test]
fn attention_rows_within_twenty_percent() {
    let a = h100();
    let rows = read_attn(&shared_data_dir().join("h100/attn.csv")).expect("attn.csv");
    header("attn.csv (causal flash fwd+bwd, bf16; scale fitted on these rows)");
    let mut failures = Vec::new();
    for r in &rows {
        let label = format!("b{} s{} h{} d{}", r.batch, r.seq, r.heads, r.head_dim);
        let c = a.attention_fwd_bwd(r.batch, r.heads, r.seq, r.head_dim, Precision::Bf16, 0.0);
        let (et, ee) = row(&label, c, r.s_per_iter, r.j_per_iter);
        if et.abs() > 20.0 || ee.abs() > 20.0 {
            failures.push(label);
        }
    }
    // Reported, not asserted per row: the small b8 s1024 d64 row is launch/occupancy-limited.
    println!("attention rows outside 20%: {failures:?}");
    assert!(failures.len() <= 1, "outside tolerance: {failures:?}");
}

#[test]
fn moe_layer_rows_within_thirty_percent() {
    let a = h100();
    let rows = read_moe(&shared_data_dir().join("h100/moe_layer.csv")).expect("moe_layer.csv");
    header("moe_layer.csv (one MoE layer fwd+bwd, experts + router)");
    let mut failures = Vec::new();
    let mut checked = 0;
    for r in &rows {
        let label = format!("{} {}", r.dist, r.mode);
        let router = router_fwd_bwd(
            &a,
            r.tokens,
            r.hidden,
            r.experts,
            r.top_k,
            Precision::Bf16,
            0.0,
        );
        let (kernel, cap) = match r.mode.as_str() {
            "dropless" => (ExpertKernel::Loop, None),
            "capacity1.25" => {
                let c = (1.25 * r.tokens * r.top_k / r.experts).ceil() as u32;
                (ExpertKernel::Padded, Some(c))
            }
            "routing_only" => {
                row(&label, router, r.s_per_iter, r.j_per_iter);
                continue;
            }
            _ => {
                // dense_equal_active: one SwiGLU of width ffn on all tokens (grouped = 1 expert).
                let c = experts_fwd_bwd(
                    &a,
                    &[r.tokens as u32],
                    r.hidden,
                    r.ffn,
                    ExpertKernel::Grouped,
                    None,
                    Precision::Bf16,
                    0.0,
                );
                row(&label, c, r.s_per_iter, r.j_per_iter);
                continue;
            }
        };
        let experts = experts_fwd_bwd(
            &a,
            &r.counts,
            r.hidden,
            r.ffn,
            kernel,
            cap,
            Precision::Bf16,
            0.0,
        );
        let (et, ee) = row(&label, experts.then(router), r.s_per_iter, r.j_per_iter);
        checked += 1;
        if et.abs() > 30.0 || ee.abs() > 30.0 {
            failures.push(label);
        }
    }
    assert_eq!(checked, 8, "expected 4 dropless + 4 capacity rows");
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}
