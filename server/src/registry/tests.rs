use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::store::{AccountStore, MemoryStore, SqliteStore};

fn origin(n: u8) -> LoginOrigin {
    LoginOrigin {
        user_agent: Some(format!("browser {n}").into()),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
    }
}

/// Where a registry answers checks from: the two ways a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One server: memory mirrors the store.
    Memory,
    /// Several instances: every check reads the store.
    Shared,
}

const BOTH: [Mode; 2] = [Mode::Memory, Mode::Shared];

async fn registry_on(store: Arc<dyn SessionStore>) -> Registry {
    registry_in(Mode::Memory, store).await
}

async fn registry_in(mode: Mode, store: Arc<dyn SessionStore>) -> Registry {
    match mode {
        Mode::Memory => Registry::load(store, DEFAULT_HISTORY).await.unwrap(),
        Mode::Shared => Registry::shared(store),
    }
}

/// The claim a login made; panics if the policy refused it.
fn claimed(claim: Claim) -> Claimed {
    match claim {
        Claim::Claimed(claimed) => claimed,
        other => panic!("expected a claim, got {other:?}"),
    }
}

/// Why `uid` is refused; panics if it is accepted or the store failed.
async fn refused(reg: &Registry, uid: &Uid) -> Refused {
    match reg.check(uid).await {
        Err(NotAccepted::Refused(refused)) => refused,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// What memory holds (one server only).
fn memory(reg: &Registry) -> RwLockReadGuard<'_, Sessions> {
    match &reg.truth {
        Truth::Memory(sessions) => read(sessions),
        Truth::Shared(_) => panic!("a shared registry keeps no sessions in memory"),
    }
}

/// Accounts every test store holds: ids 1, 2 and 3.
const USERNAMES: [&str; 3] = ["ann", "bob", "cyd"];

async fn seeded<S: SessionStore + AccountStore>(store: S) -> Arc<dyn SessionStore> {
    for (i, name) in USERNAMES.iter().enumerate() {
        let id = store
            .create(name, "not-a-real-hash", UnixMillis::now())
            .await
            .unwrap();
        assert_eq!(id, AccountId(i as i64 + 1));
    }
    Arc::new(store)
}

async fn stores() -> Vec<Arc<dyn SessionStore>> {
    vec![
        seeded(MemoryStore::new()).await,
        seeded(SqliteStore::open_in_memory().unwrap()).await,
        seeded(crate::store::postgres_test_store().await).await,
        seeded(crate::store::redis_test_store().await).await,
    ]
}

/// Every registry test runs on every store, in each of `$modes`.
macro_rules! on_every_store {
    ($modes:expr; $($name:ident: |$reg:ident| $body:block)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for mode in $modes {
                for store in stores().await {
                    let $reg = registry_in(mode, store).await;
                    $body
                }
            }
        }
    )*};
}

/// Whether `watch` has not resolved within a short wait.
async fn not_yet(watch: &mut Watch) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(50), watch.ended())
        .await
        .is_err()
}

/// `n` logins of Ann at once, under `reg`'s policy (none refused); the claims they made.
async fn racing_logins(reg: &Registry, n: u8) -> Vec<Claimed> {
    let tasks: Vec<_> = (0..n)
        .map(|n| {
            let reg = reg.clone();
            tokio::spawn(async move {
                claimed(
                    reg.login(ANN, "ann".into(), origin(n), None, false)
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut claims = Vec::new();
    for task in tasks {
        claims.push(task.await.unwrap());
    }
    claims
}

/// How many of `claims` `reg` accepts now.
async fn accepted(reg: &Registry, claims: &[Claimed]) -> usize {
    let mut accepted = 0;
    for claim in claims {
        accepted += usize::from(reg.check(&claim.uid).await.is_ok());
    }
    accepted
}

const ANN: AccountId = AccountId(1);
const BOB: AccountId = AccountId(2);

on_every_store! { BOTH;
    a_claimed_uid_is_accepted: |reg| {
        let claimed = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        assert!(claimed.superseded.is_empty());
        let session = reg.check(&claimed.uid).await.unwrap();
        assert_eq!(session.account, ANN);
        assert_eq!(session.issued_at, claimed.session.issued_at);
        assert_eq!(reg.username(ANN).as_deref(), Some("ann"));
    }

    a_newer_login_supersedes_the_older_and_says_when_and_from_where: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        assert_eq!(second.superseded.len(), 1);
        assert_eq!(second.superseded[0].0, first.uid.digest());
        let refused = refused(&reg, &first.uid).await;
        assert_eq!(
            refused.rejection,
            Rejection::Superseded { at: second.session.issued_at, by: origin(2) }
        );
        assert_eq!(refused.username.as_deref(), Some("ann"));
        assert!(reg.check(&second.uid).await.is_ok());
    }

    other_accounts_are_untouched: |reg| {
        let ann = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let bob = reg.claim(BOB, "bob".into(), origin(2)).await.unwrap();
        assert!(bob.superseded.is_empty());
        assert!(reg.check(&ann.uid).await.is_ok());
        assert!(reg.check(&bob.uid).await.is_ok());
    }

    an_unknown_uid_is_unknown: |reg| {
        let refused = refused(&reg, &Uid::generate()).await;
        assert_eq!(refused, Refused { rejection: Rejection::Unknown, account: None, username: None });
    }

    release_logs_out_once_and_refuses_what_is_not_active: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();

        // Releasing the superseded UID is refused and changes nothing.
        let err = reg.release(first.uid).await.unwrap_err();
        assert!(matches!(err, NotAccepted::Refused(Refused { rejection: Rejection::Superseded { .. }, .. })));
        assert!(reg.check(&second.uid).await.is_ok());

        let ended = reg.release(second.uid).await.unwrap();
        assert_eq!(ended.reason, EndReason::LoggedOut);
        assert_eq!(
            refused(&reg, &second.uid).await.rejection,
            Rejection::LoggedOut { at: ended.ended_at }
        );
        let again = reg.release(second.uid).await.unwrap_err();
        assert!(matches!(again, NotAccepted::Refused(Refused { rejection: Rejection::LoggedOut { .. }, .. })));
        assert!(matches!(
            reg.release(Uid::generate()).await.unwrap_err(),
            NotAccepted::Refused(Refused { rejection: Rejection::Unknown, .. })
        ));
    }

    pruning_forgets_only_what_ended_before_the_cutoff: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        // Nothing ended before the first supersession: nothing goes.
        assert_eq!(reg.prune(second.session.issued_at).await.unwrap(), 0);
        assert!(matches!(refused(&reg, &first.uid).await.rejection, Rejection::Superseded { .. }));
        // A cutoff after it forgets the superseded UID but never the active one.
        let later = UnixMillis::from_millis(second.session.issued_at.as_millis() + 1);
        assert_eq!(reg.prune(later).await.unwrap(), 1);
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Unknown);
        assert!(reg.check(&second.uid).await.is_ok());
        assert_eq!(reg.counts(), (!reg.is_shared()).then_some((1, 0)));
    }

    a_takeover_tells_the_watches_of_the_uid_it_ended_and_no_other: |reg| {
        let ann = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let bob = reg.claim(BOB, "bob".into(), origin(2)).await.unwrap();
        let (_, mut ann_watch) = reg.watch(&ann.uid).await.unwrap();
        let (_, mut ann_second_watch) = reg.watch(&ann.uid).await.unwrap();
        let (_, mut bob_watch) = reg.watch(&bob.uid).await.unwrap();
        assert_eq!(reg.watched(), 2);

        let newer = reg.claim(ANN, "ann".into(), origin(3)).await.unwrap();
        let expected = Rejection::Superseded { at: newer.session.issued_at, by: origin(3) };
        assert_eq!(ann_watch.ended().await, expected);
        assert_eq!(ann_second_watch.ended().await, expected);
        assert!(not_yet(&mut bob_watch).await, "bob's tab was not ended");
        assert_eq!(reg.watched(), 1, "an ended UID's entry is gone");

        reg.release(bob.uid).await.unwrap();
        assert!(matches!(bob_watch.ended().await, Rejection::LoggedOut { .. }));
    }

    revoking_one_tab_tells_its_watch_and_leaves_the_others: |reg| {
        let reg = reg.with_policy(Policy::MaxTabs(2));
        let first = claimed(reg.login(ANN, "ann".into(), origin(1), None, false).await.unwrap());
        let second = claimed(reg.login(ANN, "ann".into(), origin(2), None, false).await.unwrap());
        let (_, mut first_watch) = reg.watch(&first.uid).await.unwrap();
        let (_, mut second_watch) = reg.watch(&second.uid).await.unwrap();
        let ended = reg.revoke(ANN, Some(vec![first.uid.digest()])).await.unwrap();
        assert_eq!(ended, [first.uid.digest()]);
        let Rejection::Revoked { at } = first_watch.ended().await else { panic!("not revoked") };
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Revoked { at });
        assert!(not_yet(&mut second_watch).await, "the other tab is not woken");
        assert!(reg.check(&second.uid).await.is_ok());
        // A UID of another account, or one already ended, is not revoked.
        let bob = reg.claim(BOB, "bob".into(), origin(3)).await.unwrap();
        assert!(reg.revoke(ANN, Some(vec![bob.uid.digest(), first.uid.digest()])).await.unwrap().is_empty());
        assert!(reg.check(&bob.uid).await.is_ok());
    }

    a_uid_that_is_not_active_gets_no_watch_but_its_rejection: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        assert!(matches!(
            reg.watch(&first.uid).await.unwrap_err(),
            WatchRefused::Refused(Refused { rejection: Rejection::Superseded { .. }, .. })
        ));
        assert!(matches!(
            reg.watch(&Uid::generate()).await.unwrap_err(),
            WatchRefused::Refused(Refused { rejection: Rejection::Unknown, .. })
        ));
        assert_eq!(reg.watched(), 0);
    }

    one_uid_has_at_most_a_few_watches_and_dropping_them_frees_the_entry: |reg| {
        let ann = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let mut watches = Vec::new();
        for _ in 0..MAX_WATCHES_PER_UID {
            watches.push(reg.watch(&ann.uid).await.unwrap().1);
        }
        assert!(matches!(reg.watch(&ann.uid).await.unwrap_err(), WatchRefused::TooMany));
        watches.pop();
        assert!(reg.watch(&ann.uid).await.is_ok(), "a dropped watch frees its place");
        drop(watches);
        assert_eq!(reg.watched(), 0, "no entry is left behind by closed channels");
    }

    is_active_follows_logins_and_logouts: |reg| {
        assert!(!reg.is_active(ANN).await.unwrap());
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        assert!(reg.is_active(ANN).await.unwrap());
        assert!(!reg.is_active(BOB).await.unwrap());
        assert!(reg.release(first.uid).await.is_err());
        assert!(reg.is_active(ANN).await.unwrap());
        reg.release(second.uid).await.unwrap();
        assert!(!reg.is_active(ANN).await.unwrap());
    }

    a_conditional_claim_that_is_no_longer_allowed_changes_nothing: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let refused = reg
            .claim_if(ANN, "ann".into(), origin(2), None, true, || async { Ok(false) })
            .await
            .unwrap();
        assert!(matches!(refused, Claim::NotAllowed));
        assert!(reg.check(&first.uid).await.is_ok(), "the active tab stays active");
        assert_eq!(reg.counts(), (!reg.is_shared()).then_some((1, 0)));
        let allowed = reg
            .claim_if(ANN, "ann".into(), origin(3), None, true, || async { Ok(true) })
            .await
            .unwrap();
        assert_eq!(claimed(allowed).superseded.len(), 1);
    }

    a_conditional_claims_check_runs_in_the_claims_own_step: |reg| {
        // The check holds the write order: a claim started meanwhile waits for it.
        let (release_check, check_gate) = tokio::sync::oneshot::channel::<bool>();
        let check_gate = Arc::new(tokio::sync::Mutex::new(Some(check_gate)));
        let conditional = tokio::spawn({
            let reg = reg.clone();
            async move {
                reg.claim_if(ANN, "ann".into(), origin(1), None, true, move || {
                    let check_gate = Arc::clone(&check_gate);
                    async move {
                        let gate = check_gate.lock().await.take().expect("checked once");
                        Ok(gate.await.unwrap())
                    }
                })
                .await
                .unwrap()
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut plain = tokio::spawn({
            let reg = reg.clone();
            async move { reg.claim(ANN, "ann".into(), origin(2)).await.unwrap() }
        });
        let waited = tokio::time::timeout(std::time::Duration::from_millis(100), &mut plain).await;
        assert!(waited.is_err(), "a claim ran while a conditional claim was checking");
        release_check.send(false).unwrap();
        assert!(matches!(conditional.await.unwrap(), Claim::NotAllowed));
        let plain = plain.await.unwrap();
        assert!(plain.superseded.is_empty());
        assert!(reg.check(&plain.uid).await.is_ok());
    }

    deny_new_refuses_a_login_while_a_tab_is_active_unless_it_takes_over: |reg| {
        let reg = reg.with_policy(Policy::DenyNew);
        let first = claimed(reg.login(ANN, "ann".into(), origin(1), None, false).await.unwrap());
        match reg.login(ANN, "ann".into(), origin(2), None, false).await.unwrap() {
            Claim::InUse { since } => assert_eq!(since, first.session.issued_at),
            other => panic!("deny-new let a second login in: {other:?}"),
        }
        assert!(reg.check(&first.uid).await.is_ok(), "the active tab is untouched");
        // Bob is another account: not in use.
        claimed(reg.login(BOB, "bob".into(), origin(3), None, false).await.unwrap());
        // Asked to take over, the login supersedes as under latest-wins.
        let second = claimed(reg.login(ANN, "ann".into(), origin(4), None, true).await.unwrap());
        assert_eq!(second.superseded.len(), 1);
        assert!(matches!(refused(&reg, &first.uid).await.rejection, Rejection::Superseded { .. }));
        // Once the tab logs out, a plain login is let in again.
        reg.release(second.uid).await.unwrap();
        claimed(reg.login(ANN, "ann".into(), origin(5), None, false).await.unwrap());
        // "Use here" follows the same policy.
        let use_here = reg.claim_if(ANN, "ann".into(), origin(6), None, false, || async { Ok(true) });
        assert!(matches!(use_here.await.unwrap(), Claim::InUse { .. }));
    }

    a_uid_past_its_lifetime_is_refused_and_no_longer_holds_the_account: |reg| {
        let lifetime = std::time::Duration::from_millis(300);
        let reg = reg.with_lifetime(Some(lifetime)).with_policy(Policy::DenyNew);
        let first = claimed(reg.login(ANN, "ann".into(), origin(1), None, false).await.unwrap());
        assert!(reg.check(&first.uid).await.is_ok());
        let expiry = reg.expiry(first.session.issued_at).unwrap();
        assert_eq!(expiry.as_millis() - first.session.issued_at.as_millis(), 300);
        assert!(matches!(reg.login(ANN, "ann".into(), origin(2), None, false).await.unwrap(), Claim::InUse { .. }));
        tokio::time::sleep(lifetime + std::time::Duration::from_millis(50)).await;
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Expired { at: expiry });
        assert!(matches!(
            reg.watch(&first.uid).await.unwrap_err(),
            WatchRefused::Refused(Refused { rejection: Rejection::Expired { .. }, .. })
        ));
        // An expired tab does not keep the account under deny-new: a login replaces it.
        assert_eq!(reg.in_use(ANN, None, false).await.unwrap(), None);
        let second = claimed(reg.login(ANN, "ann".into(), origin(3), None, false).await.unwrap());
        // It ended as expired, when its lifetime ran out, not as superseded by this login.
        assert!(second.superseded.is_empty(), "{:?}", second.superseded);
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Expired { at: expiry });
        assert!(reg.check(&second.uid).await.is_ok(), "a fresh login has a fresh lifetime");
    }

    a_uid_not_used_for_the_idle_timeout_is_refused_and_no_longer_holds_the_account: |reg| {
        use std::time::Duration;
        let idle = Duration::from_millis(400);
        let reg = reg.with_idle_timeout(Some(idle)).with_policy(Policy::DenyNew);
        let first = claimed(reg.login(ANN, "ann".into(), origin(1), None, false).await.unwrap());
        // Used halfway: the timeout counts from this use, on this instance and on any other
        // that shares the store (they read the use the store was told of).
        tokio::time::sleep(idle / 2).await;
        reg.check(&first.uid).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await; // the use reaches the store
        tokio::time::sleep(idle / 2 + Duration::from_millis(50)).await; // past login + idle
        assert!(reg.deadline(&first.uid).await.is_ok(), "still within idle of its last use");
        if reg.is_shared() {
            let other = Registry::shared(Arc::clone(&reg.store)).with_idle_timeout(Some(idle));
            assert!(other.deadline(&first.uid).await.is_ok(), "the use is shared");
        }
        // Looking (a push channel) is not using: the timeout runs out.
        let deadline = reg.deadline(&first.uid).await.unwrap().unwrap();
        tokio::time::sleep(idle).await;
        let Rejection::Idle { at, after } = refused(&reg, &first.uid).await.rejection else {
            panic!("not refused as idle");
        };
        assert_eq!((at, after), (deadline, idle));
        assert!(matches!(
            reg.watch(&first.uid).await.unwrap_err(),
            WatchRefused::Refused(Refused { rejection: Rejection::Idle { .. }, .. })
        ));
        // An idle tab does not keep the account under deny-new: a login replaces it.
        assert_eq!(reg.in_use(ANN, None, false).await.unwrap(), None);
        let second = claimed(reg.login(ANN, "ann".into(), origin(2), None, false).await.unwrap());
        // It ended as expired, when it timed out, on every instance: not superseded.
        assert!(second.superseded.is_empty(), "{:?}", second.superseded);
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Expired { at: deadline });
        if reg.is_shared() {
            let other = Registry::shared(Arc::clone(&reg.store)).with_idle_timeout(Some(idle));
            assert_eq!(refused(&other, &first.uid).await.rejection, Rejection::Expired { at: deadline });
        }
        assert!(reg.check(&second.uid).await.is_ok());
    }

    racing_logins_under_deny_new_let_exactly_one_in: |reg| {
        let reg = reg.with_policy(Policy::DenyNew);
        let tasks: Vec<_> = (0..32u8)
            .map(|n| {
                let reg = reg.clone();
                tokio::spawn(async move { reg.login(ANN, "ann".into(), origin(n), None, false).await.unwrap() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Claim::Claimed(claimed) => {
                    assert!(claimed.superseded.is_empty(), "deny-new never supersedes");
                    admitted += 1;
                }
                Claim::InUse { .. } => {}
                Claim::NotAllowed => panic!("not allowed"),
            }
        }
        assert_eq!(admitted, 1, "exactly one of 32 racing logins is let in");
    }

    max_tabs_keeps_n_tabs_and_a_login_beyond_them_supersedes_the_oldest: |reg| {
        let reg = reg.with_policy(Policy::MaxTabs(2));
        let login = |n| reg.login(ANN, "ann".into(), origin(n), None, false);
        let first = claimed(login(1).await.unwrap());
        let second = claimed(login(2).await.unwrap());
        assert!(second.superseded.is_empty(), "two tabs are allowed");
        let (_, mut first_watch) = reg.watch(&first.uid).await.unwrap();
        let (_, mut second_watch) = reg.watch(&second.uid).await.unwrap();
        // The third ends the oldest, and only it; its watch is told at once.
        let third = claimed(login(3).await.unwrap());
        assert_eq!(third.superseded.len(), 1);
        assert_eq!(third.superseded[0].0, first.uid.digest());
        assert!(matches!(first_watch.ended().await, Rejection::Superseded { .. }));
        assert!(reg.check(&second.uid).await.is_ok());
        assert!(reg.check(&third.uid).await.is_ok());
        assert!(not_yet(&mut second_watch).await, "the tab still within the limit is not woken");
        // "Use here" is a login like any other: it ends the oldest of the two, the second.
        let here = claimed(reg.claim_if(ANN, "ann".into(), origin(4), None, false, || async { Ok(true) }).await.unwrap());
        assert_eq!(here.superseded.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [second.uid.digest()]);
        // An account of its own policy (latest-wins) keeps one tab whatever the server's.
        let own = claimed(reg.login(ANN, "ann".into(), origin(5), Some(Policy::LatestWins), false).await.unwrap());
        assert_eq!(own.superseded.len(), 2, "both tabs beyond the account's limit end");
        assert!(reg.check(&own.uid).await.is_ok());
        assert!(reg.check(&third.uid).await.is_err());
    }

    racing_logins_under_max_tabs_leave_exactly_n_accepted: |reg| {
        let reg = reg.with_policy(Policy::MaxTabs(3));
        let claims = racing_logins(&reg, 48).await;
        assert_eq!(accepted(&reg, &claims).await, 3, "exactly three of 48 racing logins stay active");
        let superseded: usize = claims.iter().map(|c| c.superseded.len()).sum();
        assert_eq!(superseded, 45, "each of the others is superseded exactly once");
        assert_eq!(reg.active_tabs().await.unwrap(), 3);
    }

    an_account_looping_logins_keeps_a_bounded_history: |reg| {
        let mut uids = Vec::new();
        for n in 0..(MAX_ENDED_PER_ACCOUNT + 8) {
            uids.push(reg.claim(ANN, "ann".into(), origin(n as u8)).await.unwrap().uid);
            // Distinct instants, so that "oldest" is also "first".
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let bob = reg.claim(BOB, "bob".into(), origin(1)).await.unwrap();
        let bounded = (!reg.is_shared()).then_some((2, MAX_ENDED_PER_ACCOUNT));
        assert_eq!(reg.counts(), bounded, "memory is bounded");
        // The newest ended UIDs still say why; the oldest are forgotten.
        let (forgotten, kept) = uids.split_at(uids.len() - 1 - MAX_ENDED_PER_ACCOUNT);
        for uid in forgotten {
            assert_eq!(refused(&reg, uid).await.rejection, Rejection::Unknown);
        }
        for uid in &kept[..MAX_ENDED_PER_ACCOUNT] {
            assert!(matches!(refused(&reg, uid).await.rejection, Rejection::Superseded { .. }));
        }
        assert!(reg.check(kept.last().unwrap()).await.is_ok());
        assert!(reg.check(&bob.uid).await.is_ok());
        // And so is the store: a reload finds the same bounded history.
        let reloaded = Registry::load(Arc::clone(&reg.store), DEFAULT_HISTORY).await.unwrap();
        assert_eq!(reloaded.counts(), Some((2, MAX_ENDED_PER_ACCOUNT)));
    }

    racing_logins_leave_exactly_one_uid_accepted: |reg| {
        let claims = racing_logins(&reg, 64).await;
        assert_eq!(accepted(&reg, &claims).await, 1, "exactly one of 64 racing logins may stay active");
        let superseded_total: usize = claims.iter().map(|c| c.superseded.len()).sum();
        assert_eq!(superseded_total, 63, "each loser is superseded exactly once");
        // And the store agrees with memory: a registry reloaded from it accepts the same one.
        let reloaded = Registry::load(Arc::clone(&reg.store), DEFAULT_HISTORY).await.unwrap();
        for claim in &claims {
            let (here, there) = (reg.check(&claim.uid).await, reloaded.check(&claim.uid).await);
            assert_eq!(here.is_ok(), there.is_ok());
        }
    }
}

// What only a registry that is its store's only writer keeps: sessions in memory.
on_every_store! { [Mode::Memory];
    memory_forgets_what_no_uid_needs: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(0)).await.unwrap();
        for n in 1..10 {
            reg.claim(ANN, "ann".into(), origin(n)).await.unwrap();
        }
        let last = reg.claim(ANN, "ann".into(), origin(10)).await.unwrap();
        let bob = reg.claim(BOB, "bob".into(), origin(11)).await.unwrap();
        assert_eq!(memory(&reg).accounts_in_memory(), 2);
        // Once every UID has ended and been pruned, nothing of either account is left.
        reg.release(last.uid).await.unwrap();
        reg.release(bob.uid).await.unwrap();
        // A refusal still being answered while its UID is pruned does not keep anything.
        // (The cutoff is past every end: logins a burst issues in one millisecond are dated
        // a millisecond apart, a little ahead of the clock.)
        let refusal = refused(&reg, &first.uid).await;
        reg.prune(UnixMillis::from_millis(UnixMillis::now().as_millis() + 60_000)).await.unwrap();
        drop(refusal);
        assert_eq!(reg.counts(), Some((0, 0)));
        assert_eq!(memory(&reg).accounts_in_memory(), 0);
        assert_eq!(refused(&reg, &first.uid).await.rejection, Rejection::Unknown);
    }

    a_reloaded_registry_names_the_accounts_with_uids_and_keeps_no_other: |reg| {
        let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        let reloaded = Registry::load(Arc::clone(&reg.store), DEFAULT_HISTORY).await.unwrap();
        // Bob and Cyd have accounts but no UID: memory holds nothing of them.
        assert_eq!(memory(&reloaded).accounts_in_memory(), 1);
        assert_eq!(reloaded.username(ANN).as_deref(), Some("ann"));
        assert_eq!(reloaded.username(BOB), None);
        let refused = refused(&reloaded, &first.uid).await;
        assert_eq!(refused.username.as_deref(), Some("ann"));
        assert_eq!(
            refused.rejection,
            Rejection::Superseded { at: second.session.issued_at, by: origin(2) }
        );
        assert!(reloaded.check(&second.uid).await.is_ok());
    }
}

#[tokio::test]
async fn a_reopened_sqlite_file_keeps_active_and_superseded_uids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solotab.db");
    let (first, second, third) = {
        let reg = registry_on(seeded(SqliteStore::open(&path).unwrap()).await).await;
        let id = ANN;
        let first = reg.claim(id, "ann".into(), origin(1)).await.unwrap();
        let _second = reg.claim(id, "ann".into(), origin(2)).await.unwrap();
        let third = reg.claim(id, "ann".into(), origin(3)).await.unwrap();
        reg.release(third.uid).await.unwrap();
        let fourth = reg.claim(id, "ann".into(), origin(4)).await.unwrap();
        (first, fourth, third)
    };
    let reg = registry_on(Arc::new(SqliteStore::open(&path).unwrap())).await;
    assert!(matches!(
        refused(&reg, &first.uid).await.rejection,
        Rejection::Superseded { .. }
    ));
    assert!(matches!(
        refused(&reg, &third.uid).await.rejection,
        Rejection::LoggedOut { .. }
    ));
    let session = reg.check(&second.uid).await.unwrap();
    assert_eq!(
        (session.account, session.issued_at),
        (second.session.account, second.session.issued_at)
    );
}

#[tokio::test]
async fn a_superseded_tab_is_told_by_whom_from_the_store_and_fails_closed_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solotab.db");
    let reg = registry_on(seeded(SqliteStore::open(&path).unwrap()).await).await;
    let first = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
    let second = reg.claim(ANN, "ann".into(), origin(2)).await.unwrap();
    let third = reg.claim(ANN, "ann".into(), origin(3)).await.unwrap();
    reg.release(third.uid).await.unwrap();
    // Memory keeps when and why; the newer login's origin is the store's.
    assert_eq!(
        refused(&reg, &first.uid).await.rejection,
        Rejection::Superseded {
            at: second.session.issued_at,
            by: origin(2)
        }
    );
    // The store can no longer be read: the superseded UID is neither served nor told a
    // made-up origin; what memory knows in full is still answered.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE sessions RENAME TO gone")
        .unwrap();
    assert!(matches!(
        reg.check(&first.uid).await,
        Err(NotAccepted::Store(_))
    ));
    assert!(matches!(
        refused(&reg, &third.uid).await.rejection,
        Rejection::LoggedOut { .. }
    ));
    assert!(matches!(
        refused(&reg, &Uid::generate()).await.rejection,
        Rejection::Unknown
    ));
    assert!(matches!(
        reg.watch(&first.uid).await,
        Err(WatchRefused::Store(_))
    ));
}

#[tokio::test]
async fn a_second_open_of_one_file_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solotab.db");
    let first = SqliteStore::open(&path).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, crate::store::OpenError::Locked { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("already using"), "{err}");
    drop(first);
    SqliteStore::open(&path).unwrap();
}

/// The reference model: what latest-wins means, in the simplest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelState {
    Active,
    SupersededBy(usize),
    LoggedOut,
    Revoked,
}

#[derive(Debug, Clone)]
enum Op {
    /// A login of account 0, 1 or 2; `true`: asking to take over (matters under deny-new).
    Claim(u8, bool),
    Check(usize),
    Release(usize),
    /// Signing account 0, 1 or 2's tabs out from elsewhere: all, or the one issued `n`th.
    Revoke(u8, Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, any::<bool>()).prop_map(|(account, takeover)| Op::Claim(account, takeover)),
        (0usize..12).prop_map(Op::Check),
        (0usize..12).prop_map(Op::Release),
        (0u8..3, proptest::option::of(0usize..12)).prop_map(|(a, only)| Op::Revoke(a, only)),
    ]
}

/// What the registry answered, reduced to what the model can predict.
fn observed(result: Result<Session, NotAccepted>, issued: &[Claimed]) -> Option<ModelState> {
    let refused = match result {
        Ok(_) => return Some(ModelState::Active),
        Err(NotAccepted::Refused(refused)) => refused,
        Err(NotAccepted::Store(e)) => panic!("the store failed: {e}"),
    };
    match refused.rejection {
        Rejection::Unknown => None,
        Rejection::LoggedOut { .. } => Some(ModelState::LoggedOut),
        Rejection::Revoked { .. } => Some(ModelState::Revoked),
        // The model's registries have no lifetime.
        Rejection::Expired { .. } | Rejection::Idle { .. } => {
            panic!("a UID expired without a timeout")
        }
        Rejection::Superseded { at, by } => {
            // Identify the superseding login by its time and origin.
            let index = issued
                .iter()
                .position(|c| c.session.issued_at == at && c.session.origin == by)
                .expect("superseded by a login that was issued");
            Some(ModelState::SupersededBy(index))
        }
    }
}

fn sorted_uids(mut uids: Vec<Uid>) -> Vec<Uid> {
    uids.sort_by_key(Uid::digest);
    uids
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::LatestWins),
        Just(Policy::DenyNew),
        Just(Policy::MaxTabs(2)),
        Just(Policy::MaxTabs(3)),
    ]
}

fn run_model_case<S: SessionStore + AccountStore>(
    mode: Mode,
    policy: Policy,
    store: impl Future<Output = S>,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reg = registry_in(mode, seeded(store.await).await)
            .await
            .with_policy(policy);
        let mut issued: Vec<Claimed> = Vec::new();
        let mut model: Vec<ModelState> = Vec::new();
        // Each account's active logins, oldest first.
        let mut current: HashMap<u8, Vec<usize>> = HashMap::new();
        // UIDs beyond those issued are unknown ones.
        let unknown: Vec<Uid> = (0..12).map(|_| Uid::generate()).collect();
        let uid_at = |issued: &[Claimed], i: usize| issued.get(i).map_or(unknown[i], |c| c.uid);
        for op in ops {
            match *op {
                Op::Claim(account, takeover) => {
                    // Distinct origins per login so a supersession names exactly one login.
                    let n = u8::try_from(issued.len()).unwrap();
                    let username = USERNAMES[usize::from(account)].into();
                    let id = AccountId(i64::from(account) + 1);
                    let claim = reg
                        .login(id, username, origin(n), None, takeover)
                        .await
                        .unwrap();
                    let active = current.entry(account).or_default();
                    let refused = policy == Policy::DenyNew && !takeover && !active.is_empty();
                    let claimed = match claim {
                        Claim::Claimed(claimed) => {
                            prop_assert!(!refused, "deny-new let a login past an active tab");
                            claimed
                        }
                        Claim::InUse { since } => {
                            prop_assert!(refused, "a login was refused with no reason to");
                            prop_assert_eq!(since, issued[active[0]].session.issued_at);
                            continue;
                        }
                        Claim::NotAllowed => {
                            prop_assert!(false, "an unconditional login was not allowed");
                            unreachable!()
                        }
                    };
                    let index = issued.len();
                    // The oldest beyond the policy's limit, the new login included.
                    let ending = (active.len() + 1).saturating_sub(policy.tabs());
                    let expected_superseded: Vec<usize> = active.drain(..ending).collect();
                    let mut superseded: Vec<Uid> = Vec::new();
                    for (digest, _) in &claimed.superseded {
                        let i = issued.iter().position(|c| c.uid.digest() == *digest);
                        superseded.push(issued[i.expect("superseded an issued uid")].uid);
                    }
                    let expected: Vec<Uid> =
                        expected_superseded.iter().map(|&i| issued[i].uid).collect();
                    prop_assert_eq!(sorted_uids(superseded), sorted_uids(expected));
                    for old in expected_superseded {
                        model[old] = ModelState::SupersededBy(index);
                    }
                    active.push(index);
                    issued.push(claimed);
                    model.push(ModelState::Active);
                }
                Op::Check(i) => {
                    let uid = uid_at(&issued, i);
                    let got = observed(reg.check(&uid).await, &issued);
                    prop_assert_eq!(got, model.get(i).copied());
                    // The store's own answer for the UID, as any instance reads it, agrees.
                    let read = Registry::shared(Arc::clone(&reg.store)).check(&uid).await;
                    prop_assert_eq!(observed(read, &issued), model.get(i).copied());
                }
                Op::Revoke(account, only) => {
                    let id = AccountId(i64::from(account) + 1);
                    let only_uid = only.map(|i| uid_at(&issued, i).digest());
                    let ended = reg.revoke(id, only_uid.map(|uid| vec![uid])).await.unwrap();
                    let active = current.entry(account).or_default();
                    let expected: Vec<usize> = active
                        .iter()
                        .copied()
                        .filter(|&i| only.is_none_or(|only| only == i))
                        .collect();
                    let expected_uids: Vec<Uid> = expected.iter().map(|&i| issued[i].uid).collect();
                    let ended_uids: Vec<Uid> = ended
                        .iter()
                        .map(|digest| {
                            issued
                                .iter()
                                .find(|c| c.uid.digest() == *digest)
                                .unwrap()
                                .uid
                        })
                        .collect();
                    prop_assert_eq!(sorted_uids(ended_uids), sorted_uids(expected_uids));
                    active.retain(|i| !expected.contains(i));
                    for i in expected {
                        model[i] = ModelState::Revoked;
                    }
                }
                Op::Release(i) => {
                    let result = reg.release(uid_at(&issued, i)).await;
                    match model.get(i).copied() {
                        Some(ModelState::Active) => {
                            prop_assert!(result.is_ok());
                            model[i] = ModelState::LoggedOut;
                            for active in current.values_mut() {
                                active.retain(|idx| *idx != i);
                            }
                        }
                        expected => match result {
                            Err(NotAccepted::Refused(refused)) => {
                                prop_assert_eq!(
                                    observed(Err(NotAccepted::Refused(refused)), &issued),
                                    expected
                                );
                            }
                            other => {
                                prop_assert!(false, "release of a non-active uid gave {other:?}")
                            }
                        },
                    }
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_registry_on_the_memory_store_follows_the_model(policy in policy(), ops in proptest::collection::vec(op(), 1..40)) {
        for mode in BOTH {
            run_model_case(mode, policy, async { MemoryStore::new() }, &ops)?;
        }
    }

    #[test]
    fn the_registry_on_sqlite_follows_the_model(policy in policy(), ops in proptest::collection::vec(op(), 1..40)) {
        for mode in BOTH {
            run_model_case(mode, policy, async { SqliteStore::open_in_memory().unwrap() }, &ops)?;
        }
    }
}

proptest! {
    // Each case migrates a fresh schema: fewer cases than in memory, the same properties.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_registry_on_redis_follows_the_model(policy in policy(), ops in proptest::collection::vec(op(), 1..40)) {
        for mode in [Mode::Shared, Mode::Memory] {
            run_model_case(mode, policy, crate::store::redis_test_store(), &ops)?;
        }
    }

    #[test]
    fn the_registry_on_postgres_follows_the_model(policy in policy(), ops in proptest::collection::vec(op(), 1..40)) {
        // As every instance of a deployment runs it, and as one server alone.
        for mode in [Mode::Shared, Mode::Memory] {
            run_model_case(mode, policy, crate::store::postgres_test_store(), &ops)?;
        }
    }
}

/// Two instances sharing one store: what each accepts, and what each is told.
mod instances {
    use tokio::sync::mpsc;

    use super::*;
    use crate::store::{Ending, FanOut};

    /// Two shared registries on one store, as two servers on one database.
    async fn two_on(store: Arc<dyn SessionStore>) -> (Registry, Registry) {
        (
            Registry::shared(Arc::clone(&store)),
            Registry::shared(store),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_on_one_instance_is_refused_on_both_once_another_logs_in() {
        for store in stores().await {
            let (a, b) = two_on(store).await;
            let first = a.claim(ANN, "ann".into(), origin(1)).await.unwrap();
            assert!(
                b.check(&first.uid).await.is_ok(),
                "any instance accepts the uid"
            );
            let second = b.claim(ANN, "ann".into(), origin(2)).await.unwrap();
            assert_eq!(second.superseded.len(), 1);
            for instance in [&a, &b] {
                let refusal = refused(instance, &first.uid).await;
                let expected = Rejection::Superseded {
                    at: second.session.issued_at,
                    by: origin(2),
                };
                assert_eq!(refusal.rejection, expected);
                assert!(instance.check(&second.uid).await.is_ok());
            }
            assert!(a.is_active(ANN).await.unwrap());
            // A logout on one is a logout on both.
            a.release(second.uid).await.unwrap();
            assert!(matches!(
                refused(&b, &second.uid).await.rejection,
                Rejection::LoggedOut { .. }
            ));
            assert!(!b.is_active(ANN).await.unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_logins_on_two_instances_leave_exactly_one_uid_accepted_by_both() {
        for store in stores().await {
            let (a, b) = two_on(store).await;
            let tasks: Vec<_> = (0..64u8)
                .map(|n| {
                    let instance = if n % 2 == 0 { a.clone() } else { b.clone() };
                    tokio::spawn(async move {
                        instance.claim(ANN, "ann".into(), origin(n)).await.unwrap()
                    })
                })
                .collect();
            let mut claims = Vec::new();
            for task in tasks {
                claims.push(task.await.unwrap());
            }
            for instance in [&a, &b] {
                let mut accepted = 0;
                for claim in &claims {
                    accepted += usize::from(instance.check(&claim.uid).await.is_ok());
                }
                assert_eq!(accepted, 1, "exactly one of 64 racing logins stays active");
            }
            let superseded: usize = claims.iter().map(|c| c.superseded.len()).sum();
            assert_eq!(superseded, 63, "each loser is superseded exactly once");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn use_here_never_overtakes_a_password_login_on_another_instance_between_its_check_and_claim()
     {
        for store in stores().await {
            let (a, b) = two_on(store).await;
            let first = a.claim(ANN, "ann".into(), origin(1)).await.unwrap();
            // "Use here" on A: its device is valid when checked; right after, a password login
            // on B ends the device and claims. When A looks again, the device is gone.
            let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let login = Arc::new(tokio::sync::Mutex::new(None));
            let refused = a
                .claim_if(ANN, "ann".into(), origin(2), None, true, {
                    let (checks, login, b) = (Arc::clone(&checks), Arc::clone(&login), b.clone());
                    move || {
                        let (checks, login, b) =
                            (Arc::clone(&checks), Arc::clone(&login), b.clone());
                        async move {
                            if checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                                return Ok(false);
                            }
                            let claimed = b.claim(ANN, "ann".into(), origin(3)).await?;
                            *login.lock().await = Some(claimed);
                            Ok(true)
                        }
                    }
                })
                .await
                .unwrap();
            assert!(
                matches!(refused, Claim::NotAllowed),
                "Use here claimed over a newer password login"
            );
            assert_eq!(
                checks.load(std::sync::atomic::Ordering::SeqCst),
                2,
                "it looked again"
            );
            let login = login.lock().await.take().unwrap();
            assert!(
                a.check(&login.uid).await.is_ok(),
                "the password login stays active"
            );
            let superseded = refused_by(&b, &first.uid).await;
            assert_eq!(
                superseded,
                Rejection::Superseded {
                    at: login.session.issued_at,
                    by: origin(3)
                }
            );
            // Undisturbed, the same conditional claim goes through.
            let again = a
                .claim_if(ANN, "ann".into(), origin(4), None, true, || async {
                    Ok(true)
                })
                .await
                .unwrap();
            assert!(b.check(&claimed(again).uid).await.is_ok());
        }
    }

    async fn refused_by(registry: &Registry, uid: &Uid) -> Rejection {
        refused(registry, uid).await.rejection
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notice_tells_the_watch_of_that_uid_and_a_resubscription_rechecks_every_watch() {
        for store in stores().await {
            let (a, b) = two_on(store).await;
            let (notices, fan_out) = mpsc::channel(16);
            tokio::spawn({
                let a = a.clone();
                async move { a.follow(fan_out).await }
            });
            let ann = a.claim(ANN, "ann".into(), origin(1)).await.unwrap();
            let bob = a.claim(BOB, "bob".into(), origin(2)).await.unwrap();
            let (_, mut ann_watch) = a.watch(&ann.uid).await.unwrap();
            let (_, mut bob_watch) = a.watch(&bob.uid).await.unwrap();

            // B supersedes Ann's tab; A hears of it by a notice naming the uid.
            let newer = b.claim(ANN, "ann".into(), origin(3)).await.unwrap();
            assert!(
                not_yet(&mut ann_watch).await,
                "nothing tells A but the fan-out"
            );
            notices
                .send(FanOut::Ended(ann.uid.digest(), None))
                .await
                .unwrap();
            let expected = Rejection::Superseded {
                at: newer.session.issued_at,
                by: origin(3),
            };
            assert_eq!(ann_watch.ended().await, expected);

            // A notice for a uid that is still active (or not watched here) changes nothing.
            notices
                .send(FanOut::Ended(bob.uid.digest(), None))
                .await
                .unwrap();
            notices
                .send(FanOut::Ended(Uid::generate().digest(), None))
                .await
                .unwrap();
            assert!(not_yet(&mut bob_watch).await);

            // B logs Bob out while A's subscription is down (no notice ever comes); when it
            // is back, A reads every watched uid again and tells Bob's tab.
            b.release(bob.uid).await.unwrap();
            assert!(not_yet(&mut bob_watch).await);
            notices.send(FanOut::Subscribed).await.unwrap();
            assert!(matches!(
                bob_watch.ended().await,
                Rejection::LoggedOut { .. }
            ));
            assert_eq!(a.watched(), 0);

            // A notice that says when and why is told as it is, with no store read between.
            let cyd = b
                .claim(AccountId(3), "cyd".into(), origin(4))
                .await
                .unwrap();
            let (_, mut cyd_watch) = a.watch(&cyd.uid).await.unwrap();
            let at = UnixMillis::from_millis(cyd.session.issued_at.as_millis() + 1);
            let ending = Ending {
                at,
                reason: EndReason::LoggedOut,
            };
            notices
                .send(FanOut::Ended(cyd.uid.digest(), Some(ending)))
                .await
                .unwrap();
            assert_eq!(cyd_watch.ended().await, Rejection::LoggedOut { at });
        }
    }

    /// Two instances on `shared`, the first following `fan_out`: an end made on the second
    /// reaches the first's watch with nothing but the store's own fan-out.
    async fn an_end_reaches_the_other_instance(
        shared: Arc<dyn SessionStore>,
        fan_out: mpsc::Receiver<FanOut>,
    ) {
        let (a, b) = two_on(shared).await;
        tokio::spawn({
            let a = a.clone();
            async move { a.follow(fan_out).await }
        });
        let ann = a.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let (_, mut watch) = a.watch(&ann.uid).await.unwrap();
        let newer = b.claim(ANN, "ann".into(), origin(2)).await.unwrap();
        let told = tokio::time::timeout(std::time::Duration::from_secs(10), watch.ended())
            .await
            .expect("the fan-out told A's watch");
        assert_eq!(
            told,
            Rejection::Superseded {
                at: newer.session.issued_at,
                by: origin(2)
            }
        );
        // A sign-out from elsewhere made on B reaches a tab watched on A the same way.
        let (_, mut watch) = a.watch(&newer.uid).await.unwrap();
        assert_eq!(b.revoke(ANN, None).await.unwrap(), [newer.uid.digest()]);
        let told = tokio::time::timeout(std::time::Duration::from_secs(10), watch.ended())
            .await
            .expect("the fan-out told A's watch of the revocation");
        assert!(matches!(told, Rejection::Revoked { .. }), "{told:?}");
    }

    #[tokio::test]
    async fn on_postgres_an_end_on_one_instance_reaches_the_others_watch_by_itself() {
        let store = Arc::new(crate::store::postgres_test_store().await);
        let fan_out = store.listen();
        an_end_reaches_the_other_instance(seeded_arc(store).await, fan_out).await;
    }

    #[tokio::test]
    async fn on_redis_an_end_on_one_instance_reaches_the_others_watch_by_itself() {
        let store = Arc::new(crate::store::redis_test_store().await);
        let fan_out = store.sessions.listen();
        an_end_reaches_the_other_instance(seeded_arc(store).await, fan_out).await;
    }

    /// [`seeded`], for a store the test keeps a handle on.
    async fn seeded_arc<S: SessionStore + AccountStore>(store: Arc<S>) -> Arc<dyn SessionStore> {
        for name in USERNAMES {
            store
                .create(name, "not-a-real-hash", UnixMillis::now())
                .await
                .unwrap();
        }
        store
    }
}

/// Timeouts of hours, with tokio's clock paused and moved on by hand.
mod paused {
    use std::time::Duration;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    async fn registry(idle: Option<Duration>, lifetime: Option<Duration>) -> Registry {
        registry_on(seeded(MemoryStore::new()).await)
            .await
            .with_idle_timeout(idle)
            .with_lifetime(lifetime)
    }

    /// Memory keeps a last use in tenths of a second, rounded up: a use between two tenths
    /// must never bring the idle timeout forward, and may push it back by less than a tenth.
    #[tokio::test(start_paused = true)]
    async fn a_use_between_two_tenths_of_a_second_never_makes_a_tab_idle_early() {
        let reg = registry(Some(30 * MINUTE), None).await;
        let uid = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap().uid;
        tokio::time::advance(Duration::from_millis(1_234)).await;
        reg.check(&uid).await.unwrap();
        let last_use = UnixMillis::now().as_millis();
        // One millisecond before the exact deadline: still within the timeout.
        tokio::time::advance(30 * MINUTE - Duration::from_millis(1)).await;
        assert!(reg.deadline(&uid).await.is_ok(), "idle before its time");
        tokio::time::advance(Duration::from_millis(100)).await;
        let Rejection::Idle { at, .. } = refused(&reg, &uid).await.rejection else {
            panic!("not refused as idle a tenth of a second after its deadline");
        };
        let late = at.as_millis() - (last_use + 30 * 60 * 1000);
        assert!((0..100).contains(&late), "deadline moved by {late} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_tab_used_within_thirty_minutes_stays_and_one_idle_longer_is_refused() {
        let reg = registry(Some(30 * MINUTE), None).await;
        let uid = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap().uid;
        for _ in 0..10 {
            // Used every 29 minutes for almost five hours: never idle.
            tokio::time::advance(29 * MINUTE).await;
            reg.check(&uid).await.unwrap();
        }
        let last_use = UnixMillis::now();
        tokio::time::advance(30 * MINUTE - Duration::from_secs(1)).await;
        assert!(reg.deadline(&uid).await.is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        let expected = UnixMillis::from_millis(last_use.as_millis() + 30 * 60 * 1000);
        assert_eq!(
            refused(&reg, &uid).await.rejection,
            Rejection::Idle {
                at: expected,
                after: 30 * MINUTE
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_the_sooner_of_the_lifetime_and_the_idle_timeout() {
        let reg = registry(Some(30 * MINUTE), Some(60 * MINUTE)).await;
        let claimed = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let issued = claimed.session.issued_at.as_millis();
        let at = |minutes: i64| Some(UnixMillis::from_millis(issued + minutes * 60_000));
        assert_eq!(reg.deadline(&claimed.uid).await.unwrap(), at(30));
        tokio::time::advance(20 * MINUTE).await;
        reg.check(&claimed.uid).await.unwrap();
        assert_eq!(
            reg.deadline(&claimed.uid).await.unwrap(),
            at(50),
            "moved by the use"
        );
        tokio::time::advance(20 * MINUTE).await;
        reg.check(&claimed.uid).await.unwrap();
        assert_eq!(
            reg.deadline(&claimed.uid).await.unwrap(),
            at(60),
            "the lifetime comes first"
        );
        tokio::time::advance(20 * MINUTE).await;
        assert_eq!(
            refused(&reg, &claimed.uid).await.rejection,
            Rejection::Expired {
                at: at(60).unwrap()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_listed_tab_says_when_it_timed_out_by_its_last_use_or_its_lifetime() {
        let reg = registry(Some(30 * MINUTE), Some(60 * MINUTE)).await;
        let claimed = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap();
        let issued = claimed.session.issued_at.as_millis();
        let at = |minutes: i64| Some(UnixMillis::from_millis(issued + minutes * 60_000));
        let timed_out = |tabs: Vec<TabDetails>| reg.timed_out_at(&tabs[0]);
        assert_eq!(timed_out(reg.tabs(ANN).await.unwrap()), None);
        // Used at 20 minutes (memory knows; the store need not): not timed out at 40.
        tokio::time::advance(20 * MINUTE).await;
        reg.check(&claimed.uid).await.unwrap();
        tokio::time::advance(20 * MINUTE).await;
        assert_eq!(timed_out(reg.tabs(ANN).await.unwrap()), None);
        // Idle since 20: timed out at 50, as the admin listing says too.
        tokio::time::advance(15 * MINUTE).await;
        assert_eq!(timed_out(reg.tabs(ANN).await.unwrap()), at(50));
        let page = reg.all_tabs(None, 0, 10).await.unwrap();
        assert_eq!(reg.timed_out_at(&page.tabs[0].2), at(50));
        // A lifetime that ends first is the answer.
        let lifetime_only = registry(None, Some(60 * MINUTE)).await;
        let claimed = lifetime_only
            .claim(ANN, "ann".into(), origin(1))
            .await
            .unwrap();
        let issued = claimed.session.issued_at.as_millis();
        tokio::time::advance(61 * MINUTE).await;
        let tabs = lifetime_only.tabs(ANN).await.unwrap();
        assert_eq!(
            lifetime_only.timed_out_at(&tabs[0]),
            Some(UnixMillis::from_millis(issued + 60 * 60_000))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_out_tab_ends_as_expired_at_the_next_sign_in_and_holds_no_place() {
        let reg = registry(Some(30 * MINUTE), None)
            .await
            .with_policy(Policy::MaxTabs(2));
        let login = |n: u8| {
            let reg = reg.clone();
            async move {
                match reg.login(ANN, "ann".into(), origin(n), None, false).await {
                    Ok(Claim::Claimed(claimed)) => claimed,
                    other => panic!("a max-tabs login is not refused: {other:?}"),
                }
            }
        };
        let idle = login(1).await;
        let timed_out_at =
            UnixMillis::from_millis(idle.session.issued_at.as_millis() + 30 * 60_000);
        tokio::time::advance(20 * MINUTE).await;
        let busy = login(2).await;
        tokio::time::advance(20 * MINUTE).await;
        reg.check(&busy.uid).await.unwrap();
        // The idle tab timed out at 30 minutes; a third sign-in ends it, not the busy tab
        // (the oldest that is live), and supersedes nothing.
        let third = login(3).await;
        assert!(third.superseded.is_empty(), "{:?}", third.superseded);
        reg.check(&busy.uid).await.unwrap();
        reg.check(&third.uid).await.unwrap();
        assert_eq!(
            refused(&reg, &idle.uid).await.rejection,
            Rejection::Expired { at: timed_out_at }
        );
        let store = reg.store.lookup(idle.uid.digest()).await.unwrap();
        assert!(
            matches!(store, Some(Stored::Ended(ref e, _)) if e.reason == EndReason::Expired && e.ended_at == timed_out_at),
            "{store:?}"
        );
        assert_eq!(reg.tabs(ANN).await.unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_server_keeps_counting_from_the_last_use_it_stored() {
        let store = seeded(MemoryStore::new()).await;
        let idle = Some(30 * MINUTE);
        let reg = registry_on(Arc::clone(&store))
            .await
            .with_idle_timeout(idle);
        let uid = reg.claim(ANN, "ann".into(), origin(1)).await.unwrap().uid;
        tokio::time::advance(25 * MINUTE).await;
        reg.check(&uid).await.unwrap();
        tokio::task::yield_now().await; // the store write runs in the background
        tokio::time::advance(Duration::from_millis(10)).await;
        // A new process loads the store: 25 minutes after the last use it is still active,
        // where counting from the login would have ended it.
        tokio::time::advance(25 * MINUTE).await;
        let restarted = registry_on(store).await.with_idle_timeout(idle);
        assert!(restarted.deadline(&uid).await.is_ok());
        tokio::time::advance(6 * MINUTE).await;
        assert!(matches!(
            refused(&restarted, &uid).await.rejection,
            Rejection::Idle { .. }
        ));
    }
}
