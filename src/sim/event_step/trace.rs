//! The Chrome / Perfetto trace of one event-level step: a process per simulated GPU, a thread
//! per stream (compute, communication), an "X" event per op with its kernel class, bytes and
//! FLOPs, and a "C" counter track of each GPU's power (Trace Event Format, Google, "Trace Event
//! Format" document: `ph` X = complete event, C = counter, M = metadata; `ts`/`dur` in µs).

use super::EventStep;
use std::io::{self, Write};

fn class_name(c: crate::workload::step_ops::KernelClass) -> String {
    format!("{c:?}")
}

/// Write `step`'s timeline (recorded with `record = true`) as Chrome trace JSON to `w`;
/// `spin_w` is the power of a waiting GPU [W] (the counter's value between compute ops) and
/// `label` names the trace (scenario, strategy, step).
pub fn write_chrome_trace<W: Write>(
    w: &mut W,
    step: &EventStep,
    spin_w: f64,
    label: &str,
) -> io::Result<()> {
    let us = |ns: u64| ns as f64 / 1000.0;
    writeln!(w, "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"label\":{},\"step_time_s\":{},\"gpu_energy_j\":{},\"gpus_simulated\":{},\"gpus_represented_each\":{}}},\"traceEvents\":[",
        serde_json::to_string(label).map_err(io::Error::other)?,
        step.time_s, step.gpu_energy_j, step.gpus_simulated, step.gpus_represented)?;
    let mut first = true;
    let mut sep = |w: &mut W| -> io::Result<()> {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        Ok(())
    };
    for (gpu, stage) in step.stage_of_gpu.iter().enumerate() {
        sep(w)?;
        write!(w, "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{gpu},\"args\":{{\"name\":\"GPU {gpu} (stage {stage})\"}}}}")?;
        sep(w)?;
        write!(w, "{{\"ph\":\"C\",\"name\":\"power_w\",\"pid\":{gpu},\"ts\":0,\"args\":{{\"W\":{spin_w}}}}}")?;
        for (tid, name) in [(0, "compute"), (1, "communication")] {
            sep(w)?;
            write!(w, "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{gpu},\"tid\":{tid},\"args\":{{\"name\":\"{name}\"}}}}")?;
        }
    }
    let mut order: Vec<usize> = (0..step.records.len()).collect();
    order.sort_by_key(|&i| {
        (
            step.records[i].gpu,
            step.records[i].stream,
            step.records[i].start_ns,
        )
    });
    for &i in &order {
        let r = &step.records[i];
        let layer = r.layer.map_or("null".to_string(), |l| l.to_string());
        sep(w)?;
        write!(
            w,
            "{{\"ph\":\"X\",\"name\":\"{}\",\"cat\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{},\"args\":{{\"class\":\"{}\",\"layer\":{},\"micro_batch\":{},\"phase\":\"{:?}\",\"bytes\":{},\"flops\":{},\"power_w\":{},\"waiting\":{}}}}}",
            r.name,
            class_name(r.class),
            r.gpu,
            r.stream,
            us(r.start_ns),
            us(r.end_ns - r.start_ns),
            class_name(r.class),
            layer,
            r.mb,
            r.phase,
            r.bytes,
            r.flops,
            r.power_w,
            r.waiting
        )?;
        if r.stream == 0 {
            // Power counter: the op's power from its start, spin power from its end; a next op
            // starting at the same instant is written after and wins.
            for (t, p) in [(r.start_ns, r.power_w), (r.end_ns, spin_w)] {
                sep(w)?;
                write!(
                    w,
                    "{{\"ph\":\"C\",\"name\":\"power_w\",\"pid\":{},\"ts\":{},\"args\":{{\"W\":{}}}}}",
                    r.gpu,
                    us(t),
                    p
                )?;
            }
        }
    }
    writeln!(w, "\n]}}")?;
    Ok(())
}
