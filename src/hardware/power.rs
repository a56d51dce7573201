//! GPU power model: idle plus SM-activity, tensor/SIMT and memory power, held under a power limit.

/// Dynamic power coefficients of one accelerator.
///
/// While a kernel runs, board power is
/// `P(phi) = idle + (sm_active_coef_w * s + tensor_coef_w * u_t + simt_coef_w * u_s) * phi^gamma +
/// mem_coef_w * u_m` where `phi` is the SM clock over its maximum, `s` the fraction of SMs the kernel occupies,
/// `u_t`/`u_s` are the achieved fractions of tensor / SIMT peak at that clock and `u_m` the
/// achieved fraction of HBM bandwidth. The `s` term is the power of SMs that are clocked and
/// issuing (schedulers, register file, shared memory, L1/L2 traffic) whatever their FLOP rate: a
/// kernel that fills the SMs but stalls (small flash attention, loop-issued expert GEMMs, a
/// streaming copy) draws it in full, which is why power follows clock and active SMs more than FLOP
/// utilisation. Energy per FLOP grows as `phi^(gamma-1)` (voltage rises with clock), which is why a
/// cap that lowers the clock saves energy per unit of compute-bound work. If `P(1)` exceeds the
/// limit the clock falls until it fits.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerModel {
    /// Dynamic power of fully busy tensor cores at maximum clock [W].
    pub tensor_coef_w: f64,
    /// Dynamic power of fully busy SIMT fp32 units at maximum clock [W].
    pub simt_coef_w: f64,
    /// Dynamic power of HBM streaming at full bandwidth [W] (clock-independent).
    pub mem_coef_w: f64,
    /// Dynamic power of all SMs occupied by a running kernel at maximum clock, whatever its FLOP
    /// rate [W]. Absent in preset files written before it existed: then 0, the earlier model in
    /// which power followed FLOP utilisation alone (those files' coefficients were fitted so);
    /// 0 is not written out, so such a file round-trips as it was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sm_active_coef_w: f64,
    /// Exponent of dynamic power in clock [dimensionless].
    pub gamma: f64,
    /// Lowest clock the power controller may select [fraction of max clock].
    pub min_clock_factor: f64,
    /// Power above idle of a GPU waiting in a collective or a synchronisation (a polling NCCL
    /// kernel, a host sync with the clock held at maximum) [W]. Absent in preset files written
    /// before it existed: then `Accelerator::spin_w` scales the H100 figure by the dynamic range
    /// `(tdp - idle)`, like the other coefficients of a scaled preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spin_coef_w: Option<f64>,
}

impl PowerModel {
    /// The same shape for another accelerator: coefficients scaled by `factor` (e.g. the ratio of
    /// dynamic ranges `(tdp - idle)`), exponent and clock floor kept — an assumption.
    pub fn scaled(&self, factor: f64) -> PowerModel {
        PowerModel {
            tensor_coef_w: self.tensor_coef_w * factor,
            simt_coef_w: self.simt_coef_w * factor,
            mem_coef_w: self.mem_coef_w * factor,
            sm_active_coef_w: self.sm_active_coef_w * factor,
            spin_coef_w: self.spin_coef_w.map(|w| w * factor),
            ..self.clone()
        }
    }
}

/// Whether a coefficient is 0 (serde: an absent key reads as 0, so 0 is not written).
fn is_zero(w: &f64) -> bool {
    *w == 0.0
}

/// Work description of one kernel at maximum clock, used to solve for the clock under a limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Demand {
    /// Compute time at maximum clock [s].
    pub t_compute_s: f64,
    /// Memory time (clock-independent) [s].
    pub t_memory_s: f64,
    /// Dynamic compute power coefficient times work fraction: `coef * flops / peak` [J].
    pub compute_work_j: f64,
    /// `mem_coef * bytes / bw` [J].
    pub memory_work_j: f64,
    /// SM-activity power at maximum clock while busy: `sm_active_coef_w * s` [W].
    pub active_w: f64,
}

/// Clock factor, busy time [s] and power [W] of a kernel under `limit_w`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operating {
    pub clock_factor: f64,
    pub busy_s: f64,
    pub power_w: f64,
}

impl Demand {
    #[inline]
    fn busy_s(&self, phi: f64) -> f64 {
        (self.t_compute_s / phi).max(self.t_memory_s)
    }

    #[inline]
    fn dynamic_w(&self, phi: f64, gamma: f64) -> f64 {
        let t = self.busy_s(phi);
        if t <= 0.0 {
            return 0.0;
        }
        // γ = 2 (the H100 preset's): φ^(γ−1) is φ itself, and `powf(φ, 1)` returns φ exactly
        // (any result within an ulp of a representable value is that value), so skipping the
        // libm call is bit-identical.
        let scale = if gamma == 2.0 {
            phi
        } else {
            phi.powf(gamma - 1.0)
        };
        let dynamic = (self.compute_work_j * scale + self.memory_work_j) / t;
        if self.active_w > 0.0 {
            dynamic + self.active_w * scale * phi
        } else {
            dynamic
        }
    }

    /// Solve for the highest clock whose power fits under `limit_w` (bisection, allocation-free).
    /// The clock factor at which dynamic power equals `budget_w`, without iterating over the whole range:
    /// dynamic power is increasing in the clock, compute-bound it is `(Wc·φ^γ + Wm·φ)/t_c` (a quadratic
    /// for γ = 2, Newton's method otherwise), memory-bound `(Wc·φ^(γ-1) + Wm)/t_m` (closed form).
    /// The SM-activity power `A·φ^γ` adds `A·t_c` to `Wc` in the compute-bound form (busy time is
    /// `t_c/φ` there) and a `A·t_m·φ^γ` term to the memory-bound one (a quadratic for γ = 2).
    /// Called on every kernel of every step, so it must be cheap; `solve_clock_bisect` is its reference.
    fn solve_clock(&self, budget_w: f64, gamma: f64) -> f64 {
        let (wm, tc, tm, a) = (
            self.memory_work_j,
            self.t_compute_s,
            self.t_memory_s,
            self.active_w,
        );
        // Compute-bound: busy time t_c/φ, so A·φ^γ = (A·t_c)·φ^γ / t_c joins the compute work.
        let wc = self.compute_work_j + a * tc;
        if tc > 0.0 && wc > 0.0 {
            let rhs = budget_w * tc;
            let phi = if (gamma - 2.0).abs() < 1e-12 {
                (-wm + (wm * wm + 4.0 * wc * rhs).sqrt()) / (2.0 * wc)
            } else {
                let mut x = 1.0_f64;
                for _ in 0..30 {
                    let f = wc * x.powf(gamma) + wm * x - rhs;
                    let df = gamma * wc * x.powf(gamma - 1.0) + wm;
                    let next = (x - f / df).max(1e-6);
                    if (next - x).abs() < 1e-13 {
                        x = next;
                        break;
                    }
                    x = next;
                }
                x
            };
            if tc / phi >= tm {
                return phi;
            }
        }
        // Memory-bound: Wc0·φ^(γ-1) + A·t_m·φ^γ = budget·t_m − Wm.
        let wc0 = self.compute_work_j;
        let rhs = budget_w * tm - wm;
        if tm <= 0.0 || rhs <= 0.0 || gamma <= 1.0 {
            return 0.0;
        }
        let at = a * tm;
        if at <= 0.0 {
            if wc0 > 0.0 {
                return (rhs / wc0).powf(1.0 / (gamma - 1.0));
            }
            return 0.0;
        }
        if (gamma - 2.0).abs() < 1e-12 {
            return (-wc0 + (wc0 * wc0 + 4.0 * at * rhs).sqrt()) / (2.0 * at);
        }
        let mut x = 1.0_f64;
        for _ in 0..60 {
            let f = wc0 * x.powf(gamma - 1.0) + at * x.powf(gamma) - rhs;
            let df = (gamma - 1.0) * wc0 * x.powf(gamma - 2.0) + gamma * at * x.powf(gamma - 1.0);
            let next = (x - f / df).max(1e-6);
            if (next - x).abs() < 1e-13 {
                return next;
            }
            x = next;
        }
        x
    }

    /// Reference for `solve_clock`: bisection on the clock factor over [lo, 1].
    #[cfg(test)]
    fn solve_clock_bisect(&self, budget_w: f64, gamma: f64, lo: f64) -> f64 {
        let (mut lo, mut hi) = (lo, 1.0_f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.dynamic_w(mid, gamma) > budget_w {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        lo
    }

    pub fn operate(&self, idle_w: f64, limit_w: f64, model: &PowerModel) -> Operating {
        let budget = (limit_w - idle_w).max(0.0);
        let p1 = self.dynamic_w(1.0, model.gamma);
        if p1 <= budget {
            return Operating {
                clock_factor: 1.0,
                busy_s: self.busy_s(1.0),
                power_w: idle_w + p1,
            };
        }
        let lo_phi = model.min_clock_factor.clamp(1e-3, 1.0);
        let p_lo = self.dynamic_w(lo_phi, model.gamma);
        if p_lo > budget {
            // Even the lowest clock is too hot (memory-bound streaming): throttle the whole
            // kernel so that its dynamic energy is spread over a longer time.
            let stretch = if budget > 0.0 { p_lo / budget } else { 1.0 };
            let busy = self.busy_s(lo_phi) * stretch;
            return Operating {
                clock_factor: lo_phi,
                busy_s: busy,
                power_w: idle_w + p_lo / stretch,
            };
        }
        let phi = self.solve_clock(budget, model.gamma).clamp(lo_phi, 1.0);
        Operating {
            clock_factor: phi,
            busy_s: self.busy_s(phi),
            power_w: idle_w + self.dynamic_w(phi, model.gamma),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> PowerModel {
        PowerModel {
            tensor_coef_w: 1000.0,
            simt_coef_w: 800.0,
            mem_coef_w: 400.0,
            sm_active_coef_w: 150.0,
            gamma: 2.0,
            min_clock_factor: 0.2,
            spin_coef_w: Some(40.0),
        }
    }

    #[test]
    fn gamma_two_power_equals_the_powf_form_bit_for_bit() {
        // Why: dynamic_w skips `powf(φ, γ − 1)` at γ = 2; the sum must be the one powf gave.
        let d = Demand {
            t_compute_s: 1.3e-3,
            t_memory_s: 0.4e-3,
            compute_work_j: 0.91,
            memory_work_j: 0.17,
            active_w: 0.0,
        };
        let mut phi = 1e-3_f64;
        while phi <= 1.5 {
            let want = (d.compute_work_j * phi.powf(1.0) + d.memory_work_j) / d.busy_s(phi);
            assert_eq!(d.dynamic_w(phi, 2.0).to_bits(), want.to_bits(), "φ = {phi}");
            phi = phi * 1.000_37 + 1e-9;
        }
    }

    #[test]
    fn closed_form_clock_matches_bisection_on_random_kernels() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for gamma in [2.0, 1.7, 2.6] {
            for _ in 0..2000 {
                let d = Demand {
                    t_compute_s: rng.gen_range(0.0..1.0),
                    t_memory_s: rng.gen_range(0.0..1.0),
                    compute_work_j: rng.gen_range(0.0..1500.0),
                    memory_work_j: rng.gen_range(0.0..400.0),
                    active_w: if rng.gen_bool(0.5) {
                        rng.gen_range(0.0..300.0)
                    } else {
                        0.0
                    },
                };
                let lo = 0.2;
                let budget = rng.gen_range(50.0..1500.0);
                if d.dynamic_w(1.0, gamma) <= budget || d.dynamic_w(lo, gamma) > budget {
                    continue;
                }
                let fast = d.solve_clock(budget, gamma).clamp(lo, 1.0);
                let slow = d.solve_clock_bisect(budget, gamma, lo);
                assert!(
                    (fast - slow).abs() < 1e-9,
                    "{d:?} budget {budget} gamma {gamma}: {fast} vs {slow}"
                );
            }
        }
    }

    #[test]
    fn uncapped_kernel_runs_at_full_clock() {
        let d = Demand {
            t_compute_s: 1.0,
            t_memory_s: 0.1,
            compute_work_j: 300.0,
            memory_work_j: 40.0,
            active_w: 0.0,
        };
        let op = d.operate(100.0, 700.0, &model());
        assert_eq!(op.clock_factor, 1.0);
        assert!((op.power_w - 440.0).abs() < 1e-9);
    }

    #[test]
    fn hot_kernel_is_clocked_down_to_the_limit() {
        let d = Demand {
            t_compute_s: 1.0,
            t_memory_s: 0.1,
            compute_work_j: 900.0,
            memory_work_j: 40.0,
            active_w: 0.0,
        };
        let op = d.operate(100.0, 700.0, &model());
        assert!(op.clock_factor < 1.0);
        assert!((op.power_w - 700.0).abs() < 1e-6);
        assert!((op.busy_s - 1.0 / op.clock_factor).abs() < 1e-9);
    }

    #[test]
    fn streaming_kernel_over_budget_is_stretched() {
        let d = Demand {
            t_compute_s: 0.0,
            t_memory_s: 1.0,
            compute_work_j: 0.0,
            memory_work_j: 400.0,
            active_w: 0.0,
        };
        let op = d.operate(100.0, 300.0, &model());
        assert!((op.power_w - 300.0).abs() < 1e-9);
        assert!((op.busy_s - 2.0).abs() < 1e-9);
    }
}
