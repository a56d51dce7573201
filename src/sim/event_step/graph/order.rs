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
