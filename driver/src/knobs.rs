//! The knobs from the environment (`FFID_DRIVER_*`), and the setups they name.

use crate::ffi::fail_hard;

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Setup {
    Scalar,
    Payload(usize),
}

impl Setup {
    pub(crate) fn name(self) -> String {
        match self {
            Setup::Scalar => "scalar".into(),
            Setup::Payload(n) => format!("payload {n} B"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Knobs {
    pub(crate) calls: u64,
    pub(crate) threads: Vec<usize>,
    pub(crate) setups: Vec<Setup>,
    pub(crate) modes: Vec<bool>,
    pub(crate) lanes: Vec<String>,
    pub(crate) ring: Option<u32>,
    pub(crate) ring_kind: Option<u32>,
    pub(crate) spin_ns: Option<u32>,
    /// The idle policy of every context (`FFID_IDLE_*`), if not the default.
    pub(crate) idle: Option<u32>,
    /// The periodic lane's policies.
    pub(crate) periodic_policies: Vec<(String, u32)>,
    /// The periodic lane's periods.
    pub(crate) periods: Vec<std::time::Duration>,
    /// The periodic lane's wall time per period.
    pub(crate) period_budget: std::time::Duration,
    /// How many contexts the `footprint` lane creates and the `contexts` lane runs.
    pub(crate) contexts: usize,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `FFID_IDLE_*` by name.
fn idle_policy(name: &str) -> u32 {
    match name {
        "latency" => 0,
        "balanced" => 1,
        "power" => 2,
        other => fail_hard(&format!("unknown idle policy {other}")),
    }
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

pub(crate) fn knobs() -> Knobs {
    let setups = env_list(
        "FFID_DRIVER_SETUPS",
        "scalar,payload64,payload512,payload4096,payload65536",
    )
    .iter()
    .map(|s| match s.as_str() {
        "scalar" => Setup::Scalar,
        p => Setup::Payload(
            p.strip_prefix("payload")
                .and_then(|n| n.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(|| fail_hard(&format!("unknown setup {p}"))),
        ),
    })
    .collect();
    Knobs {
        calls: env_num("FFID_DRIVER_CALLS").unwrap_or(200_000),
        threads: env_list("FFID_DRIVER_THREADS", "1,2,4")
            .iter()
            .map(|t| {
                t.parse()
                    .unwrap_or_else(|_| fail_hard("FFID_DRIVER_THREADS: numbers"))
            })
            .collect(),
        setups,
        modes: env_list("FFID_DRIVER_MODES", "native,cbor")
            .iter()
            .map(|m| m == "cbor")
            .collect(),
        lanes: env_list(
            "FFID_DRIVER_LANES",
            "sync,async,blocking,event,periodic,footprint,contexts",
        ),
        ring: env_num("FFID_DRIVER_RING"),
        ring_kind: env_num("FFID_DRIVER_RING_KIND"),
        spin_ns: env_num("FFID_DRIVER_SPIN_NS"),
        periods: env_list("FFID_DRIVER_PERIODS_US", "10,100,1000,10000")
            .iter()
            .map(|p| match p.parse::<u64>() {
                Ok(us) if us > 0 => std::time::Duration::from_micros(us),
                _ => fail_hard("FFID_DRIVER_PERIODS_US: positive numbers of µs"),
            })
            .collect(),
        idle: std::env::var("FFID_DRIVER_IDLE")
            .ok()
            .map(|p| idle_policy(&p)),
        periodic_policies: env_list("FFID_DRIVER_PERIODIC_IDLE", "latency,balanced,power")
            .into_iter()
            .map(|p| {
                let v = idle_policy(&p);
                (p, v)
            })
            .collect(),
        period_budget: std::time::Duration::from_millis(
            env_num("FFID_DRIVER_PERIOD_MS").unwrap_or(1_000),
        ),
        contexts: env_num("FFID_DRIVER_CONTEXTS")
            .map(|n: u32| n as usize)
            .filter(|&n| n > 0)
            .unwrap_or(64),
    }
}
