"""The sandbox's Graph front: Microsoft Graph v1.0 and the Microsoft identity platform over HTTPS, on the store
that the EWS front serves (see server.py; Sandbox.start_graph starts it)."""
