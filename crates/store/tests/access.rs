//! API tokens, agent enrollment tokens and the audit log. Every scenario runs against SQLite
//! (always) and PostgreSQL (when `DOZOR_TEST_POSTGRES_URL` is set).

#[macro_use]
mod common;

use common::*;
use dozor_store::*;
use serde_json::json;

suite!(
    tokens,
    audit_log_is_append_only,
    enrollment_tokens,
    enrollment_token_concurrent_redeem,
);

mod scenarios {
    use super::*;

    pub async fn tokens(s: S, _raw: Raw) {
        let t = s
            .create_token(&NewToken {
                name: "ci".into(),
                role: Role::Analyst,
                expires_at: None,
                owner: None,
            })
            .await
            .unwrap();
        assert!(t.secret.starts_with(TOKEN_PREFIX));
        assert!(t.info.last_used_at.is_none());
        let v = s.verify_token(&t.secret).await.unwrap().unwrap();
        assert_eq!(
            (v.id, v.role, v.name.as_str()),
            (t.info.id, Role::Analyst, "ci")
        );
        assert!(v.last_used_at.is_some());
        // the secret is stored nowhere
        let listed = s.list_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !serde_json::to_string(&listed)
                .unwrap()
                .contains(&t.secret[4..])
        );
        assert_eq!(listed[0].last_used_at, v.last_used_at);

        // wrong, garbage, truncated, case-changed
        let mut wrong = t.secret.clone();
        wrong.pop();
        wrong.push(if t.secret.ends_with('A') { 'B' } else { 'A' });
        for bad in [
            wrong.as_str(),
            "",
            "dzt_",
            "Bearer x",
            &t.secret[..20],
            &t.secret.to_uppercase(),
        ] {
            assert!(s.verify_token(bad).await.unwrap().is_none(), "{bad}");
        }

        let expired = s
            .create_token(&NewToken {
                name: "old".into(),
                role: Role::Admin,
                expires_at: Some(now_ms() - 1000),
                owner: None,
            })
            .await
            .unwrap();
        assert!(s.verify_token(&expired.secret).await.unwrap().is_none());
        let future = s
            .create_token(&NewToken {
                name: "agent".into(),
                role: Role::AgentIngest,
                expires_at: Some(now_ms() + 3_600_000),
                owner: None,
            })
            .await
            .unwrap();
        assert_eq!(
            s.verify_token(&future.secret).await.unwrap().unwrap().role,
            Role::AgentIngest
        );
        assert!(s.revoke_token(future.info.id).await.unwrap());
        assert!(!s.revoke_token(future.info.id).await.unwrap());
        assert!(!s.revoke_token(424242).await.unwrap());
        assert!(s.verify_token(&future.secret).await.unwrap().is_none());
        let listed = s.list_tokens().await.unwrap();
        assert!(listed[2].revoked_at.is_some());
        assert!(s.verify_token(&t.secret).await.unwrap().is_some());
        assert!(matches!(
            s.create_token(&NewToken {
                name: " ".into(),
                role: Role::Viewer,
                expires_at: None,
                owner: None,
            })
            .await,
            Err(StoreError::InvalidArgument(_))
        ));
    }

    pub async fn audit_log_is_append_only(s: S, raw: Raw) {
        for (actor, action) in [
            ("ann", "login"),
            ("ann", "alert.status"),
            ("bob", "token.create"),
        ] {
            s.append_audit(&NewAuditEntry {
                actor: actor.into(),
                action: action.into(),
                target: Some("alert:1".into()),
                details: json!({"from": "new", "to": "acknowledged", "ip": "10.0.0.1"}),
            })
            .await
            .unwrap();
        }
        let null = s
            .append_audit(&NewAuditEntry {
                actor: "system".into(),
                action: "purge".into(),
                target: None,
                details: serde_json::Value::Null,
            })
            .await
            .unwrap();
        assert_eq!(null.details, json!({}));
        let all = s.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            vec!["purge", "token.create", "alert.status", "login"]
        );
        assert_eq!(all[1].details["ip"], "10.0.0.1");
        let ann = s
            .list_audit(&AuditQuery {
                actor: Some("ann".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ann.len(), 2);
        let older = s
            .list_audit(&AuditQuery {
                before_id: Some(all[1].id),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].action, "alert.status");
        // SQL cannot rewrite history either
        let upd = raw.exec("UPDATE audit_log SET actor = 'mallory'").await;
        assert!(upd.unwrap_err().contains("append-only"));
        let del = raw.exec("DELETE FROM audit_log").await;
        assert!(del.unwrap_err().contains("append-only"));
        assert_eq!(s.list_audit(&AuditQuery::default()).await.unwrap().len(), 4);
    }

    fn enroll_token(
        name: &str,
        max_uses: Option<u32>,
        expires_at: Option<i64>,
    ) -> NewEnrollmentToken {
        NewEnrollmentToken {
            name: name.into(),
            expires_at,
            max_uses,
            created_by: "ann".into(),
            may_replace: None,
        }
    }

    pub async fn enrollment_tokens(s: S, _raw: Raw) {
        let t = s
            .create_enrollment_token(&enroll_token("linux fleet", Some(2), None))
            .await
            .unwrap();
        assert!(t.secret.starts_with(ENROLLMENT_TOKEN_PREFIX));
        assert_eq!(t.secret.len(), ENROLLMENT_TOKEN_PREFIX.len() + 43);
        assert_eq!(
            (t.info.name.as_str(), t.info.created_by.as_str()),
            ("linux fleet", "ann")
        );
        assert_eq!((t.info.max_uses, t.info.uses), (Some(2), 0));
        assert!(t.info.last_used_at.is_none() && t.info.revoked_at.is_none());

        // checking spends nothing; tokens may replace no agent unless created so
        let checked = s.check_enrollment_token(&t.secret).await.unwrap().unwrap();
        assert_eq!((checked.uses, checked.may_replace.as_deref()), (0, None));
        assert!(!checked.allows_replacing("ws-01"));

        // used up after two enrollments
        let first = s.redeem_enrollment_token(&t.secret).await.unwrap().unwrap();
        assert_eq!((first.id, first.uses), (t.info.id, 1));
        assert!(first.last_used_at.is_some());
        // surrounding white space is tolerated, like for API tokens
        let second = s
            .redeem_enrollment_token(&format!(" {}\n", t.secret))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.uses, 2);
        assert_eq!(
            s.redeem_enrollment_token(&t.secret).await.unwrap(),
            Err(EnrollmentRefusal::UsedUp)
        );
        assert_eq!(
            s.check_enrollment_token(&t.secret).await.unwrap(),
            Err(EnrollmentRefusal::UsedUp)
        );
        // a refused redeem changes nothing
        let listed = s.list_enrollment_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uses, 2);
        assert_eq!(listed[0].last_used_at, second.last_used_at);

        // expired
        let expired = s
            .create_enrollment_token(&enroll_token("old", None, Some(now_ms() - 1000)))
            .await
            .unwrap();
        assert_eq!(
            s.redeem_enrollment_token(&expired.secret).await.unwrap(),
            Err(EnrollmentRefusal::Expired)
        );

        // revoked (revocation wins over expiry and exhaustion)
        let revoked = s
            .create_enrollment_token(&enroll_token("gone", Some(5), Some(now_ms() + 3_600_000)))
            .await
            .unwrap();
        assert!(
            s.redeem_enrollment_token(&revoked.secret)
                .await
                .unwrap()
                .is_ok()
        );
        assert!(s.revoke_enrollment_token(revoked.info.id).await.unwrap());
        assert!(!s.revoke_enrollment_token(revoked.info.id).await.unwrap());
        assert!(!s.revoke_enrollment_token(424242).await.unwrap());
        assert_eq!(
            s.redeem_enrollment_token(&revoked.secret).await.unwrap(),
            Err(EnrollmentRefusal::Revoked)
        );
        assert!(s.revoke_enrollment_token(t.info.id).await.unwrap());
        assert_eq!(
            s.redeem_enrollment_token(&t.secret).await.unwrap(),
            Err(EnrollmentRefusal::Revoked)
        );

        // unlimited
        let open = s
            .create_enrollment_token(&enroll_token("unlimited", None, None))
            .await
            .unwrap();
        for i in 1..=25 {
            let info = s
                .redeem_enrollment_token(&open.secret)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((info.uses, info.max_uses), (i, None));
        }

        // garbage, truncated, altered, the wrong kind of token
        let api = s
            .create_token(&NewToken {
                name: "api".into(),
                role: Role::Admin,
                expires_at: None,
                owner: None,
            })
            .await
            .unwrap();
        let mut altered = open.secret.clone();
        altered.pop();
        altered.push(if open.secret.ends_with('A') { 'B' } else { 'A' });
        let as_api = open
            .secret
            .replacen(ENROLLMENT_TOKEN_PREFIX, TOKEN_PREFIX, 1);
        for bad in [
            "",
            "dze_",
            "Bearer x",
            &open.secret[..20],
            &open.secret.to_uppercase(),
            altered.as_str(),
            api.secret.as_str(),
            as_api.as_str(),
            "dze_'; DROP TABLE agents; --aaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(
                s.redeem_enrollment_token(bad).await.unwrap(),
                Err(EnrollmentRefusal::Unknown),
                "{bad}"
            );
        }
        // and an enrollment token is no API token
        assert!(s.verify_token(&open.secret).await.unwrap().is_none());
        assert!(s.verify_token(&api.secret).await.unwrap().is_some());

        // the secrets are stored nowhere
        let listed = s.list_enrollment_tokens().await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            vec!["linux fleet", "old", "gone", "unlimited"]
        );
        let text = serde_json::to_string(&listed).unwrap();
        for secret in [&t.secret, &expired.secret, &revoked.secret, &open.secret] {
            assert!(!text.contains(&secret[4..]));
        }
        assert_eq!(listed[2].uses, 1);
        assert!(listed[2].revoked_at.is_some());
        assert_eq!(listed[3].uses, 25);

        // validation
        for bad in [
            enroll_token(" ", None, None),
            enroll_token(&"x".repeat(201), None, None),
            enroll_token("zero", Some(0), None),
        ] {
            assert!(
                matches!(
                    s.create_enrollment_token(&bad).await,
                    Err(StoreError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(s.list_enrollment_tokens().await.unwrap().len(), 4);
        // a large limit round-trips
        let big = s
            .create_enrollment_token(&enroll_token("big", Some(u32::MAX), None))
            .await
            .unwrap();
        assert_eq!(big.info.max_uses, Some(u32::MAX));
        // a replacing token: one hostname (case-insensitively) or any
        let one = s
            .create_enrollment_token(&NewEnrollmentToken {
                may_replace: Some(" WS-01.Corp ".into()),
                ..enroll_token("reinstall ws-01", Some(1), None)
            })
            .await
            .unwrap();
        assert_eq!(one.info.may_replace.as_deref(), Some("ws-01.corp"));
        assert!(
            one.info.allows_replacing("ws-01.CORP") && !one.info.allows_replacing("ws-02.corp")
        );
        let any = s
            .create_enrollment_token(&NewEnrollmentToken {
                may_replace: Some(REPLACE_ANY_HOSTNAME.into()),
                ..enroll_token("reinstall any", Some(1), None)
            })
            .await
            .unwrap();
        assert!(any.info.allows_replacing("whatever"));
        let redeemed = s
            .redeem_enrollment_token(&any.secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(redeemed.may_replace.as_deref(), Some(REPLACE_ANY_HOSTNAME));
        assert!(matches!(
            s.create_enrollment_token(&NewEnrollmentToken {
                may_replace: Some(" ".into()),
                ..enroll_token("blank", Some(1), None)
            })
            .await,
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(
            s.redeem_enrollment_token(&big.secret)
                .await
                .unwrap()
                .unwrap()
                .max_uses,
            Some(u32::MAX)
        );
    }

    pub async fn enrollment_token_concurrent_redeem(s: S, _raw: Raw) {
        let t = s
            .create_enrollment_token(&enroll_token("five", Some(5), None))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (s, secret) = (s.clone(), t.secret.clone());
            tasks.push(tokio::spawn(async move {
                s.redeem_enrollment_token(&secret).await.unwrap()
            }));
        }
        let mut uses = Vec::new();
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(info) => uses.push(info.uses),
                Err(r) => {
                    assert_eq!(r, EnrollmentRefusal::UsedUp);
                    refused += 1;
                }
            }
        }
        uses.sort_unstable();
        assert_eq!(uses, vec![1, 2, 3, 4, 5]);
        assert_eq!(refused, 15);
        assert_eq!(s.list_enrollment_tokens().await.unwrap()[0].uses, 5);
    }
}
