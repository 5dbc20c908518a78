"""Which HTTP methods a route answers: exactly those it declares, and HEAD as GET.

Flask adds HEAD to every GET route and answers OPTIONS for every route on its own. Views
that branch on ``request.method == "GET"`` would then run their POST branch for a HEAD —
and neither CSRF protection nor the sign-in rate limit looks at HEAD. So, before any other
hook runs, a HEAD request is presented to the app as a GET (werkzeug still sends no body,
because the WSGI environ keeps saying HEAD), and automatic OPTIONS answers are switched
off (any method a route does not declare answers 405).

Code that must tell a HEAD apart (a download that sends nothing records nothing) asks
:func:`is_head`, never ``request.method``.
"""

from __future__ import annotations

from flask import Flask, request

SAFE_METHODS = frozenset({"GET", "HEAD"})


def is_head() -> bool:
    """Whether the client asked for HEAD (headers only, no body will be sent)."""
    return str(request.environ.get("REQUEST_METHOD", "")).upper() == "HEAD"


def _head_as_get() -> None:
    if request.method == "HEAD":
        request.method = "GET"


def init_methods(app: Flask) -> None:
    """Present HEAD as GET ahead of every other hook; no automatic OPTIONS for routes added
    from now on (:func:`drop_automatic_options` removes it from earlier ones)."""
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.before_request_funcs.setdefault(None, []).insert(0, _head_as_get)


def drop_automatic_options(app: Flask) -> None:
    """Remove the OPTIONS that Flask added to routes made before :func:`init_methods`
    (the static route is made with the app)."""
    for rule in app.url_map.iter_rules():
        if getattr(rule, "provide_automatic_options", False) and rule.methods is not None:
            rule.methods.discard("OPTIONS")
            rule.provide_automatic_options = False  # type: ignore[attr-defined]
