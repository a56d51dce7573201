//! Validation of `[cluster]`: accelerator, node shape, links, PUE and weather-driven cooling.

use super::super::raw::*;
use super::super::*;
use super::Validator;
use crate::grid::PueModel;
use crate::hardware;
use crate::network::{self, Fabric};

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
        let intra = match &c.intra_node_link {
            Some(k) => {
                network::link_preset(k)
                    .map_err(|e| self.loc.invalid("cluster.intra_node_link", e.to_string()))?
                    .link
            }
            None => network::Link {
                bw_bytes_per_s: accelerator.intra_node_bw_bytes_per_s,
                latency_s: accelerator.intra_node_latency_s,
            },
        };
        let inter = network::link_preset(&c.inter_node_link)
            .map_err(|e| self.loc.invalid("cluster.inter_node_link", e.to_string()))?
            .link;
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
        let nodes = gpus.div_ceil(gpus_per_node);
        let mut fabric = Fabric::new(intra, inter, gpus_per_node.min(gpus), nodes);
        fabric.oversubscription = oversubscription;
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
}
