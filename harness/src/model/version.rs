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

/// A release version as projects tag them (`1.4.0-rc.3`, `v2.0.7`, `1.1.5`): dotted numbers
/// (missing parts count as zero) and an optional pre-release after `-` or `~` (Debian writes
/// `1.0.0~rc93`), which sorts before the release itself as semver orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseVersion {
    numbers: Vec<u64>,
    pre: Option<semver::Prerelease>,
}

impl ReleaseVersion {
    /// Parses `v1.2.8`, `1.4.0-rc.3`, `1.0.0~rc93`; `None` without a leading number.
    pub fn parse(text: &str) -> Option<ReleaseVersion> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (dotted, rest) = text.split_at(end);
        let numbers: Vec<u64> = dotted
            .trim_end_matches('.')
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let pre = match rest.chars().next() {
            Some('-' | '~') => {
                // The pre-release ends where build metadata or a packager's suffix starts.
                let body: String = rest[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                let body = body.trim_matches(|c| c == '.' || c == '-');
                (!body.is_empty())
                    .then(|| semver::Prerelease::new(body).ok())
                    .flatten()
            }
            _ => None,
        };
        Some(ReleaseVersion { numbers, pre })
    }

    /// The release line: the first two numbers (`1.3` of `1.3.3`).
    fn line(&self) -> (u64, u64) {
        (
            self.numbers.first().copied().unwrap_or(0),
            self.numbers.get(1).copied().unwrap_or(0),
        )
    }
}

impl PartialOrd for ReleaseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ReleaseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let length = self.numbers.len().max(other.numbers.len());
        let at = |numbers: &[u64], index: usize| numbers.get(index).copied().unwrap_or(0);
        (0..length)
            .map(|index| at(&self.numbers, index).cmp(&at(&other.numbers, index)))
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or_else(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(left), Some(right)) => left.cmp(right),
            })
    }
}

/// Whether `version` carries the fix of an advisory whose fixed versions are `fixed` (one per
/// release line, as advisories list them: `1.2.8, 1.3.3, 1.4.0-rc.3`): it is at or after the
/// fixed version of its own line (major.minor), or on a line newer than every listed one. A
/// version on an older line, or on a line between listed ones that has no fix, is not fixed.
/// `Err` names the text that is not a version.
pub fn fixed_in(version: &str, fixed: &[&str]) -> Result<bool, String> {
    let have =
        ReleaseVersion::parse(version).ok_or_else(|| format!("`{version}` is not a version"))?;
    let mut fixes = Vec::new();
    for text in fixed {
        fixes
            .push(ReleaseVersion::parse(text).ok_or_else(|| format!("`{text}` is not a version"))?);
    }
    if fixes.is_empty() {
        return Err("no fixed version given".to_owned());
    }
    if let Some(same_line) = fixes.iter().find(|fix| fix.line() == have.line()) {
        return Ok(have >= *same_line);
    }
    Ok(fixes.iter().all(|fix| have.line() > fix.line()))
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

    #[test]
    fn fixed_in_judges_each_release_line() {
        let runc = ["1.2.8", "1.3.3", "1.4.0-rc.3"];
        for (version, fixed) in [
            ("1.1.15", false),
            ("1.2.7", false),
            ("1.2.8", true),
            ("v1.2.9", true),
            ("1.3.0", false),
            ("1.3.2", false),
            ("1.3.3", true),
            ("1.4.0-rc.2", false),
            ("1.4.0-rc.3", true),
            ("1.4.0", true),
            ("1.5.0", true),
            ("2.0.0", true),
            ("1.0.0~rc93", false),
        ] {
            assert_eq!(fixed_in(version, &runc), Ok(fixed), "{version}");
        }
        assert_eq!(fixed_in("1.1.11", &["1.1.12"]), Ok(false));
        assert_eq!(fixed_in("1.1.12", &["1.1.12"]), Ok(true));
        assert_eq!(fixed_in("1.2.0", &["1.1.12"]), Ok(true));
        assert_eq!(
            fixed_in("1.6.20", &["1.7.29", "2.0.7", "2.1.5", "2.2.0"]),
            Ok(false)
        );
        assert_eq!(
            fixed_in("2.2.0-rc.1", &["1.7.29", "2.0.7", "2.1.5", "2.2.0"]),
            Ok(false)
        );
        assert!(fixed_in("unknown", &runc).is_err());
        assert!(ReleaseVersion::parse("1.4.0-rc.3") < ReleaseVersion::parse("1.4.0"));
        assert!(ReleaseVersion::parse("1.4.0-rc.2") < ReleaseVersion::parse("1.4.0-rc.10"));
    }
}
