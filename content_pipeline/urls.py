"""URLs given in settings and blocks: one that carries credentials (`user:password@host`) is refused, never
echoed; every password has a setting of its own."""

from __future__ import annotations

from urllib.parse import urlsplit

# Where each URL's credentials belong instead (the refusal names it)
CREDENTIALS_GO = {
    "WP_URL": "WP_USER and WP_APP_PASSWORD",
    "PUBLISH_WEBHOOK_URL": "PUBLISH_WEBHOOK_SECRET",
    "OPENAI_BASE_URL": "OPENAI_API_KEY",
    "AWS_ENDPOINT_URL": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "STORE_URL": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "BACKUP_URL": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "the store URL": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "CATALOGUE": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3://, or a link that needs none",
}


def carries_credentials(url: str) -> bool:
    """Whether `url` names a user (and maybe a password) before its host: `scheme://user:pass@host/...`."""
    try:
        parsed = urlsplit(url.strip())
    except ValueError:
        return False
    return bool(parsed.scheme) and len(parsed.scheme) > 1 and "@" in parsed.netloc


def credentials_refusal(name: str) -> str:
    """The one line that refuses the URL setting `name` for its credentials, without the URL."""
    where = CREDENTIALS_GO.get(name, "a setting of its own")
    return (
        f"{name}: the URL carries credentials (user:password@host), refused and not shown: "
        f"take them out of the URL and set {where}"
    )
