//! One summary row per strategy, and its renderings: console table and JSON.

use crate::sim::{Cause, Goal, Results, Saving, StrategyResult};
use serde::{Deserialize, Serialize};

/// The headline figures of one strategy, in report units: one row of summary.csv, written by `moesim
/// run` and read back by the plots and the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SummaryRow {
    /// Strategy name.
    pub strategy: String,
    /// Model trained.
    pub model: String,
    /// Total parameters [billions].
    #[serde(with = "finite")]
    pub params_total_b: f64,
    /// Active parameters per token [billions].
    #[serde(with = "finite")]
    pub params_active_b: f64,
    /// Tokens trained.
    #[serde(with = "finite")]
    pub tokens: f64,
    /// Optimizer steps.
    pub steps: u64,
    /// Wall-clock time from start to finish [h].
    #[serde(with = "finite")]
    pub wall_clock_h: f64,
    /// GPU-hours held by the job [h].
    #[serde(with = "finite")]
    pub gpu_hours: f64,
    /// IT energy (GPUs + nodes + network) [kWh].
    #[serde(with = "finite")]
    pub energy_it_kwh: f64,
    /// Facility energy (IT × PUE) [kWh].
    #[serde(with = "finite")]
    pub energy_facility_kwh: f64,
    /// GPU energy [kWh].
    #[serde(with = "finite")]
    pub energy_gpu_kwh: f64,
    /// GPU energy drawn while waiting (bubbles, stragglers, communication) [kWh].
    #[serde(with = "finite")]
    pub energy_waiting_kwh: f64,
    /// Node overhead energy [kWh].
    #[serde(with = "finite")]
    pub energy_node_kwh: f64,
    /// Network switch energy [kWh].
    #[serde(with = "finite")]
    pub energy_network_kwh: f64,
    /// Cooling/facility overhead energy [kWh].
    #[serde(with = "finite")]
    pub energy_cooling_kwh: f64,
    /// Emissions [kg CO2e].
    #[serde(with = "finite")]
    pub co2_kg: f64,
    /// Emissions under the grid's average carbon signal [kg CO2e] (empty when it has none; see
    /// `report::carbon`; absent in folders written before the column existed: NaN).
    #[serde(with = "finite", default = "super::carbon::not_given")]
    pub co2_average_kg: f64,
    /// Emissions under the grid's marginal carbon signal [kg CO2e] (empty when it has none).
    #[serde(with = "finite", default = "super::carbon::not_given")]
    pub co2_marginal_kg: f64,
    /// Electricity cost [currency] (0 when the grid has no price).
    #[serde(with = "finite")]
    pub cost: f64,
    /// Mean facility power over the wall-clock time [kW].
    #[serde(with = "finite")]
    pub avg_facility_kw: f64,
    /// Peak facility power [kW].
    #[serde(with = "finite")]
    pub peak_facility_kw: f64,
    /// Facility energy per million tokens [kWh].
    #[serde(with = "finite")]
    pub kwh_per_mtok: f64,
    /// Hours at full speed.
    #[serde(with = "finite")]
    pub hours_full: f64,
    /// Hours throttled.
    #[serde(with = "finite")]
    pub hours_throttled: f64,
    /// Hours paused (with checkpoint and restore).
    #[serde(with = "finite")]
    pub hours_paused: f64,
    /// Pauses taken.
    pub pauses: u32,
    /// Evaluations run (`[training.eval]`; 0 without; absent in a folder written before the column).
    #[serde(default)]
    pub evaluations: u64,
    /// Hours spent evaluating (included in the wall-clock time).
    #[serde(with = "finite", default)]
    pub hours_eval: f64,
    /// Facility energy of the evaluations (included in the facility energy) [kWh].
    #[serde(with = "finite", default)]
    pub eval_kwh: f64,
    /// Mean step time [s].
    #[serde(with = "finite")]
    pub mean_step_s: f64,
    /// 99th-percentile step time [s].
    #[serde(with = "finite")]
    pub p99_step_s: f64,
    /// Model FLOPs utilisation.
    #[serde(with = "finite")]
    pub mfu: f64,
    /// Share of token-to-expert assignments dropped at capacity.
    #[serde(with = "finite")]
    pub dropped_share: f64,
    /// Router/gating share of step time.
    #[serde(with = "finite")]
    pub gating_share: f64,
    /// Straggler (load imbalance) share of step time.
    #[serde(with = "finite")]
    pub straggler_share: f64,
    /// Communication share of step time (critical path).
    #[serde(with = "finite")]
    pub comm_share: f64,
    /// Estimated final loss (NaN when unavailable).
    #[serde(with = "finite")]
    pub estimated_loss: f64,
    /// The scaling law behind the loss.
    pub loss_law: String,
    /// Chinchilla (Hoffmann et al. 2022) loss estimate, dense models only (NaN otherwise).
    #[serde(with = "finite")]
    pub chinchilla_loss: f64,
    /// Expert slots moved by rebalancing.
    pub moved_expert_slots: u64,
    /// How routing was produced.
    pub routing: String,
    /// Deadline [h after start] (NaN without one).
    #[serde(with = "finite")]
    pub deadline_h: f64,
    /// Whether the deadline was met (empty without one).
    pub deadline_met: String,
    /// How the strategies were compared: `loss` (each trained to one estimated loss) or `tokens`
    /// (empty in a folder written before the column existed).
    #[serde(default)]
    pub compare: String,
    /// The estimated loss every strategy trained to (empty when compared at equal tokens).
    #[serde(with = "finite", default = "nan")]
    pub target_loss: f64,
    /// Why the loss estimate is extrapolated: the inputs outside the law's fitted range (empty inside it).
    #[serde(default)]
    pub loss_warning: String,
    /// Saving against moe attributed to `rest` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_rest_co2_kg: f64,
    /// Saving against moe attributed to `rest` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_rest_energy_kwh: f64,
    /// Saving against moe attributed to `rest` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_rest_time_h: f64,
    /// Saving against moe attributed to `time_shift` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_time_shift_co2_kg: f64,
    /// Saving against moe attributed to `time_shift` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_time_shift_energy_kwh: f64,
    /// Saving against moe attributed to `time_shift` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_time_shift_time_h: f64,
    /// Saving against moe attributed to `pue` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_pue_co2_kg: f64,
    /// Saving against moe attributed to `pue` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_pue_energy_kwh: f64,
    /// Saving against moe attributed to `pue` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_pue_time_h: f64,
    /// Saving against moe attributed to `pause_overhead` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_pause_overhead_co2_kg: f64,
    /// Saving against moe attributed to `pause_overhead` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_pause_overhead_energy_kwh: f64,
    /// Saving against moe attributed to `pause_overhead` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_pause_overhead_time_h: f64,
    /// Saving against moe attributed to `power_cap` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_power_cap_co2_kg: f64,
    /// Saving against moe attributed to `power_cap` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_power_cap_energy_kwh: f64,
    /// Saving against moe attributed to `power_cap` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_power_cap_time_h: f64,
    /// Saving against moe attributed to `batch` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_batch_co2_kg: f64,
    /// Saving against moe attributed to `batch` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_batch_energy_kwh: f64,
    /// Saving against moe attributed to `batch` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_batch_time_h: f64,
    /// Saving against moe attributed to `routing` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_routing_co2_kg: f64,
    /// Saving against moe attributed to `routing` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_routing_energy_kwh: f64,
    /// Saving against moe attributed to `routing` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_routing_time_h: f64,
    /// Saving against moe attributed to `model` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_model_co2_kg: f64,
    /// Saving against moe attributed to `model` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_model_energy_kwh: f64,
    /// Saving against moe attributed to `model` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_model_time_h: f64,
    /// Saving against moe attributed to `tokens` (emissions, moe − this strategy; empty without a split) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub saving_tokens_co2_kg: f64,
    /// Saving against moe attributed to `tokens` (facility energy, moe − this strategy; empty without a split) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub saving_tokens_energy_kwh: f64,
    /// Saving against moe attributed to `tokens` (wall-clock time, moe − this strategy; empty without a split) [h].
    #[serde(with = "finite", default = "nan")]
    pub saving_tokens_time_h: f64,
    /// Electricity cost, as `cost`, as a term of `cost_total` (empty without a `[cost]` table) [currency].
    #[serde(with = "finite", default = "nan")]
    pub cost_electricity: f64,
    /// Carbon price × tonnes CO2e (empty without a `[cost]` table) [currency].
    #[serde(with = "finite", default = "nan")]
    pub cost_carbon: f64,
    /// Compute-hour tax × GPU-hours held (empty without a `[cost]` table) [currency].
    #[serde(with = "finite", default = "nan")]
    pub cost_tax: f64,
    /// Levy × facility kWh (empty without a `[cost]` table) [currency].
    #[serde(with = "finite", default = "nan")]
    pub cost_levy: f64,
    /// The sum of the four cost terms (empty without a `[cost]` table) [currency].
    #[serde(with = "finite", default = "nan")]
    pub cost_total: f64,
    /// Grid intervals the run's mode followed the grid's hint in (empty without `[cost.hints]`).
    #[serde(default)]
    pub hints_followed: Option<u64>,
    /// Grid intervals the run's mode departed from the grid's hint in (empty without `[cost.hints]`).
    #[serde(default)]
    pub hints_deviated: Option<u64>,
    /// Grid intervals of the run with no hint in force (empty without `[cost.hints]`).
    #[serde(default)]
    pub hints_none: Option<u64>,
    /// Largest change of facility power between consecutive step phases or states over the run
    /// (`sim::waveform`; absent in older folders: NaN) [MW].
    #[serde(with = "finite", default = "nan")]
    pub max_swing_mw: f64,
    /// Steepest change of facility power: a swing over the mean length of the two phases, at most
    /// the ramp limit across pauses and resumes where `[power]` sets one [MW/s].
    #[serde(with = "finite", default = "nan")]
    pub max_ramp_mw_per_s: f64,
    /// Swings of at least `swing_threshold_mw` per hour of wall-clock [1/h].
    #[serde(with = "finite", default = "nan")]
    pub swings_per_h: f64,
    /// The swing threshold: `[power] swing_threshold_fraction` × the job's peak facility power [MW].
    #[serde(with = "finite", default = "nan")]
    pub swing_threshold_mw: f64,
    /// Share of the facility power's variance within steps (the step frequency and its harmonics;
    /// empty when the power is flat).
    #[serde(with = "finite", default = "nan")]
    pub step_variance_share: f64,
    /// Facility energy of the power floor's filler (`[power] floor_fraction`; 0 without) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub floor_filler_kwh: f64,
    /// Facility energy of the ramp limit's filler (`[power] ramp_limit_mw_per_s`; 0 without) [kWh].
    #[serde(with = "finite", default = "nan")]
    pub ramp_filler_kwh: f64,
    /// Emissions of both fillers (included in `co2_kg`) [kg CO2e].
    #[serde(with = "finite", default = "nan")]
    pub mitigation_co2_kg: f64,
}

impl SummaryRow {
    /// The saving against moe attributed to `cause`: (CO2 [kg], facility energy [kWh], wall-clock [h]),
    /// NaN when this row has no such part.
    pub fn saving(&self, cause: Cause) -> (f64, f64, f64) {
        match cause {
            Cause::Rest => (
                self.saving_rest_co2_kg,
                self.saving_rest_energy_kwh,
                self.saving_rest_time_h,
            ),
            Cause::TimeShift => (
                self.saving_time_shift_co2_kg,
                self.saving_time_shift_energy_kwh,
                self.saving_time_shift_time_h,
            ),
            Cause::Pue => (
                self.saving_pue_co2_kg,
                self.saving_pue_energy_kwh,
                self.saving_pue_time_h,
            ),
            Cause::PauseOverhead => (
                self.saving_pause_overhead_co2_kg,
                self.saving_pause_overhead_energy_kwh,
                self.saving_pause_overhead_time_h,
            ),
            Cause::PowerCap => (
                self.saving_power_cap_co2_kg,
                self.saving_power_cap_energy_kwh,
                self.saving_power_cap_time_h,
            ),
            Cause::Batch => (
                self.saving_batch_co2_kg,
                self.saving_batch_energy_kwh,
                self.saving_batch_time_h,
            ),
            Cause::Routing => (
                self.saving_routing_co2_kg,
                self.saving_routing_energy_kwh,
                self.saving_routing_time_h,
            ),
            Cause::Model => (
                self.saving_model_co2_kg,
                self.saving_model_energy_kwh,
                self.saving_model_time_h,
            ),
            Cause::Tokens => (
                self.saving_tokens_co2_kg,
                self.saving_tokens_energy_kwh,
                self.saving_tokens_time_h,
            ),
        }
    }

    /// The causes this row's saving is split into, in the order they were switched on (empty without
    /// a split).
    pub fn saving_causes(&self) -> Vec<Cause> {
        let chain: &[Cause] = if self.saving(Cause::Model).0.is_finite() {
            &Cause::DENSE_ORDER
        } else if self.saving(Cause::Rest).0.is_finite() {
            &Cause::CIRCADIAN_ORDER
        } else {
            &[]
        };
        chain.to_vec()
    }
}

/// A column missing from an older summary.csv reads as not applicable.
fn nan() -> f64 {
    f64::NAN
}

/// Serde for the summary's numbers: a NaN or infinite value (not applicable, or not computable)
/// is written as an empty cell (CSV) or `null` (JSON), never as `NaN` or `inf`; an empty cell reads
/// back as NaN, so `moesim plot` reads the folders it wrote.
pub(crate) mod finite {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write `v`, or nothing when it is not finite.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// Read a number; an empty cell or `null` is NaN (so are the `NaN` cells older versions wrote).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Every column name of summary.csv, in file order (serialised from `SummaryRow` itself, so it cannot drift).
pub fn summary_columns() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if w.serialize(SummaryRow::default()).is_err() {
        return Vec::new();
    }
    let bytes = w.into_inner().unwrap_or_default();
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    rdr.headers()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn row(res: &Results, r: &StrategyResult) -> SummaryRow {
    let o = &r.outcome;
    let t = &o.totals;
    let kwh = |j: f64| j / 3.6e6;
    let st = o.sums.time_s.max(f64::MIN_POSITIVE);
    let split = res.attribution.as_ref().and_then(|a| a.of(r.kind));
    // A cause outside the strategy's chain, or no split at all, is an empty cell.
    let save =
        |c: Cause, f: fn(&Saving) -> f64| split.and_then(|s| s.part(c)).map_or(f64::NAN, |p| f(&p));
    SummaryRow {
        strategy: r.kind.name().to_string(),
        model: r.model_name.clone(),
        params_total_b: r.params_total / 1e9,
        params_active_b: r.params_active / 1e9,
        tokens: o.tokens,
        steps: o.sums.steps,
        wall_clock_h: o.wall_s / 3600.0,
        gpu_hours: o.gpu_hours,
        energy_it_kwh: kwh(t.it_j()),
        energy_facility_kwh: kwh(t.facility_j),
        energy_gpu_kwh: kwh(t.gpu_j),
        energy_waiting_kwh: kwh(t.waiting_j),
        energy_node_kwh: kwh(t.node_j),
        energy_network_kwh: kwh(t.network_j),
        energy_cooling_kwh: kwh(t.cooling_j()),
        co2_kg: t.co2_kg,
        // Filled by `summary_rows`, which has the grid (`report::carbon`).
        co2_average_kg: f64::NAN,
        co2_marginal_kg: f64::NAN,
        cost: t.cost,
        avg_facility_kw: if o.wall_s > 0.0 {
            t.facility_j / o.wall_s / 1e3
        } else {
            0.0
        },
        peak_facility_kw: o.peak_facility_w / 1e3,
        kwh_per_mtok: if o.tokens > 0.0 {
            kwh(t.facility_j) / (o.tokens / 1e6)
        } else {
            0.0
        },
        hours_full: o.mode_s[0] / 3600.0,
        hours_throttled: o.mode_s[1] / 3600.0,
        hours_paused: o.mode_s[2] / 3600.0,
        pauses: o.pauses,
        evaluations: o.sums.evaluations,
        hours_eval: o.sums.eval_s / 3600.0,
        eval_kwh: kwh(o.sums.eval_facility_j),
        mean_step_s: if o.sums.steps > 0 {
            o.sums.time_s / o.sums.steps as f64
        } else {
            0.0
        },
        p99_step_s: o.sums.p99_step_s,
        mfu: r.mfu,
        dropped_share: if o.sums.assignments > 0.0 {
            o.sums.dropped / o.sums.assignments
        } else {
            0.0
        },
        gating_share: o.sums.router_s / st,
        straggler_share: o.sums.straggler_s / st,
        comm_share: o.sums.comm_s / st,
        estimated_loss: r.loss.as_ref().map_or(f64::NAN, |l| l.loss),
        loss_law: r.loss.as_ref().map_or_else(String::new, |l| {
            format!(
                "{}{}",
                l.law,
                if l.extrapolated {
                    " (extrapolated)"
                } else {
                    ""
                }
            )
        }),
        chinchilla_loss: r.chinchilla.as_ref().map_or(f64::NAN, |l| l.loss),
        moved_expert_slots: r.moved_slots,
        routing: r.routing.clone().unwrap_or_default(),
        deadline_h: r.deadline_s.map_or(f64::NAN, |d| d / 3600.0),
        deadline_met: r.deadline_met().map_or_else(String::new, |m| m.to_string()),
        compare: match res.goal {
            Goal::Loss { .. } => "loss".into(),
            Goal::Tokens { .. } => "tokens".into(),
        },
        target_loss: match res.goal {
            Goal::Loss { loss, .. } => loss,
            Goal::Tokens { .. } => f64::NAN,
        },
        loss_warning: r
            .loss
            .as_ref()
            .and_then(|l| l.warning.clone())
            .unwrap_or_default(),
        saving_rest_co2_kg: save(Cause::Rest, |p| p.co2_kg),
        saving_rest_energy_kwh: save(Cause::Rest, |p| p.energy_j / 3.6e6),
        saving_rest_time_h: save(Cause::Rest, |p| p.time_s / 3600.0),
        saving_time_shift_co2_kg: save(Cause::TimeShift, |p| p.co2_kg),
        saving_time_shift_energy_kwh: save(Cause::TimeShift, |p| p.energy_j / 3.6e6),
        saving_time_shift_time_h: save(Cause::TimeShift, |p| p.time_s / 3600.0),
        saving_pue_co2_kg: save(Cause::Pue, |p| p.co2_kg),
        saving_pue_energy_kwh: save(Cause::Pue, |p| p.energy_j / 3.6e6),
        saving_pue_time_h: save(Cause::Pue, |p| p.time_s / 3600.0),
        saving_pause_overhead_co2_kg: save(Cause::PauseOverhead, |p| p.co2_kg),
        saving_pause_overhead_energy_kwh: save(Cause::PauseOverhead, |p| p.energy_j / 3.6e6),
        saving_pause_overhead_time_h: save(Cause::PauseOverhead, |p| p.time_s / 3600.0),
        saving_power_cap_co2_kg: save(Cause::PowerCap, |p| p.co2_kg),
        saving_power_cap_energy_kwh: save(Cause::PowerCap, |p| p.energy_j / 3.6e6),
        saving_power_cap_time_h: save(Cause::PowerCap, |p| p.time_s / 3600.0),
        saving_batch_co2_kg: save(Cause::Batch, |p| p.co2_kg),
        saving_batch_energy_kwh: save(Cause::Batch, |p| p.energy_j / 3.6e6),
        saving_batch_time_h: save(Cause::Batch, |p| p.time_s / 3600.0),
        saving_routing_co2_kg: save(Cause::Routing, |p| p.co2_kg),
        saving_routing_energy_kwh: save(Cause::Routing, |p| p.energy_j / 3.6e6),
        saving_routing_time_h: save(Cause::Routing, |p| p.time_s / 3600.0),
        saving_model_co2_kg: save(Cause::Model, |p| p.co2_kg),
        saving_model_energy_kwh: save(Cause::Model, |p| p.energy_j / 3.6e6),
        saving_model_time_h: save(Cause::Model, |p| p.time_s / 3600.0),
        saving_tokens_co2_kg: save(Cause::Tokens, |p| p.co2_kg),
        saving_tokens_energy_kwh: save(Cause::Tokens, |p| p.energy_j / 3.6e6),
        saving_tokens_time_h: save(Cause::Tokens, |p| p.time_s / 3600.0),
        cost_electricity: r.cost.map_or(f64::NAN, |c| c.electricity),
        cost_carbon: r.cost.map_or(f64::NAN, |c| c.carbon),
        cost_tax: r.cost.map_or(f64::NAN, |c| c.tax),
        cost_levy: r.cost.map_or(f64::NAN, |c| c.levy),
        cost_total: r.cost.map_or(f64::NAN, |c| c.total()),
        hints_followed: r.hints.map(|h| h.followed),
        hints_deviated: r.hints.map(|h| h.deviated),
        hints_none: r.hints.map(|h| h.none),
        max_swing_mw: o.power.max_swing_w / 1e6,
        max_ramp_mw_per_s: o.power.max_ramp_w_per_s / 1e6,
        swings_per_h: if o.wall_s > 0.0 {
            o.power.swings / (o.wall_s / 3600.0)
        } else {
            0.0
        },
        swing_threshold_mw: o.power.threshold_w / 1e6,
        step_variance_share: o.power.step_variance_share,
        floor_filler_kwh: kwh(o.power.floor_facility_j),
        ramp_filler_kwh: kwh(o.power.ramp_facility_j),
        mitigation_co2_kg: o.power.mitigation_co2_kg,
    }
}

/// Summary rows of every strategy, in scenario order.
pub fn summary_rows(res: &Results) -> Vec<SummaryRow> {
    res.strategies
        .iter()
        .map(|r| SummaryRow {
            co2_average_kg: super::carbon::co2_of_kind(r, &res.grid, crate::grid::CiKind::Average),
            co2_marginal_kg: super::carbon::co2_of_kind(
                r,
                &res.grid,
                crate::grid::CiKind::Marginal,
            ),
            ..row(res, r)
        })
        .collect()
}

/// The summary as pretty JSON (a not-applicable number is `null`).
pub fn to_json(res: &Results) -> String {
    let rows = summary_rows(res);
    let mut v = serde_json::json!({ "scenario": res.scenario, "grid": { "region": res.grid.region, "source": res.grid.source, "mean_ci_g_per_kwh": res.grid.mean_ci(), "notes": res.grid.notes }, "compared": res.goal.describe(), "strategies": rows });
    // A multi-region job: its comparison of modes (as sites.csv, with every cost term per site).
    if let Some(sites) = super::sites::sites_json(res) {
        v["multi_region"] = sites;
    }
    serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_columns_lists_every_summary_field() {
        let c = summary_columns();
        assert_eq!(c.first().map(String::as_str), Some("strategy"));
        assert!(c.iter().any(|x| x == "co2_kg"));
        assert!(c.iter().any(|x| x == "deadline_met"));
    }

    // The plots read summary.csv back into the type that wrote it: NaN and empty cells must survive.
    #[test]
    fn a_row_written_to_csv_reads_back_the_same() {
        let row = SummaryRow {
            strategy: "moe".into(),
            model: "m, with a comma".into(),
            steps: 7,
            co2_kg: 1.25,
            estimated_loss: f64::NAN,
            deadline_h: f64::NAN,
            ..SummaryRow::default()
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        // Not applicable is an empty cell, not `NaN`.
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(!text.contains("NaN") && text.contains(",,"), "{text}");
        let back: Vec<SummaryRow> = csv::Reader::from_reader(bytes.as_slice())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back.len(), 1);
        let b = &back[0];
        assert!(b.estimated_loss.is_nan() && b.deadline_h.is_nan());
        let same = |r: &SummaryRow| SummaryRow {
            estimated_loss: 0.0,
            deadline_h: 0.0,
            ..r.clone()
        };
        assert_eq!(same(b), same(&row));
    }

    // `moesim plot` still reads a folder written before the comparison and split columns existed.
    #[test]
    fn a_summary_without_the_split_columns_still_reads() {
        let cols = summary_columns();
        let keep = cols.iter().position(|c| c == "compare").unwrap();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(SummaryRow {
            strategy: "moe".into(),
            co2_kg: 2.0,
            ..SummaryRow::default()
        })
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let cut: String = text
            .lines()
            .map(|l| l.split(',').take(keep).collect::<Vec<_>>().join(",") + "\n")
            .collect();
        let back: Vec<SummaryRow> = csv::Reader::from_reader(cut.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back[0].co2_kg, 2.0);
        assert!(back[0].compare.is_empty() && back[0].target_loss.is_nan());
        assert!(back[0].saving(Cause::TimeShift).0.is_nan());
        assert!(back[0].saving_causes().is_empty());
    }
}
