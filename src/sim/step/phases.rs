//! The phase split of one step: how long each phase of the step lasts and the GPU energy drawn in it
//! (compute, exposed communication inside forward/backward, gradient sync, optimizer, rebalancing).

/// The phases of a step, in the order they run (the names waveform.csv uses).
pub const PHASE_NAMES: [&str; PHASES] = [
    "compute",
    "exposed_comm",
    "grad_sync",
    "optimizer",
    "rebalance",
];

/// Number of phases of a step.
pub const PHASES: usize = 5;

/// One step's time and GPU energy by phase. The step model puts the phases end to end in this
/// order: forward/backward compute, `exposed_comm`: the exposed communication of forward/backward (all-to-alls,
/// tensor-parallel collectives, pipeline sends on the critical path) as one contiguous segment,
/// the exposed gradient sync, the optimizer, and an expert migration when the step rebalances.
/// The durations sum to the step's time and the energies to its GPU energy (all zero for a step
/// priced without a split, the event level: it is then one phase).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepPhases {
    /// Duration of each phase [s].
    pub time_s: [f64; PHASES],
    /// GPU energy of all GPUs of the job in each phase [J].
    pub gpu_j: [f64; PHASES],
}

/// The inputs of a split, all for the whole job and one step.
pub(super) struct SplitInputs {
    /// Pipeline (forward/backward) makespan [s].
    pub pipe_s: f64,
    /// Communication time on the pipeline's critical path [s].
    pub pipe_comm_s: f64,
    /// Exposed gradient sync (and ZeRO-3 edge gathers) [s].
    pub sync_s: f64,
    /// Optimizer update and parameter all-gathers [s].
    pub opt_s: f64,
    /// Dynamic energy of the optimizer's compute [J].
    pub opt_dyn_j: f64,
    /// GPU-seconds the optimizer computes [s].
    pub opt_busy_gpu_s: f64,
    /// Expert migration of a rebalancing step [s].
    pub migration_s: f64,
    /// GPU energy of the whole step [J].
    pub gpu_energy_j: f64,
    /// GPUs in the job.
    pub gpus: f64,
    /// Idle and spin (waiting in a collective) power of one GPU [W].
    pub idle_w: f64,
    /// Power of one GPU spinning in a collective [W].
    pub spin_w: f64,
}

impl StepPhases {
    /// Split a step: the gradient sync and migration have every GPU waiting at spin power (the
    /// step model's waiting rule); the optimizer draws its ops' dynamic energy, idle power, and spin
    /// power on the GPU-seconds it does not compute; forward/backward gets the rest of the step's
    /// energy, of which the exposed communication is every GPU at spin power (bounded so the
    /// compute part keeps at least idle power). With pipeline parallelism this approximates: while
    /// one stage communicates on the critical path another may compute.
    pub(super) fn split(x: &SplitInputs) -> StepPhases {
        let (g, idle, spin) = (x.gpus, x.idle_w, x.spin_w);
        let comm_s = x.pipe_comm_s.clamp(0.0, x.pipe_s.max(0.0));
        let compute_s = (x.pipe_s - comm_s).max(0.0);
        let sync_j = g * spin * x.sync_s;
        let migr_j = g * spin * x.migration_s;
        let opt_j = g * idle * x.opt_s
            + x.opt_dyn_j
            + (spin - idle) * (g * x.opt_s - x.opt_busy_gpu_s).max(0.0);
        let pipe_j = x.gpu_energy_j - sync_j - migr_j - opt_j;
        let comm_j = (g * spin * comm_s)
            .min(pipe_j - g * idle * compute_s)
            .max(0.0);
        StepPhases {
            time_s: [compute_s, comm_s, x.sync_s, x.opt_s, x.migration_s],
            gpu_j: [pipe_j - comm_j, comm_j, sync_j, opt_j, migr_j],
        }
    }

    /// Whether the step has a split (the event level leaves it empty).
    pub fn is_split(&self) -> bool {
        self.time_s.iter().any(|&t| t > 0.0)
    }
}
