//! Operator accounts, the last-administrator guard, web sessions, token owners. Every scenario runs
//! against SQLite (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use uuid::Uuid;

suite!(
    users_accounts,
    users_last_admin,
    users_concurrent_demotion,
    sessions,
    session_last_seen_throttled,
    token_owners,
);

mod scenarios {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

    fn new_user(name: &str, role: Role) -> NewUser {
        NewUser {
            username: name.into(),
            password_hash: PHC.into(),
            role,
            language: None,
            created_by: "bootstrap".into(),
        }
    }

    /// A fresh 32-byte "SHA-256" of a cookie secret.
    fn session_hash() -> Vec<u8> {
        let mut h = Uuid::new_v4().as_bytes().to_vec();
        h.extend_from_slice(Uuid::new_v4().as_bytes());
        h
    }

    fn new_session(user_id: i64, hash: &[u8], expires_at: i64) -> NewSession {
        NewSession {
            user_id,
            secret_hash: hash.to_vec(),
            csrf_token: "csrf-0123456789abcdef".into(),
            expires_at,
            ip: Some("10.0.0.7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        }
    }

    fn usernames(users: &[User]) -> Vec<&str> {
        users.iter().map(|u| u.username.as_str()).collect()
    }

    fn is_last_admin_error<T: std::fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(StoreError::InvalidArgument(m)) if m.contains("the last administrator"))
    }

    pub async fn users_accounts(s: S, _raw: Raw) {
        assert_eq!(s.count_users().await.unwrap(), 0);
        assert!(s.list_users().await.unwrap().is_empty());
        let before = now_ms();
        let ann = s
            .create_user(&new_user("  Ann  ", Role::Admin))
            .await
            .unwrap();
        assert_eq!(ann.username, "Ann");
        assert_eq!((ann.role, ann.language.as_deref()), (Role::Admin, None));
        assert!(ann.created_at >= before && ann.updated_at == ann.created_at);
        assert_eq!(ann.created_by, "bootstrap");
        assert!(ann.last_login_at.is_none() && ann.disabled_at.is_none());
        assert_eq!(s.get_user(ann.id).await.unwrap().unwrap(), ann);
        assert!(s.get_user(ann.id + 1000).await.unwrap().is_none());
        // the hash is never part of a user
        assert!(!serde_json::to_string(&ann).unwrap().contains("argon2"));

        let mut op = new_user("Оператор", Role::Analyst);
        op.language = Some("ru".into());
        let op = s.create_user(&op).await.unwrap();
        assert_eq!(op.language.as_deref(), Some("ru"));
        s.create_user(&new_user("bob.smith@corp", Role::Viewer))
            .await
            .unwrap();
        s.create_user(&new_user("zed", Role::Viewer)).await.unwrap();
        assert_eq!(s.count_users().await.unwrap(), 4);

        // case-insensitive lookups, Unicode too; the hash comes only with find_user
        for name in ["ann", "ANN", " Ann "] {
            let (u, hash) = s.find_user(name).await.unwrap().unwrap();
            assert_eq!((u, hash.as_str()), (ann.clone(), PHC), "{name}");
        }
        for name in ["оператор", "ОПЕРАТОР", "ОпЕрАтОр"] {
            assert_eq!(s.find_user(name).await.unwrap().unwrap().0.id, op.id);
        }
        for name in [
            "an",
            "ann%",
            "ann_",
            "",
            "bob smith",
            "a'--",
            &"x".repeat(500),
        ] {
            assert!(s.find_user(name).await.unwrap().is_none(), "{name}");
        }

        // duplicates (case-insensitively) are refused and change nothing
        for dup in ["ann", "ANN", "оПЕРАТОР", " Zed"] {
            assert!(
                matches!(
                    s.create_user(&new_user(dup, Role::Viewer)).await,
                    Err(StoreError::Conflict(_))
                ),
                "{dup}"
            );
        }
        assert_eq!(s.count_users().await.unwrap(), 4);

        // invalid input
        let mut bad_hash = new_user("carl", Role::Viewer);
        bad_hash.password_hash = "plaintext password".into();
        let mut bad_lang = new_user("carl", Role::Viewer);
        bad_lang.language = Some("de".into());
        for bad in [
            new_user("", Role::Viewer),
            new_user("   ", Role::Viewer),
            new_user("a b", Role::Viewer),
            new_user("a/b", Role::Viewer),
            new_user("ann'; DROP TABLE users; --", Role::Viewer),
            new_user("nul\0", Role::Viewer),
            new_user(&"я".repeat(65), Role::Viewer),
            new_user("agent", Role::AgentIngest),
            bad_hash,
            bad_lang,
        ] {
            assert!(
                matches!(
                    s.create_user(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        // 64 Cyrillic letters are fine
        s.create_user(&new_user(&"я".repeat(64), Role::Viewer))
            .await
            .unwrap();
        assert_eq!(s.count_users().await.unwrap(), 5);

        // listing by name case-insensitively (byte order of the lower-cased names)
        assert_eq!(
            usernames(&s.list_users().await.unwrap()),
            vec![
                "Ann",
                "bob.smith@corp",
                "zed",
                "Оператор",
                "яяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяяя"
            ]
        );

        // language
        let u = s
            .set_user_language(ann.id, Some("en"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.language.as_deref(), Some("en"));
        assert!(u.updated_at >= ann.updated_at);
        let u = s.set_user_language(op.id, None).await.unwrap().unwrap();
        assert!(u.language.is_none());
        assert!(matches!(
            s.set_user_language(op.id, Some("fr")).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(
            s.set_user_language(9999, Some("ru"))
                .await
                .unwrap()
                .is_none()
        );

        // password
        let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";
        s.set_user_password(op.id, new_hash).await.unwrap().unwrap();
        assert_eq!(s.find_user("оператор").await.unwrap().unwrap().1, new_hash);
        assert!(matches!(
            s.set_user_password(op.id, "secret").await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(s.set_user_password(9999, new_hash).await.unwrap().is_none());

        // roles: agent-ingest is not an operator role
        let u = s.set_user_role(op.id, Role::Admin).await.unwrap().unwrap();
        assert_eq!(u.role, Role::Admin);
        assert!(matches!(
            s.set_user_role(op.id, Role::AgentIngest).await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(s.set_user_role(9999, Role::Viewer).await.unwrap().is_none());
        assert!(s.set_user_disabled(9999, true).await.unwrap().is_none());

        // logins
        s.record_login(ann.id, T0).await.unwrap();
        s.record_login(9999, T0).await.unwrap();
        let u = s.get_user(ann.id).await.unwrap().unwrap();
        assert_eq!(u.last_login_at, Some(T0));

        // disabling keeps the account (and its name taken); enabling clears disabled_at
        let d = s.set_user_disabled(op.id, true).await.unwrap().unwrap();
        let since = d.disabled_at.unwrap();
        let again = s.set_user_disabled(op.id, true).await.unwrap().unwrap();
        assert_eq!(again.disabled_at, Some(since));
        assert!(
            s.find_user("оператор")
                .await
                .unwrap()
                .unwrap()
                .0
                .disabled_at
                .is_some()
        );
        assert!(matches!(
            s.create_user(&new_user("оператор", Role::Viewer)).await,
            Err(StoreError::Conflict(_))
        ));
        let e = s.set_user_disabled(op.id, false).await.unwrap().unwrap();
        assert!(e.disabled_at.is_none());
        assert_eq!(s.count_users().await.unwrap(), 5);
    }

    pub async fn users_last_admin(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s
            .create_user(&new_user("bob", Role::Analyst))
            .await
            .unwrap();

        // the only admin can be neither demoted nor disabled
        for role in [Role::Analyst, Role::Viewer] {
            assert!(is_last_admin_error(s.set_user_role(ann.id, role).await));
        }
        assert!(is_last_admin_error(s.set_user_disabled(ann.id, true).await));
        let cur = s.get_user(ann.id).await.unwrap().unwrap();
        assert_eq!((cur.role, cur.disabled_at), (Role::Admin, None));
        // "changing" to admin is fine; others change freely
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        s.set_user_role(bob.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();

        // a disabled admin does not count
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        s.set_user_role(bob.id, Role::Admin).await.unwrap().unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(is_last_admin_error(
            s.set_user_role(ann.id, Role::Viewer).await
        ));
        // a disabled admin may be demoted (it takes no enabled admin away)
        let b = s
            .set_user_role(bob.id, Role::Analyst)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.role, Role::Analyst);
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();

        // with two enabled admins, one can go
        s.set_user_role(bob.id, Role::Admin).await.unwrap().unwrap();
        let a = s
            .set_user_role(ann.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.role, Role::Viewer);
        assert!(is_last_admin_error(
            s.set_user_role(bob.id, Role::Viewer).await
        ));
        assert!(is_last_admin_error(s.set_user_disabled(bob.id, true).await));
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        let b = s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(b.disabled_at.is_some());
        assert!(is_last_admin_error(s.set_user_disabled(ann.id, true).await));
        let admins: Vec<User> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
            .collect();
        assert_eq!(usernames(&admins), vec!["ann"]);
    }

    pub async fn users_concurrent_demotion(s: S, _raw: Raw) {
        let first = s
            .create_user(&new_user("admin-0", Role::Admin))
            .await
            .unwrap();
        let mut survivor = first.id;
        for round in 1..=8 {
            let other = s
                .create_user(&new_user(&format!("admin-{round}"), Role::Admin))
                .await
                .unwrap();
            // two admins; two tasks each take one away at once (demote, or disable on odd
            // rounds)
            let mut tasks = Vec::new();
            for (i, id) in [survivor, other.id].into_iter().enumerate() {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let r = if round % 2 == 1 && i == 1 {
                        s.set_user_disabled(id, true).await
                    } else {
                        s.set_user_role(id, Role::Analyst).await
                    };
                    (id, r)
                }));
            }
            let mut ok = Vec::new();
            let mut refused = 0;
            for task in tasks {
                let (id, r) = task.await.unwrap();
                match r {
                    Ok(Some(_)) => ok.push(id),
                    r => {
                        assert!(is_last_admin_error(r), "round {round}");
                        refused += 1;
                    }
                }
            }
            assert_eq!((ok.len(), refused), (1, 1), "round {round}");
            let admins: Vec<i64> = s
                .list_users()
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
                .map(|u| u.id)
                .collect();
            assert_eq!(admins.len(), 1, "round {round}");
            assert_ne!(admins[0], ok[0]);
            survivor = admins[0];
        }
    }

    pub async fn sessions(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s
            .create_user(&new_user("Боб", Role::Analyst))
            .await
            .unwrap();
        let now = now_ms();
        let hour = 60 * MIN;

        let h1 = session_hash();
        let s1 = s
            .create_session(&new_session(bob.id, &h1, now + hour))
            .await
            .unwrap();
        assert_eq!(s1.user_id, bob.id);
        assert_eq!(s1.csrf_token, "csrf-0123456789abcdef");
        assert!(s1.created_at >= now && s1.last_seen_at == s1.created_at);
        assert_eq!(s1.expires_at, now + hour);
        assert_eq!(s1.ip.as_deref(), Some("10.0.0.7"));
        assert!(s1.user_agent.as_deref().unwrap().contains("Firefox"));
        let (found, user) = s.find_session(&h1).await.unwrap().unwrap();
        assert_eq!(found, s1);
        assert_eq!(user, bob);

        // unknown, malformed, empty hashes
        assert!(s.find_session(&session_hash()).await.unwrap().is_none());
        assert!(s.find_session(&h1[..31]).await.unwrap().is_none());
        assert!(s.find_session(&[]).await.unwrap().is_none());
        assert!(!s.delete_session(&[1, 2, 3]).await.unwrap());

        // an expired session is not found
        let h_old = session_hash();
        s.create_session(&new_session(bob.id, &h_old, now - 1))
            .await
            .unwrap();
        assert!(s.find_session(&h_old).await.unwrap().is_none());

        // invalid input, unknown user, hash taken
        let mut short = new_session(bob.id, &h1[..16], now + hour);
        short.secret_hash.truncate(16);
        let mut no_csrf = new_session(bob.id, &session_hash(), now + hour);
        no_csrf.csrf_token = String::new();
        let mut bad_csrf = new_session(bob.id, &session_hash(), now + hour);
        bad_csrf.csrf_token = "a b".into();
        for bad in [short, no_csrf, bad_csrf] {
            assert!(
                matches!(
                    s.create_session(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            s.create_session(&new_session(9999, &session_hash(), now + hour))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.create_session(&new_session(ann.id, &h1, now + hour))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.find_session(&h1).await.unwrap().unwrap().1.id, bob.id);

        // long client texts are cut, not refused (multi-byte characters stay whole)
        let h_long = session_hash();
        let mut long = new_session(ann.id, &h_long, now + hour);
        long.user_agent = Some("ж".repeat(1000));
        long.ip = Some("1".repeat(1000));
        let l = s.create_session(&long).await.unwrap();
        assert_eq!(l.user_agent.as_deref(), Some("ж".repeat(256).as_str()));
        assert_eq!(l.ip.map(|ip| ip.len()), Some(128));

        // a disabled user's sessions are gone and none can be made; enabling does not revive
        let h2 = session_hash();
        s.create_session(&new_session(bob.id, &h2, now + hour))
            .await
            .unwrap();
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(s.find_session(&h1).await.unwrap().is_none());
        assert!(s.find_session(&h2).await.unwrap().is_none());
        assert!(matches!(
            s.create_session(&new_session(bob.id, &session_hash(), now + hour))
                .await,
            Err(StoreError::InvalidArgument(_))
        ));
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        assert!(s.find_session(&h1).await.unwrap().is_none());
        // disabling ended the expired session too
        assert_eq!(s.delete_user_sessions(bob.id).await.unwrap(), 0);

        // logout
        let h3 = session_hash();
        s.create_session(&new_session(bob.id, &h3, now + hour))
            .await
            .unwrap();
        assert!(s.delete_session(&h3).await.unwrap());
        assert!(!s.delete_session(&h3).await.unwrap());
        assert!(s.find_session(&h3).await.unwrap().is_none());

        // delete_user_sessions ends only that user's sessions
        let hs: Vec<Vec<u8>> = (0..3).map(|_| session_hash()).collect();
        for h in &hs {
            s.create_session(&new_session(bob.id, h, now + hour))
                .await
                .unwrap();
        }
        assert_eq!(s.delete_user_sessions(bob.id).await.unwrap(), 3);
        assert!(s.find_session(&hs[0]).await.unwrap().is_none());
        assert!(s.find_session(&h_long).await.unwrap().is_some());
        assert_eq!(s.delete_user_sessions(9999).await.unwrap(), 0);

        // a password change ends the user's sessions (only that user's)
        let h4 = session_hash();
        s.create_session(&new_session(bob.id, &h4, now + hour))
            .await
            .unwrap();
        s.set_user_password(bob.id, PHC).await.unwrap().unwrap();
        assert!(s.find_session(&h4).await.unwrap().is_none());
        assert!(s.find_session(&h_long).await.unwrap().is_some());

        // purge: only expired ones
        let h5 = session_hash();
        s.create_session(&new_session(ann.id, &h5, now + 2 * hour))
            .await
            .unwrap();
        let h6 = session_hash();
        s.create_session(&new_session(ann.id, &h6, now + 10))
            .await
            .unwrap();
        assert_eq!(s.purge_expired_sessions(now + hour).await.unwrap(), 2);
        assert_eq!(s.purge_expired_sessions(now + hour).await.unwrap(), 0);
        assert!(s.find_session(&h5).await.unwrap().is_some());
        assert!(!s.delete_session(&h6).await.unwrap());
        assert!(!s.delete_session(&h_long).await.unwrap());
        assert_eq!(s.purge_expired_sessions(now + 3 * hour).await.unwrap(), 1);
        assert!(s.find_session(&h5).await.unwrap().is_none());
    }

    pub async fn session_last_seen_throttled(s: S, raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let h = session_hash();
        let created = s
            .create_session(&new_session(ann.id, &h, now_ms() + 60 * MIN))
            .await
            .unwrap();
        // within a minute of the last write nothing is written
        for _ in 0..3 {
            let (found, _) = s.find_session(&h).await.unwrap().unwrap();
            assert_eq!(found.last_seen_at, created.last_seen_at);
        }
        // older than a minute: updated to now, and stored
        raw.exec(&format!(
            "UPDATE sessions SET last_seen_at = last_seen_at - {} WHERE id = {}",
            2 * MIN,
            created.id
        ))
        .await
        .unwrap();
        let before = now_ms();
        let (found, _) = s.find_session(&h).await.unwrap().unwrap();
        assert!(found.last_seen_at >= before);
        let (again, _) = s.find_session(&h).await.unwrap().unwrap();
        assert_eq!(again.last_seen_at, found.last_seen_at);
        // 59 seconds old: still not written
        raw.exec(&format!(
            "UPDATE sessions SET last_seen_at = {} WHERE id = {}",
            now_ms() - MIN + 1000,
            created.id
        ))
        .await
        .unwrap();
        let (stale, _) = s.find_session(&h).await.unwrap().unwrap();
        assert!(stale.last_seen_at < now_ms() - MIN / 2);
        assert_eq!(
            s.find_session(&h).await.unwrap().unwrap().0.last_seen_at,
            stale.last_seen_at
        );
    }

    pub async fn token_owners(s: S, _raw: Raw) {
        let ann = s.create_user(&new_user("ann", Role::Admin)).await.unwrap();
        let bob = s.create_user(&new_user("bob", Role::Admin)).await.unwrap();
        let token = |name: &str, role: Role, owner: Option<i64>| NewToken {
            name: name.into(),
            role,
            expires_at: None,
            owner,
        };
        let a1 = s
            .create_token(&token("ann admin", Role::Admin, Some(ann.id)))
            .await
            .unwrap();
        assert_eq!(a1.info.owner, Some(ann.id));
        let a2 = s
            .create_token(&token("ann viewer", Role::Viewer, Some(ann.id)))
            .await
            .unwrap();
        let b1 = s
            .create_token(&token("bob analyst", Role::Analyst, Some(bob.id)))
            .await
            .unwrap();
        let service = s
            .create_token(&token("ci", Role::Admin, None))
            .await
            .unwrap();
        assert_eq!(service.info.owner, None);
        assert!(matches!(
            s.create_token(&token("ghost", Role::Viewer, Some(9999)))
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.list_tokens().await.unwrap().len(), 4);

        let role_of = |secret: String| {
            let s = s.clone();
            async move { s.verify_token(&secret).await.unwrap().map(|t| t.role) }
        };
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Admin));
        assert_eq!(role_of(a2.secret.clone()).await, Some(Role::Viewer));
        let v = s.verify_token(&b1.secret).await.unwrap().unwrap();
        assert_eq!((v.owner, v.role), (Some(bob.id), Role::Analyst));

        // the owner's role caps the token's: demoted ann's admin token acts as analyst, her
        // viewer token stays viewer; the stored role is unchanged
        s.set_user_role(ann.id, Role::Analyst)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Analyst));
        assert_eq!(role_of(a2.secret.clone()).await, Some(Role::Viewer));
        s.set_user_role(ann.id, Role::Viewer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Viewer));
        let listed = s.list_user_tokens(ann.id).await.unwrap();
        assert_eq!(listed[0].role, Role::Admin);
        s.set_user_role(ann.id, Role::Admin).await.unwrap().unwrap();
        assert_eq!(role_of(a1.secret.clone()).await, Some(Role::Admin));

        // a disabled owner's tokens do not verify; enabled again, they do
        s.set_user_disabled(bob.id, true).await.unwrap().unwrap();
        assert!(s.verify_token(&b1.secret).await.unwrap().is_none());
        assert_eq!(role_of(service.secret.clone()).await, Some(Role::Admin));
        s.set_user_disabled(bob.id, false).await.unwrap().unwrap();
        assert_eq!(role_of(b1.secret.clone()).await, Some(Role::Analyst));

        // per-user listing
        let ids = |ts: Vec<TokenInfo>| ts.into_iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(
            ids(s.list_user_tokens(ann.id).await.unwrap()),
            vec![a1.info.id, a2.info.id]
        );
        assert_eq!(
            ids(s.list_user_tokens(bob.id).await.unwrap()),
            vec![b1.info.id]
        );
        assert!(s.list_user_tokens(9999).await.unwrap().is_empty());

        // per-user revocation: another user's (or a service) token cannot be revoked
        assert!(!s.revoke_user_token(bob.id, a1.info.id).await.unwrap());
        assert!(!s.revoke_user_token(bob.id, service.info.id).await.unwrap());
        assert!(s.verify_token(&a1.secret).await.unwrap().is_some());
        assert!(s.revoke_user_token(ann.id, a1.info.id).await.unwrap());
        assert!(!s.revoke_user_token(ann.id, a1.info.id).await.unwrap());
        assert!(s.verify_token(&a1.secret).await.unwrap().is_none());
        let listed = s.list_user_tokens(ann.id).await.unwrap();
        assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());
        assert!(s.verify_token(&a2.secret).await.unwrap().is_some());
        // the global revoke still works on owned tokens
        assert!(s.revoke_token(b1.info.id).await.unwrap());
        assert!(s.verify_token(&b1.secret).await.unwrap().is_none());
        let all = s.list_tokens().await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.owner).collect::<Vec<_>>(),
            vec![Some(ann.id), Some(ann.id), Some(bob.id), None]
        );
    }
}
