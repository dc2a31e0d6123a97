//! The `notify.*` playbook modules over `dozor-notify`.

use std::sync::Arc;

use async_trait::async_trait;
use dozor_playbook::{Catalog, Module, ModuleCtx, ModuleError, Registry};
use serde_json::Value;

use crate::config::NotifyConfig;

pub fn register(registry: &mut Registry, catalog: &Catalog, notify: &NotifyConfig) {
    for name in [
        "notify.webhook",
        "notify.email",
        "notify.telegram",
        "notify.mattermost",
    ] {
        if let Some(spec) = catalog.get(name) {
            registry.register(
                spec.clone(),
                Arc::new(Pending {
                    name,
                    _config: notify.clone(),
                }),
            );
        }
    }
}

// Replaced by the dozor-notify channels when that crate lands.
struct Pending {
    name: &'static str,
    _config: NotifyConfig,
}

#[async_trait]
impl Module for Pending {
    async fn run(&self, _args: Value, _ctx: &ModuleCtx<'_>) -> Result<Value, ModuleError> {
        Err(ModuleError::new(format!(
            "{} is not available yet",
            self.name
        )))
    }
}
