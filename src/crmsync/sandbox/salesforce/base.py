"""What the Salesforce route modules share: the org they serve, Salesforce's error answer, sObject
look-up and record rendering. `SalesforceApp` (app.py) puts the route modules together.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from crmsync.sandbox.salesforce.org import Org
from crmsync.sandbox.salesforce.schema import SObject, sobject
from crmsync.sandbox.web import CrmApp, Reply, json_response, loads_json


class SalesforceBase(CrmApp):
    """The state and helpers every group of Salesforce routes uses."""

    crm = "salesforce"
    org: Org
    base_url: str  # set once the server knows its port

    @staticmethod
    def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
        body: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            body["fields"] = fields
        return json_response([body], status)

    def sobject_named(self, name: str) -> SObject:
        """The sObject called `name`, or a 404 answer."""
        obj = sobject(name)
        if obj is None:
            raise Reply(self.error(404, "NOT_FOUND", "The requested resource does not exist"))
        return obj

    def render_record(
        self, name: str, rec: dict[str, Any], version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": name,
                "url": f"/services/data/v{version}/sobjects/{name}/{rec['Id']}",
            }
        }
        if fields is None:
            out.update(rec)
        else:
            for f in fields:
                out[f] = rec.get(f)
        return out


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a JSON_PARSER_ERROR answer."""
    try:
        body = loads_json(request.get_data() or b"{}")
    except ValueError as e:
        error = SalesforceBase.error(400, "JSON_PARSER_ERROR", f"Unexpected character: {e}")
        raise Reply(error) from None
    if not isinstance(body, dict):
        raise Reply(
            SalesforceBase.error(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of object from array"
            )
        )
    return body
