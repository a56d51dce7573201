//! `moesim step`: one step of one strategy of a scenario, at the fast path and (with
//! `--event-level`, implied by `--chrome-trace`) at event level, with its Perfetto trace and
//! per-layer skew energy.

use super::fail;
use moesim::sim::event_step::{scenario::scenario_step, skew, trace};
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
    let mut st = match scenario_step(&s, a.strategy.as_deref(), a.step) {
        Ok(x) => x,
        Err(e) => return fail(if e.is_input_error() { 2 } else { 1 }, e),
    };
    outln!(
        "{} / {}: step {} of {}",
        s.name,
        st.kind.name(),
        st.step,
        st.steps
    );
    let f = st.fast;
    outln!(
        "  fast path:   {:>10.4} s  GPU {:>14.1} J  waiting {:>14.1} J",
        f.time_s,
        f.gpu_energy_j,
        f.waiting_energy_j
    );
    if !(a.event_level || a.chrome_trace.is_some()) {
        return ExitCode::SUCCESS;
    }
    let t0 = std::time::Instant::now();
    let r = match st
        .model
        .step(&st.shares, st.knobs, a.chrome_trace.is_some())
    {
        Ok(r) => r,
        Err(e) => return fail(1, e),
    };
    let wall = t0.elapsed().as_secs_f64();
    outln!(
        "  event level: {:>10.4} s  GPU {:>14.1} J  waiting {:>14.1} J  ({} GPUs simulated, each for {}; {} events in {:.2} s)",
        r.time_s,
        r.gpu_energy_j,
        r.waiting_energy_j,
        r.gpus_simulated,
        r.gpus_represented,
        r.events,
        wall
    );
    let spin = st.model.input().accelerator.spin_w();
    if let Some(path) = &a.chrome_trace {
        let mut buf = Vec::new();
        let label = format!("{} / {} / step {}", s.name, st.kind.name(), st.step);
        if let Err(e) = trace::write_chrome_trace(&mut buf, &r, spin, &label) {
            return fail(1, format!("{}: cannot write: {e}", path.display()));
        }
        if let Err(e) = moesim::io::write_atomic(path, &buf) {
            return fail(1, e);
        }
        outln!(
            "wrote {} (open it in https://ui.perfetto.dev)",
            path.display()
        );
    }
    if r.assignments > 0.0 {
        let rows = match skew::layer_skew(&mut st.model, &r, st.knobs) {
            Ok(x) => x,
            Err(e) => return fail(1, e),
        };
        let total: f64 = rows.iter().map(|x| x.skew_j).sum();
        outln!("  energy lost to routing skew (MoE collectives, against balanced routing): {total:.1} J");
        let dir = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("outputs").join(&s.name));
        let path = dir.join("layers.csv");
        let rows: Vec<_> = rows.into_iter().map(|x| (st.step, x)).collect();
        if let Err(e) = moesim::io::write_atomic(&path, skew::layers_csv(&rows).as_bytes()) {
            return fail(1, e);
        }
        outln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
