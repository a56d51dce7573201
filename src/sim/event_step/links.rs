//! Streams' shared resources: each simulated GPU's NVLink/NVSwitch port and NIC (one direction
//! each), its node's NICs together, the fat-tree's leaf up-links and the torus's links (which
//! ones a transfer crosses: [`super::paths`]), and the flows on them. Bandwidth is shared per flow, not per packet: a flow's rate is
//! the smallest equal share `bandwidth / flows on the link` over the links it crosses, re-timed
//! whenever a flow starts or ends on one of them (an equal-share flow model, as in SimGrid's
//! simplest "constant bandwidth sharing"; max-min would give a flow the leftover of a
//! bottlenecked neighbour, which equal sharing does not).

use super::graph::Graph;
use super::paths::Paths;
use crate::network::Fabric;

/// Index of a link among the simulated GPUs' ports.
pub(super) type LinkId = u32;

/// Which port of a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Port {
    /// NVLink/NVSwitch port, sending.
    NvlOut = 0,
    /// NVLink/NVSwitch port, receiving.
    NvlIn = 1,
    /// NIC into the fat-tree, sending.
    NicOut = 2,
    /// NIC, receiving.
    NicIn = 3,
}

/// Link of `gpu`'s `port`.
#[inline]
pub(super) fn link(gpu: usize, port: Port) -> LinkId {
    (gpu * 4 + port as usize) as LinkId
}

/// A transfer in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Flow {
    /// Bytes left at `last` [bytes].
    pub left: f64,
    /// Current rate [bytes/ns].
    pub rate: f64,
    /// Time `left` was last brought up to date [ns].
    pub last: u64,
    /// Links it crosses: `Net::path[id * stride..][..len]`.
    pub len: u16,
    /// Bumped whenever a new completion event is pushed: an event of an older generation is stale.
    pub gen: u32,
    /// Time of the pending completion event [ns] (at or before the flow's true completion).
    pub at: u64,
    /// The collective it belongs to.
    pub coll: u32,
    /// Latency paid after the last byte [ns].
    pub lat_ns: u64,
    pub live: bool,
    /// A rank-pair flow of an all-to-all: the sending and receiving members (indices in the
    /// collective); a node-pair flow ([`Flow::node`]): the sending and receiving nodes (indices
    /// among the collective's nodes); `u32::MAX` for a flow that belongs to the whole collective.
    pub ends: [u32; 2],
    /// `ends` are nodes (a node-pair all-to-all flow, or a GPU's NVLink part of one).
    pub node: bool,
}

/// The ports of every simulated GPU and the flows on them.
#[derive(Clone, Debug, Default)]
pub(super) struct Net {
    /// Bandwidth of each link [bytes/ns].
    bw: Vec<f64>,
    /// The step's link layout.
    pub paths: Paths,
    /// Links of each flow slot, `stride` per slot.
    path: Vec<LinkId>,
    stride: usize,
    /// Flows on each link.
    on: Vec<Vec<u32>>,
    /// Each link's equal share `bw / flows on it` [bytes/ns], kept as `on` changes (re-timing
    /// reads it for every flow on a link, the hottest loop of an event-level step).
    sh: Vec<f64>,
    pub flows: Vec<Flow>,
    free: Vec<u32>,
    /// Per link, the batch that last re-timed it ([`Net::retime_batch`] visits a link once).
    mark: Vec<u32>,
    batch: u32,
    /// Per link, flows of the batch [`Net::batch_sharing`] is counting on it.
    cnt: Vec<u32>,
}

impl Net {
    /// Ports for `gpus` GPUs of `fabric` only (unit tests of the flow model; effective NCCL
    /// bus bandwidths, see `network::fabric`).
    #[cfg(test)]
    pub fn reset(&mut self, gpus: usize, fabric: &Fabric) {
        self.paths = Paths::ports(gpus);
        let (bi, be) = (
            fabric.intra_bw_bytes_per_s() * 1e-9,
            fabric.inter_bw_bytes_per_s() * 1e-9,
        );
        self.bw.clear();
        for _ in 0..gpus {
            self.bw.extend_from_slice(&[bi, bi, be, be]);
        }
        self.clear(2);
    }

    /// The links of `g`'s simulated GPUs on `fabric` (see [`super::paths`]), no flows.
    pub fn reset_for(&mut self, g: &Graph, fabric: &Fabric) {
        let mut bw = std::mem::take(&mut self.bw);
        self.paths.rebuild(g, fabric, &mut bw);
        self.bw = bw;
        self.clear(self.paths.max_len);
    }

    fn clear(&mut self, stride: usize) {
        let n = self.bw.len();
        self.on.resize_with(n, Vec::new);
        self.on.iter_mut().for_each(Vec::clear);
        self.sh.clear();
        self.sh.extend_from_slice(&self.bw);
        self.flows.clear();
        self.free.clear();
        self.path.clear();
        self.stride = stride;
        self.mark.clear();
        self.mark.resize(n, 0);
        self.cnt.clear();
        self.cnt.resize(n, 0);
        self.batch = 0;
    }

    /// Links of flow `i`.
    #[inline]
    pub fn links(&self, i: u32) -> &[LinkId] {
        let f = &self.flows[i as usize];
        let b = i as usize * self.stride;
        &self.path[b..b + f.len as usize]
    }

    /// Bandwidth of link `l` [bytes/ns].
    pub fn bw(&self, l: LinkId) -> f64 {
        self.bw[l as usize]
    }

    fn share(&self, i: u32) -> f64 {
        self.links(i)
            .iter()
            .map(|&l| self.sh[l as usize])
            .fold(f64::INFINITY, f64::min)
    }

    /// Bring link `l`'s equal share up to its flow count.
    #[inline]
    fn reshare(&mut self, l: usize) {
        self.sh[l] = self.bw[l] / self.on[l].len().max(1) as f64;
    }

    /// Bring flow `i` up to `now` and give it its current share. Its completion is pushed
    /// into `out` only if it moved earlier than the event already pending for it: a flow that
    /// slowed down keeps its (now early) event, which [`Net::due`] re-arms when it fires — one
    /// event per flow instead of one per re-timing, and none when its share did not change.
    fn retime(&mut self, i: u32, now: u64, out: &mut Vec<(u64, u32, u32)>) {
        let rate = self.share(i);
        let f = &mut self.flows[i as usize];
        if rate == f.rate {
            return;
        }
        f.left = (f.left - f.rate * (now - f.last) as f64).max(0.0);
        f.last = now;
        f.rate = rate;
        let at = now + drain_ns(f.left, rate);
        if at < f.at {
            f.gen = f.gen.wrapping_add(1);
            f.at = at;
            out.push((at, i, f.gen));
        }
    }

    /// Add a flow of `bytes` on `links` (distinct; at most the layout's longest path) at `now`
    /// without re-timing anything: a batch of flows starting at the same instant is added first
    /// and re-timed once by [`Net::retime_batch`].
    pub fn add(&mut self, now: u64, bytes: f64, links: &[LinkId], coll: u32, lat_ns: u64) -> u32 {
        let n = links.len().min(self.stride);
        let f = Flow {
            left: bytes,
            rate: 0.0,
            last: now,
            len: n as u16,
            gen: 0,
            at: u64::MAX,
            coll,
            lat_ns,
            live: true,
            ends: [u32::MAX; 2],
            node: false,
        };
        let id = match self.free.pop() {
            Some(i) => {
                self.flows[i as usize] = f;
                i
            }
            None => {
                self.flows.push(f);
                self.path.resize(self.flows.len() * self.stride, u32::MAX);
                self.flows.len() as u32 - 1
            }
        };
        let b = id as usize * self.stride;
        self.path[b..b + n].copy_from_slice(&links[..n]);
        for &l in &links[..n] {
            self.on[l as usize].push(id);
            self.reshare(l as usize);
        }
        id
    }

    /// Re-time, once each, the flows on the links of `flows` (added by [`Net::add`] at `now`);
    /// pushes their completions as [`Net::start`] does.
    pub fn retime_batch(&mut self, flows: &[u32], now: u64, out: &mut Vec<(u64, u32, u32)>) {
        self.batch = self.batch.wrapping_add(1);
        for &fl in flows {
            let b = fl as usize * self.stride;
            for k in 0..self.flows[fl as usize].len as usize {
                let l = self.path[b + k] as usize;
                if self.mark[l] == self.batch {
                    continue;
                }
                self.mark[l] = self.batch;
                for j in 0..self.on[l].len() {
                    let i = self.on[l][j];
                    self.retime(i, now, out);
                }
            }
        }
        for &fl in flows {
            let f = &mut self.flows[fl as usize];
            if f.at == u64::MAX {
                f.at = now;
                out.push((now, fl, f.gen));
            }
        }
    }

    /// Start a flow of `bytes` on `links` at `now`; pushes `(time, flow, gen)` completions of
    /// it and of every flow whose share changed into `out`; returns the flow's id.
    pub fn start(
        &mut self,
        now: u64,
        bytes: f64,
        links: &[LinkId],
        coll: u32,
        lat_ns: u64,
        out: &mut Vec<(u64, u32, u32)>,
    ) -> u32 {
        let id = self.add(now, bytes, links, coll, lat_ns);
        self.retime_links(id, now, out);
        // A new flow (rate 0 until now) always gets its event above unless it has no link.
        if self.flows[id as usize].at == u64::MAX {
            let f = &mut self.flows[id as usize];
            f.at = now;
            out.push((now, id, f.gen));
        }
        id
    }

    /// Collectives of the flows other than `flow` on any of its links (those it shares a link
    /// with), into `out`.
    pub fn sharing(&self, flow: u32, out: &mut Vec<u32>) {
        for &l in self.links(flow) {
            for &i in &self.on[l as usize] {
                if i != flow {
                    out.push(self.flows[i as usize].coll);
                }
            }
        }
    }

    /// Link sharing of a batch of flows of collective `coll` just added: for every flow of
    /// another collective on a link of the batch, `(its collective, the batch's flows on that
    /// link)` into `out` — the same meetings as [`Net::sharing`] of each flow of the batch, one
    /// pass per link instead of one per flow.
    pub fn batch_sharing(&mut self, flows: &[u32], coll: u32, out: &mut Vec<(u32, u32)>) {
        self.batch = self.batch.wrapping_add(1);
        let b = self.batch;
        for &fl in flows {
            let base = fl as usize * self.stride;
            for k in 0..self.flows[fl as usize].len as usize {
                let l = self.path[base + k] as usize;
                if self.mark[l] != b {
                    self.mark[l] = b;
                    self.cnt[l] = 0;
                }
                self.cnt[l] += 1;
            }
        }
        for &fl in flows {
            let base = fl as usize * self.stride;
            for k in 0..self.flows[fl as usize].len as usize {
                let l = self.path[base + k] as usize;
                if self.cnt[l] == 0 {
                    continue;
                }
                let n = std::mem::take(&mut self.cnt[l]);
                for &g in &self.on[l] {
                    let c = self.flows[g as usize].coll;
                    if c != coll {
                        out.push((c, n));
                    }
                }
            }
        }
    }

    /// Re-time the flows on flow `id`'s links.
    fn retime_links(&mut self, id: u32, now: u64, out: &mut Vec<(u64, u32, u32)>) {
        let b = id as usize * self.stride;
        for k in 0..self.flows[id as usize].len as usize {
            let l = self.path[b + k] as usize;
            for j in 0..self.on[l].len() {
                let i = self.on[l][j];
                self.retime(i, now, out);
            }
        }
    }

    /// Whether completion `(flow, gen)` is current.
    pub fn is_current(&self, flow: u32, gen: u32) -> bool {
        self.flows
            .get(flow as usize)
            .is_some_and(|f| f.live && f.gen == gen)
    }

    /// When live flow `i` drains at its current rate [ns].
    pub fn completion(&self, i: u32) -> u64 {
        let f = &self.flows[i as usize];
        f.last + drain_ns(f.left, f.rate)
    }

    /// The current completion event of flow `i` fired at `now`: whether it has drained. If it
    /// slowed down since the event was pushed, the event is re-armed at its new completion
    /// (pushed into `out`) and it has not.
    pub fn due(&mut self, i: u32, now: u64, out: &mut Vec<(u64, u32, u32)>) -> bool {
        let at = self.completion(i);
        if at <= now {
            return true;
        }
        let f = &mut self.flows[i as usize];
        f.gen = f.gen.wrapping_add(1);
        f.at = at;
        out.push((at, i, f.gen));
        false
    }

    /// End flow `i` at `now`; pushes the new completions of the flows that share its links.
    pub fn finish(&mut self, i: u32, now: u64, out: &mut Vec<(u64, u32, u32)>) -> Flow {
        let f = self.flows[i as usize];
        self.flows[i as usize].live = false;
        let b = i as usize * self.stride;
        for k in 0..f.len as usize {
            let l = self.path[b + k] as usize;
            let v = &mut self.on[l];
            if let Some(p) = v.iter().position(|&x| x == i) {
                v.swap_remove(p);
            }
            self.reshare(l);
        }
        self.retime_links(i, now, out);
        self.free.push(i);
        f
    }
}

/// Nanoseconds to drain `left` bytes at `rate` bytes/ns (0 for nothing left or no rate).
fn drain_ns(left: f64, rate: f64) -> u64 {
    if left > 0.0 && rate.is_finite() && rate > 0.0 {
        (left / rate).ceil() as u64
    } else {
        0
    }
}
