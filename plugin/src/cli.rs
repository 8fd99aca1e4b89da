//! `ipvlan-rs status`: the operator's view of a running plugin, read with
//! `GET /status` from its socket and shown as tables (or the JSON as is).
//!
//! It runs on the host, usually as the binary inside the managed plugin's
//! rootfs (see README, "Operating it"), and finds the socket the engine
//! made for the plugin unless told which.

use crate::status::Status;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The socket's file name: `interface.socket` in config.json. The engine
/// makes it `<exec-root>/plugins/<plugin ID>/ipvlan-rs.sock` on the host.
pub const SOCKET_NAME: &str = "ipvlan-rs.sock";

/// Where the engine puts managed plugins' sockets (whatever its exec-root:
/// the e2e suite's private engines put them there too).
pub const PLUGINS_DIR: &str = "/run/docker/plugins";

/// The subcommands of the binary (none: serve the plugin).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Show a running plugin's networks, endpoints, pools and drift
    /// between its records and the kernel (GET /status on its socket).
    Status(StatusArgs),
}

/// `ipvlan-rs status` options.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The plugin's socket (default: the one found as
    /// /run/docker/plugins/*/ipvlan-rs.sock).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Print the JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Why `ipvlan-rs status` could not show the status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No socket a plugin answers on where the engine puts them.
    #[error(
        "no plugin socket found as {dir}/*/{SOCKET_NAME} (is the plugin enabled? give --socket PATH)"
    )]
    NoSocket {
        /// The directory searched.
        dir: String,
    },
    /// More than one plugin of this kind is installed.
    #[error("several plugin sockets found, choose one with --socket: {}", .0.join(", "))]
    SeveralSockets(Vec<String>),
    /// The request failed.
    #[error("GET /status on {socket}: {message}")]
    Request {
        /// The socket asked.
        socket: String,
        /// What failed.
        message: String,
    },
}

/// Whether a plugin answers on `socket` (a crashed engine leaves its
/// plugins' sockets behind).
fn answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// The managed plugin's socket under `dir` (one directory per plugin),
/// among those a process answers on; outside the engine, a socket of that
/// name in `dir` itself.
pub fn find_socket(dir: &Path) -> Result<PathBuf, CliError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join(SOCKET_NAME))
                .filter(|p| answers(p))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 if answers(&dir.join(SOCKET_NAME)) => Ok(dir.join(SOCKET_NAME)),
        0 => Err(CliError::NoSocket {
            dir: dir.display().to_string(),
        }),
        _ => Err(CliError::SeveralSockets(
            found.iter().map(|p| p.display().to_string()).collect(),
        )),
    }
}

/// The body of `GET /status` on `socket`.
pub async fn fetch_status(socket: &Path) -> Result<String, CliError> {
    let fail = |message: String| CliError::Request {
        socket: socket.display().to_string(),
        message,
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let driving = tokio::spawn(conn);
    let request = hyper::Request::get("/status")
        .header(hyper::header::HOST, "ipvlan-rs")
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes();
    driving.abort();
    let text = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        return Err(fail(format!("{status}: {text}")));
    }
    Ok(text)
}

/// Lines of columns, each as wide as its widest cell.
fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(headers.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// The first 12 characters, as `docker network ls` shows IDs.
fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the
/// proleptic Gregorian calendar, counted from days in 400-year eras).
fn utc_text(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // shift the epoch to 0000-03-01 so leap days end each 4-year cycle
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The status as tables.
pub fn render(status: &Status) -> String {
    let d = &status.driver;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ipvlan-rs {}, link group {}\n\nNETWORKS",
        status.version, d.link_group
    );
    let rows: Vec<Vec<String>> = d
        .networks
        .iter()
        .map(|n| {
            let subnets: Vec<String> = n
                .ipv4
                .iter()
                .chain(&n.ipv6)
                .map(|s| match s.gateway {
                    Some(gw) => format!("{} gw {gw}", s.pool),
                    None => s.pool.to_string(),
                })
                .collect();
            let created = match &n.created_parent {
                Some(ipvlan_driver::CreatedParent::Vlan { base, vid }) => {
                    format!("802.1Q {vid} on {base}")
                }
                Some(ipvlan_driver::CreatedParent::Dummy) => "dummy".into(),
                None => "-".into(),
            };
            let parent_state = match n.parent_up {
                Some(true) => "up",
                Some(false) => "down",
                None => "MISSING",
            };
            vec![
                short(&n.id),
                n.kind.clone(),
                n.mode.clone(),
                n.parent.clone(),
                parent_state.into(),
                match n.parent_carrier {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
                .into(),
                or_dash(n.parent_oper_state.clone()),
                created,
                if n.internal { "yes" } else { "no" }.into(),
                if n.dhcp { "on" } else { "off" }.into(),
                match &n.host_link {
                    Some(h) if h.present => format!("{} {}", h.name, h.address),
                    Some(h) => format!("{} {} MISSING", h.name, h.address),
                    None => "-".into(),
                },
                subnets.join(", "),
                n.endpoints.to_string(),
                n.spares.len().to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "ID",
            "KIND",
            "MODE",
            "PARENT",
            "PARENT STATE",
            "CARRIER",
            "OPER STATE",
            "CREATED PARENT",
            "INTERNAL",
            "DHCP",
            "HOST LINK",
            "SUBNETS",
            "ENDPOINTS",
            "SPARES",
        ],
        &rows,
    );
    out.push_str("\nENDPOINTS\n");
    let rows: Vec<Vec<String>> = d
        .endpoints
        .iter()
        .map(|e| {
            vec![
                short(&e.id),
                short(&e.network),
                e.link.clone(),
                or_dash(e.ipv4),
                or_dash(e.ipv6),
                or_dash(e.mac.clone()),
                match e.joined {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                }
                .into(),
                if e.link_in_host { "host" } else { "-" }.into(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "ID", "NETWORK", "LINK", "IPV4", "IPV6", "MAC", "JOINED", "LINK IN",
        ],
        &rows,
    );
    // the endpoints' leases, then host links' (under the link's name)
    let leased: Vec<_> = d
        .endpoints
        .iter()
        .filter_map(|e| e.lease.as_ref().map(|l| (short(&e.id), &e.network, l)))
        .chain(d.networks.iter().filter_map(|n| {
            let h = n.host_link.as_ref()?;
            h.lease.as_ref().map(|l| (h.name.clone(), &n.id, l))
        }))
        .collect();
    if !leased.is_empty() {
        out.push_str("\nDHCP LEASES\n");
        let rows: Vec<Vec<String>> = leased
            .iter()
            .map(|(holder, network, l)| {
                vec![
                    holder.clone(),
                    short(network),
                    l.address.to_string(),
                    l.client_id.clone(),
                    l.server.to_string(),
                    l.expires_at.map_or_else(|| "never".into(), utc_text),
                    if l.lost { "LOST" } else { "held" }.into(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "ENDPOINT or HOST LINK",
                "NETWORK",
                "ADDRESS",
                "CLIENT ID",
                "SERVER",
                "EXPIRES",
                "STATE",
            ],
            &rows,
        );
    }
    out.push_str("\nPOOLS\n");
    let rows: Vec<Vec<String>> = status
        .ipam
        .pools
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.space.clone(),
                p.subnet.to_string(),
                or_dash(p.range),
                p.leases.to_string(),
                p.allocated.to_string(),
                p.free.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "POOL",
            "SPACE",
            "SUBNET",
            "RANGE",
            "LEASES",
            "ALLOCATED",
            "FREE",
        ],
        &rows,
    );
    for s in &status.ipam.spaces {
        let _ = writeln!(
            out,
            "space {}: {} pools, {} addresses allocated",
            s.name, s.pools, s.allocated
        );
    }
    out.push_str("\nDRIFT\n");
    if d.drift.is_empty() {
        out.push_str("none: the kernel matches the records\n");
    }
    for o in &d.drift.orphan_links {
        let _ = writeln!(
            out,
            "orphan {} {} (index {}): belongs to no endpoint or network; the next start deletes it",
            o.what, o.name, o.index
        );
    }
    for m in &d.drift.missing_links {
        let _ = writeln!(
            out,
            "missing link {} of endpoint {} (network {})",
            m.link,
            short(&m.endpoint),
            short(&m.network)
        );
    }
    for l in &d.drift.endpoints_on_a_lost_parent {
        let now = match l.index_now {
            Some(index) => format!("re-created, index {} now {index}", l.index_then),
            None => format!("index {}, gone", l.index_then),
        };
        let _ = writeln!(
            out,
            "lost link of endpoint {} (network {}): its parent {} ({now}) took it along; the container has no link on this network until it is restarted or reconnected",
            short(&l.endpoint),
            short(&l.network),
            l.parent
        );
    }
    for m in &d.drift.missing_host_links {
        let _ = writeln!(
            out,
            "missing host link {} of network {} (the next start re-creates it)",
            m.link,
            short(&m.network)
        );
    }
    for m in &d.drift.missing_parents {
        let what = if m.created {
            "created by the plugin: the next start re-creates it"
        } else {
            "the host's interface: containers cannot join until it is back"
        };
        let _ = writeln!(
            out,
            "missing parent {} of network {} ({what})",
            m.parent,
            short(&m.network)
        );
    }
    out
}

/// Runs `ipvlan-rs status`: prints the status to stdout, which socket it
/// used to stderr.
pub async fn status(args: &StatusArgs) -> Result<(), Box<dyn std::error::Error>> {
    let socket = match &args.socket {
        Some(s) => s.clone(),
        None => {
            let found = find_socket(Path::new(PLUGINS_DIR))?;
            eprintln!("using {}", found.display());
            found
        }
    };
    let body = fetch_status(&socket).await?;
    if args.json {
        println!("{body}");
    } else {
        let status: Status = serde_json::from_str(&body)?;
        print!("{}", render(&status));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipam::{IpamStatus, PoolStatus, SpaceStatus};
    use ipvlan_driver::{Drift, DriverStatus, EndpointOnLostParent, MissingParent};

    #[test]
    fn utc_text_reads_as_a_calendar_date() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(1_796_145_485), "2026-12-01 17:18:05 UTC");
    }

    #[test]
    fn an_ipv6_pool_count_beyond_u64_survives_json_and_drift_is_spelled_out() {
        let status = Status {
            version: "0.1.0".into(),
            driver: DriverStatus {
                link_group: 7,
                networks: vec![],
                endpoints: vec![],
                drift: Drift {
                    missing_parents: vec![MissingParent {
                        network: "n".repeat(64),
                        parent: "eth0.10".into(),
                        created: true,
                    }],
                    endpoints_on_a_lost_parent: vec![EndpointOnLostParent {
                        endpoint: "e".repeat(64),
                        network: "n".repeat(64),
                        parent: "eth0.10".into(),
                        index_then: 7,
                        index_now: Some(9),
                    }],
                    ..Drift::default()
                },
            },
            ipam: IpamStatus {
                spaces: vec![SpaceStatus {
                    name: "local".into(),
                    pools: 1,
                    allocated: 0,
                }],
                pools: vec![PoolStatus {
                    id: "local/fd00::/48".into(),
                    space: "local".into(),
                    subnet: "fd00::/48".parse().unwrap(),
                    range: None,
                    leases: 1,
                    allocated: 0,
                    free: (1u128 << 80) - 1,
                }],
            },
        };
        let json = serde_json::to_string(&status).unwrap();
        assert!(json.contains("1208925819614629174706175"), "{json}");
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(back, status);
        let text = render(&back);
        assert!(
            text.contains("missing parent eth0.10 of network nnnnnnnnnnnn (created by the plugin: the next start re-creates it)"),
            "{text}"
        );
        assert!(text.contains("1208925819614629174706175"), "{text}");
        assert!(
            text.contains("lost link of endpoint eeeeeeeeeeee (network nnnnnnnnnnnn): its parent eth0.10 (re-created, index 7 now 9) took it along"),
            "{text}"
        );
    }
}
