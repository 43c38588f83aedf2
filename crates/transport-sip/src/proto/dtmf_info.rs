//! DTMF keys carried in SIP INFO bodies: `application/dtmf-relay` (`Signal=5` /
//! `Duration=160`, the Cisco format most trunks and phones send) and `application/dtmf` (the
//! bare key).

use thiserror::Error;

/// Why an INFO body is not a DTMF key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfInfoError {
    /// The INFO carries something other than DTMF (e.g. a media control XML body).
    #[error(
        "INFO body of type `{0}` is not DTMF (expected application/dtmf-relay or application/dtmf)"
    )]
    UnsupportedType(String),
    /// The body is not text.
    #[error("DTMF INFO body is not UTF-8 text")]
    NotText,
    /// `application/dtmf-relay` without a `Signal=` line.
    #[error("DTMF relay INFO body has no `Signal=` line")]
    NoSignal,
    /// The key is not one of `0-9 * # A-D`.
    #[error("DTMF INFO names key `{0}`, which is not 0-9, *, #, or A-D")]
    BadKey(String),
}

/// Reads the key from an INFO request's `Content-Type` and body.
///
/// Keys come back as `0-9`, `*`, `#`, `A-D`; RFC 4733 event numbers 10-15 (which some
/// senders use for `*`, `#`, `A-D`) are mapped to their keys, lower-case letters upper-cased.
pub fn parse_dtmf_info(content_type: &str, body: &[u8]) -> Result<char, DtmfInfoError> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).map_err(|_| DtmfInfoError::NotText)?;
    match media_type.as_str() {
        "application/dtmf-relay" => {
            let signal = text
                .lines()
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("signal"))
                .map(|(_, value)| value.trim())
                .ok_or(DtmfInfoError::NoSignal)?;
            key_from_text(signal)
        }
        "application/dtmf" => key_from_text(text.trim()),
        _ => Err(DtmfInfoError::UnsupportedType(
            media_type.chars().take(60).collect(),
        )),
    }
}

fn key_from_text(value: &str) -> Result<char, DtmfInfoError> {
    let bad = || DtmfInfoError::BadKey(value.chars().take(16).collect());
    let mut chars = value.chars();
    let key = match (chars.next(), chars.next()) {
        (Some(c), None) => c.to_ascii_uppercase(),
        (Some(_), Some(_)) => match value.parse::<u8>() {
            Ok(10) => '*',
            Ok(11) => '#',
            Ok(n @ 12..=15) => char::from(b'A' + (n - 12)),
            _ => return Err(bad()),
        },
        (None, _) => return Err(bad()),
    };
    if key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D') {
        Ok(key)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_signal() {
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Ok('5')
        );
        assert_eq!(
            parse_dtmf_info(
                "Application/DTMF-Relay; charset=x",
                b"Duration=100\nsignal = #\n"
            ),
            Ok('#')
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=10\r\n"),
            Ok('*')
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=d\r\n"),
            Ok('D')
        );
    }

    #[test]
    fn bare_dtmf_body() {
        assert_eq!(parse_dtmf_info("application/dtmf", b"7"), Ok('7'));
        assert_eq!(parse_dtmf_info("application/dtmf", b" 11\r\n"), Ok('#'));
        assert_eq!(parse_dtmf_info("application/dtmf", b"15"), Ok('D'));
    }

    #[test]
    fn rejects_other_bodies() {
        assert_eq!(
            parse_dtmf_info("application/media_control+xml", b"<x/>"),
            Err(DtmfInfoError::UnsupportedType(
                "application/media_control+xml".into()
            ))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Duration=160"),
            Err(DtmfInfoError::NoSignal)
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf-relay", b"Signal=E"),
            Err(DtmfInfoError::BadKey("E".into()))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf", b"16"),
            Err(DtmfInfoError::BadKey("16".into()))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf", b""),
            Err(DtmfInfoError::BadKey(String::new()))
        );
        assert_eq!(
            parse_dtmf_info("application/dtmf", &[0xC3]),
            Err(DtmfInfoError::NotText)
        );
    }
}
