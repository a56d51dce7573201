//! The discrete-event core: integer clock, event queue with deterministic tie-breaking, and a run loop.
//!
//! It knows nothing of GPUs or grids: the step model and the run model define their own event
//! types and handlers on top of it.

mod clock;
mod queue;
pub mod rng;

pub use clock::SimTime;
pub use queue::{EventId, EventQueue};
pub use rng::SeedTree;

/// A model driven by the engine: it handles one event and returns the events it causes by pushing
/// them into `out` (so a handler is a plain function a unit test can call).
pub trait Handler<E> {
    /// Why the model cannot go on; an engine error (an event scheduled in the past) converts into it,
    /// so a run returns one error type.
    type Error: From<EngineError>;

    /// Handle `event` at time `now`; push `(time, event)` pairs it causes into `out`. An error stops the
    /// run: the engine handles no further event and returns it.
    fn handle(
        &mut self,
        now: SimTime,
        event: E,
        out: &mut Vec<(SimTime, E)>,
    ) -> Result<(), Self::Error>;
}

/// Counters of one engine run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Events handled (cancelled events are not counted).
    pub events: u64,
    /// Time of the last handled event.
    pub end: SimTime,
}

/// Why an engine run stopped with an error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// A handler scheduled an event before the current time.
    #[error("event scheduled in the past: at {at} while the clock is at {now}")]
    Causality {
        /// Time the event was scheduled for.
        at: SimTime,
        /// Current simulation time.
        now: SimTime,
    },
}

/// A simulation: a clock, a queue and the reusable buffer handlers push into.
#[derive(Debug)]
pub struct Simulation<E> {
    queue: EventQueue<E>,
    now: SimTime,
    out: Vec<(SimTime, E)>,
}

impl<E> Default for Simulation<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Simulation<E> {
    /// An empty simulation at time zero.
    pub fn new() -> Self {
        Self {
            queue: EventQueue::new(),
            now: SimTime::ZERO,
            out: Vec::new(),
        }
    }

    /// Current simulation time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedule an event; returns its id (for cancellation).
    pub fn schedule(&mut self, at: SimTime, event: E) -> Result<EventId, EngineError> {
        if at < self.now {
            return Err(EngineError::Causality { at, now: self.now });
        }
        Ok(self.queue.push(at, event))
    }

    /// Cancel a scheduled event (lazily: it is skipped when popped).
    pub fn cancel(&mut self, id: EventId) {
        self.queue.cancel(id);
    }

    /// Run until the queue is empty or the next event is later than `until`; stops at the first error
    /// (a handler's, or an event it scheduled in the past) and returns it.
    pub fn run_until<H: Handler<E>>(
        &mut self,
        handler: &mut H,
        until: SimTime,
    ) -> Result<RunStats, H::Error> {
        let mut stats = RunStats {
            events: 0,
            end: self.now,
        };
        while let Some(t) = self.queue.peek_time() {
            if t > until {
                break;
            }
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            if let Err(e) = handler.handle(t, ev, &mut self.out) {
                // Events a failed handler caused never happened.
                self.out.clear();
                return Err(e);
            }
            stats.events += 1;
            stats.end = t;
            for (at, e) in self.out.drain(..) {
                if at < t {
                    return Err(EngineError::Causality { at, now: t }.into());
                }
                self.queue.push(at, e);
            }
        }
        Ok(stats)
    }

    /// Run until no event is left, or to the first error (see [`Simulation::run_until`]).
    pub fn run<H: Handler<E>>(&mut self, handler: &mut H) -> Result<RunStats, H::Error> {
        self.run_until(handler, SimTime::MAX)
    }

    /// Events still pending (cancelled ones included until popped).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ping-pong model: each event reschedules itself `period` later until `left` runs out.
    struct Ticker {
        seen: Vec<(u64, u32)>,
        period: SimTime,
        left: u32,
    }

    impl Handler<u32> for Ticker {
        type Error = EngineError;
        fn handle(
            &mut self,
            now: SimTime,
            event: u32,
            out: &mut Vec<(SimTime, u32)>,
        ) -> Result<(), EngineError> {
            self.seen.push((now.as_nanos(), event));
            if self.left > 0 {
                self.left -= 1;
                out.push((now + self.period, event));
            }
            Ok(())
        }
    }

    #[test]
    fn events_come_out_in_time_order_and_handlers_cause_new_ones() {
        let mut sim = Simulation::new();
        let mut m = Ticker {
            seen: vec![],
            period: SimTime::from_nanos(10),
            left: 3,
        };
        sim.schedule(SimTime::from_nanos(5), 1).unwrap();
        sim.schedule(SimTime::from_nanos(1), 2).unwrap();
        let stats = sim.run(&mut m).unwrap();
        assert_eq!(stats.events, 5);
        assert_eq!(m.seen, vec![(1, 2), (5, 1), (11, 2), (15, 1), (21, 2)]);
    }

    #[test]
    fn run_until_stops_before_later_events() {
        let mut sim = Simulation::new();
        let mut m = Ticker {
            seen: vec![],
            period: SimTime::from_nanos(10),
            left: 100,
        };
        sim.schedule(SimTime::ZERO, 0).unwrap();
        sim.run_until(&mut m, SimTime::from_nanos(35)).unwrap();
        assert_eq!(m.seen.len(), 4);
        assert_eq!(sim.now(), SimTime::from_nanos(30));
        assert_eq!(sim.pending(), 1);
    }

    #[test]
    fn scheduling_in_the_past_is_an_error() {
        struct Bad;
        impl Handler<u8> for Bad {
            type Error = EngineError;
            fn handle(
                &mut self,
                now: SimTime,
                _e: u8,
                out: &mut Vec<(SimTime, u8)>,
            ) -> Result<(), EngineError> {
                out.push((SimTime::from_nanos(now.as_nanos() - 1), 0));
                Ok(())
            }
        }
        let mut sim = Simulation::new();
        sim.schedule(SimTime::from_nanos(10), 0).unwrap();
        let err = sim.run(&mut Bad).unwrap_err();
        assert_eq!(
            err,
            EngineError::Causality {
                at: SimTime::from_nanos(9),
                now: SimTime::from_nanos(10)
            }
        );
    }

    #[test]
    fn a_handler_error_stops_the_run_and_comes_back_typed() {
        // Why: errors used to be parked in a field while the engine ran on; the first one must stop it.
        #[derive(Debug, PartialEq, thiserror::Error)]
        enum ModelError {
            #[error("event {0} failed")]
            Failed(u32),
            #[error(transparent)]
            Engine(#[from] EngineError),
        }
        struct FailsAt {
            bad: u32,
            seen: Vec<u32>,
        }
        impl Handler<u32> for FailsAt {
            type Error = ModelError;
            fn handle(
                &mut self,
                now: SimTime,
                event: u32,
                out: &mut Vec<(SimTime, u32)>,
            ) -> Result<(), ModelError> {
                // Schedules a follow-up before failing: it must not be queued.
                out.push((now + SimTime::from_nanos(1), event + 100));
                if event == self.bad {
                    return Err(ModelError::Failed(event));
                }
                self.seen.push(event);
                Ok(())
            }
        }
        let mut sim = Simulation::new();
        for (t, e) in [(1, 1), (2, 2), (3, 3)] {
            sim.schedule(SimTime::from_nanos(t), e).unwrap();
        }
        let mut m = FailsAt {
            bad: 2,
            seen: vec![],
        };
        let err = sim.run(&mut m).unwrap_err();
        assert_eq!(err, ModelError::Failed(2));
        assert_eq!(m.seen, vec![1], "no event is handled after the failing one");
        assert_eq!(sim.now(), SimTime::from_nanos(2));
        // Left: event 3 and the follow-up of event 1 (at 2 ns); not the failed handler's follow-up.
        assert_eq!(sim.pending(), 2);
    }

    #[test]
    fn cancelled_events_are_skipped() {
        let mut sim = Simulation::new();
        let mut m = Ticker {
            seen: vec![],
            period: SimTime::from_nanos(1),
            left: 0,
        };
        let a = sim.schedule(SimTime::from_nanos(1), 7).unwrap();
        sim.schedule(SimTime::from_nanos(2), 8).unwrap();
        sim.cancel(a);
        let stats = sim.run(&mut m).unwrap();
        assert_eq!(stats.events, 1);
        assert_eq!(m.seen, vec![(2, 8)]);
    }
}
