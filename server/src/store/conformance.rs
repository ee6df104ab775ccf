//! One suite, run against every store: they must all mean the same thing.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::*;
use crate::uid::Uid;

fn session(account: i64, issued_at: i64, n: u16) -> ActiveSession {
    ActiveSession {
        account: AccountId(account),
        username: if account == 1 {
            "Ann".into()
        } else {
            "bob".into()
        },
        issued_at: UnixMillis::from_millis(issued_at),
        origin: LoginOrigin {
            user_agent: n.is_multiple_of(2).then(|| format!("agent {n}").into()),
            ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)),
        },
    }
}

/// A device of `account` created at `created` (its browser `session(.., n)`'s), valid
/// until `expires`.
fn new_device(account: i64, hash: DeviceHash, created: i64, expires: i64, n: u16) -> NewDevice {
    NewDevice {
        hash,
        account: AccountId(account),
        created_at: UnixMillis::from_millis(created),
        expires_at: UnixMillis::from_millis(expires),
        origin: session(account, created, n).origin,
    }
}

async fn with_accounts<S: AccountStore>(store: S) -> S {
    assert_eq!(
        store
            .create("Ann", "h1", UnixMillis::from_millis(1))
            .await
            .unwrap(),
        AccountId(1)
    );
    assert_eq!(
        store
            .create("bob", "h2", UnixMillis::from_millis(2))
            .await
            .unwrap(),
        AccountId(2)
    );
    store
}

#[test]
fn fan_out_notices_are_read_with_or_without_when_and_why() {
    let uid = Uid::generate().digest();
    let hex = uid.to_hex();
    assert_eq!(FanOut::parse_notice(&hex), Some(FanOut::Ended(uid, None)));
    let superseded = format!(
        r#"{{"uid":"{hex}","at":"1795788505123","reason":"superseded","ip":"2001:db8::7","ua":"agent 7"}}"#
    );
    let ending = Ending {
        at: UnixMillis::from_millis(1_795_788_505_123),
        reason: EndReason::Superseded {
            by: LoginOrigin {
                user_agent: Some("agent 7".into()),
                ip: "2001:db8::7".parse().unwrap(),
            },
        },
    };
    assert_eq!(
        FanOut::parse_notice(&superseded),
        Some(FanOut::Ended(uid, Some(ending)))
    );
    // Redis's cjson writes an empty table as {} and PostgreSQL a missing agent as null.
    let no_agent =
        format!(r#"{{"uid":"{hex}","at":"5","reason":"superseded","ip":"192.0.2.1","ua":null}}"#);
    let Some(FanOut::Ended(
        _,
        Some(Ending {
            reason: EndReason::Superseded { by },
            ..
        }),
    )) = FanOut::parse_notice(&no_agent)
    else {
        panic!("a superseded notice without a user agent")
    };
    assert_eq!(by.user_agent, None);
    let logged_out = format!(r#"{{"uid":"{hex}","at":"9","reason":"logged_out"}}"#);
    let ending = Ending {
        at: UnixMillis::from_millis(9),
        reason: EndReason::LoggedOut,
    };
    assert_eq!(
        FanOut::parse_notice(&logged_out),
        Some(FanOut::Ended(uid, Some(ending)))
    );
    // What cannot be read is no end at all, or an end whose why must be looked up.
    assert_eq!(FanOut::parse_notice("garbage"), None);
    assert_eq!(FanOut::parse_notice(r#"{"uid":"zz"}"#), None);
    let expired = format!(r#"{{"uid":"{hex}","at":"12","reason":"expired"}}"#);
    let ending = Ending {
        at: UnixMillis::from_millis(12),
        reason: EndReason::Expired,
    };
    assert_eq!(
        FanOut::parse_notice(&expired),
        Some(FanOut::Ended(uid, Some(ending)))
    );
    let odd = format!(r#"{{"uid":"{hex}","at":"x","reason":"eaten"}}"#);
    assert_eq!(FanOut::parse_notice(&odd), Some(FanOut::Ended(uid, None)));
}

macro_rules! conformance {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn claim_supersedes_the_accounts_active_session_only() {
                let store = with_accounts($make).await;
                let (a1, a2, b1) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                assert!(store.claim(a1, &session(1, 10, 1)).await.unwrap().is_empty());
                assert!(store.claim(b1, &session(2, 11, 2)).await.unwrap().is_empty());
                let ended = store.claim(a2, &session(1, 20, 3)).await.unwrap();
                assert_eq!(ended.len(), 1);
                assert_eq!(ended[0].0, a1);
                assert_eq!(ended[0].1.ended_at, UnixMillis::from_millis(20));
                assert_eq!(ended[0].1.reason, EndReason::Superseded { by: session(1, 20, 3).origin });

                let snap = store.load(UnixMillis::from_millis(0)).await.unwrap();
                let mut active: Vec<_> = snap.active.iter().map(|(u, s)| (*u, s.account)).collect();
                active.sort_by_key(|(_, a)| *a);
                assert_eq!(active, vec![(a2, AccountId(1)), (b1, AccountId(2))]);
                assert_eq!(snap.ended.len(), 1);
                assert_eq!(snap.ended[0].0, a1);
                let loaded = SnapshotEnded { account: AccountId(1), ended_at: UnixMillis::from_millis(20), kind: EndKind::Superseded };
                assert_eq!(snap.ended[0].1, loaded, "loaded with when and why, not who");
                let named = |account| snap.usernames.iter().find(|(a, _)| *a == account).map(|(_, n)| &**n);
                assert_eq!(named(AccountId(1)), Some("Ann"), "every account with a session is named");
                assert_eq!(named(AccountId(2)), Some("bob"));
            }

            #[tokio::test]
            async fn lookup_tells_active_superseded_logged_out_and_unknown_apart() {
                let store = with_accounts($make).await;
                let (a1, a2) = (Uid::generate().digest(), Uid::generate().digest());
                let at = UnixMillis::from_millis;
                store.claim(a1, &session(1, 10, 1)).await.unwrap();
                store.claim(a2, &session(1, 20, 3)).await.unwrap();
                let ann: Arc<str> = "Ann".into();
                assert_eq!(
                    store.lookup(a2).await.unwrap(),
                    Some(Stored::Active(LoadedActive { account: AccountId(1), issued_at: at(20), last_seen: at(20) }, ann.clone()))
                );
                let superseded = LoadedEnded {
                    account: AccountId(1),
                    ended_at: at(20),
                    reason: EndReason::Superseded { by: session(1, 20, 3).origin },
                };
                assert_eq!(store.lookup(a1).await.unwrap(), Some(Stored::Ended(superseded, ann.clone())));
                store.release(a2, at(25)).await.unwrap();
                let logged_out = LoadedEnded { account: AccountId(1), ended_at: at(25), reason: EndReason::LoggedOut };
                assert_eq!(store.lookup(a2).await.unwrap(), Some(Stored::Ended(logged_out, ann)));
                assert_eq!(store.lookup(Uid::generate().digest()).await.unwrap(), None);
            }

            #[tokio::test]
            async fn release_ends_an_active_session_once_and_active_of_follows() {
                let store = with_accounts($make).await;
                let uid = Uid::generate().digest();
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), []);
                store.claim(uid, &session(1, 10, 1)).await.unwrap();
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), [uid]);
                assert_eq!(store.active_of(AccountId(2)).await.unwrap(), [], "only the account claimed");
                assert!(store.release(uid, UnixMillis::from_millis(15)).await.unwrap());
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), [], "a released session is not active");
                assert!(!store.release(uid, UnixMillis::from_millis(16)).await.unwrap());
                assert!(!store.release(Uid::generate().digest(), UnixMillis::from_millis(17)).await.unwrap());
                let snap = store.load(UnixMillis::from_millis(0)).await.unwrap();
                assert!(snap.active.is_empty());
                assert_eq!(snap.ended[0].1.kind, EndKind::LoggedOut);
                assert_eq!(snap.ended[0].1.ended_at, UnixMillis::from_millis(15));
            }

            #[tokio::test]
            async fn a_conditional_claim_replaces_only_the_session_it_expects() {
                let store = with_accounts($make).await;
                let (a1, a2, a3, stray) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                let only = |uids: &[UidDigest]| Replacing::Only(uids.to_vec());
                // Expecting an active session where there is none, or none where there is one:
                // nothing happens.
                assert_eq!(store.claim_replacing(a1, &session(1, 10, 1), 1, &only(&[stray])).await.unwrap(), None);
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), []);
                assert_eq!(store.claim_replacing(a1, &session(1, 10, 1), 1, &only(&[])).await.unwrap(), Some(vec![]));
                assert_eq!(store.claim_replacing(a2, &session(1, 20, 2), 1, &only(&[])).await.unwrap(), None);
                assert_eq!(store.claim_replacing(a2, &session(1, 20, 2), 1, &only(&[stray])).await.unwrap(), None);
                assert_eq!(store.claim_replacing(a2, &session(1, 20, 2), 1, &only(&[a1, stray])).await.unwrap(), None);
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), [a1], "still the first");
                assert_eq!(store.lookup(a2).await.unwrap(), None, "a refused claim leaves no trace");
                // Expecting the one that is active: it is superseded like any claim does.
                let ended = store.claim_replacing(a3, &session(1, 30, 3), 1, &only(&[a1])).await.unwrap().unwrap();
                assert_eq!(ended.len(), 1);
                assert_eq!(ended[0].0, a1);
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), [a3]);
                assert!(matches!(store.lookup(a1).await.unwrap(), Some(Stored::Ended(..))));
            }

            #[tokio::test]
            async fn a_claim_with_a_limit_of_n_tabs_ends_the_oldest_beyond_it() {
                let store = with_accounts($make).await;
                let uids: Vec<UidDigest> = (0..5).map(|_| Uid::generate().digest()).collect();
                let sorted = |mut v: Vec<UidDigest>| { v.sort(); v };
                let active = |account| { let store = &store; async move { sorted(store.active_of(AccountId(account)).await.unwrap()) } };
                // Three tabs allowed: the first three logins end nothing.
                for (n, uid) in uids[..3].iter().enumerate() {
                    let at = 10 * (n as i64 + 1);
                    let ended = store.claim_replacing(*uid, &session(1, at, n as u16), 3, &Replacing::Any).await.unwrap();
                    assert_eq!(ended, Some(vec![]));
                }
                assert_eq!(active(1).await, sorted(uids[..3].to_vec()));
                assert_eq!(store.count_active().await.unwrap(), 3);
                // The fourth ends the oldest (issued at 10), and says so.
                let ended = store.claim_replacing(uids[3], &session(1, 40, 3), 3, &Replacing::Any).await.unwrap().unwrap();
                assert_eq!(ended.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [uids[0]]);
                assert_eq!(ended[0].1.reason, EndReason::Superseded { by: session(1, 40, 3).origin });
                assert_eq!(active(1).await, sorted(uids[1..4].to_vec()));
                assert!(matches!(store.lookup(uids[0]).await.unwrap(), Some(Stored::Ended(..))));
                // Releasing one frees a place: the next login ends nothing.
                assert!(store.release(uids[2], UnixMillis::from_millis(45)).await.unwrap());
                assert_eq!(store.count_active().await.unwrap(), 2);
                let ended = store.claim_replacing(uids[4], &session(1, 50, 4), 3, &Replacing::Any).await.unwrap();
                assert_eq!(ended, Some(vec![]));
                assert_eq!(active(1).await, sorted(vec![uids[1], uids[3], uids[4]]));
                // A lower limit (the account's policy changed) ends every tab beyond it at once.
                let latest = Uid::generate().digest();
                let ended = store.claim(latest, &session(1, 60, 5)).await.unwrap();
                assert_eq!(sorted(ended.iter().map(|(u, _)| *u).collect()), sorted(vec![uids[1], uids[3], uids[4]]));
                assert_eq!(active(1).await, [latest]);
                assert_eq!(store.count_active().await.unwrap(), 1);
                assert_eq!(active(2).await, [], "other accounts are not touched");
            }

            #[tokio::test]
            async fn a_conditional_claim_with_several_tabs_requires_exactly_those_tabs() {
                let store = with_accounts($make).await;
                let (a1, a2, a3, a4) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                store.claim_replacing(a1, &session(1, 10, 1), 2, &Replacing::Any).await.unwrap().unwrap();
                store.claim_replacing(a2, &session(1, 20, 2), 2, &Replacing::Any).await.unwrap().unwrap();
                // Seeing only one of the two, or a third that is not there: refused.
                assert_eq!(store.claim_replacing(a3, &session(1, 30, 3), 2, &Replacing::Only(vec![a2])).await.unwrap(), None);
                assert_eq!(store.claim_replacing(a3, &session(1, 30, 3), 2, &Replacing::Only(vec![a1, a2, a4])).await.unwrap(), None);
                // Both, in either order: the oldest ends.
                let ended = store.claim_replacing(a3, &session(1, 30, 3), 2, &Replacing::Only(vec![a2, a1])).await.unwrap().unwrap();
                assert_eq!(ended.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [a1]);
            }

            #[tokio::test]
            async fn touch_records_when_an_active_session_was_last_used_and_never_goes_back() {
                let store = with_accounts($make).await;
                let (a1, a2) = (Uid::generate().digest(), Uid::generate().digest());
                let at = UnixMillis::from_millis;
                let last_seen = |stored: Option<Stored>| match stored {
                    Some(Stored::Active(active, _)) => active.last_seen,
                    other => panic!("not active: {other:?}"),
                };
                store.claim(a1, &session(1, 10, 1)).await.unwrap();
                assert_eq!(last_seen(store.lookup(a1).await.unwrap()), at(10), "its login, until used");
                store.touch(a1, at(30)).await.unwrap();
                assert_eq!(last_seen(store.lookup(a1).await.unwrap()), at(30));
                store.touch(a1, at(20)).await.unwrap();
                assert_eq!(last_seen(store.lookup(a1).await.unwrap()), at(30), "a late touch does not go back");
                let snap = store.load(at(0)).await.unwrap();
                assert_eq!(snap.active[0].1.last_seen, at(30), "loaded as stored");
                // An ended session is not touched, nor an unknown one created.
                store.claim(a2, &session(1, 40, 2)).await.unwrap();
                store.touch(a1, at(50)).await.unwrap();
                assert!(matches!(store.lookup(a1).await.unwrap(), Some(Stored::Ended(..))));
                let unknown = Uid::generate().digest();
                store.touch(unknown, at(50)).await.unwrap();
                assert_eq!(store.lookup(unknown).await.unwrap(), None);
            }

            #[tokio::test]
            async fn end_tabs_ends_the_accounts_tabs_all_or_those_named_and_no_other() {
                let store = with_accounts($make).await;
                let at = UnixMillis::from_millis;
                let uids: Vec<UidDigest> = (0..3).map(|_| Uid::generate().digest()).collect();
                for (n, uid) in uids.iter().enumerate() {
                    store.claim_replacing(*uid, &session(1, 10 + n as i64, n as u16), 3, &Replacing::Any).await.unwrap();
                }
                let bobs = Uid::generate().digest();
                store.claim(bobs, &session(2, 10, 9)).await.unwrap();
                // One named, and one of another account's named with it: only Ann's ends.
                let ended = store.end_tabs(AccountId(1), Some(&[uids[1], bobs]), at(20), TabEnd::Revoked).await.unwrap();
                assert_eq!(ended, [uids[1]]);
                let revoked = LoadedEnded { account: AccountId(1), ended_at: at(20), reason: EndReason::Revoked };
                assert_eq!(store.lookup(uids[1]).await.unwrap(), Some(Stored::Ended(revoked, "Ann".into())));
                assert_eq!(store.count_active().await.unwrap(), 3);
                // All: the rest of Ann's; Bob's stays.
                let mut ended = store.end_tabs(AccountId(1), None, at(30), TabEnd::Revoked).await.unwrap();
                ended.sort();
                let mut rest = vec![uids[0], uids[2]];
                rest.sort();
                assert_eq!(ended, rest);
                assert_eq!(store.active_of(AccountId(1)).await.unwrap(), []);
                assert_eq!(store.active_of(AccountId(2)).await.unwrap(), [bobs]);
                assert_eq!(store.count_active().await.unwrap(), 1);
                assert!(store.end_tabs(AccountId(1), None, at(40), TabEnd::Revoked).await.unwrap().is_empty());
                let snap = store.load(at(0)).await.unwrap();
                assert_eq!(snap.ended.iter().filter(|(_, e)| e.kind == EndKind::Revoked).count(), 3, "loaded as revoked");

                // Expired: Bob's tab, at the moment it timed out; read back and loaded so.
                assert_eq!(store.end_tabs(AccountId(2), Some(&[bobs]), at(35), TabEnd::Expired).await.unwrap(), [bobs]);
                let expired = LoadedEnded { account: AccountId(2), ended_at: at(35), reason: EndReason::Expired };
                assert_eq!(store.lookup(bobs).await.unwrap(), Some(Stored::Ended(expired, "bob".into())));
                assert_eq!(store.count_active().await.unwrap(), 0);
                let snap = store.load(at(0)).await.unwrap();
                let loaded = SnapshotEnded { account: AccountId(2), ended_at: at(35), kind: EndKind::Expired };
                assert_eq!(snap.ended.iter().find(|(uid, _)| *uid == bobs).map(|(_, e)| *e), Some(loaded));
            }

            #[tokio::test]
            async fn tabs_of_lists_each_active_tab_with_where_and_when() {
                let store = with_accounts($make).await;
                let (a1, a2, a3) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                store.claim_replacing(a1, &session(1, 10, 2), 2, &Replacing::Any).await.unwrap();
                store.claim_replacing(a2, &session(1, 20, 3), 2, &Replacing::Any).await.unwrap();
                store.touch(a2, UnixMillis::from_millis(25)).await.unwrap();
                store.claim(a3, &session(2, 30, 4)).await.unwrap();
                let mut tabs = store.tabs_of(AccountId(1)).await.unwrap();
                tabs.sort_by_key(|t| t.issued_at);
                let expected = [
                    TabDetails { uid: a1, issued_at: UnixMillis::from_millis(10), last_seen: UnixMillis::from_millis(10), origin: session(1, 10, 2).origin },
                    TabDetails { uid: a2, issued_at: UnixMillis::from_millis(20), last_seen: UnixMillis::from_millis(25), origin: session(1, 20, 3).origin },
                ];
                assert_eq!(tabs, expected);
                assert!(store.tabs_of(AccountId(3)).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn count_active_is_one_per_account_with_an_active_session() {
                let store = with_accounts($make).await;
                assert_eq!(store.count_active().await.unwrap(), 0);
                let (a, b, c) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                store.claim(a, &session(1, 20, 2)).await.unwrap();
                store.claim(b, &session(2, 21, 3)).await.unwrap();
                store.claim(c, &session(1, 22, 4)).await.unwrap(); // supersedes a
                assert_eq!(store.count_active().await.unwrap(), 2, "one per account");
                assert!(!store.release(a, UnixMillis::from_millis(23)).await.unwrap());
                assert!(store.release(b, UnixMillis::from_millis(23)).await.unwrap());
                assert_eq!(store.count_active().await.unwrap(), 1);
            }

            #[tokio::test]
            async fn load_and_prune_respect_the_cutoff() {
                let store = with_accounts($make).await;
                let (old, mid, now) = (Uid::generate().digest(), Uid::generate().digest(), Uid::generate().digest());
                store.claim(old, &session(1, 10, 1)).await.unwrap();
                store.claim(mid, &session(1, 20, 2)).await.unwrap(); // old ended at 20
                store.claim(now, &session(1, 30, 3)).await.unwrap(); // mid ended at 30
                let snap = store.load(UnixMillis::from_millis(25)).await.unwrap();
                assert_eq!(snap.ended.iter().map(|(u, _)| *u).collect::<Vec<_>>(), vec![mid]);
                assert_eq!(snap.active.len(), 1);
                assert_eq!(store.prune(UnixMillis::from_millis(25)).await.unwrap(), 1);
                let snap = store.load(UnixMillis::from_millis(0)).await.unwrap();
                assert_eq!(snap.ended.iter().map(|(u, _)| *u).collect::<Vec<_>>(), vec![mid]);
                assert_eq!(snap.active[0].0, now, "pruning never touches active sessions");
            }

            #[tokio::test]
            async fn with_one_device_kept_a_new_one_ends_the_accounts_others_and_expired_ones_are_not_found() {
                let store = with_accounts($make).await;
                let (first, second, bobs) = (DeviceHash([1; 32]), DeviceHash([2; 32]), DeviceHash([3; 32]));
                let at = |ms| UnixMillis::from_millis(ms);
                store.add_device(&new_device(1, first, 10, 100, 1), None, 1).await.unwrap();
                store.add_device(&new_device(2, bobs, 10, 100, 2), None, 1).await.unwrap();
                let found = store.find_device(first, at(50)).await.unwrap().unwrap();
                assert_eq!(found, DeviceRecord { account: AccountId(1), username: "Ann".into(), expires_at: at(100) });

                // A login from another browser: the first one's device is gone, bob's stays.
                store.add_device(&new_device(1, second, 20, 200, 3), None, 1).await.unwrap();
                assert_eq!(store.find_device(first, at(50)).await.unwrap(), None);
                assert_eq!(store.find_device(second, at(50)).await.unwrap().unwrap().account, AccountId(1));
                assert_eq!(store.find_device(bobs, at(50)).await.unwrap().unwrap().username, "bob");

                // Expiry: not found or listed from expires_at on, and pruned.
                assert_eq!(store.find_device(bobs, at(100)).await.unwrap(), None);
                assert_eq!(store.devices_of(AccountId(2), at(100)).await.unwrap(), vec![]);
                assert_eq!(store.prune_devices(at(150)).await.unwrap(), 1);
                assert!(store.find_device(second, at(150)).await.unwrap().is_some());

                assert!(store.remove_device(second).await.unwrap());
                assert!(!store.remove_device(second).await.unwrap());
                assert_eq!(store.find_device(second, at(150)).await.unwrap(), None);
                // Two logins in the same millisecond: the later one is kept, whatever the
                // order of the hashes.
                let (high, low) = (DeviceHash([9; 32]), DeviceHash([4; 32]));
                store.add_device(&new_device(2, high, 300, 900, 5), None, 1).await.unwrap();
                store.add_device(&new_device(2, low, 300, 900, 6), None, 1).await.unwrap();
                assert_eq!(store.find_device(high, at(310)).await.unwrap(), None);
                assert!(store.find_device(low, at(310)).await.unwrap().is_some());
            }

            #[tokio::test]
            async fn an_account_keeps_the_devices_signed_in_latest_listed_with_their_browser() {
                let store = with_accounts($make).await;
                let at = |ms| UnixMillis::from_millis(ms);
                let device = |n: u8| DeviceHash([n; 32]);
                for n in 1..=3u8 {
                    let created = 10 * i64::from(n);
                    store.add_device(&new_device(1, device(n), created, 1000, u16::from(n)), None, 3).await.unwrap();
                }
                // A "Use here" from the first makes it the latest sign-in.
                store.link_tab(device(1), Uid::generate().digest(), at(40)).await.unwrap();
                let listed = store.devices_of(AccountId(1), at(50)).await.unwrap();
                let order: Vec<_> = listed.iter().map(|d| d.hash).collect();
                assert_eq!(order, vec![device(1), device(3), device(2)]);
                assert_eq!(listed[0], DeviceDetails {
                    hash: device(1),
                    created_at: at(10),
                    signed_in_at: at(40),
                    expires_at: at(1000),
                    user_agent: None,
                    ip: Some(session(1, 0, 1).origin.ip),
                });
                assert_eq!(listed[2].user_agent.as_deref(), Some("agent 2"));

                // A fourth browser with a limit of 3: the one signed in longest ago (2) goes.
                store.add_device(&new_device(1, device(4), 50, 1000, 4), None, 3).await.unwrap();
                assert_eq!(store.find_device(device(2), at(60)).await.unwrap(), None);
                let order: Vec<_> = store.devices_of(AccountId(1), at(60)).await.unwrap().iter().map(|d| d.hash).collect();
                assert_eq!(order, vec![device(4), device(1), device(3)]);
                // Bob's devices are his own.
                assert_eq!(store.devices_of(AccountId(2), at(60)).await.unwrap(), vec![]);
            }

            #[tokio::test]
            async fn a_browsers_new_device_takes_over_its_tabs_and_signing_it_out_returns_them() {
                let store = with_accounts($make).await;
                let at = |ms| UnixMillis::from_millis(ms);
                let (old, new, other) = (DeviceHash([1; 32]), DeviceHash([2; 32]), DeviceHash([3; 32]));
                store.add_device(&new_device(1, old, 10, 1000, 1), None, 2).await.unwrap();
                store.add_device(&new_device(1, other, 11, 1000, 2), None, 2).await.unwrap();
                let mut tabs: Vec<_> = (0..3).map(|_| Uid::generate().digest()).collect();
                store.link_tab(old, tabs[0], at(12)).await.unwrap();
                store.link_tab(other, tabs[1], at(13)).await.unwrap();
                // The first browser signs in again: its new device replaces its old one.
                store.add_device(&new_device(1, new, 20, 1000, 1), Some(old), 2).await.unwrap();
                store.link_tab(new, tabs[2], at(21)).await.unwrap();
                assert_eq!(store.find_device(old, at(30)).await.unwrap(), None);
                assert!(store.find_device(other, at(30)).await.unwrap().is_some(), "another browser's stays");
                // Linking a gone device does nothing.
                store.link_tab(old, Uid::generate().digest(), at(22)).await.unwrap();

                assert_eq!(store.remove_device_of(AccountId(2), new).await.unwrap(), None, "not bob's");
                let mut signed_out = store.remove_device_of(AccountId(1), new).await.unwrap().unwrap();
                signed_out.sort();
                let mut expected = vec![tabs[0], tabs[2]];
                expected.sort();
                assert_eq!(signed_out, expected);
                assert_eq!(store.find_device(new, at(30)).await.unwrap(), None);
                assert_eq!(store.remove_device_of(AccountId(1), new).await.unwrap(), None);
                tabs.truncate(2);
                assert_eq!(store.remove_device_of(AccountId(1), other).await.unwrap(), Some(vec![tabs[1]]));

                // A device remembers its newest MAX_TABS_PER_DEVICE tabs.
                store.add_device(&new_device(1, old, 40, 1000, 1), None, 2).await.unwrap();
                let many: Vec<_> = (0..MAX_TABS_PER_DEVICE + 2).map(|_| Uid::generate().digest()).collect();
                for (n, tab) in many.iter().enumerate() {
                    store.link_tab(old, *tab, at(50 + n as i64)).await.unwrap();
                }
                let mut kept = store.remove_device_of(AccountId(1), old).await.unwrap().unwrap();
                kept.sort();
                let mut newest = many[2..].to_vec();
                newest.sort();
                assert_eq!(kept, newest);
            }

            #[tokio::test]
            async fn racing_logins_leave_no_more_devices_than_kept() {
                let store = Arc::new(with_accounts($make).await);
                let logins = (0..16u8).map(|n| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let device = new_device(1, DeviceHash([n; 32]), 10 + i64::from(n), 1000, 1);
                        store.add_device(&device, None, 2).await.unwrap();
                    })
                });
                for login in logins.collect::<Vec<_>>() {
                    login.await.unwrap();
                }
                let left = store.devices_of(AccountId(1), UnixMillis::from_millis(30)).await.unwrap();
                assert_eq!(left.len(), 2, "{left:?}");
            }

            #[tokio::test]
            async fn forget_oldest_keeps_the_newest_ended_sessions_of_that_account_only() {
                let store = with_accounts($make).await;
                let mut ann = Vec::new();
                for n in 0..6u16 {
                    let uid = Uid::generate().digest();
                    store.claim(uid, &session(1, 10 * i64::from(n) + 10, n)).await.unwrap();
                    ann.push(uid);
                }
                let bob = Uid::generate().digest();
                store.claim(bob, &session(2, 5, 9)).await.unwrap();
                store.release(bob, UnixMillis::from_millis(6)).await.unwrap();
                // ann: 5 ended (ann[0..5], ended at 20..=60), 1 active (ann[5]).
                let mut forgotten = store.forget_oldest(AccountId(1), 2).await.unwrap();
                forgotten.sort();
                let mut expected = ann[..3].to_vec();
                expected.sort();
                assert_eq!(forgotten, expected, "the three oldest ended sessions go");
                let snap = store.load(UnixMillis::from_millis(0)).await.unwrap();
                let mut ended: Vec<_> = snap.ended.iter().map(|(u, _)| *u).collect();
                ended.sort();
                let mut kept = vec![ann[3], ann[4], bob];
                kept.sort();
                assert_eq!(ended, kept, "other accounts' history is untouched");
                assert_eq!(snap.active.len(), 1, "active sessions are never forgotten");
                assert!(store.forget_oldest(AccountId(1), 2).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn an_accounts_own_policy_is_kept_until_unset() {
                let store = with_accounts($make).await;
                assert_eq!(store.find("ann").await.unwrap().unwrap().policy, None);
                assert!(store.set_policy(AccountId(1), Some(Policy::DenyNew)).await.unwrap());
                assert_eq!(store.find("ann").await.unwrap().unwrap().policy, Some(Policy::DenyNew));
                assert_eq!(store.find("bob").await.unwrap().unwrap().policy, None);
                for policy in [Policy::MaxTabs(3), Policy::MaxTabs(1), Policy::LatestWins, Policy::MaxTabs(MAX_TABS)] {
                    assert!(store.set_policy(AccountId(1), Some(policy)).await.unwrap());
                    assert_eq!(store.find("ann").await.unwrap().unwrap().policy, Some(policy));
                }
                assert!(store.set_policy(AccountId(1), None).await.unwrap());
                assert_eq!(store.find("ann").await.unwrap().unwrap().policy, None);
                assert!(!store.set_policy(AccountId(99), Some(Policy::LatestWins)).await.unwrap());
            }

            #[tokio::test]
            async fn a_password_change_replaces_that_accounts_hash_only() {
                let store = with_accounts($make).await;
                assert!(store.set_password(AccountId(1), "h9").await.unwrap());
                assert_eq!(store.find("ann").await.unwrap().unwrap().password_hash, "h9");
                assert_eq!(store.find("bob").await.unwrap().unwrap().password_hash, "h2");
                assert!(!store.set_password(AccountId(99), "h9").await.unwrap());
            }

            #[tokio::test]
            async fn an_accounts_history_keeps_its_newest_events_newest_first() {
                let store = with_accounts($make).await;
                let event = |n: i64, kind| AccountEvent {
                    at: UnixMillis::from_millis(n),
                    kind,
                    ip: (n % 2 == 0).then(|| "2001:db8::1".parse().unwrap()),
                    user_agent: (n % 3 == 0).then(|| format!("agent {n}")),
                };
                assert!(store.events(AccountId(1)).await.unwrap().is_empty());
                let kinds = EventKind::ALL;
                let total = MAX_EVENTS_PER_ACCOUNT as i64 + 5;
                for n in 0..total {
                    store.record_event(AccountId(1), &event(n, kinds[n as usize % kinds.len()])).await.unwrap();
                }
                store.record_event(AccountId(2), &event(7, EventKind::Login)).await.unwrap();
                let events = store.events(AccountId(1)).await.unwrap();
                assert_eq!(events.len(), MAX_EVENTS_PER_ACCOUNT, "only the newest are kept");
                let expected: Vec<AccountEvent> = (5..total).rev().map(|n| event(n, kinds[n as usize % kinds.len()])).collect();
                assert_eq!(events, expected, "newest first, every field kept");
                assert_eq!(store.events(AccountId(2)).await.unwrap(), [event(7, EventKind::Login)]);
            }

            #[tokio::test]
            async fn an_accounts_own_mode_is_kept_until_unset() {
                let store = with_accounts($make).await;
                assert_eq!(store.find("ann").await.unwrap().unwrap().mode, None);
                for mode in [Mode::Observe, Mode::Enforce] {
                    assert!(store.set_mode(AccountId(1), Some(mode)).await.unwrap());
                    assert_eq!(store.find("ann").await.unwrap().unwrap().mode, Some(mode));
                }
                assert_eq!(store.find("bob").await.unwrap().unwrap().mode, None);
                assert!(store.set_mode(AccountId(1), None).await.unwrap());
                assert_eq!(store.find("ann").await.unwrap().unwrap().mode, None);
                assert!(!store.set_mode(AccountId(99), Some(Mode::Observe)).await.unwrap());
            }

            #[tokio::test]
            async fn the_admin_role_is_kept_until_revoked() {
                let store = with_accounts($make).await;
                assert!(!store.find("ann").await.unwrap().unwrap().admin, "nobody is an admin at first");
                assert!(store.set_admin(AccountId(1), true).await.unwrap());
                assert!(store.find("ann").await.unwrap().unwrap().admin);
                assert!(!store.find("bob").await.unwrap().unwrap().admin);
                assert!(store.set_admin(AccountId(1), false).await.unwrap());
                assert!(!store.find("ann").await.unwrap().unwrap().admin);
                assert!(!store.set_admin(AccountId(99), true).await.unwrap());
            }

            #[tokio::test]
            async fn tabs_page_lists_every_accounts_tabs_by_username_searchable_and_paged() {
                let store = with_accounts($make).await;
                store.create("Annabel", "h3", UnixMillis::from_millis(3)).await.unwrap(); // id 3
                let mut uids = Vec::new();
                for (n, account) in [1, 2, 1, 3].into_iter().enumerate() {
                    let uid = Uid::generate().digest();
                    let mut tab = session(account, 10 + n as i64, n as u16);
                    tab.username = ["Ann", "bob", "Annabel"][account as usize - 1].into();
                    store.claim_replacing(uid, &tab, 2, &Replacing::Any).await.unwrap();
                    uids.push(uid);
                }
                assert!(store.release(uids[1], UnixMillis::from_millis(30)).await.unwrap()); // bob's ends
                let names = |page: &TabsPage| page.tabs.iter().map(|(_, name, tab)| (name.to_string(), tab.uid)).collect::<Vec<_>>();
                // Everything: by username key, then sign-in.
                let all = store.tabs_page(None, 0, 10).await.unwrap();
                assert_eq!(all.total, 3);
                assert_eq!(names(&all), [("Ann".into(), uids[0]), ("Ann".into(), uids[2]), ("Annabel".into(), uids[3])]);
                assert_eq!(all.tabs[0].0, AccountId(1));
                assert_eq!(all.tabs[0].2.origin, session(1, 10, 0).origin);
                // Pages.
                let second = store.tabs_page(None, 1, 1).await.unwrap();
                assert_eq!((second.total, names(&second)), (3, vec![("Ann".into(), uids[2])]));
                assert!(store.tabs_page(None, 3, 10).await.unwrap().tabs.is_empty());
                // Search: a part of the username, in any case; LIKE's wildcards are literal.
                let found = store.tabs_page(Some("BEL"), 0, 10).await.unwrap();
                assert_eq!((found.total, names(&found)), (1, vec![("Annabel".into(), uids[3])]));
                assert_eq!(store.tabs_page(Some("ann"), 0, 10).await.unwrap().total, 3);
                assert_eq!(store.tabs_page(Some("%"), 0, 10).await.unwrap().total, 0);
                assert_eq!(store.tabs_page(Some("a_n"), 0, 10).await.unwrap().total, 0);
                assert_eq!(store.tabs_page(Some("bob"), 0, 10).await.unwrap().total, 0, "only active tabs");
            }

            #[tokio::test]
            async fn usernames_are_unique_without_regard_to_case() {
                let store = with_accounts($make).await;
                assert!(matches!(
                    store.create("ANN", "h3", UnixMillis::from_millis(3)).await,
                    Err(CreateAccountError::Taken)
                ));
                let found = store.find("ann").await.unwrap().unwrap();
                assert_eq!(found.id, AccountId(1));
                assert_eq!(found.username, "Ann", "shown as typed");
                assert_eq!(found.password_hash, "h1");
                assert!(store.find("nobody").await.unwrap().is_none());
            }
        }
    )*};
}

conformance! {
    memory => MemoryStore::new();
    sqlite_in_memory => SqliteStore::open_in_memory().unwrap();
    sqlite_file => {
        // The directory lives as long as the test process; the file is the point.
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        SqliteStore::open(&dir.path().join("nested/dir/solotab.db")).unwrap()
    };
    postgres => crate::store::postgres::test_store().await;
    redis => crate::store::redis_test_store().await;
}
