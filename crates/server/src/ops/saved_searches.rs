//! Saved event searches: save, change and delete (audited), shared by the API, the dashboard
//! and the CLI. A search is seen by its owner and, when shared, by every operator; only its
//! owner or an admin changes or deletes it.

use dozor_store::{
    NewSavedSearch, SavedSearch, SavedSearchChange, Store, StoreError, saved_search_change_problem,
    saved_search_problem,
};
use serde_json::json;

use super::{OpError, audited};

/// Who asks: the name the store records as owner, and whether an admin (who may change every
/// search).
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub name: &'a str,
    pub admin: bool,
}

impl Asker<'_> {
    /// May see `s`: its owner, anyone when shared, an admin always.
    pub fn sees(&self, s: &SavedSearch) -> bool {
        self.admin || s.shared || s.owner == self.name
    }

    /// May change or delete `s`: its owner or an admin.
    pub fn may_change(&self, s: &SavedSearch) -> bool {
        self.admin || s.owner == self.name
    }
}

fn store_refusal(e: StoreError) -> OpError {
    match e {
        StoreError::Conflict(what) => OpError::Refused {
            slug: "name-taken",
            message: format!("{what} exists already; choose another name"),
        },
        StoreError::InvalidArgument(why) => OpError::invalid("saved_search", why),
        other => other.into(),
    }
}

/// A saved search `asker` may see (404 for one it may not: its existence is not told).
pub async fn visible(store: &dyn Store, asker: Asker<'_>, id: i64) -> Result<SavedSearch, OpError> {
    store
        .get_saved_search(id)
        .await?
        .filter(|s| asker.sees(s))
        .ok_or_else(|| OpError::NotFound(format!("saved search {id}")))
}

/// Saves a search owned by `asker` (validated, audited).
pub async fn create(
    store: &dyn Store,
    asker: Asker<'_>,
    search: &NewSavedSearch,
) -> Result<SavedSearch, OpError> {
    if let Some(why) = saved_search_problem(search) {
        return Err(OpError::invalid("saved_search", why));
    }
    let made = store
        .create_saved_search(search, asker.name)
        .await
        .map_err(store_refusal)?;
    audited(
        store,
        asker.name,
        "saved_search.create",
        format!("saved_search:{}", made.id),
        json!({
            "name": made.name,
            "query": made.query,
            "params": made.params,
            "shared": made.shared,
        }),
    )
    .await?;
    Ok(made)
}

/// Changes a search (its owner or an admin; validated, audited with what changed).
pub async fn update(
    store: &dyn Store,
    asker: Asker<'_>,
    id: i64,
    change: &SavedSearchChange,
) -> Result<SavedSearch, OpError> {
    if let Some(why) = saved_search_change_problem(change) {
        return Err(OpError::invalid("saved_search", why));
    }
    let before = visible(store, asker, id).await?;
    if !asker.may_change(&before) {
        return Err(OpError::Forbidden(format!(
            "saved search {id} is {}'s: only its owner or an admin may change it",
            before.owner
        )));
    }
    let after = store
        .update_saved_search(id, change)
        .await
        .map_err(store_refusal)?
        .ok_or_else(|| OpError::NotFound(format!("saved search {id}")))?;
    audited(
        store,
        asker.name,
        "saved_search.update",
        format!("saved_search:{id}"),
        json!({
            "owner": after.owner,
            "from": {"name": before.name, "query": before.query, "params": before.params, "shared": before.shared},
            "to": {"name": after.name, "query": after.query, "params": after.params, "shared": after.shared},
        }),
    )
    .await?;
    Ok(after)
}

/// Deletes a search (its owner or an admin; audited with what it was).
pub async fn delete(store: &dyn Store, asker: Asker<'_>, id: i64) -> Result<SavedSearch, OpError> {
    let found = visible(store, asker, id).await?;
    if !asker.may_change(&found) {
        return Err(OpError::Forbidden(format!(
            "saved search {id} is {}'s: only its owner or an admin may delete it",
            found.owner
        )));
    }
    let gone = store
        .delete_saved_search(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("saved search {id}")))?;
    audited(
        store,
        asker.name,
        "saved_search.delete",
        format!("saved_search:{id}"),
        json!({
            "owner": gone.owner,
            "name": gone.name,
            "query": gone.query,
            "params": gone.params,
            "shared": gone.shared,
        }),
    )
    .await?;
    Ok(gone)
}
