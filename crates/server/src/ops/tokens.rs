//! Personal API tokens of operator accounts.

use dozor_store::{CreatedToken, NewToken, Role, Store, StoreError};
use serde_json::json;

use super::{OpError, audited};

/// Longest token name, characters.
pub const MAX_TOKEN_NAME: usize = 200;

/// Creates a token owned by `owner` (id, name, role) with a role at most the owner's; the
/// secret is in the answer only.
pub async fn create_personal(
    store: &dyn Store,
    owner: (i64, &str, Role),
    name: &str,
    role: Role,
    expires_at: Option<i64>,
) -> Result<CreatedToken, OpError> {
    let (owner_id, owner_name, owner_role) = owner;
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_TOKEN_NAME
        || name.chars().any(char::is_control)
    {
        return Err(OpError::invalid(
            "name",
            "a token name has 1 to 200 characters without control characters",
        ));
    }
    if !role.is_operator_role() || role.privilege() > owner_role.privilege() {
        return Err(OpError::Forbidden(format!(
            "a {} may create tokens of at most its own role",
            owner_role.as_str()
        )));
    }
    let created = store
        .create_token(&NewToken {
            name: name.to_owned(),
            role,
            expires_at,
            owner: Some(owner_id),
        })
        .await
        .map_err(|e| match e {
            StoreError::InvalidArgument(why) => OpError::invalid("name", why),
            other => other.into(),
        })?;
    audited(
        store,
        owner_name,
        "token.create",
        format!("token:{}", created.info.id),
        json!({"name": created.info.name, "role": role.as_str(), "expires_at": expires_at}),
    )
    .await?;
    Ok(created)
}

/// Revokes one of the user's own tokens (another's is [`OpError::NotFound`]).
pub async fn revoke_own(
    store: &dyn Store,
    owner: (i64, &str),
    token_id: i64,
) -> Result<(), OpError> {
    if !store.revoke_user_token(owner.0, token_id).await? {
        return Err(OpError::NotFound(format!("token {token_id}")));
    }
    audited(
        store,
        owner.1,
        "token.revoke",
        format!("token:{token_id}"),
        json!({}),
    )
    .await
}
