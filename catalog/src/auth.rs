//! API tokens and roles. Tokens are random, shown once, stored only as SHA-256 hashes;
//! a request's token is hashed and looked up, then compared in constant time.

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{now_secs, Store, TokenInfo};
use crate::CatalogError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read the catalog, findings, policies and status.
    Viewer,
    /// Viewer, plus create/edit/disable/delete policies and accept or dismiss suggestions.
    Editor,
    /// Everything, including managing tokens and deleting catalog data.
    Admin,
    /// An edge: policy sync and shipping metadata, nothing else.
    Edge,
}

/// One thing a request needs permission for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// GET on catalog, findings, policies, edges.
    Read,
    /// Change policies, accept/dismiss suggestions.
    EditPolicies,
    /// Tokens, audit log, deleting catalog data.
    Admin,
    /// PolicyService.Sync and metadata ingestion.
    Edge,
}

impl Role {
    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            "edge" => Some(Role::Edge),
            _ => None,
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Edge => "edge",
        }
    }

    /// Whether this role grants `p`.
    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (Role::Admin, _)
                | (Role::Editor, Permission::Read | Permission::EditPolicies)
                | (Role::Viewer, Permission::Read)
                | (Role::Edge, Permission::Edge)
        )
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id, or `anonymous` when auth is off.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// The edge name an edge token is bound to (`weir admin token create --role edge
    /// --edge NAME`). An edge token made before edges had names reports as
    /// `token-<id>`, so it can only ever speak for itself. `None` for other roles.
    pub edge: Option<String>,
}

impl Principal {
    /// The actor string written in the audit log.
    pub fn actor(&self) -> String {
        format!("token:{}", self.id)
    }

    /// The edge this principal reports as: its bound edge name, `token-<id>` for an
    /// unbound edge token, `local` for anyone else (admins, or auth off).
    pub fn edge_name(&self) -> String {
        match (&self.edge, self.role) {
            (Some(e), _) => e.clone(),
            (None, Role::Edge) => format!("token-{}", self.id),
            (None, _) => "local".into(),
        }
    }
}

/// Longest edge name.
pub const MAX_EDGE_NAME: usize = 64;

/// Checks an edge name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn check_edge_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_EDGE_NAME {
        return Err(format!(
            "edge: {} characters; an edge name has 1 to {MAX_EDGE_NAME}",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "edge: {c:?} is not allowed in an edge name (A-Z a-z 0-9 . _ -)"
        ));
    }
    Ok(())
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates a token that is not bound to an edge: returns the secret (to show once) and
/// its record.
pub fn create_token(
    store: &Store,
    role: Role,
    name: &str,
    actor: &str,
) -> Result<(String, TokenInfo), CatalogError> {
    create_token_for(store, role, name, None, actor)
}

/// Creates a token, an edge token bound to `edge`: returns the secret (to show once) and
/// its record. `edge` must pass [`check_edge_name`] and is only for role `edge`.
pub fn create_token_for(
    store: &Store,
    role: Role,
    name: &str,
    edge: Option<&str>,
    actor: &str,
) -> Result<(String, TokenInfo), CatalogError> {
    if let Some(e) = edge {
        if role != Role::Edge {
            return Err(CatalogError::Limit(
                "edge: only an edge token is bound to an edge".into(),
            ));
        }
        check_edge_name(e).map_err(CatalogError::Limit)?;
    }
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!(
        "weir_{id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let info = TokenInfo {
        id,
        role: role.as_str().to_string(),
        name: name.to_string(),
        created_at: now_secs(),
        revoked_at: None,
        edge: edge.map(str::to_string),
    };
    store.put_token(&info, &hash(&token), actor)?;
    Ok((token, info))
}

/// Resolves a presented token to its principal; `None` for unknown or revoked tokens.
pub fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, CatalogError> {
    let h = hash(token);
    let Some((info, stored)) = store.token_by_hash(&h)? else {
        return Ok(None);
    };
    if !bool::from(stored.as_slice().ct_eq(&h)) {
        return Ok(None);
    }
    let Some(role) = Role::parse(&info.role) else {
        return Ok(None);
    };
    Ok(Some(Principal {
        id: info.id,
        role,
        edge: info.edge,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        use Permission::*;
        let table = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Editor, [true, true, false, false]),
            (Role::Admin, [true, true, true, true]),
            (Role::Edge, [false, false, false, true]),
        ];
        for (role, expect) in table {
            let got = [Read, EditPolicies, Admin, Edge].map(|p| role.allows(p));
            assert_eq!(got, expect, "{role:?}");
        }
    }

    #[test]
    fn tokens_are_stored_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::open(&path).unwrap();
        let (token, info) = create_token(&store, Role::Editor, "ci", "cli").unwrap();
        assert!(token.starts_with(&format!("weir_{}_", info.id)));
        let p = authenticate(&store, &token).unwrap().unwrap();
        assert_eq!(p.role, Role::Editor);
        assert!(authenticate(&store, &format!("{token}x"))
            .unwrap()
            .is_none());
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let store = Store::open(&path).unwrap();
        assert!(store.revoke_token(&info.id, "cli").unwrap());
        assert!(authenticate(&store, &token).unwrap().is_none());
    }
}
