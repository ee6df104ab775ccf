//! The embedded default: one SQLite file, created and migrated on first start.
//!
//! One process owns a database file. The registry answers `check` from memory, so two
//! servers on one file would each trust their own copy and disagree; [`SqliteStore::open`]
//! therefore takes an exclusive lock (on `<db>.lock`, held until the process exits, released
//! by the OS even after `kill -9`) and refuses to start when another process holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{
    AccountEvent, AccountId, AccountRecord, AccountStore, ActiveSession, CreateAccountError,
    DeviceDetails, DeviceHash, DeviceRecord, DeviceStore, EndedSession, LoginOrigin,
    MAX_EVENTS_PER_ACCOUNT, MAX_TABS_PER_DEVICE, Mode, NewDevice, Policy, Replacing, SessionStore,
    Snapshot, StoreError, Stored, TabDetails, TabEnd, TabsPage, columns, oldest_beyond,
};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// Schema migrations, in order, embedded in the binary. `PRAGMA user_version` records how
/// many have been applied. Never edit one that has shipped; append a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_accounts_and_sessions.sql"),
    include_str!("../../migrations/0002_devices.sql"),
    include_str!("../../migrations/0003_one_active_session_per_account.sql"),
    include_str!("../../migrations/0004_sessions_keyed_by_digest.sql"),
    include_str!("../../migrations/0005_account_policy.sql"),
    include_str!("../../migrations/0006_max_tabs_last_seen_and_history.sql"),
    include_str!("../../migrations/0007_several_devices.sql"),
    include_str!("../../migrations/0008_expired_sessions.sql"),
];

#[derive(Debug, Clone)]
pub struct SqliteStore {
    // rusqlite is blocking: every call runs on the blocking pool. A std Mutex is right here
    // because it is only ever taken inside spawn_blocking, never across an await.
    conn: Arc<Mutex<Connection>>,
    // Held for the store's lifetime: dropping it releases the one-process-per-file lock.
    _lock: Option<Arc<File>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "another Solotab server is already using {db} (it holds the lock on {lock}); \
         stop that server or pass a different --db / SOLOTAB_DB"
    )]
    Locked { db: PathBuf, lock: PathBuf },
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open SQLite database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} has schema version {found}, but this server knows only up to {known}; \
         run a newer Solotab server on it"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`, holding it exclusively.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let lock = lock_path(path);
        let lock_file = private_file()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| OpenError::Io {
                path: lock.clone(),
                source,
            })?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(OpenError::Locked {
                    db: path.to_owned(),
                    lock,
                });
            }
            Err(TryLockError::Error(source)) => return Err(OpenError::Io { path: lock, source }),
        }
        let sqlite_err = |source| OpenError::Sqlite {
            path: path.to_owned(),
            source,
        };
        // A new database is created readable by its owner alone; SQLite gives the -wal and
        // -shm files the database file's permissions.
        match private_file().write(true).create_new(true).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(OpenError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let mut conn = Connection::open(path).map_err(sqlite_err)?;
        // WAL + synchronous=FULL: a commit is on disk before the call returns, so a 200 that
        // follows it survives kill -9 and power loss alike.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(sqlite_err)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            _lock: Some(Arc::new(lock_file)),
        })
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Self, OpenError> {
        let path = PathBuf::from(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| OpenError::Sqlite {
            path: path.clone(),
            source,
        })?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(|source| OpenError::Sqlite {
                path: path.clone(),
                source,
            })?;
        migrate(&mut conn, &path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            _lock: None,
        })
    }

    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside `work` rolls back its transaction (rusqlite's Drop), so the
            // connection is still usable after poisoning.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|_| StoreError::Task)?
    }

    /// One `UPDATE accounts ... WHERE id = ?N`, with `values` bound first and the account's
    /// id last; whether it changed the account (false: there is no such account).
    async fn update_account(
        &self,
        sql: &'static str,
        mut values: Vec<rusqlite::types::Value>,
        account: AccountId,
    ) -> Result<bool, StoreError> {
        values.push(account.0.into());
        self.run(move |conn| {
            conn.execute(sql, rusqlite::params_from_iter(values))
                .map(|changed| changed == 1)
                .map_err(backend)
        })
        .await
    }
}

/// Options for a file only its owner may read or write (0600 on Unix).
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// The lock file beside the database: `solotab.db` -> `solotab.db.lock`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What migrations may call besides SQL: sha256(), to turn stored UIDs into digests.
fn with_migration_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "sha256",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(Sha256::digest(ctx.get::<Vec<u8>>(0)?).to_vec()),
    )
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite_err = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite_err)?;
    if applied > MIGRATIONS.len() as i64 {
        return Err(OpenError::TooNew {
            path: path.to_owned(),
            found: applied,
            known: MIGRATIONS.len(),
        });
    }
    if applied == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    with_migration_functions(conn).map_err(sqlite_err)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Exclusive)
            .map_err(sqlite_err)?;
        tx.execute_batch(sql).map_err(sqlite_err)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(sqlite_err)?;
        tx.commit().map_err(sqlite_err)?;
    }
    // Old page images (raw UIDs, before 0004) must not linger in the write-ahead log.
    if path != Path::new(":memory:") {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(sqlite_err)?;
    }
    Ok(())
}

/// Only the username's own UNIQUE key means "taken"; any other constraint is a fault.
fn is_taken_username(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, Some(message))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.contains("accounts.username_key")
    )
}

/// The account's active sessions and when each was issued, read on `conn` (or inside a
/// transaction on it).
fn active_of(
    conn: &Connection,
    account: AccountId,
) -> Result<Vec<(UnixMillis, UidDigest)>, StoreError> {
    let mut stmt = conn.prepare_cached(active_of_sql!("?1")).map_err(backend)?;
    let rows = stmt
        .query_map([account.0], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(backend)?;
    rows.map(|row| {
        let (uid, issued_at) = row.map_err(backend)?;
        Ok((UnixMillis::from_millis(issued_at), columns::uid(&uid)?))
    })
    .collect()
}

/// A tab from a row of `uid, issued_at, last_seen, user_agent, ip`.
fn tab_details(row: &rusqlite::Row<'_>) -> Result<TabDetails, StoreError> {
    let uid: Vec<u8> = row.get(0).map_err(backend)?;
    let issued_at = UnixMillis::from_millis(row.get(1).map_err(backend)?);
    let last_seen: Option<i64> = row.get(2).map_err(backend)?;
    Ok(TabDetails {
        uid: columns::uid(&uid)?,
        issued_at,
        last_seen: last_seen.map_or(issued_at, UnixMillis::from_millis),
        origin: LoginOrigin {
            user_agent: text(row, 3)?.map(Arc::from),
            ip: columns::ip(text(row, 4)?.unwrap_or_default())?,
        },
    })
}

fn backend(err: rusqlite::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A uid digest column read in place.
fn uid_at(row: &rusqlite::Row<'_>, column: usize) -> Result<UidDigest, StoreError> {
    columns::uid(
        row.get_ref(column)
            .and_then(|v| Ok(v.as_blob()?))
            .map_err(backend)?,
    )
}

/// A text column read in place (no copy).
fn text<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> Result<Option<&'r str>, StoreError> {
    row.get_ref(column)
        .and_then(|v| Ok(v.as_str_or_null()?))
        .map_err(backend)
}

/// The uid (column 0) and the [`columns::SnapshotRow`] after it, read in place.
fn snapshot_row<'r>(
    row: &'r rusqlite::Row<'_>,
) -> Result<(UidDigest, columns::SnapshotRow<'r>), StoreError> {
    let session = columns::SnapshotRow {
        account: row.get(1).map_err(backend)?,
        issued_at: row.get(2).map_err(backend)?,
        ended_at: row.get(3).map_err(backend)?,
        end_reason: text(row, 4)?,
        last_seen: row.get(5).map_err(backend)?,
    };
    Ok((uid_at(row, 0)?, session))
}

/// The uid (column 0) and the [`columns::SessionRow`] after it, read in place.
fn session_row<'r>(
    row: &'r rusqlite::Row<'_>,
) -> Result<(UidDigest, columns::SessionRow<'r>), StoreError> {
    let uid = uid_at(row, 0)?;
    let session = columns::SessionRow {
        account: row.get(1).map_err(backend)?,
        issued_at: row.get(2).map_err(backend)?,
        ended_at: row.get(3).map_err(backend)?,
        end_reason: text(row, 4)?,
        by_user_agent: text(row, 5)?,
        by_ip: text(row, 6)?,
        last_seen: row.get(7).map_err(backend)?,
    };
    Ok((uid, session))
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, ended_since: UnixMillis) -> Result<Snapshot, StoreError> {
        self.run(move |conn| {
            let mut snapshot = Snapshot::default();
            // Usernames in a pass of their own: joining them row by row made loading a
            // million sessions several times slower (a B-tree lookup per row).
            let mut stmt = conn
                .prepare("SELECT id, username FROM accounts")
                .map_err(backend)?;
            let mut rows = stmt.query([]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let name = text(row, 1)?.unwrap_or_default();
                let account = AccountId(row.get(0).map_err(backend)?);
                snapshot.usernames.push((account, Arc::from(name)));
            }
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {} FROM sessions WHERE ended_at IS NULL OR ended_at >= ?1",
                    columns::SNAPSHOT_COLUMNS
                ))
                .map_err(backend)?;
            let mut rows = stmt.query([ended_since.as_millis()]).map_err(backend)?;
            // Text and blobs are read in place: a million rows are several million
            // allocations fewer.
            while let Some(row) = rows.next().map_err(backend)? {
                let (uid, session) = snapshot_row(row)?;
                session.add_to(uid, &mut snapshot)?;
            }
            Ok(snapshot)
        })
        .await
    }

    async fn claim_replacing(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
        tabs: usize,
        replacing: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
        let (session, replacing) = (session.clone(), replacing.clone());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let active = active_of(&tx, session.account)?;
            let uids: Vec<UidDigest> = active.iter().map(|(_, uid)| *uid).collect();
            if !replacing.allows(&uids) {
                return Ok(None);
            }
            let ip = session.origin.ip.to_string();
            let ending = oldest_beyond(active, tabs);
            {
                let mut end = tx
                    .prepare_cached(
                        "UPDATE sessions
                         SET ended_at = ?1, end_reason = 'superseded',
                             ended_by_user_agent = ?2, ended_by_ip = ?3
                         WHERE uid = ?4 AND ended_at IS NULL",
                    )
                    .map_err(backend)?;
                for old in &ending {
                    end.execute(params![
                        session.issued_at.as_millis(),
                        session.origin.user_agent,
                        ip,
                        old.as_bytes().as_slice()
                    ])
                    .map_err(backend)?;
                }
            }
            tx.execute(
                "INSERT INTO sessions (uid, account_id, issued_at, user_agent, ip)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    uid.as_bytes().as_slice(),
                    session.account.0,
                    session.issued_at.as_millis(),
                    session.origin.user_agent,
                    ip
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Some(
                ending
                    .into_iter()
                    .map(|old| (old, session.supersedes()))
                    .collect(),
            ))
        })
        .await
    }

    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let only: Option<Vec<UidDigest>> = only.map(<[UidDigest]>::to_vec);
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let ending: Vec<UidDigest> = active_of(&tx, account)?
                .into_iter()
                .map(|(_, uid)| uid)
                .filter(|uid| only.as_ref().is_none_or(|only| only.contains(uid)))
                .collect();
            {
                let mut end = tx
                    .prepare_cached(
                        "UPDATE sessions SET ended_at = ?1, end_reason = ?3
                         WHERE uid = ?2 AND ended_at IS NULL",
                    )
                    .map_err(backend)?;
                for uid in &ending {
                    end.execute(params![
                        at.as_millis(),
                        uid.as_bytes().as_slice(),
                        why.as_str()
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
            Ok(ending)
        })
        .await
    }

    async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT uid, issued_at, last_seen, user_agent, ip FROM sessions
                     WHERE ended_at IS NULL AND account_id = ?1",
                )
                .map_err(backend)?;
            let mut rows = stmt.query([account.0]).map_err(backend)?;
            let mut tabs = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                tabs.push(tab_details(row)?);
            }
            Ok(tabs)
        })
        .await
    }

    async fn tabs_page(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError> {
        let pattern = search.map(super::contains_pattern);
        let (offset, limit) = (offset as i64, limit as i64);
        self.run(move |conn| {
            let total: i64 = conn
                .query_row(tabs_page_sql!(count, "?1"), [&pattern], |row| row.get(0))
                .map_err(backend)?;
            let mut stmt = conn
                .prepare_cached(tabs_page_sql!(page, "?1", "?2", "?3"))
                .map_err(backend)?;
            let mut rows = stmt
                .query(params![pattern, limit, offset])
                .map_err(backend)?;
            let mut tabs = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let account = AccountId(row.get(5).map_err(backend)?);
                let username: Arc<str> = Arc::from(text(row, 6)?.unwrap_or_default());
                tabs.push((account, username, tab_details(row)?));
            }
            Ok(TabsPage {
                tabs,
                total: total.max(0) as u64,
            })
        })
        .await
    }

    async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.prepare_cached(
                "UPDATE sessions SET last_seen = ?1
                 WHERE uid = ?2 AND ended_at IS NULL AND (last_seen IS NULL OR last_seen < ?1)",
            )
            .and_then(|mut stmt| stmt.execute(params![at.as_millis(), uid.as_bytes().as_slice()]))
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE sessions SET ended_at = ?1, end_reason = 'logged_out'
                     WHERE uid = ?2 AND ended_at IS NULL",
                    params![at.as_millis(), uid.as_bytes().as_slice()],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        self.run(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?1",
                    [ended_before.as_millis()],
                )
                .map_err(backend)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(lookup_sql!("?1")).map_err(backend)?;
            let mut rows = stmt.query([uid.as_bytes().as_slice()]).map_err(backend)?;
            let Some(row) = rows.next().map_err(backend)? else {
                return Ok(None);
            };
            let (_, session) = session_row(row)?;
            let username = text(row, 8)?.unwrap_or_default();
            Ok(Some(session.with_username(username)?))
        })
        .await
    }

    async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError> {
        let active = self.run(move |conn| active_of(conn, account)).await?;
        Ok(active.into_iter().map(|(_, uid)| uid).collect())
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        self.run(|conn| {
            conn.query_row(super::COUNT_ACTIVE, [], |row| row.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(backend)
        })
        .await
    }

    async fn forget_oldest(
        &self,
        account: AccountId,
        keep: usize,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "DELETE FROM sessions
                     WHERE account_id = ?1 AND ended_at IS NOT NULL AND uid NOT IN (
                         SELECT uid FROM sessions
                         WHERE account_id = ?1 AND ended_at IS NOT NULL
                         ORDER BY ended_at DESC, uid ASC
                         LIMIT ?2)
                     RETURNING uid",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![account.0, keep], |row| row.get::<_, Vec<u8>>(0))
                .map_err(backend)?;
            rows.map(|bytes| columns::uid(&bytes.map_err(backend)?))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create(
        &self,
        username: &str,
        password_hash: &str,
        at: UnixMillis,
    ) -> Result<AccountId, CreateAccountError> {
        let (username, password_hash) = (username.to_owned(), password_hash.to_owned());
        let key = app::rules::username_key(&username);
        let inserted = self
            .run(move |conn| {
                let result = conn.execute(
                    "INSERT INTO accounts (username, username_key, password_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![username, key, password_hash, at.as_millis()],
                );
                match result {
                    Ok(_) => Ok(Some(AccountId(conn.last_insert_rowid()))),
                    Err(e) if is_taken_username(&e) => Ok(None),
                    Err(e) => Err(backend(e)),
                }
            })
            .await?;
        inserted.ok_or(CreateAccountError::Taken)
    }

    async fn find(&self, username_key: &str) -> Result<Option<AccountRecord>, StoreError> {
        let key = username_key.to_owned();
        self.run(move |conn| {
            conn.query_row(
                "SELECT id, username, password_hash, policy, max_tabs, admin, mode FROM accounts
                 WHERE username_key = ?1",
                [key],
                |row| {
                    let (policy, max_tabs): (Option<String>, Option<i64>) =
                        (row.get(3)?, row.get(4)?);
                    Ok(AccountRecord {
                        id: AccountId(row.get(0)?),
                        username: row.get(1)?,
                        password_hash: row.get(2)?,
                        policy: policy.and_then(|policy| Policy::from_columns(&policy, max_tabs)),
                        admin: row.get(5)?,
                        mode: row
                            .get::<_, Option<String>>(6)?
                            .as_deref()
                            .and_then(Mode::parse),
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn set_policy(
        &self,
        account: AccountId,
        policy: Option<Policy>,
    ) -> Result<bool, StoreError> {
        let (policy_text, max_tabs) = policy.map(Policy::to_columns).unzip();
        let values = vec![
            policy_text.map(str::to_owned).into(),
            max_tabs.flatten().into(),
        ];
        let sql = "UPDATE accounts SET policy = ?1, max_tabs = ?2 WHERE id = ?3";
        self.update_account(sql, values, account).await
    }

    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let values = vec![password_hash.to_owned().into()];
        let sql = "UPDATE accounts SET password_hash = ?1 WHERE id = ?2";
        self.update_account(sql, values, account).await
    }

    async fn set_mode(&self, account: AccountId, mode: Option<Mode>) -> Result<bool, StoreError> {
        let values = vec![mode.map(|mode| mode.as_str().to_owned()).into()];
        let sql = "UPDATE accounts SET mode = ?1 WHERE id = ?2";
        self.update_account(sql, values, account).await
    }

    async fn set_admin(&self, account: AccountId, admin: bool) -> Result<bool, StoreError> {
        let sql = "UPDATE accounts SET admin = ?1 WHERE id = ?2";
        self.update_account(sql, vec![admin.into()], account).await
    }

    async fn record_event(
        &self,
        account: AccountId,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        let event = event.clone();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO account_events (account_id, at, kind, ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    account.0,
                    event.at.as_millis(),
                    event.kind.as_str(),
                    event.ip.map(|ip| ip.to_string()),
                    event.user_agent
                ],
            )
            .map_err(backend)?;
            tx.execute(
                "DELETE FROM account_events WHERE account_id = ?1 AND id NOT IN (
                     SELECT id FROM account_events WHERE account_id = ?1
                     ORDER BY id DESC LIMIT ?2)",
                params![account.0, MAX_EVENTS_PER_ACCOUNT as i64],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn events(&self, account: AccountId) -> Result<Vec<AccountEvent>, StoreError> {
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT at, kind, ip, user_agent FROM account_events
                     WHERE account_id = ?1 ORDER BY id DESC",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([account.0], |row| {
                    Ok(columns::event(
                        row.get(0)?,
                        &row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?.as_deref(),
                        row.get(3)?,
                    ))
                })
                .map_err(backend)?;
            let mut events = Vec::new();
            for row in rows {
                events.extend(row.map_err(backend)?);
            }
            Ok(events)
        })
        .await
    }
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn add_device(
        &self,
        device: &NewDevice,
        replacing: Option<DeviceHash>,
        keep: usize,
    ) -> Result<(), StoreError> {
        let device = device.clone();
        let keep = keep.max(1);
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let account = device.account.0;
            tx.execute(
                "INSERT INTO devices (token_hash, account_id, created_at, expires_at,
                                      user_agent, ip, signed_in_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?3)",
                params![
                    device.hash.0.as_slice(),
                    account,
                    device.created_at.as_millis(),
                    device.expires_at.as_millis(),
                    device.origin.user_agent.as_deref(),
                    device.origin.ip.to_string(),
                ],
            )
            .map_err(backend)?;
            if let Some(old) = replacing {
                tx.execute(
                    "UPDATE device_tabs SET token_hash = ?1 WHERE token_hash = ?2
                     AND EXISTS (SELECT 1 FROM devices WHERE token_hash = ?2 AND account_id = ?3)",
                    params![device.hash.0.as_slice(), old.0.as_slice(), account],
                )
                .map_err(backend)?;
                tx.execute(
                    "DELETE FROM devices WHERE token_hash = ?1",
                    [old.0.as_slice()],
                )
                .map_err(backend)?;
            }
            tx.execute(
                concat!(
                    "DELETE FROM devices WHERE account_id = ?1 AND token_hash <> ?3 AND token_hash NOT IN (",
                    "SELECT token_hash FROM devices WHERE account_id = ?1 AND token_hash <> ?3 ",
                    newest_devices_first!(),
                    " LIMIT ?2)"
                ),
                params![
                    account,
                    i64::try_from(keep - 1).unwrap_or(i64::MAX),
                    device.hash.0.as_slice()
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn link_tab(
        &self,
        device: DeviceHash,
        tab: UidDigest,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let found = tx
                .execute(
                    "UPDATE devices SET signed_in_at = ?2 WHERE token_hash = ?1",
                    params![device.0.as_slice(), at.as_millis()],
                )
                .map_err(backend)?;
            if found == 1 {
                tx.execute(
                    "INSERT OR REPLACE INTO device_tabs (token_hash, tab, linked_at)
                     VALUES (?1, ?2, ?3)",
                    params![
                        device.0.as_slice(),
                        tab.as_bytes().as_slice(),
                        at.as_millis()
                    ],
                )
                .map_err(backend)?;
                tx.execute(
                    "DELETE FROM device_tabs WHERE token_hash = ?1 AND tab NOT IN (
                         SELECT tab FROM device_tabs WHERE token_hash = ?1
                         ORDER BY linked_at DESC, tab DESC LIMIT ?2)",
                    params![device.0.as_slice(), MAX_TABS_PER_DEVICE as i64],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn find_device(
        &self,
        device: DeviceHash,
        now: UnixMillis,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.run(move |conn| {
            conn.query_row(
                "SELECT d.account_id, a.username, d.expires_at
                 FROM devices d JOIN accounts a ON a.id = d.account_id
                 WHERE d.token_hash = ?1 AND d.expires_at > ?2",
                params![device.0.as_slice(), now.as_millis()],
                |row| {
                    Ok(DeviceRecord {
                        account: AccountId(row.get(0)?),
                        username: row.get(1)?,
                        expires_at: UnixMillis::from_millis(row.get(2)?),
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn devices_of(
        &self,
        account: AccountId,
        now: UnixMillis,
    ) -> Result<Vec<DeviceDetails>, StoreError> {
        self.run(move |conn| {
            let mut statement = conn
                .prepare_cached(concat!(
                    "SELECT token_hash, created_at, signed_in_at, expires_at, user_agent, ip ",
                    "FROM devices WHERE account_id = ?1 AND expires_at > ?2 ",
                    newest_devices_first!()
                ))
                .map_err(backend)?;
            let rows = statement
                .query_map(params![account.0, now.as_millis()], |row| {
                    let hash: Vec<u8> = row.get(0)?;
                    let ip: Option<String> = row.get(5)?;
                    let created_at: i64 = row.get(1)?;
                    let signed_in_at: Option<i64> = row.get(2)?;
                    Ok((hash, created_at, signed_in_at, row.get(3)?, row.get(4)?, ip))
                })
                .map_err(backend)?;
            let mut devices = Vec::new();
            for row in rows {
                let (hash, created_at, signed_in_at, expires_at, user_agent, ip) =
                    row.map_err(backend)?;
                devices.push(columns::device(
                    &hash,
                    created_at,
                    signed_in_at,
                    expires_at,
                    user_agent,
                    ip.as_deref(),
                )?);
            }
            Ok(devices)
        })
        .await
    }

    async fn remove_device(&self, device: DeviceHash) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM devices WHERE token_hash = ?1",
                    [device.0.as_slice()],
                )
                .map_err(backend)?;
            Ok(removed == 1)
        })
        .await
    }

    async fn remove_device_of(
        &self,
        account: AccountId,
        device: DeviceHash,
    ) -> Result<Option<Vec<UidDigest>>, StoreError> {
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let tabs = {
                let mut statement = tx
                    .prepare_cached("SELECT tab FROM device_tabs WHERE token_hash = ?1")
                    .map_err(backend)?;
                let rows = statement
                    .query_map([device.0.as_slice()], |row| row.get::<_, Vec<u8>>(0))
                    .map_err(backend)?;
                let mut tabs = Vec::new();
                for row in rows {
                    tabs.push(columns::uid(&row.map_err(backend)?)?);
                }
                tabs
            };
            let removed = tx
                .execute(
                    "DELETE FROM devices WHERE token_hash = ?1 AND account_id = ?2",
                    params![device.0.as_slice(), account.0],
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok((removed == 1).then_some(tabs))
        })
        .await
    }

    async fn prune_devices(&self, now: UnixMillis) -> Result<u64, StoreError> {
        self.run(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM devices WHERE expires_at <= ?1",
                    [now.as_millis()],
                )
                .map_err(backend)?;
            Ok(removed as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LoginOrigin;
    use crate::uid::Uid;

    #[test]
    fn a_new_database_and_its_companions_are_private_to_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solotab.db");
        let store = SqliteStore::open(&path).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let id = store
                .create("ann", "h", UnixMillis::from_millis(1))
                .await
                .unwrap();
            let session = ActiveSession {
                account: id,
                username: "ann".into(),
                issued_at: UnixMillis::from_millis(2),
                origin: LoginOrigin {
                    user_agent: None,
                    ip: "127.0.0.1".parse().unwrap(),
                },
            };
            store
                .claim(Uid::generate().digest(), &session)
                .await
                .unwrap();
        });
        #[cfg(unix)]
        for name in [
            "solotab.db",
            "solotab.db-wal",
            "solotab.db-shm",
            "solotab.db.lock",
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
        }
    }

    #[test]
    fn commits_are_durable_wal_with_synchronous_full() {
        // What "a 200 survives kill -9 and power loss" relies on; a kill -9 test alone would
        // pass with synchronous=OFF, since the page cache outlives the process.
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("solotab.db")).unwrap();
        let conn = store.conn.lock().unwrap();
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "synchronous must be FULL (2)");
    }

    /// A database file at `path` as the server of schema `version` left it.
    fn database_at_version(path: &Path, version: usize) -> Connection {
        let conn = Connection::open(path).unwrap();
        with_migration_functions(&conn).unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    #[test]
    fn a_database_from_before_max_tabs_keeps_its_policies_and_active_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solotab.db");
        let uid = Uid::generate().digest();
        {
            let conn = database_at_version(&path, 5);
            conn.execute_batch(
                "INSERT INTO accounts (id, username, username_key, password_hash, created_at, policy)
                 VALUES (1, 'ann', 'ann', 'h', 0, 'deny-new'), (2, 'bob', 'bob', 'h', 0, NULL);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO sessions (uid, account_id, issued_at, ip) VALUES (?1, 1, 5, '::1')",
                [uid.as_bytes().as_slice()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let ann = store.find("ann").await.unwrap().unwrap();
            assert_eq!(ann.policy, Some(Policy::DenyNew));
            assert_eq!(store.active_of(ann.id).await.unwrap(), [uid]);
            let bob = store.find("bob").await.unwrap().unwrap();
            assert!(
                store
                    .set_policy(bob.id, Some(Policy::MaxTabs(2)))
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.find("bob").await.unwrap().unwrap().policy,
                Some(Policy::MaxTabs(2))
            );
        });
        // The database refuses a limit the server would not write.
        let conn = store.conn.lock().unwrap();
        assert!(
            conn.execute("UPDATE accounts SET max_tabs = 0 WHERE id = 2", [])
                .is_err()
        );
    }

    #[test]
    fn a_database_from_before_several_devices_keeps_its_device_working_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solotab.db");
        let device = DeviceHash([7; 32]);
        {
            let conn = database_at_version(&path, 6);
            conn.execute_batch(
                "INSERT INTO accounts (id, username, username_key, password_hash, created_at)
                 VALUES (1, 'ann', 'ann', 'h', 0);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO devices (token_hash, account_id, created_at, expires_at)
                 VALUES (?1, 1, 10, 1000)",
                [device.0.as_slice()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let at = UnixMillis::from_millis;
            assert!(store.find_device(device, at(20)).await.unwrap().is_some());
            let listed = store.devices_of(AccountId(1), at(20)).await.unwrap();
            assert_eq!(
                listed,
                vec![DeviceDetails {
                    hash: device,
                    created_at: at(10),
                    signed_in_at: at(10),
                    expires_at: at(1000),
                    user_agent: None,
                    ip: None,
                }]
            );
            // It starts tabs, and signing it out returns them, as a new device would.
            let tab = Uid::generate().digest();
            store.link_tab(device, tab, at(30)).await.unwrap();
            assert_eq!(
                store.remove_device_of(AccountId(1), device).await.unwrap(),
                Some(vec![tab])
            );
        });
    }

    #[test]
    fn only_the_usernames_unique_key_means_taken() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .conn
            .lock()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON accounts
                 WHEN NEW.username = 'trap' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let created = runtime.block_on(store.create("trap", "h", UnixMillis::from_millis(1)));
        assert!(
            matches!(created, Err(CreateAccountError::Store(_))),
            "another constraint's failure was reported as a taken name: {created:?}"
        );
    }

    #[test]
    fn a_database_of_an_earlier_version_migrates_keeps_its_sessions_and_forgets_raw_uids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("solotab.db");
        let uid = Uid::parse("6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10").unwrap();
        let raw: Vec<u8> = uuid::Uuid::parse_str(&uid.expose())
            .unwrap()
            .as_bytes()
            .to_vec();
        {
            // What an earlier release left on disk: raw UIDs in the sessions table.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
            for sql in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO accounts (id, username, username_key, password_hash, created_at)
                 VALUES (1, 'ann', 'ann', 'h', 0);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO sessions (uid, account_id, issued_at, ip) VALUES (?1, 1, 5, '::1')",
                [raw.as_slice()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let snapshot = runtime
            .block_on(store.load(UnixMillis::from_millis(0)))
            .unwrap();
        assert_eq!(snapshot.active.len(), 1);
        assert_eq!(
            snapshot.active[0].0,
            uid.digest(),
            "the session is now keyed by digest"
        );
        let version: i64 = store
            .conn
            .lock()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(store);
        for file in ["solotab.db", "solotab.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
                "{file} still holds the raw UID"
            );
        }
    }
}
