//! What happens when an op ends: a collective (pipeline arrivals, waits, the members' streams go
//! on) or a compute op (busy time and energy, gradient buckets released).

use super::super::graph::{Pass, NONE};
use super::super::OpRecord;
use super::{Block, Ev, Sched};
use crate::engine::SimTime;
use crate::workload::step_ops::KernelClass;

impl Sched<'_> {
    /// Collective `id` completed on all its members at `now`: pipeline arrivals, records,
    /// the members' streams go on.
    pub(super) fn coll_done(&mut self, id: u32, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let c = self.colls[id as usize];
        if let Some((to, mb, bwd)) = c.p2p {
            let k = self.key(
                to as usize,
                Pass {
                    bwd,
                    mb,
                    chunk: c.chunk,
                },
            );
            if bwd {
                self.grad[k] = true;
            } else {
                self.act[k] = true;
            }
            if self.gpus[to as usize].block == Block::Recv {
                self.gpus[to as usize].block = Block::None;
                self.advance(to as usize, now, out);
            }
        }
        for k in 0..c.members as usize {
            self.member_done(id, k, now, out);
        }
    }

    /// Member `k` of collective `id` completed at `now`: record it and move its GPU on.
    pub(super) fn member_done(
        &mut self,
        id: u32,
        k: usize,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let c = self.colls[id as usize];
        let moe = c.class == KernelClass::AllToAll || c.name.starts_with("moe.tp_");
        let gi = c.first as usize + k;
        let issued = self.issued[c.issued as usize + k];
        let wait = now - issued;
        if let Some(rec) = &mut self.records {
            rec.push(OpRecord {
                gpu: gi as u32,
                stream: 1,
                name: c.name,
                class: c.class,
                layer: c.layer,
                phase: c.phase,
                mb: c.p2p.map_or(0, |p| p.1),
                start_ns: issued,
                end_ns: now,
                power_w: 0.0,
                flops: 0.0,
                bytes: c.bytes,
                waiting: !c.async_ && c.z3 == 0 && !c.ep_stream,
            });
        }
        if c.pre {
            let x = &mut self.gpus[gi];
            x.pre_done += 1;
            if x.block == Block::Send {
                x.comm_wait_ns += now - x.since;
                x.since = now;
                x.block = Block::None;
                self.advance(gi, now, out);
            }
        } else if c.ep_stream {
            self.ep_done(gi, c.layer, now, out);
        } else if c.z3 != 0 {
            let x = &mut self.gpus[gi];
            x.z3_active = false;
            if c.z3 == 1 {
                x.gathers_done += 1;
            }
            if x.block == Block::Z3 && x.gathers_done >= x.z3_wait {
                x.block = Block::None;
                self.advance(gi, now, out);
            }
            self.next_z3(gi, now, out);
            self.wake_drained(gi, now, out);
        } else if c.async_ {
            self.gpus[gi].comm_active = false;
            self.next_bucket(gi, now, out);
            self.wake_drained(gi, now, out);
        } else {
            self.gpus[gi].comm_wait_ns += wait;
            if moe {
                if let Some(l) = c.layer {
                    self.moe_wait_ns[l as usize] += wait;
                }
            }
            let st = &self.g.stages[self.stage_of(gi)];
            let x = &self.gpus[gi];
            if let Some(&p) = st.order.get(x.item).filter(|_| st.pair[x.item].is_none()) {
                self.passed(gi, st.range(p).0 + x.op, now, out);
            }
            self.gpus[gi].op += 1;
            self.gpus[gi].block = Block::None;
            self.advance(gi, now, out);
        }
    }

    /// GPU `gi`'s compute op ended at `now`: its energy and record, gradient buckets.
    pub(super) fn compute_done(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        if self.gpus[gi].comb_run {
            self.combined_run_done(gi, now, out);
            return;
        }
        let (first, start, mb) = self.gpus[gi].cur;
        // A run of the stage's ops [first, run_end), or one once-per-step op.
        let end = if first < st.ops.len() {
            self.gpus[gi].run_end
        } else {
            first + 1
        };
        let mut t0 = start;
        for i in first..end {
            t0 = self.op_ran(gi, s, i, mb, t0);
        }
        debug_assert_eq!(t0, now);
        self.gpus[gi].block = Block::None;
        if end <= st.ops.len() {
            self.passed(gi, end - 1, now, out);
        }
        self.advance(gi, now, out);
    }

    /// GPU `gi`'s current pass has run op `i` of its stage list (a compute op, or issued a
    /// ZeRO-3 reduce-scatter, or a blocking collective completed): if that op ends a layer of
    /// the last micro-batch's backward through a chunk, each of the chunk's gradient buckets
    /// gets that layer's share. Whatever kind of op ends the layer, so that ZeRO-3's layers
    /// (ending in `zero3.grad_scatter`) release theirs too.
    pub(super) fn passed(&mut self, gi: usize, i: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let st = &self.g.stages[s];
        let item = self.gpus[gi].item;
        // Combined 1F1B passes never hold the last micro-batch's backward (it runs alone in
        // the cool-down), and their cursor indexes the merged list, not `ops`.
        if !self.overlap.grad_sync || st.pair.get(item).is_none_or(|p| p.is_some()) {
            return;
        }
        let p = st.order[item];
        if !(p.bwd && p.mb + 1 == self.m && st.bucket_end.get(i) == Some(&true)) {
            return;
        }
        let c = p.chunk as usize;
        // Under ZeRO-3 every gradient reduction runs on the one stream the layers' reduce-
        // scatters use (DeepSpeed `stage3.py` `reduce_and_partition_stream`; FSDP's post-backward
        // stream), after the reduce-scatters queued before it; otherwise on the buckets' stream.
        let z3 = !st.groups.is_empty();
        for b in 0..self.buckets[s][c].len() {
            let code = ((c as u32) << 16) | b as u32;
            if z3 {
                self.gpus[gi]
                    .z3q
                    .push_back((super::streams::BUCKET | code, 0));
            } else {
                self.gpus[gi].queue.push_back(code);
            }
        }
        if z3 {
            self.next_z3(gi, now, out);
        } else {
            self.next_bucket(gi, now, out);
        }
    }

    /// Compute op `i` of GPU `gi`'s stage `s` (an index in the stage's micro-batch list, or
    /// past it in its once-per-step list) ran from `t0` for micro-batch `mb`: the GPU's busy
    /// time and energy, its op count, and its record when recording. Returns the op's end [ns].
    pub(super) fn op_ran(&mut self, gi: usize, s: usize, i: usize, mb: u32, t0: u64) -> u64 {
        let g = self.g;
        let st = &g.stages[s];
        let n = st.ops.len();
        let p = if i < n {
            g.op_price(gi, s, i)
        } else {
            st.fixed[i]
        };
        let x = &mut self.gpus[gi];
        x.busy_ns += p.ns;
        x.busy_j += p.power_w * p.ns as f64 * 1e-9;
        x.op += 1;
        if let Some(rec) = &mut self.records {
            let op = if i < n {
                &st.ops[i]
            } else {
                &st.per_step[i - n]
            };
            // A routed op's FLOPs and bytes at the tokens it was priced at (a padded op at the
            // group's capacity, not at this GPU's received load).
            let (flops, bytes) = if i < n && st.routed_slot[i] != NONE {
                let o = op.at_tokens(g.routed_tokens(gi, op));
                (o.flops, o.bytes)
            } else {
                (op.flops, op.bytes)
            };
            rec.push(OpRecord {
                gpu: gi as u32,
                stream: 0,
                name: op.name,
                class: op.class,
                layer: op.layer,
                phase: op.phase,
                mb,
                start_ns: t0,
                end_ns: t0 + p.ns,
                power_w: p.power_w,
                flops,
                bytes,
                waiting: false,
            });
        }
        t0 + p.ns
    }
}
