//! A dagster-postgres URL as the driver needs it: SQLAlchemy's scheme forms, libpq's TLS
//! parameters (which the `postgres` crate does not know), the session settings every dagster-rs
//! connection carries, and the URL without its password for messages.

use std::time::Duration;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::config::SslMode as DriverSslMode;
use postgres::Config;
use postgres_openssl::MakeTlsConnector;

/// libpq's `sslmode`s (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS parameters libpq reads from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: SslMode,
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// Everything needed to open a session.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
    pub tls: Tls,
    /// The URL without its password.
    pub location: String,
}

fn invalid(message: impl Into<String>) -> String {
    message.into()
}

/// `url` as users write it for dagster-postgres: `postgresql://`, `postgres://`, and
/// SQLAlchemy's driver-qualified `postgresql+psycopg2://` / `postgresql+psycopg://`, with libpq
/// parameters in the query string (`host=<socket dir>`, `sslmode`, `sslrootcert`, ...).
pub fn parse(
    url: &str,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("invalid PostgreSQL URL: no scheme"))?;
    if !(scheme == "postgresql" || scheme == "postgres" || scheme.starts_with("postgresql+")) {
        return Err(invalid(format!(
            "invalid PostgreSQL URL: scheme {scheme:?} is not postgresql"
        )));
    }
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut tls = Tls {
        mode: SslMode::Prefer,
        root_cert: None,
        cert: None,
        key: None,
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_decode(value);
        match key {
            "sslmode" => {
                tls.mode = match decoded.as_str() {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(invalid(format!("invalid sslmode value: \"{other}\""))),
                }
            }
            "sslrootcert" => tls.root_cert = Some(decoded),
            "sslcert" => tls.cert = Some(decoded),
            "sslkey" => tls.key = Some(decoded),
            // Options libpq knows that change nothing the driver does here.
            "sslcompression" | "sslsni" | "gssencmode" | "sslcrl" | "sslpassword" => {}
            _ => kept.push(pair),
        }
    }
    let libpq = if kept.is_empty() {
        format!("postgresql://{base}")
    } else {
        format!("postgresql://{base}?{}", kept.join("&"))
    };
    let mut config: Config = libpq
        .parse()
        .map_err(|e| invalid(format!("invalid PostgreSQL URL: {e}")))?;
    // libpq's defaults where the URL names no host or user (its environment variables, then
    // Debian's socket directory and the login name).
    if config.get_hosts().is_empty() {
        let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".to_owned());
        config.host(&host);
    }
    if config.get_user().is_none() {
        if let Ok(user) = std::env::var("PGUSER").or_else(|_| std::env::var("USER")) {
            config.user(&user);
        }
    }
    config.application_name("dagster-rs");
    // Stock stores naive UTC timestamps and requires the session in UTC.
    let mut options = config.get_options().map(str::to_owned).unwrap_or_default();
    if !options.is_empty() {
        options.push(' ');
    }
    options.push_str("-c TimeZone=UTC");
    if let Some(timeout) = statement_timeout {
        options.push_str(&format!(" -c statement_timeout={}", timeout.as_millis()));
    }
    config.options(&options);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(connect_timeout);
    }
    // libpq never negotiates TLS over a unix socket, whatever sslmode says.
    let unix_only = config
        .get_hosts()
        .iter()
        .all(|h| !matches!(h, postgres::config::Host::Tcp(_)));
    config.ssl_mode(match tls.mode {
        _ if unix_only => DriverSslMode::Disable,
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        _ => DriverSslMode::Require,
    });
    Ok(Target {
        config,
        tls,
        location: without_password(url),
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with any password replaced by `***` (what messages and `Db::location` show).
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    // A password in the query string (`?password=...`) is hidden too.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The TLS connector for `tls`: libpq's semantics — `prefer`/`require` encrypt without
/// verifying the server (unless a root certificate is named, as libpq then verifies the chain),
/// `verify-ca` verifies the chain, `verify-full` the chain and the host name. Roots: `sslrootcert`,
/// else the system's store. Client certificates from `sslcert`/`sslkey` (PEM).
pub fn connector(tls: &Tls) -> Result<MakeTlsConnector, String> {
    let err = |what: &str, e: openssl::error::ErrorStack| format!("TLS set-up: {what}: {e}");
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| err("init", e))?;
    match &tls.root_cert {
        Some(path) if path != "system" => builder
            .set_ca_file(path)
            .map_err(|e| err(&format!("sslrootcert {path}"), e))?,
        _ => builder
            .set_default_verify_paths()
            .map_err(|e| err("system roots", e))?,
    }
    if let Some(cert) = &tls.cert {
        builder
            .set_certificate_chain_file(cert)
            .map_err(|e| err(&format!("sslcert {cert}"), e))?;
        let key = tls.key.clone().unwrap_or_else(|| cert.clone());
        builder
            .set_private_key_file(&key, SslFiletype::PEM)
            .map_err(|e| err(&format!("sslkey {key}"), e))?;
    }
    let verify_chain = match tls.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same
        // as that of verify-ca".
        SslMode::Require => tls.root_cert.as_deref().is_some_and(|p| p != "system"),
        SslMode::Prefer | SslMode::Disable => false,
    };
    builder.set_verify(if verify_chain {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    let mut connector = MakeTlsConnector::new(builder.build());
    let verify_host = tls.mode == SslMode::VerifyFull;
    connector.set_callback(move |config, _| {
        config.set_verify_hostname(verify_host);
        Ok(())
    });
    Ok(connector)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn driver_qualified_urls_name_the_same_server() {
        let plain = parse("postgresql://u@/db?host=/tmp/s&port=5433", T, None).unwrap();
        let qualified =
            parse("postgresql+psycopg2://u@/db?host=/tmp/s&port=5433", T, None).unwrap();
        let short = parse("postgres://u@/db?host=/tmp/s&port=5433", T, None).unwrap();
        assert_eq!(plain.config.get_hosts(), qualified.config.get_hosts());
        assert_eq!(plain.config.get_hosts(), short.config.get_hosts());
        assert_eq!(plain.config.get_ports(), [5433]);
        assert_eq!(qualified.config.get_dbname(), Some("db"));
        assert_eq!(plain.config.get_application_name(), Some("dagster-rs"));
        assert_eq!(plain.config.get_options(), Some("-c TimeZone=UTC"));
        assert!(parse("mysql://x", T, None).is_err());
    }

    #[test]
    fn libpq_tls_parameters_are_ours() {
        let t = parse(
            "postgresql://u:secret@db.example:5432/d?sslmode=verify-full&sslrootcert=%2Fca.pem\
             &application_name=x&sslcert=/c.pem&sslkey=/k.pem",
            T,
            Some(Duration::from_millis(1500)),
        )
        .unwrap();
        assert_eq!(
            t.tls,
            Tls {
                mode: SslMode::VerifyFull,
                root_cert: Some("/ca.pem".into()),
                cert: Some("/c.pem".into()),
                key: Some("/k.pem".into()),
            }
        );
        assert_eq!(t.config.get_ssl_mode(), DriverSslMode::Require);
        // Ours wins over the URL's: pg_stat_activity counts dagster-rs sessions by it.
        assert_eq!(t.config.get_application_name(), Some("dagster-rs"));
        assert_eq!(
            t.config.get_options(),
            Some("-c TimeZone=UTC -c statement_timeout=1500")
        );
        assert_eq!(
            t.location,
            "postgresql://u:***@db.example:5432/d?sslmode=verify-full&sslrootcert=%2Fca.pem\
             &application_name=x&sslcert=/c.pem&sslkey=/k.pem"
        );
        assert!(parse("postgresql://h/d?sslmode=sometimes", T, None).is_err());
        let d = parse("postgresql://h/d?sslmode=disable", T, None).unwrap();
        assert_eq!(d.config.get_ssl_mode(), DriverSslMode::Disable);
        assert_eq!(
            without_password("postgresql://u@h/d?password=p&x=1"),
            "postgresql://u@h/d?password=***&x=1"
        );
    }
}
