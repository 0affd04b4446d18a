//! Static assets compiled into the binary, so an installed daemon needs no asset directory and
//! no CDN.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::error::ApiError;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[Asset {
    path: "css/guildhall.css",
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../../static/css/guildhall.css"),
}];

pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let wanted = path.into_inner();
    let asset = ASSETS
        .iter()
        .find(|a| a.path == wanted)
        .ok_or_else(|| ApiError::NotFound(format!("asset `{wanted}` not found")))?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(asset.body))
}
