"""The reviewer web page under ``/review``: server-rendered templates plus a little vanilla JS.

The pages carry no data of their own: the script calls the JSON API with the reviewer's key
(kept in sessionStorage, so it is gone when the tab closes), so the page and any other client
go through the same routes, checks and audit trail.
"""

from service.api.ui.pages import router

__all__ = ["router"]
