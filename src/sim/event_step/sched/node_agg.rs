//! Node-aggregate all-to-all for expert-parallel groups over more nodes than node-pair flows
//! afford: per node one egress and one ingress flow on its NICs (split by leaf group where the
//! up-links are modelled) plus each GPU's NVLink part, and a bound from the node pairs.
//!
//! Why: node-pair flows ([`super::node_a2a`]) cost about `nodes^3` flow re-timings per
//! all-to-all (each of the `nodes^2` flows' ends re-times the `~2 nodes` flows on its node's
//! NICs): 49 s of CPU per step at 128 nodes. Here a node's NICs carry its own bytes as two flows
//! (`4 nodes` flows per all-to-all), which gives what its own links allow; what its peers'
//! links allow comes from processor sharing on each peer's NIC, the bipartite NIC graph's
//! equal-share solution taken one link at a time: the flow `s -> d` of `x` bytes shares `d`'s
//! ingress equally with the other flows into `d`, so it has drained once `d`'s ingress has
//! carried `V_d(x) = sum_j min(x_jd, x)` bytes, no earlier than `V_d(x) / B_in(d)` after the start
//! (likewise `U_s(x) = sum_j min(x_sj, x)` on a sender's egress for what a node receives). A
//! node's members complete when its own flows have drained and every such bound has passed, so
//! a hot expert's node still delays exactly the nodes that exchange tokens with it. Both are
//! lower bounds of the node-pair schedule (a flow sharing two NICs drains no earlier than on
//! either alone); `tests_agg` states how far below it lands where both run.
//! The flows start when the whole group has issued (as the per-port aggregates did).

use super::super::graph::NONE;
use super::super::links::{link, Port};
use super::super::paths::NodePort;
use super::{Coll, Ev, Sched};
use crate::engine::SimTime;
use crate::network::COLLECTIVE_BASE_LATENCY_S;

/// Buffers of the node-aggregate all-to-all, kept between all-to-alls.
#[derive(Clone, Debug, Default)]
pub(super) struct AggScratch {
    /// Bytes node `s` sends node `d`, `s * nodes + d` [bytes].
    x: Vec<f64>,
    /// Per node, the latest of its peers' processor-sharing bounds [ns after the start].
    bound: Vec<u64>,
    /// One NIC's flows sorted by size: (bytes, peer).
    col: Vec<(f64, u32)>,
}

impl AggScratch {
    /// For each flow of one NIC (`flows`: bytes and the peer node it comes from or goes to),
    /// raise the peer's bound to the time the NIC of `bw` bytes/ns has carried `sum_j min(x_j,
    /// x)` bytes under equal sharing, `x` that flow's bytes.
    fn share_bounds(&mut self, bw: f64) {
        self.col.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let m = self.col.len();
        let mut before = 0.0;
        for (k, &(x, peer)) in self.col.iter().enumerate() {
            // The k smaller flows whole, this one and the m - k - 1 larger ones up to x each.
            let v = before + (m - k) as f64 * x;
            before += x;
            let t = (v / bw).ceil() as u64;
            let b = &mut self.bound[peer as usize];
            *b = (*b).max(t);
        }
    }
}

impl Sched<'_> {
    /// Whether all-to-all `c` (members on several nodes, neither rank pairs nor node pairs) is
    /// simulated as node aggregates: on a fat-tree (a torus keeps per-port aggregates, whose
    /// paths split by ICI slice).
    pub(super) fn node_agg_applies(&self, c: &Coll) -> bool {
        let (first, n) = (c.first as usize, c.members as usize);
        matches!(self.fabric.topology, crate::network::Topology::FatTree(_))
            && self.g.node[first + n - 1] != self.g.node[first]
    }

    /// Every member of all-to-all `id` has issued at `now`: start its node-aggregate flows.
    pub(super) fn node_agg(&mut self, id: u32, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        self.node_layout(id);
        let c = self.colls[id as usize];
        let g = self.g;
        let first = c.first as usize;
        let (nb, nn) = (c.node_base as usize, c.nodes as usize);
        let ml = g.moe_layer(c.layer);
        let mut a = std::mem::take(&mut self.agg);
        a.x.clear();
        a.x.resize(nn * nn, 0.0);
        for s in 0..nn {
            for d in 0..nn {
                if s != d {
                    a.x[s * nn + d] = self.node_bytes(&c, ml, s, d);
                }
            }
        }
        // Peers' links: each node's ingress bounds its senders, its egress its receivers.
        a.bound.clear();
        a.bound.resize(nn, 0);
        for d in 0..nn {
            let node = g.node[first + self.nodes[nb + d].lo as usize];
            for (port, incoming) in [(NodePort::NicIn, true), (NodePort::NicOut, false)] {
                a.col.clear();
                for j in (0..nn).filter(|&j| j != d) {
                    let x = if incoming {
                        a.x[j * nn + d]
                    } else {
                        a.x[d * nn + j]
                    };
                    if x > 0.0 {
                        a.col.push((x, j as u32));
                    }
                }
                let bw = self.net.bw(self.net.paths.node_port(node, port));
                a.share_bounds(bw);
            }
        }
        let f = self.fabric;
        self.scratch.clear();
        let mut path = std::mem::take(&mut self.path);
        for s in 0..nn {
            let me = self.nodes[nb + s];
            let x0 = first + me.lo as usize;
            let same = f64::from(me.need);
            let lat_i = self.lat(COLLECTIVE_BASE_LATENCY_S + (same - 1.0) * f.intra.latency_s);
            let lat_e =
                self.lat(COLLECTIVE_BASE_LATENCY_S + (c.members as f64 - same) * f.inter.latency_s);
            let mut pend = self.nvlink_parts(id, s, now, lat_i);
            // The node's NIC bytes, to (from) its own leaf group and across leaf groups.
            let su = self.net.paths.su(x0);
            let leaves = self.net.paths.leaf_links(x0);
            let (mut out_b, mut in_b) = ([0.0; 2], [0.0; 2]);
            for d in (0..nn).filter(|&d| d != s) {
                let across = leaves[0] != NONE
                    && self.net.paths.su(first + self.nodes[nb + d].lo as usize) != su;
                out_b[across as usize] += a.x[s * nn + d];
                in_b[across as usize] += a.x[d * nn + s];
            }
            let node = g.node[x0];
            let (nic_out, nic_in) = (
                self.net.paths.node_port(node, NodePort::NicOut),
                self.net.paths.node_port(node, NodePort::NicIn),
            );
            let parts = [
                (out_b[0], [nic_out, NONE]),
                (out_b[1], [nic_out, leaves[0]]),
                (in_b[0], [nic_in, NONE]),
                (in_b[1], [nic_in, leaves[1]]),
            ];
            for (bytes, links) in parts {
                if bytes <= 0.0 {
                    continue;
                }
                path.clear();
                path.extend(links.iter().copied().filter(|&l| l != NONE));
                let fl = self.net.add(now, bytes, &path, id, lat_e);
                let flow = &mut self.net.flows[fl as usize];
                flow.ends = [s as u32, NONE];
                flow.node = true;
                self.batch.push(fl);
                pend += 1;
            }
            let x = &mut self.nodes[nb + s];
            x.arrived = x.need;
            x.pend = pend;
            x.done_at = x.done_at.max(now + lat_i.min(lat_e));
            // A node that exchanges nothing across nodes has no peer to wait for.
            if a.bound[s] > 0 {
                x.done_at = x.done_at.max(now + a.bound[s] + lat_e);
            }
        }
        self.path = path;
        self.agg = a;
        let batch = std::mem::take(&mut self.batch);
        self.net.retime_batch(&batch, now, &mut self.scratch);
        self.count_batch_contention(&batch, id);
        self.batch = batch;
        self.batch.clear();
        for &(t, fl, gen) in &self.scratch {
            out.push((SimTime::from_nanos(t), Ev::Flow { flow: fl, gen }));
        }
        for s in 0..nn {
            if self.nodes[nb + s].pend == 0 {
                self.node_complete(id, s, out);
            }
        }
    }

    /// Start the NVLink parts of node `a` of node-pair or node-aggregate all-to-all `id` at
    /// `now`: each GPU's bytes to and from its node-mates, one flow per port, into `self.batch`;
    /// returns how many.
    pub(super) fn nvlink_parts(&mut self, id: u32, a: usize, now: u64, lat_i: u64) -> u32 {
        let c = self.colls[id as usize];
        let first = c.first as usize;
        let ml = self.g.moe_layer(c.layer);
        let me = self.nodes[c.node_base as usize + a];
        let mut pend = 0;
        let mut path = std::mem::take(&mut self.path);
        let (lo, hi) = (me.lo as usize, (me.lo + me.need) as usize);
        for x in lo..hi {
            let (mut tx, mut rx) = (0.0, 0.0);
            for y in lo..hi {
                if y != x {
                    tx += self.pair_bytes(&c, ml, x, y);
                    rx += self.pair_bytes(&c, ml, y, x);
                }
            }
            for (bytes, port) in [(tx, Port::NvlOut), (rx, Port::NvlIn)] {
                if bytes > 0.0 {
                    pend += 1;
                    path.clear();
                    path.push(link(first + x, port));
                    let fl = self.net.add(now, bytes, &path, id, lat_i);
                    let flow = &mut self.net.flows[fl as usize];
                    flow.ends = [a as u32, NONE];
                    flow.node = true;
                    self.batch.push(fl);
                }
            }
        }
        self.path = path;
        pend
    }

    /// Count the port meetings of a batch of all-to-all `id`'s flows just added: only another
    /// transfer on the port is contention (the pairs of one all-to-all split its ports by
    /// design).
    pub(super) fn count_batch_contention(&mut self, batch: &[u32], id: u32) {
        let mut met = std::mem::take(&mut self.met);
        met.clear();
        self.net.batch_sharing(batch, id, &mut met);
        for &(other, n) in &met {
            for _ in 0..n {
                self.count_contention(id);
                self.count_contention(other);
            }
        }
        self.met = met;
    }
}
