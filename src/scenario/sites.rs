//! A multi-region job as a scenario describes it: its sites, the WAN between them and the planner's settings.

use crate::cost::CostSpec;
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

/// What the multi-region planners minimise (`multisite.objective`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteObjective {
    /// Emissions of the sites and the WAN [kg CO2e].
    Co2,
    /// Every cost term of the sites and the WAN: electricity, carbon price, compute-hour tax, levy.
    Cost,
}

impl SiteObjective {
    /// Every objective with its name in scenario files.
    pub const ALL: [(SiteObjective, &'static str); 2] =
        [(SiteObjective::Co2, "co2"), (SiteObjective::Cost, "cost")];

    /// The name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            SiteObjective::Co2 => "co2",
            SiteObjective::Cost => "cost",
        }
    }
}

/// Where a site's cost terms come from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostOrigin {
    /// No `[cost]` anywhere: electricity at the grid's price only.
    None,
    /// The site's own `[site.cost]` (keys it leaves out taken from `[cost]`).
    Site,
    /// The top-level `[cost]`'s carbon price, tax and levy (the site has no `[site.cost]`).
    TopLevel,
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
    /// The site's cost terms and carbon forecast: `[site.cost]`, its missing carbon price, tax and
    /// levy taken from the top-level `[cost]`; or those three of `[cost]` alone (never its electricity
    /// price, forecast or hints, which describe `[grid]`'s region). None without either table.
    pub cost: Option<CostSpec>,
    /// Where `cost` comes from.
    pub cost_origin: CostOrigin,
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
    /// What the planners minimise.
    pub objective: SiteObjective,
}

impl SitesSpec {
    /// The WAN link between sites `x` and `y` (validation guarantees one per pair).
    pub fn link(&self, x: usize, y: usize) -> Option<&WanLink> {
        self.wan.iter().find(|l| l.joins(x, y))
    }
}
