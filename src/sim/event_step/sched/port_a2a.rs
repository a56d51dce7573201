//! Per-port all-to-all aggregates for expert-parallel groups on a torus spanning more nodes than
//! node-pair flows can afford ([`super::super::graph::NODE_PAIR_MAX_NODES`]; a fat-tree takes
//! [`super::node_agg`]): each GPU's bytes per port and path as one flow, started when the whole
//! group has issued, done when all have drained. In one torus slice the ports are the chip's ICI
//! out-links, loaded as the dimension-ordered routes load them, and its host's ICI ejection.

use super::super::links::{link, Port};
use super::super::paths::NodePort;
use super::{Coll, Sched};
use crate::network::{Group, COLLECTIVE_BASE_LATENCY_S};

impl Sched<'_> {
    /// Start the per-port flows of all-to-all `c` (id `id`). Every rank sends each peer the
    /// share of the peer's experts in this step's routing: rank `i` sends rank `j` `R_j / ep`
    /// assignments (R_j = what `j`'s experts keep), so a hot rank's port is the bottleneck for
    /// every peer that sends to it. Per GPU: its NVLink bytes to its node, its NIC bytes to
    /// nodes of its leaf group, and its NIC bytes across leaf groups (also on the group's up- or
    /// down-links when they are modelled); latencies per peer as `Fabric::all_to_all_s`.
    pub(super) fn port_all_to_all(
        &mut self,
        id: u32,
        c: &Coll,
        now: u64,
        pending: &mut u32,
        done_at: &mut u64,
    ) {
        let g = self.g;
        let (first, n) = (c.first as usize, c.members as usize);
        let f = self.fabric;
        // A fixed-size all-to-all is a uniform one: every member "receives" 1 and sends each
        // peer `fixed_pair` bytes per unit.
        let fixed = c.fixed_pair > 0.0;
        let w = if fixed {
            c.fixed_pair
        } else {
            c.width / n as f64
        };
        let recv = |x: usize| if fixed { 1.0 } else { g.received(x, c.layer) };
        let total: f64 = (first..first + n).map(recv).sum();
        let nf = n as f64;
        // In one torus slice every peer is reached over the ICI (the host's chips too), not the
        // hosts' DCN NICs: each GPU's bytes load its chip's out-links as the dimension-ordered
        // routes of a uniform exchange do (`Paths::torus_a2a_load`), and its inbound bytes its
        // host's ICI ejection.
        let per_node = (g.gpus_per_node / g.tp.max(1)).clamp(1, c.members);
        // Expert-parallel ranks are `tp` apart, as the fast path places them.
        let tg = Group::strided(
            c.members,
            per_node,
            crate::workload::step_ops::GroupKind::Ep.rank_stride(g.tp, g.dp, g.ep),
        );
        if let Some((load, steps)) = self.net.paths.torus_a2a_load(&f, tg) {
            let lat = self.lat(COLLECTIVE_BASE_LATENCY_S + steps * f.intra.latency_s);
            for x in first..first + n {
                let r = recv(x);
                let (send, get) = (w * (total - r), w * r * (nf - 1.0));
                let (out_b, in_b) = if c.to_experts {
                    (send, get)
                } else {
                    (get, send)
                };
                for (l, &k) in load.iter().enumerate() {
                    if k > 0.0 {
                        let link = self.net.paths.torus_link(x, l / 2, l % 2 == 1);
                        self.path.clear();
                        self.path.push(link);
                        self.flow(id, out_b * k, lat, now, pending, done_at);
                    }
                }
                let eject = self.net.paths.node_port(g.node[x], NodePort::IciIn);
                self.path.clear();
                self.path.push(eject);
                self.flow(id, in_b, lat, now, pending, done_at);
            }
            return;
        }
        // Members are consecutive GPUs, their nodes and leaf groups non-decreasing: the sums
        // per node and per leaf group are runs, found in one pass.
        let (mut node_lo, mut su_lo) = (first, first);
        let (mut node_hi, mut su_hi) = (first, first);
        let (mut node_sum, mut su_sum) = (0.0, 0.0);
        for x in first..first + n {
            if x >= node_hi {
                node_lo = x;
                node_hi = x;
                while node_hi < first + n && g.node[node_hi] == g.node[x] {
                    node_hi += 1;
                }
                node_sum = (node_lo..node_hi).map(recv).sum();
            }
            if x >= su_hi {
                su_lo = x;
                su_hi = x;
                let su = self.net.paths.su(x);
                while su_hi < first + n && self.net.paths.su(su_hi) == su {
                    su_hi += 1;
                }
                su_sum = (su_lo..su_hi).map(recv).sum();
            }
            // Peers by place: same node, other nodes of the leaf group, across leaf groups.
            let (run, cnt) = (node_sum, (node_hi - node_lo) as f64);
            let su_run = su_sum - run;
            let su_cnt = (su_hi - su_lo) as f64 - cnt;
            let lat_i = self.lat(COLLECTIVE_BASE_LATENCY_S + (cnt - 1.0) * f.intra.latency_s);
            let lat_e = self.lat(COLLECTIVE_BASE_LATENCY_S + (nf - cnt) * f.inter.latency_s);
            let r = recv(x);
            // Towards the experts: x sends its share to every peer and receives R_x from each.
            let send = [w * (run - r), w * su_run, w * (total - run - su_run)];
            let get = [
                w * r * (cnt - 1.0),
                w * r * su_cnt,
                w * r * (nf - cnt - su_cnt),
            ];
            let (out_b, in_b) = if c.to_experts {
                (send, get)
            } else {
                (get, send)
            };
            let leaves = self.net.paths.leaf_links(x);
            let parts = [
                (out_b[0], [link(x, Port::NvlOut), NONE], lat_i),
                (out_b[1], [link(x, Port::NicOut), NONE], lat_e),
                (out_b[2], [link(x, Port::NicOut), leaves[0]], lat_e),
                (in_b[0], [link(x, Port::NvlIn), NONE], lat_i),
                (in_b[1], [link(x, Port::NicIn), NONE], lat_e),
                (in_b[2], [link(x, Port::NicIn), leaves[1]], lat_e),
            ];
            for (bytes, links, lat) in parts {
                self.path.clear();
                self.path
                    .extend(links.iter().copied().filter(|&l| l != NONE));
                self.flow(id, bytes, lat, now, pending, done_at);
            }
        }
    }
}

use super::super::graph::NONE;
