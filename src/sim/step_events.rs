//! The event-level reference of one step: a 1F1B pipeline of forward/backward passes per stage and
//! micro-batch, p2p transfers and the overlapped gradient all-reduce, run on the discrete-event engine.

use crate::engine::{EngineError, Handler, SimTime, Simulation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    /// Stage `s` finished pass `bwd` of micro-batch `mb`.
    Done { s: usize, bwd: bool, mb: u32 },
    /// Input of pass `bwd` of micro-batch `mb` arrived at stage `s`.
    Arrive { s: usize, bwd: bool, mb: u32 },
}

struct Pipeline<'a> {
    fwd: &'a [SimTime],
    bwd: &'a [SimTime],
    p2p: SimTime,
    /// Per stage, its passes in 1F1B order.
    order: Vec<Vec<(bool, u32)>>,
    next: Vec<usize>,
    busy: Vec<bool>,
    arrived: Vec<Vec<[bool; 2]>>,
    last_bwd_start: Vec<SimTime>,
    end: SimTime,
}

impl Pipeline<'_> {
    fn try_start(&mut self, s: usize, now: SimTime, out: &mut Vec<(SimTime, Ev)>) {
        if self.busy[s] {
            return;
        }
        let Some(&(bwd, mb)) = self.order[s].get(self.next[s]) else {
            return;
        };
        if !self.arrived[s][mb as usize][bwd as usize] {
            return;
        }
        self.busy[s] = true;
        self.next[s] += 1;
        let d = if bwd { self.bwd[s] } else { self.fwd[s] };
        if bwd {
            self.last_bwd_start[s] = now;
        }
        out.push((now + d, Ev::Done { s, bwd, mb }));
    }
}

impl Handler<Ev> for Pipeline<'_> {
    type Error = EngineError;

    fn handle(
        &mut self,
        now: SimTime,
        ev: Ev,
        out: &mut Vec<(SimTime, Ev)>,
    ) -> Result<(), EngineError> {
        let p = self.fwd.len();
        match ev {
            Ev::Arrive { s, bwd, mb } => {
                self.arrived[s][mb as usize][bwd as usize] = true;
                self.try_start(s, now, out);
            }
            Ev::Done { s, bwd, mb } => {
                self.busy[s] = false;
                self.end = self.end.max(now);
                match (bwd, s) {
                    (false, s) if s + 1 < p => out.push((
                        now + self.p2p,
                        Ev::Arrive {
                            s: s + 1,
                            bwd: false,
                            mb,
                        },
                    )),
                    (false, s) => self.arrived[s][mb as usize][1] = true,
                    (true, 0) => {}
                    (true, s) => out.push((
                        now + self.p2p,
                        Ev::Arrive {
                            s: s - 1,
                            bwd: true,
                            mb,
                        },
                    )),
                }
                self.try_start(s, now, out);
            }
        }
        Ok(())
    }
}

/// 1F1B order of stage `s` of `p` with `m` micro-batches: warm-up forwards, alternating steady state, cool-down backwards.
fn one_f_one_b(s: usize, p: usize, m: u32) -> Vec<(bool, u32)> {
    let warm = ((p - s - 1) as u32).min(m);
    let mut v = Vec::with_capacity(2 * m as usize);
    let (mut f, mut b) = (0u32, 0u32);
    for _ in 0..warm {
        v.push((false, f));
        f += 1;
    }
    while b < m {
        if f < m {
            v.push((false, f));
            f += 1;
        }
        v.push((true, b));
        b += 1;
    }
    v
}

/// Step time [s] by event simulation: stage forward/backward times per micro-batch [s], micro-batches,
/// p2p transfer time [s], data-parallel all-reduce time [s] (overlapped with each stage's last backward),
/// optimizer time [s]. An engine error (an event scheduled in the past: a model bug) comes back.
pub fn step_time_events(
    fwd_s: &[f64],
    bwd_s: &[f64],
    micro_batches: u32,
    p2p_s: f64,
    dp_sync_s: f64,
    optimizer_s: f64,
) -> Result<f64, EngineError> {
    let p = fwd_s.len();
    let m = micro_batches.max(1);
    let fwd: Vec<SimTime> = fwd_s.iter().map(|&x| SimTime::from_secs_f64(x)).collect();
    let bwd: Vec<SimTime> = bwd_s.iter().map(|&x| SimTime::from_secs_f64(x)).collect();
    let mut model = Pipeline {
        fwd: &fwd,
        bwd: &bwd,
        p2p: SimTime::from_secs_f64(p2p_s),
        order: (0..p).map(|s| one_f_one_b(s, p, m)).collect(),
        next: vec![0; p],
        busy: vec![false; p],
        arrived: vec![vec![[false; 2]; m as usize]; p],
        last_bwd_start: vec![SimTime::ZERO; p],
        end: SimTime::ZERO,
    };
    let mut sim = Simulation::new();
    for mb in 0..m {
        // Stage 0's forward inputs are in memory from the start.
        model.arrived[0][mb as usize][0] = true;
    }
    // The first forward of stage 0 starts at time zero; schedule a zero-length wake-up.
    sim.schedule(
        SimTime::ZERO,
        Ev::Arrive {
            s: 0,
            bwd: false,
            mb: 0,
        },
    )?;
    sim.run(&mut model)?;
    let dp = SimTime::from_secs_f64(dp_sync_s);
    let mut end = model.end;
    for s in 0..p {
        end = end.max(model.last_bwd_start[s] + dp);
    }
    Ok(end.as_secs_f64() + optimizer_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::step::pipeline_1f1b_s;

    #[test]
    fn uniform_pipeline_matches_the_closed_form() {
        // (m + p - 1)(f + b) for equal stages and no transfer time.
        let t = step_time_events(&[1.0; 4], &[2.0; 4], 8, 0.0, 0.0, 0.0).unwrap();
        assert!((t - 11.0 * 3.0).abs() < 1e-6, "{t}");
        assert!((pipeline_1f1b_s(&[1.0; 4], &[2.0; 4], 8, 0.0) - t).abs() < 1e-6);
    }

    #[test]
    fn single_stage_is_the_sum_of_passes_plus_exposed_sync() {
        let t = step_time_events(&[1.0], &[2.0], 5, 0.0, 3.0, 0.5).unwrap();
        // Last backward starts at 13, the all-reduce ends at 16, then the optimizer.
        assert!((t - 16.5).abs() < 1e-6, "{t}");
    }

    #[test]
    fn one_f_one_b_orders_every_pass_once() {
        let o = one_f_one_b(0, 4, 6);
        assert_eq!(o.len(), 12);
        assert_eq!(&o[..4], &[(false, 0), (false, 1), (false, 2), (false, 3)]);
        assert_eq!(o.last(), Some(&(true, 5)));
    }
}
