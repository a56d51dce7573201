//! Issuing a GPU's communication op: which collective instance it joins (per stage and channel),
//! pipeline sends' destinations, and the collective records.

use super::super::graph::{Pass, NONE};
use super::{Block, Coll, Ev, Sched, CHANS};
use crate::engine::SimTime;
use crate::workload::step_ops::{GroupKind, KernelClass, Op, Phase};

impl Sched<'_> {
    /// Issue communication op `op` of GPU `gi` (pass `pass`) on its compute stream
    /// (blocking) or its communication stream (`async_`, a gradient bucket).
    pub(super) fn issue(
        &mut self,
        gi: usize,
        op: &Op,
        pass: Pass,
        async_: bool,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let stream = if async_ {
            Stream::Bucket
        } else {
            Stream::Compute
        };
        let bytes = op.comm.map_or(0.0, |c| c.bytes_per_rank);
        self.issue_on(gi, op, bytes, pass, stream, now, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn issue_on(
        &mut self,
        gi: usize,
        op: &Op,
        bytes: f64,
        pass: Pass,
        stream: Stream,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let async_ = stream == Stream::Bucket;
        let ep_stream = stream == Stream::Ep;
        let z3 = match stream {
            Stream::Z3(k) => k,
            _ => 0,
        };
        let mb = pass.mb;
        if stream == Stream::Compute {
            self.block(gi, Block::Comm, now);
        }
        let g = self.g;
        let s = self.stage_of(gi);
        let ep = g.ep as usize;
        let Some(c) = op.comm else {
            // A communication class without a transfer: nothing to wait for.
            let id = self.new_coll(gi as u32, 1, op, 0.0, async_, None);
            self.colls[id as usize].z3 = z3;
            let k = self.colls[id as usize].issued as usize;
            self.issued[k] = now;
            out.push((SimTime::from_nanos(now), Ev::Coll(id)));
            return;
        };
        let shared = ep > 1 && matches!(c.group, GroupKind::Ep | GroupKind::Dp);
        // A send reaches the next virtual stage: the next stage's same chunk, or from the last
        // stage the first stage's next chunk (interleaving); gradients the other way.
        let (pp, last) = (g.pp as usize, g.pp as usize - 1);
        let mut to_chunk = pass.chunk;
        let p2p = (op.class == KernelClass::SendRecv).then(|| {
            let bwd = op.phase == Phase::Backward;
            if g.dual {
                // DualPipe: direction 0 (chunk 0) runs forward up the ranks, direction 1 down.
                let up = bwd == (pass.chunk == 1);
                let to = if up { gi + ep } else { gi - ep };
                return (to as u32, mb, bwd);
            }
            let to = match (bwd, s) {
                (true, 0) => {
                    to_chunk = pass.chunk.saturating_sub(1);
                    gi + last * ep
                }
                (true, _) => gi - ep,
                (false, x) if x == last && pp > 1 => {
                    to_chunk = pass.chunk + 1;
                    gi - last * ep
                }
                (false, _) => gi + ep,
            };
            (to as u32, mb, bwd)
        });
        let id = if shared {
            let chan = match (c.group, stream) {
                (GroupKind::Ep, _) => 0,
                (_, Stream::Z3(_)) => 3,
                (_, Stream::Compute) => 1,
                (_, Stream::Bucket) => 2,
                (_, Stream::Ep) => 0,
                // Pipeline sends are never shared.
                (_, Stream::Send) => 1,
            };
            let seq = self.gpus[gi].seq[chan] as usize;
            self.gpus[gi].seq[chan] += 1;
            let ch = s * CHANS + chan;
            if let Some(&id) = self.chans[ch].get(seq) {
                id
            } else {
                let id = self.new_coll((s * ep) as u32, ep as u32, op, bytes, async_, None);
                self.chans[ch].push(id);
                id
            }
        } else {
            self.new_coll(gi as u32, 1, op, bytes, async_, p2p)
        };
        self.colls[id as usize].z3 = z3;
        self.colls[id as usize].ep_stream = ep_stream;
        self.colls[id as usize].chunk = to_chunk;
        self.colls[id as usize].pre = stream == Stream::Send;
        let cl = &mut self.colls[id as usize];
        self.issued[cl.issued as usize + gi - cl.first as usize] = now;
        cl.arrived += 1;
        if cl.class == KernelClass::AllToAll && cl.members > 1 {
            let k = gi - cl.first as usize;
            if g.ep <= g.pair_flow_max {
                self.pair_arrive(id, k, now, out);
            } else if g.node_pairs {
                self.node_arrive(id, k, now, out);
            } else if cl.arrived == cl.members {
                self.launch(id, now, out);
            }
        } else if cl.arrived == cl.members {
            self.launch(id, now, out);
        }
    }

    pub(super) fn new_coll(
        &mut self,
        first: u32,
        members: u32,
        op: &Op,
        bytes: f64,
        async_: bool,
        p2p: Option<(u32, u32, bool)>,
    ) -> u32 {
        let (group, size) = op.comm.map_or((GroupKind::Tp, 1), |c| (c.group, c.size));
        let width = match op.load {
            crate::workload::step_ops::Load::Routed {
                comm_bytes_per_token,
                ..
            } if self.g.ep > 1 => comm_bytes_per_token * self.g.ep as f64 / (self.g.ep - 1) as f64,
            _ => 0.0,
        };
        // A fixed-size all-to-all sends every peer the same share of its buffer.
        let fixed_pair = match (op.load, op.comm) {
            (crate::workload::step_ops::Load::Fixed, Some(c))
                if op.class == KernelClass::AllToAll && c.size > 1 =>
            {
                c.bytes_per_rank / (c.size - 1) as f64
            }
            _ => 0.0,
        };
        let dispatch = op.name.starts_with("moe.dispatch");
        self.colls.push(Coll {
            first,
            members,
            arrived: 0,
            flows: 0,
            done_at: 0,
            class: op.class,
            group,
            size,
            bytes,
            launches: op.launches.max(1),
            layer: op.layer,
            name: op.name,
            phase: op.phase,
            to_experts: dispatch != (op.phase == Phase::Backward),
            width,
            fixed_pair,
            async_,
            p2p,
            chunk: 0,
            z3: 0,
            issued: self.issued.len() as u32,
            ep_stream: false,
            pre: false,
            node_base: NONE,
            nodes: 0,
        });
        let n = self.issued.len() + members as usize;
        self.issued.resize(n, 0);
        self.arrived.resize(n, false);
        self.pend.resize(n, 0);
        self.done_at.resize(n, 0);
        self.colls.len() as u32 - 1
    }
}

/// Which stream of a GPU a collective runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stream {
    /// Blocking: the compute stream waits for it.
    Compute,
    /// The overlapped gradient buckets' communication stream.
    Bucket,
    /// The ZeRO-3 stream (1 a parameter gather, 2 a gradient reduce-scatter).
    Z3(u8),
    /// The all-to-all stream of a combined 1F1B pass.
    Ep,
    /// A pipeline send launched by a DualPipe commit (the GPU waits for all of the commit's).
    Send,
}

/// The pass of once-per-step ops.
pub(super) const ONCE: Pass = Pass {
    bwd: false,
    mb: 0,
    chunk: 0,
};
