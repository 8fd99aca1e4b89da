//! What the host tells a boot (the plan file) and what the guest tells the
//! host (lines on the acknowledgement channel, the guest's second serial
//! port), shared by both sides.

use crate::model::{Model, Outcome, Step};
use serde::{Deserialize, Serialize};

/// Where the plan file is in the guest.
pub const PLAN_PATH: &str = "/powercut.json";
/// Where the plugin binary is in the guest.
pub const PLUGIN_PATH: &str = "/ipvlan-rs";

/// I/O requests per second of a slow disk (qemu's throttling).
pub const SLOW_DISK_IOPS: u32 = 100;

/// How a boot ends.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The host kills qemu this many milliseconds after the plugin is
    /// started (the load runs meanwhile): the first start on an empty disk.
    HostAfterStart {
        /// Delay after the `Started` line.
        ms: u64,
    },
    /// The host kills qemu once it has read this many acknowledgements of
    /// this boot's load (or, with `on_intent`, as soon as the guest
    /// announces the call after them).
    HostAfterAcks {
        /// Acknowledgements of this boot.
        acks: u64,
        /// Cut on the next `Intent` line instead.
        on_intent: bool,
    },
    /// The guest resets itself (`echo b > /proc/sysrq-trigger`: no sync)
    /// this many microseconds after announcing the call that follows
    /// `acks` acknowledgements.
    GuestSysrq {
        /// Acknowledgements of this boot before the call it cuts.
        acks: u64,
        /// Delay after that call's `Intent` line.
        us: u64,
    },
    /// The host kills qemu the moment it reads the acknowledgement of the
    /// first duplicated call after `acks` acknowledgements, while the
    /// guest waits for the other copy's answer: where a copy answered from
    /// memory before the first one is durable loses its change.
    HostAfterDupAck {
        /// Acknowledgements of this boot before the duplicate looked for.
        acks: u64,
    },
    /// No cut: check, stop the plugin cleanly, pass.
    None,
}

/// The plan file of one boot.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Plan {
    /// File system of the disk (for `mount -t`).
    pub fs: String,
    /// Boot number (in this run).
    pub boot: u64,
    /// Seed of the load's choices in this boot.
    pub seed: u64,
    /// How the boot ends.
    pub cut: Cut,
    /// The host throttles the disk to [`SLOW_DISK_IOPS`] (a slow disk
    /// widens the time between a call's write and its flush's end).
    pub slow_disk: bool,
    /// What was acknowledged before this boot.
    pub model: Model,
}

/// What the check at the start of a boot found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// How the call in flight at the last cut ended (if there was one).
    pub in_flight: Option<Outcome>,
    /// Acknowledged facts checked: addresses (held and free), networks,
    /// live endpoints, deleted endpoints.
    pub facts: u64,
}

/// One line on the acknowledgement channel.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// The plugin process is being started.
    Started,
    /// The plugin answers on its socket, this many ms after `Started`.
    Ready(u64),
    /// The check passed.
    Checked(Checked),
    /// A call is about to be sent.
    Intent(Step),
    /// The call announced last was acknowledged with this outcome.
    Ack(Outcome),
    /// The check or the load found the plugin wrong.
    Finding(String),
    /// A `Cut::None` boot ended cleanly.
    Done,
}

impl Line {
    /// One line of JSON (no newline).
    pub fn encode(&self) -> String {
        // plain data: serialising it cannot fail
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A line read from the channel (`None`: not one of ours, e.g. noise).
    pub fn decode(line: &str) -> Option<Line> {
        serde_json::from_str(line.trim()).ok()
    }
}

/// The plan file of a replay run (`replay-guest`, see `replay.rs`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReplayPlan {
    /// File system of the disks (for `mount -t`).
    pub fs: String,
    /// Seed of the recorded load's choices.
    pub seed: u64,
    /// Calls the recorded load makes.
    pub calls: u64,
    /// States of the disk to check at most, spread evenly over the log
    /// (0: every one).
    pub max_points: u64,
}
