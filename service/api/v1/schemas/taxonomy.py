"""GET /v1/taxonomy: the ICCS tree, its categories and search results."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CategoryRef(BaseModel):
    """A code and its title."""

    code: str = Field(description="ICCS code.", examples=["0201"])
    label: str = Field(description="Official ICCS title.", examples=["Assaults and threats"])


class CategoryOut(BaseModel):
    """One ICCS category."""

    code: str = Field(description="ICCS code.", examples=["0201"])
    label: str = Field(description="Official ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section .. 4 class.", ge=1, le=4, examples=[2])
    level_name: str = Field(description="section, division, group or class.", examples=["division"])
    parent: str | None = Field(description="Parent code; null for sections.", examples=["02"])


class CategoryTree(CategoryOut):
    """A category with its subcategories nested."""

    children: list[CategoryTree] = Field(description="Subcategories in the standard's order.")


class CategoryDetail(CategoryOut):
    """A category with its path and children."""

    is_leaf: bool = Field(description="True when it has no subcategories.", examples=[False])
    path: list[CategoryRef] = Field(description="From the section down to this category.")
    children: list[CategoryRef] = Field(description="Direct subcategories.")
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])


class TaxonomyResponse(BaseModel):
    """The ICCS tree, or a flat list of categories."""

    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    format: Literal["tree", "flat"] = Field(description="Shape of `categories`.", examples=["tree"])
    categories: list[CategoryTree] | list[CategoryOut] = Field(
        description="Sections with nested children (tree) or categories in code order (flat)."
    )


class TaxonomySearchResponse(BaseModel):
    """Categories whose title matches the query."""

    query: str = Field(description="The query as received.", examples=["assault"])
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    results: list[CategoryOut] = Field(description="Best matches first.")
