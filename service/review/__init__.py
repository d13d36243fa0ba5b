"""Review workflow core: queue, leases, decisions, audit trail, decision memory, export.

No HTTP here: the API (``service.api.v1.reviews``) and the reviewer page wrap this package.
"""
