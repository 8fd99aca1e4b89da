//! ipvlan-rs benchmarks (`make bench`): programs, not tests. Each drives the
//! real plugin binary over its unix socket, measures a baseline in the same
//! run, prints ratios against it, and can record its report in
//! BENCHMARKS.md between markers so that the file only holds measured text.

mod dhcp;
mod docker;
mod footprint;
mod harness;
mod instructions;
mod ipam;
mod lifecycle;
mod plot;
mod redb_group;
mod store;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "ipvlan-rs benchmarks")]
struct Cli {
    /// The plugin binary to measure (the static release build).
    #[arg(
        long,
        default_value = "target/x86_64-unknown-linux-gnu/release/ipvlan-rs"
    )]
    plugin: PathBuf,
    /// Replace this benchmark's section of FILE with the report.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// RequestAddress + ReleaseAddress at growing numbers of allocated addresses.
    Ipam {
        /// Allocated-address levels, ascending.
        #[arg(long, value_delimiter = ',', default_value = "10,10000,100000,1000000")]
        levels: Vec<usize>,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// v4, v6 or both.
        #[arg(long, default_value = "both")]
        family: String,
    },
    /// The endpoint lifecycle (RequestAddress ... ReleaseAddress) with real
    /// links, at growing concurrency.
    Lifecycle {
        /// Concurrent clients, one row each.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        clients: Vec<usize>,
        /// Seconds per row.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Paced rows: one client at these lifecycles per second (0: none).
        #[arg(long, value_delimiter = ',', default_value = "100")]
        paced: Vec<f64>,
    },
    /// docker run --rm / docker rm -f on the plugin vs the built-in macvlan
    /// driver vs --network none, on private dockerds (run from the repository root).
    Docker {
        /// Engines of the test rig: 20, 28 or both.
        #[arg(long, value_delimiter = ',', default_value = "20,28")]
        engines: Vec<String>,
        /// Rounds per engine (each measures every case once; 50 gives 100
        /// plugin calls of each kind, so that a p99 is not just the maximum).
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// `docker run --rm` on a dhcp=on network vs a static one of the
    /// plugin, dnsmasq beyond the DHCP network's parent.
    Dhcp {
        #[arg(long, value_delimiter = ',', default_value = "20,28")]
        engines: Vec<String>,
        #[arg(long, default_value_t = 30)]
        rounds: usize,
    },
    /// The durable store alone against a bare redb commit (one writer),
    /// then against redb alone behind the same group commit (issue #18).
    Store {
        /// Commits per case (and per one-client phase of the comparison).
        #[arg(long, default_value_t = 2000)]
        commits: usize,
        /// Rounds of the design comparison, interleaved (a, b, a, b, ...):
        /// on the shared 2-core machine, runs of 5 rounds gave one-client
        /// medians from 1.39x to 1.67x; more rounds steady the median.
        #[arg(long, default_value_t = 9)]
        rounds: usize,
        /// Concurrent clients of the comparison's throughput phase.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds per throughput phase.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
    },
    /// Instructions per call (valgrind's callgrind): the plugin's own
    /// user-space work, free of timing noise.
    Instructions {
        /// Calls of each kind.
        #[arg(long, default_value_t = 200)]
        calls: usize,
    },
    /// Binary size, idle RSS, exec to serving (empty and large state).
    Footprint {
        /// Start-ups per case.
        #[arg(long, default_value_t = 20)]
        starts: usize,
        /// Endpoints in the large state.
        #[arg(long, default_value_t = 100_000)]
        endpoints: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // one thread for the load generator: the plugin gets the other core
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // charts live beside the record file (bench/results/ of the repository)
    let link_base = cli
        .record
        .as_deref()
        .and_then(|f| f.parent())
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let results_dir = link_base.join("bench/results");
    std::fs::create_dir_all(&results_dir)?;
    let (name, report) = match &cli.bench {
        Bench::Ipam {
            levels,
            clients,
            seconds,
            family,
        } => {
            let families = match family.as_str() {
                "v4" => vec![ipam::Family::V4],
                "v6" => vec![ipam::Family::V6],
                "both" => vec![ipam::Family::V4, ipam::Family::V6],
                other => bail!("--family: '{other}' is not v4, v6 or both"),
            };
            let mut levels = levels.clone();
            levels.sort_unstable();
            let settings = ipam::Settings {
                levels,
                clients: (*clients).max(1),
                phase: Duration::from_secs_f64(seconds.max(0.1)),
                families,
            };
            let chart = results_dir.join("ipam-scale.svg");
            (
                "ipam",
                rt.block_on(ipam::run(&cli.plugin, &settings, &chart, &link_base))?,
            )
        }
        Bench::Lifecycle {
            clients,
            seconds,
            paced,
        } => {
            let settings = lifecycle::Settings {
                clients: clients.clone(),
                phase: Duration::from_secs_f64(seconds.max(0.1)),
                paced: paced.clone(),
            };
            (
                "lifecycle",
                rt.block_on(lifecycle::run(
                    &cli.plugin,
                    &settings,
                    &results_dir.join("lifecycle-latency.svg"),
                    &link_base,
                ))?,
            )
        }
        Bench::Docker { engines, rounds } => {
            let settings = docker::Settings {
                engines: engines.clone(),
                rounds: (*rounds).max(1),
                root: std::env::current_dir()?,
            };
            ("docker", docker::run(&settings)?)
        }
        Bench::Dhcp { engines, rounds } => {
            let settings = docker::Settings {
                engines: engines.clone(),
                rounds: (*rounds).max(1),
                root: std::env::current_dir()?,
            };
            ("dhcp", dhcp::run(&settings)?)
        }
        Bench::Store {
            commits,
            rounds,
            clients,
            seconds,
        } => {
            let settings = store::Settings {
                commits: (*commits).max(1),
                rounds: (*rounds).max(1),
                clients: (*clients).max(1),
                phase: Duration::from_secs_f64(seconds.max(0.1)),
            };
            ("store", rt.block_on(store::run(&settings))?)
        }
        Bench::Instructions { calls } => {
            let settings = instructions::Settings { calls: *calls };
            (
                "instructions",
                rt.block_on(instructions::run(&cli.plugin, &settings))?,
            )
        }
        Bench::Footprint { starts, endpoints } => {
            let settings = footprint::Settings {
                starts: (*starts).max(1),
                endpoints: *endpoints,
            };
            (
                "footprint",
                rt.block_on(footprint::run(&cli.plugin, &settings))?,
            )
        }
    };
    let report = format!("Measured {}.\n\n{report}", harness::machine_line());
    println!("{report}");
    if let Some(file) = &cli.record {
        harness::record_section(file, name, &report)?;
        eprintln!("recorded in {}", file.display());
    }
    Ok(())
}
