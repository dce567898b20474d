//! Values people write in config files, for plugins' typed configs.

use serde::{Deserialize, Deserializer};

/// A duration written as the host's config writes them: `"500ms"`, `"30s"`,
/// `"5m"`, `"1h"`, `"7d"`.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Config { off_after: vestibule_plugin_sdk::Duration }
/// let config: Config = serde_json::from_str(r#"{"off_after": "5m"}"#).unwrap();
/// assert_eq!(config.off_after.0.as_secs(), 300);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Duration, String> {
        let expected =
            || format!("expected a duration such as \"500ms\", \"30s\", \"5m\", \"1h\" or \"7d\", got {text:?}");
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let n: u64 = text[..digits].parse().map_err(|_| expected())?;
        let seconds = |s: u64| std::time::Duration::from_secs(n.saturating_mul(s));
        Ok(Duration(match text[digits..].trim() {
            "ms" => std::time::Duration::from_millis(n),
            "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            "d" => seconds(86_400),
            _ => return Err(expected()),
        }))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
