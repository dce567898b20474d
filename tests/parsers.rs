//! No input makes a vendor mapping panic: arbitrary bytes and mutated
//! samples either normalize or are refused as malformed (a 400), for every
//! vendor. Mutations are pseudo-random with a fixed seed, so a failure
//! reproduces.

use hyper::HeaderMap;
use vestibule::config::VendorKind;
use vestibule::vendors::{self, NormalizeError, Request, Verified};

/// xorshift64*: small, deterministic, good enough to scramble bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that tend to matter to a JSON reader.
const INTERESTING: &[&[u8]] = &[
    b"null",
    b"{}",
    b"[]",
    b"\"\"",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"true",
    b"\xff\xfe",
    b"{\"data\":null}",
    b"\"2025-13-45T99:99:99Z\"",
];

fn mutate(rng: &mut Rng, sample: &[u8]) -> Vec<u8> {
    let mut body = sample.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(body.len().max(1));
        match rng.below(4) {
            0 if !body.is_empty() => body[at] = rng.next() as u8,
            1 => {
                let end = (at + rng.below(16)).min(body.len());
                body.drain(at..end);
            }
            2 => {
                let insert = INTERESTING[rng.below(INTERESTING.len())];
                body.splice(at.min(body.len())..at.min(body.len()), insert.iter().copied());
            }
            _ => {
                // Replace a JSON value: from a ':' to the next ',' or '}'.
                if let Some(colon) = body[at..].iter().position(|&b| b == b':') {
                    let start = at + colon + 1;
                    let len = body[start..].iter().position(|&b| b == b',' || b == b'}').unwrap_or(0);
                    let value = INTERESTING[rng.below(INTERESTING.len())];
                    body.splice(start..start + len, value.iter().copied());
                }
            }
        }
    }
    body
}

/// The parsers under test: every webhook vendor, and the UniFi WebSocket
/// notification mapping.
fn parsers() -> Vec<(VendorKind, &'static [(&'static str, &'static str)])> {
    let mut all: Vec<_> = VendorKind::WEBHOOKS
        .iter()
        .map(|&v| (v, vendors::get(v).samples()))
        .collect();
    all.push((VendorKind::UnifiAccessWs, vendors::unifi_access_ws::SAMPLES));
    all
}

fn normalize(vendor: VendorKind, body: &[u8]) -> Result<(), NormalizeError> {
    let headers = HeaderMap::new();
    let request = Request {
        source: "fuzz",
        headers: &headers,
        body,
        received_at: 1_763_805_600_000,
    };
    let event = match vendor {
        VendorKind::UnifiAccessWs => vendors::unifi_access_ws::normalize(&request)?,
        _ => vendors::get(vendor).normalize(&request, Verified::default())?,
    };
    assert_eq!(event.raw, String::from_utf8_lossy(body), "raw is kept");
    assert!(!event.kind.is_empty() && !event.id.is_empty());
    Ok(())
}

#[test]
fn mutated_samples_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut normalized, mut refused) = (0, 0);
    for (vendor, samples) in parsers() {
        for (_, sample) in samples {
            for _ in 0..200 {
                let body = mutate(&mut rng, sample.as_bytes());
                match normalize(vendor, &body) {
                    Ok(()) => normalized += 1,
                    Err(_) => refused += 1,
                }
            }
        }
    }
    // Both outcomes happen: the mutations reach past the JSON parser.
    assert!(
        normalized > 1000 && refused > 1000,
        "{normalized} normalized, {refused} refused"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0xB17E_5000_0000_0001);
    for (vendor, _) in parsers() {
        for _ in 0..2000 {
            let len = rng.below(64);
            let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = normalize(vendor, &body);
        }
    }
}
