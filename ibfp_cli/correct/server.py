"""The correction page's web server: the page, its frames and its JSON API, behind a token.

Every request needs the token of the URL `ibfp correct` prints: as its `token` query
parameter, else as the cookie the page's first response sets (HttpOnly, SameSite=Strict,
named after the port, so two sessions on one machine keep theirs apart), else as an
`X-IBFP-Token` header. A request without it is refused with 401, with a wrong one with 403,
before anything is read. A bad request gets a 4xx with a one-line message and changes
nothing: 404 for an object, keyframe or frame that does not exist, 409 for what the state
refuses now (an edit while a retrack runs, nothing to undo), 422 for a malformed body or a
box outside the frame.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
import threading
import time
from dataclasses import asdict
from importlib import resources
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from ..boxes import Box
from ..errors import IBFPError
from .frames import FrameOutOfRange
from .session import NotFound, Refused, Session

DEFAULT_HOST = "127.0.0.1"
TOKEN_BYTES = 16
"""128 random bits, the size Python's `secrets` module recommends against guessing."""
TOKEN_PARAMETER = "token"
TOKEN_HEADER = "x-ibfp-token"
COOKIE_PREFIX = "ibfp_token_"
STATIC_TYPES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""The only files the server sends besides frames, from the package's static folder."""
FRAME_MAX_AGE_S = 3600
"""Frames never change while the server runs, so the browser may keep them an hour."""
SHUTDOWN_GRACE_S = 3
"""At Ctrl-C, open requests get this long to finish; the page's take milliseconds."""
START_TIMEOUT_S = 10
"""How long `PageServer.start` waits for the server to accept connections."""
START_POLL_S = 0.01
HTTP_UNAUTHORIZED, HTTP_FORBIDDEN, HTTP_NOT_FOUND, HTTP_CONFLICT, HTTP_UNPROCESSABLE = 401, 403, 404, 409, 422


class KeyframeRequest(BaseModel):
    """A box drawn on a frame: for object `id`, or a new object labelled `label`."""

    model_config = ConfigDict(extra="forbid")
    frame: int
    box: tuple[float, float, float, float]
    id: int | None = None
    label: str | None = None


class AbsentRequest(BaseModel):
    """Object `id` out of view from `frame` on (absent), or back in view there (not absent)."""

    model_config = ConfigDict(extra="forbid")
    id: int
    frame: int
    absent: bool = True


def create_app(session: Session, token: str) -> FastAPI:
    """The page's application: static files, frames and the API, all behind `token`."""
    app = FastAPI(title="ibfp correct", docs_url=None, redoc_url=None, openapi_url=None)
    static = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in STATIC_TYPES}

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        cookie = f"{COOKIE_PREFIX}{request.url.port or ''}"
        given = (
            request.query_params.get(TOKEN_PARAMETER)
            or request.cookies.get(cookie)
            or request.headers.get(TOKEN_HEADER)
        )
        if not given:
            return _error(HTTP_UNAUTHORIZED, "this page needs the token of the URL `ibfp correct` printed")
        if not secrets.compare_digest(given.encode(), token.encode()):
            return _error(HTTP_FORBIDDEN, "wrong token: open the URL `ibfp correct` printed")
        response: Response = await call_next(request)
        if TOKEN_PARAMETER in request.query_params:
            response.set_cookie(cookie, token, httponly=True, samesite="strict")
        return response

    for error, status in (
        (NotFound, HTTP_NOT_FOUND),
        (FrameOutOfRange, HTTP_NOT_FOUND),
        (Refused, HTTP_CONFLICT),
        (IBFPError, HTTP_UNPROCESSABLE),
    ):
        app.add_exception_handler(error, _handler(status))  # the most specific class's handler answers
    app.add_exception_handler(RequestValidationError, _invalid_request)

    @app.get("/")
    def page() -> Response:
        return Response(static["index.html"], media_type=STATIC_TYPES["index.html"])

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            raise NotFound(f"no file {name}")
        return Response(static[name], media_type=STATIC_TYPES[name])

    @app.get("/frames/{index}.jpg")
    def frame(index: int) -> Response:
        headers = {"Cache-Control": f"private, max-age={FRAME_MAX_AGE_S}"}
        return Response(session.frames.jpeg(index), media_type="image/jpeg", headers=headers)

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(session.view())

    @app.post("/api/keyframes")
    def set_keyframe(request: KeyframeRequest) -> JSONResponse:
        session.set_keyframe(request.frame, Box(*request.box), request.id, request.label)
        return JSONResponse(session.view())

    @app.delete("/api/keyframes/{track_id}/{frame}")
    def delete_keyframe(track_id: int, frame: int) -> JSONResponse:
        session.delete_keyframe(track_id, frame)
        return JSONResponse(session.view())

    @app.delete("/api/objects/{track_id}")
    def delete_object(track_id: int) -> JSONResponse:
        session.delete_object(track_id)
        return JSONResponse(session.view())

    @app.post("/api/absent")
    def set_absent(request: AbsentRequest) -> JSONResponse:
        session.set_absent(request.id, request.frame, request.absent)
        return JSONResponse(session.view())

    @app.post("/api/undo")
    def undo() -> JSONResponse:
        session.undo()
        return JSONResponse(session.view())

    @app.post("/api/retrack")
    def retrack() -> JSONResponse:
        session.start_retrack()
        return JSONResponse(session.view())

    @app.post("/api/track")
    def track() -> JSONResponse:
        session.start_track()
        return JSONResponse(session.view())

    @app.get("/api/job")
    def job() -> JSONResponse:
        status = session.job_status()
        return JSONResponse(None if status is None else asdict(status))

    @app.post("/api/save")
    def save() -> JSONResponse:
        written = session.save()
        return JSONResponse({"written": [str(path) for path in written], "state": session.view()})

    return app


class PageServer:
    """uvicorn serving the page of `session` on `host`:`port` (0: a free port).

    `run` serves until Ctrl-C; `start` and `stop` serve from a thread (tests, screenshots).
    Either way the session is closed at the end: a running retrack stops, nothing is written.
    """

    def __init__(self, session: Session, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self.session = session
        self.token = secrets.token_urlsafe(TOKEN_BYTES)
        self._socket = _listening_socket(host, port)
        self.port: int = self._socket.getsockname()[1]
        name = f"[{host}]" if ":" in host else host
        self.url = f"http://{name}:{self.port}/?{TOKEN_PARAMETER}={self.token}"
        config = uvicorn.Config(
            create_app(session, self.token),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until Ctrl-C (or SIGTERM); returns once the server and the session are closed."""
        self.session.frames.start()
        try:
            with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the Ctrl-C again once it has stopped
                self._server.run(sockets=[self._socket])
        finally:
            self._close()

    def start(self) -> None:
        """Serve from a thread; returns once connections are accepted."""
        self.session.frames.start()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._close()
                raise IBFPError(f"the page's server did not start on port {self.port}")
            time.sleep(START_POLL_S)

    def stop(self) -> None:
        """Stop serving from the thread `start` began, and close the session."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self._close()

    def _close(self) -> None:
        self.session.close()
        self._socket.close()


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise IBFPError(f"cannot serve on {host}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()  # now: a browser opened on the printed URL waits for the server instead of failing
    except OSError as e:
        sock.close()
        raise IBFPError(f"cannot serve on {host} port {port}: {e.strerror or e}") from None
    return sock


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _handler(status: int) -> Any:
    async def handle(_: Request, error: Exception) -> JSONResponse:
        return _error(status, str(error))

    return handle


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    """A body or parameter that does not parse, as one line: where and what is wrong."""
    assert isinstance(error, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in error.errors()]
    return _error(HTTP_UNPROCESSABLE, "bad request: " + "; ".join(problems))
