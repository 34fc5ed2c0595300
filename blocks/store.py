"""StoreLocation: where the pipeline's artifacts live, as a Prefect block."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, HttpUrl, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from content_pipeline.settings import URL_CREDENTIALS
from content_pipeline.urls import carries_credentials, credentials_refusal

DOCS = HttpUrl("https://docs.prefect.io/v3/concepts/blocks")
HIDE_INPUT = ConfigDict(hide_input_in_errors=True)  # a refused field's value is never echoed in the error


def no_credentials(value: str | None, setting: str) -> str | None:
    """`value` unless it is a URL carrying credentials: refused with the line of `setting`, not echoed."""
    if value is not None and carries_credentials(value):
        raise PydanticCustomError(URL_CREDENTIALS, credentials_refusal(setting))
    return value


class StoreLocation(Block):
    """Where content-pipeline keeps its ledger, views and run artifacts: a local folder or an S3 prefix."""

    _block_type_name = "Content Pipeline Store"
    _block_type_slug = "content-pipeline-store"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.store import StoreLocation

        location = StoreLocation.load("BLOCK_NAME")
        ```
    """

    model_config = HIDE_INPUT

    url: str = Field(description="A local folder path, file:// URL or s3://bucket/prefix URL.")
    region: str | None = Field(default=None, description="AWS region of the S3 bucket, if any.")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO and others); empty for AWS S3."
    )
    aws_access_key_id: SecretStr | None = Field(
        default=None, description="AWS access key id; empty to use the standard AWS credential chain."
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="AWS secret access key; empty to use the standard AWS credential chain."
    )
    backup_signing_key: SecretStr | None = Field(
        default=None,
        description="BACKUP_SIGNING_KEY: signs each backup's record (HMAC-SHA256); restore refuses unsigned ones.",
    )

    @field_validator("url", "endpoint_url")
    @classmethod
    def _no_credentials(cls, value: str | None, info: ValidationInfo) -> str | None:
        return no_credentials(value, "STORE_URL" if info.field_name == "url" else "AWS_ENDPOINT_URL")

    def settings_overrides(self) -> dict[str, Any]:
        """The settings this block sets for a run."""
        given = {
            "store_url": self.url,
            "aws_region": self.region,
            "aws_endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": self.aws_secret_access_key,
            "backup_signing_key": self.backup_signing_key,
        }
        return {name: value for name, value in given.items() if value is not None}
