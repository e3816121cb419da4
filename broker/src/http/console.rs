//! The web console's files, embedded in the binary: one page, its script and its style.
//! The page is a single-page app (hash routing) that reads `/api/` and `/apps`; it loads
//! nothing from the network besides this listener (the response's content security
//! policy says so to the browser too).

use bytes::Bytes;

use super::HttpAnswer;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");
const FAVICON_SVG: &str = include_str!("console/favicon.svg");

/// What the browser may load and connect to from the console: this listener only.
pub const CONSOLE_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
     frame-ancestors 'none'";

/// The console file at `path`, if there is one.
pub fn asset(path: &str) -> Option<HttpAnswer> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX_HTML),
        "/console/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/console/style.css" => ("text/css; charset=utf-8", STYLE_CSS),
        "/favicon.ico" | "/console/favicon.svg" => ("image/svg+xml", FAVICON_SVG),
        _ => return None,
    };
    Some(HttpAnswer {
        status: 200,
        content_type,
        body: Bytes::from_static(body.as_bytes()),
    })
}
