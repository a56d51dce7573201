//! Model architecture -> parameters, memory and per-step operations (FLOPs, bytes, messages) under a parallelism plan.

pub mod arch;
pub mod enc_dec;
mod error;
pub mod memory;
pub mod model;
mod model_evolved;
mod model_positions;
pub mod plan;
pub mod precision;
pub mod step_ops;

pub use arch::{Act, Arch, Block, BlockKind, EtSpec, MlaSpec, NormKind, RouterScore};
pub use enc_dec::EncDecSpec;
pub use error::WorkloadError;
pub use memory::{
    check_fits, check_fits_under, memory_per_gpu, memory_per_gpu_under, MemoryBreakdown,
    MemoryStates, GIB,
};
pub use model::{presets, FfnKind, ModelSpec, MoeSpec};
pub use plan::{ParallelPlan, PipelineKind, Recompute, Schedule};
pub use precision::{Precision, UnknownPrecision};
