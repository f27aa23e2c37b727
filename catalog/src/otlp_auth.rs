//! The `control_plane` extension as a server authenticator: a receiver with
//! `auth: {authenticator: control_plane}` takes only requests carrying
//! `authorization: Bearer <token>` of a live (not revoked, not expired) token whose role may
//! ingest (edge or admin), the same tokens `POST /api/v1/ingest` takes.

use std::sync::Arc;

use weir_api::{AuthError, ServerAuthenticator};

use crate::auth::{check_token, Permission, TokenCheck};
use crate::control::ControlPlane;

/// Checks OTLP requests against the control plane's token store.
pub struct IngestTokens {
    control: Arc<ControlPlane>,
    /// `control_plane.auth`: false lets every request in (local trials only).
    required: bool,
}

impl IngestTokens {
    /// Checks against `control`'s tokens; with `required` false, accepts everything.
    pub fn new(control: Arc<ControlPlane>, required: bool) -> Self {
        IngestTokens { control, required }
    }
}

impl ServerAuthenticator for IngestTokens {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError> {
        if !self.required {
            return Ok(());
        }
        let value = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AuthError(
                    "missing bearer token (authorization: Bearer <edge or admin token>)".into(),
                )
            })?;
        match check_token(self.control.store(), token) {
            Ok(TokenCheck::Valid(p)) if p.role.allows(Permission::Edge) => Ok(()),
            Ok(TokenCheck::Valid(p)) => Err(AuthError(format!(
                "role {} may not send telemetry to the catalog (an edge or admin token is needed)",
                p.role.as_str()
            ))),
            Ok(TokenCheck::Expired { .. }) => Err(AuthError("expired token".into())),
            Ok(_) => Err(AuthError("invalid or revoked token".into())),
            Err(e) => {
                tracing::warn!(error = %e, "the OTLP receiver's token could not be checked");
                Err(AuthError("the token could not be checked".into()))
            }
        }
    }
}
