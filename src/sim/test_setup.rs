//! Test builders: the one place tests spell out a `RunSetup` and a `Knobs`, so a new field touches one line.

use super::run::RunSetup;
use super::step::Knobs;
use crate::scenario::{parse_scenario, Scenario};
use std::path::{Path, PathBuf};

/// Knobs at `power_limit_w` [W], `top_k` experts per token and `micro_batches` per step; every other
/// knob as the model has it.
pub(crate) fn knobs(power_limit_w: f64, top_k: u32, micro_batches: u32) -> Knobs {
    Knobs {
        power_limit_w,
        top_k,
        micro_batches,
        capacity_factor: None,
        active_experts: None,
    }
}

/// A bare run: `full` knobs in every mode, one token to train, 8 GPUs of 700 W (100 W idle), no node
/// or network power, PUE 1, no pause costs, nodes released while paused, every step priced, no
/// schedules. Tests change what they need with struct-update syntax.
pub(crate) fn bare_setup(full: Knobs) -> RunSetup {
    RunSetup {
        eval: None,
        tokens: 1.0,
        count_effective: false,
        top_k_by_hour: None,
        full,
        throttled: full,
        checkpoint_s: 0.0,
        restore_s: 0.0,
        release_when_paused: true,
        node_w: 0.0,
        node_load_w: 0.0,
        gpu_full_w: 700.0,
        network_w: 0.0,
        gpu_idle_w: 100.0,
        gpus: 8.0,
        pue: 1.0,
        pue_by_interval: None,
        block_steps: 1,
        schedules: Default::default(),
        power: Default::default(),
    }
}

/// The shipped scenarios' folder (relative paths inside a scenario resolve from it).
pub(crate) fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The text of `scenarios/FILE` with each `(from, to)` replaced once, in order; panics naming an
/// anchor the file lacks (a test edit that silently missed would test the unedited scenario).
pub(crate) fn shipped_text(file: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(scenarios_dir().join(file)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "anchor {from:?} missing in {file}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// `text` parsed as the scenario file `file` of the shipped folder.
pub(crate) fn parse_shipped(file: &str, text: &str) -> Scenario {
    parse_scenario(file, text, &scenarios_dir()).unwrap()
}

/// `scenarios/FILE` with `edits` (see [`shipped_text`]), parsed.
pub(crate) fn shipped_scenario(file: &str, edits: &[(&str, &str)]) -> Scenario {
    parse_shipped(file, &shipped_text(file, edits))
}

/// A job of `model` on `plan` under `schedule` with the default kernels, optimizer and framework
/// and sequence parallelism on (the drawn and hand-built plans of the agreement tests).
pub(crate) fn job_of(
    model: crate::workload::ModelSpec,
    plan: crate::workload::ParallelPlan,
    schedule: crate::workload::Schedule,
) -> crate::scenario::Job {
    crate::scenario::Job {
        model,
        plan,
        expert_kernel: Default::default(),
        router_kernel: Default::default(),
        optimizer: Default::default(),
        sequence_parallel: true,
        attention_kernel: Default::default(),
        framework: Default::default(),
        fp8_recipe: Default::default(),
        fp8_scale_update: Default::default(),
        fp8_amax_reduce: Default::default(),
        moe_impl: Default::default(),
        einsum: Default::default(),
        grad_reduce_dtype: None,
        schedule,
    }
}

/// The result of strategy `kind` in `res`; panics naming the kind if the run has none.
pub(crate) fn strategy_of(
    res: &super::Results,
    kind: crate::scenario::StrategyKind,
) -> &super::StrategyResult {
    res.strategies
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} result"))
}

/// The planner's inputs over `prepared`'s grid and PUE for `setup`: effective tokens counted,
/// forecast stream 3, no `[cost]` table (the plan tests' fixed set).
pub(crate) fn plan_inputs<'a>(
    setup: &'a RunSetup,
    prepared: &'a super::prepare::Prepared,
) -> super::plan::PlanInputs<'a> {
    super::plan::PlanInputs {
        setup,
        grid: &prepared.grid,
        pue: &prepared.pue,
        count_effective: true,
        forecast_seed: 3,
        cost: None,
    }
}
