//! `moesim step`: one step (or `--steps N` consecutive steps) of one strategy of a scenario, at
//! the fast path and (with `--event-level`, implied by `--chrome-trace`) at event level, with the
//! first step's Perfetto trace and the per-layer skew energy (`layers.csv`, `skew_heatmap`).

use super::fail;
use moesim::report::{plot_skew_heatmap, SkewCell};
use moesim::sim::event_step::scenario::{scenario_step, ScenarioStep};
use moesim::sim::event_step::{skew, trace};
use moesim::sim::step::{StepCost, PHASE_NAMES};
use moesim::Scenario;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `moesim step`.
#[derive(clap::Args)]
pub struct StepArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Strategy whose step to simulate (default: moe if the scenario runs it, else its first).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Step number, 0-based (the routing of that step of the run).
    #[arg(long, default_value_t = 0)]
    pub step: u64,
    /// Consecutive steps from --step to simulate (with --event-level: layers.csv has a row per
    /// MoE layer and step, and skew_heatmap.png/.svg draws them as layer x step).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub steps: u64,
    /// Simulate the step at event level (priced ops on GPU streams and links) beside the fast path.
    #[arg(long)]
    pub event_level: bool,
    /// Write the event-level step as a Chrome/Perfetto trace (JSON) to this file (implies --event-level).
    #[arg(long)]
    pub chrome_trace: Option<PathBuf>,
    /// Folder for layers.csv (per-layer energy lost to routing skew; default outputs/<scenario name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `moesim step`.
pub fn step(a: StepArgs) -> ExitCode {
    let s = match Scenario::from_file(&a.scenario) {
        Ok(s) => s,
        Err(e) => return fail(2, e),
    };
    if let Some(code) = a.out.as_deref().and_then(super::out_is_not_a_folder) {
        return code;
    }
    let event = a.event_level || a.chrome_trace.is_some();
    if a.step.checked_add(a.steps).is_none() {
        return fail(2, "--step + --steps overflows");
    }
    let mut st = match scenario_step(&s, a.strategy.as_deref(), a.step) {
        Ok(x) => x,
        Err(e) => return fail(if e.is_input_error() { 2 } else { 1 }, e),
    };
    let mut rows = Vec::new();
    for k in 0..a.steps {
        if k > 0 {
            if let Err(e) = st.advance() {
                return fail(if e.is_input_error() { 2 } else { 1 }, e);
            }
        }
        // Only the first step's trace is written (one timeline per file).
        let trace_to = if k == 0 {
            a.chrome_trace.as_ref()
        } else {
            None
        };
        match one_step(&s, &mut st, event, trace_to) {
            Ok(layer_rows) => rows.extend(layer_rows),
            Err(code) => return code,
        }
    }
    let name = st.kind.name();
    if rows.is_empty() {
        return ExitCode::SUCCESS;
    }
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("outputs").join(&s.name));
    let path = dir.join("layers.csv");
    if let Err(e) = moesim::io::write_atomic(&path, skew::layers_csv(&rows).as_bytes()) {
        return fail(1, e);
    }
    outln!("wrote {}", path.display());
    if a.steps > 1 {
        let cells: Vec<SkewCell> = rows
            .iter()
            .map(|(step, r)| SkewCell {
                step: *step,
                layer: r.layer,
                skew_j: r.skew_j,
            })
            .collect();
        let title = format!(
            "Energy lost to routing skew per MoE layer and step ({} / {}, steps {}..{}; event level, against balanced routing)",
            s.name,
            name,
            a.step,
            a.step + a.steps - 1
        );
        match plot_skew_heatmap(&dir, &cells, &title) {
            Ok(paths) => {
                for p in paths {
                    outln!("wrote {}", p.display());
                }
            }
            Err(e) => return fail(1, e),
        }
    }
    ExitCode::SUCCESS
}

/// Simulate the step `st` stands at: print the fast path (and the event level when `event`), write its
/// trace to `trace_to`, and return its per-layer skew rows (event level, MoE only).
fn one_step(
    s: &Scenario,
    st: &mut ScenarioStep,
    event: bool,
    trace_to: Option<&PathBuf>,
) -> Result<Vec<(u64, skew::LayerSkew)>, ExitCode> {
    outln!(
        "{} / {}: step {} of {}",
        s.name,
        st.kind.name(),
        st.step,
        st.steps
    );
    let f = st.fast;
    outln!(
        "  fast path:   {:>10.4} s  GPU {:>14.1} J  waiting {:>14.1} J  migration {:>8.4} s",
        f.time_s,
        f.gpu_energy_j,
        f.waiting_energy_j,
        fast_migration_s(&f)
    );
    if !event {
        return Ok(Vec::new());
    }
    let t0 = std::time::Instant::now();
    let r = match st.model.step(&st.shares, st.knobs, trace_to.is_some()) {
        Ok(r) => r,
        Err(e) => return Err(fail(1, e)),
    };
    let wall = t0.elapsed().as_secs_f64();
    outln!(
        "  event level: {:>10.4} s  GPU {:>14.1} J  waiting {:>14.1} J  migration {:>8.4} s  ({} GPUs simulated, each for {}; {} events in {:.2} s)",
        r.time_s,
        r.gpu_energy_j,
        r.waiting_energy_j,
        r.migration_s,
        r.gpus_simulated,
        r.gpus_represented,
        r.events,
        wall
    );
    let spin = st.model.input().accelerator.spin_w();
    if let Some(path) = trace_to {
        let mut buf = Vec::new();
        let label = format!("{} / {} / step {}", s.name, st.kind.name(), st.step);
        if let Err(e) = trace::write_chrome_trace(&mut buf, &r, spin, &label) {
            return Err(fail(1, format!("{}: cannot write: {e}", path.display())));
        }
        if let Err(e) = moesim::io::write_atomic(path, &buf) {
            return Err(fail(1, e));
        }
        outln!(
            "wrote {} (open it in https://ui.perfetto.dev)",
            path.display()
        );
    }
    if r.assignments <= 0.0 {
        return Ok(Vec::new());
    }
    let rows = match skew::layer_skew(&mut st.model, &r, st.knobs) {
        Ok(x) => x,
        Err(e) => return Err(fail(1, e)),
    };
    let total: f64 = rows.iter().map(|x| x.skew_j).sum();
    outln!(
        "  energy lost to routing skew (MoE collectives, against balanced routing): {total:.1} J"
    );
    Ok(rows.into_iter().map(|x| (st.step, x)).collect())
}

/// The expert migration of a rebalancing step on the fast path [s] (its `rebalance` phase; 0 on
/// a step that does not rebalance).
fn fast_migration_s(c: &StepCost) -> f64 {
    PHASE_NAMES
        .iter()
        .position(|n| *n == "rebalance")
        .map_or(0.0, |i| c.phases.time_s[i])
}
