//! The canonical form of a policy and the hashes edges and the control plane agree on.
//!
//! A policy's canonical form is its protobuf encoding (`tero.policy.v1.Policy`) after
//! [`crate::parse`] has read it, every default applied: what the control plane stores once
//! when a policy is written and what `PolicyService.Sync` carries. The hash of a policy set
//! is FNV-1a 64 over the canonical forms of its policies, in the order served, written as 16
//! hex digits; a sync response carries it and the edge echoes it back.

use prost::Message;
use serde_json::Value as Json;

use crate::parse::{parse_policy, ParseErrors};
use crate::{proto, SHADOW_LABEL};

/// FNV-1a 64 over `parts`, in order (as if concatenated).
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A policy's canonical form (its protobuf encoding) with the hash of that form alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The protobuf encoding.
    pub bytes: Vec<u8>,
    /// FNV-1a 64 of `bytes`, 16 hex digits.
    pub hash: String,
}

impl Canonical {
    /// The canonical form of a policy that has been read.
    pub fn of(policy: &proto::Policy) -> Self {
        let bytes = policy.encode_to_vec();
        let hash = hex(fnv1a64(&[&bytes]));
        Canonical { bytes, hash }
    }

    /// Reads a policy document (the specification's YAML/JSON form, as a JSON value) once and
    /// gives its canonical form; with `shadow` the form carries [`SHADOW_LABEL`] (added to
    /// the document's labels, in the document's own form: a mapping or a list). The errors are
    /// [`parse_policy`]'s.
    pub fn read(document: &Json, shadow: bool) -> Result<Self, ParseErrors> {
        let parsed = if shadow {
            parse_policy(&shadow_labelled(document), "policy")
        } else {
            parse_policy(document, "policy")
        };
        parsed.policy.map(|p| Canonical::of(&p))
    }

    /// The policy back from its canonical form (a protobuf decode; nothing is re-read).
    pub fn decode(bytes: &[u8]) -> Result<proto::Policy, prost::DecodeError> {
        proto::Policy::decode(bytes)
    }
}

/// `document` with the shadow label set: in its `labels` mapping (created when absent), or
/// appended to its `labels` list. A document that is not a mapping, or whose labels are
/// neither, is returned as it is (reading it reports the problem).
pub fn shadow_labelled(document: &Json) -> Json {
    let mut doc = document.clone();
    if let Some(o) = doc.as_object_mut() {
        match o
            .entry("labels")
            .or_insert_with(|| Json::Object(Default::default()))
        {
            Json::Object(m) => {
                m.insert(SHADOW_LABEL.into(), "true".into());
            }
            Json::Array(l) => l.push(serde_json::json!(
                {"key": SHADOW_LABEL, "value": {"stringValue": "true"}}
            )),
            _ => {}
        }
    }
    doc
}

fn hex(h: u64) -> String {
    format!("{h:016x}")
}

/// The hash of a policy set from its members' canonical forms, in the order served.
pub fn set_hash<'a>(forms: impl IntoIterator<Item = &'a [u8]>) -> String {
    let parts: Vec<&[u8]> = forms.into_iter().collect();
    hex(fnv1a64(&parts))
}

/// The hash of a policy list: [`set_hash`] of their canonical forms.
pub fn policies_hash(policies: &[proto::Policy]) -> String {
    let encoded: Vec<Vec<u8>> = policies.iter().map(Message::encode_to_vec).collect();
    set_hash(encoded.iter().map(Vec::as_slice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_hash_is_the_hash_of_the_concatenated_forms() {
        let a = proto::Policy {
            id: "a".into(),
            name: "A".into(),
            enabled: true,
            ..Default::default()
        };
        let b = proto::Policy {
            id: "b".into(),
            ..Default::default()
        };
        let (ca, cb) = (Canonical::of(&a), Canonical::of(&b));
        let joined: Vec<u8> = [ca.bytes.clone(), cb.bytes.clone()].concat();
        assert_eq!(
            set_hash([&ca.bytes[..], &cb.bytes[..]]),
            hex(fnv1a64(&[&joined]))
        );
        assert_eq!(
            policies_hash(&[a.clone(), b]),
            set_hash([&ca.bytes[..], &cb.bytes[..]])
        );
        assert_ne!(ca.hash, cb.hash);
        assert_eq!(Canonical::decode(&ca.bytes).ok(), Some(a));
        // The empty set has the FNV offset basis as its hash.
        assert_eq!(policies_hash(&[]), "cbf29ce484222325");
    }

    fn label(p: &proto::Policy, key: &str) -> Option<String> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        p.labels.iter().find(|l| l.key == key).and_then(|l| {
            match l.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            }
        })
    }

    #[test]
    fn read_applies_the_shadow_label_in_either_label_form() {
        let mapping = serde_json::json!({"id": "p", "name": "P", "labels": {"team": "a"},
            "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}});
        let list = serde_json::json!({"id": "p", "name": "P",
            "labels": [{"key": "team", "value": {"stringValue": "a"}}],
            "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}});
        let bare = serde_json::json!({"id": "p", "name": "P",
            "log": {"match": [{"log_field": "body", "contains": "x"}], "keep": "none"}});
        for doc in [&mapping, &list, &bare] {
            let plain = Canonical::decode(&Canonical::read(doc, false).unwrap().bytes).unwrap();
            let shadow = Canonical::decode(&Canonical::read(doc, true).unwrap().bytes).unwrap();
            assert_eq!(label(&plain, SHADOW_LABEL), None);
            assert_eq!(label(&shadow, SHADOW_LABEL).as_deref(), Some("true"));
            assert_eq!(label(&shadow, "team"), label(&plain, "team"));
            assert_eq!(shadow.labels.len(), plain.labels.len() + 1);
        }
        // The mapping and the list form read to the same canonical form.
        assert_eq!(
            Canonical::read(&mapping, true),
            Canonical::read(&list, true)
        );
        // A document that does not read has the reader's errors.
        let bad = serde_json::json!({"id": "p", "log": {"match": [], "keep": "none"}, "trace": {}});
        assert!(!Canonical::read(&bad, false).unwrap_err().is_empty());
    }
}
