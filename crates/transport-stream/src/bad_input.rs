//! Bad input from the CPaaS is ignored, and said so in the log without letting a peer that
//! sends garbage flood it.

use std::collections::HashMap;
use std::fmt::Display;

/// Counts ignored input per kind and logs the 1st, 10th, 100th, ... of each kind with the
/// running count: every kind of problem shows up, a flood costs a handful of lines.
#[derive(Debug, Default)]
pub(crate) struct BadInput {
    counts: HashMap<&'static str, u64>,
}

impl BadInput {
    /// Notes one ignored message of `kind`; returns whether it was logged.
    pub fn ignore(&mut self, kind: &'static str, detail: &dyn Display) -> bool {
        let count = self.counts.entry(kind).or_default();
        *count += 1;
        let logged = is_power_of_ten(*count);
        if logged {
            tracing::warn!(
                kind,
                count = *count,
                "ignoring bad input on the media stream: {detail}"
            );
        }
        logged
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_logged_at_powers_of_ten() {
        let mut bad = BadInput::default();
        let logged: Vec<u64> = (1..=1000u64)
            .filter(|_| bad.ignore("malformed message", &"junk"))
            .collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
        assert!(
            bad.ignore("binary frame", &"3 bytes"),
            "another kind is logged at once"
        );
        assert!(!bad.ignore("binary frame", &"3 bytes"));
    }
}
