//! The waveform of a window as rows: the run's segments (steps phase by phase, held states) cut to
//! the window and at grid-interval boundaries (where the PUE changes), with the ramp fillers laid on top.

use super::step::PHASES;
use super::waveform::{phase_name, PowerOutcome, SegmentKind};

/// One row of waveform.csv: the power drawn from `t_s` to `end_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaveRow {
    /// Start [s from the run's start].
    pub t_s: f64,
    /// End [s from the run's start].
    pub end_s: f64,
    /// Facility power: IT (GPUs, nodes, network, filler) × PUE [W].
    pub facility_w: f64,
    /// All GPUs [W].
    pub gpu_w: f64,
    /// Node overhead [W].
    pub node_w: f64,
    /// Network switches [W].
    pub network_w: f64,
    /// Filler load (power floor and ramp limit) [W].
    pub filler_w: f64,
    /// Cooling and other facility overhead: facility − IT [W].
    pub cooling_w: f64,
    /// The phase or state: `compute`, `exposed_comm`, `grad_sync`, `optimizer`, `rebalance`, `step`,
    /// `checkpoint`, `paused`, `restore`.
    pub phase: &'static str,
}

/// Sub-rows each ramp filler is drawn with (each at its mean power over the sub-row, so the ramp's
/// energy is exact).
pub const RAMP_PIECES: usize = 16;

/// Why a window could not be drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WaveformError {
    /// The window holds more rows than a CSV should.
    #[error("--waveform: the window holds more than {max} phase rows (a step is {phases} rows); give a shorter START..END")]
    TooManyRows {
        /// The most rows allowed.
        max: usize,
        /// Phases of one step.
        phases: usize,
    },
}

/// The rows of `o`'s window, the PUE of the interval holding each row from `pue_at` (interval
/// boundaries every `interval_s` seconds), at most `max_rows` (before ramp and interval cuts).
pub fn waveform_rows(
    o: &PowerOutcome,
    pue_at: impl Fn(f64) -> f64,
    interval_s: f64,
    max_rows: usize,
) -> Result<Vec<WaveRow>, WaveformError> {
    let Some((w0, w1)) = o.window_s else {
        return Ok(Vec::new());
    };
    let too_many = WaveformError::TooManyRows {
        max: max_rows,
        phases: PHASES,
    };
    let mut rows: Vec<WaveRow> = Vec::new();
    let push = |rows: &mut Vec<WaveRow>,
                a: f64,
                b: f64,
                gpu: f64,
                node: f64,
                net: f64,
                filler: f64,
                phase| {
        let (a, b) = (a.max(w0), b.min(w1));
        if b > a {
            rows.push(WaveRow {
                t_s: a,
                end_s: b,
                facility_w: 0.0,
                gpu_w: gpu,
                node_w: node,
                network_w: net,
                filler_w: filler,
                cooling_w: 0.0,
                phase,
            });
        }
    };
    for s in &o.segments {
        match s.kind {
            SegmentKind::Held {
                state,
                gpu_w,
                node_w,
            } => push(
                &mut rows,
                s.start_s,
                s.end_s,
                gpu_w,
                node_w,
                s.network_w,
                0.0,
                state,
            ),
            SegmentKind::Steps {
                steps,
                phases,
                split,
            } => {
                let step_s: f64 = phases.iter().map(|p| p.time_s).sum();
                if step_s <= 0.0 {
                    continue;
                }
                let first = ((w0 - s.start_s) / step_s).floor().max(0.0) as u64;
                let last =
                    (((w1.min(s.end_s) - s.start_s) / step_s).ceil().max(0.0) as u64).min(steps);
                if (last.saturating_sub(first) as usize).saturating_mul(PHASES) > max_rows {
                    return Err(too_many);
                }
                for k in first..last {
                    let mut t = s.start_s + k as f64 * step_s;
                    let final_step = k + 1 == steps;
                    for (i, p) in phases.iter().enumerate() {
                        if p.time_s <= 0.0 {
                            continue;
                        }
                        // The block's last phase ends where the run's clock ended it (ns rounding).
                        let is_last = final_step && phases[i + 1..].iter().all(|q| q.time_s <= 0.0);
                        let end = if is_last { s.end_s } else { t + p.time_s };
                        push(
                            &mut rows,
                            t,
                            end.min(s.end_s),
                            p.gpu_w,
                            p.node_w,
                            s.network_w,
                            p.filler_w,
                            phase_name(i, split),
                        );
                        t = end;
                    }
                }
            }
        }
        if rows.len() > max_rows {
            return Err(too_many);
        }
    }
    rows.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    // Cut at interval boundaries, where the PUE may change.
    let mut cut = Vec::with_capacity(rows.len());
    for r in rows {
        let mut r = r;
        if interval_s > 0.0 {
            let mut b = ((r.t_s / interval_s).floor() + 1.0) * interval_s;
            while b < r.end_s {
                cut.push(WaveRow { end_s: b, ..r });
                r.t_s = b;
                b += interval_s;
            }
        }
        cut.push(r);
    }
    let mut rows = cut;
    for ramp in &o.ramps {
        let d = (ramp.end_s - ramp.start_s) / RAMP_PIECES as f64;
        for k in 0..RAMP_PIECES {
            let (a, b) = (
                ramp.start_s + k as f64 * d,
                ramp.start_s + (k + 1) as f64 * d,
            );
            // The mean of the linear ramp over [a, b].
            let mid = (k as f64 + 0.5) / RAMP_PIECES as f64;
            let w = ramp.from_w + (ramp.to_w - ramp.from_w) * mid;
            split_at(&mut rows, a);
            split_at(&mut rows, b);
            for r in rows.iter_mut().filter(|r| r.t_s >= a && r.end_s <= b) {
                r.filler_w += w;
            }
        }
    }
    for r in &mut rows {
        let it = r.gpu_w + r.node_w + r.network_w + r.filler_w;
        let pue = pue_at(r.t_s);
        r.facility_w = it * pue;
        r.cooling_w = r.facility_w - it;
    }
    Ok(rows)
}

/// Split the row holding `t` strictly inside it in two at `t`.
fn split_at(rows: &mut Vec<WaveRow>, t: f64) {
    let i = rows.partition_point(|r| r.end_s <= t);
    if let Some(r) = rows.get(i).copied() {
        if r.t_s < t && t < r.end_s {
            rows[i].end_s = t;
            rows.insert(i + 1, WaveRow { t_s: t, ..r });
        }
    }
}

/// Facility energy of `rows` [J].
pub fn rows_energy_j(rows: &[WaveRow]) -> f64 {
    rows.iter().map(|r| r.facility_w * (r.end_s - r.t_s)).sum()
}
