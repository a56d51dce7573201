//! The pipeline schedules' pass orders: 1F1B and Megatron-LM's interleaved 1F1B.

use super::Pass;

/// Passes of stage `s` of `pp` in 1F1B order for `m` micro-batches (Narayanan et al. 2021,
/// PipeDream-Flush / Megatron-LM `forward_backward_pipelining_without_interleaving`): warm-up
/// forwards, then one forward and one backward alternately, then the remaining backwards.
pub(in crate::sim::event_step) fn one_f_one_b(s: u32, pp: u32, m: u32) -> Vec<Pass> {
    let warm = (pp - 1 - s).min(m);
    let mut v = Vec::with_capacity(2 * m as usize);
    let f = |mb| Pass {
        bwd: false,
        mb,
        chunk: 0,
    };
    let b = |mb| Pass {
        bwd: true,
        mb,
        chunk: 0,
    };
    for mb in 0..warm {
        v.push(f(mb));
    }
    for i in 0..m - warm {
        v.push(f(warm + i));
        v.push(b(i));
    }
    for mb in m - warm..m {
        v.push(b(mb));
    }
    v
}

/// Passes of stage `s` of `pp` with `v` model chunks and `m` micro-batches in Megatron-LM's
/// interleaved 1F1B order (`megatron/core/pipeline_parallel/schedules.py`,
/// `forward_backward_pipelining_with_interleaving`, with `get_schedule_table` and
/// `get_pp_rank_microbatches` at the default `microbatch_group_size_per_vp_stage = pp`):
/// the k-th forward runs micro-batch / chunk `table[k]`, where the table walks groups of `pp`
/// micro-batches through chunk 0, then chunk 1, ...; the k-th backward runs `table[k]` with the
/// chunk mirrored (`v - 1 - chunk`). Stage `s` warms up with `(pp - s - 1) * 2 + (v - 1) * pp`
/// forwards (capped at `m * v`), then alternates one forward and one backward, then drains the
/// backwards. Expects `m` a multiple of `pp` (`Schedule::validate` checks it).
pub(in crate::sim::event_step) fn interleaved(s: u32, pp: u32, v: u32, m: u32) -> Vec<Pass> {
    let t = PassTable::new(pp, v, m);
    let total = t.len();
    let warm = ((pp - s - 1) * 2 + (v - 1) * pp.max(1)).min(total);
    let (f, b) = (|k| t.forward(k), |k| t.backward(k));
    let mut order = Vec::with_capacity(2 * total as usize);
    for k in 0..warm {
        order.push(f(k));
    }
    for k in 0..total - warm {
        order.push(f(warm + k));
        order.push(b(k));
    }
    for k in total - warm..total {
        order.push(b(k));
    }
    order
}

/// Megatron-LM's schedule table (`get_schedule_table`, groups of `pp` micro-batches through chunk 0,
/// chunk 1, ...): the k-th forward and the k-th backward (chunk mirrored) of an interleaved stage.
pub(in crate::sim::event_step) struct PassTable {
    table: Vec<(u32, u32)>,
    v: u32,
}

impl PassTable {
    /// The table of `m` micro-batches over `v` model chunks with `pp` stages.
    pub(in crate::sim::event_step) fn new(pp: u32, v: u32, m: u32) -> Self {
        let n = pp.max(1);
        let mut table = Vec::with_capacity((m * v) as usize);
        let mut lo = 0;
        while lo < m {
            let hi = if lo + n >= m { m } else { lo + n };
            for chunk in 0..v {
                for mb in lo..hi {
                    table.push((mb, chunk));
                }
            }
            lo = hi;
        }
        PassTable { table, v }
    }

    /// Passes each way: micro-batches × chunks.
    pub(in crate::sim::event_step) fn len(&self) -> u32 {
        self.table.len() as u32
    }

    /// The k-th forward pass.
    pub(in crate::sim::event_step) fn forward(&self, k: u32) -> Pass {
        let (mb, chunk) = self.table[k as usize];
        Pass {
            bwd: false,
            mb,
            chunk,
        }
    }

    /// The k-th backward pass: the k-th forward's micro-batch on the mirrored chunk.
    pub(in crate::sim::event_step) fn backward(&self, k: u32) -> Pass {
        let (mb, chunk) = self.table[k as usize];
        Pass {
            bwd: true,
            mb,
            chunk: self.v - 1 - chunk,
        }
    }
}

/// DeepSeek's DualPipe order of rank `r` of `n` with `m` micro-batches (`m / 2` per direction),
/// read from the fast path's transliteration of `DualPipe.step` (`sim::step::dualpipe::program`,
/// the same program): rank `r` holds model chunk 0 = stage `r` (direction 0, entering at rank 0)
/// and chunk 1 = stage `n-1-r` (direction 1, entering at rank `n-1`). Returns the passes (a
/// paired forward-backward chunk as its forward half, the backward half's micro-batch and chunk
/// in `pair`) and per pass the commit before it: the inputs it waits for (`_commit_and_wait_comm`
/// waits for every receive posted since the last commit, some for later passes than the next)
/// and the sends it launches (posted after earlier passes, some deferred past the next pass).
pub(in crate::sim::event_step) fn dualpipe(r: u32, n: u32, m: u32) -> DualOrder {
    use crate::sim::step::dualpipe::{program, Act};
    let (r, n) = (r as usize, n as usize);
    // Local phase `p` of the program is direction `p` on the first half of the ranks, the other
    // on the second (`dualpipe.py`'s `is_in_second_half` swaps them).
    let second = u8::from(r >= n / 2);
    let dir = |p: u8| u32::from(p ^ second);
    let has_prev = |d: u32| if d == 0 { r > 0 } else { r + 1 < n };
    let has_next = |d: u32| if d == 0 { r + 1 < n } else { r > 0 };
    let (mut nf, mut nb, mut rf, mut rb) = ([0u32; 2], [0u32; 2], [0u32; 2], [0u32; 2]);
    let mut o = DualOrder::default();
    let (mut posted, mut waiting) = (Vec::new(), Vec::new());
    let (mut sends, mut out) = (Vec::new(), Vec::new());
    let (mut sf, mut sb) = ([0u32; 2], [0u32; 2]);
    let pass = |bwd, mb, chunk| Pass { bwd, mb, chunk };
    // The next pass of direction `d` a transfer counter stands at, the counter moved on.
    let next = |ctr: &mut [u32; 2], bwd: bool, d: u32| {
        let k = ctr[d as usize];
        ctr[d as usize] += 1;
        Pass {
            bwd,
            mb: k,
            chunk: d,
        }
    };
    for a in program(r, n, m as usize) {
        match a {
            Act::RecvF(p) if has_prev(dir(p)) => posted.push(next(&mut rf, false, dir(p))),
            Act::RecvB(p) if has_next(dir(p)) => posted.push(next(&mut rb, true, dir(p))),
            Act::SendF(p) if has_next(dir(p)) => sends.push(next(&mut sf, false, dir(p))),
            Act::SendB(p) if has_prev(dir(p)) => sends.push(next(&mut sb, true, dir(p))),
            // The commit launches the sends posted since the last one and waits for them and
            // for the receives.
            Act::Commit => {
                waiting.append(&mut posted);
                out.append(&mut sends);
            }
            Act::F(p) | Act::B(p) => {
                let (d, bwd) = (dir(p), matches!(a, Act::B(_)));
                let k = if bwd { &mut nb } else { &mut nf };
                o.order.push(pass(bwd, k[d as usize], d));
                k[d as usize] += 1;
                o.pair.push(None);
                o.needs.push(std::mem::take(&mut waiting));
                o.sends.push(std::mem::take(&mut out));
            }
            Act::Fb(p0, p1) => {
                let (d0, d1) = (dir(p0), dir(p1));
                o.order.push(pass(false, nf[d0 as usize], d0));
                nf[d0 as usize] += 1;
                o.pair.push(Some((nb[d1 as usize], d1)));
                nb[d1 as usize] += 1;
                o.needs.push(std::mem::take(&mut waiting));
                o.sends.push(std::mem::take(&mut out));
            }
            // A transfer at a pipeline end has no other side.
            _ => {}
        }
    }
    // The last commits: sends of the last passes, waited for before the per-step ops.
    o.needs.push(waiting);
    o.sends.push(out);
    o
}

/// A DualPipe rank's passes (see [`dualpipe`]).
#[derive(Clone, Debug, Default)]
pub(in crate::sim::event_step) struct DualOrder {
    pub order: Vec<Pass>,
    pub pair: Vec<Option<(u32, u32)>>,
    /// Per pass (and one more for the end of the passes): inputs its commit waits for.
    pub needs: Vec<Vec<Pass>>,
    /// Per pass (and the end): the transfers its commit launches and waits for, each named by
    /// the pass whose output it sends.
    pub sends: Vec<Vec<Pass>>,
}
