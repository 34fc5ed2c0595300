"""Every numeric setting is finite and in range: a value outside is refused with exit 2 and one line naming
the setting, before anything starts (no store opened, no Prefect)."""

from __future__ import annotations

import json
import math
from typing import Any

import annotated_types as at
import pytest

from cli import main as cli
from content_pipeline.prices import ModelPrice
from content_pipeline.settings import Settings


def _numeric(model: type[Any]) -> dict[str, tuple[float, float]]:
    """name -> (lowest, highest) allowed, for every int or float field of `model`."""
    found = {}
    for name, field in model.model_fields.items():
        if field.annotation not in (int, float, int | None, float | None):
            continue
        low = next(
            (m.ge if isinstance(m, at.Ge) else m.gt for m in field.metadata if isinstance(m, (at.Ge, at.Gt))), None
        )
        high = next(
            (m.le if isinstance(m, at.Le) else m.lt for m in field.metadata if isinstance(m, (at.Le, at.Lt))), None
        )
        found[name] = (low, high)
    return found


SETTINGS = _numeric(Settings)


def test_every_numeric_setting_and_price_has_both_bounds() -> None:
    assert len(SETTINGS) >= 25
    for model in (Settings, ModelPrice):
        unbounded = [name for name, (low, high) in _numeric(model).items() if low is None or high is None]
        assert unbounded == [], f"{model.__name__}: no lower or upper bound on {unbounded}"


def _bad_values(low: float, high: float) -> list[str]:
    return ["nan", "inf", "-inf", repr(low - 1), repr(high * 10 + 1)]


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, (low, high) in SETTINGS.items() for value in _bad_values(low, high)],
)
def test_a_setting_out_of_range_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, name: str, value: str) -> None:
    store = tmp_path / "store"
    monkeypatch.setenv("STORE_URL", str(store))
    monkeypatch.setenv(name.upper(), value)
    assert cli.main(["go-live", "--direct"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: setting {name.upper()}: ") and err.count("\n") == 1, err
    assert not store.exists()  # refused before the store was opened


@pytest.mark.parametrize("price", [-1, math.inf, 1e9])
def test_a_price_out_of_range_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, price: float) -> None:
    monkeypatch.setenv("STORE_URL", str(tmp_path / "store"))
    table = {
        "gpt-4o-mini": {"input_per_mtok": price, "output_per_mtok": 0.6},
        "gpt-4o": {"input_per_mtok": 1, "output_per_mtok": 1},
    }
    monkeypatch.setenv("PRICE_TABLE", json.dumps(table).replace("Infinity", "1e999"))
    assert cli.main(["go-live", "--direct"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: setting PRICE_TABLE") and err.count("\n") == 1, err
