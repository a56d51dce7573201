//! report.html rendered in a real headless browser (Chromium or Chrome, where one is installed): the
//! summary table and every plot must reach the page's DOM. Skips, saying so, where no browser is found.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first of chromium, chromium-browser, google-chrome found on PATH.
fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn report_renders_with_table_and_every_plot_in_a_browser() {
    let Some(chrome) = browser() else {
        println!(
            "SKIPPED report_renders_with_table_and_every_plot_in_a_browser: no chromium, \
             chromium-browser or google-chrome on PATH (apt-get install chromium to run it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let o = Command::new(env!("CARGO_BIN_EXE_moesim"))
        .args(["run", "scenarios/trace_replay.toml", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = out.join("report.html");
    let svgs: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "svg").then(|| stem(&p))
        })
        .collect();
    assert!(svgs.len() >= 5, "plots written: {svgs:?}");
    let profile = dir.path().join("chrome-profile");
    let r = Command::new(&chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success() && dom.contains("</html>"),
        "{} did not render {}: {}",
        chrome.display(),
        report.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    // The summary table, with human labels and units rather than raw field names.
    assert!(
        dom.contains("<table class=\"summary\">"),
        "no summary table"
    );
    assert!(dom.contains("wall-clock time") && dom.contains("kg CO2e"));
    assert!(
        !dom.contains(">energy_facility_kwh<"),
        "raw field name shown"
    );
    // Every plot written to the folder is inlined as an <svg> in its own figure.
    for s in &svgs {
        assert!(
            dom.contains(&format!("<figure id=\"{s}\"><svg")),
            "plot {s} missing"
        );
    }
    assert!(count(&dom, "<svg") >= svgs.len());
    println!(
        "rendered {} with {}: table and {} plots present",
        report.display(),
        chrome.display(),
        svgs.len()
    );
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string()
}
