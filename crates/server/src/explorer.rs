//! The log explorer's static assets (issue 22), embedded in the binary so
//! that building the server never needs Node: `web/explorer/` and the
//! in-page verifier `web/verifier.js`, served under `/explorer/`.
//!
//! Every asset goes out with a strict Content-Security-Policy: scripts,
//! styles and requests only from this origin, no inline script or style,
//! no framing, no plugins. What the pages show is verified in the page
//! (`verifier.js`) against keys the user trusts; see docs/explorer.md.

/// The policy every explorer response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset at `path` (relative to `/explorer/`; empty: the page) and
/// its content type.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "" | "index.html" => (
            "text/html; charset=utf-8",
            include_str!("../../../web/explorer/index.html"),
        ),
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../web/explorer/app.js"),
        ),
        "verifier.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../web/verifier.js"),
        ),
        // Loaded by verifier.js only where WebCrypto lacks Ed25519.
        "vendor/noble-ed25519.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../web/vendor/noble-ed25519.js"),
        ),
        "favicon.svg" => (
            "image/svg+xml",
            include_str!("../../../web/explorer/favicon.svg"),
        ),
        "style.css" => (
            "text/css; charset=utf-8",
            include_str!("../../../web/explorer/style.css"),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        let (_, page) = asset("").unwrap_or(("", ""));
        assert!(page.contains("<script type=\"module\" src=\"app.js\"></script>"));
        // Every <script> has a src; no event-handler attributes, no
        // style attributes or elements (the CSP would block them anyway).
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script type=\"module\" src=").count()
        );
        for bad in [
            " onclick=",
            " onload=",
            " onerror=",
            " style=",
            "<style",
            "javascript:",
        ] {
            assert!(!page.contains(bad), "the page has {bad}");
        }
        for name in [
            "app.js",
            "verifier.js",
            "style.css",
            "index.html",
            "favicon.svg",
        ] {
            assert!(asset(name).is_some(), "{name}");
        }
        assert!(asset("../Cargo.toml").is_none());
    }
}
