//! A GPU's program walked from its cursor: the next pass, its ops issued on their streams, until it blocks (and DualPipe's commits between passes).

use super::super::graph::NONE;
use super::issue::{Stream, ONCE};
use super::streams::next_group;
use super::{Block, Ev, Sched};
use crate::engine::SimTime;
use crate::workload::step_ops::Phase;

impl Sched<'_> {
    /// Run GPU `gi`'s program from its cursor until it blocks.
    pub(super) fn advance(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        loop {
            let (item, opi) = (self.gpus[gi].item, self.gpus[gi].op);
            if g.dual && opi == 0 && !self.committed(gi, item, now, out) {
                return;
            }
            if item < st.order.len() {
                if st.pair[item].is_some() {
                    if self.combined_step(gi, now, out) {
                        return;
                    }
                    continue;
                }
                let pass = st.order[item];
                let (lo, hi) = st.range(pass);
                let ch = &st.chunks[pass.chunk as usize];
                if opi == 0 {
                    let k = self.key(gi, pass);
                    let ready = if pass.bwd {
                        ch.last || self.grad[k]
                    } else {
                        ch.first || self.act[k]
                    } && self.inputs_in(gi, item);
                    if !ready {
                        self.block(gi, Block::Recv, now);
                        return;
                    }
                }
                if lo + opi >= hi {
                    self.gpus[gi].item += 1;
                    self.gpus[gi].op = 0;
                    continue;
                }
                let i = lo + opi;
                let op = &st.ops[i];
                if g.dual && super::super::graph::is_send(op) {
                    // DualPipe's sends go out at the next commit (`Sched::committed`).
                    self.gpus[gi].op += 1;
                    continue;
                }
                let k = st.pg.at.get(i).copied().unwrap_or(NONE);
                if k != NONE && !pass.bwd && pass.mb == 0 && k >= self.gpus[gi].pg_seen {
                    // `overlap_param_gather`: the first forward through this layer waits for
                    // its bucket's gathers, then requests the next bucket's.
                    self.request_pg(gi, k, now, out);
                    // Buckets are requested in order: through bucket `k`, `buckets[k].1` gathers.
                    let need = st.pg.buckets[k as usize].1;
                    if self.gpus[gi].gathers_done < need {
                        self.gpus[gi].z3_wait = need;
                        self.block(gi, Block::Z3, now);
                        return;
                    }
                    self.gpus[gi].pg_seen = k + 1;
                    self.request_pg(gi, k + 1, now, out);
                }
                let grp = st.group_at[i];
                if grp != NONE {
                    // ZeRO-3: this layer's gathers were requested a layer ahead (or now, for
                    // the step's first); wait for them, then request the next layer's.
                    let here = (item as u32, grp);
                    if here >= self.gpus[gi].pf {
                        self.request(gi, here, now, out);
                    }
                    let x = &self.gpus[gi];
                    let need = x
                        .marks
                        .iter()
                        .find(|m| (m.0, m.1) == here)
                        .map_or(0, |m| m.2);
                    if x.gathers_done < need {
                        self.gpus[gi].z3_wait = need;
                        self.block(gi, Block::Z3, now);
                        return;
                    }
                    self.gpus[gi].op = st.groups[grp as usize].1 as usize - lo;
                    if let Some(nx) = next_group(st, item, Some(grp)) {
                        if nx >= self.gpus[gi].pf {
                            self.request(gi, nx, now, out);
                        }
                    }
                    continue;
                }
                if op.name == "zero3.grad_scatter" {
                    // Reduce-scattered on the ZeRO-3 stream while the next layer computes.
                    self.gpus[gi].z3q.push_back((i as u32, pass.mb));
                    self.gpus[gi].op += 1;
                    self.next_z3(gi, now, out);
                    // It ends its layer's backward: the layer's gradient buckets are ready.
                    self.passed(gi, i, now, out);
                    continue;
                }
                if !op.class.is_comm() {
                    // The compute ops that follow in the pass run back to back on this stream
                    // (nothing another GPU does can touch it until the next communication op),
                    // so they take one event: the same times, a fraction of the events. A
                    // gradient bucket released at the end of an op ends the run there.
                    let releases = self.overlap.grad_sync && pass.bwd && pass.mb + 1 == self.m;
                    let mut end = i + 1;
                    let mut t = now + g.op_price(gi, s, i).ns;
                    while end < hi
                        && !st.ops[end].class.is_comm()
                        && st.group_at[end] == NONE
                        && st.ops[end].name != "zero3.grad_scatter"
                        && !(releases && st.bucket_end[end - 1])
                    {
                        t += g.op_price(gi, s, end).ns;
                        end += 1;
                    }
                    self.gpus[gi].cur = (i, now, pass.mb);
                    self.gpus[gi].comb_run = false;
                    self.gpus[gi].run_end = end;
                    self.gpus[gi].block = Block::Compute;
                    out.push((SimTime::from_nanos(t), Ev::Compute(gi as u32)));
                    return;
                }
                self.issue(gi, op, pass, false, now, out);
                return;
            }
            // Once-per-step ops.
            let j = opi;
            let x = &self.gpus[gi];
            if (self.overlap.grad_sync && (x.comm_active || !x.queue.is_empty()))
                || x.z3_active
                || !x.z3q.is_empty()
            {
                self.block(gi, Block::Drain, now);
                return;
            }
            let Some(op) = st.per_step.get(j) else {
                self.gpus[gi].block = Block::Done;
                self.gpus[gi].end = now;
                return;
            };
            if st.pg.on() && op.name == "dp.param_gather" {
                // Gathered in buckets under the first forward instead (`Stage::pg`).
                self.gpus[gi].op += 1;
                continue;
            }
            if self.overlap.grad_sync && op.name == "dp.grad_sync" {
                self.gpus[gi].op += 1;
                continue;
            }
            if op.phase == Phase::Optimizer && !self.released {
                // The optimizer step clips gradients by their global norm, an all-reduce over
                // every stage (Megatron-LM `clip_grad_norm_fp32` over the model-parallel group):
                // no stage updates before all have their gradients.
                self.block(gi, Block::Barrier, now);
                self.at_barrier += 1;
                if self.at_barrier as usize == self.gpus.len() {
                    self.released = true;
                    for k in 0..self.gpus.len() {
                        self.gpus[k].block = Block::None;
                        self.advance(k, now, out);
                    }
                }
                return;
            }
            if !op.class.is_comm() {
                let p = st.fixed[st.ops.len() + j];
                self.gpus[gi].cur = (st.ops.len() + j, now, 0);
                self.gpus[gi].comb_run = false;
                self.gpus[gi].block = Block::Compute;
                out.push((SimTime::from_nanos(now + p.ns), Ev::Compute(gi as u32)));
                return;
            }
            self.issue(gi, op, ONCE, false, now, out);
            return;
        }
    }

    /// DualPipe: whether the commit before pass `item` of GPU `gi` (the end of its passes if
    /// `item` is past them) is through: its sends launched (on first call) and completed. False
    /// when the GPU blocked on them.
    pub(super) fn committed(
        &mut self,
        gi: usize,
        item: usize,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) -> bool {
        let g = self.g;
        let st = &g.stages[self.stage_of(gi)];
        let Some(sends) = st.sends.get(item) else {
            return true;
        };
        if self.gpus[gi].pre_item != item {
            self.gpus[gi].pre_item = item;
            self.gpus[gi].pre_done = 0;
            for &p in sends {
                let (lo, hi) = st.range(p);
                if let Some(op) = st.ops[lo..hi]
                    .iter()
                    .find(|o| super::super::graph::is_send(o))
                {
                    let bytes = op.comm.map_or(0.0, |c| c.bytes_per_rank);
                    self.issue_on(gi, op, bytes, p, Stream::Send, now, out);
                }
            }
        }
        if (self.gpus[gi].pre_done as usize) < sends.len() {
            self.block(gi, Block::Send, now);
            return false;
        }
        true
    }

    /// DualPipe: whether every input the commit before pass `item` waits for has arrived.
    pub(super) fn inputs_in(&self, gi: usize, item: usize) -> bool {
        let st = &self.g.stages[self.stage_of(gi)];
        st.needs.get(item).is_none_or(|n| {
            n.iter().all(|&p| {
                let k = self.key(gi, p);
                if p.bwd {
                    self.grad[k]
                } else {
                    self.act[k]
                }
            })
        })
    }
}
