"""WordPress over its REST API (`/wp-json/wp/v2`), with Basic auth and an application password: the posts the
pipeline made, found by their marker, by the id the attempt log recorded or by slug (any status); a slug held
by a post the pipeline did not make is a conflict; categories and tags by name (created where the user may).

The marker is post meta (MARKER_PLUGIN registers it): the catalogue slug the post is for, and the idempotency
key of the content last sent. WordPress keeps post meta through every edit of a post. A post is ours only when
the publishing user is its author as well: anyone may mark a post they can edit, but only a user who may edit
others' posts can give one our author. On a site without the plugin, a post is the pipeline's only when the
attempt log holds its id and the publishing user wrote it; any other post with the item's slug is a conflict
(left untouched), so a run interrupted between a create and its outcome line leaves a conflict for the
operator to settle, never a post taken over."""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx2

from content_pipeline.publish.post import Post, plain_text
from content_pipeline.publish.targets import (
    RemotePost,
    SlugConflict,
    TargetFailed,
    TargetRefused,
    TargetUnavailable,
    send,
)

API = "/wp-json/wp/v2"
MARKER_PLUGIN = "wordpress/content-pipeline-marker.php"
SLUG_META, KEY_META = "_content_pipeline_slug", "_content_pipeline_key"
TERM_CHARS = 200  # what WordPress's term name column holds: a longer name is a 500 (db_insert_error)
TRANSIENT = ("", "no JSON body", "internal_server_error")  # a 500 with one of these codes is worth a retry
SEO_FIELDS = (  # the post meta an SEO plugin reads its title and description from, sent where the site has both
    ("_yoast_wpseo_title", "_yoast_wpseo_metadesc"),  # Yoast SEO
    ("rank_math_title", "rank_math_description"),  # Rank Math
)


def _wp_code(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _marker(post: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (slug, key) a post is marked with, (None, None) when it carries no marker."""
    meta = post.get("meta")
    if not isinstance(meta, dict):  # WordPress answers [] when no meta key is registered
        return None, None
    return meta.get(SLUG_META) or None, meta.get(KEY_META) or None


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "...")


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
        self._terms: dict[tuple[str, str], int | str] = {}
        self._me: int | None = None
        self._meta: frozenset[str] | None = None

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
        key = _marker(body)[1]
        return RemotePost(str(body.get("id")), body.get("link"), body.get("status"), code, notes, key, body.get("slug"))

    def _user_id(self) -> int:
        """Our own user's id (asked once): a password WordPress refuses is a 401 here (a look-up made with it
        would pass as anonymous and fail as a 400)."""
        if self._me is None:
            response = self._call("GET", "/users/me", "read their own profile", params={"context": "edit"})
            if _wp_code(response) == "rest_not_logged_in":
                raise self._password_refused(response)
            self._me = int(self._json(response, "read the user's own profile")["id"])
        return self._me

    def meta_keys(self) -> frozenset[str]:
        """The post meta the site's REST API takes (asked once): the marker's, an SEO plugin's."""
        if self._meta is None:
            schema = self._json(self._call("OPTIONS", "/posts", "read the posts' schema"), "read the posts' schema")
            meta = schema.get("schema", {}).get("properties", {}).get("meta", {}).get("properties")
            self._meta = frozenset(meta) if isinstance(meta, dict) else frozenset()
        return self._meta

    def marked(self) -> bool:
        """Whether the site registers the marker's post meta in its REST API (MARKER_PLUGIN installed)."""
        return {SLUG_META, KEY_META} <= self.meta_keys()

    def _seo(self, post: Post) -> dict[str, str]:
        """The SEO plugin's title and description (plain text) for each plugin whose fields the site has."""
        title, description = plain_text(post.title), plain_text(post.excerpt)
        return {
            key: value
            for keys in SEO_FIELDS
            if set(keys) <= self.meta_keys()
            for key, value in zip(keys, (title, description), strict=True)
        }

    def check(self) -> tuple[str, ...]:
        """Who we are, and whether the site has the marker plugin, before the first live call."""
        self._user_id()
        if self.marked():
            return ()
        return (
            f"WordPress {self.name}: the marker plugin is not installed ({MARKER_PLUGIN} into "
            "wp-content/mu-plugins/): only posts whose id the attempt log holds are updated; any other post "
            "with an item's slug is reported as a conflict",
        )

    def _owned(self, post: dict[str, Any], slug: str, recorded: bool) -> bool:
        """Whether the pipeline made `post` for `slug`: our user wrote it, and its marker names `slug` or,
        unmarked, the attempt log `recorded` its id (a post made before the plugin, or a site without it).
        A marker alone proves nothing: any user may mark a post they can edit, and only a user who may edit
        others' posts can make one ours by giving it our author."""
        if post.get("author") != self._user_id():
            return False
        marked_for = _marker(post)[0]
        return marked_for == slug if marked_for is not None else recorded

    def _get(self, post_id: str) -> dict[str, Any] | None:
        response = self._call("GET", f"/posts/{post_id}", "read posts", params={"context": "edit"})
        if response.status_code in (404, 410):
            return None
        found: dict[str, Any] = self._json(response, f"read post {post_id}")
        return found

    def _listed(self, slug: str) -> list[dict[str, Any]]:
        """The posts (any status but trash) with `slug`, and those marked as made for it, by id."""
        found: dict[int, dict[str, Any]] = {}
        queries = [{"slug": slug}] + ([{"content_pipeline_slug": slug}] if self.marked() else [])
        for query in queries:
            params = {**query, "status": "any", "context": "edit", "per_page": 100, "orderby": "id", "order": "asc"}
            response = self._call("GET", "/posts", "list posts", params=params)
            found |= {int(p["id"]): p for p in self._json(response, f"look up slug {slug}")}
        return [found[i] for i in sorted(found)]

    def find(self, slug: str, post_id: str | None) -> RemotePost | None:
        """The post the pipeline made for `slug` (the oldest, if several), or None; SlugConflict when `slug`
        is held by a post it did not make."""
        if post_id:
            post = self._get(post_id)
            if post is not None and self._owned(post, slug, recorded=True):
                return self._remote(post, 200)
        listed = self._listed(slug)
        ours = [p for p in listed if self._owned(p, slug, recorded=False)]
        if ours:
            return self._remote(ours[0], 200)
        taken = [p for p in listed if p.get("slug") == slug]
        if taken:
            raise self._conflict(slug, taken[0])
        return None

    def _conflict(self, slug: str, post: dict[str, Any]) -> SlugConflict:
        author = self._author(post.get("author"))
        return SlugConflict(
            f"WordPress {self.name}: slug {slug} is taken by post {post.get('id')} ({post.get('status')}, by "
            f"{author}), which the pipeline did not make: left untouched, nothing sent",
            str(post.get("id")),
            author,
        )

    def _author(self, user_id: object) -> str:
        """`user N (Display Name)`, or `user N` when the name cannot be read."""
        try:
            response = self._call("GET", f"/users/{user_id}", "read users")
        except (TargetRefused, TargetUnavailable):
            return f"user {user_id}"
        body = response.json() if response.status_code == 200 else {}
        name = plain_text(str(body.get("name") or ""))[:60] if isinstance(body, dict) else ""
        return f"user {user_id} ({name})" if name else f"user {user_id}"

    def _term(self, kind: str, raw: str) -> int | str:
        """The id of the category or tag named `raw` as plain text (created when missing and the user may),
        or why it is left off. A name WordPress refuses (a 4xx, or a 500 naming the cause, as for a name that
        is empty once WordPress strips it) is left off, not failed: a product page without one tag is
        better than none, a refusal is not worth a retry, and the note names the item, the term and the
        cause; the post is not sent again for it until its content changes (a fixed catalogue row)."""
        name = plain_text(raw)[:TERM_CHARS].strip()
        if not name:
            return "has no text once its markup is taken out"
        if (kind, name.lower()) not in self._terms:
            self._terms[(kind, name.lower())] = self._look_up_or_create(kind, name)
        return self._terms[(kind, name.lower())]

    def _look_up_or_create(self, kind: str, name: str) -> int | str:
        response = self._call("GET", f"/{kind}", f"list {kind}", params={"search": name, "per_page": 100})
        for term in self._json(response, f"look up {kind}"):
            if html.unescape(term["name"]).lower() == name.lower():
                return int(term["id"])
        try:
            response = self._call("POST", f"/{kind}", f"create {kind}", keep=(500,), json={"name": name})
        except TargetRefused as exc:
            if exc.code != 403:
                raise
            return f"missing and user {self.user!r} may not create it"
        code, status = _wp_code(response), response.status_code
        if status == 400 and code == "term_exists":
            return int(response.json()["data"]["term_id"])
        if 400 <= status < 500 or (status == 500 and code not in TRANSIENT):
            return f"refused by WordPress ({status} {code})"
        if status >= 500:
            raise TargetUnavailable(f"WordPress {self.name} ({self.url}): POST /{kind}: {status}", status)
        return int(self._json(response, f"create {kind} {name!r}")["id"])

    def _categories(self, post: Post, notes: list[str]) -> list[int]:
        found = [self._term("categories", n) for n in post.categories]
        ids = [i for i in found if isinstance(i, int)]
        if len(ids) < len(post.categories) or not post.categories:
            why = next((w for w in found if isinstance(w, str)), "missing")
            fallback = self._term("categories", self.fallback_category)
            ids = ids or ([fallback] if isinstance(fallback, int) else [])
            shown = ", ".join(map(_shown, post.categories)) or "(none)"
            notes.append(f"category {shown}: {why}: filed under {self.fallback_category}")
        return ids

    def _tags(self, post: Post, notes: list[str]) -> list[int]:
        ids = []
        for name in post.tags:
            tag = self._term("tags", name)
            if isinstance(tag, int):
                ids.append(tag)
            else:
                notes.append(f"tag {_shown(name)}: {tag}: left off")
        return ids

    def _body(self, post: Post, key: str, slot: datetime | None) -> tuple[dict[str, Any], list[str]]:
        """What goes to WordPress for `post` (its texts already plain, escaped HTML), with its marker and the
        SEO plugin's fields; with a slot, scheduled then (`future`; `publish` once the slot has passed)."""
        notes: list[str] = []
        body = {"title": post.title, "content": post.body_html, "excerpt": post.excerpt, "status": self.status}
        if slot is not None:
            body["status"] = "future" if slot > datetime.now(UTC) else "publish"
            body["date_gmt"] = slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        body |= {"categories": self._categories(post, notes), "tags": self._tags(post, notes)}
        return {**body, "meta": {SLUG_META: post.slug, KEY_META: key, **self._seo(post)}}, notes

    def create(self, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        """A new post with the item's slug (WordPress may change a reserved or taken one: the answer's slug
        is what the outcome records), then, with the marker, a check that it is the only post for the item."""
        body, notes = self._body(post, key, slot)
        response = self._call("POST", "/posts", f"{body['status']} posts", json={**body, "slug": post.slug})
        made = self._json(response, f"create {post.slug}")
        if made.get("slug") != post.slug:
            found_by = "its marker" if self.marked() else "the id the attempt log records"
            notes.append(f"WordPress gave it the slug {made.get('slug')} (recorded; found again by {found_by})")
        if not self.marked():
            return self._remote(made, response.status_code, tuple(notes))
        return self._one_post(made, response.status_code, post, key, notes, slot)

    def _one_post(
        self, made: dict[str, Any], code: int, post: Post, key: str, notes: list[str], slot: datetime | None
    ) -> RemotePost:
        """After a create: the oldest post marked for the item is kept, every other one marked for it trashed
        (a create raced or repeated); the kept one gets this content if it has other."""
        ours = {int(made["id"]): made}
        listed = self._listed(post.slug)
        ours |= {int(p["id"]): p for p in listed if self._owned(p, post.slug, recorded=False)}
        keep = min(ours)
        for extra in sorted(set(ours) - {keep}):
            self._json(self._call("DELETE", f"/posts/{extra}", "trash posts"), f"trash post {extra}")
            notes.append(f"post {extra}, a second post marked for this item, trashed (post {keep} kept)")
        kept = self._remote(ours[keep], code, tuple(notes))
        if kept.key == key:
            return kept
        updated = self.update(kept, post, key, slot)
        return replace(updated, notes=kept.notes + updated.notes)

    def update(self, found: RemotePost, post: Post, key: str, slot: datetime | None = None) -> RemotePost:
        """The post's texts, terms, status and marker; its slug stays as it is on the site (an editor's
        change of it is kept)."""
        body, notes = self._body(post, key, slot)
        response = self._call("POST", f"/posts/{found.post_id}", f"{body['status']} posts", json=body)
        return self._remote(self._json(response, f"update {post.slug}"), response.status_code, tuple(notes))

    def go_live(self, found: RemotePost, slug: str) -> RemotePost:
        """A scheduled post whose slot passed (WP-Cron did not run) published now, at its slot's date."""
        response = self._call("POST", f"/posts/{found.post_id}", "publish posts", json={"status": "publish"})
        return self._remote(self._json(response, f"publish the missed post {slug}"), response.status_code)

    def take_down(self, found: RemotePost, slug: str, trash: bool) -> RemotePost:
        if trash:
            response = self._call("DELETE", f"/posts/{found.post_id}", "trash posts")
            return self._remote(self._json(response, f"trash {slug}"), response.status_code)
        response = self._call("POST", f"/posts/{found.post_id}", "edit posts", json={"status": "draft"})
        return self._remote(self._json(response, f"turn {slug} to draft"), response.status_code)

    def close(self) -> None:
        self._client.close()
