//! The PostgreSQL store: the same tables and the same guarantees as [`SqliteStore`]
//! (checked by the one conformance suite), for several server instances sharing one
//! database.
//!
//! A claim is one transaction that first locks the account's row (`SELECT ... FOR UPDATE`):
//! claims (and revocations) of one account, from however many instances, run one after
//! another, and each ends whatever the one before it left beyond the account's limit.
//!
//! [`SqliteStore`]: super::SqliteStore

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{
    AccountEvent, AccountId, AccountRecord, AccountStore, ActiveSession, CreateAccountError,
    DeviceDetails, DeviceHash, DeviceRecord, DeviceStore, EndedSession, FanOut, LoginOrigin,
    MAX_EVENTS_PER_ACCOUNT, MAX_TABS_PER_DEVICE, Mode, NewDevice, Policy, Replacing, SessionStore,
    Snapshot, StoreError, Stored, TabDetails, TabEnd, TabsPage, columns, oldest_beyond,
};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// Applied in order (all pending ones in one transaction), and recorded in
/// `solotab_migrations`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_accounts_sessions_devices.sql"),
    include_str!("../../migrations/postgres/0002_account_policy.sql"),
    include_str!("../../migrations/postgres/0003_max_tabs_last_seen_and_history.sql"),
    include_str!("../../migrations/postgres/0004_several_devices.sql"),
    include_str!("../../migrations/postgres/0005_expired_sessions.sql"),
];

/// Taken (per transaction) while migrating, so that instances starting together migrate
/// one at a time. Any constant works; this one spells "solotab".
const MIGRATION_LOCK: i64 = 0x0073_6f6c_6f74_6162;

/// Connections each instance keeps at most.
const POOL_SIZE: usize = 16;

/// How long opening a connection may take, unless the URL says (`connect_timeout`): an
/// unreachable server must fail requests promptly (503), not hang them.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

mod fanout;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Kept for the fan-out's own connection.
    config: tokio_postgres::Config,
    /// `host:port/database`, for logs (never the password).
    target: Arc<str>,
}

/// Why the store could not be opened. Messages name the server (never the password).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the database URL is not a PostgreSQL URL this server can use: {0}")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("migrating the PostgreSQL database at {target} failed: {reason}")]
    Migrate { target: String, reason: String },
    #[error(
        "the PostgreSQL database at {target} has schema version {found}, newer than this \
         server knows ({known}); run a newer server"
    )]
    TooNew {
        target: String,
        found: i32,
        known: usize,
    },
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, libpq's URL form), checks that the
    /// server answers, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| ConnectError::BadUrl(e.to_string()))?;
        Self::connect_with(config).await
    }

    /// [`connect`](Self::connect), with the connection settings already parsed.
    pub async fn connect_with(mut config: tokio_postgres::Config) -> Result<Self, ConnectError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| ConnectError::BadUrl(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| ConnectError::Unreachable {
            target: target.clone(),
            reason: e.to_string(),
        })?;
        migrate(&mut client, &target).await?;
        drop(client);
        Ok(Self {
            pool,
            config,
            target: target.into(),
        })
    }

    /// Every end committed by any instance on this database, as it commits, from a
    /// connection of its own that reconnects by itself (see [`FanOut`]). Stops when the
    /// receiver is dropped.
    pub fn listen(&self) -> tokio::sync::mpsc::Receiver<FanOut> {
        fanout::spawn(self.config.clone())
    }

    /// `host:port/database`: where this store is, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }

    /// One `UPDATE accounts ... WHERE id = ...`; whether it changed the account (false:
    /// there is no such account).
    async fn update_account(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<bool, StoreError> {
        let changed = self
            .client()
            .await?
            .execute(sql, params)
            .await
            .map_err(backend)?;
        Ok(changed == 1)
    }
}

/// `host:port/database`, for messages: never the user's password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("(default database)");
    format!("{host}:{port}/{database}")
}

async fn migrate(client: &mut deadpool_postgres::Object, target: &str) -> Result<(), ConnectError> {
    let failed = |e: tokio_postgres::Error| ConnectError::Migrate {
        target: target.to_owned(),
        reason: e.to_string(),
    };
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS solotab_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at BIGINT  NOT NULL
         )",
    )
    .await
    .map_err(failed)?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM solotab_migrations",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    if applied as usize > MIGRATIONS.len() {
        return Err(ConnectError::TooNew {
            target: target.to_owned(),
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    // PostgreSQL's DDL is transactional: all pending migrations commit together, or none.
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await.map_err(failed)?;
        let version = index as i32 + 1;
        tx.execute(
            "INSERT INTO solotab_migrations (version, applied_at) VALUES ($1, $2)",
            &[&version, &UnixMillis::now().as_millis()],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A tab from a row of `uid, issued_at, last_seen, user_agent, ip`.
fn tab_details(row: &Row) -> Result<TabDetails, StoreError> {
    let issued_at = UnixMillis::from_millis(row.try_get(1).map_err(backend)?);
    let last_seen: Option<i64> = row.try_get(2).map_err(backend)?;
    let user_agent: Option<&str> = row.try_get(3).map_err(backend)?;
    Ok(TabDetails {
        uid: uid_from_row(row, 0)?,
        issued_at,
        last_seen: last_seen.map_or(issued_at, UnixMillis::from_millis),
        origin: LoginOrigin {
            user_agent: user_agent.map(Arc::from),
            ip: columns::ip(row.try_get(4).map_err(backend)?)?,
        },
    })
}

fn uid_from_row(row: &Row, column: usize) -> Result<UidDigest, StoreError> {
    columns::uid(row.try_get(column).map_err(backend)?)
}

/// The uid (column 0) and the [`columns::SessionRow`] after it.
fn session_row(row: &Row) -> Result<(UidDigest, columns::SessionRow<'_>), StoreError> {
    let session = columns::SessionRow {
        account: row.try_get(1).map_err(backend)?,
        issued_at: row.try_get(2).map_err(backend)?,
        ended_at: row.try_get(3).map_err(backend)?,
        end_reason: row.try_get(4).map_err(backend)?,
        by_user_agent: row.try_get(5).map_err(backend)?,
        by_ip: row.try_get(6).map_err(backend)?,
        last_seen: row.try_get(7).map_err(backend)?,
    };
    Ok((uid_from_row(row, 0)?, session))
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn load(&self, ended_since: UnixMillis) -> Result<Snapshot, StoreError> {
        let client = self.client().await?;
        let mut snapshot = Snapshot::default();
        for row in client
            .query("SELECT id, username FROM accounts", &[])
            .await
            .map_err(backend)?
        {
            let name: &str = row.try_get(1).map_err(backend)?;
            snapshot
                .usernames
                .push((AccountId(row.try_get(0).map_err(backend)?), Arc::from(name)));
        }
        let sql = format!(
            "SELECT {} FROM sessions WHERE ended_at IS NULL OR ended_at >= $1",
            columns::SNAPSHOT_COLUMNS
        );
        let rows = client
            .query(&sql, &[&ended_since.as_millis()])
            .await
            .map_err(backend)?;
        for row in &rows {
            let session = columns::SnapshotRow {
                account: row.try_get(1).map_err(backend)?,
                issued_at: row.try_get(2).map_err(backend)?,
                ended_at: row.try_get(3).map_err(backend)?,
                end_reason: row.try_get(4).map_err(backend)?,
                last_seen: row.try_get(5).map_err(backend)?,
            };
            session.add_to(uid_from_row(row, 0)?, &mut snapshot)?;
        }
        Ok(snapshot)
    }

    async fn claim_replacing(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
        tabs: usize,
        replacing: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Claims of one account wait here for each other, on every instance.
        let locked = tx
            .query_opt(
                "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
                &[&session.account.0],
            )
            .await
            .map_err(backend)?;
        if locked.is_none() {
            return Err(backend(format!("no account {}", session.account.0)));
        }
        // Read after the lock, in a statement of its own: only a new statement sees what the
        // claim that held the lock before committed.
        let rows = tx
            .query(active_of_sql!("$1"), &[&session.account.0])
            .await
            .map_err(backend)?;
        let mut active = Vec::with_capacity(rows.len());
        for row in &rows {
            let issued_at: i64 = row.try_get(1).map_err(backend)?;
            active.push((UnixMillis::from_millis(issued_at), uid_from_row(row, 0)?));
        }
        let uids: Vec<UidDigest> = active.iter().map(|(_, uid)| *uid).collect();
        if !replacing.allows(&uids) {
            return Ok(None);
        }
        let ending = oldest_beyond(active, tabs);
        let ip = session.origin.ip.to_string();
        let user_agent = session.origin.user_agent.as_deref();
        if !ending.is_empty() {
            let ending: Vec<&[u8]> = ending.iter().map(|uid| uid.as_bytes().as_slice()).collect();
            // Each end is announced to every instance when (and only if) this commits.
            tx.execute(
                "WITH ended AS (
                     UPDATE sessions
                     SET ended_at = $1, end_reason = 'superseded',
                         ended_by_user_agent = $2, ended_by_ip = $3
                     WHERE uid = ANY($4) AND ended_at IS NULL
                     RETURNING uid)
                 SELECT pg_notify('solotab_ended', json_build_object(
                     'uid', encode(uid, 'hex'), 'at', $1::text, 'reason', 'superseded',
                     'ip', $3::text, 'ua', $2::text)::text)
                 FROM ended",
                &[&session.issued_at.as_millis(), &user_agent, &ip, &ending],
            )
            .await
            .map_err(backend)?;
        }
        tx.execute(
            "INSERT INTO sessions (uid, account_id, issued_at, user_agent, ip)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &uid.as_bytes().as_slice(),
                &session.account.0,
                &session.issued_at.as_millis(),
                &user_agent,
                &ip,
            ],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(
            ending
                .into_iter()
                .map(|old| (old, session.supersedes()))
                .collect(),
        ))
    }

    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // In the order of the account's claims (see the module docs).
        tx.execute(
            "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
            &[&account.0],
        )
        .await
        .map_err(backend)?;
        let only: Option<Vec<&[u8]>> =
            only.map(|uids| uids.iter().map(|uid| uid.as_bytes().as_slice()).collect());
        let rows = tx
            .query(
                "WITH ended AS (
                     UPDATE sessions SET ended_at = $2, end_reason = $4
                     WHERE account_id = $1 AND ended_at IS NULL
                       AND ($3::bytea[] IS NULL OR uid = ANY($3))
                     RETURNING uid)
                 SELECT uid, pg_notify('solotab_ended', json_build_object(
                     'uid', encode(uid, 'hex'), 'at', $2::text, 'reason', $4::text)::text)
                 FROM ended",
                &[&account.0, &at.as_millis(), &only, &why.as_str()],
            )
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        rows.iter().map(|row| uid_from_row(row, 0)).collect()
    }

    async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT uid, issued_at, last_seen, user_agent, ip FROM sessions
                 WHERE ended_at IS NULL AND account_id = $1",
                &[&account.0],
            )
            .await
            .map_err(backend)?;
        let tabs = rows
            .iter()
            .map(tab_details)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(tabs)
    }

    async fn tabs_page(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError> {
        let pattern = search.map(super::contains_pattern);
        let (offset, limit) = (offset as i64, limit as i64);
        let client = self.client().await?;
        let total: i64 = client
            .query_one(tabs_page_sql!(count, "$1::text"), &[&pattern])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(backend)?;
        let rows = client
            .query(
                tabs_page_sql!(page, "$1::text", "$2", "$3"),
                &[&pattern, &limit, &offset],
            )
            .await
            .map_err(backend)?;
        let mut tabs = Vec::with_capacity(rows.len());
        for row in &rows {
            let username: &str = row.try_get(6).map_err(backend)?;
            let account = AccountId(row.try_get(5).map_err(backend)?);
            tabs.push((account, Arc::from(username), tab_details(row)?));
        }
        Ok(TabsPage {
            tabs,
            total: total.max(0) as u64,
        })
    }

    async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE sessions SET last_seen = $1
                 WHERE uid = $2 AND ended_at IS NULL AND (last_seen IS NULL OR last_seen < $1)",
                &[&at.as_millis(), &uid.as_bytes().as_slice()],
            )
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError> {
        let changed = self
            .client()
            .await?
            .execute(
                "WITH ended AS (
                     UPDATE sessions SET ended_at = $1, end_reason = 'logged_out'
                     WHERE uid = $2 AND ended_at IS NULL
                     RETURNING uid)
                 SELECT pg_notify('solotab_ended', json_build_object(
                     'uid', encode(uid, 'hex'), 'at', $1::text, 'reason', 'logged_out')::text)
                 FROM ended",
                &[&at.as_millis(), &uid.as_bytes().as_slice()],
            )
            .await
            .map_err(backend)?;
        Ok(changed == 1)
    }

    async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < $1",
                &[&ended_before.as_millis()],
            )
            .await
            .map_err(backend)
    }

    async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(lookup_sql!("$1"))
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&statement, &[&uid.as_bytes().as_slice()])
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let (_, session) = session_row(&row)?;
        let username: &str = row.try_get(8).map_err(backend)?;
        Ok(Some(session.with_username(username)?))
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(super::COUNT_ACTIVE, &[])
            .await
            .map_err(backend)?;
        let count: i64 = row.try_get(0).map_err(backend)?;
        Ok(count.max(0) as u64)
    }

    async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(active_of_sql!("$1"))
            .await
            .map_err(backend)?;
        let rows = client
            .query(&statement, &[&account.0])
            .await
            .map_err(backend)?;
        rows.iter().map(|row| uid_from_row(row, 0)).collect()
    }

    async fn forget_oldest(
        &self,
        account: AccountId,
        keep: usize,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "DELETE FROM sessions
                 WHERE account_id = $1 AND ended_at IS NOT NULL AND uid NOT IN (
                     SELECT uid FROM sessions
                     WHERE account_id = $1 AND ended_at IS NOT NULL
                     ORDER BY ended_at DESC, uid ASC
                     LIMIT $2)
                 RETURNING uid",
                &[&account.0, &keep],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(|row| uid_from_row(row, 0)).collect()
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create(
        &self,
        username: &str,
        password_hash: &str,
        at: UnixMillis,
    ) -> Result<AccountId, CreateAccountError> {
        let key = app::rules::username_key(username);
        let inserted = self
            .client()
            .await?
            .query_one(
                "INSERT INTO accounts (username, username_key, password_hash, created_at)
                 VALUES ($1, $2, $3, $4)
                 RETURNING id",
                &[&username, &key, &password_hash, &at.as_millis()],
            )
            .await;
        match inserted {
            Ok(row) => Ok(AccountId(row.try_get(0).map_err(backend)?)),
            Err(e) if is_taken_username(&e) => Err(CreateAccountError::Taken),
            Err(e) => Err(backend(e).into()),
        }
    }

    async fn find(&self, username_key: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT id, username, password_hash, policy, max_tabs, admin, mode FROM accounts
                 WHERE username_key = $1",
                &[&username_key],
            )
            .await
            .map_err(backend)?;
        row.map(|row| {
            let policy: Option<&str> = row.try_get(3).map_err(backend)?;
            let max_tabs: Option<i32> = row.try_get(4).map_err(backend)?;
            Ok(AccountRecord {
                id: AccountId(row.try_get(0).map_err(backend)?),
                username: row.try_get(1).map_err(backend)?,
                password_hash: row.try_get(2).map_err(backend)?,
                policy: policy
                    .and_then(|policy| Policy::from_columns(policy, max_tabs.map(i64::from))),
                admin: row.try_get(5).map_err(backend)?,
                mode: row
                    .try_get::<_, Option<&str>>(6)
                    .map_err(backend)?
                    .and_then(Mode::parse),
            })
        })
        .transpose()
    }

    async fn set_policy(
        &self,
        account: AccountId,
        policy: Option<Policy>,
    ) -> Result<bool, StoreError> {
        let (policy, max_tabs) = policy.map(Policy::to_columns).unzip();
        let max_tabs = max_tabs
            .flatten()
            .and_then(|limit| i32::try_from(limit).ok());
        let sql = "UPDATE accounts SET policy = $1, max_tabs = $2 WHERE id = $3";
        self.update_account(sql, &[&policy, &max_tabs, &account.0])
            .await
    }

    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET password_hash = $1 WHERE id = $2";
        self.update_account(sql, &[&password_hash, &account.0])
            .await
    }

    async fn set_mode(&self, account: AccountId, mode: Option<Mode>) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET mode = $1 WHERE id = $2";
        self.update_account(sql, &[&mode.map(Mode::as_str), &account.0])
            .await
    }

    async fn set_admin(&self, account: AccountId, admin: bool) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET admin = $1 WHERE id = $2";
        self.update_account(sql, &[&admin, &account.0]).await
    }

    async fn record_event(
        &self,
        account: AccountId,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute(
            "INSERT INTO account_events (account_id, at, kind, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &account.0,
                &event.at.as_millis(),
                &event.kind.as_str(),
                &event.ip.map(|ip| ip.to_string()),
                &event.user_agent,
            ],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "DELETE FROM account_events WHERE account_id = $1 AND id NOT IN (
                 SELECT id FROM account_events WHERE account_id = $1
                 ORDER BY id DESC LIMIT $2)",
            &[&account.0, &(MAX_EVENTS_PER_ACCOUNT as i64)],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn events(&self, account: AccountId) -> Result<Vec<AccountEvent>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT at, kind, ip, user_agent FROM account_events
                 WHERE account_id = $1 ORDER BY id DESC",
                &[&account.0],
            )
            .await
            .map_err(backend)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.extend(columns::event(
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
                row.try_get(2).map_err(backend)?,
                row.try_get(3).map_err(backend)?,
            ));
        }
        Ok(events)
    }
}

/// Only the username's own unique key means "taken"; any other violation is a fault.
fn is_taken_username(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|e| {
        *e.code() == SqlState::UNIQUE_VIOLATION
            && e.constraint() == Some("accounts_username_key_key")
    })
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn add_device(
        &self,
        device: &NewDevice,
        replacing: Option<DeviceHash>,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let account = device.account.0;
        // Logins of one account adding devices at once must leave at most `keep`.
        tx.execute(
            "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
            &[&account],
        )
        .await
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO devices (token_hash, account_id, created_at, expires_at,
                                  user_agent, ip, signed_in_at)
             VALUES ($1, $2, $3, $4, $5, $6, $3)",
            &[
                &device.hash.0.as_slice(),
                &account,
                &device.created_at.as_millis(),
                &device.expires_at.as_millis(),
                &device.origin.user_agent.as_deref(),
                &device.origin.ip.to_string(),
            ],
        )
        .await
        .map_err(backend)?;
        if let Some(old) = replacing {
            tx.execute(
                "UPDATE device_tabs SET token_hash = $1 WHERE token_hash = $2
                 AND EXISTS (SELECT 1 FROM devices WHERE token_hash = $2 AND account_id = $3)",
                &[&device.hash.0.as_slice(), &old.0.as_slice(), &account],
            )
            .await
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM devices WHERE token_hash = $1",
                &[&old.0.as_slice()],
            )
            .await
            .map_err(backend)?;
        }
        tx.execute(
            concat!(
                "DELETE FROM devices WHERE account_id = $1 AND token_hash <> $3 AND token_hash NOT IN (",
                "SELECT token_hash FROM devices WHERE account_id = $1 AND token_hash <> $3 ",
                newest_devices_first!(),
                " LIMIT $2)"
            ),
            &[
                &account,
                &i64::try_from(keep.max(1) - 1).unwrap_or(i64::MAX),
                &device.hash.0.as_slice(),
            ],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn link_tab(
        &self,
        device: DeviceHash,
        tab: UidDigest,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The update locks the device's row: it cannot be removed under the links.
        let found = tx
            .execute(
                "UPDATE devices SET signed_in_at = $2 WHERE token_hash = $1",
                &[&device.0.as_slice(), &at.as_millis()],
            )
            .await
            .map_err(backend)?;
        if found == 1 {
            tx.execute(
                "INSERT INTO device_tabs (token_hash, tab, linked_at) VALUES ($1, $2, $3)
                 ON CONFLICT (token_hash, tab) DO UPDATE SET linked_at = EXCLUDED.linked_at",
                &[
                    &device.0.as_slice(),
                    &tab.as_bytes().as_slice(),
                    &at.as_millis(),
                ],
            )
            .await
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM device_tabs WHERE token_hash = $1 AND tab NOT IN (
                     SELECT tab FROM device_tabs WHERE token_hash = $1
                     ORDER BY linked_at DESC, tab DESC LIMIT $2)",
                &[&device.0.as_slice(), &(MAX_TABS_PER_DEVICE as i64)],
            )
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn find_device(
        &self,
        device: DeviceHash,
        now: UnixMillis,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT d.account_id, a.username, d.expires_at
                 FROM devices d JOIN accounts a ON a.id = d.account_id
                 WHERE d.token_hash = $1 AND d.expires_at > $2",
                &[&device.0.as_slice(), &now.as_millis()],
            )
            .await
            .map_err(backend)?;
        row.map(|row| {
            Ok(DeviceRecord {
                account: AccountId(row.try_get(0).map_err(backend)?),
                username: row.try_get(1).map_err(backend)?,
                expires_at: UnixMillis::from_millis(row.try_get(2).map_err(backend)?),
            })
        })
        .transpose()
    }

    async fn devices_of(
        &self,
        account: AccountId,
        now: UnixMillis,
    ) -> Result<Vec<DeviceDetails>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT token_hash, created_at, signed_in_at, expires_at, user_agent, ip ",
                    "FROM devices WHERE account_id = $1 AND expires_at > $2 ",
                    newest_devices_first!()
                ),
                &[&account.0, &now.as_millis()],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                columns::device(
                    row.try_get(0).map_err(backend)?,
                    row.try_get(1).map_err(backend)?,
                    row.try_get(2).map_err(backend)?,
                    row.try_get(3).map_err(backend)?,
                    row.try_get(4).map_err(backend)?,
                    row.try_get(5).map_err(backend)?,
                )
            })
            .collect()
    }

    async fn remove_device(&self, device: DeviceHash) -> Result<bool, StoreError> {
        let removed = self
            .client()
            .await?
            .execute(
                "DELETE FROM devices WHERE token_hash = $1",
                &[&device.0.as_slice()],
            )
            .await
            .map_err(backend)?;
        Ok(removed == 1)
    }

    async fn remove_device_of(
        &self,
        account: AccountId,
        device: DeviceHash,
    ) -> Result<Option<Vec<UidDigest>>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Deleting first locks the row and reads its links in the same step: the cascade
        // removes them only when the statement ends.
        let removed = tx
            .query(
                "WITH gone AS (DELETE FROM devices WHERE token_hash = $1 AND account_id = $2
                               RETURNING token_hash)
                 SELECT t.tab FROM gone LEFT JOIN device_tabs t ON t.token_hash = gone.token_hash",
                &[&device.0.as_slice(), &account.0],
            )
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        if removed.is_empty() {
            return Ok(None);
        }
        let mut tabs = Vec::new();
        for row in &removed {
            if let Some(tab) = row.try_get::<_, Option<&[u8]>>(0).map_err(backend)? {
                tabs.push(columns::uid(tab)?);
            }
        }
        Ok(Some(tabs))
    }

    async fn prune_devices(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM devices WHERE expires_at <= $1",
                &[&now.as_millis()],
            )
            .await
            .map_err(backend)
    }
}

/// A store in a schema of its own, in the PostgreSQL that `SOLOTAB_TEST_POSTGRES_URL` names
/// (default: this project's machines' `postgres://postgres@127.0.0.1:5432/test`), so that
/// tests and test runs never see each other's rows. Schemas of runs over an hour old are
/// dropped on the way.
#[cfg(test)]
pub(crate) async fn test_store() -> PostgresStore {
    PostgresStore::connect_with(test_schema().await)
        .await
        .unwrap()
}

/// Connection settings for a fresh, empty schema of its own (see [`test_store`]).
#[cfg(test)]
async fn test_schema() -> tokio_postgres::Config {
    test_database_url()
        .await
        .parse()
        .expect("the test URL parses")
}

/// Test support: the URL of a fresh, empty schema of its own on the test server
/// (`SOLOTAB_TEST_POSTGRES_URL`, default the local `test` database), named
/// `solotab_test_<unix time>_<random>`. Schemas of runs over an hour old are dropped.
#[cfg(any(test, feature = "test-support"))]
pub async fn test_database_url() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let url = std::env::var("SOLOTAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let config: tokio_postgres::Config = url.parse().expect("SOLOTAB_TEST_POSTGRES_URL parses");
    let (admin, connection) = config.connect(NoTls).await.unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL tests need a server at {url} ({e}); set SOLOTAB_TEST_POSTGRES_URL, \
             or run ./dev.sh test, which starts one"
        )
    });
    tokio::spawn(connection);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale = admin
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'solotab_test_%'",
            &[],
        )
        .await
        .unwrap();
    for row in stale {
        let name: String = row.get(0);
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if created + 3600 < now {
            let _ = admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
    let schema = format!("solotab_test_{now}_{:016x}", rand_suffix());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}options=-c%20search_path%3D{schema}")
}

#[cfg(any(test, feature = "test-support"))]
fn rand_suffix() -> u64 {
    let uid = crate::uid::Uid::generate().digest();
    u64::from_le_bytes(uid.as_bytes()[..8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Ending, LoginOrigin};
    use crate::uid::Uid;

    #[tokio::test]
    async fn a_database_of_the_first_version_migrates_and_keeps_its_rows() {
        let config = test_schema().await;
        // A database as the first release left it: migration 1 only, with an account and
        // an active session.
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(MIGRATIONS[0]).await.unwrap();
        client
            .batch_execute(
                "CREATE TABLE solotab_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
                 INSERT INTO solotab_migrations VALUES (1, 0);
                 INSERT INTO accounts (username, username_key, password_hash, created_at)
                     VALUES ('Ann', 'ann', 'h', 1);",
            )
            .await
            .unwrap();
        let uid = Uid::generate().digest();
        client
            .execute(
                "INSERT INTO sessions (uid, account_id, issued_at, ip) VALUES ($1, 1, 5, '192.0.2.1')",
                &[&uid.as_bytes().as_slice()],
            )
            .await
            .unwrap();
        let store = PostgresStore::connect_with(config).await.unwrap();
        let ann = store.find("ann").await.unwrap().unwrap();
        assert_eq!((ann.username.as_str(), ann.policy), ("Ann", None));
        assert_eq!(store.active_of(ann.id).await.unwrap(), [uid]);
        assert!(
            store
                .set_policy(ann.id, Some(Policy::DenyNew))
                .await
                .unwrap()
        );
        let versions: i64 = store
            .client()
            .await
            .unwrap()
            .query_one("SELECT max(version) FROM solotab_migrations", &[])
            .await
            .unwrap()
            .get::<_, i32>(0)
            .into();
        assert_eq!(versions, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn migrating_again_changes_nothing_and_a_newer_schema_is_refused() {
        let config = test_schema().await;
        let store = PostgresStore::connect_with(config.clone()).await.unwrap();
        let id = store
            .create("ann", "h", UnixMillis::from_millis(1))
            .await
            .unwrap();
        // A second instance starting on the same database: same schema, rows intact.
        let again = PostgresStore::connect_with(config.clone()).await.unwrap();
        assert_eq!(again.find("ann").await.unwrap().unwrap().id, id);
        let client = again.client().await.unwrap();
        let versions: i64 = client
            .query_one("SELECT count(*) FROM solotab_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(versions, MIGRATIONS.len() as i64);
        // A database a newer server has migrated: refused, with both versions named.
        client
            .execute("INSERT INTO solotab_migrations VALUES (99, 0)", &[])
            .await
            .unwrap();
        let err = PostgresStore::connect_with(config).await.unwrap_err();
        assert!(
            matches!(err, ConnectError::TooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    fn login(account: AccountId, at: i64) -> ActiveSession {
        ActiveSession {
            account,
            username: "ann".into(),
            issued_at: UnixMillis::from_millis(at),
            origin: LoginOrigin {
                user_agent: None,
                ip: "192.0.2.1".parse().unwrap(),
            },
        }
    }

    /// Waits for `want`, skipping other notices (other tests share the database, and so the
    /// channel).
    async fn announced(rx: &mut tokio::sync::mpsc::Receiver<FanOut>, want: FanOut) {
        let want = match want {
            // The notices of both stores say when and why.
            FanOut::Ended(uid, None) => panic!("say what {uid:?}'s notice must carry"),
            want => want,
        };
        let wait = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(got) = rx.recv().await {
                if got == want {
                    return;
                }
            }
            panic!("the fan-out stopped");
        });
        wait.await
            .unwrap_or_else(|_| panic!("no {want:?} within 10 s"));
    }

    #[tokio::test]
    async fn ends_committed_by_one_instance_are_announced_to_another() {
        let config = test_schema().await;
        let a = PostgresStore::connect_with(config.clone()).await.unwrap();
        let b = PostgresStore::connect_with(config).await.unwrap();
        let mut fanout = b.listen();
        announced(&mut fanout, FanOut::Subscribed).await;
        let account = a
            .create("ann", "h", UnixMillis::from_millis(1))
            .await
            .unwrap();
        let session = |at| login(account, at);
        let (first, second) = (Uid::generate().digest(), Uid::generate().digest());
        a.claim(first, &session(10)).await.unwrap();
        a.claim(second, &session(20)).await.unwrap();
        let superseded = Ending {
            at: UnixMillis::from_millis(20),
            reason: session(20).supersedes().reason,
        };
        announced(&mut fanout, FanOut::Ended(first, Some(superseded))).await;
        a.release(second, UnixMillis::from_millis(30))
            .await
            .unwrap();
        let logged_out = Ending {
            at: UnixMillis::from_millis(30),
            reason: crate::store::EndReason::LoggedOut,
        };
        announced(&mut fanout, FanOut::Ended(second, Some(logged_out))).await;
    }

    #[tokio::test]
    async fn the_listener_reconnects_and_says_so_after_losing_its_connection() {
        let mut config = test_schema().await;
        let name = format!("solotab-fanout-test-{:016x}", rand_suffix());
        config.application_name(&name);
        let store = PostgresStore::connect_with(config).await.unwrap();
        let mut fanout = store.listen();
        announced(&mut fanout, FanOut::Subscribed).await;
        // What a database restart or a network cut does to the listening connection.
        let killed = store
            .client()
            .await
            .unwrap()
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = $1 AND query LIKE 'LISTEN%'",
                &[&name],
            )
            .await
            .unwrap();
        assert_eq!(killed.len(), 1, "the listening connection was found");
        announced(&mut fanout, FanOut::Subscribed).await;
        // And it hears ends again.
        let account = store
            .create("ann", "h", UnixMillis::from_millis(1))
            .await
            .unwrap();
        let session = |at| login(account, at);
        let first = Uid::generate().digest();
        store.claim(first, &session(10)).await.unwrap();
        store
            .claim(Uid::generate().digest(), &session(20))
            .await
            .unwrap();
        let superseded = Ending {
            at: UnixMillis::from_millis(20),
            reason: session(20).supersedes().reason,
        };
        announced(&mut fanout, FanOut::Ended(first, Some(superseded))).await;
    }

    #[tokio::test]
    async fn an_unreachable_or_malformed_url_fails_with_one_clear_line_and_no_password() {
        // Port 1 on loopback: nothing listens there.
        let err = PostgresStore::connect("postgres://ann:s3cret@127.0.0.1:1/solotab")
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConnectError::Unreachable { .. }), "{message}");
        assert!(message.contains("127.0.0.1:1/solotab"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        let err = PostgresStore::connect("postgres://127.0.0.1:notaport/x")
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::BadUrl(_)), "{err}");
    }
}
