"""Routes of the reviewer page: the HTML shells and their two static files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from service.errors import NotFound
from service.taxonomy import load_taxonomy

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(prefix="/review", include_in_schema=False)

_STATIC = {
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
}
# No inline script or style anywhere, so the policy can forbid both.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(request: Request, template: str, page: str, **context: object) -> HTMLResponse:
    sections = [(c, load_taxonomy().title(c)) for c in load_taxonomy().codes(1)]
    response = templates.TemplateResponse(
        request, template, {"page": page, "sections": sections, **context}
    )
    response.headers.update(_HEADERS)
    return response


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request) -> HTMLResponse:
    """Queue view: filters, counts, items."""
    return _page(request, "queue.html", "queue", title="Review queue")


@router.get("/", response_class=RedirectResponse)
def queue_slash() -> RedirectResponse:
    """``/review/`` is the queue too."""
    return RedirectResponse("/review", status_code=307)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """Sign in with a reviewer API key."""
    return _page(request, "login.html", "login", title="Sign in")


@router.get("/progress", response_class=HTMLResponse)
def progress_page(request: Request) -> HTMLResponse:
    """Progress summary: reviewed today, remaining, agreement."""
    return _page(request, "progress.html", "progress", title="Progress")


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: Annotated[int, PathParam(ge=1)]) -> HTMLResponse:
    """Item view: text, suggestions, code search, decision, history."""
    return _page(request, "item.html", "item", title=f"Item {item_id}", item_id=item_id)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The page's script and style sheet (a fixed list: nothing else is served)."""
    if name not in _STATIC:
        raise NotFound(f"No static file '{name[:50]}'.")
    body = (_HERE / "static" / name).read_bytes()
    return Response(
        body,
        media_type=_STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
