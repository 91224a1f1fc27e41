//! The URL forms of the highly available stores: `redis+sentinel://`,
//! `redis+cluster://` (several hosts, which `url::Url` cannot hold) and
//! `postgres://` (checked by sqlx's own parser, the one the store uses).
//! Messages never quote a password.

use crate::secret::Secret;
use percent_encoding::percent_decode_str;
use std::fmt;
use std::str::FromStr;

/// Default port of a Redis Sentinel.
const SENTINEL_PORT: u16 = 26379;
/// Default port of a Redis server (cluster node).
const REDIS_PORT: u16 = 6379;

/// Which kind of multi-host Redis deployment a [`RedisNodes`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisTopology {
    /// Sentinels watching one master and its replicas.
    Sentinel,
    /// A Redis Cluster.
    Cluster,
}

/// A Redis deployment reached through several hosts:
/// `redis+sentinel://[USER:PASSWORD@]H1[:P1],H2[:P2],…/SERVICE[/DB]` or
/// `redis+cluster://[USER:PASSWORD@]H1[:P1],H2[:P2],…` (`rediss+…`: TLS).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisNodes {
    /// Sentinel or Cluster.
    pub topology: RedisTopology,
    /// TLS to every node (`rediss+…`).
    pub tls: bool,
    /// The ACL user, if any.
    pub username: Option<String>,
    /// The password, if any (Sentinel: of the servers and the sentinels).
    pub password: Option<Secret>,
    /// The hosts given: sentinels (default port 26379) or cluster nodes
    /// (default port 6379).
    pub hosts: Vec<(String, u16)>,
    /// Sentinel: the name of the watched master.
    pub service: Option<String>,
    /// Sentinel: the database number.
    pub database: Option<u8>,
}

impl fmt::Debug for RedisNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisNodes({self})")
    }
}

impl RedisNodes {
    /// Parses a `redis+sentinel://`, `rediss+sentinel://`,
    /// `redis+cluster://` or `rediss+cluster://` URL.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (scheme, rest) = value.split_once("://").ok_or("expected SCHEME://HOSTS")?;
        let (tls, topology) = match scheme {
            "redis+sentinel" => (false, RedisTopology::Sentinel),
            "rediss+sentinel" => (true, RedisTopology::Sentinel),
            "redis+cluster" => (false, RedisTopology::Cluster),
            "rediss+cluster" => (true, RedisTopology::Cluster),
            _ => return Err(format!("unknown scheme `{scheme}`")),
        };
        let what = scheme_label(topology);
        // Everything before the last `@` is the user and password (hosts and
        // paths have none), so no part of a password is ever read as a host.
        let (userinfo, after) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if after.contains(['?', '#']) {
            return Err(format!(
                "not a valid {what} URL: no query or fragment expected"
            ));
        }
        let (hosts, path) = after.split_once('/').unwrap_or((after, ""));
        let (username, password) = credentials(userinfo, what)?;
        let default_port = match topology {
            RedisTopology::Sentinel => SENTINEL_PORT,
            RedisTopology::Cluster => REDIS_PORT,
        };
        let hosts = hosts
            .split(',')
            .map(|h| host_port(h, default_port, what))
            .collect::<Result<Vec<_>, _>>()?;
        let (service, database) = match topology {
            RedisTopology::Sentinel => sentinel_path(path)?,
            RedisTopology::Cluster if path.is_empty() => (None, None),
            RedisTopology::Cluster => {
                return Err(format!(
                    "not a valid {what} URL: a cluster has no service or database (no path)"
                ));
            }
        };
        Ok(Self {
            topology,
            tls,
            username,
            password,
            hosts,
            service,
            database,
        })
    }
}

fn scheme_label(topology: RedisTopology) -> &'static str {
    match topology {
        RedisTopology::Sentinel => "Redis Sentinel",
        RedisTopology::Cluster => "Redis Cluster",
    }
}

fn decode(part: &str) -> Result<String, ()> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ())
}

fn credentials(
    userinfo: Option<&str>,
    what: &str,
) -> Result<(Option<String>, Option<Secret>), String> {
    let Some(userinfo) = userinfo else {
        return Ok((None, None));
    };
    let bad = || format!("not a valid {what} URL: the user or password is not valid UTF-8");
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let user = Some(decode(user).map_err(|()| bad())?).filter(|u| !u.is_empty());
    let password = match password {
        Some(p) => Some(Secret::new(decode(p).map_err(|()| bad())?)).filter(|p| !p.is_empty()),
        None => None,
    };
    Ok((user, password))
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
fn host_port(text: &str, default_port: u16, what: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("not a valid {what} URL: host `{text}` {why}");
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("has no closing `]`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("not a valid {what} URL: an empty host"));
    }
    if host.contains(['/', '@', ' ', '[', ']']) {
        return Err(bad("is not a host name"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("has an invalid port"))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

/// `/SERVICE` or `/SERVICE/DB`.
fn sentinel_path(path: &str) -> Result<(Option<String>, Option<u8>), String> {
    let mut parts = path.split('/');
    let service = parts.next().filter(|s| !s.is_empty()).ok_or(
        "not a valid Redis Sentinel URL: it names no service (redis+sentinel://H1,H2,H3/SERVICE)",
    )?;
    let service = decode(service)
        .map_err(|()| "not a valid Redis Sentinel URL: the service is not valid UTF-8")?;
    let database = match parts.next() {
        None | Some("") => None,
        Some(db) => Some(db.parse::<u8>().map_err(|_| {
            "not a valid Redis Sentinel URL: after the service, the path must be a database number"
        })?),
    };
    if parts.next().is_some() {
        return Err("not a valid Redis Sentinel URL: the path is /SERVICE or /SERVICE/DB".into());
    }
    Ok((Some(service), database))
}

impl fmt::Display for RedisNodes {
    /// The URL with the password replaced by `[redacted]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = if self.tls { "s" } else { "" };
        let kind = match self.topology {
            RedisTopology::Sentinel => "sentinel",
            RedisTopology::Cluster => "cluster",
        };
        write!(f, "redis{tls}+{kind}://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:[redacted]@")?,
            (None, Some(_)) => f.write_str(":[redacted]@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, None) => {}
        }
        for (i, (host, port)) in self.hosts.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{sep}[{host}]:{port}")?;
            } else {
                write!(f, "{sep}{host}:{port}")?;
            }
        }
        if let Some(service) = &self.service {
            write!(f, "/{service}")?;
        }
        if let Some(db) = self.database {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

/// Checks a `postgres://` (or `postgresql://`) URL with sqlx's parser: the
/// one the store uses, so what passes here connects the same way (`sslmode`,
/// `sslrootcert`, `options`, … as libpq reads them).
pub(super) fn check_postgres_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) && !url.query_pairs().any(|(k, _)| k == "host") {
        return Err("not a valid PostgreSQL URL: it names no host".into());
    }
    sqlx::postgres::PgConnectOptions::from_str(value)
        .map(|_| ())
        .map_err(|e| format!("not a valid PostgreSQL URL: {}", postgres_error(&e)))
}

/// sqlx's configuration errors name the bad parameter and its value (never
/// the password, which is not a parameter it can refuse).
fn postgres_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// A PostgreSQL URL with its password replaced by `[redacted]`.
pub(super) fn display_postgres_url(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("[redacted]"));
            }
            let redacted: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "[redacted]".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !redacted.is_empty() {
                url.query_pairs_mut().clear().extend_pairs(redacted);
            }
            url.to_string()
        }
        Err(_) => "postgres://[unparsable]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let n = RedisNodes::parse("redis+sentinel://:pw@a,b:26380,[::1]/mymaster/2").unwrap();
        assert_eq!(n.topology, RedisTopology::Sentinel);
        assert!(!n.tls);
        assert_eq!(n.password.as_ref().map(Secret::expose), Some("pw"));
        assert_eq!(
            n.hosts,
            [
                ("a".to_owned(), 26379),
                ("b".to_owned(), 26380),
                ("::1".to_owned(), 26379)
            ]
        );
        assert_eq!(n.service.as_deref(), Some("mymaster"));
        assert_eq!(n.database, Some(2));
        assert_eq!(
            n.to_string(),
            "redis+sentinel://:[redacted]@a:26379,b:26380,[::1]:26379/mymaster/2"
        );
        assert!(!format!("{n:?}").contains("pw"));
        let tls = RedisNodes::parse("rediss+sentinel://u:p%40ss@h1/svc").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.username.as_deref(), Some("u"));
        assert_eq!(tls.password.as_ref().map(Secret::expose), Some("p@ss"));
    }

    #[test]
    fn cluster_urls() {
        let n = RedisNodes::parse("redis+cluster://h1:7000,h2:7001,h3").unwrap();
        assert_eq!(n.topology, RedisTopology::Cluster);
        assert_eq!(n.hosts[2], ("h3".to_owned(), 6379));
        assert_eq!(n.service, None);
        assert_eq!(n.to_string(), "redis+cluster://h1:7000,h2:7001,h3:6379");
    }

    #[test]
    fn bad_urls_are_named_without_the_password() {
        for (url, want) in [
            ("redis+sentinel://:secret@a,b", "names no service"),
            ("redis+sentinel://:secret@a,b/m/x", "database number"),
            (
                "redis+sentinel://:secret@a,b/m/1/2",
                "/SERVICE or /SERVICE/DB",
            ),
            ("redis+cluster://:secret@a,b/0", "no path"),
            ("redis+cluster://:secret@a,,b", "an empty host"),
            ("redis+cluster://:secret@a:99999", "invalid port"),
            ("redis+cluster://:secret@a:0", "invalid port"),
            ("redis+cluster://:secret@a?x=1", "no query"),
            ("redis+cluster://:secret@[::1", "closing"),
            ("redis+cluster://user:se/cr:et@h:x", "invalid port"),
            ("redis+sentinel://user:se,cr/et@h/", "names no service"),
        ] {
            let e = RedisNodes::parse(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
            for part in ["secret", "se/cr", "cr:et", "se,cr", "cr/et"] {
                assert!(!e.contains(part), "{url}: {e}");
            }
        }
    }

    #[test]
    fn postgres_urls() {
        check_postgres_url("postgres://keyway:pw@db.example.com:5432/keyway?sslmode=verify-full")
            .unwrap();
        check_postgres_url("postgresql://keyway@localhost/keyway").unwrap();
        for (url, want) in [
            (
                "postgres://u:secret@h/db?sslmode=sometimes",
                "\"sometimes\" for `ssl_mode`",
            ),
            ("postgres://u:secret@:5432/db", "host"),
            ("postgres://u:secret@h:port/db", "PostgreSQL URL"),
        ] {
            let e = check_postgres_url(url).unwrap_err();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("secret"), "{url}: {e}");
        }
        assert_eq!(
            display_postgres_url("postgres://u:secret@h/db?sslmode=require&password=x"),
            "postgres://u:%5Bredacted%5D@h/db?sslmode=require&password=%5Bredacted%5D"
        );
    }
}
