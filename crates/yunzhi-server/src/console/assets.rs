//! The console's static files, embedded in the binary: our stylesheet and
//! script, and the vendored htmx and Apache ECharts (`scripts/vendor-assets`).
//!
//! Pages link each file with its content digest in the query string, so a
//! browser may keep it for a year and still never runs an old copy after
//! an upgrade.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sm3::{Digest, Sm3};

struct Asset {
    bytes: &'static [u8],
    mime: &'static str,
}

fn table() -> &'static HashMap<&'static str, (Asset, String)> {
    static TABLE: OnceLock<HashMap<&'static str, (Asset, String)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let files: [(&str, &[u8], &str); 5] = [
            ("console.css", include_bytes!("../../assets/console.css"), "text/css; charset=utf-8"),
            ("console.js", include_bytes!("../../assets/console.js"), "text/javascript; charset=utf-8"),
            ("favicon.svg", include_bytes!("../../assets/favicon.svg"), "image/svg+xml"),
            (
                "htmx.min.js",
                include_bytes!("../../assets/vendor/htmx.min.js"),
                "text/javascript; charset=utf-8",
            ),
            (
                "echarts.min.js",
                include_bytes!("../../assets/vendor/echarts.min.js"),
                "text/javascript; charset=utf-8",
            ),
        ];
        files
            .into_iter()
            .map(|(name, bytes, mime)| {
                let digest = data_encoding::HEXLOWER.encode(&Sm3::digest(bytes)[..6]);
                (name, (Asset { bytes, mime }, digest))
            })
            .collect()
    })
}

/// The address of an embedded file, with its digest.
pub fn url(name: &str) -> String {
    match table().get(name) {
        Some((_, digest)) => format!("/assets/{name}?v={digest}"),
        None => format!("/assets/{name}"),
    }
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Some((asset, digest)) = table().get(name.as_str()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{digest}\"");
    let current = query.as_deref() == Some(&format!("v={digest}"));
    let cache = if current { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(&etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.mime)], asset.bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /favicon.ico`, which browsers ask for on their own: the icon.
pub async fn favicon(headers: HeaderMap) -> Response {
    serve(Path("favicon.svg".into()), RawQuery(None), headers).await
}
