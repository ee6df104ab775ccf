//! The Redis session store: the registry (the active UID of each account, and the ended
//! UIDs for the history period) and the cross-instance fan-out, for several instances
//! whose accounts and devices stay in PostgreSQL.
//!
//! Keys, under a prefix (`--redis-prefix`, `solotab:` by default), never hold a UID, only its digest in hex:
//!
//! - `session:<digest>`: a hash of `account`, `username`, `issued_at`, `last_seen` once used
//!   (for the idle timeout), and once ended
//!   `ended_at`, `reason` and the newer login's `by_ip` / `by_ua`. Ended ones expire after
//!   the history period.
//! - `tabs:<account>`: the digests of the account's active sessions, scored by when each was
//!   issued (a claim ends the oldest beyond its limit). Before max-tabs this was a string
//!   `active:<account>` holding the one active digest; the scripts convert one as they meet it.
//! - `ended:<account>`: the account's ended digests, scored by when they ended (to forget
//!   the oldest).
//! - `active_count`: how many sessions are active (kept by the scripts, for metrics).
//!
//! A claim and a release are each one Lua script, which Redis runs atomically: however many
//! instances claim at once, no account ends with more active sessions than its limit. The script
//! publishes each end on `<prefix>ended` in the same step, with when and why (see
//! [`FanOut::parse_notice`]). A check is one `HGETALL`.
//!
//! Standalone Redis (or a Sentinel-managed primary) only: the scripts touch keys of several
//! hash slots, which Redis Cluster refuses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::mpsc;

use super::{
    AccountId, ActiveSession, EndedSession, FanOut, LoadedActive, LoadedEnded, LoginOrigin,
    Replacing, SessionStore, Snapshot, SnapshotEnded, StoreError, Stored, TabDetails, TabEnd,
    TabsPage, columns,
};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// How long connecting and each command may take: an unreachable Redis must fail requests
/// promptly (503), not hang them.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait between two attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Lua shared by the scripts below: the key of an account's active digests (a sorted set),
/// first converting the string an older server kept for its one active digest.
const TABS_OF: &str = r"
local function tabs_of(prefix, account)
  local tabs = prefix .. 'tabs:' .. account
  local legacy = prefix .. 'active:' .. account
  local old = redis.call('GET', legacy)
  if old then
    local issued = redis.call('HGET', prefix .. 'session:' .. old, 'issued_at') or 0
    redis.call('ZADD', tabs, issued, old)
    redis.call('DEL', legacy)
  end
  return tabs
end
";

/// Ends the account's oldest active sessions beyond `tabs - 1` (by issued_at, then digest)
/// as superseded and makes the new one active; returns `{'ok', ended...}`, or `{'changed'}`
/// when the claim requires other active sessions than there are (and then changes nothing).
/// KEYS: ended:<account>, session:<new>. ARGV: new digest, account, username, issued_at,
/// newer login's ip, its user agent ("" if none), history ms, prefix, tabs, then 'only'
/// followed by the digests the account's active sessions must be, or 'any'.
const CLAIM: &str = r"
local tabs = tabs_of(ARGV[8], ARGV[2])
local active = redis.call('ZRANGE', tabs, 0, -1)
if ARGV[10] == 'only' then
  local expected = {}
  for i = 11, #ARGV do expected[#expected + 1] = ARGV[i] end
  local now = {}
  for i, uid in ipairs(active) do now[i] = uid end
  table.sort(expected)
  table.sort(now)
  if #expected ~= #now then return {'changed'} end
  for i = 1, #now do
    if now[i] ~= expected[i] then return {'changed'} end
  end
end
local ending = math.max(0, #active - (tonumber(ARGV[9]) - 1))
local ended = {'ok'}
for i = 1, ending do
  local old = active[i]
  local key = ARGV[8] .. 'session:' .. old
  redis.call('HSET', key, 'ended_at', ARGV[4], 'reason', 'superseded', 'by_ip', ARGV[5])
  if ARGV[6] ~= '' then redis.call('HSET', key, 'by_ua', ARGV[6]) end
  redis.call('PEXPIRE', key, ARGV[7])
  redis.call('ZREM', tabs, old)
  redis.call('ZADD', KEYS[1], ARGV[4], old)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('PUBLISH', ARGV[8] .. 'ended', cjson.encode({uid = old, at = ARGV[4],
    reason = 'superseded', ip = ARGV[5], ua = ARGV[6]}))
  ended[#ended + 1] = old
end
redis.call('INCRBY', ARGV[8] .. 'active_count', 1 - ending)
redis.call('ZADD', tabs, ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], 'account', ARGV[2], 'username', ARGV[3], 'issued_at', ARGV[4],
  'ip', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'ua', ARGV[6]) end
return ended
";

/// Ends a session as logged out if it is active; returns 1 if it was.
/// KEYS: session:<digest>. ARGV: digest, at, history ms, prefix.
const RELEASE: &str = r"
local account = redis.call('HGET', KEYS[1], 'account')
if not account or redis.call('HEXISTS', KEYS[1], 'ended_at') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'ended_at', ARGV[2], 'reason', 'logged_out')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if redis.call('ZREM', tabs_of(ARGV[4], account), ARGV[1]) == 1 then
  redis.call('DECR', ARGV[4] .. 'active_count')
end
local ended = ARGV[4] .. 'ended:' .. account
redis.call('ZADD', ended, ARGV[2], ARGV[1])
redis.call('PEXPIRE', ended, ARGV[3])
redis.call('PUBLISH', ARGV[4] .. 'ended',
  cjson.encode({uid = ARGV[1], at = ARGV[2], reason = 'logged_out'}))
return 1
";

/// Records when an active session was last used, unless it was later already; returns 1 if
/// it is active. KEYS: session:<digest>. ARGV: at (ms).
const TOUCH: &str = r"
if redis.call('HEXISTS', KEYS[1], 'issued_at') == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'ended_at') == 1 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if seen < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'last_seen', ARGV[1]) end
return 1
";

/// Ends the account's active sessions (all, or those of ARGV[7..] that are) for the reason
/// ARGV[5] ('revoked' or 'expired'); returns the digests it ended. KEYS: ended:<account>.
/// ARGV: prefix, account, at, history ms, reason, then 'only' and digests, or 'all'.
const END_TABS: &str = r"
local tabs = tabs_of(ARGV[1], ARGV[2])
local ending = {}
if ARGV[6] == 'only' then
  for i = 7, #ARGV do
    if redis.call('ZSCORE', tabs, ARGV[i]) then ending[#ending + 1] = ARGV[i] end
  end
else
  ending = redis.call('ZRANGE', tabs, 0, -1)
end
for _, uid in ipairs(ending) do
  local key = ARGV[1] .. 'session:' .. uid
  redis.call('HSET', key, 'ended_at', ARGV[3], 'reason', ARGV[5])
  redis.call('PEXPIRE', key, ARGV[4])
  redis.call('ZREM', tabs, uid)
  redis.call('ZADD', KEYS[1], ARGV[3], uid)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('DECR', ARGV[1] .. 'active_count')
  redis.call('PUBLISH', ARGV[1] .. 'ended',
    cjson.encode({uid = uid, at = ARGV[3], reason = ARGV[5]}))
end
return ending
";

/// The account's active digests. ARGV: prefix, account.
const ACTIVE_OF: &str = r"
return redis.call('ZRANGE', tabs_of(ARGV[1], ARGV[2]), 0, -1)
";

/// Forgets all but the `keep` newest ended sessions of one account (newest first, ties by
/// digest), and those ended before a cutoff; returns the forgotten digests.
/// KEYS: ended:<account>. ARGV: keep, cutoff (ms; '-inf' for none), prefix.
const FORGET: &str = r"
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local entries = {}
for i = 1, #all, 2 do entries[#entries + 1] = {all[i], tonumber(all[i + 1])} end
table.sort(entries, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local cutoff = tonumber(ARGV[2])
local forgotten = {}
for i, entry in ipairs(entries) do
  if i > tonumber(ARGV[1]) or entry[2] < cutoff then
    redis.call('DEL', ARGV[3] .. 'session:' .. entry[1])
    redis.call('ZREM', KEYS[1], entry[1])
    forgotten[#forgotten + 1] = entry[1]
  end
end
return forgotten
";

/// Why the store could not be opened. Messages name the server, never a password.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    #[error("the Redis URL is not one this server can use: {0}")]
    BadUrl(String),
    #[error("cannot reach Redis at {target}: {reason}")]
    Unreachable { target: String, reason: String },
}

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    connection: ConnectionManager,
    prefix: Arc<str>,
    /// How long ended sessions are kept (their keys' time to live).
    history: Duration,
    target: Arc<str>,
    claim: Arc<Script>,
    release: Arc<Script>,
    active_of: Arc<Script>,
    end_tabs: Arc<Script>,
    touch: Arc<Script>,
    forget: Arc<Script>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]`) and checks that it answers.
    /// Keys are named under `prefix`; ended sessions are kept for `history`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        history: Duration,
    ) -> Result<Self, RedisConnectError> {
        let client =
            redis::Client::open(url).map_err(|e| RedisConnectError::BadUrl(e.to_string()))?;
        let target = describe(&client);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            // Fail the request at once and let the next one reconnect: a request must not
            // wait through a backoff schedule.
            .set_number_of_retries(1);
        let unreachable = |e: redis::RedisError| RedisConnectError::Unreachable {
            target: target.clone(),
            reason: e.to_string(),
        };
        let mut connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unreachable)?;
        let () = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(unreachable)?;
        warn_unless_durable(&mut connection, &target).await;
        Ok(Self {
            client,
            connection,
            prefix: prefix.into(),
            history,
            target: target.into(),
            claim: Arc::new(Script::new(&format!("{TABS_OF}{CLAIM}"))),
            release: Arc::new(Script::new(&format!("{TABS_OF}{RELEASE}"))),
            active_of: Arc::new(Script::new(&format!("{TABS_OF}{ACTIVE_OF}"))),
            end_tabs: Arc::new(Script::new(&format!("{TABS_OF}{END_TABS}"))),
            touch: Arc::new(Script::new(TOUCH)),
            forget: Arc::new(Script::new(FORGET)),
        })
    }

    /// `host:port/db`: where this store is, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every end committed by any instance, as it commits, from a subscription of its own
    /// that resubscribes by itself (see [`FanOut`]). Stops when the receiver is dropped.
    pub fn listen(&self) -> mpsc::Receiver<FanOut> {
        let (tx, rx) = mpsc::channel(1024);
        let (client, channel) = (self.client.clone(), format!("{}ended", self.prefix));
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !tx.is_closed() {
                match subscribe(&client, &channel, &tx).await {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "store fan-out: cannot subscribe; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        });
        rx
    }

    fn key(&self, kind: &str, name: impl std::fmt::Display) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn history_ms(&self) -> u64 {
        u64::try_from(self.history.as_millis()).unwrap_or(u64::MAX)
    }

    fn connection(&self) -> ConnectionManager {
        // Cheap: a handle on one multiplexed connection.
        self.connection.clone()
    }

    /// Every session hash under the prefix, by digest (for `load`; tests and one-off tools,
    /// never a request).
    async fn all_sessions(&self) -> Result<Vec<(UidDigest, Stored)>, StoreError> {
        let mut connection = self.connection();
        let pattern = self.key("session", "*");
        let keys: Vec<String> = {
            let mut iter = connection
                .scan_match::<_, String>(&pattern)
                .await
                .map_err(backend)?;
            let mut keys = Vec::new();
            while let Some(key) = futures_util::StreamExt::next(&mut iter).await {
                keys.push(key.map_err(backend)?);
            }
            keys
        };
        let mut sessions = Vec::with_capacity(keys.len());
        for key in keys {
            let fields: HashMap<String, String> =
                connection.hgetall(&key).await.map_err(backend)?;
            let hex = key.rsplit(':').next().unwrap_or_default();
            let (Some(uid), Some(stored)) = (UidDigest::from_hex(hex), read(&fields)?) else {
                continue; // expired between SCAN and HGETALL, or not ours
            };
            sessions.push((uid, stored));
        }
        Ok(sessions)
    }
}

/// One subscription's life: SUBSCRIBE, report `Subscribed`, forward ends until it drops.
async fn subscribe(
    client: &redis::Client,
    channel: &str,
    tx: &mpsc::Sender<FanOut>,
) -> Result<(), redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    if tx.send(FanOut::Subscribed).await.is_err() {
        return Ok(());
    }
    tracing::info!("store fan-out: subscribed");
    let mut messages = pubsub.into_on_message();
    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
        let payload: String = message.get_payload().unwrap_or_default();
        match FanOut::parse_notice(&payload) {
            Some(notice) => {
                if tx.send(notice).await.is_err() {
                    return Ok(());
                }
            }
            None => tracing::warn!("store fan-out: ignored a malformed notice"),
        }
    }
    tracing::warn!("store fan-out: subscription lost");
    Ok(())
}

/// Redis keeps what a claim wrote only as well as it is configured to: say so at start if
/// it could lose acknowledged claims (see the README). Managed services that refuse
/// `CONFIG` are not second-guessed.
async fn warn_unless_durable(connection: &mut ConnectionManager, target: &str) {
    let setting = |name: &'static str| {
        let mut connection = connection.clone();
        async move {
            let pair: Result<Vec<String>, _> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut connection)
                .await;
            pair.ok().and_then(|pair| pair.get(1).cloned())
        }
    };
    let (appendonly, fsync) = (setting("appendonly").await, setting("appendfsync").await);
    if let (Some(appendonly), Some(fsync)) = (appendonly, fsync)
        && (appendonly != "yes" || fsync != "always")
    {
        tracing::warn!(
            redis = target,
            appendonly,
            appendfsync = fsync,
            "Redis may lose acknowledged logins on a crash; run it with appendonly yes and \
             appendfsync always (see the README)"
        );
    }
}

/// `host:port/db`, for messages: never the password.
fn describe(client: &redis::Client) -> String {
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    format!("{}/{db}", info.addr())
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A session hash as [`Stored`]; `None` if the key does not exist (an empty hash).
fn read(fields: &HashMap<String, String>) -> Result<Option<Stored>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let number = |name: &str| -> Result<i64, StoreError> {
        fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Backend(format!("a session hash has no valid {name}")))
    };
    let account = AccountId(number("account")?);
    let username: Arc<str> = fields.get("username").map_or("", String::as_str).into();
    let Some(ended_at) = fields.get("ended_at") else {
        let issued_at = UnixMillis::from_millis(number("issued_at")?);
        let last_seen = number("last_seen").map_or(issued_at, UnixMillis::from_millis);
        let active = LoadedActive {
            account,
            issued_at,
            last_seen,
        };
        return Ok(Some(Stored::Active(active, username)));
    };
    let ended_at = ended_at
        .parse()
        .map(UnixMillis::from_millis)
        .map_err(|_| StoreError::Backend("a session hash has no valid ended_at".into()))?;
    let reason = columns::end_reason(
        fields.get("reason").map_or("", String::as_str),
        fields.get("by_ua").map(|ua| Arc::from(ua.as_str())),
        fields.get("by_ip").map(String::as_str),
    )?;
    Ok(Some(Stored::Ended(
        LoadedEnded {
            account,
            ended_at,
            reason,
        },
        username,
    )))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, ended_since: UnixMillis) -> Result<Snapshot, StoreError> {
        let mut usernames = HashMap::new();
        let mut snapshot = Snapshot::default();
        for (uid, stored) in self.all_sessions().await? {
            match stored {
                Stored::Active(active, username) => {
                    usernames.insert(active.account, username);
                    snapshot.active.push((uid, active));
                }
                Stored::Ended(ended, username) if ended.ended_at >= ended_since => {
                    usernames.insert(ended.account, username);
                    let ended = SnapshotEnded {
                        account: ended.account,
                        ended_at: ended.ended_at,
                        kind: ended.reason.kind(),
                    };
                    snapshot.ended.push((uid, ended));
                }
                Stored::Ended(..) => {}
            }
        }
        snapshot.usernames = usernames.into_iter().collect();
        Ok(snapshot)
    }

    async fn claim_replacing(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
        tabs: usize,
        replacing: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
        let account = session.account.0;
        let mut claim = self.claim.prepare_invoke();
        claim
            .key(self.key("ended", account))
            .key(self.key("session", uid.to_hex()))
            .arg(uid.to_hex())
            .arg(account)
            .arg(&*session.username)
            .arg(session.issued_at.as_millis())
            .arg(session.origin.ip.to_string())
            .arg(session.origin.user_agent.as_deref().unwrap_or(""))
            .arg(self.history_ms())
            .arg(&*self.prefix)
            .arg(tabs.max(1));
        match replacing {
            Replacing::Any => claim.arg("any"),
            Replacing::Only(expected) => {
                claim.arg("only");
                expected
                    .iter()
                    .fold(&mut claim, |c, uid| c.arg(uid.to_hex()))
            }
        };
        let outcome: Vec<String> = claim
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        let Some(("ok", ended)) = outcome.split_first().map(|(s, r)| (s.as_str(), r)) else {
            return Ok(None);
        };
        let ended = ended
            .iter()
            .map(|hex| {
                let old = UidDigest::from_hex(hex)
                    .ok_or_else(|| StoreError::Backend("a stored digest is not hex".into()))?;
                Ok((old, session.supersedes()))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(ended))
    }

    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let mut revoke = self.end_tabs.prepare_invoke();
        revoke
            .key(self.key("ended", account.0))
            .arg(&*self.prefix)
            .arg(account.0)
            .arg(at.as_millis())
            .arg(self.history_ms())
            .arg(why.as_str());
        match only {
            None => revoke.arg("all"),
            Some(uids) => {
                revoke.arg("only");
                uids.iter().fold(&mut revoke, |r, uid| r.arg(uid.to_hex()))
            }
        };
        let ended: Vec<String> = revoke
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        Ok(ended
            .iter()
            .filter_map(|hex| UidDigest::from_hex(hex))
            .collect())
    }

    async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
        let mut tabs = Vec::new();
        for uid in self.active_of(account).await? {
            // Ended between the two reads: no longer a tab.
            tabs.extend(self.tab_details(uid).await?.map(|(_, _, tab)| tab));
        }
        Ok(tabs)
    }

    /// Reads every session under the prefix (administrators only: a rare, slow page).
    async fn tabs_page(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError> {
        let search = search.map(app::rules::username_key);
        let mut active: Vec<(String, UnixMillis, UidDigest)> = Vec::new();
        for (uid, stored) in self.all_sessions().await? {
            if let Stored::Active(session, username) = stored {
                let key = app::rules::username_key(&username);
                if search
                    .as_ref()
                    .is_none_or(|search| key.contains(search.as_str()))
                {
                    active.push((key, session.issued_at, uid));
                }
            }
        }
        active.sort();
        let total = active.len() as u64;
        let mut tabs = Vec::new();
        for (_, _, uid) in active.into_iter().skip(offset).take(limit) {
            tabs.extend(self.tab_details(uid).await?);
        }
        Ok(TabsPage { tabs, total })
    }

    async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError> {
        let _active: i64 = self
            .touch
            .key(self.key("session", uid.to_hex()))
            .arg(at.as_millis())
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError> {
        let released: i64 = self
            .release
            .key(self.key("session", uid.to_hex()))
            .arg(uid.to_hex())
            .arg(at.as_millis())
            .arg(self.history_ms())
            .arg(&*self.prefix)
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        Ok(released == 1)
    }

    /// Ended sessions also expire by themselves after the history period; this forgets
    /// those ended before `ended_before` now, one account at a time.
    async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        let mut accounts = Vec::new();
        for (_, stored) in self.all_sessions().await? {
            if let Stored::Ended(ended, _) = stored
                && ended.ended_at < ended_before
            {
                accounts.push(ended.account);
            }
        }
        accounts.sort();
        accounts.dedup();
        let mut pruned = 0;
        for account in accounts {
            pruned += self
                .forget_where(account, usize::MAX, ended_before.as_millis().to_string())
                .await?
                .len() as u64;
        }
        Ok(pruned)
    }

    async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError> {
        let fields: HashMap<String, String> = self
            .connection()
            .hgetall(self.key("session", uid.to_hex()))
            .await
            .map_err(backend)?;
        read(&fields)
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        let count: Option<i64> = self
            .connection()
            .get(format!("{}active_count", self.prefix))
            .await
            .map_err(backend)?;
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError> {
        let active: Vec<String> = self
            .active_of
            .arg(&*self.prefix)
            .arg(account.0)
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        active
            .iter()
            .map(|hex| {
                UidDigest::from_hex(hex)
                    .ok_or_else(|| StoreError::Backend("a stored digest is not hex".into()))
            })
            .collect()
    }

    async fn forget_oldest(
        &self,
        account: AccountId,
        keep: usize,
    ) -> Result<Vec<UidDigest>, StoreError> {
        self.forget_where(account, keep, "-inf".into()).await
    }
}

impl RedisStore {
    /// An active session's tab, with its account and username; `None` if it is not active.
    async fn tab_details(
        &self,
        uid: UidDigest,
    ) -> Result<Option<(AccountId, Arc<str>, TabDetails)>, StoreError> {
        let fields: HashMap<String, String> = self
            .connection()
            .hgetall(self.key("session", uid.to_hex()))
            .await
            .map_err(backend)?;
        let Some(Stored::Active(active, username)) = read(&fields)? else {
            return Ok(None);
        };
        // Sessions claimed before the hash kept the login's address show none.
        let ip = fields.get("ip").and_then(|ip| ip.parse().ok());
        let tab = TabDetails {
            uid,
            issued_at: active.issued_at,
            last_seen: active.last_seen,
            origin: LoginOrigin {
                user_agent: fields.get("ua").map(|ua| Arc::from(ua.as_str())),
                ip: ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            },
        };
        Ok(Some((active.account, username, tab)))
    }

    /// [`FORGET`] for one account.
    async fn forget_where(
        &self,
        account: AccountId,
        keep: usize,
        cutoff: String,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let forgotten: Vec<String> = self
            .forget
            .key(self.key("ended", account.0))
            .arg(keep.min(i64::MAX as usize))
            .arg(cutoff)
            .arg(&*self.prefix)
            .invoke_async(&mut self.connection())
            .await
            .map_err(backend)?;
        Ok(forgotten
            .iter()
            .filter_map(|hex| UidDigest::from_hex(hex))
            .collect())
    }
}

/// Test support: the URL of the test Redis (`SOLOTAB_TEST_REDIS_URL`, default the local
/// one) and a key prefix of this test's own (`solotab_test_<unix time>_<random>:`). Keys of
/// runs over an hour old are deleted on the way.
#[cfg(any(test, feature = "test-support"))]
pub async fn test_redis() -> (String, String) {
    use std::time::{SystemTime, UNIX_EPOCH};
    let url =
        std::env::var("SOLOTAB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url.as_str()).expect("SOLOTAB_TEST_REDIS_URL parses");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the Redis tests need a server at {url} ({e}); set SOLOTAB_TEST_REDIS_URL, \
                 or run ./dev.sh test, which starts one"
            )
        });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale: Vec<String> = {
        let mut keys = connection
            .scan_match::<_, String>("solotab_test_*")
            .await
            .unwrap();
        let mut stale = Vec::new();
        while let Some(key) = futures_util::StreamExt::next(&mut keys).await {
            let key = key.unwrap();
            let created: u64 = key
                .split('_')
                .nth(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if created + 3600 < now {
                stale.push(key);
            }
        }
        stale
    };
    for key in stale {
        let _: Result<(), _> = connection.del(key).await;
    }
    let random = u64::from_le_bytes(
        crate::uid::Uid::generate().digest().as_bytes()[..8]
            .try_into()
            .unwrap(),
    );
    (url, format!("solotab_test_{now}_{random:016x}:"))
}

/// Sessions in Redis, accounts and devices in memory: what the suites that also create
/// accounts run against (in a deployment, accounts are in PostgreSQL).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct TestStore {
    pub sessions: RedisStore,
    accounts: super::MemoryStore,
}

#[cfg(test)]
pub(crate) async fn test_store() -> TestStore {
    let (url, prefix) = test_redis().await;
    let sessions = RedisStore::connect(&url, &prefix, crate::registry::DEFAULT_HISTORY)
        .await
        .unwrap();
    TestStore {
        sessions,
        accounts: super::MemoryStore::new(),
    }
}

#[cfg(test)]
mod delegation {
    use super::super::{
        AccountRecord, AccountStore, CreateAccountError, DeviceDetails, DeviceHash, DeviceRecord,
        DeviceStore, NewDevice,
    };
    use super::*;

    #[async_trait]
    impl SessionStore for TestStore {
        async fn load(&self, since: UnixMillis) -> Result<Snapshot, StoreError> {
            self.sessions.load(since).await
        }
        async fn claim_replacing(
            &self,
            uid: UidDigest,
            session: &ActiveSession,
            tabs: usize,
            replacing: &Replacing,
        ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
            self.sessions
                .claim_replacing(uid, session, tabs, replacing)
                .await
        }
        async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError> {
            self.sessions.release(uid, at).await
        }
        async fn prune(&self, before: UnixMillis) -> Result<u64, StoreError> {
            self.sessions.prune(before).await
        }
        async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError> {
            self.sessions.lookup(uid).await
        }
        async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError> {
            self.sessions.touch(uid, at).await
        }
        async fn end_tabs(
            &self,
            account: AccountId,
            only: Option<&[UidDigest]>,
            at: UnixMillis,
            why: TabEnd,
        ) -> Result<Vec<UidDigest>, StoreError> {
            self.sessions.end_tabs(account, only, at, why).await
        }
        async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
            self.sessions.tabs_of(account).await
        }
        async fn tabs_page(
            &self,
            search: Option<&str>,
            offset: usize,
            limit: usize,
        ) -> Result<super::super::TabsPage, StoreError> {
            self.sessions.tabs_page(search, offset, limit).await
        }
        async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError> {
            self.sessions.active_of(account).await
        }
        async fn count_active(&self) -> Result<u64, StoreError> {
            self.sessions.count_active().await
        }
        async fn forget_oldest(
            &self,
            account: AccountId,
            keep: usize,
        ) -> Result<Vec<UidDigest>, StoreError> {
            self.sessions.forget_oldest(account, keep).await
        }
    }

    #[async_trait]
    impl AccountStore for TestStore {
        async fn create(
            &self,
            username: &str,
            hash: &str,
            at: UnixMillis,
        ) -> Result<AccountId, CreateAccountError> {
            self.accounts.create(username, hash, at).await
        }
        async fn find(&self, key: &str) -> Result<Option<AccountRecord>, StoreError> {
            self.accounts.find(key).await
        }
        async fn set_policy(
            &self,
            account: AccountId,
            policy: Option<super::super::Policy>,
        ) -> Result<bool, StoreError> {
            self.accounts.set_policy(account, policy).await
        }
        async fn set_password(&self, account: AccountId, hash: &str) -> Result<bool, StoreError> {
            self.accounts.set_password(account, hash).await
        }
        async fn set_mode(
            &self,
            account: AccountId,
            mode: Option<super::super::Mode>,
        ) -> Result<bool, StoreError> {
            self.accounts.set_mode(account, mode).await
        }
        async fn set_admin(&self, account: AccountId, admin: bool) -> Result<bool, StoreError> {
            self.accounts.set_admin(account, admin).await
        }
        async fn record_event(
            &self,
            account: AccountId,
            event: &super::super::AccountEvent,
        ) -> Result<(), StoreError> {
            self.accounts.record_event(account, event).await
        }
        async fn events(
            &self,
            account: AccountId,
        ) -> Result<Vec<super::super::AccountEvent>, StoreError> {
            self.accounts.events(account).await
        }
    }

    #[async_trait]
    impl DeviceStore for TestStore {
        async fn add_device(
            &self,
            device: &NewDevice,
            replacing: Option<DeviceHash>,
            keep: usize,
        ) -> Result<(), StoreError> {
            self.accounts.add_device(device, replacing, keep).await
        }
        async fn link_tab(
            &self,
            device: DeviceHash,
            tab: UidDigest,
            at: UnixMillis,
        ) -> Result<(), StoreError> {
            self.accounts.link_tab(device, tab, at).await
        }
        async fn devices_of(
            &self,
            account: AccountId,
            now: UnixMillis,
        ) -> Result<Vec<DeviceDetails>, StoreError> {
            self.accounts.devices_of(account, now).await
        }
        async fn remove_device_of(
            &self,
            account: AccountId,
            device: DeviceHash,
        ) -> Result<Option<Vec<UidDigest>>, StoreError> {
            self.accounts.remove_device_of(account, device).await
        }
        async fn find_device(
            &self,
            device: DeviceHash,
            now: UnixMillis,
        ) -> Result<Option<DeviceRecord>, StoreError> {
            self.accounts.find_device(device, now).await
        }
        async fn remove_device(&self, device: DeviceHash) -> Result<bool, StoreError> {
            self.accounts.remove_device(device).await
        }
        async fn prune_devices(&self, now: UnixMillis) -> Result<u64, StoreError> {
            self.accounts.prune_devices(now).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ActiveSession, LoginOrigin};
    use crate::uid::Uid;

    /// What a server from before max-tabs left in Redis: the account's one active digest as
    /// a string at `active:<account>`, beside its session hash.
    async fn legacy_active(store: &RedisStore, account: i64, issued_at: i64) -> UidDigest {
        let uid = Uid::generate().digest();
        let mut connection = store.connection();
        let () = connection
            .hset_multiple(
                store.key("session", uid.to_hex()),
                &[
                    ("account", account.to_string()),
                    ("username", "ann".into()),
                    ("issued_at", issued_at.to_string()),
                ],
            )
            .await
            .unwrap();
        let () = connection
            .set(store.key("active", account), uid.to_hex())
            .await
            .unwrap();
        let () = connection
            .incr(format!("{}active_count", store.prefix), 1)
            .await
            .unwrap();
        uid
    }

    #[tokio::test]
    async fn an_active_session_kept_by_an_older_server_is_still_one_and_is_converted() {
        let (url, prefix) = test_redis().await;
        let store = RedisStore::connect(&url, &prefix, Duration::from_secs(3600))
            .await
            .unwrap();
        // Read: the old key answers as the account's active session, and is converted.
        let read = legacy_active(&store, 1, 10).await;
        assert_eq!(store.active_of(AccountId(1)).await.unwrap(), [read]);
        let legacy: Option<String> = store
            .connection()
            .get(store.key("active", 1))
            .await
            .unwrap();
        assert_eq!(legacy, None, "the old key is gone once converted");
        // Claimed over: a new login supersedes it as it supersedes any active session.
        let claimed = legacy_active(&store, 2, 10).await;
        let session = ActiveSession {
            account: AccountId(2),
            username: "bob".into(),
            issued_at: UnixMillis::from_millis(20),
            origin: LoginOrigin {
                user_agent: None,
                ip: "192.0.2.1".parse().unwrap(),
            },
        };
        let new = Uid::generate().digest();
        let ended = store.claim(new, &session).await.unwrap();
        assert_eq!(ended.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [claimed]);
        assert_eq!(store.active_of(AccountId(2)).await.unwrap(), [new]);
        // Released: a logout of a session kept the old way ends it and counts it.
        let released = legacy_active(&store, 3, 10).await;
        assert_eq!(store.count_active().await.unwrap(), 3);
        assert!(
            store
                .release(released, UnixMillis::from_millis(30))
                .await
                .unwrap()
        );
        assert_eq!(store.active_of(AccountId(3)).await.unwrap(), []);
        assert_eq!(store.count_active().await.unwrap(), 2);
    }
}
