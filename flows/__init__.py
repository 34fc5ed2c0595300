"""Prefect flows: go-live and one flow per stage. Importing this package does not import Prefect."""
