//! Mutated engine captures through the real socket of the real binary, in a
//! network namespace with a veth parent: no input makes a handler panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NetNs, request};

/// Deterministic xorshift, so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that have broken parsers elsewhere.
const NASTY: &[&str] = &[
    "",
    "null",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"lo\"",
    "\"hp0\"",
    "\"hp0.4095\"",
    "\"../../etc\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"0.0.0.0/0\"",
    "\"::/0\"",
    "\"255.255.255.255/32\"",
    "\"fe80::1%eth0\"",
    "\"10.0.0.1/24 \"",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":null}}}",
];

fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            // flip a byte
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            // truncate
            1 if !b.is_empty() => b.truncate(rng.below(b.len())),
            // replace a value after a colon
            2 => {
                let colons: Vec<usize> = b
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == b':')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = colons.get(rng.below(colons.len())) {
                    let end = b[at + 1..]
                        .iter()
                        .position(|c| matches!(c, b',' | b'}' | b']'))
                        .map_or(b.len(), |p| at + 1 + p);
                    let nasty = NASTY[rng.below(NASTY.len())].as_bytes();
                    b.splice(at + 1..end, nasty.iter().copied());
                }
            }
            // insert a nasty value anywhere
            3 => {
                let at = rng.below(b.len() + 1);
                let nasty = NASTY[rng.below(NASTY.len())].as_bytes();
                b.splice(at..at, nasty.iter().copied());
            }
            // duplicate a slice
            4 if !b.is_empty() => {
                let (x, y) = (rng.below(b.len()), rng.below(b.len()));
                let (x, y) = (x.min(y), x.max(y));
                let piece = b[x..y].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, piece);
            }
            // random bytes
            _ => {
                let at = rng.below(b.len() + 1);
                let junk: Vec<u8> = (0..rng.below(8) + 1).map(|_| rng.next() as u8).collect();
                b.splice(at..at, junk);
            }
        }
    }
    b
}

/// Mutated engine captures, at every call of the protocol: each answer is
/// 200 or a well-formed 500, and no handler panics.
#[test]
fn mutated_engine_requests_never_panic_the_server() {
    let ns = NetNs::new("hm").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    let p = common::start(Some(&ns.name), &[]);
    let mut seeds: Vec<(String, String)> = common::fixture("dockerd-20.10-requests.jsonl")
        .into_iter()
        .chain(common::fixture("dockerd-28.5-requests.jsonl"))
        .map(|(_, path, raw)| (path, raw))
        .filter(|(path, _)| protocol::Call::from_path(path).is_some())
        .collect();
    seeds.sort();
    seeds.dedup();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0, 0);
    let rounds = 1500;
    for i in 0..rounds {
        let (path, raw) = &seeds[rng.below(seeds.len())];
        // mostly the call the body belongs to, sometimes another one
        let path = if rng.below(8) == 0 {
            protocol::Call::ALL[rng.below(protocol::Call::ALL.len())].path()
        } else {
            path.as_str()
        };
        let body = mutate(&mut rng, raw.as_bytes());
        let r = request(&p.socket, "POST", path, &body);
        match r.status {
            200 => {
                assert!(r.json().is_object(), "{path}: {}", r.body);
                ok += 1;
            }
            500 => {
                r.assert_error(500);
                refused += 1;
            }
            other => panic!(
                "round {i}: {path} {:?}: status {other}: {}",
                String::from_utf8_lossy(&body),
                r.body
            ),
        }
        if i % 100 == 0 {
            let c = p.post("/NetworkDriver.GetCapabilities", "");
            assert_eq!(c.status, 200, "round {i}: {}", c.body);
        }
    }
    let log = p.log_text();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    eprintln!("mutated: {rounds} requests, {ok} accepted, {refused} refused, no panic");
    assert!(
        refused > rounds / 4 && ok > 0,
        "{ok} accepted, {refused} refused"
    );
}
