"""New Task and Mark complete from the dashboard, through the test client, against the sandbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from web_helpers import post, signed_in

from widget.extensions import db
from widget.models import Task, User

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
HTMX = {"HX-Request": "true"}



def tasks_of(app, email: str) -> list[Task]:
    with app.app_context():
        rows = db.session.scalars(db.select(Task).join(User, User.id == Task.user_id).where(User.email == email)
                                  .order_by(Task.id)).all()
        db.session.expunge_all()
        return list(rows)


def sandbox_tasks(sandbox, owner: str) -> dict[str, str]:  # noqa: ANN001 - the sandbox fixture
    """Subject → status of the tasks in `owner`'s Tasks folder in the sandbox."""
    return {item.props.get("Subject"): item.props.get("Status") for item in
            sandbox.store.folder(owner, "tasks").items.values()}


def listed(client) -> list[str]:
    """The subjects of the dashboard's open tasks."""
    fragment = client.get("/dashboard/tasks", headers=HTMX).get_data(as_text=True)
    return [unescape(s) for s in re.findall(r'<span class="subject">(.*?)</span>', fragment)]


def test_it_creates_a_task_from_the_popup_that_the_open_tasks_then_list(app, sandbox):
    client = signed_in(app, ALICE)
    due = (datetime.now(UTC) + timedelta(days=3)).date()
    reply = post(client, "/tasks/new", {"subject": "Send the quote", "due": due.isoformat(), "importance": "High",
                                        "notes": "Two options"}, token_from="/tasks/new", headers=HTMX)
    assert reply.status_code == 200 and reply.headers["HX-Trigger"] == "tasks-changed"
    assert "The task “Send the quote” is saved in Exchange." in unescape(reply.get_data(as_text=True))
    assert sandbox_tasks(sandbox, ALICE) == {"Send the quote": "NotStarted"}
    (task,) = tasks_of(app, ALICE)
    assert (task.subject, task.importance, task.is_complete) == ("Send the quote", "High", False)

    # The region listens for the event, and then shows the task with its due date.
    page = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'id="open-tasks"[^>]*hx-trigger="tasks-changed from:body"', page)
    fragment = client.get("/dashboard/tasks", headers=HTMX).get_data(as_text=True)
    assert listed(client) == ["Send the quote"]
    assert f'<time datetime="{due.isoformat()}">{due:%a %d %b %Y}</time>' in fragment


def test_it_puts_each_error_beside_its_field_and_creates_nothing(app, sandbox):
    client = signed_in(app, ALICE)
    reply = post(client, "/tasks/new", {"subject": " ", "due": "next week", "reminder": "on", "reminder_at": "",
                                        "importance": "Urgent", "notes": "kept"}, token_from="/tasks/new")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 422 and "<html" in page
    errors = {key: unescape(text)
              for key, text in re.findall(r'<p class="error" id="task-(\w+)-error">(.*?)</p>', page)}
    assert errors == {"subject": "Enter a subject.", "due": "“next week” is not a date, such as 2027-03-15.",
                      "reminder_at": "Choose when the reminder comes (UTC).",
                      "importance": "Choose Low, Normal or High."}
    assert 'aria-describedby="task-due-error"' in page and ">kept</textarea>" in page
    assert tasks_of(app, ALICE) == [] and sandbox_tasks(sandbox, ALICE) == {}


def test_it_marks_a_task_complete_and_never_someone_elses(app, sandbox):
    alice, bob = signed_in(app, ALICE), signed_in(app, BOB)
    for client, subject in ((alice, "Call Pia"), (bob, "Bob's own")):
        assert post(client, "/tasks/new", {"subject": subject, "importance": "Normal"}, token_from="/tasks/new",
                    headers=HTMX).status_code == 200
    (mine,), (bobs,) = tasks_of(app, ALICE), tasks_of(app, BOB)

    # Alice cannot see, guess or complete Bob's task: it answers as a task that does not exist.
    assert listed(alice) == ["Call Pia"] and "Bob's own" not in unescape(alice.get("/dashboard").get_data(as_text=True))
    for task_id in (bobs.id, bobs.id + 1000):
        assert post(alice, f"/tasks/{task_id}/complete", token_from="/dashboard", headers=HTMX).status_code == 404
    assert tasks_of(app, BOB)[0].is_complete is False and sandbox_tasks(sandbox, BOB) == {"Bob's own": "NotStarted"}

    reply = post(alice, f"/tasks/{mine.id}/complete", token_from="/dashboard", headers=HTMX)
    assert reply.status_code == 200 and 'id="tasks-none"' in reply.get_data(as_text=True)  # the list, without it
    assert tasks_of(app, ALICE)[0].is_complete is True
    assert sandbox_tasks(sandbox, ALICE) == {"Call Pia": "Completed"}
    assert listed(bob) == ["Bob's own"]
