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
    let n = pp.max(1);
    let total = m * v;
    let mut table = Vec::with_capacity(total as usize);
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
    let warm = ((pp - s - 1) * 2 + (v - 1) * n).min(total);
    let f = |k: u32| {
        let (mb, chunk) = table[k as usize];
        Pass {
            bwd: false,
            mb,
            chunk,
        }
    };
    let b = |k: u32| {
        let (mb, chunk) = table[k as usize];
        Pass {
            bwd: true,
            mb,
            chunk: v - 1 - chunk,
        }
    };
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
