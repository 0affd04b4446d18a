//! The OpenAPI document (`/api/openapi.json`), generated from the handlers' `#[utoipa::path]`
//! annotations and the body types' `ToSchema` derives.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"error":{"code":"snake_case_code","message":"human text"}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
