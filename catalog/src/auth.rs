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
    /// True for a person signed in with a session (`id` is the user name); false for a
    /// token (`id` is the token id).
    pub user: bool,
}

impl Principal {
    /// The actor string written in the audit log: `token:<id>` or `user:<name>`.
    pub fn actor(&self) -> String {
        if self.user {
            format!("user:{}", self.id)
        } else {
            format!("token:{}", self.id)
        }
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

/// How long a token lives when `--expires` is not given: 90 days for people-facing roles
/// (viewer, editor, admin); edge tokens do not expire by default (they are deployed in
/// edge configs; rotate them by creating a new one and revoking the old).
pub fn default_expiry(role: Role) -> Option<std::time::Duration> {
    match role {
        Role::Edge => None,
        _ => Some(std::time::Duration::from_secs(90 * 24 * 3600)),
    }
}

/// Parses an `--expires` value: a duration (`30d`, `12h`, `90days`) from now, or `never`.
/// Returns the expiry in Unix seconds (`None` = never).
pub fn parse_expires(s: &str) -> Result<Option<i64>, String> {
    if s == "never" {
        return Ok(None);
    }
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("expires: {s:?} is not a duration like 30d or 12h, nor `never` ({e})")
    })?;
    if d.is_zero() {
        return Err("expires: must be longer than 0".into());
    }
    let secs = i64::try_from(d.as_secs()).map_err(|_| format!("expires: {s:?} is too long"))?;
    Ok(Some(now_secs().saturating_add(secs)))
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
    let expires_at = default_expiry(role).map(|d| now_secs() + d.as_secs() as i64);
    create_token_with(store, role, name, edge, expires_at, actor)
}

/// Creates a token expiring at `expires_at` (Unix seconds; `None`: never). See
/// [`create_token_for`].
pub fn create_token_with(
    store: &Store,
    role: Role,
    name: &str,
    edge: Option<&str>,
    expires_at: Option<i64>,
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
        expires_at,
        last_used_at: None,
    };
    store.put_token(&info, &hash(&token), actor)?;
    Ok((token, info))
}

/// What a presented token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// A live token: its principal (its last-used time has been recorded).
    Valid(Principal),
    /// Unknown, revoked, or of an unknown role.
    Invalid,
    /// A real token past its expiry (Unix seconds).
    Expired {
        /// The token's id.
        id: String,
    },
}

/// Checks a presented token: valid (recording its last use), invalid, or expired.
pub fn check_token(store: &Store, token: &str) -> Result<TokenCheck, CatalogError> {
    let h = hash(token);
    let Some((info, stored)) = store.token_cached(&h)? else {
        return Ok(TokenCheck::Invalid);
    };
    if !bool::from(stored.as_slice().ct_eq(&h)) {
        return Ok(TokenCheck::Invalid);
    }
    let Some(role) = Role::parse(&info.role) else {
        return Ok(TokenCheck::Invalid);
    };
    let now = now_secs();
    if info.expires_at.is_some_and(|e| e <= now) {
        return Ok(TokenCheck::Expired { id: info.id });
    }
    store.touch_token_cached(&info.id, info.last_used_at, now)?;
    Ok(TokenCheck::Valid(Principal {
        id: info.id,
        role,
        edge: info.edge,
        user: false,
    }))
}

/// Resolves a presented token to its principal; `None` for unknown, revoked or expired
/// tokens.
pub fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, CatalogError> {
    Ok(match check_token(store, token)? {
        TokenCheck::Valid(p) => Some(p),
        _ => None,
    })
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
        // The whole secret (`weir_<id>_<secret>`; the secret's base64 may hold `_` itself).
        let secret = token.splitn(3, '_').nth(2).unwrap();
        assert!(secret.len() >= 40, "{secret}");
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let store = Store::open(&path).unwrap();
        assert!(store.revoke_token(&info.id, "cli").unwrap());
        assert!(authenticate(&store, &token).unwrap().is_none());
    }

    #[test]
    fn tokens_expire_and_record_their_last_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let (t, info) = create_token(&store, Role::Viewer, "v", "cli").unwrap();
        let ninety = now_secs() + 90 * 24 * 3600;
        assert!((ninety - 2..=ninety).contains(&info.expires_at.unwrap()));
        let (e, einfo) = create_token_for(&store, Role::Edge, "e", Some("e1"), "cli").unwrap();
        assert_eq!(
            einfo.expires_at, None,
            "edge tokens do not expire by default"
        );
        assert!(store.tokens().unwrap()[0].last_used_at.is_none());
        assert!(matches!(
            check_token(&store, &t).unwrap(),
            TokenCheck::Valid(_)
        ));
        assert!(matches!(
            check_token(&store, &e).unwrap(),
            TokenCheck::Valid(_)
        ));
        let used = store.tokens().unwrap();
        assert!(used.iter().all(|t| t.last_used_at.is_some()), "{used:?}");
        let (old, oinfo) = create_token_with(
            &store,
            Role::Admin,
            "old",
            None,
            Some(now_secs() - 1),
            "cli",
        )
        .unwrap();
        assert_eq!(
            check_token(&store, &old).unwrap(),
            TokenCheck::Expired { id: oinfo.id }
        );
        assert!(parse_expires("30d").unwrap().unwrap() > now_secs() + 29 * 86400);
        assert_eq!(parse_expires("never").unwrap(), None);
        assert!(parse_expires("soon").unwrap_err().contains("expires"));
    }

    /// A use recorded in the file covers the minute after it in a new process too (a
    /// restart or a restored copy): only a use a minute or more later is written.
    #[test]
    fn a_stored_use_counts_for_its_minute_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::open(&path).unwrap();
        let (recent, r) = create_token(&store, Role::Viewer, "recent", "cli").unwrap();
        let (older, o) = create_token(&store, Role::Viewer, "older", "cli").unwrap();
        let now = now_secs();
        store.touch_token(&r.id, now - 20).unwrap();
        store.touch_token(&o.id, now - 61).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        for t in [&recent, &older] {
            assert!(matches!(
                check_token(&store, t).unwrap(),
                TokenCheck::Valid(_)
            ));
        }
        store.persist().unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let last = |id: &str| {
            let all = store.tokens().unwrap();
            all.iter()
                .find(|t| t.id == id)
                .unwrap()
                .last_used_at
                .unwrap()
        };
        assert_eq!(last(&r.id), now - 20, "a use within the stored minute");
        assert!(last(&o.id) >= now, "a use a minute on is written");
    }

    #[test]
    fn parse_expires_forms() {
        assert_eq!(parse_expires("never").unwrap(), None);
        assert!(parse_expires("soon").unwrap_err().contains("expires"));
    }
}
