//! Tests of the calibration path: the shipped H100 preset is what `calibrate()` fits from the
//! shared data, and bad measurement files are named by file, line and column.

use std::path::Path;

use super::*;
use crate::hardware::{parse_preset, preset, preset_to_toml};
use crate::testdata::shared_data_dir;

/// Relative tolerance between the committed `h100` coefficients and a fresh fit [fraction]: the
/// preset file rounds the fitted values to about four significant figures.
const PRESET_TOLERANCE: f64 = 0.01;

/// Reads one coefficient of a preset.
type Coefficient = fn(&Accelerator) -> f64;

/// Every coefficient a calibration sets or carries over from the base, by preset-file key.
const COEFFICIENTS: [(&str, Coefficient); 17] = [
    ("idle_w", |a| a.idle_w),
    ("launch_overhead_s", |a| a.launch_overhead_s),
    ("efficiency.max_eff", |a| a.efficiency.max_eff),
    ("efficiency.half_flops", |a| a.efficiency.half_flops),
    ("efficiency.exponent", |a| a.efficiency.exponent),
    ("efficiency.kernel_t0_s", |a| a.efficiency.kernel_t0_s),
    ("efficiency.mem_eff", |a| a.efficiency.mem_eff),
    ("efficiency.index_mem_eff", |a| a.efficiency.index_mem_eff),
    ("efficiency.simt_eff_scale", |a| a.efficiency.simt_eff_scale),
    ("efficiency.attention_max_eff", |a| {
        a.efficiency.attention_max_eff
    }),
    ("efficiency.attention_half_flops", |a| {
        a.efficiency.attention_half_flops
    }),
    ("efficiency.loop_gemm_eff_scale", |a| {
        a.efficiency.loop_gemm_eff_scale
    }),
    ("power.tensor_coef_w", |a| a.power.tensor_coef_w),
    ("power.simt_coef_w", |a| a.power.simt_coef_w),
    ("power.mem_coef_w", |a| a.power.mem_coef_w),
    ("power.sm_active_coef_w", |a| a.power.sm_active_coef_w),
    ("power.gamma", |a| a.power.gamma),
];

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-30)
}

fn calibrate_h100(key: &str) -> Calibration {
    let dir = shared_data_dir().join("h100");
    calibrate(
        &preset("h100").expect("h100"),
        key,
        &dir.join("micro.csv"),
        Some(&dir.join("attn.csv")),
        Some(&dir.join("moe_layer.csv")),
    )
    .expect("calibration on the shared data succeeds")
}

// The committed h100 preset must be what calibrate() produces from ../shared/data/h100, so the
// preset cannot drift from the data (or the fit) unnoticed.
#[test]
fn preset_h100_is_what_calibrate_fits_from_the_shared_data() {
    let shipped = preset("h100").expect("h100");
    let cal = calibrate_h100("h100");
    println!(
        "{:?}\nindex_mem_eff {:?}",
        cal.fitted.micro, cal.fitted.index_mem_eff
    );
    for (name, get) in COEFFICIENTS {
        let (constant, fitted) = (get(&shipped), get(&cal.fitted.accelerator));
        assert!(
            close(constant, fitted, PRESET_TOLERANCE),
            "{name}: preset {constant} vs calibrate() {fitted}"
        );
    }
}

// The fitted preset, written to TOML and read back, stays within the tolerances the validation
// suite holds the shipped preset to (large GEMMs 15 %, MoE layer 30 %, idle 5 %).
#[test]
fn fitted_h100_preset_file_matches_the_measurements() {
    let cal = calibrate_h100("h100-refit");
    let text = preset_to_toml(&cal.fitted.accelerator, "test");
    let acc = parse_preset("refit.toml", &text).expect("fitted preset parses");
    let data = CalibrationData::read_dir(&shared_data_dir().join("h100")).expect("shared data");
    let rows = residuals(&acc, &data);
    println!("{}", residual_table(&rows));
    for r in &rows {
        let tol = match r.group {
            RowGroup::LargeGemm => 0.15,
            RowGroup::MoeDropless | RowGroup::MoeCapacity => 0.30,
            RowGroup::Idle => 0.05,
            _ => continue,
        };
        assert!(
            r.time_err().abs() <= tol && r.energy_err().abs() <= tol,
            "{} {}: time {:+.3} energy {:+.3}",
            r.file,
            r.label,
            r.time_err(),
            r.energy_err()
        );
    }
}

fn read_error(name: &str, text: &str, read: fn(&Path) -> Result<(), HardwareError>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write");
    read(&p).err().map(|e| e.to_string()).unwrap_or_default()
}

fn read_micro(p: &Path) -> Result<(), HardwareError> {
    Measured::<MicroRow>::read(p).map(|_| ())
}

fn read_moe(p: &Path) -> Result<(), HardwareError> {
    Measured::<MoeRow>::read(p).map(|_| ())
}

const MICRO_HEADER: &str = "kind,shape,mean_w,mean_sm_mhz,flops,bytes,s_per_iter,j_per_iter\n";

#[test]
fn bad_number_names_file_line_and_column() {
    let msg = read_error(
        "micro.csv",
        &format!("{MICRO_HEADER}idle,-,abc,1980,,,,\n"),
        read_micro,
    );
    assert!(
        msg.contains("micro.csv:2") && msg.contains("mean_w") && msg.contains("abc"),
        "{msg}"
    );
    let msg = read_error(
        "micro.csv",
        &format!("{MICRO_HEADER}idle,-,100,1980,,,,\ngemm_bf16,1x1x1,100,inf,,,,\n"),
        read_micro,
    );
    assert!(
        msg.contains("micro.csv:3") && msg.contains("mean_sm_mhz") && msg.contains("'inf'"),
        "{msg}"
    );
    let msg = read_error(
        "micro.csv",
        &format!("{MICRO_HEADER}idle,-,,1980,,,,\n"),
        read_micro,
    );
    assert!(
        msg.contains("micro.csv:2") && msg.contains("mean_w") && msg.contains("empty"),
        "{msg}"
    );
}

#[test]
fn missing_column_is_named_at_the_header() {
    let msg = read_error(
        "micro.csv",
        "kind,shape,mean_sm_mhz,flops,bytes,s_per_iter,j_per_iter\nidle,-,1980,,,,\n",
        read_micro,
    );
    assert!(
        msg.contains("micro.csv:1") && msg.contains("'mean_w'") && msg.contains("column missing"),
        "{msg}"
    );
}

#[test]
fn bad_counts_are_reported() {
    let msg = read_error(
        "moe.csv",
        "tokens,hidden,ffn,experts,top_k,dist,mode,counts,s_per_iter,j_per_iter\n8,4,4,2,1,u,dropless,3;x,0.1,1\n",
        read_moe,
    );
    assert!(
        msg.contains("moe.csv:2") && msg.contains("counts") && msg.contains("'x'"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_named() {
    let base = preset("h100").expect("h100");
    let msg = calibrate(&base, "x", Path::new("/nonexistent/micro.csv"), None, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("/nonexistent/micro.csv"), "{msg}");
}
