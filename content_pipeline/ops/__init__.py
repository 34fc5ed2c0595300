"""Operations around the run: what the store says now, and (to come) health, backup, sweep, replay, reports."""
