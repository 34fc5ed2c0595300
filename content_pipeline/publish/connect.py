"""The targets the settings name: `wordpress` (WP_URL, WP_USER, WP_APP_PASSWORD) and `webhook`
(PUBLISH_WEBHOOK_URL, PUBLISH_WEBHOOK_SECRET); a target kept as a Prefect block is built in flows/."""

from __future__ import annotations

from content_pipeline.configs import PublishConfig
from content_pipeline.errors import BadInputError
from content_pipeline.publish.targets import Target
from content_pipeline.publish.webhook import WebhookTarget
from content_pipeline.publish.wordpress import WordPressTarget

BUILT_IN = ("wordpress", "webhook")


def configured(settings: PublishConfig, name: str) -> bool:
    """Whether the settings configure the built-in target `name`."""
    return bool(settings.wp_url) if name == "wordpress" else name == "webhook" and bool(settings.publish_webhook_url)


def target_from_settings(settings: PublishConfig, name: str) -> Target:
    """The built-in target `name`, or one clear line naming the setting that is missing."""
    if name == "wordpress":
        missing = [n for n, v in (("WP_URL", settings.wp_url), ("WP_USER", settings.wp_user)) if not v]
        if settings.wp_app_password is None:
            missing.append("WP_APP_PASSWORD")
        if missing:
            raise BadInputError(f"publish target wordpress: set {', '.join(missing)}")
        assert settings.wp_url and settings.wp_user and settings.wp_app_password
        return WordPressTarget(
            name,
            settings.wp_url,
            settings.wp_user,
            settings.wp_app_password.get_secret_value(),
            settings.wp_status,
            settings.wp_fallback_category,
            settings.publish_timeout_s,
        )
    if name == "webhook":
        secret = settings.publish_webhook_secret
        if not settings.publish_webhook_url or secret is None or not secret.get_secret_value():
            raise BadInputError("publish target webhook: set PUBLISH_WEBHOOK_URL and PUBLISH_WEBHOOK_SECRET")
        return WebhookTarget(name, settings.publish_webhook_url, secret.get_secret_value(), settings.publish_timeout_s)
    raise BadInputError(
        f"publish target {name!r} is unknown: use wordpress, webhook, or the name of a publish target block"
    )
