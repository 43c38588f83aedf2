//! Instants in UTC at millisecond precision, as the database stores them and the API shows them.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// 0000-01-01T00:00:00.000Z: RFC 3339 has four-digit years only.
const MIN_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z.
const MAX_MS: i64 = 253_402_300_799_999;

/// An instant in UTC, in whole milliseconds since the Unix epoch.
///
/// Shown (Display, serde) as an RFC 3339 string with millisecond precision, e.g.
/// `2026-11-05T14:03:07.250Z`. The value always lies within the years 0000-9999, the range
/// RFC 3339 can write, so every timestamp can be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            // A clock set before 1970: count backwards rather than fail.
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        };
        Timestamp::from_unix_ms(ms)
    }

    /// The instant `ms` milliseconds after 1970-01-01T00:00:00Z (before it when negative),
    /// clamped to the years 0000-9999.
    pub const fn from_unix_ms(ms: i64) -> Timestamp {
        // `clamp` is not const.
        Timestamp(if ms < MIN_MS {
            MIN_MS
        } else if ms > MAX_MS {
            MAX_MS
        } else {
            ms
        })
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub fn unix_ms(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000_000;
        // In range by construction (MIN_MS..=MAX_MS), so the epoch fallback is never taken.
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        )
    }
}

/// A string that is not an RFC 3339 date-time (e.g. `2026-11-05T14:03:07Z`).
#[derive(Debug, thiserror::Error)]
#[error("{input:?} is not an RFC 3339 date-time such as 2026-11-05T14:03:07Z: {reason}")]
pub struct TimestampError {
    input: String,
    reason: time::error::Parse,
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses any RFC 3339 date-time (any offset, any fraction), truncating below a millisecond.
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        let at = OffsetDateTime::parse(s, &Rfc3339).map_err(|reason| TimestampError {
            input: s.to_string(),
            reason,
        })?;
        let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
        // Parsed years are 0000-9999, so the milliseconds fit an i64.
        Ok(Timestamp::from_unix_ms(
            i64::try_from(ms).unwrap_or(if ms < 0 { MIN_MS } else { MAX_MS }),
        ))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_milliseconds() {
        assert_eq!(
            Timestamp::from_unix_ms(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(1_793_973_787_250).to_string(),
            "2026-11-06T14:03:07.250Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn range_ends_are_the_rfc3339_years() {
        assert_eq!(
            Timestamp::from_unix_ms(MIN_MS).to_string(),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(MAX_MS).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(Timestamp::from_unix_ms(i64::MAX).unix_ms(), MAX_MS);
        assert_eq!(Timestamp::from_unix_ms(i64::MIN).unix_ms(), MIN_MS);
        // Both ends parse back to themselves.
        for ms in [MIN_MS, MAX_MS] {
            let shown = Timestamp::from_unix_ms(ms).to_string();
            assert_eq!(shown.parse::<Timestamp>().unwrap().unix_ms(), ms);
        }
    }

    #[test]
    fn parses_offsets_and_truncates_below_a_millisecond() {
        let at: Timestamp = "2026-11-06T15:03:07.250999+01:00".parse().unwrap();
        assert_eq!(at.unix_ms(), 1_793_973_787_250);
        let before_epoch: Timestamp = "1969-12-31T23:59:59.9995Z".parse().unwrap();
        assert_eq!(before_epoch.unix_ms(), -1);
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-11-06",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "1793973787250",
        ] {
            let err = bad.parse::<Timestamp>().unwrap_err().to_string();
            assert!(err.contains("RFC 3339"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn serde_round_trip_as_a_string() {
        let at = Timestamp::from_unix_ms(1_793_973_787_250);
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2026-11-06T14:03:07.250Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
        assert!(serde_json::from_str::<Timestamp>("1793973787250").is_err());
    }

    #[test]
    fn now_is_after_this_code_was_written() {
        // 2026-01-01T00:00:00Z
        assert!(Timestamp::now().unix_ms() > 1_767_225_600_000);
    }
}
