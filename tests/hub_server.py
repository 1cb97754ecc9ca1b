"""A minimal Hugging Face Hub-compatible HTTP server on 127.0.0.1, for tests. Stdlib only.

Just enough of the Hub protocol for the real `huggingface_hub` / `datasets` / `transformers` clients:
- one branch (`main`) per repo; each commit gets a new sha (sha1 of its content); history is kept,
  so any past commit sha resolves as a revision. Blobs live content-addressed in a temp dir.
- `preupload` answers "regular" (content inline, base64, in the commit NDJSON) except for binary
  formats, which get "lfs" as on the real Hub: `datasets.push_to_hub` deletes each parquet shard
  right after `preupload_lfs_files`, so shards must be uploaded before the commit. LFS uses the
  "basic" transfer (one PUT to this server). Xet is never offered: HF_HUB_DISABLE_XET=1 is required.
- anything not implemented answers a plain 404.
Clients read HF_ENDPOINT at import: call `configure_environment(hub)` first (see tests/conftest.py).
"""

from __future__ import annotations

import atexit
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
API_ACTIONS = {"revision", "preupload", "commit", "tree", "paths-info", "refs"}
BRANCH = "main"
# Like the Hub's default .gitattributes: binary formats (and big files) go through LFS.
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                ".onnx", ".npy", ".npz", ".pkl", ".zip", ".gz", ".tar", ".zst")
LFS_MIN_SIZE = 10 * 1024 * 1024
LFS_UPLOAD_PATH = "/__loopback__/lfs/"  # our own "S3": the basic-transfer PUT target


def git_blob_sha1(data: bytes) -> str:
    # The oid git (and the Hub) gives a regular file; the client compares it to skip no-op uploads.
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HubError(Exception):
    """An HTTP error; `code` goes to `X-Error-Code`, which the client maps to its exception types."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.extra = status, message, code, headers or {}, extra


class Repo:
    def __init__(self, repo_type: str, repo_id: str, private: bool):
        self.repo_type, self.repo_id, self.private, self.created = repo_type, repo_id, private, _now()
        self.commits: dict[str, dict] = {}
        self.head = self.add_commit(None, {}, "initial commit", "")

    def add_commit(self, parent: str | None, files: dict, title: str, message: str) -> str:
        content = json.dumps([self.repo_type, self.repo_id, parent, sorted(files.items()), title, message])
        sha = hashlib.sha1(content.encode()).hexdigest()
        self.commits[sha] = {"parent": parent, "files": files, "title": title, "message": message, "date": _now()}
        return sha

    def resolve(self, rev: str) -> str:
        """Branch name or (full/abbreviated) commit sha -> commit sha."""
        if rev in (BRANCH, f"refs/heads/{BRANCH}"):
            return self.head
        matches = [sha for sha in self.commits if len(rev) >= 7 and sha.startswith(rev.lower())]
        if len(matches) != 1:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return matches[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a lingering keep-alive connection must not block interpreter exit
    allow_reuse_address = True
    hub: "LoopbackHub"


class LoopbackHub:
    """In-process Hub look-alike. `url` is known before `start()`, so the environment can be set first."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, lfs_suffixes=LFS_SUFFIXES):
        self.host, self.port, self.lfs_suffixes = host, port or _free_port(host), tuple(lfs_suffixes)
        self.requests: list[tuple[str, str, int, str]] = []  # (method, route template, status, raw path)
        self.blocked_hosts = NetworkGuard.blocked  # non-loopback attempts refused, once the guard is enabled
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lock = threading.RLock()  # one lock: commits are atomic, readers see whole commits
        self._server: _Server | None = None
        self._root = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LoopbackHub":
        if self._server is None:
            self._root = tempfile.mkdtemp(prefix="loopback-hub-")
            self._server = _Server((self.host, self.port), _Handler)
            self._server.hub = self
            threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            shutil.rmtree(self._root, ignore_errors=True)

    __enter__ = start

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ storage
    # Blob keys: git sha1 (40 hex) for regular files, sha256 (64 hex) for LFS files.

    def blob_path(self, key: str) -> str:
        return os.path.join(self._root, key)

    def _put_blob(self, key: str, data: bytes) -> str:
        if not os.path.exists(self.blob_path(key)):
            tmp = f"{self.blob_path(key)}.{threading.get_ident()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.blob_path(key))  # atomic: concurrent readers never see half a blob
        return key

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        if (repo_type, repo_id) not in self._repos:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self._repos[(repo_type, repo_id)]

    def _files(self, repo: Repo, rev: str) -> tuple[str, dict[str, str]]:
        sha = repo.resolve(rev)
        return sha, repo.commits[sha]["files"]

    def _entry(self, files: dict[str, str], path: str) -> dict | None:
        """Tree/paths-info entry of a file or folder; None if absent."""
        if path in files:
            key = files[path]
            size = os.path.getsize(self.blob_path(key))
            entry = {"type": "file", "path": path, "oid": key, "size": size}
            if len(key) == 64:  # LFS: git oid is the pointer file's, the content is described under "lfs"
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{key}\nsize {size}\n".encode()
                entry.update(oid=git_blob_sha1(pointer), lfs={"oid": key, "size": size, "pointerSize": len(pointer)})
            return entry
        under = sorted(item for item in files.items() if item[0].startswith(path + "/"))
        if path and not under:
            return None
        return {"type": "directory", "path": path, "oid": hashlib.sha1(json.dumps(under).encode()).hexdigest()}

    # ------------------------------------------------------------------ endpoints: return (status, json body)

    def create_repo(self, body: dict) -> tuple[int, dict]:
        repo_type, name = body.get("type") or "model", "/".join(filter(None, [body.get("organization"), body["name"]]))
        url = f"{self.url}/{URL_PREFIX[repo_type]}{name}"
        with self._lock:
            if (repo_type, name) in self._repos:  # `create_repo(exist_ok=True)` tolerates 409, then reads "url"
                raise HubError(409, f"You already created this {repo_type} repo", url=url)
            self._repos[(repo_type, name)] = Repo(repo_type, name, body.get("visibility") == "private")
        return 200, {"url": url, "name": name, "id": name}

    def info(self, repo: Repo, rev: str) -> tuple[int, dict]:
        with self._lock:
            sha, files = self._files(repo, rev)
            siblings = [self._entry(files, p) for p in sorted(files)]
        return 200, {
            "_id": sha[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": sha,
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
            "createdAt": repo.created, "lastModified": repo.commits[sha]["date"],
            "siblings": [{"rfilename": e["path"], "size": e["size"], "blobId": e["oid"], "lfs": e.get("lfs") and
                          {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": e["lfs"]["pointerSize"]}}
                         for e in siblings],
            "usedStorage": sum(e["size"] for e in siblings),
        }

    def preupload(self, repo: Repo, rev: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            sha, files = self._files(repo, rev)
        out = []
        for f in body["files"]:
            lfs = f["path"].lower().endswith(self.lfs_suffixes) or f["size"] >= LFS_MIN_SIZE
            key = files.get(f["path"])
            # The existing file's oid (sha256 if LFS, else git sha1) lets the client drop no-op additions.
            remote_oid = key if key and (len(key) == 64) == lfs else None
            mode = "lfs" if lfs else "regular"
            out.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": remote_oid})
        return 200, {"files": out, "commitOid": sha}

    def lfs_batch(self, repo: Repo, body: dict) -> tuple[int, dict]:
        if body.get("operation") != "upload":
            raise HubError(400, "LoopbackHub only implements LFS uploads (downloads go through /resolve)")
        objects = []
        for obj in body["objects"]:
            if not os.path.exists(self.blob_path(obj["oid"])):  # no "actions" = already stored, client skips
                obj = {**obj, "actions": {"upload": {"href": f"{self.url}{LFS_UPLOAD_PATH}{obj['oid']}"}}}
            objects.append({**obj, "authenticated": True})
        return 200, {"transfer": "basic", "objects": objects}

    def lfs_put(self, oid: str, data: bytes) -> tuple[int, dict]:
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "LFS upload: sha256 mismatch")
        self._put_blob(oid, data)
        return 200, {}

    def commit(self, repo: Repo, rev: str, raw: bytes, query: dict) -> tuple[int, dict]:
        if query.get("create_pr"):
            raise HubError(400, "LoopbackHub does not support pull requests")
        lines = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
        header = next((line["value"] for line in lines if line["key"] == "header"), {})
        with self._lock:
            if repo.resolve(rev) != repo.head or rev not in (BRANCH, f"refs/heads/{BRANCH}"):
                raise HubError(400, f"Can only commit to branch '{BRANCH}', not '{rev}'")
            if header.get("parentCommit") and repo.resolve(header["parentCommit"]) != repo.head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")  # datasets retries
            files = dict(repo.commits[repo.head]["files"])
            for op in lines:
                key, value = op["key"], op["value"]
                if key == "file":
                    data = value["content"].encode()
                    data = base64.b64decode(data) if value.get("encoding") == "base64" else data
                    files[value["path"]] = self._put_blob(git_blob_sha1(data), data)
                elif key == "lfsFile":
                    if not os.path.exists(self.blob_path(value["oid"])):
                        raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = value["oid"]
                elif key == "deletedFile":
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    files = {p: k for p, k in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                elif key != "header":
                    raise HubError(400, f"LoopbackHub does not support commit operation '{key}'")
            repo.head = repo.add_commit(repo.head, files, header.get("summary", ""), header.get("description", ""))
        url = f"{self.url}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{repo.head}"
        return 200, {"success": True, "commitOid": repo.head, "commitUrl": url, "pullRequestUrl": None}

    def tree(self, repo: Repo, rev: str, path: str, recursive: bool) -> tuple[int, list]:
        with self._lock:
            _, files = self._files(repo, rev)
            path = path.strip("/")
            root = self._entry(files, path)
            if root is None or root["type"] != "directory":
                raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound")
            prefix, children = (path + "/" if path else ""), set()
            for p in files:
                if p.startswith(prefix):
                    parts = p[len(prefix):].split("/")
                    # every folder on the way down is listed too, as the Hub does in recursive listings
                    children.update(prefix + "/".join(parts[: i + 1]) for i in range(len(parts) if recursive else 1))
            return 200, [self._entry(files, p) for p in sorted(children)]

    def paths_info(self, repo: Repo, rev: str, paths: list[str]) -> tuple[int, list]:
        with self._lock:
            _, files = self._files(repo, rev)
            return 200, [e for e in (self._entry(files, p.strip("/")) for p in paths) if e is not None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the clients pool connections
    server: _Server

    def log_message(self, *args) -> None:  # keep test output clean; see `hub.requests` instead
        pass

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_GET

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        # Split *then* unquote: revisions and tree paths arrive with their "/" quoted as %2F.
        segs = [unquote(s) for s in parts.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._route = f"{self.command} (unsupported) /{'/'.join(segs[:2])}/..."
        try:
            if self.headers.get("Transfer-Encoding"):  # the clients always send a Content-Length
                self.close_connection = True  # the unread body would poison a kept-alive connection
                raise HubError(411, "LoopbackHub needs a Content-Length")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(*self._route_request(self.server.hub, self.command, segs, query, body))
        except HubError as e:
            headers = {"X-Error-Message": e.message, **e.headers, **({"X-Error-Code": e.code} if e.code else {})}
            self._send(e.status, {"error": e.message, **e.extra}, headers)
        except Exception as e:  # a server bug must surface as a 500, not as a hung client
            self._send(500, {"error": f"{type(e).__name__}: {e}"})

    def _route_request(self, hub: LoopbackHub, method: str, segs: list[str], query: dict, body: bytes):
        if segs[:1] == ["api"]:
            if segs[1:] == ["whoami-v2"]:
                self._route = "GET /api/whoami-v2"
                return 200, {"type": "user", "name": "loopback", "fullname": "Loopback", "orgs": [],
                             "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}}
            if segs[1:] == ["validate-yaml"]:
                self._route = "POST /api/validate-yaml"
                return 200, {"errors": [], "warnings": []}
            if segs[1:] == ["repos", "create"]:
                self._route = "POST /api/repos/create"
                return hub.create_repo(json.loads(body or b"{}"))
            if len(segs) > 2 and segs[1] in REPO_TYPES:
                repo_id, action, args = _split_repo(segs[2:], API_ACTIONS)
                self._route = f"{method} /api/{segs[1]}/{{repo_id}}" + (f"/{action}" if action else "")
                with hub._lock:
                    repo = hub._repo(REPO_TYPES[segs[1]], repo_id)
                return self._repo_api(hub, method, repo, action, args, query, body)
        elif "/" + "/".join(segs[:2]) + "/" == LFS_UPLOAD_PATH and method == "PUT":
            self._route = f"PUT {LFS_UPLOAD_PATH}{{sha256}}"
            return hub.lfs_put(segs[2], body)
        else:  # /{repo_id}/resolve/..., /datasets/{repo_id}/resolve/..., and the LFS batch API under {repo_id}.git
            prefix = segs[0] + "/" if segs[0] in ("datasets", "spaces") else ""
            repo_type = REPO_TYPES[prefix[:-1]] if prefix else "model"
            rest = segs[1:] if prefix else segs
            git = next((i for i, s in enumerate(rest[:2]) if s.endswith(".git")), None)
            if git is not None and rest[git + 1:] == ["info", "lfs", "objects", "batch"] and method == "POST":
                self._route = f"POST /{prefix}{{repo_id}}.git/info/lfs/objects/batch"
                with hub._lock:
                    repo = hub._repo(repo_type, "/".join(rest[: git + 1])[: -len(".git")])
                return hub.lfs_batch(repo, json.loads(body))
            repo_id, action, args = _split_repo(rest, {"resolve"})
            if action == "resolve" and args and method in ("GET", "HEAD"):
                self._route = f"{method} /{prefix}{{repo_id}}/resolve/{{rev}}/{{path}}"
                return self._resolve(hub, repo_type, repo_id, args[0], "/".join(args[1:]))
        raise HubError(404, "Not found (not implemented by LoopbackHub)")

    def _repo_api(self, hub, method, repo, action, args, query, body):
        rev = "/".join(args) if action == "revision" else (args[0] if args else BRANCH)
        if action in (None, "revision") and method == "GET":
            return hub.info(repo, rev)
        if action == "preupload" and method == "POST":
            return hub.preupload(repo, rev, json.loads(body))
        if action == "commit" and method == "POST":
            return hub.commit(repo, rev, body, query)
        if action == "tree" and method == "GET":
            return hub.tree(repo, rev, "/".join(args[1:]), query.get("recursive", "").lower() in ("1", "true"))
        if action == "paths-info" and method == "POST":  # form-encoded, `paths` repeated
            return hub.paths_info(repo, rev, parse_qs(body.decode(), keep_blank_values=True).get("paths", []))
        if action == "refs" and method == "GET":
            branch = {"name": BRANCH, "ref": f"refs/heads/{BRANCH}", "targetCommit": repo.head}
            return 200, {"branches": [branch], "converts": [], "tags": [], "pullRequests": []}
        raise HubError(404, "Not found (not implemented by LoopbackHub)")

    def _resolve(self, hub: LoopbackHub, repo_type: str, repo_id: str, rev: str, path: str):
        with hub._lock:
            sha, files = hub._files(hub._repo(repo_type, repo_id), rev)
            key = files.get(path)
        if key is None:  # X-Repo-Commit on the 404 lets the client cache the absence for this commit
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        with open(hub.blob_path(key), "rb") as f:
            data = f.read()
        # The client names cached blobs after the ETag: git sha1 for regular files, sha256 for LFS ones.
        headers = {"X-Repo-Commit": sha, "ETag": f'"{key}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if len(key) == 64:
            headers.update({"X-Linked-Etag": f'"{key}"', "X-Linked-Size": str(len(data))})
        rng = self.headers.get("Range", "")
        if not rng.startswith("bytes="):
            return 200, data, headers
        # Ranges: HfFileSystem reads files by ranges, downloads resume with them.
        first, _, last = rng[len("bytes="):].split(",")[0].strip().partition("-")
        start = int(first) if first else max(len(data) - int(last), 0)
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        if start >= len(data):
            raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
        return 206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}

    def _send(self, status: int, body, headers: dict | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.server.hub.requests.append((self.command, self._route, status, self.path))  # before the client sees it
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _split_repo(segs: list[str], actions: set[str]) -> tuple[str, str | None, list[str]]:
    """['ns', 'name', 'tree', 'main', ...] -> ('ns/name', 'tree', ['main', ...]); also one-part legacy ids."""
    if len(segs) >= 2 and segs[1] in actions:
        return segs[0], segs[1], segs[2:]
    return "/".join(segs[:2]), (segs[2] if len(segs) > 2 else None), segs[3:]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- environment & network guard


def configure_environment(hub: LoopbackHub, hf_home: str | None = None) -> str:
    """Point every HF client at `hub`, with caches in a temp HF_HOME. Run before importing the clients."""
    for module, attr in (("huggingface_hub.constants", "ENDPOINT"), ("datasets.config", "HF_ENDPOINT")):
        if module in sys.modules and getattr(sys.modules[module], attr) != hub.url:
            raise RuntimeError(f"{module} was imported before configure_environment(): its endpoint is frozen")
    if hf_home is None:
        hf_home = tempfile.mkdtemp(prefix="hf-home-")
        atexit.register(shutil.rmtree, hf_home, ignore_errors=True)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HUGGINGFACE_CO_STAGING",
                "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_TOKEN_PATH", "HF_HUB_ENABLE_HF_TRANSFER"):
        os.environ.pop(var, None)  # offline mode blocks loopback too; stray cache paths would leak state
    os.environ.update({
        "HF_ENDPOINT": hub.url,
        "HF_HOME": hf_home,
        "HF_HUB_CACHE": os.path.join(hf_home, "hub"),
        "HF_DATASETS_CACHE": os.path.join(hf_home, "datasets"),
        "HF_XET_CACHE": os.path.join(hf_home, "xet"),
        "HF_TOKEN": "hf_loopback_dummy_token",  # any bearer token is accepted
        "HF_HUB_DISABLE_XET": "1",  # required: with hf_xet installed, LFS-mode files would go to Xet storage
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",  # datasets would HEAD s3.amazonaws.com on every load_dataset
        "DISABLE_SAFETENSORS_CONVERSION": "1",  # transformers' background "convert to safetensors" PR bot
    })
    return hf_home


def disable_dataset_viewer() -> None:
    """`load_dataset` asks `datasets-server.<endpoint host>` for parquet exports: another host. Turn that off."""
    try:
        import datasets.config
    except ImportError:
        return
    datasets.config.USE_PARQUET_EXPORT = False


class NetworkGuard:
    """Refuses (and records) DNS lookups, connects and datagrams to non-loopback hosts, via an audit hook.

    The hook runs inside CPython's socket functions before they touch the network, so a refused call
    sends nothing. Audit hooks cannot be removed, so one process-wide hook is installed once and
    toggled. tests/conftest.py enables it for the whole session, and `guard_site/sitecustomize.py`
    (on the children's PYTHONPATH) enables it in every Python subprocess, appending what it refuses
    to the file named by $TEXT2TOKEN_NETWORK_GUARD_LOG.
    """

    _installed, active, blocked = False, False, []
    log_path: str | None = None
    EVENTS = ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto")

    @classmethod
    def enable(cls, log_path: str | None = None) -> None:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True
        cls.log_path = log_path or cls.log_path
        cls.active = True

    @classmethod
    def _hook(cls, event: str, args: tuple) -> None:
        if not cls.active or event not in cls.EVENTS:
            return
        address = args[1] if event in ("socket.connect", "socket.sendto") else args
        if not isinstance(address, tuple) or not address or address[0] is None:
            return  # AF_UNIX paths and the like
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        if not _is_loopback(host):
            entry = f"{event} {host}"
            cls.blocked.append(entry)
            if cls.log_path:
                with open(cls.log_path, "a", encoding="utf-8") as log:
                    log.write(f"{os.getpid()} {entry}\n")
            raise OSError(f"LoopbackHub NetworkGuard: refusing non-loopback host {host!r}")


def _hosts_file_loopback_names(path: str = "/etc/hosts") -> frozenset[str]:
    """Names the hosts file maps to a loopback address (this machine's own name, typically): looking
    them up reads that file and sends nothing. torchrun looks up its own host name, for instance."""
    names = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and _is_loopback_address(fields[0]):
                    names.update(fields[1:])
    except OSError:
        pass
    return frozenset(names)


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_LOCAL_NAMES: frozenset[str] | None = None


def _is_loopback(host: str) -> bool:
    global _LOCAL_NAMES
    if host == "localhost" or _is_loopback_address(host):
        return True
    if _LOCAL_NAMES is None:
        _LOCAL_NAMES = _hosts_file_loopback_names()
    return host in _LOCAL_NAMES
