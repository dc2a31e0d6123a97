//! Administration (users, audit log) and the user's own profile (language, password, tokens).

use askama::Template;
use dozor_model::{Role, TokenInfo};

use super::alerts::Opt;
use super::layout::Layout;
use super::{When, clip, render, when};
use crate::i18n::{Lang, Tr};
use crate::role_key;
use crate::url::Query;
use crate::view::{AuditView, OneTimeSecret, PageCtx, ProfileView, UsersView};

fn role_opts(tr: &Tr, current: Option<Role>, ceiling: Role) -> Vec<Opt> {
    Role::OPERATOR
        .iter()
        .filter(|r| r.privilege() <= ceiling.privilege())
        .map(|r| Opt {
            value: r.as_str(),
            label: tr.t(role_key(*r)),
            selected: current == Some(*r),
        })
        .collect()
}

struct UserLine {
    id: i64,
    username: String,
    is_self: bool,
    role: &'static str,
    roles: Vec<Opt>,
    disabled: bool,
    state: String,
    last_login: String,
    created: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    l: Layout,
    tr: Tr,
    users: Vec<UserLine>,
    new_roles: Vec<Opt>,
    secret: Option<&'a OneTimeSecret>,
    shown: String,
}

/// The users page (admins): create, change role, disable/enable, reset password. Forms post
/// to `/ui/users`, `/ui/users/{id}/role`, `/ui/users/{id}/disabled`, `/ui/users/{id}/password`.
pub fn users(ctx: &PageCtx, v: &UsersView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "users", tr.t("users.title").to_owned());
    let users = v
        .users
        .iter()
        .map(|u| UserLine {
            id: u.id,
            username: u.username.clone(),
            is_self: u.username.to_lowercase() == ctx.username.to_lowercase(),
            role: tr.t(role_key(u.role)),
            roles: role_opts(&tr, Some(u.role), Role::Admin),
            disabled: u.disabled_at.is_some(),
            state: match u.disabled_at {
                Some(t) => tr.tf("users.disabled_since", &[("time", &tr.dt(t))]),
                None => tr.t("users.active").to_owned(),
            },
            last_login: u
                .last_login_at
                .map_or_else(|| tr.t("time.never").to_owned(), |t| tr.ago(t)),
            created: tr.tf(
                "users.created_by",
                &[("time", &tr.dt(u.created_at)), ("who", &u.created_by)],
            ),
        })
        .collect();
    render(&UsersPage {
        users,
        new_roles: role_opts(&tr, Some(Role::Viewer), Role::Admin),
        secret: v.new_password.as_ref(),
        shown: tr.tn("users.count", v.users.len() as u64),
        l,
        tr,
    })
}

/// The catalog key of an audit action's description, if it is one we know.
fn audit_action_key(action: &str) -> Option<&'static str> {
    Some(match action {
        "alert.status" => "audit.alert.status",
        "alert.assign" => "audit.alert.assign",
        "alert.comment" => "audit.alert.comment",
        "rule.enable" => "audit.rule.enable",
        "rule.disable" => "audit.rule.disable",
        "rules.reload" => "audit.rules.reload",
        "agent.enroll" => "audit.agent.enroll",
        "agent.renew" => "audit.agent.renew",
        "agent.revoke" => "audit.agent.revoke",
        "agent.online" => "audit.agent.online",
        "login" => "audit.login",
        "login.failed" => "audit.login.failed",
        "logout" => "audit.logout",
        "user.create" => "audit.user.create",
        "user.role" => "audit.user.role",
        "user.disable" => "audit.user.disable",
        "user.enable" => "audit.user.enable",
        "user.password" => "audit.user.password",
        "user.language" => "audit.user.language",
        "token.create" => "audit.token.create",
        "token.revoke" => "audit.token.revoke",
        _ => return None,
    })
}

struct AuditLine {
    when: When,
    actor: String,
    action: String,
    code: String,
    target: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    l: Layout,
    tr: Tr,
    v: &'a AuditView,
    lines: Vec<AuditLine>,
    older_href: Option<String>,
    newest_href: Option<String>,
}

/// The audit log page (admins); parameters `actor`, `action`, `before` (an entry id).
pub fn audit(ctx: &PageCtx, v: &AuditView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "audit", tr.t("audit.title").to_owned());
    let lines = v
        .entries
        .iter()
        .map(|e| AuditLine {
            when: when(&tr, e.at),
            actor: e.actor.clone(),
            action: audit_action_key(&e.action)
                .map_or_else(|| e.action.clone(), |k| tr.t(k).to_owned()),
            code: e.action.clone(),
            target: e.target.clone().unwrap_or_default(),
            details: match &e.details {
                serde_json::Value::Object(m) if m.is_empty() => String::new(),
                serde_json::Value::Null => String::new(),
                d => clip(&d.to_string(), 2000),
            },
        })
        .collect();
    let mut q = Query::new();
    q.push("actor", &v.actor).push("action", &v.action);
    render(&AuditPage {
        older_href: v
            .next_before
            .map(|b| q.with("before", b.to_string()).url("/ui/audit")),
        newest_href: v.paged.then(|| q.url("/ui/audit")),
        lines,
        v,
        l,
        tr,
    })
}

struct TokenLine {
    id: i64,
    name: String,
    role: &'static str,
    created: When,
    expires: String,
    last_used: String,
    state: &'static str,
    state_class: &'static str,
    active: bool,
}

fn token_line(tr: &Tr, t: &TokenInfo, now: i64) -> TokenLine {
    let (state, state_class, active) = if t.revoked_at.is_some() {
        (tr.t("tokens.revoked"), "st st-resolved", false)
    } else if t.expires_at.is_some_and(|e| e <= now) {
        (tr.t("tokens.expired"), "st st-false_positive", false)
    } else {
        (tr.t("tokens.active"), "st st-new", true)
    };
    TokenLine {
        id: t.id,
        name: t.name.clone(),
        role: tr.t(role_key(t.role)),
        created: when(tr, t.created_at),
        expires: t
            .expires_at
            .map_or_else(|| tr.t("tokens.never_expires").to_owned(), |e| tr.dt(e)),
        last_used: t
            .last_used_at
            .map_or_else(|| tr.t("time.never").to_owned(), |u| tr.ago(u)),
        state,
        state_class,
        active,
    }
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage<'a> {
    l: Layout,
    tr: Tr,
    username: &'a str,
    role: &'static str,
    languages: Vec<Opt>,
    tokens: Vec<TokenLine>,
    token_roles: Vec<Opt>,
    expiries: Vec<Opt>,
    secret: Option<&'a OneTimeSecret>,
}

/// The profile page: language (`/ui/profile/language`), password (`/ui/profile/password`),
/// personal API tokens (`/ui/profile/tokens`, `/ui/profile/tokens/{id}/revoke`).
pub fn profile(ctx: &PageCtx, v: &ProfileView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "profile", tr.t("profile.title").to_owned());
    let languages = [
        ("auto", "profile.lang_auto", None),
        ("en", "profile.lang_en", Some(Lang::En)),
        ("ru", "profile.lang_ru", Some(Lang::Ru)),
    ]
    .iter()
    .map(|(value, key, lang)| Opt {
        value,
        label: tr.t(key),
        selected: v.language == *lang,
    })
    .collect();
    let expiries = [
        ("30", "tokens.exp_30"),
        ("90", "tokens.exp_90"),
        ("365", "tokens.exp_365"),
        ("never", "tokens.exp_never"),
    ]
    .iter()
    .map(|(value, key)| Opt {
        value,
        label: tr.t(key),
        selected: *value == "90",
    })
    .collect();
    let ceiling = if matches!(ctx.role, Role::AgentIngest) {
        Role::Viewer
    } else {
        ctx.role
    };
    render(&ProfilePage {
        username: &ctx.username,
        role: tr.t(role_key(ctx.role)),
        languages,
        tokens: v
            .tokens
            .iter()
            .map(|t| token_line(&tr, t, ctx.now))
            .collect(),
        token_roles: role_opts(&tr, Some(Role::Viewer), ceiling),
        expiries,
        secret: v.new_token.as_ref(),
        l,
        tr,
    })
}
