"""Tests of the project as a whole: its layout, its README, its benchmarks."""
