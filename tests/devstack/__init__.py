"""Tests of devstack/: make up's stack, the cluster, deployments and the UI in a browser."""
