//! Node-pair all-to-all flows for expert-parallel groups too large for one flow per rank pair:
//! one flow per (source node, destination node) carrying the sum of that pair's routed bytes
//! from the step's routing, over the nodes' NICs (and the leaves' up-links between leaf groups),
//! plus each GPU's NVLink part to its node-mates (one flow per port). A node's members complete
//! when all its flows, sent and received, have drained: a hot expert's node delays exactly the
//! nodes that exchange tokens with it. Under routing that treats a node's GPUs alike this equals
//! the rank-pair model (the node's NICs carry the same bytes at the same total rate).

use super::super::graph::NONE;
use super::super::links::Flow;
use super::{Coll, Ev, NodeState, Sched};
use crate::engine::SimTime;
use crate::network::COLLECTIVE_BASE_LATENCY_S;

impl Sched<'_> {
    /// Bytes member `i` sends member `j` in all-to-all `c` (indices in the collective).
    pub(super) fn pair_bytes(&self, c: &Coll, ml: Option<usize>, i: usize, j: usize) -> f64 {
        match ml {
            _ if c.fixed_pair > 0.0 => f64::from(u8::from(i != j)) * c.fixed_pair,
            // Towards the experts `i` sends its tokens for `j`'s experts; back, the results of
            // `i`'s experts for `j`'s tokens.
            Some(ml) if c.to_experts => c.width * self.g.sent(ml, i, j),
            Some(ml) => c.width * self.g.sent(ml, j, i),
            None => 0.0,
        }
    }

    /// Bytes node `s` sends node `d` (indices among the collective's nodes, `s != d`).
    pub(super) fn node_bytes(&self, c: &Coll, ml: Option<usize>, s: usize, d: usize) -> f64 {
        let nb = c.node_base as usize;
        let (a, b) = (self.nodes[nb + s], self.nodes[nb + d]);
        if ml.is_none() {
            return 0.0;
        }
        if c.fixed_pair > 0.0 {
            // Different nodes: every member pair exchanges the fixed share.
            return f64::from(a.need) * f64::from(b.need) * c.fixed_pair;
        }
        if self.g.pairs.is_empty() {
            // One routing row per layer: `i` sends `j` `recv_j / ep`, whoever `i` is.
            let ep = self.g.ep as f64;
            return if c.to_experts {
                c.width * f64::from(a.need) * b.recv / ep
            } else {
                c.width * f64::from(b.need) * a.recv / ep
            };
        }
        let mut sum = 0.0;
        for i in a.lo..a.lo + a.need {
            for j in b.lo..b.lo + b.need {
                sum += self.pair_bytes(c, ml, i as usize, j as usize);
            }
        }
        sum
    }

    /// Lay out the nodes of all-to-all `id` on its first member's arrival.
    pub(super) fn node_layout(&mut self, id: u32) {
        let c = self.colls[id as usize];
        let g = self.g;
        let (first, n) = (c.first as usize, c.members as usize);
        let node0 = g.node[first];
        let nodes = (g.node[first + n - 1] - node0 + 1) as usize;
        let base = self.nodes.len();
        self.nodes.resize(base + nodes, NodeState::default());
        for k in 0..n {
            let x = &mut self.nodes[base + (g.node[first + k] - node0) as usize];
            if x.need == 0 {
                x.lo = k as u32;
            }
            x.need += 1;
            x.recv += g.received(first + k, c.layer);
        }
        let cl = &mut self.colls[id as usize];
        cl.node_base = base as u32;
        cl.nodes = nodes as u32;
    }

    /// Member `k` of node-pair all-to-all `id` issued it at `now`. When the last member of its
    /// node has, the node's flows start: each GPU's NVLink part, and a flow each way with every
    /// node that has arrived (a pair's transfer needs both sides posted).
    pub(super) fn node_arrive(
        &mut self,
        id: u32,
        k: usize,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        if self.colls[id as usize].node_base == NONE {
            self.node_layout(id);
        }
        let c = self.colls[id as usize];
        let g = self.g;
        let first = c.first as usize;
        let (nb, nn) = (c.node_base as usize, c.nodes as usize);
        let a = (g.node[first + k] - g.node[first]) as usize;
        self.arrived[c.issued as usize + k] = true;
        self.nodes[nb + a].arrived += 1;
        let me = self.nodes[nb + a];
        if me.arrived < me.need {
            return;
        }
        let ml = g.moe_layer(c.layer);
        let f = self.fabric;
        // Latency as `Fabric::all_to_all_s`: one per peer, inside the node and across.
        let same = f64::from(me.need);
        let lat_i = self.lat(COLLECTIVE_BASE_LATENCY_S + (same - 1.0) * f.intra.latency_s);
        let lat_e =
            self.lat(COLLECTIVE_BASE_LATENCY_S + (c.members as f64 - same) * f.inter.latency_s);
        {
            let x = &mut self.nodes[nb + a];
            x.done_at = x.done_at.max(now + lat_i.min(lat_e));
        }
        self.scratch.clear();
        // NVLink: each GPU's bytes to and from its node-mates, one flow per port.
        let mut pend = self.nvlink_parts(id, a, now, lat_i);
        let mut path = std::mem::take(&mut self.path);
        for b in 0..nn {
            if b == a {
                continue;
            }
            let other = self.nodes[nb + b];
            for (s, d) in [(a, b), (b, a)] {
                let bytes = self.node_bytes(&c, ml, s, d);
                if bytes <= 0.0 {
                    continue;
                }
                pend += 1;
                if other.arrived < other.need {
                    continue;
                }
                let (ms, md) = (self.nodes[nb + s].lo, self.nodes[nb + d].lo);
                self.net
                    .paths
                    .node_to_node(first + ms as usize, first + md as usize, &mut path);
                let fl = self.net.add(now, bytes, &path, id, lat_e);
                let flow = &mut self.net.flows[fl as usize];
                flow.ends = [s as u32, d as u32];
                flow.node = true;
                self.batch.push(fl);
            }
        }
        self.path = path;
        let batch = std::mem::take(&mut self.batch);
        self.net.retime_batch(&batch, now, &mut self.scratch);
        self.count_batch_contention(&batch, id);
        self.batch = batch;
        self.batch.clear();
        self.nodes[nb + a].pend += pend;
        for &(t, fl, gen) in &self.scratch {
            out.push((SimTime::from_nanos(t), Ev::Flow { flow: fl, gen }));
        }
        if self.nodes[nb + a].pend == 0 {
            self.node_complete(id, a, out);
        }
    }

    /// Node-pair (or NVLink) flow `f` drained at `now`: its nodes have one flow less to wait for.
    pub(super) fn node_drained(&mut self, f: &Flow, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let nb = self.colls[f.coll as usize].node_base as usize;
        for m in f.ends {
            if m == NONE {
                continue;
            }
            let x = &mut self.nodes[nb + m as usize];
            x.done_at = x.done_at.max(now + f.lat_ns);
            x.pend -= 1;
            // A node that has not arrived yet still counts its own flows on arrival.
            if x.pend == 0 && x.arrived == x.need {
                self.node_complete(f.coll, m as usize, out);
            }
        }
    }

    /// Every flow of node `a` of all-to-all `id` has drained: its members complete.
    pub(super) fn node_complete(&mut self, id: u32, a: usize, out: &mut Vec<(SimTime, Ev)>) {
        let x = self.nodes[self.colls[id as usize].node_base as usize + a];
        for k in x.lo..x.lo + x.need {
            out.push((SimTime::from_nanos(x.done_at), Ev::Member { coll: id, k }));
        }
    }
}
