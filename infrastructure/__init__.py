"""Adapters: litellm, Docker and host compute, persistence (the typed event mapper, the
transcoder), the scripted model server.

Heavy libraries (litellm, docker) are imported inside the adapters that use
them, so importing this package stays cheap.
"""
