"""A **test double** of the Hugging Face Hub HTTP API, for tests only — not the Hub.

It serves the subset of endpoints that huggingface_hub 2.4's ``whoami``, ``create_repo``,
``create_branch``, ``upload_folder`` (both its Xet pipeline and its plain ``create_commit``
path), ``model_info``/``repo_info``, ``list_repo_tree``, ``hf_hub_download`` and
``snapshot_download`` call, read from that version's source:

    GET  /api/whoami-v2
    POST /api/repos/create                          {"name", "organization", "visibility"}
    POST /api/validate-yaml                         {"content", "repoType"}
    POST /api/models/{repo}/branch/{branch}         {"startingPoint"?}
    POST /api/models/{repo}/preupload/{rev}         -> every file "uploadMode": "regular"
    POST /api/models/{repo}/commit/{rev}            NDJSON: header, file (base64), deletedFile
    GET  /api/models/{repo}[/revision/{rev}]        model info (sha, siblings)
    GET  /api/models/{repo}/tree/{rev}[/{path}]     file listing (oid = git blob sha1)
    HEAD|GET /{repo}/resolve/{rev}/{path}           X-Repo-Commit, ETag, Content-Length

Because preupload answers ``"regular"`` for every file, the client never starts an LFS or Xet
transfer: file bytes travel base64-encoded inside the commit, and downloads are plain GETs
(no ``X-Xet-Hash`` header). That works on both of the client's upload paths, so no environment
switch is needed: with hf_xet installed ``upload_folder`` runs its pipelined uploader
(preupload, then the NDJSON commit; no Xet session is opened for "regular" files), and with
``HF_HUB_DISABLE_XET=1`` it runs ``create_commit`` (validate-yaml, preupload, commit). The real
Hub answers "lfs" for weights, and the client then uploads them through Xet itself.
Repositories live in memory; one token is valid.

Bounded: it binds 127.0.0.1 only, refuses bodies over ``max_body`` bytes and more than
``max_repos`` repositories, times idle sockets out, and shuts itself down after ``lifetime_s``
seconds even if a test forgets to stop it. ``corrupt(repo, path)`` makes GETs of that file
return bytes with one flipped bit (same length, same headers), to test integrity checks.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"
_REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_blob_sha1(data: bytes) -> str:
    """Git's blob id: ``sha1(b"blob <len>\\0" + data)`` (what the Hub sends as ETag/oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    files: dict[str, bytes]
    parent: str | None
    message: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        return rev if rev in self.commits else None

    def commit(self, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = self.branches.get(branch)
        digest = hashlib.sha1(f"{parent}\n{message}\n{len(self.commits)}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha1(files[path])}".encode())
        sha = digest.hexdigest()
        self.commits[sha] = Commit(dict(files), parent, message)
        self.branches[branch] = sha
        return sha


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubTestServer:
    """In-memory Hub double on ``http://127.0.0.1:<port>``; use as a context manager."""

    def __init__(self, token: str, user: str = "tester", lifetime_s: float = 120.0,
                 max_body: int = 32 << 20, max_repos: int = 16) -> None:
        self.token, self.user = token, user
        self.max_body, self.max_repos = max_body, max_repos
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, authorised); never the token
        self._corrupt: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True
        self._stopped = False

    def __enter__(self) -> "HubTestServer":
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def corrupt(self, repo_id: str, path: str, enabled: bool = True) -> None:
        """Serve ``path`` of ``repo_id`` with its last byte's low bit flipped (or intact again)."""
        (self._corrupt.add if enabled else self._corrupt.discard)((repo_id, path))

    # ---- request handling (called from handler threads, under the lock) -----------------
    def authorised(self, headers: Any) -> bool:
        return headers.get("Authorization", "") == f"Bearer {self.token}"

    def _repo(self, repo_id: str, auth: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not auth):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _rev(self, repo: Repo, rev: str) -> str:
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return sha

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict, bytes]:
        url = urlsplit(raw_path)
        path, query = url.path, parse_qs(url.query)
        auth = self.authorised(headers)
        with self._lock:
            self.requests.append((method, path, auth))
            try:
                return self._route(method, path, query, headers, body, auth)
            except HubError as e:
                hdrs = {"X-Error-Message": e.message}
                if e.code:
                    hdrs["X-Error-Code"] = e.code
                return e.status, hdrs, json.dumps({"error": e.message}).encode()

    def _route(self, method: str, path: str, query: dict, headers: Any, body: bytes,
               auth: bool) -> tuple[int, dict, bytes]:
        def need_auth() -> None:
            if not auth:
                raise HubError(401, "Invalid credentials in Authorization header")

        if method == "GET" and path == "/api/whoami-v2":
            need_auth()
            return _json({"type": "user", "name": self.user, "orgs": [],
                          "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if method == "POST" and path == "/api/repos/create":
            need_auth()
            return self._create_repo(json.loads(body or b"{}"))
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        m = re.fullmatch(rf"/api/models/{_REPO}/(?P<op>preupload|commit|branch|tree|revision)/(?P<rest>.+)",
                         path)
        if m:
            repo, op = self._repo(unquote(m["repo"]), auth), m["op"]
            rev, _, sub = m["rest"].partition("/")
            rev = unquote(rev)
            if method == "POST" and op == "preupload":
                need_auth()
                return self._preupload(repo, rev, json.loads(body or b"{}"))
            if method == "POST" and op == "commit":
                need_auth()
                if query.get("create_pr"):
                    raise HubError(400, "this test double does not implement pull requests")
                return self._commit(repo, rev, body)
            if method == "POST" and op == "branch":
                need_auth()
                return self._branch(repo, rev, json.loads(body or b"{}"))
            if method == "GET" and op == "tree":
                return self._tree(repo, rev, unquote(sub), query.get("recursive", ["false"])[0] == "true")
            if method == "GET" and op == "revision" and not sub:
                return self._info(repo, rev)
        m = re.fullmatch(rf"/api/models/{_REPO}", path)
        if m and method == "GET":
            return self._info(self._repo(unquote(m["repo"]), auth), "main")
        m = re.fullmatch(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path)
        if m and method in ("GET", "HEAD"):
            return self._resolve(self._repo(unquote(m["repo"]), auth), unquote(m["rev"]), unquote(m["file"]))
        raise HubError(404, f"{method} {path}: not implemented by the Hub test double")

    def _create_repo(self, payload: dict) -> tuple[int, dict, bytes]:
        if payload.get("type", "model") != "model":
            raise HubError(400, "this test double hosts model repositories only")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {}, json.dumps({"error": "You already created this model repo", "url": url}).encode()
        if len(self.repos) >= self.max_repos:
            raise HubError(429, f"test double limit: {self.max_repos} repositories")
        repo = Repo(repo_id, private=payload.get("visibility") == "private")
        repo.commit("main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        self.repos[repo_id] = repo
        return _json({"url": url, "name": repo_id, "id": repo_id})

    @staticmethod
    def _validate_yaml(payload: dict) -> tuple[int, dict, bytes]:
        text = payload.get("content", "")
        m = re.match(r"---\n(.*?)\n---\n", text, re.S)
        if m is None:
            return _json({"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]})
        try:
            meta = yaml.safe_load(m.group(1))
        except yaml.YAMLError as e:
            return 400, {}, json.dumps({"errors": [{"message": f"invalid YAML: {e}"}]}).encode()
        if not isinstance(meta, dict):
            return 400, {}, json.dumps({"errors": [{"message": "metadata must be a mapping"}]}).encode()
        return _json({"errors": [], "warnings": []})

    def _preupload(self, repo: Repo, rev: str, payload: dict) -> tuple[int, dict, bytes]:
        files = repo.commits[self._rev(repo, rev)].files
        return _json({"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None}
            for f in payload.get("files", [])]})

    def _commit(self, repo: Repo, rev: str, body: bytes) -> tuple[int, dict, bytes]:
        if rev not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and not repo.branches[rev].startswith(parent):
            raise HubError(412, f"parent commit {parent} is not the head of {rev}")
        files = dict(repo.commits[repo.branches[rev]].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"], validate=True)
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(prefix)}
            else:
                raise HubError(422, f"commit operation {key!r}: the test double accepts regular uploads only")
        sha = repo.commit(rev, files, header.get("summary", ""))
        return _json({"commitUrl": f"{self.url}/{repo.repo_id}/commit/{sha}", "commitOid": sha,
                      "success": True, "pullRequestUrl": None})

    def _branch(self, repo: Repo, branch: str, payload: dict) -> tuple[int, dict, bytes]:
        if branch in repo.branches:
            raise HubError(409, f"branch {branch} already exists")
        repo.branches[branch] = self._rev(repo, payload.get("startingPoint") or "main")
        return _json({})

    def _info(self, repo: Repo, rev: str) -> tuple[int, dict, bytes]:
        sha = self._rev(repo, rev)
        files = repo.commits[sha].files
        return _json({"_id": repo.repo_id, "id": repo.repo_id, "modelId": repo.repo_id,
                      "author": repo.repo_id.split("/")[0], "sha": sha, "private": repo.private,
                      "disabled": False, "gated": False, "tags": [], "downloads": 0, "likes": 0,
                      "siblings": [{"rfilename": p} for p in sorted(files)]})

    def _tree(self, repo: Repo, rev: str, sub: str, recursive: bool) -> tuple[int, dict, bytes]:
        files = repo.commits[self._rev(repo, rev)].files
        prefix = sub.rstrip("/") + "/" if sub else ""
        entries: dict[str, dict] = {}
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                d = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(d, {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                                           "size": 0, "path": d})
            if recursive or len(parts) == 1:
                entries[p] = {"type": "file", "oid": git_blob_sha1(files[p]), "size": len(files[p]), "path": p}
        return _json(list(entries.values()))

    def _resolve(self, repo: Repo, rev: str, path: str) -> tuple[int, dict, bytes]:
        sha = self._rev(repo, rev)
        files = repo.commits[sha].files
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = files[path]
        hdrs = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha1(data)}"',
                "Content-Type": "application/octet-stream"}
        if (repo.repo_id, path) in self._corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return 200, hdrs, data


def point_client_at(monkeypatch: Any, url: str | None, home: Path, token: str | None = None,
                    offline: bool = False) -> None:
    """Make huggingface_hub in this process behave as if started with ``HF_ENDPOINT=url``,
    ``HF_HOME=home``, ``HF_TOKEN=token`` and ``HF_HUB_OFFLINE`` (it reads them at import, so
    its ``constants`` are patched as well as the environment); ``monkeypatch`` undoes it."""
    from huggingface_hub import constants

    env = {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_OFFLINE": "1" if offline else "0", "HF_ENDPOINT": url, "HF_TOKEN": token}
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    if url is not None:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def _json(obj: Any) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _handler_for(server: HubTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 15

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _body(self) -> bytes | None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    total += size
                    if total > server.max_body:
                        return None
                    chunk = self.rfile.read(size + 2)[:size]
                    if size == 0:
                        return b"".join(chunks)
                    chunks.append(chunk)
            n = int(self.headers.get("Content-Length") or 0)
            return None if n > server.max_body else self.rfile.read(n)

        def _serve(self, method: str) -> None:
            body = self._body() if method == "POST" else b""
            if body is None:
                status, headers, payload = 413, {}, b'{"error": "request body too large for the test double"}'
                self.close_connection = True
            else:
                status, headers, payload = server.handle(method, self.path, self.headers, body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))  # for HEAD: what GET would send
            self.end_headers()
            if payload and method != "HEAD":
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
