//! `cargo bench -p vestibule`: the whole benchmark suite in one run; results
//! in `target/bench/` and `docs/benchmarks.md`. `-- --smoke` runs a tiny
//! load that only proves the suite works; `-- --micro` only times one
//! plugin call; `-- --paced` only runs the fixed-rate rows; `-- --cluster`
//! only the cluster store's rows; `-- --quota` only its rows with each node
//! on a CPU quota.

mod suite;

use std::path::Path;

// The allocator `vestibule serve` uses (src/main.rs), so that the rows run
// in this process measure what the rows run against the binary do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if std::env::args().any(|a| a == "--micro") {
        println!("{}", suite::plugin_call_only());
        return;
    }
    let smoke = std::env::args().any(|a| a == "--smoke");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == "--paced") {
        println!("{}", runtime.block_on(suite::paced_only()));
        return;
    }
    if std::env::args().any(|a| a == "--quota") {
        println!("{}", runtime.block_on(suite::quota_only()));
        return;
    }
    if std::env::args().any(|a| a == "--cluster") {
        println!("{}", runtime.block_on(suite::cluster_only()));
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let options = suite::Options {
        smoke,
        out_dir: root.join("target/bench"),
        docs: (!smoke).then(|| root.join("docs/benchmarks.md")),
        command: if smoke {
            "cargo bench -p vestibule -- --smoke"
        } else {
            "cargo bench -p vestibule"
        }
        .into(),
    };
    let report = runtime.block_on(suite::run(&options));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    eprintln!("Results in {}", options.out_dir.display());
}
