"""The structured content of one item: its fields, their bounds (the prompt and QA read them here) and the
JSON schema the model must answer with, generated from the model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# characters allowed in each text field, and the number and length of highlights
BOUNDS = {"headline": (10, 120), "description": (200, 2000), "seo_description": (50, 170)}
HIGHLIGHTS = (3, 6)
HIGHLIGHT_LEN = (3, 200)


def chars(name: str) -> str:
    """The bounds of one text field, as the prompt and the schema say them: `10-120 characters`."""
    low, high = BOUNDS[name]
    return f"{low}-{high} characters"


class ItemContent(BaseModel):
    """The structured content of one item, as the model must return it."""

    model_config = ConfigDict(extra="forbid")

    headline: str = Field(description=chars("headline"))
    description: str = Field(description=f"{chars('description')}, naming the product and its category")
    highlights: list[str] = Field(
        description=f"{HIGHLIGHTS[0]}-{HIGHLIGHTS[1]} short lines drawn from the features, "
        f"{HIGHLIGHT_LEN[0]}-{HIGHLIGHT_LEN[1]} characters each"
    )
    seo_description: str = Field(description=chars("seo_description"))


def _response_format() -> dict[str, Any]:
    """Structured output in OpenAI's strict json_schema form: every field required, nothing else allowed."""
    schema = ItemContent.model_json_schema()
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(ItemContent.model_fields)
    return {"type": "json_schema", "json_schema": {"name": "item_content", "strict": True, "schema": schema}}


RESPONSE_FORMAT = _response_format()
