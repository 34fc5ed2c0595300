"""Intake: the catalogue read row by row, which items need content, and the batch checked before any spend."""
