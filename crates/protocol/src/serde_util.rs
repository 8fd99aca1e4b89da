//! Serde adapters for the engine's loose encodings.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serializer};
use std::fmt::Display;
use std::str::FromStr;

/// `null` or absent decodes as `T::default()` (Go encodes nil maps and slices
/// as `null`).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + DeserializeOwned,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string field where `""` or `null` means "not set", and anything else
/// must parse as `T`.
pub fn empty_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| de::Error::custom(format!("invalid value {s:?}: {e}"))),
    }
}

/// Serialize `Option<T>` as its string form, or `""` when unset (the engine's
/// own encoding of empty addresses).
pub fn display_or_empty<S, T>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Display,
{
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_str(""),
    }
}

/// A required string field parsed with `FromStr`.
pub fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let s = String::deserialize(d)?;
    s.trim()
        .parse()
        .map_err(|e| de::Error::custom(format!("invalid value {s:?}: {e}")))
}

/// Serialize with `Display`.
pub fn display<S: Serializer, T: Display>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// A map of string values where `null` is an empty map and scalar values
/// (`true`, `1500`) are taken as their text: `--opt` values are strings from
/// the CLI, but other clients of the engine API send typed JSON.
pub fn string_map<'de, D>(d: D) -> Result<std::collections::BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw: Option<std::collections::BTreeMap<String, serde_json::Value>> =
        Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match scalar_text(&v) {
            Ok(Some(text)) => Some(Ok((k, text))),
            Ok(None) => None,
            Err(kind) => Some(Err(de::Error::custom(format!(
                "option {k:?} must be a string, not {kind}"
            )))),
        })
        .collect()
}

/// The text of a scalar JSON value; `Ok(None)` for `null` (treated as absent).
pub fn scalar_text(v: &serde_json::Value) -> Result<Option<String>, &'static str> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s.clone())),
        serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        serde_json::Value::Array(_) => Err("an array"),
        serde_json::Value::Object(_) => Err("an object"),
    }
}
