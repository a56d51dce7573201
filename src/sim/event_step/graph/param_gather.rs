//! The distributed optimizer's parameter all-gathers under the next step's first forward
//! (`training.overlap_param_gather`): one bucket per layer, in forward order across the chunks.
//!
//! Megatron-LM's distributed optimizer with `--overlap-param-gather` (NVIDIA/Megatron-LM at
//! d98e8a6, `megatron/core/distributed/distributed_data_parallel.py` L517-551
//! `_make_forward_pre_hook`, L369-378 each bucket group's `next_param_gather_bucket_group` in
//! forward order across the model chunks; `param_and_grad_buffer.py` L538-573
//! `finish_param_sync`: wait for this bucket's all-gather, then `start_param_sync` of the next)
//! dispatches only the first bucket's all-gather after the optimizer step; each module's
//! forward pre-hook waits for its own bucket's all-gather and dispatches the next one's. So bucket `k + 1` gathers while layer `k`
//! computes its first forward, and a layer waits for its bucket. As the fast path
//! (`sim::step::param_gather`): one bucket per layer of a chunk, each `1 / layers` of the
//! chunk's gathers; the first bucket of the step's first chunk is requested at the step's start
//! (the previous step's optimizer has just ended, as it does at the end of this one).

use super::{Chunk, NONE};
use crate::workload::step_ops::Op;

/// The gathers of one stage: which op of the micro-batch list starts each bucket's layer, and
/// what each bucket gathers.
#[derive(Clone, Debug, Default)]
pub(in crate::sim::event_step) struct ParamGather {
    /// For each op of `Stage::ops`: the bucket (in forward order over the stage's chunks) whose
    /// gathers the first micro-batch's forward waits for before it, or [`NONE`].
    pub at: Vec<u32>,
    /// Per bucket: its range of `ops`.
    pub buckets: Vec<(u32, u32)>,
    /// The buckets' all-gathers: (index of the chunk's `dp.param_gather` op in
    /// `Stage::per_step`, bytes of this bucket's share) [bytes].
    pub ops: Vec<(u32, f64)>,
}

impl ParamGather {
    /// The buckets of a stage whose micro-batch ops are `all`, chunks `chunks`, once-per-step
    /// ops `per_step`, and each chunk's optimizer ops the range `opt[c]` of `per_step`.
    pub fn new(all: &[Op], chunks: &[Chunk], per_step: &[Op], opt: &[(u32, u32)]) -> Self {
        let mut pg = ParamGather {
            at: vec![NONE; all.len()],
            ..Default::default()
        };
        for (ch, &(o0, o1)) in chunks.iter().zip(opt) {
            let gathers: Vec<(u32, f64)> = (o0..o1)
                .filter(|&j| per_step[j as usize].name == "dp.param_gather")
                .filter_map(|j| per_step[j as usize].comm.map(|c| (j, c.bytes_per_rank)))
                .collect();
            if gathers.is_empty() {
                continue;
            }
            // Where each layer's forward starts; the first bucket before the chunk's first op
            // (its embedding, if it has one).
            let (lo, hi) = ch.range(false);
            let mut starts = vec![lo];
            let mut last = None;
            for (i, op) in all.iter().enumerate().take(hi).skip(lo) {
                if op.layer.is_some() && op.layer != last {
                    if last.is_some() {
                        starts.push(i);
                    }
                    last = op.layer;
                }
            }
            let n = starts.len() as f64;
            for i in starts {
                pg.at[i] = pg.buckets.len() as u32;
                let b0 = pg.ops.len() as u32;
                pg.ops.extend(gathers.iter().map(|&(j, b)| (j, b / n)));
                pg.buckets.push((b0, pg.ops.len() as u32));
            }
        }
        pg
    }

    /// Whether the stage has gathers to overlap.
    pub fn on(&self) -> bool {
        !self.buckets.is_empty()
    }
}
