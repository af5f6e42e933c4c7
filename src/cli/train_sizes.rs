//! The memory a `fisherflow train` run needs, checked against the host's and the adapter's
//! limits before any work, blaming the flag whose usual value lowers it most.

use fisherflow::budget::{self, Estimate, Knob, TrainSizes};
use fisherflow::device::Device;
use fisherflow::flow::TrainConfig;
use fisherflow::nn::MlpConfig;
use fisherflow::Result;

/// Settings that shape a run's memory, each with its usual value for the blame.
fn knobs(data_flag: &str) -> Vec<Knob<TrainSizes>> {
    let d = MlpConfig::default();
    vec![
        Knob::new("--batch", "", |s: &mut TrainSizes| {
            s.batch = TrainConfig::default().batch
        }),
        Knob::new("--hidden", "", move |s: &mut TrainSizes| {
            s.hidden = d.hidden
        }),
        Knob::new("--blocks", "", move |s: &mut TrainSizes| {
            s.blocks = d.blocks
        }),
        Knob::new("--eval-samples", "", |s: &mut TrainSizes| s.eval_n = 8192),
        Knob::new(
            &format!("the sequence length L of {data_flag}"),
            "",
            move |s: &mut TrainSizes| s.len = d.seq_len,
        ),
        Knob::new(
            &format!("the vocabulary K of {data_flag}"),
            "",
            move |s: &mut TrainSizes| s.vocab = d.categories,
        ),
    ]
}

/// Refuses a run whose memory exceeds the host's or the adapter's limits, naming the setting.
pub fn check_sizes(sizes: &TrainSizes, device: Device, data_flag: &str) -> Result<()> {
    let mut knobs = knobs(data_flag);
    let values = [
        sizes.batch.to_string(),
        sizes.hidden.to_string(),
        sizes.blocks.to_string(),
        sizes.eval_n.to_string(),
        format!("= {}", sizes.len),
        format!("= {}", sizes.vocab),
    ];
    for (k, v) in knobs.iter_mut().zip(values) {
        k.value = v;
    }
    let cpu = device.gpu().is_none();
    let host = move |s: &TrainSizes| {
        let dev = match device {
            Device::Gpu(ctx) if fisherflow::device::is_software(ctx) => s.device_bytes(),
            _ => 0,
        };
        s.host_bytes(cpu).saturating_add(dev)
    };
    let binding = |s: &TrainSizes| if cpu { 0 } else { s.largest_binding() };
    let estimates = [
        Estimate {
            what: "host memory",
            limit: budget::host_available(),
            need: &host,
        },
        Estimate {
            what: "one storage binding of the adapter",
            limit: device.gpu().map(|c| c.max_binding() as u128),
            need: &binding,
        },
        Estimate {
            what: "the adapter's memory",
            limit: device.gpu().and_then(|c| c.device_memory()).map(u128::from),
            need: &|s: &TrainSizes| if cpu { 0 } else { s.device_bytes() },
        },
    ];
    budget::check(sizes, &estimates, &knobs)
}
