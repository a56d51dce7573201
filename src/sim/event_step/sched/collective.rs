//! How a collective's bytes become flows on the GPUs' ports: NCCL's rings and trees (as
//! `network::Fabric` prices them), pipeline sends, and rank-pair all-to-alls sized by the step's
//! routing (node-pair ones: [`super::node_a2a`]).

use super::super::links::{link, Flow, Port};
use super::super::paths::TORUS_RING_FLOWS;
use super::{Ev, Sched};
use crate::engine::SimTime;
use crate::network::{Collective, Group, COLLECTIVE_BASE_LATENCY_S};
use crate::workload::step_ops::KernelClass;

impl Sched<'_> {
    /// All members arrived: start the collective's flows.
    pub(super) fn launch(&mut self, id: u32, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let c = self.colls[id as usize];
        let f = self.fabric;
        let (ai, ae) = (f.intra.latency_s, f.inter.latency_s);
        let base = COLLECTIVE_BASE_LATENCY_S;
        self.scratch.clear();
        let mut pending = 0u32;
        let mut done_at = now;
        if let Some((to, _, _)) = c.p2p {
            let a = c.first as usize;
            let mut path = std::mem::take(&mut self.path);
            let intra = self.net.paths.gpu_to_gpu(a, to as usize, &mut path);
            self.path = path;
            let lat = self.lat(base + if intra { ai } else { ae });
            self.flow(id, c.bytes, lat, now, &mut pending, &mut done_at);
        } else if c.class == KernelClass::AllToAll {
            // Groups within the rank-pair and node-pair limits exchange their flows as their
            // members issue; a group of one keeps its tokens (only the launch latency counts).
            if c.members > 1 && self.node_agg_applies(&c) {
                self.node_agg(id, now, out);
                return;
            } else if c.members > 1 {
                self.port_all_to_all(id, &c, now, &mut pending, &mut done_at);
            } else {
                let lat = self.lat(base);
                self.flow(id, 0.0, lat, now, &mut pending, &mut done_at);
            }
        } else {
            let g = self.g;
            let stride = c.group.rank_stride(g.tp, g.dp, g.ep);
            let n = c.size.max(1);
            let r = (g.gpus_per_node / stride.max(1)).clamp(1, n);
            let k = if c.class == KernelClass::AllReduce {
                2.0
            } else {
                1.0
            };
            // On a torus: rings per dimension on the chips' ICI links, the DCN between slices
            // (`paths::TorusRing`).
            // The group's ranks `stride` apart, as the fast path places it (`Torus::place`).
            let tg = Group::strided(n, r, stride.max(1));
            if let Some(ring) = self.net.paths.torus_ring(&f, tg, c.bytes, k) {
                let lat = if n > 1 {
                    let steps = base + ring.steps * ai + ring.dcn_steps * ae;
                    self.lat(c.launches as f64 * steps)
                } else {
                    0
                };
                for gi in c.first as usize..(c.first + c.members) as usize {
                    for fl in 0..TORUS_RING_FLOWS {
                        let mut path = std::mem::take(&mut self.path);
                        let bytes = self.net.paths.torus_ring_flow(gi, &ring, fl, &mut path);
                        self.path = path;
                        if let Some(b) = bytes {
                            self.flow(id, b, lat, now, &mut pending, &mut done_at);
                        }
                    }
                    let mut path = std::mem::take(&mut self.path);
                    self.net.paths.ring_inter(gi, false, &mut path);
                    self.path = path;
                    self.flow(id, ring.dcn, lat, now, &mut pending, &mut done_at);
                }
                self.finish_launch(id, pending, done_at, out);
                return;
            }
            // NCCL's ring or tree as `network::Fabric` prices it (`network::nccl`): each GPU's
            // NVLink and NIC bytes of the chosen algorithm, its sequential steps' latency.
            let m = n.div_ceil(r);
            let coll = match c.class {
                KernelClass::AllReduce => Collective::AllReduce,
                KernelClass::AllGather => Collective::AllGather,
                _ => Collective::ReduceScatter,
            };
            // Several launches (as `network::price_comm`): each its own call of `bytes / n`.
            let calls = f64::from(c.launches.max(1));
            let plan = f.collective_plan(coll, c.bytes / calls, Group::new(n, r));
            let (intra, inter) = plan.map_or((0.0, 0.0), |p| {
                (calls * p.nvlink_flow_bytes(), calls * p.nic_flow_bytes())
            });
            let lat = match plan {
                Some(p) => self.lat(calls * (base + p.intra_steps * ai + p.inter_steps * ae)),
                None => 0,
            };
            // A ring over more nodes than one leaf group holds crosses the leaves' up-links
            // (as `Fabric` prices it at the cross-leaf rate).
            let spans_leaves = m > f.nodes_per_leaf();
            for gi in c.first as usize..(c.first + c.members) as usize {
                // Each GPU sends and receives the same amount by symmetry (a ring's successor
                // and predecessor, a chain's and tree's up and down), so one flow per port pair.
                self.path.clear();
                self.path
                    .extend([link(gi, Port::NvlOut), link(gi, Port::NvlIn)]);
                self.flow(id, intra, lat, now, &mut pending, &mut done_at);
                let mut path = std::mem::take(&mut self.path);
                self.net.paths.ring_inter(gi, spans_leaves, &mut path);
                self.path = path;
                self.flow(id, inter, lat, now, &mut pending, &mut done_at);
            }
        }
        self.finish_launch(id, pending, done_at, out);
    }

    /// Collective `id`'s flows are started: `pending` of them, done at `done_at` at the earliest.
    fn finish_launch(&mut self, id: u32, pending: u32, done_at: u64, out: &mut Vec<(SimTime, Ev)>) {
        let cl = &mut self.colls[id as usize];
        cl.flows = pending;
        cl.done_at = done_at;
        for &(t, fl, gen) in &self.scratch {
            out.push((SimTime::from_nanos(t), Ev::Flow { flow: fl, gen }));
        }
        if pending == 0 {
            out.push((SimTime::from_nanos(done_at), Ev::Coll(id)));
        }
    }

    /// Start one flow of collective `id` on the links in `self.path` (none for no bytes: only
    /// its latency counts).
    pub(super) fn flow(
        &mut self,
        id: u32,
        bytes: f64,
        lat_ns: u64,
        now: u64,
        pending: &mut u32,
        done_at: &mut u64,
    ) {
        *done_at = (*done_at).max(now + lat_ns);
        if bytes > 0.0 {
            *pending += 1;
            let fl = self
                .net
                .start(now, bytes, &self.path, id, lat_ns, &mut self.scratch);
            self.sharing.clear();
            self.net.sharing(fl, &mut self.sharing);
            for k in 0..self.sharing.len() {
                let other = self.sharing[k];
                self.count_contention(id);
                self.count_contention(other);
            }
        }
    }

    /// One meeting on a port for collective `id`'s kind of communication.
    pub(super) fn count_contention(&mut self, id: u32) {
        let c = &self.colls[id as usize];
        let n = if c.p2p.is_some() {
            &mut self.contention.p2p
        } else if c.class == KernelClass::AllToAll {
            &mut self.contention.all_to_all
        } else if c.async_ || c.layer.is_none() {
            &mut self.contention.grad_sync
        } else {
            &mut self.contention.other
        };
        *n += 1;
    }

    /// Member `k` of all-to-all `id` issued it at `now`: start its rank-pair flows with every
    /// peer that has issued already (a pair's transfer needs both sides posted, as NCCL's
    /// grouped send/receive that Megatron-LM's all-to-all is made of); the member completes when
    /// all its own flows, sent and received, have drained — not when the whole group has — so
    /// a hot rank holds up exactly the peers that exchange tokens with it.
    pub(super) fn pair_arrive(
        &mut self,
        id: u32,
        k: usize,
        now: u64,
        out: &mut Vec<(SimTime, Ev)>,
    ) {
        let c = self.colls[id as usize];
        let g = self.g;
        let (first, n) = (c.first as usize, c.members as usize);
        let base = c.issued as usize;
        let ml = g.moe_layer(c.layer);
        let bytes = |i: usize, j: usize| match ml {
            _ if c.fixed_pair > 0.0 => f64::from(u8::from(i != j)) * c.fixed_pair,
            // Towards the experts `i` sends its tokens for `j`'s experts; back, the results of
            // `i`'s experts for `j`'s tokens.
            Some(ml) if c.to_experts => c.width * g.sent(ml, i, j),
            Some(ml) => c.width * g.sent(ml, j, i),
            None => 0.0,
        };
        let f = self.fabric;
        let node = |x: usize| g.node[first + x];
        let same_node = (0..n).filter(|&x| node(x) == node(k)).count() as f64;
        // Latency as `Fabric::all_to_all_s`: one per peer, inside the node and across.
        let lat_i = self.lat(COLLECTIVE_BASE_LATENCY_S + (same_node - 1.0) * f.intra.latency_s);
        let lat_e =
            self.lat(COLLECTIVE_BASE_LATENCY_S + (n as f64 - same_node) * f.inter.latency_s);
        self.arrived[base + k] = true;
        self.done_at[base + k] = now + lat_i.min(lat_e);
        let mut pend = 0;
        self.scratch.clear();
        for j in 0..n {
            if j == k {
                continue;
            }
            for (a, b) in [(k, j), (j, k)] {
                let x = bytes(a, b);
                if x <= 0.0 {
                    continue;
                }
                pend += 1;
                if !self.arrived[base + j] {
                    continue;
                }
                let mut path = std::mem::take(&mut self.path);
                let intra = self.net.paths.gpu_to_gpu(first + a, first + b, &mut path);
                let lat = if intra { lat_i } else { lat_e };
                let fl = self.net.add(now, x, &path, id, lat);
                self.path = path;
                self.net.flows[fl as usize].ends = [a as u32, b as u32];
                self.batch.push(fl);
            }
        }
        // The member's flows start together: each link is re-timed once for all of them.
        let batch = std::mem::take(&mut self.batch);
        self.net.retime_batch(&batch, now, &mut self.scratch);
        self.count_batch_contention(&batch, id);
        self.batch = batch;
        self.batch.clear();
        self.pend[base + k] += pend;
        for &(t, fl, gen) in &self.scratch {
            out.push((SimTime::from_nanos(t), Ev::Flow { flow: fl, gen }));
        }
        if self.pend[base + k] == 0 {
            out.push((
                SimTime::from_nanos(self.done_at[base + k]),
                Ev::Member {
                    coll: id,
                    k: k as u32,
                },
            ));
        }
    }

    /// Rank-pair flow `f` drained at `now`: both its members have one flow less to wait for.
    pub(super) fn pair_drained(&mut self, f: &Flow, now: u64, out: &mut Vec<(SimTime, Ev)>) {
        let base = self.colls[f.coll as usize].issued as usize;
        for m in f.ends {
            let x = base + m as usize;
            self.done_at[x] = self.done_at[x].max(now + f.lat_ns);
            self.pend[x] -= 1;
            // A member that has not issued yet still counts its own flows on arrival.
            if self.pend[x] == 0 && self.arrived[x] {
                out.push((
                    SimTime::from_nanos(self.done_at[x]),
                    Ev::Member { coll: f.coll, k: m },
                ));
            }
        }
    }
}
