//! Behavioural analytics operations: asking the models to train again (the API and the
//! dashboard's button), audited.

use serde_json::json;

use super::{OpError, audited};
use crate::anomaly::AnomalyService;

/// Asks the job to learn the look-back window again now, audited as `anomaly.train`.
/// Refused (`anomaly-off`) when behavioural analytics is off.
pub async fn request_training(service: &AnomalyService, actor: &str) -> Result<(), OpError> {
    service.request_training().map_err(|_| OpError::Refused {
        slug: "anomaly-off",
        message: "behavioural analytics is off: set anomaly.enabled = true and restart the server"
            .into(),
    })?;
    audited(
        service.store().as_ref(),
        actor,
        "anomaly.train",
        "anomaly".into(),
        json!({"lookback_days": service.config().lookback_days}),
    )
    .await
}
