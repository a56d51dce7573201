//! Running the samples: each a full simulation of the perturbed scenario, in parallel, kept in index order.

use super::spec::{draw, perturbed, Draw};
use super::UncertaintyError;
use crate::quality;
use crate::report::{summary_rows, SummaryRow};
use crate::scenario::{Scenario, UncertaintySpec};
use crate::sim::{self, Results};
use rayon::prelude::*;

/// The figures of one strategy in one sample: every numeric column of summary.csv, by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    /// Sample index.
    pub sample: u32,
    /// Strategy name (or a comparison, `circadian vs moe`, for the savings).
    pub strategy: String,
    /// (column, value) in summary.csv order (NaN where the figure does not apply).
    pub figures: Vec<(String, f64)>,
}

impl SampleRow {
    /// The value of column `name` (None if the row has no such column).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Facility power of one strategy over the grid intervals of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleTimeline {
    /// Sample index.
    pub sample: u32,
    /// Strategy name.
    pub strategy: String,
    /// (interval start [UNIX s, UTC], average facility power over the interval [kW]; 0 once done).
    pub power_kw: Vec<(i64, f64)>,
}

/// Everything the samples produced, in sample order.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// The Monte Carlo that was run.
    pub spec: UncertaintySpec,
    /// Each sample's draws.
    pub draws: Vec<Draw>,
    /// One row per sample and strategy.
    pub rows: Vec<SampleRow>,
    /// One timeline per sample and strategy.
    pub timelines: Vec<SampleTimeline>,
    /// Names of the loss laws the samples used, in law-index order (empty when the law stays fixed).
    pub laws: Vec<String>,
}

/// Every numeric column of a summary row, by its summary.csv name (serialised from the row itself, so
/// a column added to summary.csv — e.g. a `saving_*` split — is sampled with no change here).
pub fn numeric_columns(row: &SummaryRow) -> Vec<(String, f64)> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if w.serialize(row).is_err() {
        return Vec::new();
    }
    let bytes = w.into_inner().unwrap_or_default();
    let mut rdr = csv::Reader::from_reader(bytes.as_slice());
    let Ok(headers) = rdr.headers().cloned() else {
        return Vec::new();
    };
    let Some(Ok(rec)) = rdr.records().next() else {
        return Vec::new();
    };
    headers
        .iter()
        .zip(rec.iter())
        .filter(|(h, _)| !TEXT_COLUMNS.contains(h))
        // An empty numeric cell is a figure that does not apply here (NaN, left out of the bands).
        .filter_map(|(h, v)| match v {
            "" => Some((h.to_string(), f64::NAN)),
            v => v.parse::<f64>().ok().map(|x| (h.to_string(), x)),
        })
        .collect()
}

/// summary.csv columns that hold text (an empty one is not a missing number).
const TEXT_COLUMNS: [&str; 5] = ["strategy", "model", "loss_law", "routing", "deadline_met"];

/// The applicable loss laws of the scenario's MoE job (or its dense one): how many there are bounds
/// the law draw, their names go in the report.
fn law_names(s: &Scenario) -> Vec<String> {
    let job = s.moe.as_ref().or(s.dense.as_ref());
    job.map(|j| {
        quality::laws_for(&sim::model_shape(j))
            .iter()
            .map(|l| l.name().to_string())
            .collect()
    })
    .unwrap_or_default()
}

/// One sample: simulate the perturbed scenario and turn its results into rows and timelines.
fn one(
    base: &Scenario,
    spec: &UncertaintySpec,
    d: &Draw,
) -> Result<(Vec<SampleRow>, Vec<SampleTimeline>), UncertaintyError> {
    let mut s = perturbed(base, spec, d);
    // A sample's rows and timelines hold the strategies only: the multi-region comparison and the
    // waveform window's segments would be simulated and thrown away.
    s.sites = None;
    s.power.window_s = None;
    let fail = |source| UncertaintyError::Sample {
        index: d.index,
        source: Box::new(source),
    };
    let mut res = sim::simulate(&s).map_err(fail)?;
    // The sample's own split by cause, so each `saving_*` part gets its band.
    if spec.split {
        res.attribution = Some(sim::attribute(&s, &res).map_err(fail)?);
    }
    Ok((rows_of(&res, d), timelines_of(&res, d.index)))
}

/// The rows of one sample's results. Under a drawn loss law the run itself trained toward the target
/// under that law and estimated its loss with it, so the figures are the run's own.
fn rows_of(res: &Results, d: &Draw) -> Vec<SampleRow> {
    summary_rows(res)
        .iter()
        .zip(&res.strategies)
        .map(|(row, r)| SampleRow {
            sample: d.index,
            strategy: r.kind.name().to_string(),
            figures: numeric_columns(row),
        })
        .collect()
}

fn timelines_of(res: &Results, sample: u32) -> Vec<SampleTimeline> {
    res.strategies
        .iter()
        .map(|r| SampleTimeline {
            sample,
            strategy: r.kind.name().to_string(),
            power_kw: r
                .outcome
                .timeline
                .iter()
                .map(|t| {
                    let p = if t.mode.is_some() && t.covered_s > 0.0 {
                        t.totals.facility_j / t.covered_s / 1e3
                    } else {
                        0.0
                    };
                    (t.start_utc_s, p)
                })
                .collect(),
        })
        .collect()
}

/// Run `samples` samples of `base` under `spec` in parallel (rayon), calling `done` after each one
/// finishes (from worker threads). Results are collected in sample order and each sample's draws
/// come from its index, so the output is the same on any thread count.
pub fn run_samples(
    base: &Scenario,
    spec: &UncertaintySpec,
    samples: u32,
    done: &(dyn Fn() + Sync),
) -> Result<Sampled, UncertaintyError> {
    if samples == 0 {
        return Err(UncertaintyError::NoSamples);
    }
    let laws = law_names(base);
    let gpus = base.cluster.gpus;
    let draws: Vec<Draw> = (0..samples)
        .map(|i| draw(spec, base.seed, i, gpus, laws.len()))
        .collect();
    let out: Vec<_> = draws
        .par_iter()
        .map(|d| {
            let r = one(base, spec, d);
            done();
            r
        })
        .collect();
    let mut rows = Vec::new();
    let mut timelines = Vec::new();
    for r in out {
        let (rs, ts) = r?;
        rows.extend(rs);
        timelines.extend(ts);
    }
    let uses_laws = draws.iter().any(|d| d.law.is_some());
    Ok(Sampled {
        spec: UncertaintySpec {
            samples,
            ..spec.clone()
        },
        draws,
        rows,
        timelines,
        laws: if uses_laws { laws } else { Vec::new() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;
    use std::path::Path;

    /// The one-node scenario on 2e8 tokens, throttling outside an evening window it never reaches
    /// (so time shifting, power cap and routing all have parts).
    fn small() -> Scenario {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text = std::fs::read_to_string(dir.join("single_node.toml"))
            .unwrap()
            .replacen("tokens = 1.0e9", "tokens = 2.0e8", 1)
            .replacen("window_hours = [1, 2, 3, 4]", "window_hours = [20, 21]", 1);
        parse_scenario("single_node.toml", &text, &dir).unwrap()
    }

    #[test]
    fn every_part_of_a_split_gets_its_band_over_the_samples() {
        let base = small();
        let spec = UncertaintySpec {
            sources: vec![crate::scenario::UncertaintySource::Hardware],
            ..UncertaintySpec::default()
        };
        let s = run_samples(&base, &spec, 3, &|| {}).unwrap();
        let circ: Vec<&SampleRow> = s
            .rows
            .iter()
            .filter(|r| r.strategy == "circadian")
            .collect();
        let moe: Vec<&SampleRow> = s.rows.iter().filter(|r| r.strategy == "moe").collect();
        assert_eq!(circ.len(), 3);
        for (c, m) in circ.iter().zip(&moe) {
            // Each sample's parts sum to its own whole saving.
            let parts: f64 = crate::sim::Cause::CIRCADIAN_ORDER
                .iter()
                .map(|k| c.get(&format!("saving_{}_co2_kg", k.key())).unwrap())
                .sum();
            let whole = m.get("co2_kg").unwrap() - c.get("co2_kg").unwrap();
            assert!(
                (parts - whole).abs() < 1e-6 * whole.abs().max(1.0),
                "{parts} vs {whole}"
            );
        }
        let bands = super::super::all_bands(&s);
        for key in ["time_shift", "power_cap", "routing"] {
            let fig = format!("saving_{key}_co2_kg");
            let b = bands
                .iter()
                .find(|b| b.strategy == "circadian" && b.figure == fig)
                .unwrap();
            assert_eq!(b.samples, 3, "{fig}");
            assert!(b.p[0] <= b.p[1] && b.p[1] <= b.p[2]);
        }
        // The hardware draws move the parts: the band has width.
        let ts = bands
            .iter()
            .find(|b| b.strategy == "circadian" && b.figure == "saving_time_shift_co2_kg")
            .unwrap();
        assert!(ts.p[2] > ts.p[0], "{ts:?}");
        // Without the split the parts are not there (no band, no samples).
        let off = UncertaintySpec {
            split: false,
            ..spec
        };
        let s = run_samples(&base, &off, 1, &|| {}).unwrap();
        let b = super::super::all_bands(&s);
        let ts = b
            .iter()
            .find(|b| b.strategy == "circadian" && b.figure == "saving_time_shift_co2_kg")
            .unwrap();
        assert_eq!(ts.samples, 0);
    }
}
