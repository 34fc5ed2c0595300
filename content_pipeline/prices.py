"""The models' prices: USD per million input, cached input and output tokens, the Batch API's share, and the
defaults PRICE_TABLE starts from."""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_PRICE = 10_000.0  # USD per 1M tokens: more is a typo


class ModelPrice(BaseModel):
    """USD per million tokens for one model, what its cached prompt tokens cost, and the Batch API's share."""

    input_per_mtok: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False, description="USD per 1M input tokens")
    output_per_mtok: float = Field(ge=0, le=MAX_PRICE, allow_inf_nan=False, description="USD per 1M output tokens")
    cached_input_per_mtok: float | None = Field(
        None,
        ge=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="USD per 1M cached prompt tokens; unset: the input price",
    )
    cache_write_per_mtok: float | None = Field(
        None,
        ge=0,
        le=MAX_PRICE,
        allow_inf_nan=False,
        description="USD per 1M prompt tokens written to the provider's cache, where it reports and bills them "
        "(`cache_write_tokens`); unset: the input price",
    )
    batch_discount: float = Field(
        0.5, gt=0, le=1, description="What the Batch API charges of these prices (0.5: half price)"
    )

    @property
    def cached_per_mtok(self) -> float:
        return self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok

    @property
    def write_per_mtok(self) -> float:
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, cached_input_per_mtok=0.075, output_per_mtok=0.60),
    "gpt-4o": ModelPrice(input_per_mtok=2.50, cached_input_per_mtok=1.25, output_per_mtok=10.00),
    "gpt-4.1-mini": ModelPrice(input_per_mtok=0.40, cached_input_per_mtok=0.10, output_per_mtok=1.60),
    "gpt-4.1": ModelPrice(input_per_mtok=2.00, cached_input_per_mtok=0.50, output_per_mtok=8.00),
    "gpt-4.1-nano": ModelPrice(input_per_mtok=0.10, cached_input_per_mtok=0.025, output_per_mtok=0.40),
}
