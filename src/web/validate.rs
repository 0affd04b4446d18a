//! Checks on request fields that serde cannot express, each failing with a 400 naming the
//! field. Bodies are also parsed strictly (`deny_unknown_fields`); see [`json_error`].

use actix_web::HttpRequest;
use actix_web::error::JsonPayloadError;

use super::error::ApiError;

/// A bounded string without NUL or other control characters.
pub fn text<'a>(field: &str, value: &'a str, min: usize, max: usize) -> Result<&'a str, ApiError> {
    crate::types::check_text(value, min, max).map_err(|p| ApiError::invalid_field(field, p))?;
    Ok(value)
}

/// A secret (password, code, token): bounded length only; its content is never echoed.
pub fn secret_len(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1 to {max} bytes long"),
        ));
    }
    Ok(())
}

/// The error for a JSON body that cannot be read: serde's message names the field
/// (`unknown field `x``, `missing field `y``, `invalid type ... at line 1 column 9`).
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest {
            code: "invalid_body",
            message: format!("invalid JSON body: {e}"),
        },
        _ => ApiError::BadRequest {
            code: "invalid_body",
            message: "the request body could not be read".into(),
        },
    };
    api.into()
}

/// A strict JSON body: `Content-Type: application/json`, within the body limit, and errors that
/// name the field at fault by its path (`roles[0].guild_id: invalid type ...`). Use it instead
/// of `web::Json` with `#[serde(deny_unknown_fields)]` bodies.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let bytes = actix_web::web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::UnsupportedMediaType.into());
            }
            let bytes = bytes.await?;
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                ApiError::BadRequest {
                    code: "invalid_body",
                    message: if path == "." || inner.is_syntax() || inner.is_eof() {
                        format!("invalid JSON body: {inner}")
                    } else {
                        format!("{path}: {inner}")
                    },
                }
            })?;
            Ok(Json(value))
        })
    }
}

/// An id in a JSON body: a decimal string (ids exceed JavaScript's safe integers, so they are
/// written as strings) or a non-negative number, in 1..=2^63-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Id(pub i64);

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Number(u64),
        }
        const PROBLEM: &str = "must be a positive integer id (a decimal string) at most 2^63 - 1";
        let n = match Repr::deserialize(d).map_err(|_| serde::de::Error::custom(PROBLEM))? {
            Repr::Text(s) => s
                .parse::<u64>()
                .map_err(|_| serde::de::Error::custom(PROBLEM))?,
            Repr::Number(n) => n,
        };
        i64::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .map(Id)
            .ok_or_else(|| serde::de::Error::custom(PROBLEM))
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[1-9][0-9]{0,18}$"))
            .description(Some("A 64-bit id as a decimal string"))
            .into()
    }
}

impl utoipa::ToSchema for Id {}

/// Serialises an id as a decimal string.
pub fn id_string<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

pub fn opt_id_string<S: serde::Serializer>(id: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}
