//! Expert placement on expert-parallel ranks: contiguous, round-robin, by load, or with replicas of hot
//! experts (as DeepSeek's EPLB does), and what moving to a new placement costs.

/// How experts are placed on ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementPolicy {
    /// Rank r holds experts r·E/ep .. (r+1)·E/ep (the usual default).
    Contiguous,
    /// Expert e on rank e mod ep.
    RoundRobin,
    /// Longest-processing-time packing of experts by load, E/ep per rank.
    ByLoad,
    /// `extra` more slots per rank hold replicas of the hottest experts (load split evenly among an
    /// expert's replicas), then packed by load.
    Replicate {
        /// Extra expert slots per rank.
        extra: u32,
    },
}

/// Placement of every MoE layer's experts: per layer and rank, its slots (expert, share of that expert's load).
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    ranks: usize,
    experts: usize,
    layers: usize,
    /// Per layer, rank: start of its slots in `slot_expert`/`slot_frac` (layers × (ranks + 1) entries).
    offsets: Vec<usize>,
    slot_expert: Vec<u32>,
    slot_frac: Vec<f64>,
}

impl Placement {
    /// Place `experts` experts of each of `layers` layers on `ranks` ranks (ranks divides experts); `shares`
    /// (layers × experts) are the loads used by load-aware policies.
    pub fn new(
        policy: PlacementPolicy,
        layers: usize,
        experts: usize,
        ranks: usize,
        shares: &[f64],
    ) -> Self {
        let ranks = ranks.max(1);
        let per_rank = experts / ranks;
        let mut offsets = Vec::with_capacity(layers * (ranks + 1));
        let (mut slot_expert, mut slot_frac) = (Vec::new(), Vec::new());
        for l in 0..layers {
            let load = shares.get(l * experts..(l + 1) * experts).unwrap_or(&[]);
            let load = |e: usize| load.get(e).copied().unwrap_or(1.0 / experts as f64);
            let mut by_rank: Vec<Vec<(u32, f64)>> = vec![Vec::new(); ranks];
            match policy {
                PlacementPolicy::Contiguous => {
                    for e in 0..experts {
                        by_rank[(e / per_rank.max(1)).min(ranks - 1)].push((e as u32, 1.0));
                    }
                }
                PlacementPolicy::RoundRobin => {
                    for e in 0..experts {
                        by_rank[e % ranks].push((e as u32, 1.0));
                    }
                }
                PlacementPolicy::ByLoad | PlacementPolicy::Replicate { .. } => {
                    let extra = match policy {
                        PlacementPolicy::Replicate { extra } => extra as usize,
                        _ => 0,
                    };
                    // Replicas: give each extra slot to the expert with the highest load per replica.
                    let mut replicas = vec![1usize; experts];
                    for _ in 0..extra * ranks {
                        let hot = (0..experts).max_by(|&a, &b| {
                            (load(a) / replicas[a] as f64)
                                .total_cmp(&(load(b) / replicas[b] as f64))
                                .then(b.cmp(&a))
                        });
                        if let Some(h) = hot {
                            replicas[h] += 1;
                        }
                    }
                    let mut items: Vec<(usize, f64)> = (0..experts)
                        .flat_map(|e| {
                            std::iter::repeat_n((e, load(e) / replicas[e] as f64), replicas[e])
                        })
                        .collect();
                    items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    let cap = per_rank + extra;
                    let mut rank_load = vec![0.0f64; ranks];
                    for (e, w) in items {
                        // The least-loaded rank with a free slot, preferring one without this expert yet.
                        let pick = (0..ranks)
                            .filter(|&r| by_rank[r].len() < cap)
                            .min_by(|&a, &b| {
                                let has = |r: usize| by_rank[r].iter().any(|s| s.0 as usize == e);
                                has(a)
                                    .cmp(&has(b))
                                    .then(rank_load[a].total_cmp(&rank_load[b]))
                                    .then(a.cmp(&b))
                            })
                            .unwrap_or(0);
                        by_rank[pick].push((e as u32, 1.0 / replicas[e] as f64));
                        rank_load[pick] += w;
                    }
                }
            }
            for slots in by_rank {
                offsets.push(slot_expert.len());
                for (e, f) in slots {
                    slot_expert.push(e);
                    slot_frac.push(f);
                }
            }
            offsets.push(slot_expert.len());
        }
        // `offsets` holds ranks + 1 entries per layer: the rank starts, then the layer's end.
        Self {
            ranks,
            experts,
            layers,
            offsets,
            slot_expert,
            slot_frac,
        }
    }

    /// Expert-parallel ranks.
    pub fn ranks(&self) -> usize {
        self.ranks
    }

    /// Most slots on any rank of any layer.
    pub fn max_slots_per_rank(&self) -> usize {
        (0..self.layers)
            .flat_map(|l| (0..self.ranks).map(move |r| (l, r)))
            .map(|(l, r)| self.slots(l, r).0.len())
            .max()
            .unwrap_or(0)
    }

    /// The slots of `rank` in `layer`: experts and the share of each expert's load they take.
    pub fn slots(&self, layer: usize, rank: usize) -> (&[u32], &[f64]) {
        let base = layer * (self.ranks + 1);
        let (a, b) = (self.offsets[base + rank], self.offsets[base + rank + 1]);
        (&self.slot_expert[a..b], &self.slot_frac[a..b])
    }

    /// Most expert slots any rank must receive to move from `self` to `next` (summed over layers).
    pub fn incoming_slots(&self, next: &Placement) -> usize {
        let mut worst = 0;
        for r in 0..self.ranks.min(next.ranks) {
            let mut n = 0;
            for l in 0..self.layers.min(next.layers) {
                let (old, _) = self.slots(l, r);
                let (new, _) = next.slots(l, r);
                n += new.iter().filter(|e| !old.contains(e)).count();
            }
            worst = worst.max(n);
        }
        worst
    }

    /// Experts per layer.
    pub fn experts(&self) -> usize {
        self.experts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank_loads(p: &Placement, shares: &[f64], l: usize) -> Vec<f64> {
        (0..p.ranks())
            .map(|r| {
                let (e, f) = p.slots(l, r);
                e.iter()
                    .zip(f)
                    .map(|(&e, &f)| shares[l * p.experts() + e as usize] * f)
                    .sum()
            })
            .collect()
    }

    #[test]
    fn every_policy_places_every_expert_load_exactly_once() {
        let shares: Vec<f64> = (0..16).map(|i| (i + 1) as f64 / 136.0).collect();
        for policy in [
            PlacementPolicy::Contiguous,
            PlacementPolicy::RoundRobin,
            PlacementPolicy::ByLoad,
            PlacementPolicy::Replicate { extra: 1 },
        ] {
            let p = Placement::new(policy, 1, 16, 4, &shares);
            let mut per_expert = [0.0; 16];
            for r in 0..4 {
                let (e, f) = p.slots(0, r);
                for (&e, &f) in e.iter().zip(f) {
                    per_expert[e as usize] += f;
                }
            }
            assert!(
                per_expert.iter().all(|&x| (x - 1.0).abs() < 1e-12),
                "{policy:?}: {per_expert:?}"
            );
        }
    }

    #[test]
    fn load_aware_placement_and_replicas_flatten_the_hottest_rank() {
        // One very hot expert: contiguous leaves its rank the straggler; replicas share it out.
        let mut shares = vec![0.04; 16];
        shares[0] = 0.4;
        let max = |p: &Placement| rank_loads(p, &shares, 0).into_iter().fold(0.0, f64::max);
        let contiguous = Placement::new(PlacementPolicy::Contiguous, 1, 16, 4, &shares);
        let by_load = Placement::new(PlacementPolicy::ByLoad, 1, 16, 4, &shares);
        let replicated = Placement::new(PlacementPolicy::Replicate { extra: 1 }, 1, 16, 4, &shares);
        assert!(max(&by_load) < max(&contiguous) + 1e-12);
        assert!(
            max(&replicated) < max(&by_load) * 0.7,
            "{} vs {}",
            max(&replicated),
            max(&by_load)
        );
        assert_eq!(replicated.max_slots_per_rank(), 5);
        assert!(contiguous.incoming_slots(&replicated) > 0);
        assert_eq!(contiguous.incoming_slots(&contiguous), 0);
    }
}
