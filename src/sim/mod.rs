//! Puts the models together: the step model and the run-level simulation of every strategy of a scenario.

mod meter;
mod run;
pub mod step;
pub mod step_events;

pub use meter::{Meter, Power, Totals};
pub use run::{run, RunError, RunOutcome, RunSetup, StepSums, TimelineRow};
pub use step::{Knobs, StepCost, StepModel};

use crate::grid::{self, GridError, GridSeries};
use crate::quality::{self, LossEstimate};
use crate::routing::{read_trace, Router, RoutingError, RoutingTrace};
use crate::scenario::{Job, RoutingSource, Scenario, StrategyKind};
use crate::strategy::{CircadianPolicy, Policy, Rates};
use crate::workload::FfnKind;
use rayon::prelude::*;
use std::sync::Arc;

/// Why a scenario could not be simulated.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The grid series could not be built or loaded.
    #[error(transparent)]
    Grid(Box<GridError>),
    /// The target loss is below what the model can reach.
    #[error("strategy `{strategy}`: training.target_loss = {target} is unreachable: the scaling law's floor for this model is {floor:.3}; pick a higher target")]
    Unreachable {
        /// Strategy name.
        strategy: &'static str,
        /// Target loss.
        target: f64,
        /// Loss with infinite data.
        floor: f64,
    },
    /// The scenario lacks what a strategy needs (the validator normally catches this first).
    #[error("strategy `{strategy}` needs {what}")]
    Missing {
        /// Strategy name.
        strategy: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// The routing trace could not be read or does not fit the model.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// A run could not complete.
    #[error("strategy `{strategy}`: {source}")]
    Run {
        /// Strategy name.
        strategy: &'static str,
        /// What went wrong.
        source: RunError,
    },
}

impl From<GridError> for SimError {
    fn from(e: GridError) -> Self {
        SimError::Grid(Box::new(e))
    }
}

/// The result of one strategy.
#[derive(Debug, Clone)]
pub struct StrategyResult {
    /// Which strategy.
    pub kind: StrategyKind,
    /// Name of the model it trained.
    pub model_name: String,
    /// Total parameters of the model.
    pub params_total: f64,
    /// Parameters active per token.
    pub params_active: f64,
    /// The run.
    pub outcome: RunOutcome,
    /// Deadline [s after start] if the strategy has one.
    pub deadline_s: Option<f64>,
    /// Estimated final loss, with the law used (None if the law could not be applied).
    pub loss: Option<LossEstimate>,
    /// Tokens the quality law counts (dropped assignments and reduced top-k discounted).
    pub effective_tokens: f64,
    /// Model FLOPs utilisation over training time (6·N_active·D-style FLOPs over peak).
    pub mfu: f64,
    /// Chinchilla estimate for a dense model (Hoffmann et al. 2022), beside the comparable law above.
    pub chinchilla: Option<LossEstimate>,
    /// How routing was produced (router model, trace and its mapping), for MoE models.
    pub routing: Option<String>,
    /// Expert slots moved by rebalancing (on the rank that received most, summed over rebalances).
    pub moved_slots: u64,
}

impl StrategyResult {
    /// Whether the run met its deadline (None without a deadline).
    pub fn deadline_met(&self) -> Option<bool> {
        self.deadline_s.map(|d| self.outcome.wall_s <= d + 1e-6)
    }
}

/// Everything a scenario run produced.
#[derive(Debug, Clone)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// The grid series used.
    pub grid: GridSeries,
    /// Mean PUE over the grid series.
    pub pue: f64,
    /// PUE of each grid interval (constant unless weather-driven).
    pub pue_by_interval: Vec<f64>,
    /// One result per strategy, in scenario order.
    pub strategies: Vec<StrategyResult>,
}

/// The router and step model of `job`, routing set up as the scenario says (placement from the mean loads).
fn models_for(
    s: &Scenario,
    job: &Job,
    trace: &Option<Arc<RoutingTrace>>,
    salt: u64,
) -> Result<(StepModel, Option<Router>), SimError> {
    let mut sm = StepModel::new(job, &s.cluster, s.training.precision);
    let FfnKind::Moe(m) = &job.model.ffn else {
        return Ok((sm, None));
    };
    let seed = s
        .seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt);
    let router = Router::from_spec(
        &s.routing,
        trace.as_ref(),
        m.experts as usize,
        job.model.moe_layers() as usize,
        m.top_k as usize,
        seed,
    )?;
    let full = sm.full_knobs();
    let mean = router.mean_shares(16, sm.assignments_per_layer(full.top_k));
    sm.set_routing(
        s.routing.choice,
        s.routing.placement,
        s.routing.rebalance_every_steps,
        &mean,
    );
    Ok((sm, Some(router)))
}

/// Tokens a strategy trains: the scenario's budget, or (with a target loss) the effective tokens the
/// job's scaling law needs to reach it. Returns (tokens, whether they are effective tokens).
fn token_target(s: &Scenario, job: &Job, kind: StrategyKind) -> Result<(f64, bool), SimError> {
    let Some(target) = s.training.target_loss else {
        return Ok((s.training.tokens, false));
    };
    let law = loss_law(job);
    quality::tokens_for_target_loss(law, target)
        .map(|d| (d, true))
        .ok_or(SimError::Unreachable {
            strategy: kind.name(),
            target,
            floor: law.floor(),
        })
}

/// The scaling law a job's loss is estimated with (Krajewski et al. 2024 for both, one data set).
fn loss_law(job: &Job) -> quality::LossLaw {
    let model = &job.model;
    match &model.ffn {
        FfnKind::Dense => quality::LossLaw::KrajewskiDense {
            params: model.params_non_embedding(),
        },
        // Granularity G = d_ff/d_expert with d_ff the GELU FFN of width 4·d_model (Krajewski et al. 2024);
        // an expert of SwiGLU width f holds as many weights as a GELU FFN of width 1.5·f.
        FfnKind::Moe(m) => quality::LossLaw::KrajewskiMoe {
            total_params: model.params_non_embedding(),
            granularity: (4.0 * model.d_model as f64 / (1.5 * m.expert_ffn_hidden as f64)).max(1.0),
        },
    }
}

/// Full-speed seconds per token of a job, from the fast path with the router's mean loads.
fn seconds_per_token(sm: &mut StepModel, router: &Option<Router>, knobs: Knobs) -> f64 {
    let c = mean_step(sm, router, knobs);
    c.time_s / c.tokens
}

/// A step at the router's mean loads (on a copy of the step model, which stays untouched).
fn mean_step(sm: &StepModel, router: &Option<Router>, knobs: Knobs) -> StepCost {
    let shares = match router {
        Some(r) => r.mean_shares(16, sm.assignments_per_layer(knobs.top_k)),
        None => Vec::new(),
    };
    sm.clone().step(&shares, knobs)
}

/// Simulate every strategy of `scenario` (in parallel; results are the same on any thread count).
pub fn simulate(scenario: &Scenario) -> Result<Results, SimError> {
    let s = scenario;
    let trace = match &s.routing.source {
        RoutingSource::Trace { path, .. } if s.moe.is_some() => Some(Arc::new(read_trace(path)?)),
        _ => None,
    };
    // Horizon of the grid series: long enough for the slowest plausible run.
    let mut horizon_s: f64 = 2.0 * 86_400.0;
    for kind in &s.strategies {
        if let Some(job) = s.job(*kind) {
            let (mut sm, router) = models_for(s, job, &trace, 0)?;
            let full = sm.full_knobs();
            let est = seconds_per_token(&mut sm, &router, full) * token_target(s, job, *kind)?.0;
            let deadline = if *kind == StrategyKind::Circadian {
                s.circadian.as_ref().map_or(0.0, |c| c.deadline_s)
            } else {
                0.0
            };
            horizon_s = horizon_s.max((deadline + est) * 1.3 + 2.0 * 86_400.0);
        }
    }
    let horizon_s = ((horizon_s / 86_400.0).ceil() * 86_400.0) as i64;
    let grid = grid::series_for(&s.grid, s.training.start_utc_s, horizon_s)?;
    let pue = Arc::new(grid::pue_by_interval(
        &grid,
        s.cluster.pue,
        s.cluster.weather_pue.as_ref(),
    )?);
    let results: Vec<Result<StrategyResult, SimError>> = s
        .strategies
        .par_iter()
        .enumerate()
        .map(|(i, kind)| simulate_strategy(s, *kind, i as u64, &grid, &pue, &trace))
        .collect();
    let strategies = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(Results {
        scenario: s.name.clone(),
        grid,
        pue: pue.iter().sum::<f64>() / pue.len().max(1) as f64,
        pue_by_interval: pue.to_vec(),
        strategies,
    })
}

fn simulate_strategy(
    s: &Scenario,
    kind: StrategyKind,
    salt: u64,
    grid: &GridSeries,
    pue: &Arc<Vec<f64>>,
    trace: &Option<Arc<RoutingTrace>>,
) -> Result<StrategyResult, SimError> {
    // The scenario validator guarantees the job exists for every listed strategy.
    let Some(job) = s.job(kind) else {
        return Err(SimError::Missing {
            strategy: kind.name(),
            what: "a model table",
        });
    };
    let acc = &s.cluster.accelerator;
    let (mut sm, mut router) = models_for(s, job, trace, salt + 1)?;
    let (target_tokens, count_effective) = token_target(s, job, kind)?;
    let full = sm.full_knobs();
    let mut throttled = full;
    let (mut checkpoint_s, mut restore_s) = (0.0, 0.0);
    let mut deadline_s = None;
    let mut policy = match kind {
        StrategyKind::Circadian => {
            let c = s.circadian.as_ref().ok_or(SimError::Missing {
                strategy: kind.name(),
                what: "a [strategy.circadian] table",
            })?;
            throttled = Knobs {
                power_limit_w: c.throttle_power_cap_w,
                top_k: c.throttle_top_k,
                micro_batches: ((full.micro_batches as f64 * c.throttle_batch_fraction).round()
                    as u32)
                    .max(1),
            };
            checkpoint_s = c.checkpoint_write_s;
            restore_s = c.restore_s;
            deadline_s = Some(c.deadline_s);
            let overhead_w = s.cluster.node_overhead_w * s.cluster.nodes() as f64
                + s.cluster.fabric.switch_power_w();
            let (f, t) = (
                mean_step(&sm, &router, full),
                mean_step(&sm, &router, throttled),
            );
            // With a target loss the run counts effective tokens: a lower top-k trains less per token.
            let k_eff = if count_effective && full.top_k > 0 {
                (throttled.top_k as f64 / full.top_k as f64).min(1.0)
            } else {
                1.0
            };
            let rates = Rates {
                full_tps: f.tokens / f.time_s,
                throttled_tps: t.tokens / t.time_s * k_eff,
                pause_overhead_s: checkpoint_s + restore_s,
                full_w: f.gpu_energy_j / f.time_s + overhead_w,
                throttled_w: t.gpu_energy_j / t.time_s + overhead_w,
                paused_w: if s.cluster.release_nodes_when_paused {
                    0.0
                } else {
                    s.cluster.gpus as f64 * acc.idle_w + overhead_w
                },
            };
            // Cost of one joule of IT energy in each interval: facility energy × intensity, × price, or PUE.
            let signal: Vec<f64> = match c.objective {
                crate::scenario::Objective::Co2 => grid
                    .ci_g_per_kwh
                    .iter()
                    .zip(pue.iter())
                    .map(|(c, p)| c * p)
                    .collect(),
                crate::scenario::Objective::Cost => match &grid.price_per_mwh {
                    Some(pr) => pr.iter().zip(pue.iter()).map(|(c, p)| c * p).collect(),
                    None => return Err(SimError::Missing { strategy: kind.name(), what: "a price (grid.price_per_mwh or a price column) for objective = \"cost\"" }),
                },
                crate::scenario::Objective::Energy => pue.to_vec(),
                // Grid load weighs each interval by how loaded the grid is (MW), as the seed literature's
                // "low-load hours"; energy still counts through PUE.
                crate::scenario::Objective::Load => match &grid.load_mw {
                    Some(l) => l.iter().zip(pue.iter()).map(|(c, p)| c * p).collect(),
                    None => return Err(SimError::Missing { strategy: kind.name(), what: "a grid series with load (a profile region with load, or a load column) for objective = \"load\"" }),
                },
            };
            let hours = (0..grid.ci_g_per_kwh.len())
                .map(|i| grid.local_hour(i))
                .collect();
            let deadline_intervals = (c.deadline_s / grid.interval_s as f64).floor() as usize;
            // The planner sees a forecast: the signal with seeded relative noise (accounting uses the truth).
            let signal = match rand_distr::Normal::new(0.0, c.forecast_error) {
                Ok(normal) if c.forecast_error > 0.0 => {
                    use rand::SeedableRng;
                    use rand_distr::Distribution;
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed ^ 0xF0CA_57E7);
                    signal
                        .into_iter()
                        .map(|x| (x * (1.0 + normal.sample(&mut rng))).max(0.0))
                        .collect()
                }
                _ => signal,
            };
            let policy = CircadianPolicy::new(
                signal,
                hours,
                grid.interval_s as f64,
                deadline_intervals,
                c.full_share,
                c.pause_share,
                c.window_hours.clone(),
                rates,
            );
            let policy = if c.optimal { policy.optimal() } else { policy };
            Policy::Circadian(Box::new(policy))
        }
        _ => Policy::AlwaysFull,
    };
    let setup = RunSetup {
        tokens: target_tokens,
        count_effective,
        top_k_by_hour: s
            .circadian
            .as_ref()
            .filter(|_| kind == StrategyKind::Circadian)
            .and_then(|c| c.top_k_by_hour),
        full,
        throttled,
        checkpoint_s,
        restore_s,
        release_when_paused: s.cluster.release_nodes_when_paused,
        node_w: s.cluster.node_overhead_w * s.cluster.nodes() as f64,
        network_w: s.cluster.fabric.switch_power_w(),
        gpu_idle_w: acc.idle_w,
        gpus: s.cluster.gpus as f64,
        pue: s.cluster.pue,
        pue_by_interval: Some(pue.clone()),
    };
    let routing = router.as_ref().map(|r| r.describe());
    let outcome = run(&setup, grid, &mut sm, router.as_mut(), &mut policy).map_err(|source| {
        SimError::Run {
            strategy: kind.name(),
            source,
        }
    })?;
    let model = &job.model;
    let sums = &outcome.sums;
    let (loss, effective_tokens) = {
        let dropped = if sums.assignments > 0.0 {
            sums.dropped / sums.assignments
        } else {
            0.0
        };
        let nominal_k = match &model.ffn {
            FfnKind::Moe(m) => m.top_k as f64,
            FfnKind::Dense => 1.0,
        };
        let mean_k = if outcome.tokens > 0.0 && sums.token_top_k > 0.0 {
            sums.token_top_k / outcome.tokens
        } else {
            nominal_k
        };
        let eff = quality::effective_tokens(outcome.tokens, dropped, mean_k, nominal_k)
            .unwrap_or(outcome.tokens);
        (loss_law(job).loss(eff).ok(), eff)
    };
    let chinchilla = match &model.ffn {
        FfnKind::Dense => quality::dense_loss(model.params_total(), outcome.tokens).ok(),
        FfnKind::Moe(_) => None,
    };
    let peak = acc.peak_flops.get(s.training.precision).unwrap_or(0.0) * s.cluster.gpus as f64;
    let mfu = if sums.time_s > 0.0 && peak > 0.0 {
        model.flops_per_token_train() * outcome.tokens / (sums.time_s * peak)
    } else {
        0.0
    };
    Ok(StrategyResult {
        kind,
        model_name: model.name.clone(),
        params_total: model.params_total(),
        params_active: model.params_active(),
        outcome,
        deadline_s,
        loss,
        effective_tokens,
        mfu,
        routing,
        chinchilla,
        moved_slots: sm.moved_slots(),
    })
}

#[cfg(test)]
mod tests;
