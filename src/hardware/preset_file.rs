//! Accelerator presets as TOML files (written by `moesim calibrate`, read by `cluster.gpu_file`).
//!
//! The file is [`Accelerator`] serialised by serde (its field order is the file's), in SI units (FLOP/s, bytes, bytes/s, W, s, MHz).
//! Unknown keys are errors; every number is checked for range after parsing, and errors name the
//! file, line:column (for syntax and type errors) and the key. `power.spin_coef_w` (power above idle
//! while waiting in a collective) may be absent, as in files written before it existed: then the
//! H100 figure scaled by the dynamic range is used (`Accelerator::spin_w`).

use std::path::Path;

use super::{Accelerator, HardwareError};

fn bad(path: &str, key: &str, message: String) -> HardwareError {
    HardwareError::PresetFile {
        path: path.to_string(),
        at: String::new(),
        key: key.to_string(),
        message,
    }
}

/// The range a figure of a preset must lie in.
#[derive(Clone, Copy)]
enum Range {
    /// Finite and > 0.
    Positive,
    /// Finite and ≥ 0.
    NonNegative,
    /// In (0, 1].
    Fraction,
}

impl Range {
    /// `None` if `v` is in range, else the message naming the range and `v`.
    fn violation(self, v: f64) -> Option<String> {
        let (ok, what) = match self {
            Range::Positive => (v.is_finite() && v > 0.0, "a finite number > 0"),
            Range::NonNegative => (v.is_finite() && v >= 0.0, "a finite number ≥ 0"),
            Range::Fraction => (v.is_finite() && v > 0.0 && v <= 1.0, "in (0, 1]"),
        };
        (!ok).then(|| format!("must be {what}, got {v}"))
    }
}

/// Range checks of every figure; the error names the key and the valid range.
fn check(a: &Accelerator, path: &str) -> Result<(), HardwareError> {
    use Range::{Fraction, NonNegative, Positive};
    let e = &a.efficiency;
    let p = &a.power;
    let figures = [
        ("hbm_bytes", a.hbm_bytes, Positive),
        ("hbm_bw_bytes_per_s", a.hbm_bw_bytes_per_s, Positive),
        ("tdp_w", a.tdp_w, Positive),
        ("min_power_cap_w", a.min_power_cap_w, Positive),
        ("idle_w", a.idle_w, Positive),
        ("max_clock_mhz", a.max_clock_mhz, Positive),
        (
            "intra_node_bw_bytes_per_s",
            a.intra_node_bw_bytes_per_s,
            Positive,
        ),
        ("efficiency.half_flops", e.half_flops, NonNegative),
        ("efficiency.exponent", e.exponent, Fraction),
        ("efficiency.kernel_t0_s", e.kernel_t0_s, NonNegative),
        (
            "efficiency.attention_half_flops",
            e.attention_half_flops,
            Positive,
        ),
        (
            "efficiency.loop_gemm_eff_scale",
            e.loop_gemm_eff_scale,
            Positive,
        ),
        ("efficiency.simt_eff_scale", e.simt_eff_scale, Positive),
        ("power.tensor_coef_w", p.tensor_coef_w, Positive),
        ("power.gamma", p.gamma, Positive),
        ("intra_node_latency_s", a.intra_node_latency_s, NonNegative),
        ("node_overhead_w", a.node_overhead_w, NonNegative),
        ("launch_overhead_s", a.launch_overhead_s, NonNegative),
        ("power.simt_coef_w", p.simt_coef_w, NonNegative),
        ("power.mem_coef_w", p.mem_coef_w, NonNegative),
        ("power.sm_active_coef_w", p.sm_active_coef_w, NonNegative),
        ("efficiency.max_eff", e.max_eff, Fraction),
        ("efficiency.mem_eff", e.mem_eff, Fraction),
        ("efficiency.index_mem_eff", e.index_mem_eff, Fraction),
        ("efficiency.min_eff", e.min_eff, Fraction),
        (
            "efficiency.attention_max_eff",
            e.attention_max_eff,
            Fraction,
        ),
        ("power.min_clock_factor", p.min_clock_factor, Fraction),
    ];
    for (k, v, range) in figures {
        if let Some(message) = range.violation(v) {
            return Err(bad(path, k, message));
        }
    }
    if let Some(w) = p.spin_coef_w {
        if let Some(message) = NonNegative.violation(w) {
            return Err(bad(path, "power.spin_coef_w", message));
        }
        if a.idle_w + w > a.tdp_w {
            return Err(bad(
                path,
                "power.spin_coef_w",
                format!(
                    "idle_w + spin_coef_w must be ≤ tdp_w = {} W, got {} + {w} W",
                    a.tdp_w, a.idle_w
                ),
            ));
        }
    }
    if a.idle_w >= a.tdp_w {
        return Err(bad(
            path,
            "idle_w",
            format!("must be below tdp_w = {} W, got {} W", a.tdp_w, a.idle_w),
        ));
    }
    if a.min_power_cap_w > a.tdp_w {
        return Err(bad(
            path,
            "min_power_cap_w",
            format!(
                "must be ≤ tdp_w = {} W, got {} W",
                a.tdp_w, a.min_power_cap_w
            ),
        ));
    }
    if a.gpus_per_node == 0 {
        return Err(bad(path, "gpus_per_node", "must be at least 1".into()));
    }
    let peaks = [
        ("peak_flops.fp32", a.peak_flops.fp32),
        ("peak_flops.tf32", a.peak_flops.tf32),
        ("peak_flops.bf16", a.peak_flops.bf16),
        ("peak_flops.fp16", a.peak_flops.fp16),
        ("peak_flops.fp8", a.peak_flops.fp8),
    ];
    for (k, v) in peaks {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(
                    path,
                    k,
                    format!("must be a FLOP/s figure > 0 (or absent if unsupported), got {v}"),
                ));
            }
        }
    }
    if a.peak_flops.bf16.or(a.peak_flops.fp16).is_none() {
        return Err(bad(
            path,
            "peak_flops",
            "needs at least one of bf16 or fp16 [FLOP/s]".into(),
        ));
    }
    if a.key.trim().is_empty() {
        return Err(bad(path, "key", "must not be empty".into()));
    }
    Ok(())
}

/// Parse preset TOML `text` read from `path` (used in messages) into a checked [`Accelerator`].
pub fn parse_preset(path: &str, text: &str) -> Result<Accelerator, HardwareError> {
    let a: Accelerator = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("{line}:{col}")
            })
            .unwrap_or_default();
        HardwareError::PresetFile {
            path: path.to_string(),
            at,
            key: String::new(),
            message: e.message().to_string(),
        }
    })?;
    check(&a, path)?;
    Ok(a)
}

/// Read and check a preset file.
pub fn read_preset_file(path: &Path) -> Result<Accelerator, HardwareError> {
    let text = std::fs::read_to_string(path).map_err(|source| HardwareError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_preset(&path.display().to_string(), &text)
}

/// The preset as TOML text, with a header comment naming where it came from.
pub fn preset_to_toml(a: &Accelerator, header: &str) -> String {
    let body = toml::to_string_pretty(a).unwrap_or_default();
    let mut out = String::new();
    for l in header.lines() {
        out.push_str("# ");
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(
        "# Units: FLOP/s, bytes, bytes/s, W, s, MHz; read by `cluster.gpu_file` in a scenario.\n",
    );
    out.push_str(&body);
    out
}

/// Write the preset to `path` (temporary file, then rename).
pub fn write_preset_file(a: &Accelerator, header: &str, path: &Path) -> Result<(), HardwareError> {
    let text = preset_to_toml(a, header);
    let io = |source| HardwareError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{presets, Precision};

    #[test]
    fn every_preset_round_trips_through_toml() {
        for a in presets() {
            let text = preset_to_toml(&a, "test");
            let b = parse_preset("mem.toml", &text).expect("round trip parses");
            assert_eq!(a.key, b.key);
            assert_eq!(a.peak_flops, b.peak_flops);
            assert_eq!(a.efficiency, b.efficiency);
            assert_eq!(a.power, b.power);
            assert_eq!(a.sources, b.sources);
            let (x, y) = (
                a.gemm(4096.0, 4096.0, 4096.0, Precision::Bf16, 0.0),
                b.gemm(4096.0, 4096.0, 4096.0, Precision::Bf16, 0.0),
            );
            assert_eq!(x, y, "{}", a.key);
        }
    }

    #[test]
    fn unknown_key_and_bad_values_name_the_file_and_key() {
        let a = presets().remove(0);
        let text = preset_to_toml(&a, "t").replace("tdp_w = 700.0", "tdp_watts = 700.0");
        let msg = parse_preset("g.toml", &text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("g.toml:") && msg.contains("tdp_watts"),
            "{msg}"
        );
        let text = preset_to_toml(&a, "t").replace("max_eff = 0.9913", "max_eff = 1.7");
        let msg = parse_preset("g.toml", &text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("efficiency.max_eff") && msg.contains("(0, 1]"),
            "{msg}"
        );
        // A knee exponent above 1 would make a larger kernel faster than a smaller one.
        let text = preset_to_toml(&a, "t").replace("exponent = 0.51", "exponent = 2.78");
        let msg = parse_preset("g.toml", &text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("efficiency.exponent") && msg.contains("(0, 1]"),
            "{msg}"
        );
    }

    #[test]
    fn spin_power_is_checked_and_may_be_absent_in_old_files() {
        let a = presets().remove(0);
        let text = preset_to_toml(&a, "t");
        assert!(text.contains("spin_coef_w = 40.0"), "{text}");
        let bad_of = |from: &str, to: &str| {
            parse_preset("g.toml", &text.replace(from, to))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let msg = bad_of("spin_coef_w = 40.0", "spin_coef_w = -1.0");
        assert!(
            msg.contains("g.toml") && msg.contains("power.spin_coef_w") && msg.contains("≥ 0"),
            "{msg}"
        );
        let msg = bad_of("spin_coef_w = 40.0", "spin_coef_w = 900.0");
        assert!(
            msg.contains("power.spin_coef_w") && msg.contains("≤ tdp_w"),
            "{msg}"
        );
        // A file written before the key existed loads, and falls back to the H100 figure.
        let old = parse_preset("old.toml", &text.replace("spin_coef_w = 40.0\n", ""))
            .expect("a preset without spin_coef_w loads");
        assert_eq!(old.power.spin_coef_w, None);
        assert!((old.spin_w() - a.spin_w()).abs() < 1e-9);
        assert!(a.spin_w() > a.idle_w && a.spin_w() < a.tdp_w);
    }

    #[test]
    fn sm_activity_power_is_checked_and_reads_as_zero_when_absent() {
        let a = presets().remove(0);
        assert!(a.power.sm_active_coef_w > 0.0, "{}", a.key);
        let text = preset_to_toml(&a, "t");
        let line = format!("sm_active_coef_w = {:?}\n", a.power.sm_active_coef_w);
        assert!(text.contains(&line), "{text}");
        let msg = parse_preset("g.toml", &text.replace(&line, "sm_active_coef_w = -3.0\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("g.toml") && msg.contains("power.sm_active_coef_w") && msg.contains("≥ 0"),
            "{msg}"
        );
        // A file written before the key existed loads with no SM-activity term, and a preset
        // without one (the TPUs') is written without the key.
        let old = parse_preset("old.toml", &text.replace(&line, ""))
            .expect("a preset without sm_active_coef_w loads");
        assert_eq!(old.power.sm_active_coef_w, 0.0);
        assert!(!preset_to_toml(&old, "t").contains("sm_active_coef_w"));
    }

    #[test]
    fn the_shipped_h800_file_without_spin_power_still_loads() {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/validation/h800.toml");
        let a = read_preset_file(&p).expect("h800.toml loads");
        assert!(a.spin_w() > a.idle_w + 30.0 && a.spin_w() < a.idle_w + 50.0);
    }
}
