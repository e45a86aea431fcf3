"""Every field of every page has a label a screen reader announces (a <label for>, a wrapping <label>, aria-label
or aria-labelledby), and every page says in its <title> where the user is: an axe-style check over the widget's
pages, as a user and as an administrator."""

from __future__ import annotations

from collections import defaultdict
from html.parser import HTMLParser

from contoso import PASSWORDS
from web_helpers import post

from widget.extensions import db
from widget.models import CrmRecord

PAGES = ("/dashboard", "/account/password", "/meetings/new?kind=meeting", "/meetings/new?kind=appointment",
         "/tasks/new", "/sync/history", "/crm/Contacts/C-1/emails", "/crm/Contacts/C-1/emails/new",
         "/crm/Contacts/C-1/meetings")
ADMIN_PAGES = ("/admin/", "/admin/server", "/admin/impersonation", "/admin/sync", "/admin/users", "/admin/embedding",
               "/admin/crm", "/admin/crm/import", "/admin/crm/tokens", "/sync/history")
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class _Fields(HTMLParser):
    """The page's fields, the ids its labels point at, and whether it has a title."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.label_targets: set[str] = set()
        self.title = ""
        self._in_label = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label":
            self._in_label += 1
            if values.get("for"):
                self.label_targets.add(values["for"])
        elif tag == "title":
            self._in_title = True
        elif tag in ("input", "select", "textarea") and values.get("type") not in UNLABELLED_TYPES:
            self.fields.append({**values, "_tag": tag, "_wrapped": "yes" if self._in_label else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def unlabelled(self) -> list[str]:
        return [f"<{field['_tag']} name={field.get('name')!r} id={field.get('id')!r}>" for field in self.fields
                if not (field["_wrapped"] or field.get("aria-label") or field.get("aria-labelledby")
                        or (field.get("id") and field["id"] in self.label_targets))]


def test_it_labels_every_field_of_every_page(app, client, sign_in):
    with app.app_context():
        db.session.add(CrmRecord(module="Contacts", crm_id="C-1", name="Lena"))
        db.session.commit()
    admin = app.test_client()
    assert post(admin, "/signin", {"email": "admin@example.com", "password": "Admin-password-1"}).status_code == 302
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    problems: dict[str, list[str]] = defaultdict(list)
    checked = 0
    for who, pages in ((client, PAGES), (admin, ADMIN_PAGES)):
        for page in pages:
            reply = who.get(page)
            assert reply.status_code == 200, page
            parsed = _Fields()
            parsed.feed(reply.get_data(as_text=True))
            checked += len(parsed.fields)
            problems[page] += parsed.unlabelled()
            if not parsed.title.strip():
                problems[page].append("no <title>")
    assert checked > 40  # the check reaches the forms, not just empty pages
    assert not {page: found for page, found in problems.items() if found}
