//! Validation of `[cluster]`: accelerator, node shape, links, PUE and weather-driven cooling.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::grid::PueModel;
use crate::hardware;
use crate::network::{self, Fabric, FatTree, InterconnectKind, Topology};

impl Validator<'_> {
    pub(super) fn cluster(&self, c: &RawCluster) -> Result<Cluster, ScenarioError> {
        let accelerator = match (&c.gpu, &c.gpu_file) {
            (Some(k), None) => {
                hardware::preset(k).map_err(|e| self.loc.invalid("cluster.gpu", e.to_string()))?
            }
            (None, Some(f)) => hardware::read_preset_file(&self.path(f))
                .map_err(|e| self.loc.invalid("cluster.gpu_file", e.to_string()))?,
            (Some(_), Some(_)) => {
                return Err(self.loc.invalid(
                    "cluster.gpu_file",
                    "give either `gpu` (a preset key) or `gpu_file` (a preset TOML file), not both",
                ))
            }
            (None, None) => {
                return Err(self.loc.invalid(
                    "cluster",
                    format!(
                        "needs `gpu` (a preset key: {}) or `gpu_file` (a preset TOML file written by `moesim calibrate`)",
                        hardware::PRESET_KEYS.join(", ")
                    ),
                ))
            }
        };
        let gpus = self.count("cluster.gpus", c.gpus)?;
        let gpus_per_node = match c.gpus_per_node {
            Some(n) => self.count("cluster.gpus_per_node", n)?,
            None => accelerator.gpus_per_node,
        };
        if gpus > gpus_per_node && gpus % gpus_per_node != 0 {
            return Err(self.loc.invalid(
                "cluster.gpus",
                format!("{gpus} GPUs do not fill whole nodes of {gpus_per_node}; use a multiple of {gpus_per_node} (e.g. {} or {})", gpus / gpus_per_node * gpus_per_node, gpus.div_ceil(gpus_per_node) * gpus_per_node),
            ));
        }
        let intra_preset = match &c.intra_node_link {
            Some(k) => Some(
                network::link_preset(k)
                    .map_err(|e| self.loc.invalid("cluster.intra_node_link", e.to_string()))?,
            ),
            None => None,
        };
        let intra = match intra_preset {
            Some(p) => p.link,
            None => network::Link {
                bw_bytes_per_s: accelerator.intra_node_bw_bytes_per_s,
                latency_s: accelerator.intra_node_latency_s,
                // Not read on an intra link (INTRA_BUSBW_EFFICIENCY applies there).
                busbw_efficiency: network::INTER_BUSBW_EFFICIENCY,
            },
        };
        let inter_preset = network::link_preset(&c.inter_node_link)
            .map_err(|e| self.loc.invalid("cluster.inter_node_link", e.to_string()))?;
        let inter = inter_preset.link;
        if !(c.pue.is_finite() && (1.0..=3.0).contains(&c.pue)) {
            return Err(self.loc.invalid(
                "cluster.pue",
                format!(
                    "power usage effectiveness must be in [1.0, 3.0], got {}",
                    c.pue
                ),
            ));
        }
        let node_overhead_w = match c.node_overhead_w {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            Some(w) => {
                return Err(self
                    .loc
                    .invalid("cluster.node_overhead_w", format!("must be ≥ 0 W, got {w}")))
            }
            None => accelerator.node_overhead_w,
        };
        let power_cap_w = match c.power_cap_w {
            Some(w) if w >= accelerator.min_power_cap_w && w <= accelerator.tdp_w => w,
            Some(w) => {
                return Err(self.loc.invalid(
                    "cluster.power_cap_w",
                    format!(
                        "{w} W is outside the {} power-limit range {}..={} W",
                        accelerator.name, accelerator.min_power_cap_w, accelerator.tdp_w
                    ),
                ))
            }
            None => accelerator.tdp_w,
        };
        let oversubscription = match c.oversubscription {
            Some(o) if o.is_finite() && o >= 1.0 => o,
            Some(o) => {
                return Err(self.loc.invalid(
                    "cluster.oversubscription",
                    format!("fat-tree oversubscription must be ≥ 1 (1 = full bisection), got {o}"),
                ))
            }
            None => 1.0,
        };
        let weather_pue = match (&c.weather, &c.pue_model) {
            (None, None) => None,
            (Some(w), Some(m)) => {
                let model = PueModel::by_name(m).map_err(|e| self.loc.invalid("cluster.pue_model", e.to_string()))?;
                Some((self.path(w), model))
            }
            (Some(_), None) => return Err(self.loc.invalid("cluster.pue_model", "a weather file needs `pue_model` (chiller or free_cooled) to turn temperature into PUE")),
            (None, Some(_)) => return Err(self.loc.invalid("cluster.weather", "`pue_model` needs `weather = \"path/to/file.epw\"` (hourly typical-year weather)")),
        };
        let is_tpu = accelerator.key.starts_with("tpu");
        let fabric = match &c.torus {
            Some(dims) => {
                let dims = self.torus_dims(dims, gpus, gpus_per_node)?;
                let ici = match intra_preset {
                    Some(p) if p.kind == InterconnectKind::TpuIci => p.link,
                    Some(p) => {
                        return Err(self.loc.invalid(
                            "cluster.intra_node_link",
                            format!("a torus is built of ICI links; `{}` is {} — use tpu-v3-ici or tpu-v4-ici", p.key, p.kind),
                        ))
                    }
                    None => match accelerator.key.as_str() {
                        "tpu-v3" => network::link_preset("tpu-v3-ici").map_err(|e| self.loc.invalid("cluster.intra_node_link", e.to_string()))?.link,
                        "tpu-v4" => network::link_preset("tpu-v4-ici").map_err(|e| self.loc.invalid("cluster.intra_node_link", e.to_string()))?.link,
                        k => {
                            return Err(self.loc.invalid(
                                "cluster.intra_node_link",
                                format!("a torus needs its ICI link: give `intra_node_link` = tpu-v3-ici or tpu-v4-ici (accelerator `{k}` has no default ICI link)"),
                            ))
                        }
                    },
                };
                let mut f = Fabric::torus(ici, inter, gpus_per_node.min(gpus), gpus, dims)
                    .map_err(|e| self.loc.invalid("cluster.torus", e.to_string()))?;
                f.oversubscription = oversubscription;
                f
            }
            None if is_tpu => {
                return Err(self.loc.invalid(
                    "cluster.torus",
                    format!(
                        "TPU chips are joined by an ICI torus, not a fat-tree: give the slice shape, e.g. `torus = {:?}` for {gpus} chips (one slice; or a smaller slice that divides {gpus}, the slices then joined by `inter_node_link = \"dcn-tpu\"`)",
                        suggest_torus(gpus, if accelerator.key == "tpu-v3" { 2 } else { 3 })
                    ),
                ))
            }
            None => {
                let nodes = gpus.div_ceil(gpus_per_node);
                let mut f = Fabric::new(intra, inter, gpus_per_node.min(gpus), nodes);
                f.oversubscription = oversubscription;
                let radix = if inter_preset.switch_radix >= 2 {
                    inter_preset.switch_radix
                } else {
                    network::SWITCH_RADIX
                };
                f.topology = Topology::FatTree(FatTree { radix });
                f
            }
        };
        Ok(Cluster {
            accelerator,
            gpus,
            gpus_per_node,
            fabric,
            pue: c.pue,
            release_nodes_when_paused: c.release_nodes_when_paused,
            node_overhead_w,
            power_cap_w,
            weather_pue,
        })
    }

    /// `cluster.torus`: 1 to 3 positive chip counts whose product (one slice) divides the chip
    /// count and is a whole number of hosts.
    fn torus_dims(
        &self,
        dims: &[i64],
        gpus: u32,
        per_host: u32,
    ) -> Result<[u32; 3], ScenarioError> {
        let key = "cluster.torus";
        if dims.is_empty() || dims.len() > 3 {
            return Err(self.loc.invalid(
                key,
                format!("give 1 to 3 chips-per-dimension numbers (TPU v3: 2-D, e.g. [32, 32]; TPU v4: 3-D, e.g. [16, 16, 16]), got {} numbers", dims.len()),
            ));
        }
        let mut out = [1u32; 3];
        for (o, &d) in out.iter_mut().zip(dims) {
            *o = self.count(key, d)?;
        }
        let slice: u64 = out.iter().map(|&d| u64::from(d)).product();
        if !u64::from(gpus).is_multiple_of(slice) {
            return Err(self.loc.invalid(
                key,
                format!("a slice of {dims:?} = {slice} chips does not divide the {gpus} chips of `cluster.gpus`; the job is a whole number of slices (e.g. `torus = {:?}`)", suggest_torus(gpus, dims.len().max(2))),
            ));
        }
        if gpus > per_host && !slice.is_multiple_of(u64::from(per_host)) {
            return Err(self.loc.invalid(
                key,
                format!("a slice of {slice} chips is not a whole number of hosts of {per_host} chips (`gpus_per_node`)"),
            ));
        }
        Ok(out)
    }
}

/// A near-cubic (or near-square) torus shape for `n` chips in `d` dimensions, for error hints.
fn suggest_torus(n: u32, d: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(d);
    let mut rem = n.max(1);
    for left in (1..=d).rev() {
        if left == 1 {
            out.push(rem);
            break;
        }
        let target = f64::from(rem).powf(1.0 / left as f64).round().max(1.0) as u32;
        // Largest divisor of `rem` not above the target.
        let pick = (1..=target.max(1))
            .rev()
            .find(|q| rem.is_multiple_of(*q))
            .unwrap_or(1);
        out.push(pick);
        rem /= pick;
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::super::super::{parse_scenario, Scenario, DEFAULT_SCENARIO};
    use crate::network::{FatTree, Topology, Torus};
    use std::path::Path;

    const H100_CLUSTER: &str = "[cluster]\ngpu = \"h100\"\ngpus = 16\ngpus_per_node = 8\nintra_node_link = \"nvlink4\"\ninter_node_link = \"ib-ndr\"\n";

    /// The embedded scenario with the first lines of its `[cluster]` table replaced by `cluster`.
    fn with_cluster(cluster: &str) -> Result<Scenario, String> {
        let mut text = DEFAULT_SCENARIO.replacen(H100_CLUSTER, cluster, 1);
        assert_ne!(text, DEFAULT_SCENARIO, "the [cluster] lines were not found");
        if cluster.contains("tpu") {
            // TPUs have no settable power cap: drop the circadian throttle's H100 cap.
            let cap = text.lines().find(|l| l.starts_with("throttle_power_cap_w"));
            if let Some(line) = cap.map(str::to_string) {
                text = text.replacen(&format!("{line}\n"), "", 1);
            }
        }
        parse_scenario("s.toml", &text, Path::new(".")).map_err(|e| e.to_string())
    }

    fn tpu(extra: &str) -> String {
        format!("[cluster]\ngpu = \"tpu-v4\"\ngpus = 16\ngpus_per_node = 4\ninter_node_link = \"dcn-tpu\"\n{extra}")
    }

    fn err(cluster: &str) -> String {
        with_cluster(cluster).err().unwrap_or_default()
    }

    #[test]
    fn a_torus_scenario_builds_a_torus_fabric_with_the_chips_ici_link() {
        let s = with_cluster(&tpu("torus = [2, 2, 4]\n")).unwrap_or_else(|e| panic!("{e}"));
        let f = s.cluster.fabric;
        assert_eq!(f.topology, Topology::Torus(Torus { dims: [2, 2, 4] }));
        assert!((f.intra.bw_bytes_per_s - 1.1e15 / 4096.0 / 6.0).abs() < 1.0);
        assert_eq!(f.switch_power_w(), 0.0);
        // A 2-D torus and a v3 chip take the v3 link.
        let v3 = tpu("torus = [4, 4]\n").replace("tpu-v4", "tpu-v3");
        let s = with_cluster(&v3).unwrap_or_else(|e| panic!("{e}"));
        assert!((s.cluster.fabric.intra.bw_bytes_per_s - 340e12 / 4096.0).abs() < 1.0);
    }

    #[test]
    fn torus_dims_that_do_not_match_the_chip_count_are_refused() {
        let e = err(&tpu("torus = [3, 3, 3]\n"));
        assert!(
            e.contains("cluster.torus") && e.contains("does not divide") && e.contains("16"),
            "{e}"
        );
        let e = err(&tpu("torus = [2, 2, 2, 2]\n"));
        assert!(e.contains("cluster.torus") && e.contains("1 to 3"), "{e}");
        let e = err(&tpu("torus = []\n"));
        assert!(e.contains("cluster.torus") && e.contains("1 to 3"), "{e}");
        let e = err(&tpu("torus = [4, 0]\n"));
        assert!(
            e.contains("cluster.torus") && e.contains("positive integer"),
            "{e}"
        );
        // Slices of 2 chips on hosts of 4.
        let e = err(&tpu("torus = [2, 1]\n"));
        assert!(
            e.contains("cluster.torus") && e.contains("whole number of hosts"),
            "{e}"
        );
    }

    #[test]
    fn a_tpu_needs_a_torus_and_a_torus_needs_ici() {
        let e = err(&tpu(""));
        assert!(
            e.contains("cluster.torus") && e.contains("ICI torus") && e.contains("torus = ["),
            "{e}"
        );
        let e = err(&tpu("intra_node_link = \"nvlink4\"\ntorus = [4, 4]\n"));
        assert!(
            e.contains("cluster.intra_node_link") && e.contains("tpu-v4-ici"),
            "{e}"
        );
        let h100_torus = H100_CLUSTER.replace("[cluster]\n", "[cluster]\ntorus = [4, 4]\n");
        let e = err(&h100_torus);
        assert!(
            e.contains("cluster.intra_node_link") && e.contains("ICI"),
            "{e}"
        );
    }

    #[test]
    fn oversubscription_and_the_leaf_radix_come_from_the_scenario_and_the_link() {
        let over = format!("{H100_CLUSTER}oversubscription = 2.0\n");
        let s = with_cluster(&over).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.cluster.fabric.oversubscription, 2.0);
        assert_eq!(
            s.cluster.fabric.topology,
            Topology::FatTree(FatTree { radix: 64 })
        );
        assert_eq!(s.cluster.fabric.nodes_per_leaf(), 42);
        let roce = H100_CLUSTER.replace("ib-ndr", "roce-400");
        let s = with_cluster(&roce).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.cluster.fabric.topology,
            Topology::FatTree(FatTree { radix: 128 })
        );
        for bad in ["0.5", "-1.0", "nan"] {
            let e = err(&format!("{H100_CLUSTER}oversubscription = {bad}\n"));
            assert!(
                e.contains("cluster.oversubscription") && e.contains("≥ 1"),
                "{bad}: {e}"
            );
        }
        let e = err(&H100_CLUSTER.replace("ib-ndr", "myrinet"));
        assert!(
            e.contains("cluster.inter_node_link") && e.contains("opa-100"),
            "{e}"
        );
    }
}
