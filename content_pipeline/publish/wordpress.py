"""WordPress over its REST API (`/wp-json/wp/v2`), with Basic auth and an application password: posts looked
up by id and by slug (any status), categories and tags by name (created where the user may)."""

from __future__ import annotations

import base64
import html
from typing import Any

import httpx2

from content_pipeline.publish.post import Post
from content_pipeline.publish.targets import RemotePost, TargetFailed, TargetRefused, send

API = "/wp-json/wp/v2"


def _wp_code(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class WordPressTarget:
    """One WordPress site as a publish target. `status` is what a new or updated post becomes (draft or
    publish); a category that is missing and may not be created falls back to `fallback_category`."""

    def __init__(
        self,
        name: str,
        url: str,
        user: str,
        app_password: str,
        status: str = "draft",
        fallback_category: str = "Uncategorized",
        timeout_s: float = 30.0,
    ) -> None:
        self.name, self.url, self.user = name, url.rstrip("/"), user
        self.status, self.fallback_category = status, fallback_category
        token = base64.b64encode(f"{user}:{app_password.replace(' ', '')}".encode()).decode()
        self._client = httpx2.Client(
            base_url=self.url + API, timeout=timeout_s, headers={"Authorization": f"Basic {token}"}
        )
        self._terms: dict[tuple[str, str], int | None] = {}

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx2.Response:
        """One REST call; its failures as the errors a publish run acts on (the text names this site)."""
        response = send(self._client, f"WordPress {self.name} ({self.url})", method, path, path, **kwargs)
        if response.status_code == 401:
            raise self._password_refused(response)
        if response.status_code == 403:
            raise TargetRefused(
                f"WordPress {self.name} ({self.url}): 403 Forbidden: user {self.user!r} may not {what} "
                f"({_wp_code(response)})",
                403,
            )
        return response

    def _password_refused(self, response: httpx2.Response) -> TargetRefused:
        return TargetRefused(
            f"WordPress {self.name} ({self.url}): 401 Unauthorized: the application password of user "
            f"{self.user!r} was refused ({_wp_code(response)})",
            401,
        )

    def _json(self, response: httpx2.Response, what: str) -> Any:
        if response.status_code >= 300:
            raise TargetFailed(
                f"WordPress {self.name}: {what}: {response.status_code} ({_wp_code(response)})", response.status_code
            )
        try:
            return response.json()
        except ValueError:
            raise TargetFailed(f"WordPress {self.name}: {what}: the answer is not JSON", response.status_code) from None

    def _remote(self, body: dict[str, Any], code: int, notes: tuple[str, ...] = ()) -> RemotePost:
        return RemotePost(str(body.get("id")), body.get("link"), body.get("status"), code, notes)

    def check(self) -> None:
        """Who we are, before the first live call: a password WordPress refuses is a 401 here (a look-up made
        with it would pass as anonymous and fail as a 400)."""
        response = self._call("GET", "/users/me", "read their own profile", params={"context": "edit"})
        if _wp_code(response) == "rest_not_logged_in":
            raise self._password_refused(response)
        self._json(response, "read the user's own profile")

    def find(self, slug: str, post_id: str | None) -> RemotePost | None:
        if post_id:
            response = self._call("GET", f"/posts/{post_id}", "read posts", params={"context": "edit"})
            if response.status_code == 200:
                return self._remote(self._json(response, "read a post"), 200)
            if response.status_code not in (404, 410):
                self._json(response, f"read post {post_id}")
        params = {"slug": slug, "status": "any", "context": "edit", "per_page": 10}
        response = self._call("GET", "/posts", "list posts", params=params)
        found = self._json(response, f"look up slug {slug}")
        return self._remote(found[0], response.status_code) if found else None

    def _term(self, kind: str, name: str) -> int | None:
        """The id of the category or tag `name`, created when missing and the user may; None otherwise."""
        if (kind, name.lower()) in self._terms:
            return self._terms[(kind, name.lower())]
        response = self._call("GET", f"/{kind}", f"list {kind}", params={"search": name, "per_page": 100})
        ids = [
            t["id"] for t in self._json(response, f"look up {kind}") if html.unescape(t["name"]).lower() == name.lower()
        ]
        if not ids:
            try:
                response = self._call("POST", f"/{kind}", f"create {kind}", json={"name": name})
            except TargetRefused as exc:
                if exc.code != 403:
                    raise
                response = None
            if response is not None and response.status_code == 400 and _wp_code(response) == "term_exists":
                ids = [response.json()["data"]["term_id"]]
            elif response is not None:
                ids = [self._json(response, f"create {kind} {name!r}")["id"]]
        self._terms[(kind, name.lower())] = ids[0] if ids else None
        return self._terms[(kind, name.lower())]

    def _body(self, post: Post) -> tuple[dict[str, Any], tuple[str, ...]]:
        notes: list[str] = []
        categories = [i for i in (self._term("categories", n) for n in post.categories) if i is not None]
        if len(categories) < len(post.categories) or not post.categories:
            fallback = self._term("categories", self.fallback_category)
            categories = categories or ([fallback] if fallback is not None else [])
            notes.append(
                f"category {', '.join(post.categories) or '(none)'} missing: filed under {self.fallback_category}"
            )
        tags = []
        for name in post.tags:
            tag = self._term("tags", name)
            if tag is None:
                notes.append(f"tag {name!r} missing and user {self.user!r} may not create it: left off")
            else:
                tags.append(tag)
        body = {"title": post.title, "content": post.body_html, "excerpt": post.excerpt, "slug": post.slug}
        return {**body, "status": self.status, "categories": categories, "tags": tags}, tuple(notes)

    def create(self, post: Post, key: str) -> RemotePost:
        body, notes = self._body(post)
        response = self._call("POST", "/posts", f"{self.status} posts", json=body)
        return self._remote(self._json(response, f"create {post.slug}"), response.status_code, notes)

    def update(self, found: RemotePost, post: Post, key: str) -> RemotePost:
        body, notes = self._body(post)
        response = self._call("POST", f"/posts/{found.post_id}", f"{self.status} posts", json=body)
        return self._remote(self._json(response, f"update {post.slug}"), response.status_code, notes)

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        if trash:
            response = self._call("DELETE", f"/posts/{found.post_id}", "trash posts")
            return self._remote(self._json(response, f"trash {slug}"), response.status_code)
        response = self._call("POST", f"/posts/{found.post_id}", "edit posts", json={"status": "draft"})
        return self._remote(self._json(response, f"turn {slug} to draft"), response.status_code)

    def close(self) -> None:
        self._client.close()
