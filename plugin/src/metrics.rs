//! `GET /metrics`: the plugin's metrics in the Prometheus text format
//! (0.0.4), encoded with `prometheus-client`.
//!
//! Job: count what the HTTP edge sees (calls by name and outcome, their
//! latency) and, at each scrape, read what the domain crates expose as
//! plain numbers: the stores' commit observer, the driver's link and
//! DHCP counters, the IPAM's pool snapshot. The domain crates know no metrics
//! library; this file is the only one that does.
//!
//! Cost of a scrape: the counters are atomics; the pool gauges take the
//! IPAM's snapshot (its lock, O(allocated addresses)). No netlink.

use ipam::Ipam;
use ipvlan_driver::{DhcpCounts, Driver, LinkCounts};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Duration;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const PREFIX: &str = "ipvlan_rs";

type CallLabels = [(&'static str, &'static str); 2];

/// A call's outcomes, as `calls_total` labels them: ok first.
const OUTCOMES: [&str; 2] = ["ok", "error"];

/// A call as the metrics name it: its path without the slash
/// (`NetworkDriver.Join`).
fn call_name(call: protocol::Call) -> &'static str {
    call.path().trim_start_matches('/')
}

fn call_labels(call: protocol::Call, outcome: &'static str) -> CallLabels {
    [("call", call_name(call)), ("outcome", outcome)]
}
type NameLabel = [(&'static str, &'static str); 1];

/// 50 us to ~7 s: a call answered from memory to one waiting on a slow disk.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.5, 14))
}

type Seconds = Family<NameLabel, Histogram, fn() -> Histogram>;

/// Registers a latency histogram family `<name>_seconds`.
fn seconds(registry: &mut Registry, name: &str, help: &str) -> Seconds {
    let family: Seconds = Family::new_with_constructor(latency_histogram);
    registry.register_with_unit(name, help, Unit::Seconds, family.clone());
    family
}

/// The registry and the metrics the HTTP edge updates itself.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Seconds,
}

impl Metrics {
    /// Registers every metric and subscribes to the stores' commits.
    pub fn new(ipam: Arc<Ipam>, driver: Arc<Driver>) -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let calls = Family::<CallLabels, Counter>::default();
        // every pair at zero from the start: a scrape before the first
        // call shows the series, and rate() has a start to count from
        for call in protocol::Call::ALL {
            for outcome in OUTCOMES {
                drop(calls.get_or_create(&call_labels(*call, outcome)));
            }
        }
        registry.register(
            "calls",
            "Protocol calls answered, by call and outcome (ok, error)",
            calls.clone(),
        );
        let call_seconds = seconds(
            &mut registry,
            "call_duration",
            "Time from request to answer, by call",
        );
        let commits = Family::<NameLabel, Counter>::default();
        registry.register(
            "store_commits",
            "Durable writes (one log record and fdatasync each) of a state file",
            commits.clone(),
        );
        let changes = Family::<NameLabel, Counter>::default();
        registry.register(
            "store_changes",
            "Changes made durable in a state file",
            changes.clone(),
        );
        let commit_seconds = seconds(
            &mut registry,
            "store_commit_duration",
            "Time of one durable write, write to end of fdatasync",
        );
        let observer = |store: &'static str| -> store::CommitObserver {
            let labels = [("store", store)];
            let (commits, changes, seconds) =
                (commits.clone(), changes.clone(), commit_seconds.clone());
            Arc::new(move |c: store::CommitRecord| {
                commits.get_or_create(&labels).inc();
                changes.get_or_create(&labels).inc_by(c.changes as u64);
                seconds
                    .get_or_create(&labels)
                    .observe(c.elapsed.as_secs_f64());
            })
        };
        ipam.observe_commits(observer("ipam"));
        driver.observe_commits(observer("driver"));
        registry.register_collector(Box::new(DomainCollector { ipam, driver }));
        Metrics {
            registry,
            calls,
            call_seconds,
        }
    }

    /// Counts one answered call.
    pub fn call(&self, call: protocol::Call, ok: bool, elapsed: Duration) {
        let outcome = OUTCOMES[usize::from(!ok)];
        self.calls.get_or_create(&call_labels(call, outcome)).inc();
        self.call_seconds
            .get_or_create(&[("call", call_name(call))])
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics as Prometheus text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Reads the domain's numbers at each scrape.
struct DomainCollector {
    ipam: Arc<Ipam>,
    driver: Arc<Driver>,
}

impl std::fmt::Debug for DomainCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A gauge per pool, labelled with its ID and space.
fn pool_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    pools: &[ipam::PoolStatus],
    value: impl Fn(&ipam::PoolStatus) -> f64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for p in pools {
        let labels = [("pool", p.id.as_str()), ("space", p.space.as_str())];
        ConstGauge::new(value(p)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for DomainCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let LinkCounts {
            container_links_created,
            container_links_reused,
            container_links_deleted,
            parents_created,
            parents_deleted,
            reaper_queue,
        } = self.driver.link_counts();
        let e = &mut encoder;
        counter(
            e,
            "container_links_created",
            "Container links created by Join",
            container_links_created,
        )?;
        counter(
            e,
            "container_links_reused",
            "Released container links reused by Join instead of a new one",
            container_links_reused,
        )?;
        counter(
            e,
            "container_links_deleted",
            "Container links deleted",
            container_links_deleted,
        )?;
        counter(
            e,
            "parents_created",
            "Dummy and 802.1Q parents created (or re-created at start)",
            parents_created,
        )?;
        counter(
            e,
            "parents_deleted",
            "Created parents deleted",
            parents_deleted,
        )?;
        gauge(
            e,
            "reaper_queue",
            "Released container links waiting to be deleted",
            reaper_queue,
        )?;

        let DhcpCounts {
            exchanges,
            leases_held,
        } = self.driver.dhcp_counts();
        let mut family = e.encode_descriptor(
            "dhcp_exchanges",
            "DHCP exchanges of dhcp=on endpoints, by kind (acquire, renew, rebind, reboot, release, decline) and outcome (ok, nak, timeout, error)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (kind, outcome, n) in exchanges {
            let labels = [("kind", kind.name()), ("outcome", outcome.name())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        gauge(
            e,
            "dhcp_leases",
            "DHCP leases held for endpoints",
            leases_held,
        )?;

        let pools = self.ipam.status().pools;
        pool_gauge(
            e,
            "pool_allocated_addresses",
            "Addresses a pool allocated (gateway, --ip, dynamic)",
            &pools,
            |p| p.allocated as f64,
        )?;
        pool_gauge(
            e,
            "pool_free_addresses",
            "Addresses a pool's dynamic range has free (IPv6 ranges beyond 2^53 are approximate)",
            &pools,
            |p| p.free as f64,
        )?;
        Ok(())
    }
}
