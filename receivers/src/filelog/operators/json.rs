//! JSON text parsed straight into [`Val`]s, without a `serde_json::Value` in between (which
//! cost a second allocation of every key, string and map node per line): the same parser
//! (serde_json's), the same errors, and the values `Val::from_json_with` makes of a
//! `serde_json::Value`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::Val;

/// Parses `text` as one JSON value (nothing but whitespace may follow it). With `ints`,
/// numbers that are integers within i64 become `Int`; all others are `Double`.
pub fn parse(text: &str, ints: bool) -> Result<Val, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed { ints }.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

#[derive(Clone, Copy)]
struct Seed {
    ints: bool,
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Val;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Val, E> {
        Ok(Val::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Val, E> {
        Ok(if self.ints {
            Val::Int(i)
        } else {
            Val::Double(i as f64)
        })
    }

    fn visit_u64<E>(self, u: u64) -> Result<Val, E> {
        Ok(match i64::try_from(u) {
            Ok(i) if self.ints => Val::Int(i),
            _ => Val::Double(u as f64),
        })
    }

    fn visit_f64<E>(self, d: f64) -> Result<Val, E> {
        // As serde_json::Value: a number that is not finite becomes null.
        Ok(if d.is_finite() {
            Val::Double(d)
        } else {
            Val::Null
        })
    }

    fn visit_str<E>(self, s: &str) -> Result<Val, E> {
        Ok(Val::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Val, E> {
        Ok(Val::Str(s))
    }

    fn visit_unit<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_none<E>(self) -> Result<Val, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0));
        while let Some(x) = a.next_element_seed(self)? {
            v.push(x);
        }
        Ok(Val::List(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Val, A::Error> {
        let mut m = BTreeMap::new();
        // A key given twice keeps its last value, as with serde_json::Value.
        while let Some(k) = a.next_key::<String>()? {
            let v = a.next_value_seed(self)?;
            m.insert(k, v);
        }
        Ok(Val::Map(m))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn both(text: &str, ints: bool) {
        let ours = parse(text, ints);
        let theirs = serde_json::from_str::<serde_json::Value>(text);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, Val::from_json_with(b, ints), "{text}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            (a, b) => panic!("{text}: {a:?} vs {b:?}"),
        }
    }

    #[test]
    fn the_same_values_and_errors_as_through_serde_json_value() {
        let cases = [
            r#"{"ts":"2024-04-13T07:59:01.000001Z","level":"info","msg":"a \"q\" \u00e9","n":3}"#,
            r#"{"a":{"b":[1,-2,3.5,true,null,"x",{"c":{}}]},"big":18446744073709551615}"#,
            r#"{"i64max":9223372036854775807,"over":9223372036854775808,"neg":-9223372036854775808}"#,
            r#"{"dup":1,"dup":"two"}"#,
            r#"{"f":1e3,"g":-0,"h":0.1,"e":1E-7}"#,
            r#"  {"ws": 1}  "#,
            r#"[1,2]"#,
            r#""text""#,
            r#"12"#,
            r#"{"unterminated": "x"#,
            r#"{"a":1} trailing"#,
            r#"{"a":1e400}"#,
            r#"{bad}"#,
            "",
        ];
        for c in cases {
            both(c, true);
            both(c, false);
        }
    }
}
