//! Discord snowflakes (guild, user, channel, role and interaction ids), parsed in one place.
//!
//! A snowflake is carried as this one type from the edge (a path, a JSON body, a slash-command
//! option, a stored row) to the call that needs it. It holds a value in `1..=i64::MAX`, so it
//! converts to the `BIGINT` the store keeps and to the `u64` Discord's API takes without loss
//! and without a fallible step in between. JSON carries it as a string, as Discord does, since
//! JavaScript numbers lose precision above 2^53.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Snowflake(NonZeroU64);

/// Why a value is not a snowflake; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a positive integer id (at most 2^63 - 1)")]
pub struct InvalidSnowflake;

impl Snowflake {
    /// Parses a decimal id in `1..=i64::MAX`.
    pub fn parse(raw: &str) -> Result<Self, InvalidSnowflake> {
        raw.parse::<u64>()
            .map_err(|_| InvalidSnowflake)
            .and_then(Self::new)
    }

    /// An id as Discord's API (or serenity) hands it over.
    pub fn new(id: u64) -> Result<Self, InvalidSnowflake> {
        if id > i64::MAX as u64 {
            return Err(InvalidSnowflake);
        }
        NonZeroU64::new(id).map(Self).ok_or(InvalidSnowflake)
    }

    /// An id as the store keeps it (`BIGINT`).
    pub fn from_i64(id: i64) -> Result<Self, InvalidSnowflake> {
        u64::try_from(id)
            .map_err(|_| InvalidSnowflake)
            .and_then(Self::new)
    }

    /// For Discord's API.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// For the store: lossless, as the value is at most `i64::MAX`.
    pub fn as_i64(self) -> i64 {
        // The constructors keep the value in range; the fallback is unreachable.
        i64::try_from(self.0.get()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Snowflake {
    type Err = InvalidSnowflake;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Snowflake {
    /// A string, as this API writes snowflakes; a JSON integer is accepted too (small ids, and
    /// clients that do not know better), still checked for range.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Snowflake;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Discord id as a string of digits")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Snowflake, E> {
                Snowflake::parse(v).map_err(|_| E::custom(format!("`{v}` {InvalidSnowflake}")))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Snowflake, E> {
                Snowflake::new(v).map_err(|_| E::custom(format!("{v} {InvalidSnowflake}")))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Snowflake, E> {
                Snowflake::from_i64(v).map_err(|_| E::custom(format!("{v} {InvalidSnowflake}")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for Snowflake {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[1-9][0-9]{0,18}$"))
            .description(Some("A Discord id (snowflake) as a decimal string"))
            .into()
    }
}

impl utoipa::ToSchema for Snowflake {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_in_range_parse_and_everything_else_is_refused() {
        assert_eq!(Snowflake::parse("42").map(Snowflake::get), Ok(42));
        assert_eq!(
            Snowflake::parse(&i64::MAX.to_string()).map(Snowflake::as_i64),
            Ok(i64::MAX)
        );
        for bad in ["0", "-1", "abc", "", "9223372036854775808", "1.5", "<#42>"] {
            assert_eq!(Snowflake::parse(bad), Err(InvalidSnowflake), "{bad:?}");
        }
        assert_eq!(Snowflake::from_i64(-5), Err(InvalidSnowflake));
        assert_eq!(Snowflake::new(u64::MAX), Err(InvalidSnowflake));
    }

    #[test]
    fn snowflakes_are_strings_in_json_and_integers_are_accepted() {
        let id = Snowflake::parse("800000000000000001").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"800000000000000001\""
        );
        assert_eq!(
            serde_json::from_str::<Snowflake>("\"800000000000000001\"").unwrap(),
            id
        );
        assert_eq!(serde_json::from_str::<Snowflake>("7").unwrap().get(), 7);
        assert!(serde_json::from_str::<Snowflake>("\"x\"").is_err());
        assert!(serde_json::from_str::<Snowflake>("0").is_err());
        assert!(serde_json::from_str::<Snowflake>("true").is_err());
    }
}
