//! A multi-region job as a scenario describes it: its sites, the WAN between them and the planner's settings.

use crate::grid::{GridSpec, PueModel};
use crate::network::wan::WanLink;
use std::path::PathBuf;

/// How the follow-the-night planner picks each interval's site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitePlanner {
    /// Dynamic programming over (interval, site) with a Lagrange price on progress, so the plan
    /// meets the deadline at least carbon (see `sim::multi::plan`).
    Dp,
    /// Each interval, the site of least CO2 per token, unless moving there costs more than it saves.
    Greedy,
}

impl SitePlanner {
    /// Every planner with its name in scenario files.
    pub const ALL: [(SitePlanner, &'static str); 2] =
        [(SitePlanner::Dp, "dp"), (SitePlanner::Greedy, "greedy")];

    /// The name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            SitePlanner::Dp => "dp",
            SitePlanner::Greedy => "greedy",
        }
    }
}

/// One site of a multi-region job (`[[site]]`).
#[derive(Debug, Clone)]
pub struct Site {
    /// Name (unique within the scenario).
    pub name: String,
    /// GPUs the site offers the job: its capacity.
    pub gpus: u32,
    /// Data-parallel replicas of the job that fit in `gpus` (the job's own count at most, a
    /// multiple of its expert-parallel degree that divides its global batch in micro-batches).
    pub replicas: u32,
    /// Facility PUE when no weather file is given.
    pub pue: f64,
    /// Weather-driven cooling: EPW file and PUE model.
    pub weather_pue: Option<(PathBuf, PueModel)>,
    /// The site's grid (region, profile or file, price), read as `[grid]` is.
    pub grid: GridSpec,
}

/// The sites, WAN links and planner settings of a multi-region job (`[[site]]`, `[[wan]]`, `[multisite]`).
#[derive(Debug, Clone)]
pub struct SitesSpec {
    /// The sites, in file order (indices are used by `wan`).
    pub sites: Vec<Site>,
    /// A link for every pair of sites.
    pub wan: Vec<WanLink>,
    /// The job must finish within this time of its start [s].
    pub deadline_s: f64,
    /// Follow-the-night planner.
    pub planner: SitePlanner,
    /// Geo-distributed data parallel: optimizer steps between WAN synchronisations (1 = every step).
    pub sync_every_steps: u32,
}

impl SitesSpec {
    /// The WAN link between sites `x` and `y` (validation guarantees one per pair).
    pub fn link(&self, x: usize, y: usize) -> Option<&WanLink> {
        self.wan.iter().find(|l| l.joins(x, y))
    }
}
