//! What each event of a run does: a grid interval's decision, a step (or block of steps) done, a
//! checkpoint written, a restore finished.

use super::{Ev, Run, State};
use crate::engine::{Handler, SimTime};
use crate::sim::meter::Power;
use crate::sim::run_outcome::RunError;
use crate::strategy::{Mode, Progress};

impl Handler<Ev> for Run<'_> {
    type Error = RunError;

    fn handle(
        &mut self,
        now: SimTime,
        ev: Ev,
        out: &mut Vec<(SimTime, Ev)>,
    ) -> Result<(), RunError> {
        let t = now.as_secs_f64();
        if self.state == State::Finished {
            return Ok(());
        }
        match ev {
            Ev::Interval(i) => {
                if i >= self.grid.ci_g_per_kwh.len() {
                    return Err(RunError::GridTooShort {
                        source_name: self.grid.source.clone(),
                        hours: (self.grid.ci_g_per_kwh.len() as f64 * self.grid.interval_s as f64)
                            / 3600.0,
                        done: self.tokens_done,
                        total: self.setup.tokens,
                    });
                }
                self.close_interval(t, Some(i));
                let paused = matches!(self.state, State::Paused | State::Checkpointing);
                let m = self.policy.decide(
                    i,
                    Progress {
                        tokens_left: self.setup.tokens - self.tokens_done,
                        paused,
                    },
                );
                let first = i == 0;
                self.mode = m;
                match (m, self.state) {
                    (Mode::Paused, State::Paused) if first => {}
                    (Mode::Paused, _) if first => {
                        // Starting paused: nothing to checkpoint yet.
                        self.state = State::Paused;
                        self.set_slot(t, 2);
                        self.set_held(t, !self.setup.release_when_paused);
                        let p = self.held_power();
                        self.hold(t, p);
                    }
                    (Mode::Full | Mode::Throttled, State::Paused) => self.restore(now, out),
                    (Mode::Full | Mode::Throttled, State::Training) if first => {
                        self.set_held(t, true);
                        self.set_slot(t, m as usize);
                        self.start_step(now, out)?;
                    }
                    _ => {}
                }
                out.push((
                    now + SimTime::from_secs(self.grid.interval_s as u64),
                    Ev::Interval(i + 1),
                ));
            }
            Ev::StepDone => {
                let c = self.in_flight;
                // A block of `n` equal steps; × 1.0 for one step leaves every sum bit for bit.
                let n = self.in_flight_n as f64;
                let tokens = c.tokens * n;
                self.tokens_raw += tokens;
                let effective = self.setup.schedules.block_effective(
                    c.tokens,
                    crate::sim::plan::effective_share(&c, self.in_flight_k, self.setup.full.top_k),
                    self.in_flight_n,
                    self.tokens_effective,
                    self.in_flight_active,
                );
                self.tokens_effective += effective;
                self.tokens_done += if self.setup.count_effective {
                    effective
                } else {
                    tokens
                };
                self.interval_tokens += tokens;
                self.interval_assign.0 += c.assignments * n;
                self.interval_assign.1 += c.dropped * n;
                self.interval_steps += self.in_flight_n;
                self.interval_token_top_k += tokens * self.in_flight_k as f64;
                self.interval_token_routing.0 += tokens * self.in_flight_routing.0;
                self.interval_token_routing.1 += tokens * self.in_flight_routing.1;
                let s = &mut self.sums;
                s.steps += self.in_flight_n;
                s.time_s += c.time_s * n;
                s.router_s += c.router_s * n;
                s.straggler_s += c.straggler_s * n;
                s.comm_s += c.comm_s * n;
                s.assignments += c.assignments * n;
                s.dropped += c.dropped * n;
                s.token_top_k += tokens * self.in_flight_k as f64;
                s.max_step_s = s.max_step_s.max(c.time_s);
                self.step_times.push(c.time_s as f32);
                if self.setup.block_steps > 1 {
                    self.step_weights.push(self.in_flight_n as u32);
                }
                // `[training.eval]`: an evaluation follows every N-th step (a block ends on one).
                let eval_due = self.setup.eval.is_some_and(|e| {
                    let every = e.every_steps.max(1);
                    self.sums.steps / every > (self.sums.steps - self.in_flight_n) / every
                });
                if eval_due {
                    self.start_eval(now, out);
                } else {
                    self.after_step(now, out)?;
                }
            }
            Ev::EvalDone => {
                self.state = State::Training;
                self.after_step(now, out)?;
            }
            Ev::CheckpointDone => {
                self.state = State::Paused;
                if self.setup.release_when_paused {
                    self.set_held(t, false);
                }
                let p = self.held_power();
                self.hold(t, p);
                if self.mode != Mode::Paused {
                    // The interval changed its mind while the checkpoint was written: resume at once,
                    // on nodes held again (released nodes drew nothing only for an instant).
                    self.restore(now, out);
                }
            }
            Ev::RestoreDone => {
                if self.mode == Mode::Paused {
                    self.state = State::Checkpointing;
                    out.push((now, Ev::CheckpointDone));
                    return Ok(());
                }
                self.state = State::Training;
                self.set_slot(t, self.mode as usize);
                self.start_step(now, out)?;
            }
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Start restoring from the checkpoint at `now`, on nodes held again.
    fn restore(&mut self, now: SimTime, out: &mut Vec<(SimTime, Ev)>) {
        let t = now.as_secs_f64();
        self.state = State::Restoring;
        self.set_held(t, true);
        let p = self.held_power();
        self.hold(t, p);
        out.push((
            now + SimTime::from_secs_f64(self.setup.restore_s),
            Ev::RestoreDone,
        ));
    }

    /// After a step (or block) and its evaluation, if any: finish, write a checkpoint to pause, or
    /// start the next step.
    fn after_step(&mut self, now: SimTime, out: &mut Vec<(SimTime, Ev)>) -> Result<(), RunError> {
        let t = now.as_secs_f64();
        if self.tokens_done >= self.setup.tokens {
            self.state = State::Finished;
            self.end_s = t;
            self.set_slot(t, self.mode_slot);
            self.set_held(t, false);
            self.meter.set_power(t, Power::default());
            self.close_interval(t, None);
            return Ok(());
        }
        if self.mode == Mode::Paused {
            self.state = State::Checkpointing;
            self.pauses += 1;
            self.set_slot(t, 2);
            let p = self.held_power();
            self.hold(t, p);
            out.push((
                now + SimTime::from_secs_f64(self.setup.checkpoint_s),
                Ev::CheckpointDone,
            ));
        } else {
            self.set_slot(t, self.mode as usize);
            self.start_step(now, out)?;
        }
        Ok(())
    }

    /// Start one evaluation (`[training.eval]`) at `now`: the job's GPUs at the forward-only
    /// pass's power for its time, in the mode the run is in; counted in the step sums.
    fn start_eval(&mut self, now: SimTime, out: &mut Vec<(SimTime, Ev)>) {
        let Some(e) = self.setup.eval else {
            return;
        };
        let t = now.as_secs_f64();
        self.state = State::Evaluating;
        let p = Power {
            gpu_w: e.gpu_w,
            waiting_w: e.waiting_w,
            node_w: self.setup.node_power_w(e.gpu_w),
            network_w: self.setup.network_w,
        };
        self.hold(t, p);
        let s = &mut self.sums;
        s.evaluations += 1;
        s.eval_s += e.eval_s;
        // At the PUE of the interval it starts in (an evaluation is short against an interval).
        s.eval_facility_j += p.it_w() * self.current_pue * e.eval_s;
        out.push((now + SimTime::from_secs_f64(e.eval_s), Ev::EvalDone));
    }
}
