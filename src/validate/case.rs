//! One published case: its `[validation]` table (figures, citations, `known_miss`) and its simulation.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Check, CheckKind, DeviceClass, FigureKind, ValidateError};
use crate::scenario::{Scenario, StrategyKind};
use crate::sim::eval::{eval_cost, EvalSchedule};
use crate::sim::{simulate, RunOutcome};

/// Published figures of a case (any subset; at least one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Facility energy [MWh].
    pub energy_mwh: Option<f64>,
    /// GPU (accelerator) energy only [MWh].
    pub gpu_energy_mwh: Option<f64>,
    /// Wall-clock training time [days].
    pub days: Option<f64>,
    /// Wall-clock training time [minutes] (MLPerf time to train).
    pub minutes: Option<f64>,
    /// Emissions [t CO2e].
    pub tco2e: Option<f64>,
    /// Accelerator-hours [h].
    pub gpu_hours: Option<f64>,
    /// Mean time of one optimizer step (iteration) [s].
    pub step_s: Option<f64>,
    /// Training throughput of the whole job [tokens/s].
    pub tokens_per_s: Option<f64>,
    /// Training throughput per accelerator [tokens/s].
    pub tokens_per_s_per_gpu: Option<f64>,
    /// Training FLOPs of one 4096-token sequence, as DeepSeekMoE Table 3 counts them [TFLOP].
    pub train_tflop_per_4k_tokens: Option<f64>,
    /// Step time of `baseline` / step time of this case [ratio].
    pub speedup: Option<f64>,
}

impl Published {
    /// (key, table label, kind, value) of every figure this struct can hold.
    fn figures(&self) -> [(&'static str, &'static str, FigureKind, Option<f64>); 11] {
        use FigureKind::{Arch, Energy, Time};
        [
            ("energy_mwh", "energy MWh", Energy, self.energy_mwh),
            (
                "gpu_energy_mwh",
                "GPU energy MWh",
                Energy,
                self.gpu_energy_mwh,
            ),
            ("days", "days", Time, self.days),
            ("minutes", "minutes", Time, self.minutes),
            ("tco2e", "tCO2e", Energy, self.tco2e),
            ("gpu_hours", "GPU-hours", Time, self.gpu_hours),
            ("step_s", "step s", Time, self.step_s),
            ("tokens_per_s", "tokens/s", Time, self.tokens_per_s),
            (
                "tokens_per_s_per_gpu",
                "tokens/s/GPU",
                Time,
                self.tokens_per_s_per_gpu,
            ),
            (
                "train_tflop_per_4k_tokens",
                "TFLOP per 4k tokens",
                Arch,
                self.train_tflop_per_4k_tokens,
            ),
            ("speedup", "speed-up", Time, self.speedup),
        ]
    }
}

/// What CO2 is computed from: facility energy (IT × PUE) or accelerator energy only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Co2Basis {
    /// Facility energy × intensity (Patterson et al.).
    #[default]
    Facility,
    /// Simulated accelerator energy × intensity.
    Gpu,
    /// GPU-hours × the accelerator's TDP × intensity: the accounting Meta's LLaMA and Llama 2
    /// papers state for their tCO2e (Touvron et al. 2023a, Sec. 6 and Table 15; 2023b, Table 2:
    /// "power consumption ... the peak power capacity per GPU device"), so the figure checks the
    /// GPU-hours behind it, not a measured energy.
    Tdp,
}

/// The `[validation]` table of a case file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSpec {
    /// Case name in the table.
    pub case: String,
    /// Citations: paper, table or section, and whether the figure was checked against the primary text.
    pub sources: Vec<String>,
    /// Strategy whose result is compared (default: the scenario's first).
    pub strategy: Option<String>,
    /// Carbon intensity used for `tco2e` [kg CO2e/kWh] (the paper's figure).
    pub ci_kg_per_kwh: Option<f64>,
    /// Energy the CO2 figure is based on.
    #[serde(default)]
    pub co2_basis: Co2Basis,
    /// Simulate this many optimizer steps and scale time, energy and GPU-hours to
    /// `training.tokens` (every step of a 24/7 dense or steady-routing MoE run costs the same, so
    /// this is exact up to the first step's warm-up). Default: the whole run.
    pub simulate_steps: Option<u64>,
    /// Another scenario file (relative to this one) whose step time over this case's step time is
    /// the published `speedup` (the same hardware with another framework).
    pub baseline: Option<String>,
    /// Assumptions: what the paper does not give and what the case takes instead.
    #[serde(default)]
    pub note: String,
    /// Why this case is allowed to miss its tolerance today: the measured error and the physics
    /// suspected missing. A case without it fails the suite when it leaves its tolerance.
    pub known_miss: Option<String>,
    /// Evaluations inside the published time (MLPerf's timed region holds them): their time is
    /// added to the time figures, and at the run's mean power to the energy figures.
    pub eval: Option<EvalTable>,
    /// The published figures.
    pub published: Published,
}

/// `[validation.eval]`: how often the published run evaluated, and over how much data.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalTable {
    /// Training sequences between two evaluations [sequences].
    pub every_seqs: u64,
    /// Sequences in the evaluation set [sequences].
    pub seqs: u64,
}

fn spec_err(path: &Path, key: &str, message: impl Into<String>) -> ValidateError {
    ValidateError::Spec {
        path: path.display().to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, ValidateError> {
    std::fs::read_to_string(path).map_err(|source| ValidateError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Read the `[validation]` table of a case file.
pub fn read_spec(path: &Path) -> Result<ValidationSpec, ValidateError> {
    let text = read(path)?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| spec_err(path, "", format!("not valid TOML: {}", e.message())))?;
    let v = table.remove("validation").ok_or_else(|| {
        spec_err(
            path,
            "",
            "a validation case needs a [validation] table (case, sources, published)",
        )
    })?;
    let spec = ValidationSpec::deserialize(v).map_err(|e| spec_err(path, "", e.message()))?;
    if spec.sources.iter().all(|s| s.trim().is_empty()) {
        return Err(spec_err(
            path,
            ".sources",
            "give at least one citation (paper, table or section, and the figure)",
        ));
    }
    if spec
        .known_miss
        .as_ref()
        .is_some_and(|r| r.trim().is_empty())
    {
        return Err(spec_err(
            path,
            ".known_miss",
            "give the reason: the measured error and the physics suspected missing",
        ));
    }
    if spec.simulate_steps == Some(0) {
        return Err(spec_err(path, ".simulate_steps", "must be at least 1"));
    }
    if let Some(e) = spec.eval {
        for (key, v) in [("every_seqs", e.every_seqs), ("seqs", e.seqs)] {
            if v == 0 {
                return Err(spec_err(
                    path,
                    &format!(".eval.{key}"),
                    "must be at least 1 sequence",
                ));
            }
        }
    }
    if let Some(ci) = spec.ci_kg_per_kwh {
        if !(ci.is_finite() && ci >= 0.0) {
            return Err(spec_err(
                path,
                ".ci_kg_per_kwh",
                format!("must be ≥ 0 kg/kWh, got {ci}"),
            ));
        }
    }
    let figures = spec.published.figures();
    if figures.iter().all(|f| f.3.is_none()) {
        let keys: Vec<&str> = figures.iter().map(|f| f.0).collect();
        return Err(spec_err(
            path,
            ".published",
            format!("give at least one of {}", keys.join(", ")),
        ));
    }
    for (k, _, _, v) in figures {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(spec_err(
                    path,
                    &format!(".published.{k}"),
                    format!("must be > 0, got {v}"),
                ));
            }
        }
    }
    if spec.published.tco2e.is_some() && spec.ci_kg_per_kwh.is_none() {
        return Err(spec_err(
            path,
            ".ci_kg_per_kwh",
            "published tco2e needs the paper's carbon intensity [kg CO2e/kWh]",
        ));
    }
    if spec.published.speedup.is_some() != spec.baseline.is_some() {
        return Err(spec_err(
            path,
            ".baseline",
            "a published `speedup` needs `baseline` (the scenario it is measured against), and `baseline` needs `speedup`",
        ));
    }
    Ok(spec)
}

/// The simulated run of one scenario file.
struct Simulated {
    outcome: RunOutcome,
    /// Published tokens / simulated tokens.
    scale: f64,
    gpus: f64,
    train_flop_per_token: f64,
    device: DeviceClass,
    /// The accelerator's TDP [W].
    tdp_w: f64,
    /// Time of the evaluations of the published run (`[validation.eval]`; 0 without) [s].
    eval_s: f64,
}

impl Simulated {
    fn step_s(&self) -> f64 {
        let s = &self.outcome.sums;
        s.time_s / s.steps.max(1) as f64
    }
}

fn simulate_file(
    path: &Path,
    strategy: Option<&str>,
    steps: Option<u64>,
    eval: Option<EvalTable>,
) -> Result<Simulated, ValidateError> {
    let mut scenario = Scenario::from_file(path)?;
    let kind = match strategy {
        Some(s) => StrategyKind::from_name(s)
            .filter(|k| scenario.strategies.contains(k))
            .ok_or_else(|| {
                spec_err(
                    path,
                    ".strategy",
                    format!("`{s}` is not one of the scenario's strategies"),
                )
            })?,
        None => scenario.strategies[0],
    };
    let job = scenario
        .job(kind)
        .ok_or_else(|| spec_err(path, ".strategy", "the strategy has no model"))?;
    let batch_tokens = job.plan.global_batch_seqs as f64 * job.model.seq_len as f64;
    let train_flop_per_token = job.model.flops_per_token_train();
    let gpus = job.plan.gpus() as f64;
    let device = DeviceClass::of(&scenario.cluster.accelerator.key);
    let tdp_w = scenario.cluster.accelerator.tdp_w;
    let eval_s = match eval {
        None => 0.0,
        Some(e) => {
            let schedule = EvalSchedule {
                every_seqs: e.every_seqs,
                eval_seqs: e.seqs,
            };
            let train_steps = (scenario.training.tokens / batch_tokens).round() as u64;
            eval_cost(job, &scenario.cluster, schedule, train_steps)
                .map_err(|e| spec_err(path, ".eval", e.to_string()))?
                .total_s
        }
    };
    if scenario.training.target_loss.is_some() {
        return Err(spec_err(
            path,
            "",
            "a validation case trains a published token budget: give training.tokens, not target_loss",
        ));
    }
    // A published run trained its tokens, whatever loss it reached: compare at equal tokens.
    scenario.training.compare = crate::scenario::Compare::Tokens;
    let published_tokens = scenario.training.tokens;
    if let Some(n) = steps {
        scenario.training.tokens = published_tokens.min(n as f64 * batch_tokens);
    }
    let res = simulate(&scenario).map_err(|source| ValidateError::Sim {
        path: path.display().to_string(),
        source,
    })?;
    let outcome = res
        .strategies
        .into_iter()
        .find(|r| r.kind == kind)
        .ok_or_else(|| spec_err(path, ".strategy", "strategy produced no result"))?
        .outcome;
    if !(outcome.tokens > 0.0 && outcome.wall_s > 0.0) {
        return Err(spec_err(path, "", "the simulated run trained no tokens"));
    }
    Ok(Simulated {
        scale: published_tokens / outcome.tokens,
        outcome,
        gpus,
        train_flop_per_token,
        device,
        tdp_w,
        eval_s,
    })
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub case: String,
    /// Scenario file (or data folder).
    pub file: String,
    /// Citations.
    pub sources: Vec<String>,
    /// Assumptions.
    pub note: String,
    /// Why the case may miss its tolerance (if it is a known miss).
    pub known_miss: Option<String>,
    /// The figures compared.
    pub checks: Vec<Check>,
}

impl CaseResult {
    /// Whether every figure is within tolerance.
    pub fn within(&self) -> bool {
        self.checks.iter().all(Check::ok)
    }
    /// Whether this case fails the suite: out of tolerance and not marked `known_miss`.
    pub fn fails(&self) -> bool {
        !self.within() && self.known_miss.is_none()
    }
}

/// Simulate one published case.
pub fn run_case(path: &Path) -> Result<CaseResult, ValidateError> {
    let spec = read_spec(path)?;
    let sim = simulate_file(
        path,
        spec.strategy.as_deref(),
        spec.simulate_steps,
        spec.eval,
    )?;
    let device = sim.device;
    let baseline_step_s = match &spec.baseline {
        None => None,
        Some(b) => {
            let bp: PathBuf = path.parent().unwrap_or(Path::new(".")).join(b);
            Some(simulate_file(&bp, None, spec.simulate_steps, None)?.step_s())
        }
    };
    let o = &sim.outcome;
    // Published tokens / simulated tokens, for the training time and energy; the evaluations
    // come on top, drawing the run's mean power (forward passes of the same kernels).
    let k = sim.scale;
    let train_s = k * o.wall_s;
    let wall_s = train_s + sim.eval_s;
    let with_eval = wall_s / train_s;
    let facility_mwh = with_eval * k * o.totals.facility_j / 3.6e9;
    let gpu_mwh = with_eval * k * o.totals.gpu_j / 3.6e9;
    let co2_t = spec.ci_kg_per_kwh.unwrap_or(0.0)
        * match spec.co2_basis {
            Co2Basis::Facility => facility_mwh,
            Co2Basis::Gpu => gpu_mwh,
            Co2Basis::Tdp => with_eval * k * o.gpu_hours * sim.tdp_w / 1e6,
        };
    let tokens_per_s = o.tokens / o.wall_s;
    let simulated = |key: &str| -> f64 {
        match key {
            "energy_mwh" => facility_mwh,
            "gpu_energy_mwh" => gpu_mwh,
            "days" => wall_s / 86_400.0,
            "minutes" => wall_s / 60.0,
            "tco2e" => co2_t,
            "gpu_hours" => with_eval * k * o.gpu_hours,
            "step_s" => sim.step_s(),
            "tokens_per_s" => tokens_per_s,
            "tokens_per_s_per_gpu" => tokens_per_s / sim.gpus,
            "train_tflop_per_4k_tokens" => sim.train_flop_per_token * 4096.0 / 1e12,
            "speedup" => baseline_step_s.unwrap_or(f64::NAN) / sim.step_s(),
            _ => f64::NAN,
        }
    };
    let checks = spec
        .published
        .figures()
        .into_iter()
        .filter_map(|(key, label, figure_kind, published)| {
            published.map(|published| Check {
                case: spec.case.clone(),
                figure: label.into(),
                figure_kind,
                published,
                simulated: simulated(key),
                tolerance: device.tolerance(),
                kind: CheckKind::Published(device),
            })
        })
        .collect();
    Ok(CaseResult {
        case: spec.case,
        file: path.display().to_string(),
        sources: spec.sources,
        note: spec.note,
        known_miss: spec.known_miss,
        checks,
    })
}

/// The scenario files of a validation folder (`*.toml` with a `[validation]` table), sorted by name.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, ValidateError> {
    let io = |source| ValidateError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.extension().is_some_and(|x| x == "toml")
            && read(&p)?.lines().any(|l| l.trim() == "[validation]")
        {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}
