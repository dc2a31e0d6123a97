//! Operator accounts: creation, role, disabling, passwords, language. Used by the dashboard
//! and by `dozor users`.

use dozor_store::{NewUser, Role, Store, StoreError, User};
use serde_json::json;

use super::{OpError, audited};
use crate::password::{self, PasswordError};

/// An operator role (admin, analyst or viewer) from its name.
pub fn operator_role(text: &str) -> Result<Role, OpError> {
    text.parse::<Role>()
        .ok()
        .filter(|r| r.is_operator_role())
        .ok_or_else(|| {
            OpError::invalid(
                "role",
                format!("unknown role {text:?}: admin, analyst or viewer"),
            )
        })
}

/// Hashes on a blocking thread (argon2id takes tens of milliseconds and 19 MiB).
async fn hash(password: String) -> Result<String, OpError> {
    let hashed = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .unwrap_or_else(|e| Err(PasswordError::Hash(e.to_string())));
    hashed.map_err(|e| match e {
        PasswordError::Hash(why) => {
            tracing::error!("password hashing failed: {why}");
            OpError::Store(StoreError::InvalidArgument(
                "password hashing failed".into(),
            ))
        }
        weak => OpError::invalid("password", weak.to_string()),
    })
}

/// The new password: the one given, or a generated one (then returned so it can be shown
/// once).
async fn new_password(given: Option<String>) -> Result<(String, Option<String>), OpError> {
    match given {
        Some(p) => Ok((hash(p).await?, None)),
        None => {
            let generated = password::generate();
            Ok((hash(generated.clone()).await?, Some(generated)))
        }
    }
}

/// Creates an account. `password: None` generates one, returned with the user.
pub async fn create(
    store: &dyn Store,
    actor: &str,
    username: &str,
    role: Role,
    password: Option<String>,
    language: Option<String>,
) -> Result<(User, Option<String>), OpError> {
    if !role.is_operator_role() {
        return Err(OpError::invalid("role", "admin, analyst or viewer"));
    }
    let (password_hash, generated) = new_password(password).await?;
    let user = store
        .create_user(&NewUser {
            username: username.to_owned(),
            password_hash,
            role,
            language,
            created_by: actor.to_owned(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => OpError::Refused {
                slug: "username-taken",
                message: why,
            },
            StoreError::InvalidArgument(why) => OpError::invalid("username", why),
            other => other.into(),
        })?;
    audited(
        store,
        actor,
        "user.create",
        format!("user:{}", user.username),
        json!({ "role": role.as_str() }),
    )
    .await?;
    Ok((user, generated))
}

async fn existing(store: &dyn Store, id: i64) -> Result<User, OpError> {
    store
        .get_user(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("user {id}")))
}

/// Another user than the one acting (`acting`: the acting account, if any): one cannot
/// change one's own role or lock oneself out.
async fn other_user(store: &dyn Store, id: i64, acting: Option<i64>) -> Result<User, OpError> {
    let target = existing(store, id).await?;
    if acting == Some(target.id) {
        return Err(OpError::Refused {
            slug: "self",
            message: "you cannot change your own role or disable yourself".into(),
        });
    }
    Ok(target)
}

fn last_admin(e: StoreError) -> OpError {
    match e {
        StoreError::InvalidArgument(why) => OpError::Refused {
            slug: "last-admin",
            message: why,
        },
        other => other.into(),
    }
}

/// What an administrator changes about another account, under the last-administrator guard.
enum AccountChange {
    Role(Role),
    Disabled(bool),
}

async fn change_other(
    store: &dyn Store,
    actor: &str,
    acting: Option<i64>,
    id: i64,
    change: AccountChange,
) -> Result<User, OpError> {
    let target = other_user(store, id, acting).await?;
    let (changed, action, details) = match change {
        AccountChange::Role(role) => (
            store.set_user_role(target.id, role).await,
            "user.role",
            json!({ "from": target.role.as_str(), "to": role.as_str() }),
        ),
        AccountChange::Disabled(disabled) => (
            store.set_user_disabled(target.id, disabled).await,
            if disabled {
                "user.disable"
            } else {
                "user.enable"
            },
            json!({}),
        ),
    };
    let user = changed
        .map_err(last_admin)?
        .ok_or_else(|| OpError::NotFound(format!("user {id}")))?;
    audited(
        store,
        actor,
        action,
        format!("user:{}", target.username),
        details,
    )
    .await?;
    Ok(user)
}

/// Changes another user's role (never leaving no enabled administrator).
pub async fn set_role(
    store: &dyn Store,
    actor: &str,
    acting: Option<i64>,
    id: i64,
    role: Role,
) -> Result<User, OpError> {
    change_other(store, actor, acting, id, AccountChange::Role(role)).await
}

/// Disables (its sessions end, its tokens stop working) or enables another user.
pub async fn set_disabled(
    store: &dyn Store,
    actor: &str,
    acting: Option<i64>,
    id: i64,
    disabled: bool,
) -> Result<User, OpError> {
    change_other(store, actor, acting, id, AccountChange::Disabled(disabled)).await
}

/// Sets a user's password (`None`: a generated one, returned); its sessions end.
pub async fn reset_password(
    store: &dyn Store,
    actor: &str,
    id: i64,
    password: Option<String>,
) -> Result<(User, Option<String>), OpError> {
    let target = existing(store, id).await?;
    let (password_hash, generated) = new_password(password).await?;
    let user = store
        .set_user_password(target.id, &password_hash)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("user {id}")))?;
    audited(
        store,
        actor,
        "user.password",
        format!("user:{}", target.username),
        json!({}),
    )
    .await?;
    Ok((user, generated))
}

/// A user changes their own password, proving the current one; all their sessions end.
pub async fn change_own_password(
    store: &dyn Store,
    username: &str,
    current: String,
    new: String,
) -> Result<User, OpError> {
    let (user, phc) = store
        .find_user(username)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("user {username}")))?;
    let matches = tokio::task::spawn_blocking(move || password::verify(&current, &phc))
        .await
        .unwrap_or(false);
    if !matches {
        return Err(OpError::Refused {
            slug: "password-wrong",
            message: "the current password is wrong".into(),
        });
    }
    let password_hash = hash(new).await?;
    let user = store
        .set_user_password(user.id, &password_hash)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("user {username}")))?;
    audited(
        store,
        username,
        "user.password",
        format!("user:{username}"),
        json!({ "own": true }),
    )
    .await?;
    Ok(user)
}

/// Sets a user's interface language (`None`: the browser's); `from` is the setting it
/// replaces (for the audit log).
pub async fn set_language(
    store: &dyn Store,
    user: (i64, &str),
    from: Option<&str>,
    to: Option<&str>,
) -> Result<User, OpError> {
    let (id, username) = user;
    let changed = store
        .set_user_language(id, to)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("user {id}")))?;
    audited(
        store,
        username,
        "user.language",
        format!("user:{username}"),
        json!({ "from": from, "to": to }),
    )
    .await?;
    Ok(changed)
}
