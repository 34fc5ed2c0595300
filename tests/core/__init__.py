"""Tests of the core package as a whole: settings, isolation from the developer's environment, hostile input."""
