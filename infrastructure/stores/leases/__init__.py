"""The lease table (:mod:`agentjournal.application.leases`) in the store's own database:
one row per lease name, never deleted (a released lease keeps its last token, so a token
is never handed out twice for one name)."""

TABLE = "leases_v1"
