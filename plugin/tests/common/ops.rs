//! The operator's view as tests read it: `GET /status` decoded, and
//! `GET /metrics` parsed as Prometheus text.

use super::Plugin;
use ipvlan_rs::status::Status;
use std::collections::HashMap;

/// `GET /status`, decoded.
pub fn status(p: &Plugin) -> Status {
    let r = super::request(&p.socket, "GET", "/status", b"");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// A scrape parsed as Prometheus text, with each family's `# TYPE`: the
/// parser types a sample only when its name is the family's, which a
/// histogram's `_count` and `_sum` never are.
pub struct Scrape {
    /// The samples as the parser read them.
    pub parsed: prometheus_parse::Scrape,
    /// Family name to its `# TYPE` (`counter`, `gauge`, `histogram`...).
    types: HashMap<String, String>,
}

/// Parses a scrape.
pub fn scrape(text: &str) -> Scrape {
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let types = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(family, kind)| (family.to_string(), kind.trim().to_string()))
        .collect();
    Scrape { parsed, types }
}

/// The family a sample name belongs to and the `# TYPE` that family must
/// have: `_count` and `_sum` a histogram's (the family is the name
/// without them), `_total` a counter's (in the 0.0.4 text format the
/// family keeps the suffix), any other name a gauge's.
fn family_of(name: &str) -> (&str, &'static str) {
    for suffix in ["_count", "_sum"] {
        if let Some(family) = name.strip_suffix(suffix) {
            return (family, "histogram");
        }
    }
    match name.ends_with("_total") {
        true => (name, "counter"),
        false => (name, "gauge"),
    }
}

/// Whether the sample `name` with these labels is in the scrape.
pub fn has(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> bool {
    samples(s, name, labels).next().is_some()
}

fn samples<'a>(
    s: &'a Scrape,
    name: &'a str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a prometheus_parse::Sample> {
    s.parsed.samples.iter().filter(move |x| {
        x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))
    })
}

/// The value of `name` with these labels (0 when absent: a family with
/// no sample yet is not printed). A sample that is there must be of the
/// type its name says (see [`family_of`]).
pub fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples(s, name, labels)
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a single value"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    if !found.is_empty() {
        let (family, want) = family_of(name);
        assert_eq!(
            s.types.get(family).map(String::as_str),
            Some(want),
            "# TYPE of {family} (sample {name})"
        );
    }
    found.first().copied().unwrap_or(0.0)
}

/// `GET /metrics`, parsed.
pub fn metrics(p: &Plugin) -> Scrape {
    let r = super::request(&p.socket, "GET", "/metrics", b"");
    assert_eq!(r.status, 200, "{}", r.body);
    scrape(&r.body)
}
