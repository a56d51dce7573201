//! `moesim hardware list|show` and `moesim calibrate`: accelerator presets, shown and fitted.

use super::fail;
use moesim::hardware;
use std::process::ExitCode;

/// `moesim hardware list`: one line per preset.
pub fn list() -> ExitCode {
    outln!(
        "{:<8} {:<28} {:>14} {:>8} {:>10} {:>7} {:>7}",
        "key",
        "name",
        "bf16 TFLOP/s",
        "HBM GiB",
        "HBM TB/s",
        "TDP W",
        "idle W"
    );
    for a in hardware::presets() {
        let bf16 = a
            .peak_flops
            .get(hardware::Precision::Bf16)
            .map_or("-".to_string(), |f| format!("{:.0}", f / 1e12));
        outln!(
            "{:<8} {:<28} {:>14} {:>8.0} {:>10.2} {:>7.0} {:>7.0}",
            a.key,
            a.name,
            bf16,
            a.hbm_bytes / (1u64 << 30) as f64,
            a.hbm_bw_bytes_per_s / 1e12,
            a.tdp_w,
            a.idle_w
        );
    }
    ExitCode::SUCCESS
}

/// `moesim hardware show KEY`: one preset with its sources.
pub fn show(key: &str) -> ExitCode {
    match hardware::preset(key) {
        Ok(a) => {
            outln!("{}", hardware::describe(&a));
            ExitCode::SUCCESS
        }
        Err(e) => fail(2, e),
    }
}

/// `moesim calibrate`: fit a preset to measurement CSVs and write it as TOML.
pub fn calibrate(
    micro: &std::path::Path,
    attn: Option<&std::path::Path>,
    moe: Option<&std::path::Path>,
    base: &str,
    key: Option<String>,
    out: &std::path::Path,
) -> ExitCode {
    let base = match hardware::preset(base) {
        Ok(b) => b,
        Err(e) => return fail(2, e),
    };
    let key = key.unwrap_or_else(|| {
        out.file_stem()
            .map_or("calibrated".into(), |s| s.to_string_lossy().into_owned())
    });
    let cal = match hardware::calibrate::calibrate(&base, &key, micro, attn, moe) {
        Ok(c) => c,
        Err(e @ hardware::HardwareError::Fit(_)) => return fail(1, e),
        Err(e) => return fail(2, e),
    };
    let f = &cal.fitted.micro;
    outln!(
        "fitted on base {}: idle {:.1} W, launch {:.2} us, GEMM max eff {:.4}, half {:.4e} FLOP, exponent {:.2}, mem eff {:.4}",
        base.key, f.idle_w, f.launch_overhead_s * 1e6, f.max_eff, f.half_flops, f.exponent, f.mem_eff
    );
    outln!(
        "power: SM-active {:.1} W, tensor {:.1} W, simt {:.1} W, mem {:.1} W at gamma {:.1} (assumed, from the base)",
        f.sm_active_coef_w,
        f.tensor_coef_w,
        f.simt_coef_w,
        f.mem_coef_w,
        f.gamma
    );
    if let Some((m, h)) = cal.fitted.attention {
        outln!("attention: max eff {m:.4}, half {h:.4e} FLOP per head");
    }
    if let Some(s) = cal.fitted.loop_scale {
        outln!("loop-issued expert GEMM scale {s:.4}");
    }
    if let Some(x) = cal.fitted.index_mem_eff {
        outln!("indexed row-move (router, permute) bandwidth efficiency {x:.4}");
    }
    outln!(
        "\nresiduals:\n{}",
        hardware::calibrate::residual_table(&cal.residuals)
    );
    let header = format!(
        "moesim calibrate --base {} --micro {}{}{}",
        base.key,
        micro.display(),
        attn.map_or(String::new(), |p| format!(" --attn {}", p.display())),
        moe.map_or(String::new(), |p| format!(" --moe {}", p.display()))
    );
    if let Err(e) = hardware::write_preset_file(&cal.fitted.accelerator, &header, out) {
        return fail(1, e);
    }
    outln!("wrote {}", out.display());
    ExitCode::SUCCESS
}
