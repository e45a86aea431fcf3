"""Living inside a CRM's iframe safely: response headers, the session cookie, sessions that end, CSRF errors.

- CSP `frame-ancestors` lists exactly the CRM origins the administrator allows (none: 'none'); there is no
  X-Frame-Options, which cannot name several origins.
- When embedding is on, the session cookie is `SameSite=None; Secure; Partitioned`: the widget runs in a
  third-party frame, where browsers send only such cookies (Partitioned keeps it to that CRM's frame).
  Browsers accept Secure cookies from http://localhost, so development works without TLS. Over HTTPS the cookie
  is Secure whether embedded or not, and answers carry HSTS.
- A session names the user's session version; signing out or changing the password bumps it, ending every
  other session (the user loader refuses an old version).
"""

from __future__ import annotations

from flask import Flask, Request, Response, abort, g, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from htmx_flask import make_response as htmx_response
from itsdangerous import BadSignature
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from . import settings
from .extensions import db, login_manager
from .htmx import is_htmx
from .models import User

STATIC_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def _frame_ancestors() -> str:
    try:
        origins = settings.load().frame_origins
    except Exception:  # no database yet (first start, before migrations): frame nobody
        origins = []
    return " ".join(origins) if origins else "'none'"


class EmbeddableSessionInterface(SecureCookieSessionInterface):
    """The session cookie, made fit for a third-party frame when the administrator allows embedding."""

    def _embedding(self) -> bool:
        if "widget_embedding" not in g:
            try:
                g.widget_embedding = settings.load().embedding
            except Exception:  # no database yet: a plain first-party cookie
                g.widget_embedding = False
        return g.widget_embedding

    def _other_name(self, app: Flask) -> str:
        name = super().get_cookie_name(app)
        return name if self._embedding() else f"{name}_embedded"

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        session = super().open_session(app, request)
        other = request.cookies.get(self._other_name(app))
        if session is not None and not session and other:
            # The administrator switched embedding since this browser signed in: carry the session over to the
            # cookie of the other kind (save_session writes it and expires the old one), rather than sign out.
            serializer = self.get_signing_serializer(app)
            try:
                session = self.session_class(serializer.loads(other, max_age=int(
                    app.permanent_session_lifetime.total_seconds())))
                session.modified = True
            except BadSignature:
                pass
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        super().save_session(app, session, response)
        other = self._other_name(app)
        if other in request.cookies:
            embedded = other.endswith("_embedded")
            response.delete_cookie(other, path=self.get_cookie_path(app), domain=self.get_cookie_domain(app),
                                   secure=embedded, samesite="None" if embedded else "Lax", httponly=True,
                                   partitioned=embedded)

    def get_cookie_name(self, app: Flask) -> str:
        # A different name for the third-party kind: a browser keeps an earlier first-party cookie of the same
        # name beside the partitioned one and sends it first, so the new session would never be read back.
        name = super().get_cookie_name(app)
        return f"{name}_embedded" if self._embedding() else name

    def get_cookie_samesite(self, app: Flask) -> str | None:
        return "None" if self._embedding() else "Lax"

    def get_cookie_secure(self, app: Flask) -> bool:
        # Over HTTPS a first-party cookie is Secure too: it must never travel over a plain-HTTP request after.
        return self._embedding() or super().get_cookie_secure(app) or request.is_secure

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return self._embedding()


def _security_headers(response: Response) -> Response:
    if "Content-Security-Policy" not in response.headers:  # a view may set a stricter one of its own
        response.headers["Content-Security-Policy"] = f"{STATIC_CSP}; frame-ancestors {_frame_ancestors()}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        # Once a browser reached the widget over HTTPS, it never tries plain HTTP (where a cookie could be read).
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype == "text/html":
        # Pages answer htmx requests with fragments and others with whole pages, from the same URLs.
        response.vary.add("HX-Request")
    return response


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.disabled or user.session_version != int(version):
        return None
    return user


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
    target = url_for("auth.signin", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if is_htmx():
        # A fragment request cannot follow a redirect into a page: tell htmx to load sign-in as a whole page.
        return htmx_response("", 401, redirect=target)
    return redirect(target)


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    return render_template("errors/message.html", title="Please try again",
                           message="This form has expired or did not come from the widget. "
                                   "Reload the page and send it again."), 400


def _holds_nul(fields: MultiDict[str, str]) -> bool:
    return any("\x00" in name or any("\x00" in value for value in values) for name, values in fields.lists())


def _refuse_nul() -> None:
    # No page or form of the widget takes a NUL, and PostgreSQL can neither store a text with one nor compare
    # with it: refuse it here, once, rather than let it reach a query as a 500.
    if "\x00" in request.path or _holds_nul(request.args):
        abort(400, description="The address holds a NUL character (%00), which no page of the widget takes.")
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and _holds_nul(request.form):
        abort(400, description="A field of the form holds a NUL character, which the widget does not take. "
                               "Type the text again rather than pasting it.")


FORM_LIMIT = 1024 * 1024  # bytes of a urlencoded form: the longest email typed fits many times over


def _limit_form_body(endpoint: str | None, values: dict | None) -> None:
    # Before anything reads the form (the CSRF check is first): a urlencoded body is parsed whole, at a cost of
    # seconds of CPU for the 16 MB that a CSV upload (multipart) may have; a larger one is refused unread (413).
    if request.mimetype == "application/x-www-form-urlencoded":
        request.max_content_length = min(request.max_content_length or FORM_LIMIT, FORM_LIMIT)


def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    return render_template("errors/message.html", title="Too large",
                           message=f"This form is larger than the {FORM_LIMIT // 1024} KB the widget takes. "
                                   "Shorten what you typed, then send it again."), 413


def _bad_request(error: BadRequest) -> tuple[str, int]:
    return render_template("errors/message.html", title="Bad request",
                           message=error.description or "The widget could not read this request."), 400


def init_security(app: Flask) -> None:
    """Install the session interface, the headers, the address check and the error pages."""
    app.session_interface = EmbeddableSessionInterface()
    app.url_value_preprocessor(_limit_form_body)
    app.before_request(_refuse_nul)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(BadRequest, _bad_request)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.context_processor(lambda: {"current_user": current_user})
