//! Megatron-LM's combined 1F1B (`overlap_ep_comm`, `--overlap-moe-expert-parallel-comm`) in the
//! fast path: one combined pass (a forward and a backward of two micro-batches, layer by layer,
//! each half's dispatch/combine all-to-alls on a communication stream under the other half's
//! compute) timed on two streams, and the pipeline of such passes. The event level runs the same
//! order op by op (`event_step::combined`, where the Megatron-LM sources are cited); here each
//! layer is its compute runs between its all-to-all runs, priced at the slowest rank.

/// One layer's half (forward, or backward with its recompute) as the combined schedule sees
/// it: compute runs `c[0..=n]` around `n` all-to-all runs `a[0..n]` (n = 2 for an MoE layer
/// with expert parallelism: dispatch then combine forward, combine then dispatch backward; 0
/// otherwise) [s].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Half {
    pub n: usize,
    pub c: [f64; 3],
    pub a: [f64; 2],
}

/// The compute and the all-to-all stream of one GPU through a combined pass: when each is free
/// and when each half's last op ended [s].
#[derive(Default)]
struct Streams {
    comp: f64,
    comm: f64,
    ready: [f64; 2],
}

impl Streams {
    /// A compute run of half `h` (0 forward, 1 backward): after the stream's previous op and
    /// its own half's. An empty run has no op to wait.
    fn compute(&mut self, h: usize, d: f64) {
        if d > 0.0 {
            self.comp = self.comp.max(self.ready[h]) + d;
            self.ready[h] = self.comp;
        }
    }

    /// An all-to-all run of half `h`: issued when the compute stream reaches it, after the
    /// all-to-all stream's previous run.
    fn a2a(&mut self, h: usize, d: f64) {
        self.comm = self.comm.max(self.comp).max(self.ready[h]) + d;
        self.ready[h] = self.comm;
    }

    /// Forward layer `f` with backward layer `b` (`event_step::combined::Merge::layer_pair`'s
    /// order: `b0, B1, f0, F1, b1, B2, f1, F2, b2, f2`).
    fn layer_pair(&mut self, f: Option<&Half>, b: Option<&Half>) {
        let (nf, nb) = (f.map_or(0, |x| x.n), b.map_or(0, |x| x.n));
        let n = nf.max(nb);
        if let Some(b) = b {
            self.compute(1, b.c[0]);
        }
        for i in 1..=n {
            if let Some(b) = b.filter(|_| i <= nb) {
                self.a2a(1, b.a[i - 1]);
            }
            if let Some(f) = f.filter(|_| i - 1 <= nf) {
                self.compute(0, f.c[i - 1]);
            }
            if let Some(f) = f.filter(|_| i <= nf) {
                self.a2a(0, f.a[i - 1]);
            }
            if let Some(b) = b.filter(|_| i <= nb) {
                self.compute(1, b.c[i]);
            }
        }
        if let Some(f) = f.filter(|_| n == nf) {
            self.compute(0, f.c[n]);
        }
    }
}

/// Time of one combined pass's layers [s]: forward layers `f` in forward order with backward
/// layers `b` in backward order, pairwise, then the backward's remaining layers, then the
/// forward's (Megatron-LM's `TransformerModelChunkSchedulePlan.run`); the pass ends when both
/// streams are done. The ops outside the layers and the pipeline sends add to it in sequence.
pub(super) fn combined_layers_s<'a>(
    f: impl ExactSizeIterator<Item = &'a Half>,
    b: impl ExactSizeIterator<Item = &'a Half>,
) -> f64 {
    let mut s = Streams::default();
    let (mut f, mut b) = (f.peekable(), b.peekable());
    while f.peek().is_some() || b.peek().is_some() {
        // Pairs while both have layers; then the backward's rest, then the forward's.
        match (f.peek().is_some(), b.peek().is_some()) {
            (true, true) => {
                let (x, y) = (f.next(), b.next());
                s.layer_pair(x, y);
            }
            (_, true) => s.layer_pair(None, b.next()),
            _ => s.layer_pair(f.next(), None),
        }
    }
    s.comp.max(s.comm)
}

/// Micro-batch and model chunk of the `j`-th forward (or backward) of a stage, as
/// `schedule::pass_of` orders them (Megatron-LM's schedule table).
fn entry(j: usize, bwd: bool, p: usize, v: usize, m: usize) -> (usize, usize) {
    if v == 1 {
        return (j, 0);
    }
    let group = j / (p * v);
    let size = p.min(m - group * p);
    let r = j - group * p * v;
    let (mb, chunk) = (group * p + r % size, r / size);
    (mb, if bwd { v - 1 - chunk } else { chunk })
}

/// Makespan of a combined 1F1B step pass by pass [s]: the (interleaved) 1F1B order with one
/// more warm-up forward, each steady-state forward run with the backward after it as one
/// combined pass of `comb[(s * v + cf) * v + cb]` (forward chunk `cf`, backward chunk `cb`),
/// both halves' inputs needed before it starts, its forward's send then its backward's after it
/// (`event_step::combined::merge`). Passes that run alone take `fwd` / `bwd` as in
/// [`super::pipeline_passes_s`], and the dependencies are the same; a send crosses stage
/// boundary `hop(b)` as in `schedule::passes_by`. `ends`: scratch.
pub(super) fn pipeline_combined_s(
    fwd: &[f64],
    bwd: &[f64],
    comb: &[f64],
    micro_batches: u32,
    hop: impl Fn(usize) -> f64,
    v: u32,
    ends: &mut Vec<f64>,
) -> f64 {
    let v = v.max(1) as usize;
    let p = fwd.len() / v;
    let m = micro_batches.max(1) as usize;
    if p == 0 {
        return 0.0;
    }
    let total = m * v;
    ends.clear();
    ends.resize(2 * p * m * v, f64::NAN);
    let at =
        |s: usize, c: usize, mb: usize, b: bool| super::schedule::pass_slot((v, m), s, c, mb, b);
    // Per-stage cursor and clock on the stack for up to 64 stages (the per-step path).
    let (mut cur_small, mut clk_small) = ([0usize; 64], [0.0f64; 64]);
    let (mut cur_big, mut clk_big);
    let (cursor, clock): (&mut [usize], &mut [f64]) = if p <= 64 {
        (&mut cur_small[..p], &mut clk_small[..p])
    } else {
        cur_big = vec![0usize; p];
        clk_big = vec![0.0f64; p];
        (&mut cur_big[..], &mut clk_big[..])
    };
    let warm = |s: usize| {
        let base = if v == 1 {
            p - 1 - s
        } else {
            (p - s - 1) * 2 + (v - 1) * p
        };
        (base + 1).min(total)
    };
    let items = |s: usize| total + warm(s);
    let dep = |ends: &[f64], s: usize, c: usize, mb: usize, b: bool| {
        super::schedule::pass_dep(ends, (p, v, m), s, c, mb, b)
    };
    // The blocking send that ends a pass: backward to stage s - 1, forward to s + 1 (from the
    // last stage to stage 0's next chunk), none out of the model's ends.
    let send = |s: usize, c: usize, b: bool| match b {
        true if s > 0 || c > 0 => hop((s + p - 1) % p),
        false if s + 1 < p || c + 1 < v => hop(s),
        _ => 0.0,
    };
    let mut left: usize = (0..p).map(items).sum();
    while left > 0 {
        let before = left;
        for s in 0..p {
            let w = warm(s);
            while cursor[s] < items(s) {
                let k = cursor[s];
                // (forward index, backward index) of the item; None for a half it lacks.
                let (fj, bj) = if k < w {
                    (Some(k), None)
                } else if k < total {
                    (Some(k), Some(k - w))
                } else {
                    (None, Some(k - w))
                };
                let fe = fj.map(|j| entry(j, false, p, v, m));
                let be = bj.map(|j| entry(j, true, p, v, m));
                let df = fe.map_or(0.0, |(mb, c)| dep(ends, s, c, mb, false));
                let db = be.map_or(0.0, |(mb, c)| dep(ends, s, c, mb, true));
                if df.is_nan() || db.is_nan() {
                    break;
                }
                let start = clock[s].max(df).max(db);
                let mut t = start
                    + match (fe, be) {
                        (Some((_, cf)), Some((_, cb))) => comb[(s * v + cf) * v + cb],
                        (Some((_, cf)), None) => fwd[s * v + cf],
                        (None, Some((_, cb))) => bwd[s * v + cb],
                        (None, None) => 0.0,
                    };
                if let Some((mb, c)) = fe {
                    t += send(s, c, false);
                    ends[at(s, c, mb, false)] = t;
                }
                if let Some((mb, c)) = be {
                    t += send(s, c, true);
                    ends[at(s, c, mb, true)] = t;
                }
                clock[s] = t;
                cursor[s] += 1;
                left -= 1;
            }
        }
        if left == before {
            // The combined order is deadlock-free (Megatron-LM runs it); this guards the loop.
            break;
        }
    }
    clock.iter().copied().fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moe(c: [f64; 3], a: [f64; 2]) -> Half {
        Half { n: 2, c, a }
    }

    #[test]
    fn all_to_alls_shorter_than_the_other_halfs_compute_are_hidden() {
        // Forward: attention 4, dispatch 1, experts 3, combine 1, unpermute 1; backward: 1,
        // combine 1, experts 6, dispatch 1, attention 8. By hand: b0 [0,1], B1 [1,2], f0 [1,5],
        // F1 [5,6], b1 [5,11], B2 [11,12], f1 [11,14], F2 [14,15], b2 [14,22], f2 [22,23].
        let f = moe([4.0, 3.0, 1.0], [1.0, 1.0]);
        let b = moe([1.0, 6.0, 8.0], [1.0, 1.0]);
        let t = combined_layers_s([f].iter(), [b].iter());
        assert!((t - 23.0).abs() < 1e-12, "{t}");
        // Blocking, the same layer takes 10 + 17 = 27: the four all-to-alls hidden.
    }

    #[test]
    fn an_all_to_all_longer_than_the_compute_beside_it_shows() {
        // Dispatch of 10 beside a backward expert run of 6: the forward's experts wait for it.
        // b0 [0,1], B1 [1,2], f0 [1,5], F1 [5,15], b1 [5,11]; B2 is issued when b1 ends (11)
        // but the stream is busy with F1 until 15: B2 [15,16]; f1 waits for F1: [15,18];
        // F2 [18,19]; b2 waits for B2: [18,26]; f2 waits for F2: [26,27].
        let f = moe([4.0, 3.0, 1.0], [10.0, 1.0]);
        let b = moe([1.0, 6.0, 8.0], [1.0, 1.0]);
        let t = combined_layers_s([f].iter(), [b].iter());
        assert!((t - 27.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn without_all_to_alls_a_combined_pass_is_the_two_halves_in_sequence() {
        let d = Half {
            n: 0,
            c: [2.0, 0.0, 0.0],
            a: [0.0; 2],
        };
        let t = combined_layers_s([d, d].iter(), [d, d].iter());
        assert!((t - 8.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn one_stage_runs_the_first_forward_and_the_last_backward_alone() {
        // m = 4, forward 3, backward 5, combined 6: F0 + 3 combined + B3 = 3 + 18 + 5.
        let mut ends = Vec::new();
        let t = pipeline_combined_s(&[3.0], &[5.0], &[6.0], 4, |_| 0.0, 1, &mut ends);
        assert!((t - 26.0).abs() < 1e-12, "{t}");
    }

    #[test]
    fn combined_passes_that_save_nothing_cost_at_most_one_more_warm_up() {
        // Why: with comb = f + b the combined order is 1F1B with one more warm-up forward,
        // which can only add bubble, never remove work.
        let mut ends = Vec::new();
        // 3 stages of 2 chunks (Megatron-LM runs the combined order interleaved only).
        let (f, b) = (
            [1.0, 0.5, 1.5, 1.0, 1.0, 0.5],
            [2.0, 1.0, 3.0, 2.0, 2.0, 1.0],
        );
        let (p, v) = (3, 2);
        let mut comb = Vec::new();
        for s in 0..p {
            for cf in 0..v {
                for cb in 0..v {
                    comb.push(f[s * v + cf] + b[s * v + cb]);
                }
            }
        }
        let plain = super::super::pipeline_passes_s(&f, &b, 6, 0.1, 2, &mut ends);
        let c = pipeline_combined_s(&f, &b, &comb, 6, |_| 0.1, 2, &mut ends);
        assert!(c >= plain - 1e-12, "{c} < {plain}");
        assert!(c <= plain + 1.5 + 3.0 + 0.2 + 1e-12, "{c} vs {plain}");
    }
}
