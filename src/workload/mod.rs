//! Model architecture -> parameters, memory and per-step operations (FLOPs, bytes, messages) under a parallelism plan.

pub mod arch;
mod error;
pub mod memory;
pub mod model;
pub mod ops;
pub mod plan;
pub mod precision;
pub mod step_ops;

pub use arch::{Act, Arch, MlaSpec, NormKind, RouterScore};
pub use error::WorkloadError;
pub use memory::{check_fits, memory_per_gpu, MemoryBreakdown, GIB};
pub use model::{presets, FfnKind, ModelSpec, MoeSpec};
pub use ops::{
    dp_grad_bytes_per_gpu, dp_grad_sync, embedding_work_bytes, head_work, layer_work,
    micro_batch_tokens, optimizer_update_bytes, AttnCore, Gemm, GradSync, LayerWork, MoeWork,
};
pub use plan::{ParallelPlan, Recompute};
pub use precision::{Precision, UnknownPrecision};
