//! Checks on request fields that serde cannot express, each failing with a 400 naming the
//! field. Bodies are also parsed strictly (`deny_unknown_fields`); see [`json_error`].

use actix_web::HttpRequest;
use actix_web::error::JsonPayloadError;

use super::error::ApiError;

/// A bounded string without NUL or other control characters.
pub fn text<'a>(field: &str, value: &'a str, min: usize, max: usize) -> Result<&'a str, ApiError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
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
        JsonPayloadError::ContentType => ApiError::BadRequest {
            code: "unsupported_media_type",
            message: "the body must be JSON with Content-Type: application/json".into(),
        },
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
