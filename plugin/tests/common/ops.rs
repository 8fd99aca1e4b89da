//! The operator's view as tests read it: `GET /status` decoded, and
//! `GET /metrics` parsed as Prometheus text.

use super::Plugin;
use ipvlan_rs::status::Status;

/// `GET /status`, decoded.
pub fn status(p: &Plugin) -> Status {
    let r = super::request(&p.socket, "GET", "/status", b"");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// A scrape parsed as Prometheus text.
pub fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of `name` with these labels (0 when absent: a family with
/// no sample yet is not printed).
pub fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a single value"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied().unwrap_or(0.0)
}

/// `GET /metrics`, parsed.
pub fn metrics(p: &Plugin) -> prometheus_parse::Scrape {
    let r = super::request(&p.socket, "GET", "/metrics", b"");
    assert_eq!(r.status, 200, "{}", r.body);
    scrape(&r.body)
}
