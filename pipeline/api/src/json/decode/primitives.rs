//! Scalar values of the proto3 JSON mapping, as OTLP/JSON uses it.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use std::borrow::Cow;

use super::tree::JsonValue;
use crate::json::error::{excerpt, JsonError, Path, Problem};

/// Hex digits of a trace id (16 bytes).
pub(crate) const TRACE_ID_DIGITS: usize = 32;
/// Hex digits of a span id (8 bytes).
pub(crate) const SPAN_ID_DIGITS: usize = 16;

/// proto3 JSON accepts standard or URL-safe base64, padded or not.
const PADDING_INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, PADDING_INDIFFERENT);
const BASE64_URL_SAFE: GeneralPurpose =
    GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_INDIFFERENT);

/// The JSON type of a value, as error messages name it.
fn type_name(value: &JsonValue<'_>) -> &'static str {
    match value {
        JsonValue::Null => "null",
        JsonValue::Bool(_) => "a boolean",
        JsonValue::U64(_) | JsonValue::I64(_) | JsonValue::F64(_) => "a number",
        JsonValue::Str(_) => "a string",
        JsonValue::Array(_) => "an array",
        JsonValue::Object(_) => "an object",
    }
}

fn wrong_type(value: &JsonValue<'_>, path: &Path<'_>, expected: &'static str) -> JsonError {
    path.error(Problem::WrongType {
        expected,
        found: type_name(value),
    })
}

pub(crate) fn object<'v>(
    value: &'v JsonValue<'v>,
    path: &Path<'_>,
) -> Result<&'v [(Cow<'v, str>, JsonValue<'v>)], JsonError> {
    match value {
        JsonValue::Object(members) => Ok(members),
        _ => Err(wrong_type(value, path, "an object")),
    }
}

/// A repeated field: a JSON array whose elements `element` decodes (`null` elements are
/// errors: a list has no absent elements).
pub(crate) fn list<T>(
    value: &JsonValue<'_>,
    path: &Path<'_>,
    element: impl Fn(&JsonValue<'_>, &Path<'_>) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    let JsonValue::Array(items) = value else {
        return Err(wrong_type(value, path, "an array"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| element(item, &path.index(i)))
        .collect()
}

pub(crate) fn string(value: &JsonValue<'_>, path: &Path<'_>) -> Result<String, JsonError> {
    match value {
        JsonValue::Str(s) => Ok(s.to_string()),
        _ => Err(wrong_type(value, path, "a string")),
    }
}

pub(crate) fn boolean(value: &JsonValue<'_>, path: &Path<'_>) -> Result<bool, JsonError> {
    match value {
        JsonValue::Bool(b) => Ok(*b),
        _ => Err(wrong_type(value, path, "a boolean")),
    }
}

/// An integer given as a JSON number or a decimal string (proto3 JSON allows both for every
/// integer type, and OTLP encoders write 64-bit ones as strings). A number written with a
/// fraction or exponent is accepted when its value is integral.
fn integer(value: &JsonValue<'_>, path: &Path<'_>, kind: &'static str) -> Result<i128, JsonError> {
    let invalid = || {
        path.error(Problem::InvalidNumber {
            kind,
            value: match value {
                JsonValue::Str(s) => format!("\"{}\"", excerpt(s)),
                number => number.to_string(),
            },
        })
    };
    match value {
        JsonValue::U64(n) => Ok(i128::from(*n)),
        JsonValue::I64(n) => Ok(i128::from(*n)),
        // 2^64 bounds both u64 and i64; the cast is exact for integral values below it.
        JsonValue::F64(f) if f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 => {
            Ok(*f as i128)
        }
        JsonValue::F64(_) => Err(invalid()),
        JsonValue::Str(s) => s.parse::<i128>().map_err(|_| invalid()),
        _ => Err(wrong_type(
            value,
            path,
            "an integer (a number or a decimal string)",
        )),
    }
}

pub(crate) fn uint64(value: &JsonValue<'_>, path: &Path<'_>) -> Result<u64, JsonError> {
    let n = integer(value, path, "uint64")?;
    u64::try_from(n).map_err(|_| out_of_range(n, path, "uint64"))
}

pub(crate) fn int64(value: &JsonValue<'_>, path: &Path<'_>) -> Result<i64, JsonError> {
    let n = integer(value, path, "int64")?;
    i64::try_from(n).map_err(|_| out_of_range(n, path, "int64"))
}

pub(crate) fn uint32(value: &JsonValue<'_>, path: &Path<'_>) -> Result<u32, JsonError> {
    let n = integer(value, path, "uint32")?;
    u32::try_from(n).map_err(|_| out_of_range(n, path, "uint32"))
}

pub(crate) fn int32(value: &JsonValue<'_>, path: &Path<'_>) -> Result<i32, JsonError> {
    let n = integer(value, path, "int32")?;
    i32::try_from(n).map_err(|_| out_of_range(n, path, "int32"))
}

fn out_of_range(n: i128, path: &Path<'_>, kind: &'static str) -> JsonError {
    path.error(Problem::InvalidNumber {
        kind,
        value: format!("{n} (out of range)"),
    })
}

/// A double: a JSON number, or a string holding a number or one of `NaN`, `Infinity`,
/// `-Infinity`.
pub(crate) fn double(value: &JsonValue<'_>, path: &Path<'_>) -> Result<f64, JsonError> {
    match value {
        JsonValue::U64(n) => Ok(*n as f64),
        JsonValue::I64(n) => Ok(*n as f64),
        JsonValue::F64(n) => Ok(*n),
        JsonValue::Str(s) => match &**s {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s.parse::<f64>().map_err(|_| {
                path.error(Problem::InvalidNumber {
                    kind: "double",
                    value: format!("\"{}\"", excerpt(s)),
                })
            }),
        },
        _ => Err(wrong_type(
            value,
            path,
            "a double (a number, \"NaN\", \"Infinity\" or \"-Infinity\")",
        )),
    }
}

/// An enum: its integer value, or its value name (looked up by `from_name`).
pub(crate) fn enumeration(
    value: &JsonValue<'_>,
    path: &Path<'_>,
    enum_name: &'static str,
    from_name: impl Fn(&str) -> Option<i32>,
) -> Result<i32, JsonError> {
    match value {
        JsonValue::Str(name) => match from_name(name) {
            Some(n) => Ok(n),
            None => name.parse::<i32>().map_err(|_| {
                path.error(Problem::UnknownEnumName {
                    enum_name,
                    value: excerpt(name),
                })
            }),
        },
        JsonValue::U64(_) | JsonValue::I64(_) | JsonValue::F64(_) => int32(value, path),
        _ => Err(wrong_type(
            value,
            path,
            "an enum (an integer or a value name)",
        )),
    }
}

/// A trace or span id: hex digits (either case) of exactly `digits` length, or `""` for none.
pub(crate) fn hex_id(
    value: &JsonValue<'_>,
    path: &Path<'_>,
    digits: usize,
) -> Result<Vec<u8>, JsonError> {
    let JsonValue::Str(text) = value else {
        return Err(wrong_type(value, path, "a hex string"));
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = || {
        path.error(Problem::InvalidHexId {
            value: excerpt(text),
            expected_digits: digits,
        })
    };
    if text.len() != digits {
        return Err(invalid());
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A bytes value: base64, standard or URL-safe alphabet, with or without padding.
pub(crate) fn base64_bytes(value: &JsonValue<'_>, path: &Path<'_>) -> Result<Vec<u8>, JsonError> {
    let JsonValue::Str(text) = value else {
        return Err(wrong_type(value, path, "a base64 string"));
    };
    BASE64_STANDARD
        .decode(text.as_bytes())
        .or_else(|standard_error| {
            BASE64_URL_SAFE.decode(text.as_bytes()).map_err(|_| {
                path.error(Problem::InvalidBase64 {
                    value: excerpt(text),
                    reason: standard_error,
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> JsonValue<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn integers_accept_numbers_and_decimal_strings_within_range() {
        let root = Path::Root;
        assert_eq!(
            uint64(&parse("18446744073709551615"), &root).unwrap(),
            u64::MAX
        );
        assert_eq!(
            uint64(&parse("\"18446744073709551615\""), &root).unwrap(),
            u64::MAX
        );
        assert_eq!(
            int64(&parse("-9223372036854775808"), &root).unwrap(),
            i64::MIN
        );
        assert_eq!(
            int64(&parse("\"-9223372036854775808\""), &root).unwrap(),
            i64::MIN
        );
        assert_eq!(int64(&parse("1e3"), &root).unwrap(), 1000);
        assert_eq!(uint32(&parse("4294967295"), &root).unwrap(), u32::MAX);
        assert_eq!(int32(&parse("\"-2147483648\""), &root).unwrap(), i32::MIN);
        let err = |text: &str, f: fn(&JsonValue<'_>, &Path<'_>) -> Result<i64, JsonError>| {
            f(&parse(text), &root).unwrap_err().to_string()
        };
        assert_eq!(
            err("\"9223372036854775808\"", int64),
            "request: invalid int64 9223372036854775808 (out of range)"
        );
        assert_eq!(err("\" 5\"", int64), r#"request: invalid int64 " 5""#);
        assert_eq!(err("\"\"", int64), r#"request: invalid int64 """#);
        assert_eq!(err("1.5", int64), "request: invalid int64 1.5");
        assert_eq!(
            uint64(&parse("1e20"), &root).unwrap_err().to_string(),
            "request: invalid uint64 100000000000000000000"
        );
    }

    #[test]
    fn doubles_accept_numbers_numeric_strings_and_special_names() {
        let root = Path::Root;
        assert_eq!(double(&parse("3"), &root).unwrap(), 3.0);
        assert_eq!(double(&parse("-3"), &root).unwrap(), -3.0);
        assert_eq!(double(&parse("0.1"), &root).unwrap(), 0.1);
        assert_eq!(double(&parse("\"2.5\""), &root).unwrap(), 2.5);
        assert_eq!(
            double(&parse("\"-Infinity\""), &root).unwrap(),
            f64::NEG_INFINITY
        );
        assert!(double(&parse("\"NaN\""), &root).unwrap().is_nan());
        assert_eq!(
            double(&parse("[]"), &root).unwrap_err().to_string(),
            r#"request: expected a double (a number, "NaN", "Infinity" or "-Infinity"), got an array"#
        );
    }

    #[test]
    fn hex_ids_are_case_insensitive_and_exact_length() {
        let root = Path::Root;
        assert_eq!(
            hex_id(&parse("\"00fFaA09\""), &root, 8).unwrap(),
            [0x00, 0xff, 0xaa, 0x09]
        );
        assert_eq!(hex_id(&parse("\"\""), &root, 32).unwrap(), Vec::<u8>::new());
        // Multi-byte characters of the right byte length are still not hex.
        assert!(hex_id(&parse("\"é0\""), &root, 3).is_err());
        assert!(hex_id(&parse("\"0g\""), &root, 2).is_err());
        assert!(hex_id(&parse("\"abc\""), &root, 4).is_err());
    }
}
