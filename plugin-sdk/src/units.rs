//! Durations (`"50ms"`, `"5s"`, `"2m"`) and sizes (`"1MiB"`, `"16MiB"`) as
//! people write them in config files: the one parser for the host's config
//! and for plugins' `[plugins.config]` (the host compiles this very file).
//! It never panics: a number too large is an error naming what is allowed.

use serde::{Deserialize, Deserializer, de};

/// The longest duration accepted: ten years (`"3650d"`).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(3650 * 86_400);

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h`, `d`; at
/// most [`MAX_DURATION`]. In a plugin's `Config`: `off_after: Duration`
/// reads `off_after = "5m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

/// A size in bytes: a plain integer, or a number and `B`, `KiB`, `MiB`, `GiB`
/// (`KB`/`MB`/`GB` are taken as the binary units too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number = text[..digits].parse().ok()?;
    Some((number, text[digits..].trim()))
}

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected =
            || format!("expected a duration such as \"50ms\", \"5s\", \"2m\", \"1h\" or \"7d\", got {text:?}");
        let too_long = || format!("{text:?} is too long: at most \"3650d\" (ten years)");
        // A number of digits too many for u64 is too long, not malformed.
        let digits = text.trim().bytes().take_while(u8::is_ascii_digit).count();
        let (n, unit) = split_number(text).ok_or_else(|| if digits > 0 { too_long() } else { expected() })?;
        let millis_per = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(expected()),
        };
        let millis = n.checked_mul(millis_per).ok_or_else(too_long)?;
        let duration = std::time::Duration::from_millis(millis);
        if duration > MAX_DURATION {
            return Err(too_long());
        }
        Ok(Duration(duration))
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("expected a size such as \"512KiB\" or \"16MiB\", got {text:?}");
        let (n, unit) = split_number(text).ok_or_else(expected)?;
        let scale: u64 = match unit {
            "" | "B" => 1,
            "KiB" | "KB" | "K" => 1 << 10,
            "MiB" | "MB" | "M" => 1 << 20,
            "GiB" | "GB" | "G" => 1 << 30,
            _ => return Err(expected()),
        };
        n.checked_mul(scale).map(ByteSize).ok_or_else(expected)
    }
}

impl std::fmt::Display for ByteSize {
    /// As people write it: `16MiB`, `512KiB`, `100B`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            n if n >= 1 << 30 && n % (1 << 30) == 0 => write!(f, "{}GiB", n >> 30),
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}B"),
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("50ms".parse::<Duration>().unwrap().0.as_millis(), 50);
        assert_eq!("300s".parse::<Duration>().unwrap().0.as_secs(), 300);
        assert_eq!("2m".parse::<Duration>().unwrap().0.as_secs(), 120);
        assert_eq!("7d".parse::<Duration>().unwrap().0.as_secs(), 7 * 86_400);
        assert_eq!("3650d".parse::<Duration>().unwrap().0, MAX_DURATION);
        assert!("5".parse::<Duration>().unwrap_err().contains("expected a duration"));
        assert!("fast".parse::<Duration>().is_err());
    }

    #[test]
    fn absurd_durations_are_errors_not_panics() {
        for text in [
            "300000000000000d",
            "3651d",
            "18446744073709551615ms",
            "99999999999999999999999s",
        ] {
            let err = text.parse::<Duration>().unwrap_err();
            assert!(err.contains("is too long: at most \"3650d\""), "{text}: {err}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!("16MiB".parse::<ByteSize>().unwrap().0, 16 << 20);
        assert_eq!("512 KiB".parse::<ByteSize>().unwrap().0, 512 << 10);
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("99999999999GiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(16 << 20).to_string(), "16MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
