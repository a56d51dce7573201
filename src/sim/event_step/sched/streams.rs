//! The GPUs' side streams: the overlapped gradient buckets' communication stream and the ZeRO-3
//! stream (parameter gathers prefetched a layer ahead, gradient reduce-scatters).

use super::super::graph::{Pass, Stage};
use super::{Block, Ev, Sched, Stream, ONCE};
use crate::engine::SimTime;
use crate::workload::step_ops::Phase;

impl Sched<'_> {
    /// Request ZeRO-3 gather group `pos` (pass in `order`, group) of GPU `gi` on its ZeRO-3
    /// stream; the next unrequested group becomes the one after it.
    pub(super) fn request(
        &mut self,
        gi: usize,
        pos: (u32, u32),
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let st = &self.g.stages[self.stage_of(gi)];
        let mb = st.order[pos.0 as usize].mb;
        let (a, b) = st.groups[pos.1 as usize];
        let x = &mut self.gpus[gi];
        for i in a..b {
            x.z3q.push_back((i, mb));
        }
        x.gathers_req += b - a;
        x.marks[(x.requests % 2) as usize] = (pos.0, pos.1, x.gathers_req);
        x.requests += 1;
        x.pf = next_group(st, pos.0 as usize, Some(pos.1)).unwrap_or((st.order.len() as u32, 0));
        self.next_z3(gi, now, out);
    }

    /// Request the parameter-gather buckets of GPU `gi` up to bucket `k` (`Stage::pg`, in
    /// order) on its ZeRO-3 stream (the distributed optimizer's gathers run on their own
    /// stream, as ZeRO-3's, and never in a plan with ZeRO-3's).
    pub(super) fn request_pg(&mut self, gi: usize, k: u32, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let st = &self.g.stages[self.stage_of(gi)];
        let x = &mut self.gpus[gi];
        while x.pg_next <= k && (x.pg_next as usize) < st.pg.buckets.len() {
            let (a, b) = st.pg.buckets[x.pg_next as usize];
            for j in a..b {
                x.z3q.push_back((PARAM_GATHER | j, 0));
            }
            x.gathers_req += b - a;
            x.pg_next += 1;
        }
        self.next_z3(gi, now, out);
    }

    /// Issue the next collective of GPU `gi`'s ZeRO-3 stream if it is free.
    pub(super) fn next_z3(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        if self.gpus[gi].z3_active {
            return;
        }
        let Some((i, mb)) = self.gpus[gi].z3q.pop_front() else {
            return;
        };
        self.gpus[gi].z3_active = true;
        let s = self.stage_of(gi);
        let g = self.g;
        if i & BUCKET != 0 {
            // A gradient bucket (chunk, bucket) of the non-layer parameters (`Sched::passed`).
            let (c, k) = ((i & !BUCKET) >> 16, i & 0xffff);
            let (j, bytes) = self.buckets[s][c as usize][k as usize];
            let op = &g.stages[s].per_step[j as usize];
            self.issue_on(gi, op, bytes, ONCE, Stream::Z3(2), now, out);
            return;
        }
        if i & PARAM_GATHER != 0 {
            // A parameter-gather bucket's share of one of the stage's `dp.param_gather` ops.
            let (j, bytes) = g.stages[s].pg.ops[(i & !PARAM_GATHER) as usize];
            let op = &g.stages[s].per_step[j as usize];
            self.issue_on(gi, op, bytes, ONCE, Stream::Z3(1), now, out);
            return;
        }
        let op = &g.stages[s].ops[i as usize];
        let pass = Pass {
            bwd: op.phase != Phase::Forward,
            mb,
            chunk: 0,
        };
        let bytes = op.comm.map_or(0.0, |c| c.bytes_per_rank);
        let z3 = if super::super::graph::is_gather(op) {
            1
        } else {
            2
        };
        self.issue_on(gi, op, bytes, pass, Stream::Z3(z3), now, out);
    }

    /// A GPU waiting to drain its streams before the optimizer goes on once they are idle.
    pub(super) fn wake_drained(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let x = &self.gpus[gi];
        if x.block == Block::Drain
            && !x.comm_active
            && x.queue.is_empty()
            && !x.z3_active
            && x.z3q.is_empty()
        {
            self.gpus[gi].block = Block::None;
            self.advance(gi, now, out);
        }
    }

    pub(super) fn next_bucket(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        if self.gpus[gi].comm_active {
            return;
        }
        let Some(b) = self.gpus[gi].queue.pop_front() else {
            return;
        };
        let s = self.stage_of(gi);
        let (c, k) = (b >> 16, b & 0xffff);
        let (j, bytes) = self.buckets[s][c as usize][k as usize];
        let g = self.g;
        let op = &g.stages[s].per_step[j as usize];
        self.gpus[gi].comm_active = true;
        self.issue_on(gi, op, bytes, ONCE, Stream::Bucket, now, out);
    }
}

/// Marks a ZeRO-3 stream entry as a gradient bucket (chunk << 16 | bucket) instead of an op of
/// the stage list.
pub(super) const BUCKET: u32 = 1 << 31;

/// Marks a ZeRO-3 stream entry as a parameter-gather bucket's all-gather (an index of
/// `ParamGather::ops`) under `overlap_param_gather`.
pub(super) const PARAM_GATHER: u32 = 1 << 30;

/// The ZeRO-3 gather group after group `after` of pass `item` (the first of pass `item` if
/// None) in program order: `(pass, group)`, or None if no pass after has one.
pub(super) fn next_group(st: &Stage, item: usize, after: Option<u32>) -> Option<(u32, u32)> {
    let (a, b) = st.pass_groups(*st.order.get(item)?);
    let first = after.map_or(a, |g| g + 1);
    if first < b {
        return Some((item as u32, first));
    }
    (item + 1..st.order.len()).find_map(|k| {
        let (a, b) = st.pass_groups(st.order[k]);
        (a < b).then_some((k as u32, a))
    })
}
