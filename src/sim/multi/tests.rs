//! Tests of the multi-region modes on hand-built sites: WAN identities, capacity, the deadline,
//! follow the night against the best single site, determinism.

use super::exec::execute;
use super::plan::{dp_plan, follow_the_night, greedy_plan};
use super::{geo, Inputs, SiteModel};
use crate::grid::{GridSource, GridSpec};
use crate::network::wan::{ring_all_reduce, WanLink};
use crate::scenario::sites::{CostOrigin, Site, SiteObjective, SitePlanner, SitesSpec};
use crate::sim::meter::Power;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(super) const DT: f64 = 3600.0;

fn power(gpu_w: f64, node_w: f64) -> Power {
    Power {
        gpu_w,
        waiting_w: 0.0,
        node_w,
        network_w: 0.0,
    }
}

/// A site training `rate` tokens/s at 10 kW IT (1 kW held), PUE 1, no price.
pub(super) fn site(name: &str, rate: f64, ci: Vec<f64>) -> SiteModel {
    let n = ci.len();
    SiteModel {
        name: name.into(),
        replicas: 1,
        gpus: 8.0,
        step_s: 1.0,
        tokens_per_step: rate,
        progress_per_step: rate,
        effective_per_step: rate,
        train: power(8000.0, 2000.0),
        held: power(800.0, 200.0),
        ci,
        price: vec![50.0; n],
        pue: vec![1.0; n],
        source: "test".into(),
        carbon_price: vec![0.0; n],
        levy_per_kwh: 0.0,
        tax_per_gpu_h: 0.0,
        forecast_ci: None,
        planned_on: "perfect foresight".into(),
        cost_origin: CostOrigin::None,
    }
}

pub(super) fn spec_of(
    sites: &[SiteModel],
    bw_gbps: f64,
    lat_s: f64,
    j_per_byte: f64,
    deadline_h: f64,
) -> SitesSpec {
    let grid = GridSpec {
        region: "CISO".into(),
        source: GridSource::Profile,
        price_per_mwh: None,
        interval_s: DT as i64,
        currency: None,
        marginal: None,
    };
    let mut wan = Vec::new();
    for a in 0..sites.len() {
        for b in a + 1..sites.len() {
            wan.push(WanLink {
                a,
                b,
                bandwidth_bps: bw_gbps * 1e9,
                latency_s: lat_s,
                j_per_byte,
            });
        }
    }
    SitesSpec {
        sites: sites
            .iter()
            .map(|m| Site {
                name: m.name.clone(),
                gpus: 8,
                replicas: 1,
                pue: 1.0,
                weather_pue: None,
                grid: grid.clone(),
                cost: None,
                cost_origin: CostOrigin::None,
            })
            .collect(),
        wan,
        deadline_s: deadline_h * 3600.0,
        planner: SitePlanner::Dp,
        sync_every_steps: 10,
        objective: SiteObjective::Co2,
    }
}

pub(super) fn inputs(sites: Vec<SiteModel>, bytes: f64, spec: SitesSpec, target: f64) -> Inputs {
    Inputs {
        sites,
        spec,
        checkpoint_bytes: bytes,
        sync_bytes: bytes / 7.0,
        interval_s: DT,
        target,
        count_effective: false,
        sync_penalty: vec![0.0; 5],
        sync_worth: vec![1.0; 5],
    }
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn a_move_costs_transfer_time_held_power_and_wan_bytes_times_joules_per_byte() {
    // Two intervals at A, then B. 1e12 B over 100 Gb/s + 20 ms = 80.02 s.
    let sites = vec![
        site("A", 1000.0, vec![100.0; 10]),
        site("B", 1000.0, vec![300.0; 10]),
    ];
    let spec = spec_of(&sites, 100.0, 0.02, 2.16e-4, 100.0);
    let inp = inputs(sites, 1e12, spec, 1000.0 * 4.0 * DT);
    let r = execute(&inp, &[0, 0, 1, 1, 1, 1, 1, 1, 1, 1], "t").unwrap();
    let tau = 1e12 * 8.0 / 100e9 + 0.02;
    assert!(close(tau, 80.02));
    assert_eq!(r.moves, 1);
    // WAN energy: bytes × J/B; its CO2 at the mean of the two intensities.
    assert!(close(r.wan_j, 1e12 * 2.16e-4));
    assert!(close(r.wan_co2_kg, r.wan_j / 3.6e6 * 200.0 / 1000.0));
    // The move's time is lost to training: the run ends τ later than 4 intervals.
    assert!(close(r.wall_s, 4.0 * DT + tau));
    assert!(close(r.trained_s[0], 2.0 * DT) && close(r.trained_s[1], 2.0 * DT));
    // Site energy: training 10 kW at both for 2 h each, and both sites' 1 kW held for τ.
    let expect_j = 10_000.0 * 4.0 * DT + 2.0 * 1000.0 * tau;
    assert!(
        close(r.sites.facility_j, expect_j),
        "{} vs {expect_j}",
        r.sites.facility_j
    );
    let expect_co2 = (10_000.0 * 2.0 * DT * 100.0
        + 10_000.0 * 2.0 * DT * 300.0
        + 1000.0 * tau * (100.0 + 300.0))
        / 3.6e6
        / 1000.0;
    assert!(close(r.sites.co2_kg, expect_co2));
    assert!(close(r.co2_kg(), expect_co2 + r.wan_co2_kg));
}

#[test]
fn a_site_with_fewer_replicas_trains_slower_and_never_holds_more_gpus_than_it_has() {
    let mut small = site("small", 500.0, vec![50.0; 48]);
    small.gpus = 4.0;
    let sites = vec![site("big", 1000.0, vec![200.0; 48]), small];
    let spec = spec_of(&sites, 100.0, 0.0, 0.0, 48.0);
    let inp = inputs(sites, 0.0, spec, 1000.0 * 10.0 * DT);
    let slow = execute(&inp, &[1; 48], "small").unwrap();
    let fast = execute(&inp, &[0; 48], "big").unwrap();
    assert!(close(slow.wall_s, 2.0 * fast.wall_s));
    // GPU-hours: the site's GPUs × time, never more.
    assert!(close(slow.gpu_hours, 4.0 * slow.wall_s / 3600.0));
    assert!(close(fast.gpu_hours, 8.0 * fast.wall_s / 3600.0));
}

#[test]
fn the_planner_meets_the_deadline_by_mixing_a_clean_slow_site_with_a_fast_one() {
    // The clean site alone needs 20 h, the dirty one 10 h; the deadline is 15 h.
    let sites = vec![
        site("dirty-fast", 1000.0, vec![400.0; 48]),
        site("clean-slow", 500.0, vec![50.0; 48]),
    ];
    let spec = spec_of(&sites, 100.0, 0.01, 2.16e-4, 15.0);
    let inp = inputs(sites, 1e11, spec, 1000.0 * 10.0 * DT);
    let only_clean = execute(&inp, &[1; 48], "c").unwrap();
    let only_fast = execute(&inp, &[0; 48], "f").unwrap();
    assert!(!only_clean.deadline_met && only_fast.deadline_met);
    let r = follow_the_night(&inp).unwrap();
    assert!(r.deadline_met, "wall {} h", r.wall_s / 3600.0);
    assert!(r.co2_kg() < only_fast.co2_kg());
    assert!(r.trained_s[1] > 0.0 && r.trained_s[0] > 0.0);
}

#[test]
fn with_free_moves_follow_the_night_never_emits_more_than_the_best_single_site() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for trial in 0..20 {
        let n = 72;
        let sites: Vec<SiteModel> = (0..3)
            .map(|k| {
                let ci = (0..n).map(|_| rng.gen_range(20.0..600.0)).collect();
                site(&format!("s{k}"), 1000.0, ci)
            })
            .collect();
        // Free moves: no bytes, no latency, no J/B.
        let spec = spec_of(&sites, 100.0, 0.0, 0.0, 48.0);
        let inp = inputs(sites, 0.0, spec, 1000.0 * rng.gen_range(5.0..40.0) * DT);
        let best_single = (0..3)
            .map(|k| execute(&inp, &vec![k; n], "s").unwrap().co2_kg())
            .fold(f64::INFINITY, f64::min);
        // The DP's own plan (μ = 0, no single-site fallback) already does no worse...
        let mut dp = dp_plan(&inp, 0.0, 48);
        dp.resize(n, dp[47]);
        let own = execute(&inp, &dp, "dp").unwrap();
        assert!(own.co2_kg() <= best_single * (1.0 + 1e-12), "trial {trial}");
        // ...nor does the greedy one, nor what the planner picks.
        let mut g = greedy_plan(&inp, 48);
        g.resize(n, g[47]);
        assert!(execute(&inp, &g, "g").unwrap().co2_kg() <= best_single * (1.0 + 1e-12));
        assert!(follow_the_night(&inp).unwrap().co2_kg() <= best_single * (1.0 + 1e-12));
    }
}

#[test]
fn a_costly_move_is_not_taken_for_a_small_saving() {
    // B is 1 % cleaner in hour 1 only; moving there and back costs far more.
    let mut ci_b = vec![200.0; 24];
    ci_b[1] = 198.0;
    let sites = vec![site("A", 1000.0, vec![200.0; 24]), site("B", 1000.0, ci_b)];
    let spec = spec_of(&sites, 1.0, 0.05, 2.16e-4, 24.0);
    let inp = inputs(sites, 1e11, spec, 1000.0 * 6.0 * DT);
    let r = follow_the_night(&inp).unwrap();
    assert_eq!(r.moves, 0);
    assert!(greedy_plan(&inp, 24)
        .iter()
        .all(|&s| s == greedy_plan(&inp, 24)[0]));
}

#[test]
fn the_modes_are_deterministic() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let sites: Vec<SiteModel> = (0..3)
        .map(|k| {
            site(
                &format!("s{k}"),
                800.0 + 100.0 * k as f64,
                (0..96).map(|_| rng.gen_range(50.0..500.0)).collect(),
            )
        })
        .collect();
    let spec = spec_of(&sites, 10.0, 0.02, 2.16e-4, 60.0);
    let inp = inputs(sites, 5e10, spec, 900.0 * 30.0 * DT);
    let a = follow_the_night(&inp).unwrap();
    let b = follow_the_night(&inp).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let a = geo::geo_distributed(&inp).unwrap();
    let b = geo::geo_distributed(&inp).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn geo_distributed_rounds_pay_the_ring_all_reduce_over_the_wan() {
    // Two equal sites always active: a round = 10 steps of 1 s + the all-reduce of sync_bytes.
    let sites = vec![
        site("A", 1000.0, vec![100.0; 48]),
        site("B", 1000.0, vec![100.0; 48]),
    ];
    let spec = spec_of(&sites, 1.0, 0.01, 2.16e-4, 48.0);
    let inp = inputs(sites, 7e9, spec, 1000.0 * 2.0 * 10.0 * 500.0);
    let link = inp.spec.link(0, 1).unwrap().clone();
    let (sync_s, sync_j) = ring_all_reduce(&[&link, &link], inp.sync_bytes);
    // 1e9 B: 2 phases of 0.5 GB at 1 Gb/s (4 s) + 10 ms.
    assert!(close(sync_s, 2.0 * (4.0 + 0.01)));
    let r = geo::execute(&inp, &vec![0b11; 48], "geo").unwrap();
    let rounds = 500.0;
    assert!(close(r.wall_s, rounds * (10.0 + sync_s)), "{}", r.wall_s);
    assert!(close(r.wan_j, rounds * sync_j));
    assert_eq!(r.moves, 500);
    // Each site trains 10 of every 18.02 s and holds its nodes the rest.
    let busy = 10.0 / (10.0 + sync_s);
    let it_w = 10_000.0 * busy + 1000.0 * (1.0 - busy);
    assert!(close(r.sites.facility_j, 2.0 * it_w * r.wall_s));
    // One site alone never synchronises.
    let solo = geo::execute(&inp, &vec![0b01; 48], "geo").unwrap();
    assert_eq!(solo.moves, 0);
    assert_eq!(solo.wan_j, 0.0);
}

#[test]
fn geo_distributed_meets_the_deadline_and_drops_dirty_sites() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let sites: Vec<SiteModel> = (0..3)
        .map(|k| {
            site(
                &format!("s{k}"),
                1000.0,
                (0..96).map(|_| rng.gen_range(50.0..500.0)).collect(),
            )
        })
        .collect();
    let spec = spec_of(&sites, 100.0, 0.01, 2.16e-4, 24.0);
    let inp = inputs(sites, 1e9, spec, 1000.0 * 3.0 * 12.0 * DT * 0.9);
    let all = geo::execute(&inp, &vec![0b111; 96], "all").unwrap();
    let r = geo::geo_distributed(&inp).unwrap();
    assert!(r.deadline_met);
    assert!(r.co2_kg() <= all.co2_kg());
}
