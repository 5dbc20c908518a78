"""Security headers on every response.

The policy is strict on purpose: no inline scripts or styles, no framing, no
third-party origins. Pages must work within it (one stylesheet under /static).
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)

#: Powerful browser features the portal never uses, denied to every origin.
DENIED_FEATURES = (
    "accelerometer",
    "ambient-light-sensor",
    "autoplay",
    "battery",
    "bluetooth",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)

HSTS = "max-age=63072000; includeSubDomains"

# ``same-origin`` rather than ``no-referrer``: Flask-WTF refuses form posts over
# HTTPS that carry no same-origin Referer (WTF_CSRF_SSL_STRICT), and browsers
# send none under ``no-referrer``. ``same-origin`` still sends nothing to any
# other origin.
REFERRER_POLICY = "same-origin"

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": REFERRER_POLICY,
    "Permissions-Policy": PERMISSIONS_POLICY,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


#: Endpoints whose successful responses may be kept by the signed-in user's own browser
#: (``Cache-Control: private``, set by the view): page images of the redaction review and its
#: preview, which an officer pages through back and forth. Everything else with evidence is
#: never stored.
PRIVATELY_CACHED = frozenset(
    {"review.page_image", "preview.page_image", "preview.package_page_image"}
)


def _privately_cached(response: Response) -> bool:
    return (
        request.endpoint in PRIVATELY_CACHED
        and response.status_code == 200
        and (response.headers.get("Cache-Control") or "").startswith("private")
    )


def _is_static_file(response: Response) -> bool:
    endpoint = request.endpoint or ""
    is_static_endpoint = endpoint == "static" or endpoint.endswith(".static")
    return is_static_endpoint and response.status_code < 400


def add_security_headers(response: Response) -> Response:
    """Set the security headers on ``response`` (an ``after_request`` hook)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    if not (_is_static_file(response) or _privately_cached(response)):
        # Pages and downloads may hold evidence or personal data: never store them.
        # ETag / Last-Modified stay: resumable downloads need them for If-Range.
        response.headers["Cache-Control"] = "no-store"
    # The WSGI server may add its own (gunicorn: no version); the app adds none.
    response.headers.remove("Server")
    response.headers.remove("X-Powered-By")
    return response


def init_headers(app: Flask) -> None:
    """Add the security headers to every response of ``app``, error responses included."""
    app.after_request(add_security_headers)
