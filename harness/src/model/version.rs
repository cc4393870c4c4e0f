//! Versions as targets report them: kernel releases such as `6.18.44-fc-v657` or
//! `5.14.0-665.el9.x86_64`, which are not semver.

use std::cmp::Ordering;

/// The numeric part of a kernel release: `6.18.44-fc-v657` is 6.18.44.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch level (0 when the release has none).
    pub patch: u64,
}

impl KernelVersion {
    /// Reads the leading `MAJOR.MINOR[.PATCH]` of a kernel release.
    pub fn parse(release: &str) -> Option<KernelVersion> {
        let numbers = leading_numbers(release);
        match numbers.as_slice() {
            [major, minor, patch, ..] => Some(KernelVersion {
                major: *major,
                minor: *minor,
                patch: *patch,
            }),
            [major, minor] => Some(KernelVersion {
                major: *major,
                minor: *minor,
                patch: 0,
            }),
            _ => None,
        }
    }

    /// The version as a semver version, for matching against requirements like `>=4.15, <5.8`.
    pub fn to_semver(self) -> semver::Version {
        semver::Version::new(self.major, self.minor, self.patch)
    }
}

impl std::fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The leading dot-separated numbers of a version string: `9.2p1` gives `[9, 2]`.
fn leading_numbers(text: &str) -> Vec<u64> {
    let mut numbers = Vec::new();
    for part in text.trim().split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse() {
            Ok(number) => numbers.push(number),
            Err(_) => break,
        }
        if digits.len() != part.len() {
            break;
        }
    }
    numbers
}

/// Compares two dotted versions by their leading numbers (`5.4` < `5.10.2`), missing parts
/// counting as zero. `None` when either has no leading number.
pub fn compare_dotted(left: &str, right: &str) -> Option<Ordering> {
    let left = leading_numbers(left);
    let right = leading_numbers(right);
    if left.is_empty() || right.is_empty() {
        return None;
    }
    let length = left.len().max(right.len());
    let at = |numbers: &[u64], index: usize| numbers.get(index).copied().unwrap_or(0);
    Some(
        (0..length)
            .map(|index| at(&left, index).cmp(&at(&right, index)))
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or(Ordering::Equal),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_parse_to_their_numeric_part() {
        let cases = [
            ("6.18.44-fc-v657", Some((6, 18, 44))),
            ("5.14.0-665.el9.x86_64", Some((5, 14, 0))),
            ("4.19", Some((4, 19, 0))),
            ("6.6.104.2", Some((6, 6, 104))),
            ("3.10.0-1160.119.1.el7.x86_64", Some((3, 10, 0))),
            ("linux", None),
            ("6", None),
        ];
        for (release, expected) in cases {
            let parsed = KernelVersion::parse(release).map(|v| (v.major, v.minor, v.patch));
            assert_eq!(parsed, expected, "{release}");
        }
    }

    #[test]
    fn dotted_versions_compare_numerically() {
        assert_eq!(compare_dotted("5.4", "5.10.2"), Some(Ordering::Less));
        assert_eq!(
            compare_dotted("6.18.44-fc", "6.18.44"),
            Some(Ordering::Equal)
        );
        assert_eq!(compare_dotted("9.2p1", "9.2"), Some(Ordering::Equal));
        assert_eq!(compare_dotted("4.15", "4.8"), Some(Ordering::Greater));
        assert_eq!(compare_dotted("abc", "1"), None);
    }
}
