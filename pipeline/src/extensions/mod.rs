//! Extensions built into the engine.

pub mod bearertokenauth;
pub mod health_check;
pub mod pprof;
pub mod zpages;

use weir_api::Registry;

/// Adds the engine's extension types to the registry.
pub fn register(registry: &mut Registry) {
    registry.extension("health_check", health_check::HealthCheckFactory);
    registry.extension("bearertokenauth", bearertokenauth::BearerTokenAuthFactory);
    registry.extension("zpages", zpages::ZPagesFactory);
    registry.extension("pprof", pprof::PprofFactory);
}
