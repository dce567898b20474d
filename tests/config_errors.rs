//! Golden tests for configuration errors: each `tests/config/NAME.toml` is
//! given to `vestibule serve`, which must exit non-zero and print exactly
//! `NAME.err`. Set `VESTIBULE_BLESS=1` to rewrite the `.err` files after a
//! deliberate change to a message (and read the diff).

use std::path::Path;
use std::process::Command;

#[test]
fn every_bad_config_is_refused_with_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/config");
    let bless = std::env::var_os("VESTIBULE_BLESS").is_some();
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        cases += 1;
        let name = path.file_name().unwrap().to_str().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_vestibule"))
            .current_dir(&dir)
            .args(["serve", "--config", name])
            .env_remove("VESTIBULE_TEST_UNSET_SECRET")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected_file = path.with_extension("err");
        if bless {
            std::fs::write(&expected_file, &stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_file)
            .unwrap_or_else(|_| panic!("{} is missing", expected_file.display()));
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert_eq!(stderr, expected, "{name}");
    }
    // Every expected message has its case: none is left behind unread.
    let expected = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "err"))
        .count();
    assert_eq!(cases, expected, "a .err file without its .toml in {}", dir.display());
    assert!(cases >= 30, "only {cases} cases found in {}", dir.display());
}
