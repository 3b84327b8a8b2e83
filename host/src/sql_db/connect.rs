//! Where and as whom to connect ([`ConnInfo`], from the `db_*` options and libpq's
//! defaults), the `application_name` every connection gives, and a connection outside the
//! pools ([`connect_unpooled`]).

use super::DbError;
use crate::config::Config;
use std::time::Duration;

/// How long connecting to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom to connect: the `db_*` options (which already include `$PGHOST`,
/// `$PGPORT`, `$PGUSER`, `$PGPASSWORD`), with libpq's defaults for what is unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// A host name, an address, or a folder holding the unix socket.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The role.
    pub user: String,
    /// The password, if any.
    pub password: Option<String>,
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`.
    pub sslmode: String,
    /// `application_name`.
    pub application_name: String,
}

impl ConnInfo {
    /// From the configuration and libpq's defaults: the unix socket folder
    /// (`/var/run/postgresql` or `/tmp`) when it holds the socket, else `localhost`; port
    /// 5432; the operating-system user.
    pub fn from_config(config: &Config) -> ConnInfo {
        let port = config.db_port.unwrap_or(5432);
        let host = match config.db_host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_owned(),
            None => ["/var/run/postgresql", "/tmp"]
                .into_iter()
                .find(|d| {
                    std::path::Path::new(d)
                        .join(format!(".s.PGSQL.{port}"))
                        .exists()
                })
                .unwrap_or("localhost")
                .to_owned(),
        };
        let user = config
            .db_user
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::geteuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".to_owned());
        ConnInfo {
            host,
            port,
            user,
            password: config.db_password.clone().filter(|p| !p.is_empty()),
            sslmode: config.db_sslmode.clone(),
            application_name: application_name(),
        }
    }

    /// The tokio-postgres configuration for `dbname`.
    pub fn pg_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name(&self.application_name)
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(60));
        if let Some(p) = &self.password {
            c.password(p.as_bytes());
        }
        // Without a TLS library, `prefer`/`allow` connect in clear and `require` and above
        // fail with tokio-postgres's clear error.
        c.ssl_mode(match self.sslmode.as_str() {
            "disable" => tokio_postgres::config::SslMode::Disable,
            "allow" | "prefer" => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        c
    }

    /// `user@host:port`, for logs.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Odoo's `application_name`: `$INPHMS_PGAPPNAME` with `{pid}` replaced, cut to 63 bytes,
/// else `inphms-<pid>`.
pub fn application_name() -> String {
    let pid = std::process::id().to_string();
    match std::env::var("INPHMS_PGAPPNAME") {
        Ok(name) if !name.is_empty() => {
            let mut name = name.replace("{pid}", &pid);
            while name.len() > 63 {
                name.pop();
            }
            name
        }
        _ => format!("inphms-{pid}"),
    }
}

/// Opens one connection outside the pools (the cron workers' LISTEN connections, database
/// creation). The returned connection must be driven by the caller.
pub async fn connect_unpooled(
    info: &ConnInfo,
    dbname: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    DbError,
> {
    info.pg_config(dbname)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| DbError::from_connect(&e))
}
