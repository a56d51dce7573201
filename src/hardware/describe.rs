//! A human-readable description of an accelerator preset, with its sources.

use super::{Accelerator, Precision};
use std::fmt::Write;

/// Multi-line text describing `a`: datasheet figures, calibrated coefficients and sources.
pub fn describe(a: &Accelerator) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} ({})", a.name, a.key);
    for p in Precision::ALL {
        if let Some(f) = a.peak_flops.get(p) {
            let _ = writeln!(
                s,
                "  peak dense {p:<5} {:>10.1} TFLOP/s (at max clock)",
                f / 1e12
            );
        }
    }
    let _ = writeln!(
        s,
        "  HBM               {:>10.1} GiB, {:.2} TB/s",
        a.hbm_bytes / (1u64 << 30) as f64,
        a.hbm_bw_bytes_per_s / 1e12
    );
    let _ = writeln!(
        s,
        "  power limit       {:>10.0} W (settable {:.0}–{:.0} W), idle {:.0} W",
        a.tdp_w, a.min_power_cap_w, a.tdp_w, a.idle_w
    );
    let _ = writeln!(s, "  max clock         {:>10.0} MHz", a.max_clock_mhz);
    let _ = writeln!(
        s,
        "  intra-node link   {:>10.0} GB/s per direction, {:.1} µs",
        a.intra_node_bw_bytes_per_s / 1e9,
        a.intra_node_latency_s * 1e6
    );
    let _ = writeln!(
        s,
        "  node              {:>10} accelerators, {:.0} W non-accelerator overhead",
        a.gpus_per_node, a.node_overhead_w
    );
    let _ = writeln!(
        s,
        "  kernel launch     {:>10.1} µs minimum per kernel",
        a.launch_overhead_s * 1e6
    );
    let e = &a.efficiency;
    let _ = writeln!(s, "  GEMM efficiency   max {:.3}, half at {:.2e} FLOP, exponent {:.2}, fixed {:.1} us/kernel; memory efficiency {:.3}", e.max_eff, e.half_flops, e.exponent, e.kernel_t0_s * 1e6, e.mem_eff);
    let p = &a.power;
    let _ = writeln!(
        s,
        "  power model       tensor {:.0} W, memory {:.0} W, clock exponent γ {:.1}",
        p.tensor_coef_w, p.mem_coef_w, p.gamma
    );
    let _ = writeln!(s, "sources:");
    for src in &a.sources {
        let _ = writeln!(s, "  - {src}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_describes_itself_with_sources() {
        for a in super::super::presets() {
            let d = describe(&a);
            assert!(
                d.contains(&a.key) && d.contains("sources:") && !a.sources.is_empty(),
                "{d}"
            );
        }
    }
}
