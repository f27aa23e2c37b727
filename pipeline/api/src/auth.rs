//! Server authenticators: extensions a receiver names in `auth.authenticator` (as the
//! collector's `configauth`), asked for every request before anything of it is read.
//!
//! An extension offers one through [`crate::Component::server_authenticator`]; the engine
//! collects them after building the extensions and hands them to receivers in
//! [`crate::BuildContext::authenticators`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{BuildError, ComponentId};

/// Why a request was not authenticated. The message goes back to the client (HTTP 401
/// body, gRPC UNAUTHENTICATED message): it names what is wrong, never the expected secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Checks the credentials of one incoming request.
pub trait ServerAuthenticator: Send + Sync {
    /// Accepts or refuses a request by its headers (HTTP headers, or gRPC metadata as HTTP/2
    /// headers; names are lower case). Must not block for long: it runs on the receiver's
    /// task, before the request body is read.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), AuthError>;
}

/// Adds credentials to outgoing requests: an extension an exporter names in
/// `auth.authenticator` (the collector's client authenticators).
pub trait ClientAuthenticator: Send + Sync {
    /// The headers (HTTP headers, or gRPC metadata; names lower case) to set on the next
    /// request, replacing any of the same name. Called for every request; must not block for
    /// long.
    fn headers(&self) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, AuthError>;
}

/// The authenticators the service's extensions offer, by extension id. An extension that is
/// listed in `service.extensions` but is no authenticator is present as `None`, so a
/// receiver naming it is told exactly that.
#[derive(Clone, Default)]
pub struct Authenticators {
    by_id: Arc<BTreeMap<ComponentId, Option<Arc<dyn ServerAuthenticator>>>>,
    clients: Arc<BTreeMap<ComponentId, Option<Arc<dyn ClientAuthenticator>>>>,
}

impl Authenticators {
    /// Builds the set from the started extensions' offers.
    pub fn new(by_id: BTreeMap<ComponentId, Option<Arc<dyn ServerAuthenticator>>>) -> Self {
        Authenticators {
            by_id: Arc::new(by_id),
            clients: Arc::default(),
        }
    }

    /// The same set with the client authenticators the extensions offer (exporters' `auth`).
    pub fn with_clients(
        mut self,
        clients: BTreeMap<ComponentId, Option<Arc<dyn ClientAuthenticator>>>,
    ) -> Self {
        self.clients = Arc::new(clients);
        self
    }

    /// The client authenticator of extension `name`, for the exporter `id` whose YAML `path`
    /// names it; the error names that path.
    pub fn client(
        &self,
        id: &ComponentId,
        path: &str,
        name: &str,
    ) -> Result<Arc<dyn ClientAuthenticator>, BuildError> {
        let fail = |message: String| BuildError::message(id, format!("{path}: {message}"));
        let key = ComponentId::parse(name).map_err(|e| fail(e.to_string()))?;
        match self.clients.get(&key) {
            Some(Some(a)) => Ok(a.clone()),
            Some(None) => Err(fail(format!(
                "extension \"{name}\" is not a client authenticator (use bearertokenauth)"
            ))),
            None => Err(fail(format!(
                "extension \"{name}\" is not configured and listed in service.extensions"
            ))),
        }
    }

    /// The server authenticator of extension `name` (as written in the config), for the
    /// component `id` whose YAML `path` names it; the error names that path.
    pub fn server(
        &self,
        id: &ComponentId,
        path: &str,
        name: &str,
    ) -> Result<Arc<dyn ServerAuthenticator>, BuildError> {
        let fail = |message: String| BuildError::message(id, format!("{path}: {message}"));
        let key = ComponentId::parse(name).map_err(|e| fail(e.to_string()))?;
        match self.by_id.get(&key) {
            Some(Some(a)) => Ok(a.clone()),
            Some(None) => Err(fail(format!(
                "extension \"{name}\" is not a server authenticator (use bearertokenauth or control_plane)"
            ))),
            None => Err(fail(format!(
                "extension \"{name}\" is not configured and listed in service.extensions"
            ))),
        }
    }
}
