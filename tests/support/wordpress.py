"""A real WordPress 6.1 (Debian's package) with a MariaDB of its own on loopback, for the test session."""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.ports import free_port

CACHE_DIR = Path("/tmp/content-pipeline-wp-cache")  # the extracted .deb, shared by every run
DEB_DIRS = (CACHE_DIR, Path("/tmp/wpdeb"), Path("/var/cache/apt/archives"))
SBIN = "/usr/sbin:/usr/local/sbin:/sbin"  # mariadbd lives in /usr/sbin, not always on a user's PATH
START_S = 60.0  # bound on each start-up wait (MariaDB's socket, the install script, the first REST answer)
STOP_S = 10.0  # bound on the wait after SIGTERM before SIGKILL
HTTP_S = 30.0  # timeout of one helper request
ROLES = {"editor1": "editor", "author1": "author", "contributor1": "contributor", "subscriber1": "subscriber"}
TOOLS = ("php", "mariadbd", "mariadb-install-db", "mariadb")
MARKER_PLUGIN = Path(__file__).resolve().parents[2] / "wordpress" / "content-pipeline-marker.php"

ROUTER_PHP = r"""<?php
// php -S router: existing files and folders are served as usual; every other path (dots included) is WordPress's.
$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/');
$path = urldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
if ($path !== '/' && file_exists($root . $path)) {
    return false;
}
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
chdir($root);
require $root . '/index.php';
"""

INSTALL_PHP = r"""<?php
// Headless install: php install.php SITE OUT.json '{"login": "role", ...}'
define('WP_INSTALLING', true);
function wp_new_blog_notification(...$args) {}  // pluggable: no mail from a test install
$_SERVER['HTTP_HOST'] = parse_url(getenv('WP_TEST_URL'), PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
require $argv[1] . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$done = wp_install('content-pipeline tests', 'admin', 'admin@example.test', false, '', wp_generate_password(24, false));
update_option('permalink_structure', '/%postname%/');  // so /wp-json/... routes (rules are rebuilt lazily)
delete_option('rewrite_rules');
$users = [];
$ids = ['admin' => $done['user_id']];
foreach (json_decode($argv[3], true) as $login => $role) {
    $id = wp_insert_user(['user_login' => $login, 'user_pass' => wp_generate_password(24, false),
                          'user_email' => $login . '@example.test', 'role' => $role]);
    if (is_wp_error($id)) { fwrite(STDERR, "user $login: " . $id->get_error_message() . "\n"); exit(2); }
    $ids[$login] = $id;
}
foreach ($ids as $login => $id) {
    $made = WP_Application_Passwords::create_new_application_password($id, ['name' => 'tests']);
    if (is_wp_error($made)) { fwrite(STDERR, "app password $login: " . $made->get_error_message() . "\n"); exit(3); }
    $users[$login] = $made[0];
}
file_put_contents($argv[2], json_encode(['users' => $users]));
"""


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path=SBIN)


def _find_deb() -> Path | None:
    debs = [deb for folder in DEB_DIRS if folder.is_dir() for deb in sorted(folder.glob("wordpress_6.1*_all.deb"))]
    return debs[-1] if debs else None


def _tree_of(root: Path) -> Path:
    return root / "usr" / "share" / "wordpress"


def wordpress_tree(cache: Path = CACHE_DIR) -> Path:
    """WordPress's files (Debian's usr/share/wordpress), extracted once from the .deb into `cache`; if no .deb is
    on disk, `apt-get download wordpress` fetches it there."""
    tree = _tree_of(cache / "tree")
    if (tree / "wp-includes" / "version.php").is_file():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    deb = _find_deb()
    if deb is None:
        try:
            _run(["apt-get", "download", "wordpress"], "apt-get download wordpress", cwd=cache, timeout=300)
        except RuntimeError:  # no package lists on this machine yet: fetch them once and try again
            _run(["apt-get", "update", "-q"], "apt-get update", timeout=300)
            _run(["apt-get", "download", "wordpress"], "apt-get download wordpress", cwd=cache, timeout=300)
        deb = _find_deb()
        if deb is None:
            raise RuntimeError(f"apt-get download wordpress left no wordpress_6.1*_all.deb in {cache}")
    scratch = Path(tempfile.mkdtemp(prefix="extract-", dir=cache))
    try:
        _run(["dpkg-deb", "-x", str(deb), str(scratch)], f"dpkg-deb -x {deb}", timeout=300)
        with suppress(OSError):  # another process won the race: its tree is as good
            os.rename(scratch, cache / "tree")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not (tree / "wp-includes" / "version.php").is_file():
        raise RuntimeError(f"{deb} has no usr/share/wordpress/wp-includes/version.php")
    return tree


def wordpress_available() -> str | None:
    """None when a WordPress can be started here, else a one-line reason (for a skip)."""
    for tool in TOOLS:
        if _which(tool) is None:
            return f"{tool} is not on PATH: apt-get install mariadb-server-core mariadb-client-core php-cli php-mysql"
    has_tree = (_tree_of(CACHE_DIR / "tree") / "wp-includes" / "version.php").is_file()
    if not has_tree and _find_deb() is None and shutil.which("apt-get") is None:
        return "no WordPress .deb on disk, no extracted tree and no apt-get to download one"
    if not has_tree and shutil.which("dpkg-deb") is None:
        return "dpkg-deb is missing: it extracts WordPress from its .deb"
    mysqli = subprocess.run([_which("php") or "php", "-r", "exit(extension_loaded('mysqli') ? 0 : 1);"], check=False)
    return None if mysqli.returncode == 0 else "php has no mysqli extension: apt-get install php-mysql"


def _run(cmd: list[str], what: str, *, timeout: float = START_S, **kwargs: Any) -> str:
    """Run `cmd` to its end within `timeout`; raise with the last lines of its output when it fails."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{what} did not finish within {timeout:.0f} s:\n{_tail_text(str(e.output or ''))}") from e
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{_tail_text(done.stdout + done.stderr)}")
    return done.stdout


def _tail_text(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _tail(log: Path) -> str:
    return _tail_text(log.read_text(errors="replace")) if log.exists() else "(no log)"


def _why(proc: subprocess.Popen[bytes]) -> str:
    return f"exited with {proc.returncode}" if proc.poll() is not None else f"took over {START_S:.0f} s"


def _die_with_parent() -> None:
    """In the child: SIGKILL it when pytest dies, so a killed session leaves no server behind (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM the process (or its process group: php -S and its workers), SIGKILL after STOP_S; reap it."""

    def kill(sig: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)

    kill(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_S)
    if group or proc.poll() is None:  # php's workers may outlive their master
        kill(signal.SIGKILL)
        proc.wait(STOP_S)
    deadline = time.monotonic() + STOP_S
    with suppress(ProcessLookupError):  # until init has reaped the orphaned workers
        while group and time.monotonic() < deadline:
            os.killpg(proc.pid, 0)
            time.sleep(0.05)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _make_site(tree: Path, site: Path, url: str, db_socket: Path) -> None:
    """A site folder of its own: Debian's files (hard links) with our wp-config.php and a wp-content that is ours
    (Debian's wp-config.php reads /etc/wordpress and points WP_CONTENT_DIR at /var/lib/wordpress)."""
    top = {"wp-config.php", "wp-content", ".htaccess"}
    shutil.copytree(
        tree,
        site,
        symlinks=True,  # Debian links a few JS/getID3 files to other packages: dangling here, unused by REST
        ignore=lambda folder, names: [n for n in names if Path(folder) == tree and n in top],
        copy_function=_link_or_copy,
    )
    shutil.copytree(tree / "wp-content", site / "wp-content", symlinks=True)
    (site / "wp-content" / "uploads").mkdir(exist_ok=True)
    (site / "wp-content" / "mu-plugins").mkdir(exist_ok=True)
    shutil.copy(MARKER_PLUGIN, site / "wp-content" / "mu-plugins" / MARKER_PLUGIN.name)  # as the README says
    salts = "".join(
        f"define('{key}', '{secrets.token_hex(32)}');\n"
        for key in (f"{a}_{b}" for a in ("AUTH", "SECURE_AUTH", "LOGGED_IN", "NONCE") for b in ("KEY", "SALT"))
    )
    (site / "wp-config.php").write_text(
        "<?php\n"
        "define('DB_NAME', 'wordpress');\ndefine('DB_USER', 'root');\ndefine('DB_PASSWORD', '');\n"
        f"define('DB_HOST', 'localhost:{db_socket}');\n"
        "define('DB_CHARSET', 'utf8mb4');\ndefine('DB_COLLATE', '');\n"
        f"{salts}$table_prefix = 'wp_';\n"
        "define('WP_ENVIRONMENT_TYPE', 'local');  // application passwords over plain http\n"
        f"define('WP_HOME', '{url}');\ndefine('WP_SITEURL', '{url}');\n"
        "define('WP_CONTENT_DIR', __DIR__ . '/wp-content');\n"
        f"define('WP_CONTENT_URL', '{url}/wp-content');\n"
        "define('DISABLE_WP_CRON', true);\ndefine('WP_HTTP_BLOCK_EXTERNAL', true);\n"
        "define('AUTOMATIC_UPDATER_DISABLED', true);\ndefine('WP_AUTO_UPDATE_CORE', false);\n"
        "define('WP_DEBUG', false);\ndefine('WP_DEBUG_DISPLAY', false);\n@ini_set('display_errors', '0');\n"
        "if (!defined('ABSPATH')) { define('ABSPATH', __DIR__ . '/'); }\n"
        "require_once ABSPATH . 'wp-settings.php';\n"
    )


class WordPressError(RuntimeError):
    """A helper's REST call answered other than 2xx."""


@dataclass
class WordPress:
    """A running WordPress: its base URL and each login's application password (admin, editor1, author1, contributor1,
    subscriber1), with REST helpers that act as editor1 unless told otherwise. `site` is its folder, with the
    marker plugin (wordpress/content-pipeline-marker.php) in wp-content/mu-plugins/."""

    url: str
    users: dict[str, str]
    site: Path | None = None
    timeout: float = HTTP_S

    @contextmanager
    def without_marker_plugin(self) -> Iterator[None]:
        """The site as one without the marker plugin, for the `with` block (each request reads mu-plugins/)."""
        assert self.site is not None
        installed = self.site / "wp-content" / "mu-plugins" / MARKER_PLUGIN.name
        aside = installed.with_suffix(".off")
        installed.rename(aside)
        try:
            yield
        finally:
            aside.rename(installed)

    def rest_url(self, route: str) -> str:
        """The URL of a REST route, e.g. rest_url("/wp/v2/posts")."""
        return f"{self.url}/wp-json{route}"

    def auth_header(self, user: str = "editor1", password: str | None = None) -> str:
        """The Authorization header value for `user` (its application password unless `password` is given)."""
        token = f"{user}:{self.users[user] if password is None else password}".encode()
        return "Basic " + base64.b64encode(token).decode()

    def request(
        self,
        method: str,
        route: str,
        *,
        user: str | None = "editor1",
        password: str | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One REST call (user=None: anonymous); returns (status, headers, decoded JSON body or None)."""
        url = self.rest_url(route) + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if user is not None:
            req.add_header("Authorization", self.auth_header(user, password))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, headers, raw = resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers.items()), e.read()
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return status, headers, decoded

    def _ok(self, method: str, route: str, **kwargs: Any) -> tuple[dict[str, str], Any]:
        status, headers, body = self.request(method, route, **kwargs)
        if not 200 <= status < 300:
            raise WordPressError(f"{method} {route} {kwargs.get('params') or ''} -> {status}: {body}")
        return headers, body

    def _all(self, route: str, params: dict[str, Any], user: str = "editor1") -> list[dict[str, Any]]:
        """Every item of a listing, page by page (per_page is at most 100)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            headers, body = self._ok("GET", route, params={**params, "per_page": 100, "page": page}, user=user)
            items.extend(body)
            total = {k.lower(): v for k, v in headers.items()}.get("x-wp-totalpages", "1")
            if page >= int(total or "1") or not body:
                return items
            page += 1

    def posts(self, slug: str | None = None, status: str = "any", user: str = "editor1") -> list[dict[str, Any]]:
        """Posts of any status but trash (edit context: raw title/content), optionally those with `slug`, as
        `user` sees them."""
        params: dict[str, Any] = {"status": status, "context": "edit", "orderby": "id", "order": "asc"}
        if slug is not None:
            params["slug"] = slug
        return self._all("/wp/v2/posts", params, user)

    def user_id(self, user: str) -> int:
        """The id of login `user`."""
        return int(self._ok("GET", "/wp/v2/users/me", user=user)[1]["id"])

    def create_post(self, user: str = "editor1", **fields: Any) -> dict[str, Any]:
        """A post written by `user` (a human on the site, not the pipeline), as WordPress answers it."""
        return dict(self._ok("POST", "/wp/v2/posts", body=fields, user=user)[1])

    def edit_post(self, post_id: int, user: str = "editor1", **fields: Any) -> dict[str, Any]:
        """An edit of post `post_id` by `user`, as an editor makes it in the admin."""
        return dict(self._ok("POST", f"/wp/v2/posts/{post_id}", body=fields, user=user)[1])

    def categories(self) -> list[dict[str, Any]]:
        return self._all("/wp/v2/categories", {"context": "edit", "orderby": "id"})

    def tags(self) -> list[dict[str, Any]]:
        return self._all("/wp/v2/tags", {"context": "edit", "orderby": "id"})

    def create_category(self, name: str) -> int:
        return int(self._ok("POST", "/wp/v2/categories", body={"name": name})[1]["id"])

    def reset(self) -> None:
        """Delete every post (trashed ones too), every category but Uncategorized (id 1) and every tag."""
        for post in self.posts() + self.posts(status="trash"):
            self._ok("DELETE", f"/wp/v2/posts/{post['id']}", params={"force": "true"})
        for term in self.categories():
            if term["id"] != 1:
                self._ok("DELETE", f"/wp/v2/categories/{term['id']}", params={"force": "true"})
        for term in self.tags():
            self._ok("DELETE", f"/wp/v2/tags/{term['id']}", params={"force": "true"})


def _start_mariadb(stack: ExitStack, base: Path, db_socket: Path) -> None:
    datadir, log = base / "mysql", base / "mariadb.log"
    install = [_which("mariadb-install-db") or "mariadb-install-db", "--no-defaults", "--user=root"]
    install += [f"--datadir={datadir}", "--auth-root-authentication-method=normal", "--skip-test-db"]
    _run(install, "mariadb-install-db")
    command = [_which("mariadbd") or "mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}"]
    command += [f"--socket={db_socket}", "--skip-networking", f"--pid-file={base / 'mariadb.pid'}"]
    command += ["--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M"]  # a throwaway database
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    stack.callback(_stop, proc)
    deadline = time.monotonic() + START_S
    while not db_socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mariadbd {_why(proc)} before it opened {db_socket}:\n{_tail(log)}")
        time.sleep(0.05)
    client = [_which("mariadb") or "mariadb", "--no-defaults", "--user=root", f"--socket={db_socket}"]
    _run([*client, "-e", "CREATE DATABASE wordpress CHARACTER SET utf8mb4"], "CREATE DATABASE wordpress")


def _start_php(stack: ExitStack, base: Path, site: Path, port: int, workers: int) -> None:
    log, router = base / "php-server.log", base / "router.php"
    router.write_text(ROUTER_PHP)
    command = [_which("php") or "php", "-d", "display_errors=0", "-d", "log_errors=1"]
    command += ["-d", f"error_log={base / 'php-errors.log'}", "-S", f"127.0.0.1:{port}", "-t", str(site), str(router)]
    env = {**os.environ, "PHP_CLI_SERVER_WORKERS": str(workers)} if workers > 1 else None
    with log.open("wb") as out:
        options: dict[str, Any] = {"stdin": subprocess.DEVNULL, "env": env, "start_new_session": True}
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **options)
    stack.callback(_stop, proc, True)
    deadline = time.monotonic() + START_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/wp-json/", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            errors = _tail(base / "php-errors.log")
            raise RuntimeError(f"php -S {_why(proc)} before /wp-json/ answered:\n{_tail(log)}\n{errors}")
        time.sleep(0.1)


@contextmanager
def running_wordpress(base_dir: Path, *, workers: int = 4) -> Iterator[WordPress]:
    """Start MariaDB (its own data folder and socket), install WordPress headless into a site folder under
    `base_dir` and serve it with `php -S` (`workers` PHP_CLI_SERVER_WORKERS); yield it once editor1's
    application password works. Everything is stopped by pid (php by process group) on exit."""
    base_dir.mkdir(parents=True, exist_ok=True)
    tree = wordpress_tree()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        sock_dir = Path(tempfile.mkdtemp(prefix="wpdb-", dir="/tmp"))  # a socket path must stay under 107 bytes
        stack.callback(shutil.rmtree, sock_dir, ignore_errors=True)
        db_socket = sock_dir / "mysqld.sock"
        _start_mariadb(stack, base_dir, db_socket)
        site = base_dir / "site"
        _make_site(tree, site, url, db_socket)
        script, out = base_dir / "install.php", base_dir / "install.json"
        script.write_text(INSTALL_PHP)
        php = [_which("php") or "php", "-d", "display_errors=stderr", str(script), str(site), str(out)]
        _run([*php, json.dumps(ROLES)], "the WordPress install script", env={**os.environ, "WP_TEST_URL": url})
        wordpress = WordPress(url=url, users=json.loads(out.read_text())["users"], site=site)
        _start_php(stack, base_dir, site, port, workers)
        status, _, body = wordpress.request("GET", "/wp/v2/users/me")
        if status != 200:
            raise RuntimeError(f"editor1's application password was refused ({status}): {body}")
        yield wordpress
