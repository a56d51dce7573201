//! The ZeRO-3 / FSDP stream of a pipeline stage in the fast path: each layer's parameter gathers
//! and gradient reduce-scatters one after another on their own stream, the gathers prefetched one
//! layer ahead of the compute, the backlog carried from layer to layer and from pass to pass.
//!
//! The rule is the event level's (`event_step::sched`, `request` / `next_z3`), which follows
//! ZeRO-3 / FSDP (Rajbhandari et al. 2020, ZeRO, Sec. 7.2.2; Zhao et al. 2023, PyTorch FSDP,
//! VLDB, Sec. 3.3-3.4): a layer's gathers (a *group*) are requested when the compute reaches the
//! group before it and finds that one done (the step's first group when the compute reaches
//! it); the compute waits at a group until its gathers are done; a layer's reduce-scatters are
//! queued when its backward ends; the stream runs its queue in order, one collective at a time.
//! A group's next is the next layer of the pass or, after a pass's last layer, the first layer
//! of the stage's next pass — so the gather runs in the pipeline's bubble between the two.
//! Requests come in program order at non-decreasing times, so each collective's end is known
//! when it is queued: `max(stream free, queued) + its time`.

use std::ops::Range;

/// One stage's ZeRO-3 stream through a step.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Stream {
    /// When the stream has run everything queued so far [s].
    pub free: f64,
    /// When the requested group the compute has not reached yet is gathered [s].
    pending: f64,
    /// Whether a group is requested and not reached yet.
    requested: bool,
    /// Time the compute waited for gathers [s].
    pub wait_s: f64,
}

impl Stream {
    /// Queue a collective of `d` seconds at `t`.
    fn queue(&mut self, t: f64, d: f64) {
        self.free = self.free.max(t) + d;
    }

    /// The compute reaches a group of `own` seconds of gathers at `t`: when it may go on [s];
    /// then the group after it (`next` seconds; None: the stage's last) is requested.
    fn arrive(&mut self, t: f64, own: f64, next: Option<f64>) -> f64 {
        if !self.requested {
            // The step's first group: nothing ran before it to prefetch it under.
            self.queue(t, own);
            self.pending = self.free;
        }
        let go = t.max(self.pending);
        self.wait_s += go - t;
        self.requested = next.is_some();
        if let Some(d) = next {
            self.queue(go, d);
            self.pending = self.free;
        }
        go
    }
}

/// What a stage's passes hold, for [`Layout::run`].
pub(super) struct Layout<'a> {
    /// Pipeline stages and model chunks per stage.
    pub pp: usize,
    pub v: usize,
    /// Layers of each virtual stage (`chunk * pp + stage`).
    pub ranges: &'a [Range<u32>],
    /// Per layer, forward and backward (recompute included) of one micro-batch [s].
    pub layer_fb: &'a [(f64, f64)],
    /// Per layer, forward gathers, backward gathers, reduce-scatters [s].
    pub z3: &'a [[f64; 3]],
    /// The first virtual stage's ops outside its layers: forward before them, backward after
    /// them (the embedding) [s].
    pub first: [f64; 2],
    /// The last virtual stage's: forward after its layers, backward before them (head, loss) [s].
    pub last: [f64; 2],
}

impl Layout<'_> {
    /// The first gather group of pass (`bwd`, chunk `c`) of stage `s` [s].
    fn first_group(&self, s: usize, bwd: bool, c: usize) -> f64 {
        let r = &self.ranges[c * self.pp + s];
        match (r.is_empty(), bwd) {
            (true, _) => 0.0,
            (false, false) => self.z3[r.start as usize][0],
            (false, true) => self.z3[r.end as usize - 1][1],
        }
    }

    /// Run pass (`bwd`, micro-batch, chunk `c`) of stage `s` from `start` with its stream `z`:
    /// when its compute ends [s]. `next`: the stage's next pass (backward?, chunk), if any.
    pub fn run(
        &self,
        z: &mut Stream,
        s: usize,
        (bwd, _, c): (bool, usize, usize),
        next: Option<(bool, usize)>,
        start: f64,
    ) -> f64 {
        let vs = c * self.pp + s;
        let (first, last) = (vs == 0, vs + 1 == self.pp * self.v);
        let r = self.ranges[vs].start as usize..self.ranges[vs].end as usize;
        let after = next.map(|(b, c)| self.first_group(s, b, c));
        let mut t = start;
        if !bwd {
            if first {
                t += self.first[0];
            }
            for l in r.clone() {
                let nx = if l + 1 < r.end {
                    Some(self.z3[l + 1][0])
                } else {
                    after
                };
                t = z.arrive(t, self.z3[l][0], nx) + self.layer_fb[l].0;
            }
            if last {
                t += self.last[0];
            }
        } else {
            if last {
                t += self.last[1];
            }
            for l in r.clone().rev() {
                let nx = if l > r.start {
                    Some(self.z3[l - 1][1])
                } else {
                    after
                };
                t = z.arrive(t, self.z3[l][1], nx) + self.layer_fb[l].1;
                z.queue(t, self.z3[l][2]);
            }
            if first {
                t += self.first[1];
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Z3 = [[f64; 3]; 2];

    /// One stage, two layers of forward 1 s, backward 2 s; gathers 1.5 s, reduce-scatters 0.5 s.
    fn two_layers() -> ([Range<u32>; 1], [(f64, f64); 2], Z3) {
        (
            [Range { start: 0, end: 2 }],
            [(1.0, 2.0), (1.0, 2.0)],
            [[1.5, 1.5, 0.5]; 2],
        )
    }

    fn layout<'a>(ranges: &'a [Range<u32>], fb: &'a [(f64, f64)], z3: &'a Z3) -> Layout<'a> {
        Layout {
            pp: 1,
            v: 1,
            ranges,
            layer_fb: fb,
            z3,
            first: [0.0; 2],
            last: [0.0; 2],
        }
    }

    #[test]
    fn gathers_prefetch_one_layer_ahead_and_carry_their_backlog() {
        // One stage, two layers of forward 1 s, backward 2 s; gathers 1.5 s, reduce-scatters
        // 0.5 s; one micro-batch. By hand: F: layer 0's gather [0, 1.5] (the step's first),
        // layer 1's requested at 1.5 [1.5, 3]; layer 0 computes [1.5, 2.5], layer 1 waits to 3,
        // requests the backward's first gather (layer 1's) [3, 4.5] and computes [3, 4].
        // B: waits to 4.5, requests layer 0's gather [4.5, 6], layer 1 computes [4.5, 6.5] and
        // queues its reduce-scatter [6.5, 7]; layer 0 [6.5, 8.5]; its reduce-scatter [8.5, 9].
        let (ranges, fb, z3) = two_layers();
        let lay = layout(&ranges, &fb, &z3);
        let mut z = Stream::default();
        let f = lay.run(&mut z, 0, (false, 0, 0), Some((true, 0)), 0.0);
        assert_eq!(f, 4.0);
        let b = lay.run(&mut z, 0, (true, 0, 0), None, f);
        assert_eq!(b, 8.5);
        assert_eq!(z.free, 9.0);
        // Waits: 1.5 (first gather) + 0.5 (layer 1) + 0.5 (the backward's first).
        assert_eq!(z.wait_s, 2.5);
    }

    #[test]
    fn a_bubble_hides_the_next_passs_gather() {
        // The same stage, the backward starting 10 s after the forward's end (a pipeline
        // bubble): its first gather ran in the bubble and costs nothing.
        let (ranges, fb, z3) = two_layers();
        let lay = layout(&ranges, &fb, &z3);
        let mut z = Stream::default();
        let f = lay.run(&mut z, 0, (false, 0, 0), Some((true, 0)), 0.0);
        let w = z.wait_s;
        let b = lay.run(&mut z, 0, (true, 0, 0), None, f + 10.0);
        assert_eq!(z.wait_s, w);
        assert_eq!(b, f + 10.0 + 4.0);
    }
}
