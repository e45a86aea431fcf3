"""`/demo/crm`: a page that plays the CRM in `flask --app widget demo`, so a newcomer sees the widget as users will.

It is served on a second loopback origin (http://127.0.0.1:P, while the widget itself is http://localhost:P on the
same server), so the widget really runs in a third-party frame: a record view whose Emails and Meetings related
lists are the widget's, and a web tab with the widget's dashboard. The demo registers this blueprint; a
deployment never does. The page lists records of the widget's own CRM directory, which the demo fills.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from ..extensions import db
from ..models import CRM_MODULES, CrmAddress, CrmRecord

bp = Blueprint("demo_crm", __name__)

CRM_HOST = "127.0.0.1"  # the CRM's origin; the widget answers on localhost (browsers keep Secure cookies there)
WIDGET_HOST = "localhost"


def origins(port: int) -> tuple[str, str]:
    """(the demo CRM's origin, the widget's origin) for a demo served on `port`."""
    return f"http://{CRM_HOST}:{port}", f"http://{WIDGET_HOST}:{port}"


@bp.route("/demo/crm")
def crm() -> ResponseReturnValue:
    """The demo CRM: records of each module on the left; the chosen record with the widget's related lists, or the
    widget's web tab."""
    port = current_app.config["WIDGET_DEMO_PORT"]
    crm_origin, widget_origin = origins(port)
    if request.host != f"{CRM_HOST}:{port}":
        # Only on its own origin is the widget a third-party frame, as in a real CRM.
        return redirect(f"{crm_origin}{request.full_path.rstrip('?')}")
    module = request.args.get("module", "Contacts")
    if module not in CRM_MODULES:
        abort(404)
    records = db.session.scalars(select(CrmRecord).where(CrmRecord.module == module)
                                 .order_by(CrmRecord.name).limit(200)).all()
    chosen = None
    if wanted := request.args.get("record"):
        chosen = db.session.scalar(select(CrmRecord).where(CrmRecord.module == module, CrmRecord.crm_id == wanted))
        if chosen is None:
            abort(404)
    elif records:
        chosen = records[0]
    addresses = db.session.scalars(select(CrmAddress.address).where(CrmAddress.record_id == chosen.id)
                                   .order_by(CrmAddress.address)).all() if chosen else []
    tab = "widget" if request.args.get("tab") == "widget" else "record"
    page = render_template("demo/crm.html", modules=CRM_MODULES, module=module, records=records, chosen=chosen,
                           addresses=addresses, tab=tab, widget_origin=widget_origin)
    response = current_app.make_response(page)
    # The CRM page frames the widget's origin and nothing else; nobody frames the CRM page.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; style-src 'self'; img-src 'self' data:; frame-src {widget_origin}; "
        "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
    )
    return response
