//! Fuzzing every vendor's whole way in — authentication, signature check,
//! parsing, normalization, redaction for plugins, and the journal's JSON —
//! for a bounded time, in the test suite.
//!
//! Each `fuzz_*` test mutates the vendor's samples (bytes, JSON values,
//! splices, deep nesting), signs each mutant as the vendor would (so it gets
//! past the signature check into the parser) or garbles its signature, and
//! runs it through the same code a request takes. No input may panic. Each
//! runs for `VESTIBULE_FUZZ_SECONDS` (default 3) from a seed it prints
//! (`VESTIBULE_FUZZ_SEED` repeats a run).
//!
//! A crash is saved to `tests/fuzz/<vendor>/crash-<hash>` and the test
//! fails; committed there, it is replayed first by every later run — a
//! regression test. Two fixed-seed tests also run a known set of mutants.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use vestibule::config::{Config, VendorKind};
use vestibule::event::Event;
use vestibule::secrecy::{self, Secrecy};
use vestibule::vendors::{self, Auth, NormalizeError, Request, Verified};

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
        (self.next() % n.max(1) as u64) as usize
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
    b"-9223372036854775808",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"true",
    b"\xff\xfe",
    b"{\"data\":null}",
    b"\"2025-13-45T99:99:99Z\"",
    b"\"+4512345678\"",
];

/// Values a field's reader may not expect.
fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => Value::Bool(rng.next().is_multiple_of(2)),
        2 => serde_json::json!(rng.next() as i64),
        3 => {
            let float = f64::from_bits(rng.next());
            serde_json::json!(if float.is_finite() { float } else { 0.5 })
        }
        4 => Value::String(String::new()),
        5 => Value::String("é\u{0}😀".repeat(rng.below(200))),
        6 => serde_json::json!([]),
        7 => serde_json::json!({}),
        8 => {
            let mut nested = Value::Null;
            for _ in 0..rng.below(300) {
                nested = serde_json::json!([nested]);
            }
            nested
        }
        _ => Value::String("x".repeat(rng.below(70_000))),
    }
}

fn mutate_bytes(rng: &mut Rng, sample: &[u8]) -> Vec<u8> {
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

/// Replace a random node of the sample's JSON with an odd value, drop a
/// key, or graft in a node from another sample.
fn mutate_json(rng: &mut Rng, sample: &[u8], other: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(sample) else {
        return mutate_bytes(rng, sample);
    };
    let graft = serde_json::from_slice::<Value>(other).ok();
    for _ in 0..=rng.below(3) {
        mutate_node(rng, &mut value, graft.as_ref());
    }
    value.to_string().into_bytes()
}

/// Walk down a random path from `node`, then change what is there.
fn mutate_node(rng: &mut Rng, node: &mut Value, graft: Option<&Value>) {
    let deeper = rng.below(4) != 0;
    match node {
        Value::Object(map) if deeper && !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            return mutate_node(rng, map.get_mut(&key).unwrap(), graft);
        }
        Value::Array(items) if deeper && !items.is_empty() => {
            let i = rng.below(items.len());
            return mutate_node(rng, &mut items[i], graft);
        }
        _ => {}
    }
    match (rng.below(3), node, graft) {
        (0, Value::Object(map), _) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            map.remove(&key);
        }
        (1, node, Some(graft)) => *node = graft.clone(),
        (_, node, _) => *node = odd_value(rng),
    }
}

const SECRET: &str = crate::support::SECRET;
const BASIC: &str = "vestibule:6601f1243d2ff70f";

/// A source of `vendor` as a config would set it up, with its secrets
/// (`None` for the WebSocket source, which authenticates nothing).
fn auth(vendor: VendorKind, dir: &Path) -> Option<Auth> {
    if vendor.dials_out() {
        return None;
    }
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let auth = match vendor {
        VendorKind::Unloc => "[sources.basic_auth]\nusername = \"vestibule\"\npassword_file = \"secret\"\n",
        VendorKind::Pdk => {
            "secret_file = \"secret\"\n[sources.basic_auth]\nusername = \"vestibule\"\npassword_file = \"secret\"\n"
        }
        _ => "secret_file = \"secret\"\n",
    };
    let text = format!("[[sources]]\nname = \"fuzz\"\nvendor = \"{vendor}\"\n{auth}");
    let config = Config::parse(&text, &dir.join("fuzz.toml")).unwrap();
    Some(vendors::build(&config.context(), 0, &config.sources[0]).unwrap().1)
}

const ID_KEY: vestibule::event::IdKey = vestibule::event::IdKey::new([7; 32]);

/// One input the way a request takes it: Basic and required headers,
/// signature, normalization; then what plugins and the journal do with the
/// event. Refusals are fine; panics are not.
fn one_request(vendor: VendorKind, auth: Option<&Auth>, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let request = Request {
        source: "fuzz",
        headers,
        body,
        received_at: vestibule::time::now_ms(),
        id_key: &ID_KEY,
    };
    let event = match auth {
        None => vendors::unifi_access_ws::normalize(&request).map_err(|e| e.to_string())?,
        Some(auth) => {
            auth.check_request(headers).map_err(|e| e.to_string())?;
            let implementation = vendors::get(vendor);
            let verified = implementation.verify(&request, auth).map_err(|e| e.to_string())?;
            implementation
                .normalize(&request, verified)
                .map_err(|e| e.to_string())?
        }
    };
    check_event(&event, body);
    Ok(())
}

/// What must hold of any event a vendor mapping produced.
fn check_event(event: &Event, body: &[u8]) {
    assert_eq!(event.raw, String::from_utf8_lossy(body), "raw is kept");
    assert!(!event.kind.is_empty() && !event.id.is_empty());
    for level in [Secrecy::NoCredentials, Secrecy::NoPeople] {
        let vendor = vendors::by_name(&event.vendor).map(|v| v as &dyn secrecy::Redact);
        let seen = secrecy::redact(event, level, vendor);
        assert!(seen.raw.is_empty() || serde_json::from_str::<Value>(&seen.raw).is_ok());
        if level == Secrecy::NoCredentials {
            assert!(seen.credential.iter().all(|c| c.value.is_none()));
        }
    }
    let stored = serde_json::to_string(event).unwrap();
    assert_eq!(
        &serde_json::from_str::<Event>(&stored).unwrap(),
        event,
        "the journal round trip"
    );
}

/// The headers the vendor sends with `body`: signed right, or now and then
/// garbled, dropped or doubled.
fn headers(rng: &mut Rng, vendor: VendorKind, body: &[u8]) -> HeaderMap {
    let signed = vestibule::cli::send::sign(vendor, Some(SECRET), Some(BASIC), body.to_vec());
    let mut headers = HeaderMap::new();
    for (name, value) in signed.headers {
        let name: HeaderName = name.parse().unwrap();
        let value = match rng.below(8) {
            0 => continue,
            1 => {
                let garbled = mutate_bytes(rng, value.as_bytes());
                match HeaderValue::from_bytes(&garbled) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
            _ => HeaderValue::from_str(&value).unwrap(),
        };
        headers.append(name, value);
    }
    headers
}

/// The parsers under test: every webhook vendor, and the UniFi WebSocket
/// notification mapping.
fn vendors() -> Vec<VendorKind> {
    let mut all = VendorKind::WEBHOOKS.to_vec();
    all.push(VendorKind::UnifiAccessWs);
    all
}

fn samples(vendor: VendorKind) -> &'static [(&'static str, &'static str)] {
    match vendor {
        VendorKind::UnifiAccessWs => vendors::unifi_access_ws::SAMPLES,
        _ => vendors::get(vendor).samples(),
    }
}

fn regressions(vendor: VendorKind) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fuzz/{vendor}"))
}

/// Run `vendor`'s saved crashes, then fuzz it for the configured time.
fn fuzz(vendor: VendorKind) {
    let _turn = crate::support::heavy();
    let dir = tempfile::tempdir().unwrap();
    let auth = auth(vendor, dir.path());
    let saved = regressions(vendor);
    for entry in std::fs::read_dir(&saved).into_iter().flatten().flatten() {
        let body = std::fs::read(entry.path()).unwrap();
        let headers = vestibule::cli::send::sign(vendor, Some(SECRET), Some(BASIC), body.clone()).headers;
        let headers: HeaderMap = headers
            .into_iter()
            .map(|(k, v)| (k.parse::<HeaderName>().unwrap(), HeaderValue::from_str(&v).unwrap()))
            .collect();
        let _ = one_request(vendor, auth.as_ref(), &headers, &body);
    }

    let seconds: u64 = std::env::var("VESTIBULE_FUZZ_SECONDS").map_or(3, |s| s.parse().unwrap());
    let seed: u64 = std::env::var("VESTIBULE_FUZZ_SEED").map_or_else(
        |_| vestibule::time::now_ms() as u64 ^ (vendor as u64) << 56,
        |s| s.parse().unwrap(),
    );
    println!("fuzz {vendor}: seed {seed}, {seconds} s");
    let mut rng = Rng(seed | 1);
    let samples = samples(vendor);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut normalized) = (0u64, 0u64);
    while Instant::now() < deadline {
        let sample = samples[rng.below(samples.len())].1.as_bytes();
        let other = samples[rng.below(samples.len())].1.as_bytes();
        let body = match rng.below(3) {
            0 => mutate_bytes(&mut rng, sample),
            _ => mutate_json(&mut rng, sample, other),
        };
        let headers = headers(&mut rng, vendor, &body);
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| one_request(vendor, auth.as_ref(), &headers, &body)));
        runs += 1;
        match outcome {
            Ok(Ok(())) => normalized += 1,
            Ok(Err(_)) => {}
            Err(_) => {
                std::fs::create_dir_all(&saved).unwrap();
                let file = saved.join(format!("crash-{}", &hex::encode(Sha256::digest(&body))[..12]));
                std::fs::write(&file, &body).unwrap();
                panic!(
                    "{vendor}: this input panicked (seed {seed}); saved as {} — commit it as a regression",
                    file.display()
                );
            }
        }
    }
    println!("fuzz {vendor}: {runs} inputs, {normalized} normalized, the rest refused; no panic");
    assert!(runs > 100, "{vendor}: only {runs} inputs in {seconds} s");
    assert!(
        normalized > 0,
        "{vendor}: nothing got past the signature check and the parser"
    );
}

#[test]
fn fuzz_unifi_access() {
    fuzz(VendorKind::UnifiAccess);
}

#[test]
fn fuzz_unifi_access_ws() {
    fuzz(VendorKind::UnifiAccessWs);
}

#[test]
fn fuzz_verkada() {
    fuzz(VendorKind::Verkada);
}

#[test]
fn fuzz_pdk() {
    fuzz(VendorKind::Pdk);
}

#[test]
fn fuzz_unloc() {
    fuzz(VendorKind::Unloc);
}

#[test]
fn fuzz_bas_ip() {
    fuzz(VendorKind::BasIp);
}

#[test]
fn fuzz_standard_webhooks() {
    fuzz(VendorKind::StandardWebhooks);
}

/// The same mutants every run (fixed seed): both outcomes happen, so the
/// mutations reach past the JSON parser.
#[test]
fn mutated_samples_never_panic() {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut normalized, mut refused) = (0, 0);
    for vendor in vendors() {
        for (_, sample) in samples(vendor) {
            for _ in 0..200 {
                let body = mutate_bytes(&mut rng, sample.as_bytes());
                match normalize(vendor, &body) {
                    Ok(()) => normalized += 1,
                    Err(_) => refused += 1,
                }
            }
        }
    }
    assert!(
        normalized > 1000 && refused > 1000,
        "{normalized} normalized, {refused} refused"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0xB17E_5000_0000_0001);
    for vendor in vendors() {
        for _ in 0..2000 {
            let len = rng.below(64);
            let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = normalize(vendor, &body);
        }
    }
}

/// Normalization alone, as if verified.
fn normalize(vendor: VendorKind, body: &[u8]) -> Result<(), NormalizeError> {
    let headers = HeaderMap::new();
    let request = Request {
        source: "fuzz",
        headers: &headers,
        body,
        received_at: 1_763_805_600_000,
        id_key: &ID_KEY,
    };
    let event = match vendor {
        VendorKind::UnifiAccessWs => vendors::unifi_access_ws::normalize(&request)?,
        _ => vendors::get(vendor).normalize(&request, Verified::default())?,
    };
    check_event(&event, body);
    Ok(())
}
