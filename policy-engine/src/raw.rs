//! What the evaluation of logs ([`crate::raw_logs`]) and traces ([`crate::raw_traces`]) on
//! the encoded request adds to the shared in-place reader ([`weir_api::wire_read`]: field
//! walker, resource and scope levels, `AnyValue`/`KeyValue` readers): attribute paths into
//! encoded values, and the policy engine's view of a value ([`FieldValue`]).

pub(crate) use weir_api::wire_read::{
    fields, layout, parse_any, parse_key_value, utf8, Layout, RawAny, RawKeyValue, ScopeEntry, Wire,
};

use crate::record::{Context, FieldValue};

/// The rest of an attribute path below a value: the value itself at the end of the path,
/// else a lookup in it when it is a key-value list.
#[inline]
pub(crate) fn descend<'a>(value: RawAny<'a>, rest: &[String]) -> Option<RawAny<'a>> {
    if rest.is_empty() {
        return Some(value);
    }
    match value {
        RawAny::Kvlist(list) => lookup_in_list(list, rest),
        _ => None,
    }
}

/// [`crate::record::lookup`] on an encoded `KeyValueList` (checked by `parse_any` with `deep`):
/// the first entry with the key decides.
fn lookup_in_list<'a>(list: &'a [u8], path: &[String]) -> Option<RawAny<'a>> {
    let (first, rest) = path.split_first()?;
    for f in fields(list) {
        let (1, Wire::Len(kv)) = f? else { continue };
        let kv = parse_key_value(kv, 0, false)?;
        if kv.key == first.as_bytes() {
            return descend(kv.value?, rest);
        }
    }
    None
}

/// [`crate::record::lookup`] then [`crate::record::any_value`] on attributes read by
/// [`parse_key_value`] (deep): the first entry with the key decides.
#[inline]
pub(crate) fn attribute<'a>(attrs: &[RawKeyValue<'a>], path: &[String]) -> Option<FieldValue<'a>> {
    let (first, rest) = path.split_first()?;
    let kv = attrs.iter().find(|kv| kv.key == first.as_bytes())?;
    field_value(descend(kv.value?, rest)?)
}

/// The resource and scope of `scope` in `layout`, and the bytes of its items.
pub(crate) fn scope<'s, 'a>(
    layout: &'s Layout<'a>,
    scope: &'s ScopeEntry<'a>,
) -> (Context<'s>, &'s [&'a [u8]]) {
    let resource = layout.resources.get(scope.resource);
    let ctx = Context {
        resource: resource.and_then(|r| r.resource.as_ref()),
        resource_schema_url: resource.map_or("", |r| r.schema_url),
        scope: scope.scope.as_ref(),
        scope_schema_url: scope.schema_url,
    };
    (ctx, layout.items.get(scope.items.clone()).unwrap_or(&[]))
}

/// What [`crate::record::any_value`] gives for the decoded value.
pub(crate) fn field_value(value: RawAny<'_>) -> Option<FieldValue<'_>> {
    Some(match value {
        RawAny::Empty => return None,
        RawAny::Str(s) => FieldValue::Str(utf8(s)?),
        RawAny::Bool(b) => FieldValue::Bool(b),
        RawAny::Int(i) => FieldValue::Int(i),
        RawAny::Double(d) => FieldValue::Double(d),
        RawAny::Bytes(b) => FieldValue::Bytes(b),
        RawAny::Kvlist(_) | RawAny::Other => FieldValue::Other,
    })
}
