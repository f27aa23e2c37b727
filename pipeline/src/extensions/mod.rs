//! Extensions built into the engine.

pub mod bearertokenauth;
pub mod health_check;

use weir_api::Registry;

/// Adds the engine's extension types to the registry.
pub fn register(registry: &mut Registry) {
    registry.extension("health_check", health_check::HealthCheckFactory);
    registry.extension("bearertokenauth", bearertokenauth::BearerTokenAuthFactory);
}
