//! Interconnect models: links and their presets, the GPU fabric, and α–β collective cost models.
//!
//! * [`link`]: a [`Link`] (bandwidth and latency per direction per GPU port), the
//!   [`InterconnectKind`]s and the sourced [`LinkPreset`] table.
//! * [`fabric`]: a [`Fabric`] (NVLink/NVSwitch island per node, a fat-tree of NICs between nodes,
//!   or a TPU ICI torus) and the collective costs a step model calls millions of times
//!   (allocation-free).
//! * [`nccl`]: NCCL's ring and tree (which one its tuner picks, the bytes on each GPU's NVLink
//!   port and NIC) for all-reduce, reduce-scatter and all-gather on a fat-tree.
//! * [`topology`]: the fat-tree's leaves (oversubscription) and the torus (placement of groups,
//!   ring-per-dimension and bisection-limited collectives).
//! * [`price`]: one pricing of each communication op of the step's operation list
//!   ([`price_comm`], [`price_all_to_all`]).

pub mod fabric;
pub mod link;
pub mod nccl;
pub mod price;
pub mod topology;
pub mod wan;

pub use fabric::{
    Fabric, Group, COLLECTIVE_BASE_LATENCY_S, DEFAULT_SWITCH_POWER_W_PER_PORT,
    INTER_BUSBW_EFFICIENCY, INTRA_BUSBW_EFFICIENCY, SWITCH_RADIX,
};
pub use link::{
    link_preset, link_presets, InterconnectKind, Link, LinkPreset, EFA_P4D_BUSBW_EFFICIENCY,
};
pub use nccl::{Algo, CollPlan, Collective, TREE_BUSBW_FACTOR};
pub use price::{price_all_to_all, price_comm};
pub use topology::{FatTree, Topology, Torus};

/// Errors from building or validating network models; each names the value and what is valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// A link preset key that is not in the table.
    #[error("unknown link preset `{key}`; valid presets: {valid}")]
    UnknownPreset {
        /// The key that was asked for.
        key: String,
        /// Comma-separated list of valid keys.
        valid: String,
    },
    /// An interconnect kind name that does not parse.
    #[error("unknown interconnect `{name}`; valid kinds: {valid}")]
    UnknownInterconnect {
        /// The name that was given.
        name: String,
        /// Comma-separated list of valid names.
        valid: String,
    },
    /// A fabric field outside its valid range.
    #[error("invalid fabric field `{field}` = {value}: expected {expected}")]
    InvalidFabric {
        /// Field name, e.g. `inter.bw_bytes_per_s`.
        field: &'static str,
        /// The offending value.
        value: f64,
        /// What would be valid.
        expected: &'static str,
    },
    /// A communicator group that does not fit the fabric.
    #[error("invalid group (size {size}, ranks_per_node {ranks_per_node}): {reason}")]
    InvalidGroup {
        /// Number of ranks in the group.
        size: u32,
        /// Ranks of the group in each node.
        ranks_per_node: u32,
        /// What is wrong and what would be valid.
        reason: String,
    },
}
