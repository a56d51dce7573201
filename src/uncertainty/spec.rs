//! What one sample changes: its draws from the Monte Carlo's seed tree and the perturbed scenario.

use crate::engine::SeedTree;
use crate::hardware::Accelerator;
use crate::scenario::{Scenario, UncertaintySource, UncertaintySpec};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// The inputs of one sample, drawn from the seed tree by its index (so a sample is the same whatever
/// thread runs it and however many samples run).
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    /// Sample index (0-based).
    pub index: u32,
    /// Root of the routing streams (None: the scenario's own routing draws).
    pub routing_root: Option<u64>,
    /// Root of the planner's forecast streams (None: the scenario's own forecast).
    pub forecast_root: Option<u64>,
    /// Pace of the job relative to the preset: the slowest of its GPUs' speed factors [fraction].
    pub gpu_speed: f64,
    /// Power of the job's GPUs relative to the preset: the mean of their power factors [fraction].
    pub gpu_power: f64,
    /// Index into `quality::laws_for` of the loss law this sample uses (None: the default law).
    pub law: Option<usize>,
}

/// Clamp of one GPU's factor, five standard deviations at the largest spread a table accepts (0.1), so
/// a normal tail can never give a GPU of zero or negative speed.
const FACTOR_RANGE: (f64, f64) = (0.5, 1.5);

/// The draws of sample `index` of `spec` for a scenario with seed `seed`, `gpus` GPUs and `laws`
/// applicable loss laws.
pub fn draw(spec: &UncertaintySpec, seed: u64, index: u32, gpus: u32, laws: usize) -> Draw {
    let tree = SeedTree::new(seed.wrapping_add(spec.seed_offset));
    let i = index as u64;
    let on = |s| spec.has(s);
    let (gpu_speed, gpu_power) = if on(UncertaintySource::Hardware) {
        hardware_factors(
            tree.stream("uncertainty.hardware", i),
            gpus,
            spec.gpu_speed_spread,
            spec.gpu_power_spread,
        )
    } else {
        (1.0, 1.0)
    };
    Draw {
        index,
        routing_root: on(UncertaintySource::Routing).then(|| tree.stream("uncertainty.routing", i)),
        forecast_root: on(UncertaintySource::Forecast)
            .then(|| tree.stream("uncertainty.forecast", i)),
        gpu_speed,
        gpu_power,
        // Stratified over the laws (sample i uses law i mod n): every law is used equally often even
        // with few samples, and no random stream is spent on it.
        law: (on(UncertaintySource::QualityLaw) && laws > 0)
            .then_some(index as usize % laws.max(1)),
    }
}

/// The job's speed and power factors from one draw per GPU: synchronous data/expert-parallel training
/// waits at every collective for its slowest GPU, so the job's pace is the minimum of the GPUs' speed
/// factors; every GPU draws its own power, so the job's GPU power scales by their mean.
pub fn hardware_factors(seed: u64, gpus: u32, speed_sd: f64, power_sd: f64) -> (f64, f64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let draw = |sd: f64, rng: &mut rand_chacha::ChaCha8Rng| match Normal::new(1.0, sd) {
        Ok(n) if sd > 0.0 => n.sample(rng).clamp(FACTOR_RANGE.0, FACTOR_RANGE.1),
        _ => 1.0,
    };
    let (mut slowest, mut power_sum) = (f64::INFINITY, 0.0);
    for _ in 0..gpus.max(1) {
        slowest = slowest.min(draw(speed_sd, &mut rng));
        power_sum += draw(power_sd, &mut rng);
    }
    (slowest, power_sum / gpus.max(1) as f64)
}

/// An accelerator `speed` times as fast (every peak FLOP rate: the SM clock the power manager settles
/// at) drawing `power` times the power at a given clock (idle and every dynamic coefficient). The power
/// limit is a setting and stays: a GPU that needs more power for a clock reaches the limit sooner and
/// slows, as Sinha et al. 2022 observe.
pub fn scaled_accelerator(a: &Accelerator, speed: f64, power: f64) -> Accelerator {
    let mut a = a.clone();
    let p = &mut a.peak_flops;
    for f in [
        &mut p.fp32,
        &mut p.tf32,
        &mut p.bf16,
        &mut p.fp16,
        &mut p.fp8,
    ] {
        *f = f.map(|v| v * speed);
    }
    a.power = a.power.scaled(power);
    a.idle_w *= power;
    a
}

/// The scenario of sample `d`: the base scenario with the sample's routing and forecast roots, the
/// spec's forecast error (when that source is on), its accelerator, and its loss law (which sets the
/// token target of an equal-loss comparison as well as the reported loss).
pub fn perturbed(base: &Scenario, spec: &UncertaintySpec, d: &Draw) -> Scenario {
    let mut s = base.clone();
    if d.law.is_some() {
        s.law_index = d.law;
    }
    if let Some(r) = d.routing_root {
        s.reseed.push(("routing".into(), r));
    }
    if let Some(r) = d.forecast_root {
        s.reseed.push(("forecast".into(), r));
        if let Some(c) = s.circadian.as_mut() {
            c.forecast_error = spec.forecast_error;
        }
    }
    if d.gpu_speed != 1.0 || d.gpu_power != 1.0 {
        s.cluster.accelerator =
            scaled_accelerator(&s.cluster.accelerator, d.gpu_speed, d.gpu_power);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_gpu_sets_the_pace_and_power_is_the_mean() {
        let (speed, power) = hardware_factors(5, 64, 0.015, 0.015);
        // The minimum of 64 normal draws lies about 2.4 σ below the mean.
        assert!(speed < 1.0 - 0.015 && speed > 1.0 - 0.015 * 5.0, "{speed}");
        assert!((power - 1.0).abs() < 0.015, "{power}");
        let (s1, p1) = hardware_factors(5, 1, 0.015, 0.0);
        assert_eq!(p1, 1.0);
        assert!((s1 - 1.0).abs() < 0.1);
        assert_eq!(hardware_factors(5, 8, 0.0, 0.0), (1.0, 1.0));
    }

    #[test]
    fn sources_that_are_off_leave_the_scenario_alone() {
        let spec = UncertaintySpec {
            sources: vec![],
            ..UncertaintySpec::default()
        };
        let d = draw(&spec, 42, 3, 16, 3);
        assert_eq!(d.routing_root, None);
        assert_eq!(d.forecast_root, None);
        assert_eq!((d.gpu_speed, d.gpu_power), (1.0, 1.0));
        assert_eq!(d.law, None);
        let base = Scenario::default_embedded().unwrap();
        let s = perturbed(&base, &spec, &d);
        assert!(s.reseed.is_empty());
        assert_eq!(
            s.cluster.accelerator.peak_flops.bf16,
            base.cluster.accelerator.peak_flops.bf16
        );
    }

    #[test]
    fn draws_depend_on_the_index_and_offset_only() {
        let spec = UncertaintySpec::default();
        assert_eq!(draw(&spec, 42, 7, 16, 3), draw(&spec, 42, 7, 16, 3));
        assert_ne!(draw(&spec, 42, 7, 16, 3), draw(&spec, 42, 8, 16, 3));
        let other = UncertaintySpec {
            seed_offset: 1,
            ..spec.clone()
        };
        assert_ne!(
            draw(&spec, 42, 7, 16, 3).routing_root,
            draw(&other, 42, 7, 16, 3).routing_root
        );
        assert_eq!(draw(&spec, 42, 4, 16, 3).law, Some(1));
    }

    /// Tokens each strategy of `s` trains (its token target), in scenario order.
    fn targets(s: &Scenario) -> Vec<f64> {
        crate::sim::prepare(s)
            .unwrap()
            .plan
            .strategies
            .iter()
            .map(|p| p.tokens)
            .collect()
    }

    #[test]
    fn the_drawn_law_sets_the_token_target_at_equal_loss() {
        let mut base = Scenario::default_embedded().unwrap();
        let spec = UncertaintySpec {
            sources: vec![UncertaintySource::QualityLaw],
            ..UncertaintySpec::default()
        };
        let laws = crate::quality::laws_for(&crate::sim::model_shape(base.moe.as_ref().unwrap()));
        assert!(laws.len() >= 2);
        let d = |i| draw(&spec, 42, i, 16, laws.len());
        assert_ne!(d(0).law, d(1).law);
        // The target is the MoE's loss after training.tokens under the drawn law: the MoE trains the
        // budget under any law, the dense model as many tokens as its law needs for that loss.
        let (a, b) = (
            targets(&perturbed(&base, &spec, &d(0))),
            targets(&perturbed(&base, &spec, &d(1))),
        );
        let dense = base
            .strategies
            .iter()
            .position(|k| *k == crate::scenario::StrategyKind::Dense)
            .unwrap();
        assert!((a[dense] / b[dense] - 1.0).abs() > 1e-3, "{a:?} vs {b:?}");
        // A fixed target loss: every strategy's tokens follow the law.
        base.training.target_loss = Some(2.4);
        let (a, b) = (
            targets(&perturbed(&base, &spec, &d(0))),
            targets(&perturbed(&base, &spec, &d(1))),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x / y - 1.0).abs() > 1e-3, "{a:?} vs {b:?}");
        }
        // The sample carries the law into the run (target and reported loss alike).
        assert_eq!(perturbed(&base, &spec, &d(1)).law_index, d(1).law);
    }

    #[test]
    fn a_scaled_accelerator_is_slower_and_hungrier() {
        let a = Scenario::default_embedded().unwrap().cluster.accelerator;
        let b = scaled_accelerator(&a, 0.9, 1.1);
        assert!((b.peak_flops.bf16.unwrap() / a.peak_flops.bf16.unwrap() - 0.9).abs() < 1e-12);
        assert!((b.idle_w / a.idle_w - 1.1).abs() < 1e-12);
        assert!((b.power.tensor_coef_w / a.power.tensor_coef_w - 1.1).abs() < 1e-12);
        assert_eq!(b.tdp_w, a.tdp_w);
    }
}
