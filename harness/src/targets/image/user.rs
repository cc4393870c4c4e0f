//! The uid an image runs as, judged from its config's `User` as runc judges it (runc's
//! `libcontainer/user`, now `github.com/moby/sys/user`, `GetExecUser`), so that what hostcert
//! calls non-root is what a runtime runs:
//!
//! - `User` is `user[:group]`, split at `:` (a third field is ignored); an empty user is the
//!   default, root (uid 0);
//! - a user that Go's `strconv.Atoi` reads as a number (leading zeros and a sign included:
//!   `00`, `+0` and `-0` are uid 0) is always a uid, in 0..=2^31-1, whether or not
//!   /etc/passwd lists it;
//! - any other user is a name, looked up in the image's /etc/passwd: the first entry with that
//!   name wins, its uid field read as `Atoi` reads it with errors ignored (so an entry whose uid
//!   is not a number gives 0, as runc does); a name not found, or no /etc/passwd, is an error
//!   (the container would not start);
//! - a group name must be in /etc/group, a numeric group is a gid in range.

use std::path::Path;

use serde_json::Value;

use super::layout::{shorten, Image};
use super::read_tree_text;
use crate::facts::FactValue;

/// The largest id runc accepts (it keeps ids within int32 for 32-bit systems).
const MAX_ID: i64 = (1 << 31) - 1;

/// Go's `strconv.Atoi` on a value: `Ok(Some(n))` for a number, `Ok(None)` for text that is not
/// one (a name), `Err` for a number out of range, as runc's `parseNumeric` reports it.
fn parse_numeric(text: &str) -> Result<Option<i64>, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let value = text
        .parse::<i64>()
        .ok()
        .filter(|v| (0..=MAX_ID).contains(v));
    match value {
        Some(value) => Ok(Some(value)),
        None => Err(format!(
            "`{}` is out of range: uids and gids must be in 0-{MAX_ID}",
            shorten(text)
        )),
    }
}

/// A passwd or group field read as runc reads numbers: `Atoi`, with errors giving 0.
fn lenient_number(text: &str) -> i64 {
    text.parse::<i64>().unwrap_or(0)
}

/// The first entry of a passwd or group file whose first field is `name`, as runc splits them
/// (lines trimmed, empty lines skipped, fields split at `:`).
fn find_entry<'a>(file: &'a str, name: &str) -> Option<Vec<&'a str>> {
    file.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields[0] == name)
}

/// The uid `image` runs as: `(evidence, uid)`, or why a runtime could not start it.
pub(super) fn resolve(image: &Image, root: &Path) -> Result<(String, FactValue), String> {
    let raw = image
        .config
        .pointer("/config/User")
        .and_then(Value::as_str)
        .unwrap_or("");
    let passwd = || read_tree_text(root, "/etc/passwd");
    let (uid, source) = uid_of(raw, passwd, || read_tree_text(root, "/etc/group"))?;
    Ok((source, FactValue::Text(uid.to_string())))
}

/// The uid of a `User` value, with the image's /etc/passwd and /etc/group read on demand.
fn uid_of(
    raw: &str,
    passwd: impl Fn() -> Result<Option<String>, String>,
    group: impl Fn() -> Result<Option<String>, String>,
) -> Result<(i64, String), String> {
    let mut fields = raw.split(':');
    let user = fields.next().unwrap_or("");
    let group_name = fields.next().unwrap_or("");
    if !group_name.is_empty() && parse_numeric(group_name)?.is_none() {
        let groups = group()?.ok_or_else(|| {
            format!(
                "group `{}` cannot be resolved: the image has no /etc/group (a runtime refuses to start it)",
                shorten(group_name)
            )
        })?;
        if find_entry(&groups, group_name).is_none() {
            return Err(format!(
                "group `{}` is not in the image's /etc/group (a runtime refuses to start it)",
                shorten(group_name)
            ));
        }
    }
    let shown = format!("config /config/User `{}`", shorten(raw));
    if user.is_empty() {
        let source = if raw.is_empty() {
            "config /config/User (unset: a runtime runs it as root)".to_owned()
        } else {
            format!("{shown} (no user: a runtime runs it as root)")
        };
        return Ok((0, source));
    }
    if let Some(uid) = parse_numeric(user)? {
        return Ok((uid, format!("{shown} (a numeric uid)")));
    }
    let passwd = passwd()?.ok_or_else(|| {
        format!(
            "user `{}` cannot be resolved: the image has no /etc/passwd (a runtime refuses to start it)",
            shorten(user)
        )
    })?;
    let entry = find_entry(&passwd, user).ok_or_else(|| {
        format!(
            "user `{}` is not in the image's /etc/passwd (a runtime refuses to start it)",
            shorten(user)
        )
    })?;
    let uid = lenient_number(entry.get(2).copied().unwrap_or(""));
    Ok((uid, format!("{shown} via /etc/passwd")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\n  app:x:1001:1001::/home/app:/bin/sh\napp:x:1002:1002::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\nodd:x:notanumber:5::/:/bin/sh\nshort\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\n";

    fn uid(user: &str) -> Result<i64, String> {
        uid_of(
            user,
            || Ok(Some(PASSWD.to_owned())),
            || Ok(Some(GROUP.to_owned())),
        )
        .map(|(uid, _)| uid)
    }

    #[test]
    fn users_are_judged_as_runc_judges_them() {
        for (user, expected) in [
            ("", Ok(0)),
            (":staff", Ok(0)),
            ("0", Ok(0)),
            ("00", Ok(0)),
            ("000:000", Ok(0)),
            ("+0", Ok(0)),
            ("-0", Ok(0)),
            ("0:0", Ok(0)),
            ("root", Ok(0)),
            ("root:root", Ok(0)),
            ("toor", Ok(0)),
            ("odd", Ok(0)),
            ("app", Ok(1001)),
            ("app:staff", Ok(1001)),
            ("app:0", Ok(1001)),
            ("1001", Ok(1001)),
            ("01001", Ok(1001)),
            ("4242", Ok(4242)),
            ("4242:4242", Ok(4242)),
            ("app:staff:extra", Ok(1001)),
            ("2147483647", Ok(2_147_483_647)),
        ] {
            assert_eq!(uid(user), expected, "User `{user}`");
        }
        for (user, reason) in [
            ("-1", "out of range"),
            ("2147483648", "out of range"),
            ("99999999999999999999", "out of range"),
            ("nobody", "user `nobody` is not in the image's /etc/passwd"),
            (" app", "is not in the image's /etc/passwd"),
            ("0x0", "is not in the image's /etc/passwd"),
            (
                "app:wheel",
                "group `wheel` is not in the image's /etc/group",
            ),
            ("1001:-5", "out of range"),
        ] {
            let err = uid(user).unwrap_err();
            assert!(err.contains(reason), "User `{user}`: {err}");
        }
        let none = || Ok(None);
        let err = uid_of("app", none, none).unwrap_err();
        assert!(err.contains("the image has no /etc/passwd"), "{err}");
        assert_eq!(uid_of("1001", none, none).unwrap().0, 1001);
    }
}
