//! End to end: `moesim run` writes plots and report.html; `moesim plot` on folders, traces, sweeps and bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn moesim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moesim"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn assert_png(p: &Path) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(b.len() > 1000, "{} too small", p.display());
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        p.display()
    );
}

fn assert_svg(p: &Path) {
    let s = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        s.contains("<svg") && s.trim_end().ends_with("</svg>"),
        "{} is not an SVG",
        p.display()
    );
    assert!(s.contains("<text"), "{} has no text", p.display());
}

fn run_single_node(dir: &Path) {
    let out = moesim()
        .args(["run"])
        .arg(scenario("single_node.toml"))
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_writes_every_plot_as_png_and_svg_and_a_self_contained_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("o");
    run_single_node(&dir);
    for stem in [
        "timeline",
        "comparison",
        "energy_breakdown",
        "saving_waterfall",
    ] {
        assert_png(&dir.join(format!("{stem}.png")));
        assert_svg(&dir.join(format!("{stem}.svg")));
    }
    assert!(dir.join("scenario.toml").is_file());
    assert!(dir.join("run_info.json").is_file());
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<table class=\"summary\">"));
    assert!(
        html.contains("<td title=\"co2_kg\">emissions</td><td class=\"unit\">kg CO2e</td>"),
        "summary table lists the CO2 row by its display name and unit"
    );
    assert_eq!(html.matches("<svg").count(), 4, "four plots inlined");
    assert!(
        html.contains("Where each saving comes from</h2>") && html.contains("time shifting"),
        "the split by cause has its section"
    );
    assert!(
        html.contains("Scenario</h2>") && html.contains("[cluster]"),
        "scenario echoed"
    );
    assert!(html.contains("Clark et al. 2022"), "loss law named");
    let lower = html.to_ascii_lowercase();
    for external in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "<link",
        "<script",
        "@import",
    ] {
        assert!(!lower.contains(external), "report references `{external}`");
    }
}

#[test]
fn plot_is_deterministic_and_no_plots_skips_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("o");
    let out = moesim()
        .args(["run"])
        .arg(scenario("single_node.toml"))
        .arg("--no-plots")
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !dir.join("timeline.png").exists(),
        "--no-plots draws nothing"
    );
    let mut first = Vec::new();
    for round in 0..2 {
        let out = moesim().arg("plot").arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files: Vec<Vec<u8>> = [
            "timeline.png",
            "timeline.svg",
            "comparison.svg",
            "report.html",
        ]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
        if round == 0 {
            first = files;
        } else {
            assert!(first == files, "plots differ between two identical calls");
        }
    }
}

#[test]
fn plot_of_a_folder_without_results_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = moesim().arg("plot").arg(tmp.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("summary.csv") && err.contains("missing"),
        "{err}"
    );
    let out = moesim()
        .arg("plot")
        .arg(tmp.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plot_of_a_malformed_summary_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("o");
    run_single_node(&dir);
    let p = dir.join("summary.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = lines[2].replacen(",", ",x,", 1); // shift every field of line 3
    std::fs::write(&p, lines.join("\n")).unwrap();
    let out = moesim().arg("plot").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("summary.csv") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn trace_plots_draw_heatmap_and_imbalance() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("t.csv");
    let mut s = String::from("step,layer,e0,e1,e2,e3\n");
    for step in 1..=90 {
        for layer in 0..3 {
            s.push_str(&format!(
                "{step},{layer},{},{},{},{}\n",
                100 + step,
                50,
                25 * layer + 10,
                40
            ));
        }
    }
    std::fs::write(&trace, s).unwrap();
    let dir = tmp.path().join("tr");
    let out = moesim()
        .arg("plot")
        .arg("--trace")
        .arg(&trace)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stem in ["routing_heatmap", "routing_imbalance"] {
        assert_png(&dir.join(format!("{stem}.png")));
        assert_svg(&dir.join(format!("{stem}.svg")));
    }
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "step,layer,e0\n1,0,x\n").unwrap();
    let out = moesim()
        .arg("plot")
        .arg("--trace")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sweep_csv_gives_pareto_and_heatmap_plots_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("o");
    run_single_node(&dir);
    let mut s = String::from(
        "point,strategy,wall_clock_h,co2_kg,energy_facility_kwh,model.experts,circadian.throttle_power_cap_w\n",
    );
    let mut point = 0;
    for e in [8, 16, 32] {
        for cap in [400, 550, 700] {
            for (k, strat) in ["moe", "circadian"].iter().enumerate() {
                let h = 10.0 + e as f64 / 4.0 + (700 - cap) as f64 / 50.0 + k as f64 * 3.0;
                let co2 = 200.0 - e as f64 - cap as f64 / 20.0 - k as f64 * 15.0;
                s.push_str(&format!(
                    "{point},{strat},{h},{co2},{},{e},{cap}\n",
                    co2 * 5.0
                ));
            }
            point += 1;
        }
    }
    std::fs::write(dir.join("sweep.csv"), s).unwrap();
    let out = moesim().arg("plot").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stem in ["sweep_pareto", "sweep_heatmap"] {
        assert_png(&dir.join(format!("{stem}.png")));
        assert_svg(&dir.join(format!("{stem}.svg")));
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"sweep_pareto\"") && html.contains("id=\"sweep_heatmap\""));
}
