//! The benchmark suite runs end to end on a tiny load and writes its
//! results; the numbers of a smoke run mean nothing and are not checked.

#[tokio::test(flavor = "multi_thread")]
async fn the_benchmark_suite_runs_and_writes_its_results() {
    let _turn = crate::support::heavy();
    let dir = tempfile::tempdir().unwrap();
    let options = crate::suite::Options {
        smoke: true,
        out_dir: dir.path().to_path_buf(),
        docs: None,
        command: "smoke test".into(),
    };
    let report = crate::suite::run(&options).await;
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap()).unwrap();
    assert_eq!(written, report);
    let markdown = std::fs::read_to_string(dir.path().join("results.md")).unwrap();
    assert!(
        markdown.contains("| Vestibule: 3 plugins + HTTP sink (durable) |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("with the journal on disk, ingest serves "),
        "{markdown}"
    );
    assert!(report["load"]["journal_on_vs_off_rps"].as_f64().unwrap() > 0.0);
    for scenario in [
        "bare_hyper",
        "verify_normalize",
        "verify_normalize_journal",
        "three_plugins_http_sink",
        "three_plugins_fixed_rate",
    ] {
        let requests = report["load"][scenario]["requests"].as_u64().unwrap();
        assert!(requests > 0, "{scenario} sent nothing");
        assert_eq!(report["load"][scenario]["errors"], 0, "{scenario}");
    }
    assert!(
        report["load"]["three_plugins_http_sink"]["to_sink_us"]["delivered"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(markdown.contains("## Load from outside (wrk)"), "{markdown}");
    let outside = &report["outside"];
    for row in [
        &outside["bare_hyper"],
        &outside["ingest"],
        &outside["chain"]["doors_64"],
        &outside["chain"]["one_door"],
    ] {
        assert!(row["accepted"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["statuses"]["401"], serde_json::Value::Null, "{row}");
    }
    // Every request with the wrong secret is refused, none accepted.
    assert!(
        outside["forged"]["refused_401_per_s"].as_f64().unwrap() > 0.0,
        "{outside}"
    );
    assert_eq!(outside["forged"]["accepted"], 0, "{outside}");
    assert!(
        outside["chain"]["doors_64"]["delivered"].as_u64().unwrap() > 0,
        "{outside}"
    );
    assert!(markdown.contains("## Cluster store (NATS JetStream)"), "{markdown}");
    assert!(
        markdown.contains("| 2 nodes, 3 NATS servers: 3 plugins + HTTP sink |"),
        "{markdown}"
    );
    for rows in ["one_node_one_server", "two_nodes_three_servers"] {
        for scenario in ["saturated", "paced"] {
            let row = &report["cluster"][rows][scenario];
            assert!(row["requests"].as_u64().unwrap() > 0, "{rows} {scenario} sent nothing");
            assert_eq!(row["errors"], 0, "{rows} {scenario}");
            let delivered = row["to_sink_us"]["delivered"].as_u64().unwrap();
            assert!(delivered > 0, "{rows} {scenario}: nothing reached the sink");
        }
    }
    assert!(markdown.contains("## Reloading under load"), "{markdown}");
    let reload = &report["reload"];
    assert_eq!(reload["reloads"], 2);
    assert!(reload["written_to_serving_ms"]["max"].as_u64().unwrap() > 0);
    for load in ["without_reloads", "with_reloads"] {
        assert!(reload[load]["requests"].as_u64().unwrap() > 0, "{load} sent nothing");
        assert_eq!(reload[load]["errors"], 0, "{load}");
    }
    assert!(report["plugin_call"]["fresh_instance_us"].as_f64().unwrap() > 0.0);
    assert!(report["idle_rss_kib"]["plugins_20"].as_u64().unwrap() > 0);
}

/// `cargo bench -p vestibule` runs the suite's own `main`: without
/// `harness = false` the test harness runs "0 tests" and the suite never
/// starts.
#[test]
fn cargo_bench_runs_the_suite() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&manifest).unwrap();
    let benches = manifest["bench"].as_array().expect("a [[bench]] table");
    assert!(
        benches
            .iter()
            .any(|b| b["name"].as_str() == Some("vestibule") && b["harness"].as_bool() == Some(false)),
        "{benches:?}"
    );
}
