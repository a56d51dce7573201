//! Combined 1F1B passes (`overlap_ep_comm`): a GPU walks the pass's merged op list
//! (`combined::merge`), computes on its compute stream, issues the dispatch/combine all-to-alls on
//! its all-to-all stream (one at a time, in issue order) and waits only where an op needs its own
//! half's latest all-to-all.

use super::super::graph::Pass;
use super::{Block, Ev, Sched, Stream};
use crate::engine::SimTime;

impl Sched<'_> {
    /// Run GPU `gi`'s current combined pass from its cursor: true when the GPU blocked or
    /// started a compute run or a blocking collective (the caller returns), false when the pass
    /// has ended (the cursor is on the next pass).
    pub(super) fn combined_step(
        &mut self,
        gi: usize,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) -> bool {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        let item = self.gpus[gi].item;
        let fpass = st.order[item];
        let Some((bmb, bchunk)) = st.pair[item] else {
            return false;
        };
        let bpass = Pass {
            bwd: true,
            mb: bmb,
            chunk: bchunk,
        };
        let items = &st.merged[(fpass.chunk * g.v + bchunk) as usize];
        loop {
            let opi = self.gpus[gi].op;
            if opi == 0 {
                // Both halves' inputs before anything runs (Megatron-LM syncs the forward's and
                // the backward's receives before the combined layers).
                let f_ready =
                    st.chunks[fpass.chunk as usize].first || self.act[self.key(gi, fpass)];
                let b_ready = st.chunks[bchunk as usize].last || self.grad[self.key(gi, bpass)];
                if !(f_ready && b_ready && self.inputs_in(gi, item)) {
                    self.block(gi, Block::Recv, now);
                    return true;
                }
                self.gpus[gi].ep_base = self.gpus[gi].ep_issued;
            }
            let x = &self.gpus[gi];
            if opi >= items.len() {
                // The pass ends when its all-to-alls have drained.
                if x.ep_done < x.ep_issued {
                    self.gpus[gi].ep_wait = x.ep_issued;
                    self.block(gi, Block::Ep, now);
                    return true;
                }
                self.gpus[gi].item += 1;
                self.gpus[gi].op = 0;
                return false;
            }
            let it = items[opi];
            let need = x.ep_base + it.wait;
            if x.ep_done < need {
                self.gpus[gi].ep_wait = need;
                self.block(gi, Block::Ep, now);
                return true;
            }
            let side = if it.bwd { bpass } else { fpass };
            let i = it.op as usize;
            if it.a2a {
                let x = &mut self.gpus[gi];
                x.epq.push_back((it.op, it.bwd, side.mb, side.chunk));
                x.ep_issued += 1;
                x.op += 1;
                self.next_ep(gi, now, out);
                continue;
            }
            let op = &st.ops[i];
            if op.class.is_comm() {
                self.issue(gi, op, side, false, now, out);
                return true;
            }
            // Compute items whose all-to-alls are in run back to back in one event; a run
            // stops before an all-to-all (issued the moment its producer ends) and before an
            // item still waiting for one.
            let done = self.gpus[gi].ep_done;
            let base = self.gpus[gi].ep_base;
            let mut end = opi + 1;
            let mut t = now + g.op_price(gi, s, i).ns;
            while end < items.len() {
                let nx = items[end];
                if nx.a2a || st.ops[nx.op as usize].class.is_comm() || base + nx.wait > done {
                    break;
                }
                t += g.op_price(gi, s, nx.op as usize).ns;
                end += 1;
            }
            let x = &mut self.gpus[gi];
            x.cur = (opi, now, side.mb);
            x.run_end = end;
            x.comb_run = true;
            x.block = Block::Compute;
            out.push((SimTime::from_nanos(t), Ev::Compute(gi as u32)));
            return true;
        }
    }

    /// A compute run of a combined pass ended at `now`: busy time, energy, records.
    pub(super) fn combined_run_done(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        let item = self.gpus[gi].item;
        let fpass = st.order[item];
        let (bmb, bchunk) = st.pair[item].unwrap_or((fpass.mb, fpass.chunk));
        let items = &st.merged[(fpass.chunk * g.v + bchunk) as usize];
        let (first, start, _) = self.gpus[gi].cur;
        let mut t0 = start;
        let end = self.gpus[gi].run_end;
        for it in &items[first..end] {
            t0 = self.op_ran(
                gi,
                s,
                it.op as usize,
                if it.bwd { bmb } else { fpass.mb },
                t0,
            );
        }
        debug_assert_eq!(t0, now);
        self.gpus[gi].block = Block::None;
        self.gpus[gi].comb_run = false;
        self.advance(gi, now, out);
    }

    /// Issue the next all-to-all of GPU `gi`'s all-to-all stream if it is free.
    pub(super) fn next_ep(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        if self.gpus[gi].ep_active {
            return;
        }
        let Some((i, bwd, mb, chunk)) = self.gpus[gi].epq.pop_front() else {
            return;
        };
        self.gpus[gi].ep_active = true;
        let g = self.g;
        let op = &g.stages[self.stage_of(gi)].ops[i as usize];
        let bytes = op.comm.map_or(0.0, |c| c.bytes_per_rank);
        let pass = Pass { bwd, mb, chunk };
        self.issue_on(gi, op, bytes, pass, Stream::Ep, now, out);
    }

    /// An all-to-all of GPU `gi`'s all-to-all stream (of `layer`) completed at `now`: the next
    /// one goes out, and a GPU waiting for it goes on (its wait counted as MoE waiting).
    pub(super) fn ep_done(
        &mut self,
        gi: usize,
        layer: Option<u32>,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let x = &mut self.gpus[gi];
        x.ep_active = false;
        x.ep_done += 1;
        self.next_ep(gi, now, out);
        let x = &mut self.gpus[gi];
        if x.block == Block::Ep && x.ep_done >= x.ep_wait {
            let wait = now - x.since;
            x.comm_wait_ns += wait;
            x.block = Block::None;
            if let Some(l) = layer {
                self.moe_wait_ns[l as usize] += wait;
            }
            self.advance(gi, now, out);
        }
    }
}
