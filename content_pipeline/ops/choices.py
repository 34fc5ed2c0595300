"""The choices of the operations' commands, light to import: report kinds and the periods compared."""

from __future__ import annotations

from typing import Literal

Period = Literal["daily", "weekly", "30d"]
Kind = Literal["kpi", "cost"]
