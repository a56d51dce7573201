//! The scheduler: every simulated GPU runs its stage's passes in 1F1B order on a compute stream
//! (communication that the framework waits for blocks it) and overlapped gradient buckets on a
//! communication stream; collectives start when all simulated members have reached them and end
//! when their last flow has drained plus its latency.

use std::collections::VecDeque;

mod collective;

use super::graph::{Graph, NONE};
use super::links::Net;
use super::{Contention, EventStepError, OpRecord, Overlap};
use crate::engine::{EngineError, Handler, SimTime};
use crate::network::Fabric;
use crate::workload::step_ops::{GroupKind, KernelClass, Op, Phase};

/// Events of a step.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ev {
    /// GPU `0`'s compute op ended.
    Compute(u32),
    /// Flow `flow` of generation `gen` drained (stale if re-timed since).
    Flow { flow: u32, gen: u32 },
    /// Collective `0` completed on all its members.
    Coll(u32),
    /// Member `k` of all-to-all `coll` has sent and received all its rank-pair flows.
    Member { coll: u32, k: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    None,
    Compute,
    /// Waiting on a collective of the compute stream (or a pipeline send).
    Comm,
    /// Waiting for a pipeline stage's activation or gradient.
    Recv,
    /// Waiting for the communication stream to drain before the optimizer.
    Drain,
    Done,
}

/// Where a GPU is in its program.
#[derive(Clone, Debug)]
struct Gpu {
    item: usize,
    op: usize,
    block: Block,
    since: u64,
    busy_ns: u64,
    busy_j: f64,
    /// Compute op in progress: (op index in stage list or per-step + list len, start, mb).
    cur: (usize, u64, u32),
    /// End (exclusive) of the run of back-to-back compute ops that started at `cur.0`.
    run_end: usize,
    queue: VecDeque<u32>,
    comm_active: bool,
    seq: [u32; 3],
    end: u64,
    comm_wait_ns: u64,
}

/// One collective (or pipeline transfer) instance.
#[derive(Clone, Copy, Debug)]
struct Coll {
    /// First simulated member and member count (members are consecutive GPUs of a stage).
    first: u32,
    members: u32,
    arrived: u32,
    flows: u32,
    done_at: u64,
    class: KernelClass,
    group: GroupKind,
    size: u32,
    bytes: f64,
    launches: u32,
    layer: Option<u32>,
    name: &'static str,
    phase: Phase,
    /// Direction of an all-to-all: tokens towards their experts.
    to_experts: bool,
    /// Bytes per received assignment per TP rank (all-to-all).
    width: f64,
    async_: bool,
    /// Pipeline send: receiving GPU, micro-batch, gradient (true) or activation.
    p2p: Option<(u32, u32, bool)>,
    /// Start of the members' issue times in `Sched::issued`.
    issued: u32,
}

/// One GPU's totals over the step: busy time [ns], busy energy [J], time waiting in
/// communication on its compute stream [ns].
pub(super) type GpuTotals = (u64, f64, u64);

/// Scheduler state of one step.
pub(super) struct Sched<'a> {
    pub g: &'a Graph,
    pub net: &'a mut Net,
    fabric: Fabric,
    overlap: Overlap,
    gpus: Vec<Gpu>,
    colls: Vec<Coll>,
    /// Per stage and channel (0 expert-parallel, 1 data-parallel, 2 overlapped buckets): the
    /// instance of each sequence number.
    chans: Vec<Vec<u32>>,
    act: Vec<bool>,
    grad: Vec<bool>,
    scratch: Vec<(u64, u32, u32)>,
    /// Issue time of every member of every collective [ns].
    issued: Vec<u64>,
    /// Per member of every collective (indexed as `issued`), for rank-pair all-to-alls: whether
    /// it has issued, its flows not yet drained, and when its last one drained plus latency [ns].
    arrived: Vec<bool>,
    pend: Vec<u32>,
    done_at: Vec<u64>,
    /// Flows of one member's all-to-all arrival, started together (scratch).
    batch: Vec<u32>,
    /// Flows of the all-to-all being launched: (GPU, NVLink?, bytes, latency [s], egress?).
    a2a: Vec<(usize, bool, f64, f64, bool)>,
    /// Buckets of overlapped gradient sync per stage: (op index in per_step, bytes).
    buckets: Vec<Vec<(u32, f64)>>,
    pub records: Option<Vec<OpRecord>>,
    /// Per layer: GPU-ns spent waiting in the MoE block's all-to-all and expert-TP collectives.
    pub moe_wait_ns: Vec<u64>,
    /// Port sharing seen so far.
    pub contention: Contention,
    /// Collectives sharing a port with a flow just started (scratch).
    sharing: Vec<u32>,
    m: u32,
}

impl<'a> Sched<'a> {
    /// A scheduler of `g` on `net`; `record` keeps a per-op timeline.
    pub fn new(
        g: &'a Graph,
        net: &'a mut Net,
        fabric: &Fabric,
        overlap: Overlap,
        record: bool,
        layers: usize,
    ) -> Self {
        let n = g.gpus();
        net.reset(n, fabric);
        let m = g.knobs.micro_batches.max(1);
        let buckets = g
            .stages
            .iter()
            .map(|st| {
                let nl = st.layers.len().max(1) as f64;
                st.per_step
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.name == "dp.grad_sync")
                    .filter_map(|(i, o)| o.comm.map(|c| (i as u32, c.bytes_per_rank / nl)))
                    .collect()
            })
            .collect();
        Sched {
            g,
            net,
            fabric: *fabric,
            overlap,
            gpus: vec![
                Gpu {
                    item: 0,
                    op: 0,
                    block: Block::None,
                    since: 0,
                    busy_ns: 0,
                    busy_j: 0.0,
                    cur: (0, 0, 0),
                    run_end: 0,
                    queue: VecDeque::new(),
                    comm_active: false,
                    seq: [0; 3],
                    end: 0,
                    comm_wait_ns: 0,
                };
                n
            ],
            colls: Vec::new(),
            chans: vec![Vec::new(); g.pp as usize * 3],
            act: vec![false; n * m as usize],
            grad: vec![false; n * m as usize],
            scratch: Vec::new(),
            issued: Vec::new(),
            arrived: Vec::new(),
            pend: Vec::new(),
            done_at: Vec::new(),
            batch: Vec::new(),
            a2a: Vec::new(),
            buckets,
            records: record.then(Vec::new),
            moe_wait_ns: vec![0; layers],
            contention: Contention::default(),
            sharing: Vec::new(),
            m,
        }
    }

    /// Start every GPU at time zero.
    pub fn start(&mut self, out: &mut Vec<(SimTime, Ev)>) {
        for gi in 0..self.gpus.len() {
            self.advance(gi, 0, out);
        }
    }

    /// (end of the step [ns], per GPU busy time [ns] and busy energy [J], comm wait [ns]).
    pub fn finish(&self) -> Result<(u64, Vec<GpuTotals>), EventStepError> {
        if let Some(i) = self.gpus.iter().position(|x| x.block != Block::Done) {
            return Err(EventStepError::Stuck {
                gpu: i as u32,
                state: format!(
                    "{:?} at pass {} op {}",
                    self.gpus[i].block, self.gpus[i].item, self.gpus[i].op
                ),
            });
        }
        let end = self.gpus.iter().map(|x| x.end).max().unwrap_or(0);
        Ok((
            end,
            self.gpus
                .iter()
                .map(|x| (x.busy_ns, x.busy_j, x.comm_wait_ns))
                .collect(),
        ))
    }

    fn stage_of(&self, gi: usize) -> usize {
        gi / self.g.ep as usize
    }

    /// Run GPU `gi`'s program from its cursor until it blocks.
    fn advance(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        loop {
            let (item, opi) = (self.gpus[gi].item, self.gpus[gi].op);
            if item < st.order.len() {
                let pass = st.order[item];
                let (lo, hi) = if pass.bwd {
                    (st.fwd_len, st.ops.len())
                } else {
                    (0, st.fwd_len)
                };
                if opi == 0 {
                    let k = gi * self.m as usize + pass.mb as usize;
                    let ready = if pass.bwd {
                        s + 1 == g.pp as usize || self.grad[k]
                    } else {
                        s == 0 || self.act[k]
                    };
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
                if !op.class.is_comm() {
                    // The compute ops that follow in the pass run back to back on this stream
                    // (nothing another GPU does can touch it until the next communication op),
                    // so they take one event: the same times, a fraction of the events. A
                    // gradient bucket released at the end of an op ends the run there.
                    let last_pass = item + 1 == st.order.len();
                    let mut end = i + 1;
                    let mut t = now + g.op_price(gi, s, i).ns;
                    while end < hi
                        && !st.ops[end].class.is_comm()
                        && !(self.overlap.grad_sync && last_pass && st.bucket_end[end - 1])
                    {
                        t += g.op_price(gi, s, end).ns;
                        end += 1;
                    }
                    self.gpus[gi].cur = (i, now, pass.mb);
                    self.gpus[gi].run_end = end;
                    self.gpus[gi].block = Block::Compute;
                    out.push((SimTime::from_nanos(t), Ev::Compute(gi as u32)));
                    return;
                }
                self.issue(gi, op, pass.mb, false, now, out);
                return;
            }
            // Once-per-step ops.
            let j = opi;
            if self.overlap.grad_sync
                && (self.gpus[gi].comm_active || !self.gpus[gi].queue.is_empty())
            {
                self.block(gi, Block::Drain, now);
                return;
            }
            let Some(op) = st.per_step.get(j) else {
                self.gpus[gi].block = Block::Done;
                self.gpus[gi].end = now;
                return;
            };
            if self.overlap.grad_sync && op.name == "dp.grad_sync" {
                self.gpus[gi].op += 1;
                continue;
            }
            if !op.class.is_comm() {
                let p = st.fixed[st.ops.len() + j];
                self.gpus[gi].cur = (st.ops.len() + j, now, 0);
                self.gpus[gi].block = Block::Compute;
                out.push((SimTime::from_nanos(now + p.ns), Ev::Compute(gi as u32)));
                return;
            }
            self.issue(gi, op, 0, false, now, out);
            return;
        }
    }

    fn block(&mut self, gi: usize, b: Block, now: u64) {
        self.gpus[gi].block = b;
        self.gpus[gi].since = now;
    }

    /// Issue communication op `op` of GPU `gi` (micro-batch `mb`) on its compute stream
    /// (blocking) or its communication stream (`async_`, a gradient bucket).
    fn issue(
        &mut self,
        gi: usize,
        op: &Op,
        mb: u32,
        async_: bool,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        self.issue_bytes(
            gi,
            op,
            op.comm.map_or(0.0, |c| c.bytes_per_rank),
            mb,
            async_,
            now,
            out,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_bytes(
        &mut self,
        gi: usize,
        op: &Op,
        bytes: f64,
        mb: u32,
        async_: bool,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        if !async_ {
            self.block(gi, Block::Comm, now);
        }
        let g = self.g;
        let s = self.stage_of(gi);
        let ep = g.ep as usize;
        let Some(c) = op.comm else {
            // A communication class without a transfer: nothing to wait for.
            let id = self.new_coll(gi as u32, 1, op, 0.0, async_, None);
            let k = self.colls[id as usize].issued as usize;
            self.issued[k] = now;
            out.push((SimTime::from_nanos(now), Ev::Coll(id)));
            return;
        };
        let shared = ep > 1 && matches!(c.group, GroupKind::Ep | GroupKind::Dp);
        let p2p = (op.class == KernelClass::SendRecv).then(|| {
            let bwd = op.phase == Phase::Backward;
            let to = if bwd { gi - ep } else { gi + ep };
            (to as u32, mb, bwd)
        });
        let id = if shared {
            let chan = match (c.group, async_) {
                (GroupKind::Ep, _) => 0,
                (_, false) => 1,
                (_, true) => 2,
            };
            let seq = self.gpus[gi].seq[chan] as usize;
            self.gpus[gi].seq[chan] += 1;
            let ch = s * 3 + chan;
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
        let cl = &mut self.colls[id as usize];
        self.issued[cl.issued as usize + gi - cl.first as usize] = now;
        cl.arrived += 1;
        if cl.class == KernelClass::AllToAll && cl.members > 1 && g.ep <= g.pair_flow_max {
            let k = gi - cl.first as usize;
            self.pair_arrive(id, k, now, out);
        } else if cl.arrived == cl.members {
            self.launch(id, now, out);
        }
    }

    fn new_coll(
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
            async_,
            p2p,
            issued: self.issued.len() as u32,
        });
        let n = self.issued.len() + members as usize;
        self.issued.resize(n, 0);
        self.arrived.resize(n, false);
        self.pend.resize(n, 0);
        self.done_at.resize(n, 0);
        self.colls.len() as u32 - 1
    }

    fn lat(&self, s: f64) -> u64 {
        super::graph::secs_to_ns(s)
    }

    fn coll_done(&mut self, id: u32, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let c = self.colls[id as usize];
        if let Some((to, mb, bwd)) = c.p2p {
            let k = to as usize * self.m as usize + mb as usize;
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
    fn member_done(&mut self, id: u32, k: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
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
                waiting: !c.async_,
            });
        }
        if c.async_ {
            self.gpus[gi].comm_active = false;
            self.next_bucket(gi, now, out);
            if self.gpus[gi].block == Block::Drain
                && !self.gpus[gi].comm_active
                && self.gpus[gi].queue.is_empty()
            {
                self.gpus[gi].block = Block::None;
                self.advance(gi, now, out);
            }
        } else {
            self.gpus[gi].comm_wait_ns += wait;
            if moe {
                if let Some(l) = c.layer {
                    self.moe_wait_ns[l as usize] += wait;
                }
            }
            self.gpus[gi].op += 1;
            self.gpus[gi].block = Block::None;
            self.advance(gi, now, out);
        }
    }

    fn next_bucket(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        if self.gpus[gi].comm_active {
            return;
        }
        let Some(b) = self.gpus[gi].queue.pop_front() else {
            return;
        };
        let s = self.stage_of(gi);
        let (j, bytes) = self.buckets[s][b as usize];
        let op = self.g.stages[s].per_step[j as usize].clone();
        self.gpus[gi].comm_active = true;
        self.issue_bytes(gi, &op, bytes, 0, true, now, out);
    }

    fn compute_done(&mut self, gi: usize, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let s = self.stage_of(gi);
        let g = self.g;
        let st = &g.stages[s];
        let (first, start, mb) = self.gpus[gi].cur;
        // A run of the stage's ops [first, run_end), or one once-per-step op.
        let end = if first < st.ops.len() {
            self.gpus[gi].run_end
        } else {
            first + 1
        };
        let mut t0 = start;
        for i in first..end {
            let p = if i < st.ops.len() {
                g.op_price(gi, s, i)
            } else {
                st.fixed[i]
            };
            let x = &mut self.gpus[gi];
            x.busy_ns += p.ns;
            x.busy_j += p.power_w * p.ns as f64 * 1e-9;
            x.op += 1;
            if let Some(rec) = &mut self.records {
                let op = if i < st.ops.len() {
                    &st.ops[i]
                } else {
                    &st.per_step[i - st.ops.len()]
                };
                let routed = i < st.ops.len() && st.routed_slot[i] != NONE;
                let o = if routed {
                    op.at_tokens(g.received(gi, op.layer))
                } else {
                    op.clone()
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
                    flops: o.flops,
                    bytes: o.bytes,
                    waiting: false,
                });
            }
            t0 += p.ns;
        }
        debug_assert_eq!(t0, now);
        self.gpus[gi].block = Block::None;
        let i = end - 1;
        // The last backward pass releases a gradient bucket at the end of each layer.
        let last_pass = self.gpus[gi].item + 1 == st.order.len();
        if self.overlap.grad_sync && last_pass && i < st.ops.len() && st.bucket_end[i] {
            for b in 0..self.buckets[s].len() {
                self.gpus[gi].queue.push_back(b as u32);
            }
            self.next_bucket(gi, now, out);
        }
        self.advance(gi, now, out);
    }
}

impl Handler<Ev> for Sched<'_> {
    type Error = EngineError;

    fn handle(
        &mut self,
        now: SimTime,
        ev: Ev,
        out: &mut Vec<(SimTime, Ev)>,
    ) -> Result<(), EngineError> {
        let t = now.as_nanos();
        match ev {
            Ev::Compute(gi) => self.compute_done(gi as usize, t, out),
            Ev::Flow { flow, gen } => {
                if !self.net.is_current(flow, gen) {
                    return Ok(());
                }
                self.scratch.clear();
                if !self.net.due(flow, t, &mut self.scratch) {
                    for &(at, fl, gn) in &self.scratch {
                        out.push((SimTime::from_nanos(at), Ev::Flow { flow: fl, gen: gn }));
                    }
                    return Ok(());
                }
                self.scratch.clear();
                let f = self.net.finish(flow, t, &mut self.scratch);
                for &(at, fl, gn) in &self.scratch {
                    out.push((SimTime::from_nanos(at), Ev::Flow { flow: fl, gen: gn }));
                }
                if f.ends[0] != NONE {
                    self.pair_drained(&f, t, out);
                    return Ok(());
                }
                let c = &mut self.colls[f.coll as usize];
                c.flows -= 1;
                c.done_at = c.done_at.max(t + f.lat_ns);
                if c.flows == 0 {
                    out.push((SimTime::from_nanos(c.done_at), Ev::Coll(f.coll)));
                }
            }
            Ev::Coll(id) => self.coll_done(id, t, out),
            Ev::Member { coll, k } => self.member_done(coll, k as usize, t, out),
        }
        Ok(())
    }
}
