"""The publish targets as Prefect blocks: a WordPress site (REST API, application password) and a signed
webhook; each builds the core's target."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, field_validator

from blocks.store import DOCS, HIDE_INPUT, no_credentials
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.publish.wordpress import WordPressTarget


class WordPressSite(Block):
    """A WordPress site content-pipeline publishes to over its REST API, as a user with an application
    password (Users > Profile > Application Passwords)."""

    _block_type_name = "Content Pipeline WordPress"
    _block_type_slug = "content-pipeline-wordpress"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.publish import WordPressSite

        site = WordPressSite.load("BLOCK_NAME")
        ```
    """

    model_config = HIDE_INPUT

    url: str = Field(description="The site's base URL, e.g. https://shop.example.com (the REST API is /wp-json).")
    username: str = Field(description="The WordPress user that publishes (an editor may create categories).")
    application_password: SecretStr = Field(description="That user's application password (spaces allowed).")
    status: Literal["draft", "publish"] = Field(default="draft", description="What a post becomes: draft or publish.")
    fallback_category: str = Field(
        default="Uncategorized", description="The category of a post whose own is missing and may not be created."
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of one REST call, seconds.")

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        return no_credentials(value, "WP_URL") or value

    def target(self, name: str) -> WordPressTarget:
        """The core's target for this site, named `name` in the attempt log."""
        password = self.application_password.get_secret_value()
        return WordPressTarget(
            name, self.url, self.username, password, self.status, self.fallback_category, self.timeout_s
        )


class SignedWebhook(Block):
    """A webhook content-pipeline POSTs each post to as JSON, signed with HMAC-SHA256 of the body in the
    X-Content-Pipeline-Signature header."""

    _block_type_name = "Content Pipeline Webhook"
    _block_type_slug = "content-pipeline-webhook"
    _documentation_url = DOCS
    _code_example = """
        ```python
        from blocks.publish import SignedWebhook

        hook = SignedWebhook.load("BLOCK_NAME")
        ```
    """

    model_config = HIDE_INPUT

    url: str = Field(description="The receiver's URL; each post is one POST of a JSON payload.")
    secret: SecretStr = Field(description="The shared secret the body's HMAC-SHA256 signature is made with.")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of one delivery, seconds.")

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        return no_credentials(value, "PUBLISH_WEBHOOK_URL") or value

    def target(self, name: str) -> WebhookTarget:
        """The core's target for this webhook, named `name` in the attempt log."""
        return WebhookTarget(name, self.url, self.secret.get_secret_value(), self.timeout_s)
