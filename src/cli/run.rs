//! `moesim run`, `plot`, `check` and `strategies`: one scenario simulated, its folder plotted, a file checked.

use super::{fail, plot_fail};
use clap::ValueEnum;
use moesim::{report, sweep, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `moesim run` prints: the comparison table or the summary as JSON.
// (No doc lines on the variants: clap would turn them into a longer `--help`.)
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `moesim plot`: the plots and report of an output folder, or the plots of a routing trace.
pub fn plot(dir: Option<PathBuf>, trace: Option<PathBuf>, out: Option<PathBuf>) -> ExitCode {
    if let Some(code) = out.as_deref().and_then(super::out_is_not_a_folder) {
        return code;
    }
    let written = match (dir, trace) {
        (Some(d), t) => report::plot_dir(&d, &report::PlotOptions { trace: t }),
        (None, Some(t)) => {
            let stem = t.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
            let d = out.unwrap_or_else(|| PathBuf::from("outputs").join(format!("trace_{stem}")));
            report::plot_trace_file(&t, &d)
        }
        (None, None) => {
            return fail(
                2,
                "give an output folder (moesim plot outputs/NAME) or --trace FILE",
            )
        }
    };
    match written {
        Ok(w) => {
            for p in w {
                outln!("wrote {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => plot_fail(e),
    }
}

/// Monte Carlo samples of `moesim run` with no scenario file (the embedded default) and no
/// `--samples`: circadian's saving is printed with its p5–p95 band. 32 samples take about 1 s of
/// CPU with step aggregation (BENCHMARKS.md); `--no-samples` skips them.
pub const DEFAULT_SAMPLES: u32 = 32;

/// `--samples N`: a whole number ≥ 1 (clap names the flag in the error).
pub fn parse_samples(v: &str) -> Result<u32, String> {
    let max = moesim::scenario::MAX_SAMPLES;
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{v}` is not a sample count; give a whole number from 1 to {max}"
        )),
    }
}

/// `moesim run`: simulate every strategy of a scenario, write the outputs and print the comparison;
/// `waveform`: the window [s from the start] of waveform.csv.
#[allow(clippy::too_many_arguments)]
pub fn run(
    scenario: Option<PathBuf>,
    out: Option<PathBuf>,
    format: Format,
    no_plots: bool,
    event_level: bool,
    exact: bool,
    samples: Option<u32>,
    waveform: Option<(f64, f64)>,
) -> ExitCode {
    let s = match &scenario {
        Some(p) => Scenario::from_file(p),
        None => Scenario::default_embedded(),
    };
    let mut s = match s {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    // `--exact`: every step priced, in this run, its counterfactuals and its samples.
    s.training.exact |= exact;
    s.power.window_s = waveform;
    if sweep::has_sweep(&s.text) {
        eprintln!(
            "note: {} has a [sweep] table; `run` ignores it (use `moesim sweep`)",
            s.file
        );
    }
    if let Some(code) = out.as_deref().and_then(super::out_is_not_a_folder) {
        return code;
    }
    let bars = super::progress::Bars::start(&format!(
        "simulating {} ({})",
        s.name,
        s.strategies
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let res = moesim::sim::simulate_opts(&s, &bars, event_level);
    bars.clear();
    let mut res = match res {
        Ok(r) => r,
        Err(e) if e.is_input_error() => return fail(2, e),
        Err(e) => return fail(1, e),
    };
    // Where each saving comes from: counterfactual runs, one cause switched on at a time. A chain that
    // cannot run (a counterfactual outlasting the grid series) leaves the table without its split.
    match moesim::attribute(&s, &res) {
        Ok(a) => res.attribution = Some(a),
        Err(e) => eprintln!("note: the savings could not be split by cause: {e}"),
    }
    let dir = out.unwrap_or_else(|| PathBuf::from("outputs").join(&s.name));
    let mut written = match report::write_outputs(&res, &dir) {
        Ok(w) => w,
        Err(e) => return fail(1, e),
    };
    match report::write_run_files(&s, &res, &dir) {
        Ok(w) => written.extend(w),
        Err(e) => return fail(1, e),
    }
    match report::write_waveform(&res, &dir, no_plots) {
        Ok(w) => written.extend(w),
        Err(e @ report::WaveformOutError::Window(_)) => return fail(2, e),
        Err(e) => return fail(1, e),
    }
    if let Some(w) = waveform {
        for n in waveform_notes(&res, w) {
            eprintln!("note: {n}");
        }
    }
    // --event-level: the per-layer energy lost to routing skew, per grid interval.
    if let Some(csv) = report::run_layers_csv(&res) {
        let path = dir.join("layers.csv");
        if let Err(e) = moesim::io::write_atomic(&path, csv.as_bytes()) {
            return fail(1, e);
        }
        written.push(path);
        if !no_plots {
            match report::plot_run_skew(&res, &dir) {
                Ok(w) => written.extend(w),
                Err(e) => return plot_fail(e),
            }
        }
    }
    // The Monte Carlo (before the plots, which draw its bands): --samples, or the [uncertainty]
    // table; the embedded default samples DEFAULT_SAMPLES times unless told not to (`Some(0)`).
    let samples = match samples {
        None if scenario.is_none() && s.uncertainty.is_none() && !event_level => {
            Some(DEFAULT_SAMPLES)
        }
        n => n,
    };
    let sampled = match samples {
        Some(0) => None,
        n => match super::samples::run(&s, n, &dir) {
            Ok(x) => x,
            Err(code) => return code,
        },
    };
    if let Some((_, w)) = &sampled {
        written.extend(w.iter().cloned());
    }
    if !no_plots {
        match report::plot_dir(&dir, &report::PlotOptions::default()) {
            Ok(w) => written.extend(w),
            Err(e) => return plot_fail(e),
        }
    }
    match format {
        Format::Json => outln!("{}", report::to_json(&res)),
        Format::Table => {
            outln!(
                "scenario {} ({}) — grid {} (mean {:.0} gCO2/kWh), PUE {:.2}",
                s.name,
                s.file,
                res.grid.source,
                res.grid.mean_ci(),
                res.pue
            );
            for n in &res.grid.notes {
                outln!("grid: {n}");
            }
            outln!("{}", report::table(&res));
            if let Some(t) = report::sites_table(&res) {
                outln!("{t}");
            }
            if let Some((m, _)) = &sampled {
                for l in moesim::uncertainty::band_lines(m) {
                    outln!("{l}");
                }
            }
            for p in written {
                outln!("wrote {}", p.display());
            }
        }
    }
    ExitCode::SUCCESS
}

/// Notes for a `--waveform` window `w` [s from the start] that reaches past a strategy's run: a window
/// that starts after the run ended draws an empty panel, one that ends after it a panel that stops early.
fn waveform_notes(res: &moesim::sim::Results, w: (f64, f64)) -> Vec<String> {
    let h = |s: f64| s / 3600.0;
    let mut notes = Vec::new();
    for r in &res.strategies {
        let end = r.outcome.wall_s;
        if !end.is_finite() {
            continue;
        }
        let name = r.kind.name();
        if w.0 >= end {
            notes.push(format!(
                "--waveform {}..{} starts after {name}'s run ended: its waveform panel is empty (the run lasts {:.3} h; give START below {:.3})",
                h(w.0), h(w.1), h(end), h(end)
            ));
        } else if w.1 > end {
            notes.push(format!(
                "--waveform {}..{} ends after {name}'s run: its waveform panel stops at {:.3} h (the run's end)",
                h(w.0), h(w.1), h(end)
            ));
        }
    }
    notes
}

/// `moesim check`: validate a scenario and open every file it names (grid, weather, trace), exactly as
/// `run` would before its first step, and print the plan's size.
pub fn check(scenario: &Path) -> ExitCode {
    let s = match Scenario::from_file(scenario) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    match moesim::prepare(&s) {
        Ok(p) => {
            outln!(
                "{}: ok ({} strategies: {})\n{}",
                scenario.display(),
                s.strategies.len(),
                s.strategies
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.plan.describe()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.is_input_error() => fail(2, e),
        Err(e) => fail(1, e),
    }
}

/// `moesim strategies`: the strategies a scenario can compare.
pub fn strategies() -> ExitCode {
    for (_, name, what) in moesim::StrategyKind::ALL {
        outln!("{name:<10} {what}");
    }
    ExitCode::SUCCESS
}
