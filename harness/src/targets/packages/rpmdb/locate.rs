//! Where a tree keeps its rpm database, found as rpm finds it.
//!
//! rpm reads its macro files in this order, a later definition replacing an earlier one
//! (`lib/rpmrc.c`, `rpmio/macro.c`): `/usr/lib/rpm/macros`, `/usr/lib/rpm/macros.d/macros.*`,
//! `/usr/lib/rpm/<vendor>/macros`, `/etc/rpm/macros.*`, `/etc/rpm/macros` (skipping names that
//! end in `.rpmnew`, `.rpmsave`, `.rpmorig` or a character that is not a letter or digit; the
//! platform's `/usr/lib/rpm/platform/<target>/macros`, which never sets these, is not read). Two
//! macros decide where the database is: `%_dbpath`, its folder, and `%_db_backend`, the backend
//! rpm writes. rpm opens the configured backend's file when it is there, and otherwise the first
//! of SQLite, NDB and Berkeley DB whose file is (`lib/backend/dbi.c`, `dbDetectBackend`).
//!
//! Macro bodies are expanded here only as far as they are plain references to other macros
//! (`%{_var}/lib/rpm`, `%_usr`, `%{?name}`, `%%`); a body that would need rpm to run something
//! (`%(...)`, `%{lua:...}`, conditionals) is not expanded, and the standard folders are searched
//! instead. Without a `%_dbpath`, `/usr/lib/sysimage/rpm` (Fedora >= 36, SUSE) and `/var/lib/rpm`
//! are searched; a database in both (not one folder reached through a link) is an error, as is a
//! `%_dbpath` without a database when a standard folder has one: which one rpm reads cannot be
//! told, and a guess could certify the wrong packages.

use std::collections::HashMap;

use super::{Backend, RpmdbError};
use crate::targets::packages::{TreeFile, TreeFiles};

/// The standard database folders, newest first.
const STANDARD_FOLDERS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];
/// The largest macro file read.
const MAX_MACRO_FILE_BYTES: u64 = 1 << 20;
/// Macros rpm defines at build time, used when no macro file defines them.
const BUILT_IN: [(&str, &str); 6] = [
    ("_prefix", "/usr"),
    ("_usr", "/usr"),
    ("_exec_prefix", "/usr"),
    ("_var", "/var"),
    ("_localstatedir", "/var"),
    ("_sysconfdir", "/etc"),
];

/// Where a tree's rpm database is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The database folder, a path of the tree (`/var/lib/rpm`).
    pub dbpath: String,
    /// The backend whose file holds the packages.
    pub backend: Backend,
    /// That file, a path of the tree (`/var/lib/rpm/rpmdb.sqlite`).
    pub file: String,
    /// The macro file that set `%_dbpath`, when one did (else a standard folder was searched).
    pub dbpath_from: Option<String>,
}

/// A macro definition and the file it came from.
#[derive(Debug, Clone)]
struct Definition {
    body: String,
    file: String,
}

/// Finds the rpm database of a tree as rpm would; `Ok(None)` when the tree has none.
pub fn locate(tree: &dyn TreeFiles) -> Result<Option<Location>, RpmdbError> {
    let macros = read_macros(tree)?;
    let configured = macros
        .get("_db_backend")
        .and_then(|definition| expand(&definition.body, &macros).ok())
        .and_then(|name| Backend::from_macro(name.trim()));
    let dbpath = macros.get("_dbpath").and_then(|definition| {
        let path = normalize(&expand(&definition.body, &macros).ok()?)?;
        Some((path, definition.file.clone()))
    });

    if let Some((dbpath, from)) = dbpath {
        if let Some(location) = in_folder(tree, &dbpath, configured, Some(&from))? {
            return Ok(Some(location));
        }
        for folder in STANDARD_FOLDERS.iter().filter(|&&folder| folder != dbpath) {
            if let Some(other) = in_folder(tree, folder, configured, None)? {
                return Err(RpmdbError::database(
                    &other.file,
                    format!(
                        "%_dbpath is {dbpath} (set in {from}), which holds no rpm database, but {folder} does: which one rpm reads cannot be told"
                    ),
                ));
            }
        }
        return Ok(None);
    }

    let mut found: Vec<(Location, Option<std::path::PathBuf>)> = Vec::new();
    for folder in STANDARD_FOLDERS {
        if let Some(location) = in_folder(tree, folder, configured, None)? {
            let real = real_path(tree, &location.file)?;
            found.push((location, real));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().map(|(location, _)| location)),
        _ => {
            let same = found[0].1.is_some() && found[0].1 == found[1].1;
            if same {
                // One folder reached through a link (`/var/lib/rpm` -> `/usr/lib/sysimage/rpm`).
                Ok(found.into_iter().next().map(|(location, _)| location))
            } else {
                Err(RpmdbError::database(
                    &found[0].0.file,
                    format!(
                        "a second rpm database is at {}, and no %_dbpath says which one rpm reads",
                        found[1].0.file
                    ),
                ))
            }
        }
    }
}

/// The database in one folder: the configured backend's file if it is there, else the first
/// backend's file that is.
fn in_folder(
    tree: &dyn TreeFiles,
    folder: &str,
    configured: Option<Backend>,
    from: Option<&str>,
) -> Result<Option<Location>, RpmdbError> {
    let order = configured
        .into_iter()
        .chain(Backend::ALL.into_iter().filter(|&b| Some(b) != configured));
    for backend in order {
        let file = format!("{folder}/{}", backend.file_name());
        if tree
            .open(&file)
            .map_err(|reason| RpmdbError::database(&file, reason))?
            .is_some()
        {
            return Ok(Some(Location {
                dbpath: folder.to_owned(),
                backend,
                file,
                dbpath_from: from.map(str::to_owned),
            }));
        }
    }
    Ok(None)
}

/// The real path of a tree file on this machine, when it is local.
fn real_path(tree: &dyn TreeFiles, path: &str) -> Result<Option<std::path::PathBuf>, RpmdbError> {
    match tree.open(path) {
        Ok(Some(TreeFile::Local { path, .. })) => Ok(Some(path)),
        Ok(_) => Ok(None),
        Err(reason) => Err(RpmdbError::database(path, reason)),
    }
}

/// Every macro the tree's macro files define, the last definition of each.
fn read_macros(tree: &dyn TreeFiles) -> Result<HashMap<String, Definition>, RpmdbError> {
    let mut files = vec!["/usr/lib/rpm/macros".to_owned()];
    files.extend(matching(tree, "/usr/lib/rpm/macros.d", "macros.")?);
    let mut vendors = tree
        .list("/usr/lib/rpm")
        .map_err(|reason| RpmdbError::database("/usr/lib/rpm", reason))?
        .unwrap_or_default();
    vendors.sort();
    for vendor in vendors {
        if matches!(vendor.as_str(), "macros.d" | "platform" | "fileattrs") {
            continue;
        }
        let folder = format!("/usr/lib/rpm/{vendor}");
        let entries = tree
            .list(&folder)
            .map_err(|reason| RpmdbError::database(&folder, reason))?;
        if entries.is_some_and(|entries| entries.iter().any(|name| name == "macros")) {
            files.push(format!("{folder}/macros"));
        }
    }
    files.extend(matching(tree, "/etc/rpm", "macros.")?);
    files.push("/etc/rpm/macros".to_owned());

    let mut macros = HashMap::new();
    for file in files {
        let opened = tree
            .open(&file)
            .map_err(|reason| RpmdbError::database(&file, reason))?;
        let Some(opened) = opened else { continue };
        let bytes = opened
            .read_to_end(MAX_MACRO_FILE_BYTES)
            .map_err(|reason| RpmdbError::database(&file, reason))?;
        for (name, body) in definitions(&String::from_utf8_lossy(&bytes)) {
            macros.insert(
                name,
                Definition {
                    body,
                    file: file.clone(),
                },
            );
        }
    }
    Ok(macros)
}

/// The files of a folder whose names start with `prefix`, sorted as rpm's glob sorts them, without
/// the leftovers rpm skips.
fn matching(tree: &dyn TreeFiles, folder: &str, prefix: &str) -> Result<Vec<String>, RpmdbError> {
    let mut names: Vec<String> = tree
        .list(folder)
        .map_err(|reason| RpmdbError::database(folder, reason))?
        .unwrap_or_default()
        .into_iter()
        .filter(|name| {
            name.starts_with(prefix)
                && name.len() > prefix.len()
                && !name.ends_with(".rpmnew")
                && !name.ends_with(".rpmsave")
                && !name.ends_with(".rpmorig")
                && name
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| format!("{folder}/{name}"))
        .collect())
}

/// The macro definitions of a macro file: each logical line (joined across `\` continuations
/// and open braces, as rpm's `rdcl` joins them) that starts with `%name`, with its body.
fn definitions(text: &str) -> Vec<(String, String)> {
    let mut definitions = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let trimmed = first.trim_start();
        if !trimmed.starts_with('%') {
            continue;
        }
        let mut logical = trimmed.to_owned();
        while (logical.ends_with('\\') || open_braces(&logical) > 0) && logical.len() < 1 << 16 {
            match lines.next() {
                Some(next) => {
                    logical.push('\n');
                    logical.push_str(next);
                }
                None => break,
            }
        }
        let rest = &logical[1..];
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &rest[..name_len];
        let mut body = &rest[name_len..];
        if let Some(options) = body.strip_prefix('(') {
            // A parametric macro: its options, then its body.
            body = options.split_once(')').map_or("", |(_, after)| after);
        }
        definitions.push((name.to_owned(), body.trim().to_owned()));
    }
    definitions
}

/// How many `%{` are still open at the end of a line.
fn open_braces(line: &str) -> i32 {
    let bytes = line.as_bytes();
    let (mut open, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'%' if bytes.get(i + 1) == Some(&b'{') => {
                open += 1;
                i += 1;
            }
            b'%' if bytes.get(i + 1) == Some(&b'%') => i += 1,
            b'{' if open > 0 => open += 1,
            b'}' if open > 0 => open -= 1,
            _ => {}
        }
        i += 1;
    }
    open
}

/// Expands plain macro references; an error for anything rpm would have to run or decide.
fn expand(body: &str, macros: &HashMap<String, Definition>) -> Result<String, String> {
    expand_depth(body, macros, 0)
}

fn expand_depth(
    body: &str,
    macros: &HashMap<String, Definition>,
    depth: usize,
) -> Result<String, String> {
    if depth > 16 {
        return Err("macros nest too deep".to_owned());
    }
    let lookup = |name: &str| -> Option<Result<String, String>> {
        match macros.get(name) {
            Some(definition) => Some(expand_depth(&definition.body, macros, depth + 1)),
            None => BUILT_IN
                .iter()
                .find(|(built_in, _)| *built_in == name)
                .map(|(_, value)| Ok((*value).to_owned())),
        }
    };
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let (inner, tail) = tail
                .split_once('}')
                .ok_or_else(|| format!("unclosed %{{ in {body:?}"))?;
            let (optional, name) = match inner.strip_prefix('?') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if !is_name(name) {
                return Err(format!("{body:?} needs rpm to expand %{{{inner}}}"));
            }
            match lookup(name) {
                Some(value) => out.push_str(&value?),
                None if optional => {}
                None => return Err(format!("%{{{name}}} is not defined")),
            }
            rest = tail;
        } else {
            let name_len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &after[..name_len];
            if !is_name(name) {
                return Err(format!("{body:?} needs rpm to expand it"));
            }
            out.push_str(&lookup(name).ok_or_else(|| format!("%{name} is not defined"))??);
            rest = &after[name_len..];
        }
        if out.len() > 4096 {
            return Err("the expansion is too long".to_owned());
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An absolute path with repeated and trailing slashes removed; `None` when it is not absolute.
fn normalize(path: &str) -> Option<String> {
    let path = path.trim();
    if !path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    Some(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macros(text: &str) -> HashMap<String, Definition> {
        definitions(text)
            .into_iter()
            .map(|(name, body)| {
                (
                    name,
                    Definition {
                        body,
                        file: "/usr/lib/rpm/macros".to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn macro_files_are_read_as_rpm_reads_them() {
        let text = "# comment\n%_usr\t\t\t/usr\n%_var /var\n  %_dbpath\t\t%{_var}/lib/rpm\n%multi line \\\n  two\n%__spec_install_pre %{___build_pre}\\\n  echo\n%with(a:) %{?a}\nnot a macro\n%{?x}\n";
        let found = macros(text);
        assert_eq!(found["_dbpath"].body, "%{_var}/lib/rpm");
        assert_eq!(found["multi"].body, "line \\\n  two");
        assert_eq!(found["with"].body, "%{?a}");
        assert_eq!(
            expand(&found["_dbpath"].body, &found).as_deref(),
            Ok("/var/lib/rpm")
        );
    }

    #[test]
    fn only_plain_references_are_expanded() {
        let found = macros(
            "%_usr /usr\n%_dbpath %{_usr}/lib/sysimage/rpm\n%_x %%percent %{?nothing}%_usr\n",
        );
        assert_eq!(
            expand(&found["_dbpath"].body, &found).as_deref(),
            Ok("/usr/lib/sysimage/rpm")
        );
        assert_eq!(
            expand(&found["_x"].body, &found).as_deref(),
            Ok("%percent /usr")
        );
        assert_eq!(
            expand("%{_var}/lib/rpm", &HashMap::new()).as_deref(),
            Ok("/var/lib/rpm")
        );
        for body in [
            "%(bash -c 'echo ~/.rpmdb')",
            "%{lua: print('/x')}",
            "%{undefined}/x",
            "%{!?x:/y}",
            "%{_var",
        ] {
            assert!(expand(body, &found).is_err(), "{body}");
        }
        let looping = macros("%a %{b}\n%b %{a}\n");
        assert!(expand("%{a}", &looping).is_err());
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize("/var//lib/rpm/").as_deref(), Some("/var/lib/rpm"));
        assert_eq!(normalize("relative/rpm"), None);
    }
}
