//! Calibration tests: the H100 preset against the measured rows in ../shared/data/h100, through the
//! same residuals `moesim validate` and `moesim calibrate` report (`hardware::calibrate`).

use super::calibrate::{
    attn_residuals, fit_micro, micro_residuals, moe_residuals, residual_table, AttnRow,
    CalibrationData, Measured, MicroFit, MicroRow, MoeRow, Residual, RowGroup,
};
use super::{preset, Accelerator};
use crate::testdata::shared_data_dir;

fn h100() -> Accelerator {
    preset("h100").expect("h100 preset")
}

/// Labels of the rows of `group` whose time or energy error exceeds the tolerances [fraction].
fn outside(
    rows: &[Residual],
    group: RowGroup,
    time_tol: Option<f64>,
    energy_tol: Option<f64>,
) -> Vec<String> {
    rows.iter()
        .filter(|r| r.group == group)
        .filter(|r| {
            time_tol.is_some_and(|t| r.time_err().abs() > t)
                || energy_tol.is_some_and(|t| r.energy_err().abs() > t)
        })
        .map(|r| r.label.clone())
        .collect()
}

#[test]
fn micro_rows_large_gemm_idle_and_copy_match_measurements() {
    let rows = micro_residuals(
        &h100(),
        &Measured::<MicroRow>::read(&shared_data_dir().join("h100/micro.csv"))
            .expect("micro.csv")
            .rows,
    );
    println!("micro.csv (H100, 700 W)\n{}", residual_table(&rows));
    let mut failures = outside(&rows, RowGroup::Idle, None, Some(0.05));
    failures.extend(outside(&rows, RowGroup::LargeGemm, Some(0.15), Some(0.15)));
    failures.extend(outside(&rows, RowGroup::Copy, Some(0.15), None));
    assert!(
        rows.iter().any(|r| r.group == RowGroup::LargeGemm),
        "no large GEMM rows read"
    );
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

#[test]
fn attention_rows_within_twenty_percent() {
    let rows = attn_residuals(
        &h100(),
        &Measured::<AttnRow>::read(&shared_data_dir().join("h100/attn.csv"))
            .expect("attn.csv")
            .rows,
    );
    println!(
        "attn.csv (causal flash fwd+bwd, bf16; scale fitted on these rows)\n{}",
        residual_table(&rows)
    );
    // Every row, the small b8 s1024 d64 one too: it fills the SMs at 19 % of tensor peak and
    // draws 590 W, which the SM-activity power term of `PowerModel` now follows (was -26.7 %).
    let failures = outside(&rows, RowGroup::Attention, Some(0.20), Some(0.20));
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

#[test]
fn moe_layer_rows_within_thirty_percent() {
    let rows = moe_residuals(
        &h100(),
        &Measured::<MoeRow>::read(&shared_data_dir().join("h100/moe_layer.csv"))
            .expect("moe_layer.csv")
            .rows,
    );
    println!(
        "moe_layer.csv (one MoE layer fwd+bwd, experts + router)\n{}",
        residual_table(&rows)
    );
    let checked = rows
        .iter()
        .filter(|r| matches!(r.group, RowGroup::MoeDropless | RowGroup::MoeCapacity))
        .count();
    let mut failures = outside(&rows, RowGroup::MoeDropless, Some(0.30), Some(0.30));
    failures.extend(outside(
        &rows,
        RowGroup::MoeCapacity,
        Some(0.30),
        Some(0.30),
    ));
    assert_eq!(checked, 8, "expected 4 dropless + 4 capacity rows");
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

fn shared() -> CalibrationData {
    CalibrationData::read_dir(&shared_data_dir().join("h100")).expect("shared H100 data")
}

/// The power fit of micro.csv with these attention rows (the preset's fit uses all four).
fn power_fit(data: &CalibrationData, attn: &[AttnRow]) -> MicroFit {
    let a = h100();
    fit_micro(
        &data.micro.rows,
        attn,
        a.peak_flops.bf16.expect("bf16 peak"),
        a.peak_flops.fp32.expect("fp32 peak"),
        a.hbm_bw_bytes_per_s,
        a.max_clock_mhz,
        a.power.gamma,
    )
    .expect("power fit")
}

/// Mean power of a modelled row [W] (energy over time).
fn model_w(r: &Residual) -> f64 {
    r.model_j / r.model_s
}

/// Measured mean power of a row [W].
fn measured_w(r: &Residual) -> f64 {
    r.measured_j / r.measured_s
}

// The power curve is fitted to the busy GEMMs, the copy and the flash-attention rows together
// (calibrate::fit_micro). Held out of that fit: every moe_layer.csv row (a composite of loop-issued
// or padded expert GEMMs, SwiGLU elementwise and the router) and, one at a time, each attention
// row (leave-one-out refit). Fit and held-out errors are printed; the held-out rows must come out
// as well as the fitted ones: mean power within 10 % (the MoE rows were -21 to -25 % in energy
// when power followed FLOP utilisation alone).
#[test]
fn power_curve_fits_the_measured_rows_and_predicts_held_out_ones() {
    let data = shared();
    let attn = &data.attn.as_ref().expect("attn.csv").rows;
    let moe = &data.moe.as_ref().expect("moe_layer.csv").rows;
    let fitted = power_fit(&data, attn);
    let shipped = h100();
    assert!(
        (fitted.sm_active_coef_w - shipped.power.sm_active_coef_w).abs()
            <= 0.01 * fitted.sm_active_coef_w,
        "shipped preset is not the fit: {fitted:?}"
    );
    // Fit rows: mean power of the busy GEMMs, copy and attention rows under the preset.
    let mut fit_rows = micro_residuals(&shipped, &data.micro.rows);
    fit_rows.retain(|r| matches!(r.group, RowGroup::LargeGemm | RowGroup::Copy));
    fit_rows.extend(attn_residuals(&shipped, attn));
    let fit_err: Vec<f64> = fit_rows
        .iter()
        .map(|r| model_w(r) / measured_w(r) - 1.0)
        .collect();
    // Held out: leave each attention row out of the fit and price it with the refit curve.
    let mut held = Vec::new();
    for i in 0..attn.len() {
        let rest: Vec<AttnRow> = attn
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, r)| r.clone())
            .collect();
        let f = power_fit(&data, &rest);
        let mut a = h100();
        super::calibrate::apply_micro_fit(&mut a, &f);
        let r = attn_residuals(&a, &attn[i..=i]).remove(0);
        held.push((
            format!("attn {} (left out)", r.label),
            model_w(&r) / measured_w(&r) - 1.0,
        ));
    }
    // Held out: the MoE layer rows, never in the power fit.
    for r in moe_residuals(&shipped, moe)
        .iter()
        .filter(|r| matches!(r.group, RowGroup::MoeDropless | RowGroup::MoeCapacity))
    {
        held.push((format!("moe {}", r.label), model_w(r) / measured_w(r) - 1.0));
    }
    let mean_abs = |v: &mut dyn Iterator<Item = f64>| {
        let e: Vec<f64> = v.map(f64::abs).collect();
        e.iter().sum::<f64>() / e.len().max(1) as f64
    };
    let fit_mean = mean_abs(&mut fit_err.iter().copied());
    let held_mean = mean_abs(&mut held.iter().map(|h| h.1));
    println!("power fit rows: mean |error| {:.1} %", 100.0 * fit_mean);
    for (r, e) in fit_rows.iter().zip(&fit_err) {
        println!("  fit   {:<36} {:+.1} %", r.label, 100.0 * e);
    }
    println!("held-out rows: mean |error| {:.1} %", 100.0 * held_mean);
    for (l, e) in &held {
        println!("  held  {l:<36} {:+.1} %", 100.0 * e);
    }
    assert_eq!(
        held.len(),
        attn.len() + 8,
        "4 attention + 8 MoE rows held out"
    );
    for (l, e) in &held {
        assert!(
            e.abs() <= 0.10,
            "held-out {l}: mean power {:+.1} %",
            100.0 * e
        );
    }
    for (r, e) in fit_rows.iter().zip(&fit_err) {
        assert!(
            e.abs() <= 0.10,
            "fit row {}: mean power {:+.1} %",
            r.label,
            100.0 * e
        );
    }
    assert!(
        held_mean <= 0.06 && fit_mean <= 0.06,
        "{fit_mean} {held_mean}"
    );
}

// Power is a curve of activity: non-decreasing in tensor utilisation, in HBM traffic and in SM
// occupancy at a fixed clock, never above the power limit, never below idle; and under a lower
// limit a kernel never draws more.
#[test]
fn kernel_power_is_monotone_in_utilisation_and_bounded_by_the_limit() {
    use super::Precision;
    let a = h100();
    for limit in [0.0, 450.0, 300.0] {
        let cap = a.effective_power_limit_w(limit);
        let mut last = 0.0;
        for i in 1..=100 {
            // The same 10 TFLOP at rising efficiency: the same work in less time.
            let eff = f64::from(i) / 100.0;
            let c = a.kernel_at_eff(1e13, 1e8, eff, Precision::Bf16, limit);
            let w = c.mean_power_w();
            assert!(w >= last - 1e-9, "limit {limit}: eff {eff}: {w} < {last}");
            assert!(
                w <= cap + 1e-6 && w >= a.idle_w - 1e-9,
                "limit {limit}: {w} W"
            );
            last = w;
        }
        let mut last = 0.0;
        for i in 1..=50 {
            // A rising HBM share: more bytes within the same compute-bound time (to 5 GB).
            let bytes = 1e8 * f64::from(i);
            let c = a.kernel_at_eff(1e12, bytes, 0.5, Precision::Bf16, limit);
            let w = c.energy_j / c.time_s;
            assert!(w >= last - 1e-6, "limit {limit}: {bytes} B: {w} < {last}");
            assert!(w <= cap + 1e-6, "limit {limit}: {w} W");
            last = w;
        }
        // GEMMs over six decades of size: occupancy and utilisation rise together.
        let mut last = 0.0;
        let mut m = 16.0;
        while m <= 32768.0 {
            let w = a
                .gemm(m, 4096.0, 4096.0, Precision::Bf16, limit)
                .mean_power_w();
            assert!(
                w >= last - 1e-6 && w <= cap + 1e-6,
                "limit {limit}: m {m}: {w} vs {last}"
            );
            last = w;
            m *= 2.0;
        }
    }
    let hot = a.gemm(8192.0, 8192.0, 8192.0, Precision::Bf16, 0.0);
    let capped = a.gemm(8192.0, 8192.0, 8192.0, Precision::Bf16, 400.0);
    assert!(capped.mean_power_w() < hot.mean_power_w());
    assert!(
        (hot.mean_power_w() - a.tdp_w).abs() < 1.0,
        "a large GEMM sits at the limit"
    );
}
