"""The local stacks for development and the test suite: `make up`, `make up-cluster`, SeaweedFS, the Prefect server they start; not shipped in the wheel."""
