//! Replay of a recorded trace through a model: step s uses trace step s, with a rule past the trace's end,
//! and (when asked) a mapping of the trace's layers and experts onto the model's. The trace is streamed:
//! a replay holds one trace step, read from the file when a model step first asks for it.

use super::{RoutingError, TraceCursor, TraceFile};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::Arc;

/// What replay does past the trace's last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastEnd {
    /// Start again from the first step.
    Loop,
    /// Keep replaying the last step.
    Hold,
    /// Draw blocks of `block` consecutive trace steps at seeded random positions.
    Bootstrap {
        /// Block length [steps].
        block: u64,
    },
}

/// How trace experts map onto model experts: model expert m takes `weight` of trace expert `e`'s share.
#[derive(Debug, Clone, PartialEq)]
struct ExpertMap {
    /// Per model expert: (trace expert, weight) pairs.
    parts: Vec<Vec<(usize, f64)>>,
}

impl ExpertMap {
    /// Proportional map: trace expert e covers [e/T, (e+1)/T) of the unit interval, model expert m covers
    /// [m/M, (m+1)/M); m receives the overlap's fraction of e's share. Folds (T > M) and splits (T < M).
    fn proportional(trace: usize, model: usize) -> Self {
        let mut parts = vec![Vec::new(); model];
        for (m, p) in parts.iter_mut().enumerate() {
            let (lo, hi) = (m as f64 / model as f64, (m + 1) as f64 / model as f64);
            for e in 0..trace {
                let (a, b) = (e as f64 / trace as f64, (e + 1) as f64 / trace as f64);
                let overlap = (hi.min(b) - lo.max(a)).max(0.0);
                if overlap > 1e-15 {
                    p.push((e, overlap * trace as f64));
                }
            }
        }
        Self { parts }
    }
}

/// A trace prepared for replay through a model of `layers` MoE layers and `experts` experts.
#[derive(Debug)]
pub struct TraceReplay {
    trace: Arc<TraceFile>,
    /// This replay's reader of the trace (a clone opens its own when it first reads).
    cursor: Option<Box<TraceCursor>>,
    /// The first read that failed during the run (the file changed after it was checked); the run
    /// reports it at its end through [`TraceReplay::take_error`].
    error: Option<Box<RoutingError>>,
    past_end: PastEnd,
    seed: u64,
    layers: usize,
    experts: usize,
    map: Option<ExpertMap>,
    layers_cycled: bool,
}

impl Clone for TraceReplay {
    fn clone(&self) -> Self {
        Self {
            trace: self.trace.clone(),
            cursor: None,
            error: self.error.as_ref().map(|e| Box::new(e.duplicate())),
            past_end: self.past_end,
            seed: self.seed,
            layers: self.layers,
            experts: self.experts,
            map: self.map.clone(),
            layers_cycled: self.layers_cycled,
        }
    }
}

impl TraceReplay {
    /// Prepare `trace` for a model; a shape mismatch is an error unless `allow_mapping`.
    pub fn new(
        trace: Arc<TraceFile>,
        layers: usize,
        experts: usize,
        past_end: PastEnd,
        allow_mapping: bool,
        seed: u64,
    ) -> Result<Self, RoutingError> {
        let path = Path::new(&trace.source).to_path_buf();
        if !allow_mapping && (trace.layers != layers || trace.experts != experts) {
            return Err(RoutingError::Shape {
                path,
                msg: format!(
                    "trace has {} layers × {} experts but the model has {layers} MoE layers × {experts} experts; use a matching trace or set routing.map = true (layers cycled, experts folded or split proportionally)",
                    trace.layers, trace.experts
                ),
            });
        }
        let map =
            (trace.experts != experts).then(|| ExpertMap::proportional(trace.experts, experts));
        let layers_cycled = trace.layers != layers;
        let cursor = Some(Box::new(trace.cursor()?));
        Ok(Self {
            trace,
            cursor,
            error: None,
            past_end,
            seed,
            layers,
            experts,
            map,
            layers_cycled,
        })
    }

    /// What the replay does, for reports.
    pub fn describe(&self) -> String {
        let t = &self.trace;
        let mut s = format!(
            "trace {} ({} steps × {} layers × {} experts)",
            t.source, t.steps, t.layers, t.experts
        );
        if self.layers_cycled {
            s.push_str(&format!(
                "; model layer l replays trace layer l mod {}",
                t.layers
            ));
        }
        if self.map.is_some() {
            let how = if t.experts > self.experts {
                "folded"
            } else {
                "split"
            };
            s.push_str(&format!(
                "; {} trace experts {how} proportionally into {}",
                t.experts, self.experts
            ));
        }
        s.push_str(&match self.past_end {
            PastEnd::Loop => "; loops past its end".to_string(),
            PastEnd::Hold => "; holds its last step past its end".to_string(),
            PastEnd::Bootstrap { block } => {
                format!("; block bootstrap of {block} steps past its end")
            }
        });
        s
    }

    /// Trace step (0-based) that model step `step` (0-based) replays.
    pub fn trace_step(&self, step: u64) -> usize {
        let n = self.trace.steps as u64;
        if step < n {
            return step as usize;
        }
        match self.past_end {
            PastEnd::Loop => (step % n) as usize,
            PastEnd::Hold => (n - 1) as usize,
            PastEnd::Bootstrap { block } => {
                let block = block.clamp(1, n);
                let k = (step - n) / block;
                // A generator per block keeps replay random-access and independent of the thread.
                let mut rng =
                    ChaCha8Rng::seed_from_u64(self.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let start = rng.gen_range(0..=n - block);
                (start + (step - n) % block) as usize
            }
        }
    }

    /// Fill `out` (layers × experts) with the shares of model step `step`, reading its trace step from
    /// the file if this replay does not hold it. A read that fails (the file changed during the run)
    /// gives equal shares and is kept for [`TraceReplay::take_error`].
    pub fn fill_shares(&mut self, step: u64, out: &mut [f64]) {
        let ts = self.trace_step(step);
        let cursor = match &mut self.cursor {
            Some(c) => c,
            None => match self.trace.cursor() {
                Ok(c) => self.cursor.insert(Box::new(c)),
                Err(e) => return self.failed(e, out),
            },
        };
        let counts = match cursor.step(&self.trace, ts) {
            Ok(c) => c,
            Err(e) => return self.failed(e, out),
        };
        let (e, te) = (self.experts, self.trace.experts);
        for l in 0..self.layers {
            let tl = l % self.trace.layers;
            let c = &counts[tl * te..(tl + 1) * te];
            // Summed exactly in integers; the same f64 as summing the f64 counts (totals < 2^53).
            let total = c.iter().map(|&x| x as u64).sum::<u64>() as f64;
            let row = &mut out[l * e..(l + 1) * e];
            if total <= 0.0 {
                row.iter_mut().for_each(|x| *x = 1.0 / e as f64);
                continue;
            }
            match &self.map {
                None => row
                    .iter_mut()
                    .zip(c)
                    .for_each(|(o, &x)| *o = x as f64 / total),
                Some(m) => {
                    for (o, parts) in row.iter_mut().zip(&m.parts) {
                        *o = parts.iter().map(|&(te, w)| c[te] as f64 * w).sum::<f64>() / total;
                    }
                }
            }
        }
    }

    fn failed(&mut self, e: RoutingError, out: &mut [f64]) {
        self.error.get_or_insert(Box::new(e));
        let share = 1.0 / self.experts as f64;
        out.iter_mut().for_each(|x| *x = share);
    }

    /// The first read that failed during replay, if any (then the run's shares are not the trace's).
    pub fn take_error(&mut self) -> Option<RoutingError> {
        self.error.take().map(|e| *e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::routing::RoutingTrace;

    fn trace(experts: usize, layers: usize, steps: usize) -> Arc<TraceFile> {
        let counts = (0..experts * layers * steps)
            .map(|i| (i % 7 + 1) as u32)
            .collect();
        let t = RoutingTrace::from_counts(experts, layers, counts, "t.csv".into()).unwrap();
        Arc::new(TraceFile::from_trace(t))
    }

    #[test]
    fn a_shape_mismatch_is_an_error_unless_mapping_is_asked() {
        let err = TraceReplay::new(trace(16, 8, 4), 32, 8, PastEnd::Loop, false, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8 layers × 16 experts") && err.contains("routing.map"),
            "{err}"
        );
        let r = TraceReplay::new(trace(16, 8, 4), 32, 8, PastEnd::Loop, true, 0).unwrap();
        assert!(r.describe().contains("folded"));
    }

    #[test]
    fn folding_and_splitting_keep_every_share() {
        for (t, m) in [(16, 8), (16, 6), (4, 8), (5, 3)] {
            let mut r = TraceReplay::new(trace(t, 2, 3), 2, m, PastEnd::Loop, true, 0).unwrap();
            let mut out = vec![0.0; 2 * m];
            r.fill_shares(1, &mut out);
            for l in 0..2 {
                let s: f64 = out[l * m..(l + 1) * m].iter().sum();
                assert!((s - 1.0).abs() < 1e-12, "{t}->{m}: {s}");
            }
        }
        // Folding 16 into 8 sums pairs exactly.
        let tr = trace(16, 1, 1);
        let mut r = TraceReplay::new(tr.clone(), 1, 8, PastEnd::Loop, true, 0).unwrap();
        let mut out = vec![0.0; 8];
        r.fill_shares(0, &mut out);
        let c = tr.load().unwrap().counts(0, 0).to_vec();
        let total: f64 = c.iter().map(|&x| x as f64).sum();
        assert!((out[3] - (c[6] + c[7]) as f64 / total).abs() < 1e-12);
    }

    #[test]
    fn past_the_end_loops_holds_or_bootstraps_deterministically() {
        let t = trace(4, 1, 10);
        let lp = TraceReplay::new(t.clone(), 1, 4, PastEnd::Loop, false, 0).unwrap();
        let hold = TraceReplay::new(t.clone(), 1, 4, PastEnd::Hold, false, 0).unwrap();
        let boot =
            TraceReplay::new(t.clone(), 1, 4, PastEnd::Bootstrap { block: 3 }, false, 9).unwrap();
        assert_eq!(lp.trace_step(23), 3);
        assert_eq!(hold.trace_step(23), 9);
        let s: Vec<usize> = (10..22).map(|i| boot.trace_step(i)).collect();
        for b in s.chunks(3) {
            assert!(
                b[1] == b[0] + 1 && b[2] == b[1] + 1,
                "blocks are consecutive: {s:?}"
            );
        }
        assert_eq!(s, (10..22).map(|i| boot.trace_step(i)).collect::<Vec<_>>());
        assert!(s.iter().all(|&x| x < 10));
    }
}
