//! What the kill -9 storms share: posting to a plugin that may die, quiet panics from its dead
//! socket, the kill count and schedule, and a seeded random sequence.

use super::{GUARD, Plugin, eventually, request};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Alive while the plugin answers; a refused connection ends a client.
pub fn try_post(socket: &Path, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let socket = socket.to_path_buf();
    let (path, body) = (path.to_string(), body.to_string());
    // request() panics on a dead socket; catch that as "plugin gone"
    std::panic::catch_unwind(move || {
        let r = request(&socket, "POST", &path, body.as_bytes());
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        )
    })
    .ok()
    .filter(|(status, _)| *status != 0)
}

/// Clients see the plugin die mid-request: `request` panics then ("connect
/// ...", "no HTTP reply"), which `try_post` catches. Those panics are not
/// printed; every other panic (an assertion) is, by the default hook. Set
/// once for the test binary: tests run in parallel and share the hook.
pub fn quiet_dead_socket_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(msg.starts_with("connect ") || msg.starts_with("no HTTP reply")) {
                default(info);
            }
        }));
    });
}

/// How many times a storm kills the plugin: `default`, or `CRASH_KILLS`
/// (`make soak` runs hundreds).
pub fn kills(default: u64) -> u64 {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until `acked` has grown by `more` since this round began, so that
/// each kill lands after a chosen amount of acknowledged work, whatever the
/// machine's speed (a kill after a fixed time would find a slow machine
/// with too little done), and fails if the clients stop making progress.
pub fn kill_after(plugin: &mut Plugin, acked: &AtomicUsize, more: usize, round: u64) {
    let target = acked.load(Ordering::Relaxed) + more;
    assert!(
        eventually(GUARD, || acked.load(Ordering::Relaxed) >= target),
        "round {round}: the clients acknowledged fewer than {more} changes within {:?}",
        GUARD
    );
    plugin.kill9();
}

pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}
