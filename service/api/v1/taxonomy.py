"""GET /v1/taxonomy, /v1/taxonomy/search and /v1/taxonomy/{code}: the ICCS v1.0 tree."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from service.api.deps import Reader
from service.api.v1.responses import error_responses
from service.api.v1.schemas import (
    CategoryDetail,
    CategoryOut,
    CategoryRef,
    CategoryTree,
    TaxonomyResponse,
    TaxonomySearchResponse,
)
from service.taxonomy import TAXONOMY_VERSION, Category, Taxonomy, load_taxonomy

router = APIRouter(prefix="/taxonomy", tags=["taxonomy"])
Level = Annotated[
    int | None, Query(ge=1, le=4, description="Only this level: 1 section .. 4 class.")
]


def _out(cat: Category) -> CategoryOut:
    return CategoryOut(
        code=cat.code,
        label=cat.title,
        level=cat.level,
        level_name=cat.level_name,
        parent=cat.parent,
    )


def _tree(tax: Taxonomy, cat: Category) -> CategoryTree:
    return CategoryTree(
        **_out(cat).model_dump(), children=[_tree(tax, tax.get(c)) for c in cat.children]
    )


@router.get(
    "",
    response_model=TaxonomyResponse,
    summary="The ICCS tree, or a flat list",
    responses=error_responses(401, 403, 422, 429),
)
def taxonomy(
    _: Reader,
    format: Annotated[
        Literal["tree", "flat"],
        Query(description="`tree`: sections with nested children; `flat`: one list."),
    ] = "tree",
    level: Level = None,
) -> TaxonomyResponse:
    """Every ICCS v1.0 category. With `level`, a flat list of that level only."""
    tax = load_taxonomy()
    if format == "flat" or level is not None:
        return TaxonomyResponse(
            taxonomy_version=TAXONOMY_VERSION,
            format="flat",
            categories=[_out(tax.get(c)) for c in tax.codes(level)],
        )
    return TaxonomyResponse(
        taxonomy_version=TAXONOMY_VERSION,
        format="tree",
        categories=[_tree(tax, tax.get(c)) for c in tax.codes(1)],
    )


@router.get(
    "/search",
    response_model=TaxonomySearchResponse,
    summary="Find categories by title words or code prefix",
    responses=error_responses(401, 403, 422, 429),
)
def search(
    _: Reader,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="Words that must all appear in the title, or a code prefix.",
            examples=["assault"],
        ),
    ],
    level: Level = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Most results.")] = 20,
) -> TaxonomySearchResponse:
    """Categories matching every word of `q` (whole-title matches first, broader first)."""
    hits = load_taxonomy().search(q, level=level, limit=limit)
    return TaxonomySearchResponse(
        query=q, taxonomy_version=TAXONOMY_VERSION, results=[_out(c) for c in hits]
    )


@router.get(
    "/{code}",
    response_model=CategoryDetail,
    summary="One category with its path and children",
    responses=error_responses(401, 403, 404, 422, 429),
)
def category(_: Reader, code: str) -> CategoryDetail:
    """A category by code: 404 `unknown_code` if not in ICCS, 422 `invalid_code` if malformed."""
    tax = load_taxonomy()
    cat = tax.get(code)
    return CategoryDetail(
        **_out(cat).model_dump(),
        is_leaf=cat.is_leaf,
        path=[CategoryRef(code=c, label=tax.title(c)) for c in tax.path(code)],
        children=[CategoryRef(code=c, label=tax.title(c)) for c in cat.children],
        taxonomy_version=TAXONOMY_VERSION,
    )
