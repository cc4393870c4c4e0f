//! Inventories: the hosts of a fleet, with their groups and connection variables, in hostcert's
//! own YAML format or Ansible's INI and YAML formats, as users already have them.
//!
//! hostcert's format:
//!
//! ```yaml
//! defaults: {user: root, port: 22}
//! hosts:
//!   - name: db-1
//!     address: 10.0.0.5          # host name or IP (default: the name)
//!     port: 2222
//!     user: admin
//!     identity: keys/db.key      # relative to the inventory file
//!     tags: [db, prod]           # tags are groups too
//! groups:
//!   prod: [db-1, web-1]
//! ```
//!
//! Ansible's formats are read for `ansible_host`, `ansible_port`, `ansible_user` and
//! `ansible_ssh_private_key_file`, with group `vars` and `children` inherited; other variables
//! are ignored. Parsing does no host I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::yaml::{self, YamlError};

/// One host of an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    /// The inventory's name for the host, used as the target name.
    pub name: String,
    /// The host name or address to connect to.
    pub address: String,
    /// The SSH port, when set.
    pub port: Option<u16>,
    /// The user, when set.
    pub user: Option<String>,
    /// A private key file, when set (resolved against the inventory's folder).
    pub identity: Option<PathBuf>,
    /// Every group the host belongs to (directly, through children, or by tag), and `all`.
    pub groups: BTreeSet<String>,
}

impl InventoryHost {
    /// `ssh://[user@]address[:port]`.
    pub fn ssh_address(&self) -> String {
        let host = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("ssh://{user}{host}{port}")
    }
}

/// Reads an inventory file, telling the format by its content.
pub fn read(path: &Path) -> Result<Vec<InventoryHost>, YamlError> {
    let file = path.display().to_string();
    let text = yaml::read_file(path, crate::fsio::cap::INVENTORY, "inventory")?;
    let base = path.parent().unwrap_or(Path::new("."));
    let keys = if looks_like_ini(&text) {
        None
    } else {
        Some(yaml::top_level_keys(&file, &text)?)
    };
    let mut hosts = match keys {
        None => parse_ansible_ini(&file, &text)?,
        Some(keys) if keys.iter().any(|k| k == "hosts") && !keys.iter().any(|k| k == "all") => {
            parse_hostcert(&file, &text)?
        }
        Some(_) => parse_ansible_yaml(&file, &text)?,
    };
    for host in &mut hosts {
        if let Some(identity) = &host.identity {
            let expanded = expand_home(identity);
            host.identity = Some(if expanded.is_absolute() {
                expanded
            } else {
                base.join(expanded)
            });
        }
        host.groups.insert("all".to_owned());
    }
    if hosts.is_empty() {
        return Err(YamlError {
            file,
            position: None,
            message: "the inventory has no hosts".to_owned(),
        });
    }
    Ok(hosts)
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

/// INI when the first meaningful line is a `[section]` or a bare host line, not YAML.
fn looks_like_ini(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && l != &"---");
    match first {
        Some(line) => {
            line.starts_with('[') && line.ends_with(']')
                || (!line.contains(": ") && !line.ends_with(':'))
        }
        None => false,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: RawDefaults,
    hosts: Vec<RawHost>,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawDefaults {
    user: Option<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawHost {
    name: String,
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity: Option<PathBuf>,
    #[serde(default)]
    tags: Vec<String>,
}

fn parse_hostcert(file: &str, text: &str) -> Result<Vec<InventoryHost>, YamlError> {
    let raw: RawInventory = yaml::parse(file, text)?;
    let mut hosts: Vec<InventoryHost> = Vec::new();
    for host in raw.hosts {
        if hosts.iter().any(|h| h.name == host.name) {
            return Err(YamlError {
                file: file.to_owned(),
                position: yaml::locate(text, "name", Some(&host.name), 1),
                message: format!("hosts: `{}` is listed twice", host.name),
            });
        }
        hosts.push(InventoryHost {
            address: host.address.unwrap_or_else(|| host.name.clone()),
            port: host.port.or(raw.defaults.port),
            user: host.user.or_else(|| raw.defaults.user.clone()),
            identity: host.identity.or_else(|| raw.defaults.identity.clone()),
            groups: host.tags.into_iter().collect(),
            name: host.name,
        });
    }
    for (group, members) in raw.groups {
        for member in members {
            let Some(host) = hosts.iter_mut().find(|h| h.name == member) else {
                return Err(YamlError {
                    file: file.to_owned(),
                    position: yaml::locate(text, &group, None, 0),
                    message: format!("groups.{group}: no host named `{member}`"),
                });
            };
            host.groups.insert(group.clone());
        }
    }
    Ok(hosts)
}

/// Connection variables as Ansible names them.
#[derive(Debug, Clone, Default)]
struct Vars {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity: Option<PathBuf>,
}

impl Vars {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "ansible_host" | "ansible_ssh_host" => self.host = Some(value.to_owned()),
            "ansible_port" | "ansible_ssh_port" => {
                self.port = Some(
                    value
                        .parse()
                        .map_err(|_| format!("{key}: `{value}` is not a port number"))?,
                )
            }
            "ansible_user" | "ansible_ssh_user" => self.user = Some(value.to_owned()),
            "ansible_ssh_private_key_file" => self.identity = Some(PathBuf::from(value)),
            _ => {}
        }
        Ok(())
    }

    /// `self` over `inherited`: a host's own variables win over its groups'.
    fn over(&self, inherited: &Vars) -> Vars {
        Vars {
            host: self.host.clone().or_else(|| inherited.host.clone()),
            port: self.port.or(inherited.port),
            user: self.user.clone().or_else(|| inherited.user.clone()),
            identity: self.identity.clone().or_else(|| inherited.identity.clone()),
        }
    }
}

/// Hosts, groups with their vars and children, as both Ansible formats describe them.
#[derive(Default)]
struct AnsibleInventory {
    hosts: Vec<(String, Vars)>,
    members: BTreeMap<String, Vec<String>>,
    children: BTreeMap<String, Vec<String>>,
    group_vars: BTreeMap<String, Vars>,
}

impl AnsibleInventory {
    fn add_host(&mut self, name: &str, vars: Vars, group: &str) {
        match self.hosts.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = vars.over(existing),
            None => self.hosts.push((name.to_owned(), vars)),
        }
        self.members
            .entry(group.to_owned())
            .or_default()
            .push(name.to_owned());
    }

    /// Every group a host is in, with its ancestors through `children`.
    fn resolve(self) -> Vec<InventoryHost> {
        let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (parent, children) in &self.children {
            for child in children {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(parent.as_str());
            }
        }
        self.hosts
            .iter()
            .map(|(name, own)| {
                let mut groups: BTreeSet<String> = BTreeSet::new();
                let mut stack: Vec<&str> = self
                    .members
                    .iter()
                    .filter(|(_, hosts)| hosts.contains(name))
                    .map(|(group, _)| group.as_str())
                    .collect();
                while let Some(group) = stack.pop() {
                    if groups.insert(group.to_owned()) {
                        stack.extend(parents.get(group).into_iter().flatten());
                    }
                }
                // Variables: the host's own, then its groups' from the most specific (the most
                // ancestors) to the least, then `all`, as Ansible ranks them.
                let depth = |group: &str| {
                    let mut seen = BTreeSet::new();
                    let mut stack = vec![group];
                    while let Some(g) = stack.pop() {
                        if seen.insert(g) {
                            stack.extend(parents.get(g).into_iter().flatten());
                        }
                    }
                    seen.len()
                };
                let mut ranked: Vec<&String> = groups.iter().filter(|g| *g != "all").collect();
                ranked.sort_by_key(|g| std::cmp::Reverse(depth(g)));
                let mut vars = own.clone();
                for group in ranked {
                    if let Some(group_vars) = self.group_vars.get(group) {
                        vars = vars.over(group_vars);
                    }
                }
                if let Some(all) = self.group_vars.get("all") {
                    vars = vars.over(all);
                }
                InventoryHost {
                    name: name.clone(),
                    address: vars.host.clone().unwrap_or_else(|| name.clone()),
                    port: vars.port,
                    user: vars.user.clone(),
                    identity: vars.identity.clone(),
                    groups: groups.into_iter().filter(|g| g != "ungrouped").collect(),
                }
            })
            .collect()
    }
}

fn parse_ansible_ini(file: &str, text: &str) -> Result<Vec<InventoryHost>, YamlError> {
    let mut inventory = AnsibleInventory::default();
    let mut section = ("ungrouped".to_owned(), "hosts");
    for (index, raw_line) in text.lines().enumerate() {
        let error = |message: String| YamlError {
            file: file.to_owned(),
            position: Some((index + 1, 1)),
            message,
        };
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match header.split_once(':') {
                Some((group, "children")) => (group.to_owned(), "children"),
                Some((group, "vars")) => (group.to_owned(), "vars"),
                Some((_, kind)) => return Err(error(format!("unknown section kind `:{kind}`"))),
                None => (header.to_owned(), "hosts"),
            };
            continue;
        }
        let (group, kind) = (&section.0, section.1);
        match kind {
            "children" => inventory
                .children
                .entry(group.clone())
                .or_default()
                .push(line.to_owned()),
            "vars" => {
                let (key, value) = line
                    .split_once('=')
                    .ok_or_else(|| error(format!("`{line}` is not key=value")))?;
                inventory
                    .group_vars
                    .entry(group.clone())
                    .or_default()
                    .set(key.trim(), unquote(value.trim()))
                    .map_err(error)?;
            }
            _ => {
                let mut words = line.split_whitespace();
                let name = words.next().unwrap_or_default();
                if name.contains('[') {
                    return Err(error(format!(
                        "host ranges such as `{name}` are not supported; list the hosts"
                    )));
                }
                let mut vars = Vars::default();
                for word in words {
                    let (key, value) = word
                        .split_once('=')
                        .ok_or_else(|| error(format!("`{word}` is not key=value")))?;
                    vars.set(key, unquote(value)).map_err(error)?;
                }
                inventory.add_host(name, vars, group);
            }
        }
    }
    Ok(inventory.resolve())
}

fn unquote(value: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value)
}

fn parse_ansible_yaml(file: &str, text: &str) -> Result<Vec<InventoryHost>, YamlError> {
    #[derive(Deserialize, Default)]
    struct Group {
        #[serde(default)]
        hosts: Option<BTreeMap<String, Option<BTreeMap<String, crate::model::Scalar>>>>,
        #[serde(default)]
        children: Option<BTreeMap<String, Option<Group>>>,
        #[serde(default)]
        vars: Option<BTreeMap<String, crate::model::Scalar>>,
    }
    fn walk(name: &str, group: Group, inventory: &mut AnsibleInventory) -> Result<(), String> {
        if let Some(vars) = group.vars {
            let entry = inventory.group_vars.entry(name.to_owned()).or_default();
            for (key, value) in vars {
                entry
                    .set(&key, &value.0)
                    .map_err(|e| format!("{name}.vars.{e}"))?;
            }
        }
        for (host, vars) in group.hosts.unwrap_or_default() {
            let mut host_vars = Vars::default();
            for (key, value) in vars.unwrap_or_default() {
                host_vars
                    .set(&key, &value.0)
                    .map_err(|e| format!("{name}.hosts.{host}.{e}"))?;
            }
            inventory.add_host(&host, host_vars, name);
        }
        for (child, group) in group.children.unwrap_or_default() {
            inventory
                .children
                .entry(name.to_owned())
                .or_default()
                .push(child.clone());
            walk(&child, group.unwrap_or_default(), inventory)?;
        }
        Ok(())
    }
    let groups: BTreeMap<String, Option<Group>> = yaml::parse(file, text)?;
    let mut inventory = AnsibleInventory::default();
    for (name, group) in groups {
        walk(&name, group.unwrap_or_default(), &mut inventory).map_err(|message| YamlError {
            file: file.to_owned(),
            position: None,
            message,
        })?;
    }
    Ok(inventory.resolve())
}

/// Applies `--limit`: comma- or colon-separated host or group names or globs; a `!` prefix
/// excludes. With only exclusions, every other host is kept.
pub fn limit(hosts: Vec<InventoryHost>, pattern: &str) -> Result<Vec<InventoryHost>, String> {
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for part in pattern
        .split([',', ':'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (list, text) = match part.strip_prefix('!') {
            Some(rest) => (&mut exclude, rest),
            None => (&mut include, part),
        };
        list.push(glob::Pattern::new(text).map_err(|e| format!("--limit `{text}`: {e}"))?);
    }
    let matches = |host: &InventoryHost, patterns: &[glob::Pattern]| {
        patterns
            .iter()
            .any(|p| p.matches(&host.name) || host.groups.iter().any(|g| p.matches(g)))
    };
    let kept: Vec<InventoryHost> = hosts
        .into_iter()
        .filter(|h| (include.is_empty() || matches(h, &include)) && !matches(h, &exclude))
        .collect();
    if kept.is_empty() {
        return Err(format!(
            "--limit `{pattern}` selects no host of the inventory"
        ));
    }
    Ok(kept)
}

/// Applies `--shard K/N`: the hosts whose name hashes to share K of N. Deterministic (sha256 of
/// the name), so that N CI jobs with K = 1..N cover the fleet exactly once.
pub fn shard<T>(items: Vec<T>, name: impl Fn(&T) -> &str, shard: (u32, u32)) -> Vec<T> {
    use sha2::Digest;
    let (index, count) = shard;
    items
        .into_iter()
        .filter(|item| {
            let hash = sha2::Sha256::digest(name(item).as_bytes());
            let value = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
            value % count == index - 1
        })
        .collect()
}

/// Parses `K/N` with 1 <= K <= N.
pub fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => Err(format!(
            "`{text}` is not a shard K/N with 1 <= K <= N (e.g. 2/4)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(file: &str, text: &str) -> Vec<InventoryHost> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let mut hosts = read(&path).unwrap();
        for host in &mut hosts {
            if let Some(identity) = &host.identity {
                host.identity = identity
                    .strip_prefix(dir.path())
                    .ok()
                    .map(Path::to_owned)
                    .or(host.identity.clone());
            }
        }
        hosts
    }

    fn summary(hosts: &[InventoryHost]) -> Vec<String> {
        hosts
            .iter()
            .map(|h| {
                format!(
                    "{} {} {:?} groups={}",
                    h.name,
                    h.ssh_address(),
                    h.identity,
                    h.groups.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect()
    }

    #[test]
    fn hostcert_format() {
        let text = "defaults: {user: root, port: 22}\nhosts:\n  - name: db-1\n    address: 10.0.0.5\n    port: 2222\n    identity: keys/db\n    tags: [db]\n  - name: web-1\ngroups:\n  prod: [db-1, web-1]\n";
        assert_eq!(
            summary(&hosts("inv.yaml", text)),
            [
                "db-1 ssh://root@10.0.0.5:2222 Some(\"keys/db\") groups=all,db,prod",
                "web-1 ssh://root@web-1:22 None groups=all,prod",
            ]
        );
    }

    #[test]
    fn ansible_ini_with_children_and_vars() {
        let text = "# fleet\nbastion ansible_host=192.0.2.1\n\n[web]\nweb1 ansible_host=127.0.0.1 ansible_port=2201\nweb2 ansible_host=127.0.0.1 ansible_port=2202 ansible_user=deploy\n\n[db]\ndb1 ansible_host=::1 ansible_ssh_private_key_file=keys/db\n\n[prod:children]\nweb\ndb\n\n[prod:vars]\nansible_user=root\n";
        assert_eq!(
            summary(&hosts("hosts", text)),
            [
                "bastion ssh://192.0.2.1 None groups=all",
                "web1 ssh://root@127.0.0.1:2201 None groups=all,prod,web",
                "web2 ssh://deploy@127.0.0.1:2202 None groups=all,prod,web",
                "db1 ssh://root@[::1] Some(\"keys/db\") groups=all,db,prod",
            ]
        );
    }

    #[test]
    fn ansible_yaml_with_children_and_vars() {
        let text = "all:\n  vars:\n    ansible_user: admin\n  hosts:\n    solo:\n  children:\n    web:\n      hosts:\n        web1: {ansible_host: 127.0.0.1, ansible_port: 2201}\n      vars: {ansible_user: root}\n    db:\n      hosts:\n        db1:\n          ansible_port: 2203\n";
        assert_eq!(
            summary(&hosts("inv.yml", text)),
            [
                "solo ssh://admin@solo None groups=all",
                "db1 ssh://admin@db1:2203 None groups=all,db",
                "web1 ssh://root@127.0.0.1:2201 None groups=all,web",
            ]
        );
    }

    #[test]
    fn limits_and_shards() {
        let text = "[web]\nweb1\nweb2\n[db]\ndb1\n";
        let all = hosts("hosts", text);
        let names = |h: &[InventoryHost]| h.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&limit(all.clone(), "web").unwrap()), ["web1", "web2"]);
        assert_eq!(names(&limit(all.clone(), "web,!web2").unwrap()), ["web1"]);
        assert_eq!(names(&limit(all.clone(), "!web").unwrap()), ["db1"]);
        assert_eq!(
            names(&limit(all.clone(), "db*:web1").unwrap()),
            ["web1", "db1"]
        );
        assert_eq!(
            limit(all.clone(), "nope").unwrap_err(),
            "--limit `nope` selects no host of the inventory"
        );
        let mut union = Vec::new();
        for k in 1..=3 {
            union.extend(names(&shard(all.clone(), |h| &h.name, (k, 3))));
        }
        union.sort();
        assert_eq!(
            union,
            ["db1", "web1", "web2"],
            "shards cover the fleet exactly once"
        );
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(
            parse_shard("0/4").is_err() && parse_shard("5/4").is_err() && parse_shard("x").is_err()
        );
    }

    #[test]
    fn bad_inventories_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "[web]\nweb1 ansible_port=abc\n").unwrap();
        let error = read(&path).unwrap_err();
        assert_eq!(error.position, Some((2, 1)));
        assert_eq!(error.message, "ansible_port: `abc` is not a port number");
        std::fs::write(&path, "hosts:\n  - name: a\n    colour: red\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains(":3:5: hosts[0]: unknown field `colour`"),
            "{error}"
        );
    }
}
