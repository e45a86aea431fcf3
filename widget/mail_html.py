"""Untrusted email HTML made safe to show: sanitised with nh3, then served as its own document under a strict CSP.

Two independent barriers, so that a slip in one is caught by the other:

1. The sanitiser (this module) keeps common formatting only. It removes scripts, <style> elements, frames,
   objects, forms, <meta>, SVG and MathML (with their content), every event handler and every attribute not on
   the list; links keep http(s) and mailto targets only and get rel="noopener noreferrer"; images keep only
   `data:image/...` (raster types) and `cid:` sources, so that opening an email loads nothing remote (no
   tracking pixels); `style` attributes keep only listed properties whose values cannot load or run anything
   (no url(), expression(), escapes, comments or at-rules).
2. The document (see `body_document`) is served from its own URL with `BODY_CSP` and shown in an
   `<iframe sandbox="">`: no script can run, no same-origin access, nothing loads except data: images.

Why `style-src 'unsafe-inline'` is acceptable in BODY_CSP: most email is formatted with style attributes,
and the document carries nothing but sanitised mail, so inline CSS here cannot reach the widget (the frame
has an opaque origin, no scripts run, and `url()` loads are blocked by `img-src data:` and
`default-src 'none'` even if the sanitiser missed one). <style> elements are stripped — their selectors,
@import and @font-face are what CSS exfiltration needs — and `style-src-elem 'none'` tells browsers that
understand CSP level 3 to refuse any that slipped through, while `style-src-attr 'unsafe-inline'` keeps the
style attributes.
"""

from __future__ import annotations

import re
from html import escape

import nh3

# Served with the body document (GET /emails/<id>/body); `frame-ancestors` is added per deployment.
BODY_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; style-src-elem 'none'; "
    "style-src-attr 'unsafe-inline'; font-src 'none'; form-action 'none'; base-uri 'none'; sandbox"
)

ALLOWED_TAGS = {
    "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption", "center", "cite", "code",
    "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "wbr",
}
# Removed together with everything inside them.
REMOVED_WITH_CONTENT = {
    "script", "style", "title", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
    "noembed", "noframes", "template", "svg", "math", "xmp", "textarea", "select", "button", "audio", "video",
    "canvas", "head",
}
ALLOWED_ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border"},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor", "valign"},
    "td": {"width", "height", "colspan", "rowspan", "valign", "bgcolor", "nowrap"},
    "th": {"width", "height", "colspan", "rowspan", "valign", "bgcolor", "nowrap", "scope"},
    "tr": {"valign", "bgcolor"},
    "col": {"width", "span"},
    "colgroup": {"width", "span"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
}
URL_SCHEMES = {"http", "https", "mailto", "data", "cid"}
LINK_SCHEMES = ("http:", "https:", "mailto:")
IMAGE_SOURCE = re.compile(r"^(?:cid:[^\s]+|data:image/(?:png|gif|jpeg|jpg|webp|bmp);base64,[a-z0-9+/=\s]+)$", re.I)

# CSS properties a style attribute may keep: text, box and table formatting — nothing that positions an element
# over the page, loads anything (background-image, list-style-image, cursor, content) or animates.
STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-radius", "border-right", "border-spacing", "border-style", "border-top", "border-width", "color",
    "direction", "display", "font", "font-family", "font-size", "font-style", "font-variant", "font-weight",
    "height", "letter-spacing", "line-height", "list-style-type", "margin", "margin-bottom", "margin-left",
    "margin-right", "margin-top", "max-width", "min-width", "padding", "padding-bottom", "padding-left",
    "padding-right", "padding-top", "table-layout", "text-align", "text-decoration", "text-indent",
    "text-transform", "vertical-align", "white-space", "width", "word-break", "word-spacing", "overflow-wrap",
}
# Anything that could load, run or hide what it does.
_UNSAFE_CSS_VALUE = re.compile(r"url\s*\(|expression|javascript|vbscript|behavior|binding|image-set|@|\\|/\*|[<>]",
                               re.I)
_SHOWN_DISPLAY = {"block", "inline", "inline-block", "table", "table-cell", "table-row", "list-item", "flex"}


def clean_style(value: str) -> str | None:
    """A style attribute reduced to safe declarations (None when nothing is left)."""
    kept = []
    for declaration in value.split(";"):
        name, colon, raw = declaration.partition(":")
        name, raw = name.strip().lower(), raw.strip()
        if not colon or name not in STYLE_PROPERTIES or not raw or _UNSAFE_CSS_VALUE.search(raw):
            continue
        if name == "display" and raw.lower() not in _SHOWN_DISPLAY:
            continue  # no hidden text (display:none hides phishing from a quick glance, not from the reader)
        kept.append(f"{name}: {raw}")
    return "; ".join(kept) or None


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return clean_style(value)
    if tag == "a" and attribute == "href":
        return value if value.strip().lower().startswith(LINK_SCHEMES) else None
    if tag == "img" and attribute == "src":
        return value if IMAGE_SOURCE.match(value.strip()) else None
    if attribute in ("cite",):
        return value if value.strip().lower().startswith(("http:", "https:")) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=REMOVED_WITH_CONTENT,
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    url_schemes=URL_SCHEMES,
    url_relative="deny",
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitize_html(html: str) -> str:
    """Email HTML with everything active or remote removed (see the module's docstring)."""
    return _CLEANER.clean(html or "")


def body_document(html: str | None, text: str | None) -> str:
    """The complete document shown in the email's sandboxed frame: sanitised HTML, or escaped plain text."""
    if html is not None:
        content = sanitize_html(html)
    else:
        content = f'<pre style="white-space: pre-wrap">{escape(text or "")}</pre>'
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{BODY_CSP.replace('; sandbox', '')}\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "</head><body style=\"margin: 8px; font-family: system-ui, sans-serif; font-size: 14px; "
        "overflow-wrap: anywhere\">\n"
        f"{content}\n</body></html>\n"
    )
