//! JSON in which no object names a member twice, at any depth.
//!
//! RFC 7515 §4 lets a JWS parser take the last of duplicate header members or refuse the
//! JWS; RFC 7519 §4 says the same of JWT claims. Refusing is the choice that cannot be read
//! two ways: a proof whose `htu` or `nonce` is given twice means whatever the reader picks.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `bytes` as JSON, refused when an object repeats a member name.
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(bytes).map(|s| s.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without duplicate member names")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "the member {name:?} is given twice"
                )));
            }
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_given_twice_is_refused_at_any_depth() {
        for twice in [
            r#"{"htm":"GET","htm":"POST"}"#,
            r#"{"jwk":{"x":"a","x":"b"}}"#,
            r#"[{"a":1,"a":1}]"#,
        ] {
            assert!(from_slice(twice.as_bytes()).is_err(), "{twice}");
        }
    }

    #[test]
    fn anything_else_reads_as_serde_json_reads_it() {
        for json in [
            r#"{"htm":"GET","htu":"https://a.example/t","iat":1700000000,"n":-1.5}"#,
            r#"{"jwk":{"kty":"EC","x":"a"},"list":[1,"x",null,true,{"a":{}}]}"#,
            r#""string""#,
            "18446744073709551615",
        ] {
            let ours = from_slice(json.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(json).unwrap();
            assert_eq!(ours, theirs, "{json}");
        }
    }
}
