//! The scheduler: every simulated GPU runs its stage's passes in 1F1B or interleaved 1F1B order
//! on a compute stream (communication that the framework waits for blocks it), overlapped
//! gradient buckets and ZeRO-3 gathers / reduce-scatters on side streams ([`streams`]), and the
//! optimizer once every GPU has its gradients; collectives start when all simulated members have
//! reached them and end when their last flow has drained plus its latency. [`issue`]: which
//! collective a communication op joins; [`collective`]: its flows (all-to-alls: rank pairs there,
//! [`node_a2a`] node pairs, [`node_agg`] node aggregates above 32 nodes on a fat-tree,
//! [`port_a2a`] per-port aggregates on a torus); [`complete`]: when it ends.

use std::collections::VecDeque;

mod advance;
mod collective;
mod complete;
mod ep_stream;
mod issue;
mod node_a2a;
mod node_agg;
mod port_a2a;
mod streams;

use super::graph::{Graph, Pass, NONE};
use super::links::Net;
use super::paths::PathBuf;
use super::{Contention, EventStepError, OpRecord, Overlap};
use crate::engine::{EngineError, Handler, SimTime};
use crate::network::Fabric;
use crate::workload::step_ops::{GroupKind, KernelClass, Phase};
use issue::{Stream, ONCE};
use streams::next_group;

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
    /// Waiting for the communication streams to drain before the optimizer.
    Drain,
    /// Waiting for a prefetched ZeRO-3 parameter gather.
    Z3,
    /// Waiting for every GPU's gradients before the optimizer step.
    Barrier,
    /// Waiting for an all-to-all on the all-to-all stream (combined 1F1B).
    Ep,
    /// Waiting for the pipeline sends of a DualPipe commit.
    Send,
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
    seq: [u32; CHANS],
    end: u64,
    /// Time the compute stream waited for blocking collectives, pipeline sends and its own
    /// all-to-alls (combined passes), summed over the step [ns].
    comm_wait_ns: u64,
    /// ZeRO-3 stream: collectives to issue (op index in the stage list, micro-batch; or a
    /// gradient bucket marked `streams::BUCKET`), one at a time in request order, and whether
    /// one is in flight.
    z3q: VecDeque<(u32, u32)>,
    z3_active: bool,
    /// The next gather group (pass in `order`, group) not yet requested.
    pf: (u32, u32),
    /// Gathers requested and completed so far; the count a waiting pass needs.
    gathers_req: u32,
    gathers_done: u32,
    z3_wait: u32,
    /// The last two requested groups and the gather count that completes each.
    marks: [(u32, u32, u32); 2],
    requests: u32,
    /// `overlap_param_gather`: the next parameter-gather bucket to request on the ZeRO-3
    /// stream, and the next one the first forward waits for (`Stage::pg`).
    pg_next: u32,
    pg_seen: u32,
    /// All-to-all stream (combined 1F1B): all-to-alls to issue in order (op index, backward?,
    /// micro-batch, model chunk), one in flight; counts issued and completed over the step, the
    /// count at the current pass's start and the count a blocked GPU waits for.
    epq: VecDeque<(u32, bool, u32, u32)>,
    ep_active: bool,
    ep_issued: u32,
    ep_done: u32,
    ep_base: u32,
    ep_wait: u32,
    /// The compute run in progress is a run of a combined pass's merged items.
    comb_run: bool,
    /// DualPipe: the pass (index in `order`, or its length for the end) whose commit's sends
    /// were launched, and how many of them have completed.
    pre_item: usize,
    pre_done: u32,
}

/// Collective channels per stage: expert-parallel, blocking data-parallel, overlapped buckets,
/// ZeRO-3 stream. Members of a shared collective meet at the same sequence number of a channel.
const CHANS: usize = 4;

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
    /// Bytes each member sends each peer in an all-to-all of a fixed size, whatever the
    /// routing (a capacity-padded buffer: the einsum MoE layer, Tutel with a capacity factor);
    /// 0 for a routed one (sized by `width`).
    fixed_pair: f64,
    async_: bool,
    /// Pipeline send: receiving GPU, micro-batch, gradient (true) or activation.
    p2p: Option<(u32, u32, bool)>,
    /// Model chunk of the receiving pass of a pipeline send.
    chunk: u32,
    /// On the ZeRO-3 stream: 1 a parameter gather, 2 a gradient reduce-scatter (0: not).
    z3: u8,
    /// Start of the members' issue times in `Sched::issued`.
    issued: u32,
    /// On the all-to-all stream of a combined pass (the compute stream does not wait for it).
    ep_stream: bool,
    /// A pipeline send launched by a DualPipe commit.
    pre: bool,
    /// Node-pair all-to-all: its first node in `Sched::nodes` ([`NONE`] until a member issues),
    /// and how many nodes it spans.
    node_base: u32,
    nodes: u32,
}

/// One node of a node-pair all-to-all (see `Sched::nodes`).
#[derive(Clone, Copy, Debug, Default)]
struct NodeState {
    need: u32,
    arrived: u32,
    lo: u32,
    pend: u32,
    done_at: u64,
    recv: f64,
}

/// One GPU's totals over the step: busy time [ns], busy energy [J], time its compute stream
/// waited in communication (`Gpu::comm_wait_ns`) [ns].
pub(super) type GpuTotals = (u64, f64, u64);

/// Scheduler state of one step.
pub(super) struct Sched<'a> {
    pub g: &'a Graph,
    pub net: &'a mut Net,
    fabric: Fabric,
    overlap: Overlap,
    gpus: Vec<Gpu>,
    colls: Vec<Coll>,
    /// Per stage and channel (0 expert-parallel, 1 data-parallel, 2 overlapped buckets, 3
    /// ZeRO-3 stream): the instance of each sequence number.
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
    /// Links of the flow being started (scratch).
    path: PathBuf,
    /// Per node of every node-pair all-to-all (from `Coll::node_base`): members in the node,
    /// members arrived, first member (index in the collective), flows not yet drained, when
    /// its last flow drained plus latency [ns], and what its GPUs' experts receive.
    nodes: Vec<NodeState>,
    /// Buckets of overlapped gradient sync per stage and chunk: (op index in per_step, bytes).
    buckets: Vec<Vec<Vec<(u32, f64)>>>,
    pub records: Option<Vec<OpRecord>>,
    /// Per layer: GPU-ns spent waiting in the MoE block's all-to-all and expert-TP collectives.
    pub moe_wait_ns: Vec<u64>,
    /// Port sharing seen so far.
    pub contention: Contention,
    /// Collectives sharing a port with a flow just started (scratch).
    sharing: Vec<u32>,
    /// A batch of all-to-all flows' meetings: (other collective, times) (scratch).
    met: Vec<(u32, u32)>,
    /// Buffers of the node-aggregate all-to-all.
    agg: node_agg::AggScratch,
    /// GPUs that reached the optimizer step (and whether it was released).
    at_barrier: u32,
    released: bool,
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
        net.reset_for(g, fabric);
        let m = g.chunk_mbs.max(1);
        // Megatron-LM keeps one gradient buffer per model chunk: each chunk's `dp.grad_sync`
        // ops, a bucket per layer of the chunk.
        let buckets = g
            .stages
            .iter()
            .map(|st| {
                st.chunks
                    .iter()
                    .map(|ch| {
                        let nl = ch.layers.max(1) as f64;
                        (ch.per_step.0..ch.per_step.1)
                            .map(|i| (i, &st.per_step[i as usize]))
                            .filter(|(_, o)| o.name == "dp.grad_sync")
                            .filter_map(|(i, o)| o.comm.map(|c| (i, c.bytes_per_rank / nl)))
                            .collect()
                    })
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
                    seq: [0; CHANS],
                    end: 0,
                    comm_wait_ns: 0,
                    z3q: VecDeque::new(),
                    z3_active: false,
                    pf: (0, 0),
                    gathers_req: 0,
                    gathers_done: 0,
                    z3_wait: 0,
                    marks: [(NONE, NONE, 0); 2],
                    requests: 0,
                    pg_next: 0,
                    pg_seen: 0,
                    epq: VecDeque::new(),
                    ep_active: false,
                    ep_issued: 0,
                    ep_done: 0,
                    ep_base: 0,
                    ep_wait: 0,
                    comb_run: false,
                    pre_item: usize::MAX,
                    pre_done: 0,
                };
                n
            ],
            colls: Vec::new(),
            chans: vec![Vec::new(); g.pp as usize * CHANS],
            act: vec![false; n * (m * g.v) as usize],
            grad: vec![false; n * (m * g.v) as usize],
            scratch: Vec::new(),
            issued: Vec::new(),
            arrived: Vec::new(),
            pend: Vec::new(),
            done_at: Vec::new(),
            batch: Vec::new(),
            path: Vec::new(),
            nodes: Vec::new(),
            buckets,
            records: record.then(Vec::new),
            moe_wait_ns: vec![0; layers],
            contention: Contention::default(),
            sharing: Vec::new(),
            met: Vec::new(),
            agg: node_agg::AggScratch::default(),
            at_barrier: 0,
            released: false,
            m,
        }
    }

    /// Start every GPU at time zero.
    pub fn start(&mut self, out: &mut Vec<(SimTime, Ev)>) {
        for gi in 0..self.gpus.len() {
            let st = &self.g.stages[self.stage_of(gi)];
            self.gpus[gi].pf = next_group(st, 0, None).unwrap_or((st.order.len() as u32, 0));
        }
        // The first parameter-gather bucket goes out as the step starts (the previous step's
        // optimizer has just ended).
        for gi in 0..self.gpus.len() {
            if self.g.stages[self.stage_of(gi)].pg.on() {
                self.request_pg(gi, 0, 0, out);
            }
        }
        for gi in 0..self.gpus.len() {
            self.advance(gi, 0, out);
        }
    }

    /// Index of pass `p`'s input flags of GPU `gi` in `act` / `grad`.
    fn key(&self, gi: usize, p: Pass) -> usize {
        (gi * self.g.v as usize + p.chunk as usize) * self.m as usize + p.mb as usize
    }

    /// (end of the step [ns], per GPU busy time [ns] and busy energy [J], comm wait [ns]).
    /// When each simulated GPU finished its step (its optimizer) [ns].
    pub fn gpu_ends(&self) -> impl Iterator<Item = u64> + '_ {
        self.gpus.iter().map(|x| x.end)
    }

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

    fn block(&mut self, gi: usize, b: Block, now: u64) {
        self.gpus[gi].block = b;
        self.gpus[gi].since = now;
    }

    fn lat(&self, s: f64) -> u64 {
        super::graph::secs_to_ns(s)
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
                    if f.node {
                        self.node_drained(&f, t, out);
                    } else {
                        self.pair_drained(&f, t, out);
                    }
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
