"""`ibfp correct`: the frame server, the session, and the page's API through a test client."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

import ibfp_cli.correct
from ibfp_cli.annotate.keyframes import RetrackResult, load_keyframes
from ibfp_cli.boxes import Box, iou
from ibfp_cli.cli import app
from ibfp_cli.correct import session as session_module
from ibfp_cli.correct.frames import FrameServer, FrameSettings, keyframe_indices
from ibfp_cli.correct.sample import DOUBTFUL_SCORE, sample_annotations, write_two_object_clip
from ibfp_cli.correct.session import Session, TrackerChoice, open_session
from ibfp_cli.errors import IBFPError
from ibfp_cli.formats import read_annotations, write_annotations
from ibfp_cli.media.video import read_video

pytest.importorskip("fastapi", reason="the ui extra (fastapi, uvicorn) is not installed")
with warnings.catch_warnings():  # Starlette >= 1.0 prefers httpx2 and warns on httpx, which still works
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from fastapi.testclient import TestClient

from ibfp_cli.correct.server import create_app, is_loopback  # noqa: E402  (after the skip: needs fastapi)

WIDTH, HEIGHT, FRAMES = 240, 180, 40
DRIFT = (15, 25)
"""Object 1's boxes on these frames are off target and doubtful in the sample boxes."""
SHIFT_PX = 30
CORRECTION_FRAME = 20
FAST_TRACKER = TrackerChoice("kcf")
"""OpenCV's KCF: retracks the 40 frames in well under a second, where IBFP would first export
its ONNX graphs; the retrack logic under test is the same."""
TOKEN = "test-token"
JOB_TIMEOUT_S = 60
POLL_S = 0.05
SAME_PX = 1e-9
"""Formats that store pixels as floats (or percentages: Label Studio) read back within this."""
FORMATS = {"csv": ".csv", "mot": ".txt", "coco": ".json", "cvat": ".xml", "labelstudio": ".json"}
KEEPS_LABELS = {"csv", "coco", "cvat", "labelstudio"}
KEEPS_KEYFRAME_FLAGS = {"csv", "coco", "cvat"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, np.ndarray]]:
    """A 240x180, 40-frame clip with objects 1 and 2, and their true boxes."""
    video = tmp_path_factory.mktemp("correct") / "two.mp4"
    return video, write_two_object_clip(video, WIDTH, HEIGHT, FRAMES)


@pytest.fixture
def boxes(clip, tmp_path: Path) -> Path:
    """Boxes as track might have left them: object 1 off target and doubtful on DRIFT."""
    video, truth = clip
    path = tmp_path / "boxes.csv"
    write_annotations(path, sample_annotations(video.name, WIDTH, truth, DRIFT, SHIFT_PX))
    return path


@pytest.fixture
def session(clip, boxes: Path, tmp_path: Path):
    video, _ = clip
    opened = open_session(
        video, boxes, keyframes=tmp_path / "keys.csv", tracker=FAST_TRACKER, frame_settings=FrameSettings(fill=False)
    )
    yield opened
    opened.close()


@pytest.fixture
def client(session: Session) -> TestClient:
    return TestClient(create_app(session, TOKEN), headers={"X-IBFP-Token": TOKEN})


def true_box(clip, track_id: int, frame: int) -> list[float]:
    return [float(v) for v in clip[1][track_id][frame]]


def wait_for_job(client: TestClient) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        job = client.get("/api/job").json()
        if job["state"] != "running":
            return job
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(POLL_S)


def obj(state: dict, track_id: int) -> dict:
    return next(o for o in state["objects"] if o["id"] == track_id)


# --- the token ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/frames/0.jpg", "/api/state", "/api/job"])
def test_every_request_needs_the_token(session: Session, path: str) -> None:
    bare = TestClient(create_app(session, TOKEN))
    assert bare.get(path).status_code == 401
    assert bare.get(path, headers={"X-IBFP-Token": "wrong"}).status_code == 403
    assert bare.get(f"{path}?token=wrong").status_code == 403
    first = bare.get(f"{path}?token={TOKEN}")
    assert first.status_code == 200
    assert bare.get(path).status_code == 200  # from the cookie the first answer set


def test_a_request_without_the_token_changes_nothing(session: Session, boxes: Path) -> None:
    before = boxes.read_bytes()
    bare = TestClient(create_app(session, TOKEN))
    assert bare.post("/api/keyframes", json={"frame": 1, "box": [1, 1, 20, 20]}).status_code == 401
    assert bare.post("/api/save").status_code == 401
    assert session.version == 0
    assert boxes.read_bytes() == before


def test_the_page_is_plain_files_from_the_package(client: TestClient) -> None:
    html = client.get("/").text
    assert 'src="static/app.js"' in html and 'href="static/style.css"' in html
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/missing.js").status_code == 404
    everything = html + client.get("/static/app.js").text + client.get("/static/style.css").text
    remote = set(re.findall(r"https?://[^\s\"')]+", everything)) - {"http://www.w3.org/2000/svg"}
    assert remote == set(), "the page must work offline: no CDN, no remote file"


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


# --- frames ------------------------------------------------------------------------------------


def test_frames_are_the_frames_track_decodes(tmp_path: Path) -> None:
    """Exact pixels at exact indices, in any order, on a clip with a keyframe every 8 frames."""
    video = tmp_path / "gop8.mp4"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(30)]
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "8", "bf": "2"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    decoded = [f.image for f in read_video(video)]
    assert len(keyframe_indices(video)) > 3  # several GOPs: jumps seek, steps continue
    with FrameServer(video, FrameSettings(fill=False)) as frames:
        for index in [5, 6, 7, 8, 29, 0, 17, 16, 3, 4, 23, 24, 25]:
            assert np.array_equal(frames.image(index), decoded[index]), index
        jpeg = frames.jpeg(17)
    assert jpeg[:2] == b"\xff\xd8"


def test_fill_caches_the_frames_around_the_one_asked_for(clip) -> None:
    video, _ = clip
    with FrameServer(video) as frames:
        frames.start()
        frames.jpeg(30)
        assert frames.wait_filled(JOB_TIMEOUT_S)
        assert len(frames.cache) == FRAMES  # the clip fits the cache: every frame
        frames.cache.clear()
        frames.pause()
        frames.jpeg(10)
        assert not frames.wait_filled(0.3)  # paused: nothing filled
        frames.resume()
        assert frames.wait_filled(JOB_TIMEOUT_S)


# --- edits -------------------------------------------------------------------------------------


def test_open_marks_keyframes_and_doubtful_runs(client: TestClient) -> None:
    state = client.get("/api/state").json()
    assert [o["id"] for o in state["objects"]] == [1, 2]
    first = obj(state, 1)
    assert first["keyframes"] == [0]
    assert first["doubtful"] == [[DRIFT[0], DRIFT[1], DRIFT[0], DOUBTFUL_SCORE]]
    assert first["absent"] == [] and not state["stale"] and not state["unsaved"]


def test_draw_move_delete_absent_and_undo(client: TestClient, clip) -> None:
    start = client.get("/api/state").json()
    drawn = client.post("/api/keyframes", json={"frame": 10, "box": [5, 6, 30, 20], "label": "dog"}).json()
    new = obj(drawn, 3)
    assert new["label"] == "dog" and new["keyframes"] == [10] and new["boxes"][10] == [5, 6, 30, 20]
    assert new["boxes"][9] is None and drawn["stale"] and drawn["unsaved"]

    moved = client.post("/api/keyframes", json={"frame": 10, "box": [50, 60, 30, 22], "id": 3}).json()
    assert obj(moved, 3)["boxes"][10] == [50, 60, 30, 22]

    corrected = client.post(
        "/api/keyframes", json={"frame": CORRECTION_FRAME, "box": true_box(clip, 1, CORRECTION_FRAME), "id": 1}
    ).json()
    assert obj(corrected, 1)["keyframes"] == [0, CORRECTION_FRAME]

    absent = client.post("/api/absent", json={"id": 2, "frame": 30}).json()
    assert obj(absent, 2)["absent"] == [[30, FRAMES - 1]]
    assert obj(absent, 2)["boxes"][30:] == [None] * (FRAMES - 30)

    back = client.post("/api/absent", json={"id": 2, "frame": 35, "absent": False}).json()
    assert obj(back, 2)["absent"] == [[30, 34]]
    assert obj(back, 2)["boxes"][35] == obj(start, 2)["boxes"][35]  # the tracked box is shown again

    deleted = client.delete(f"/api/keyframes/1/{CORRECTION_FRAME}").json()
    assert obj(deleted, 1)["keyframes"] == [0]

    for _ in range(6):
        assert client.post("/api/undo").status_code == 200
    undone = client.get("/api/state").json()
    assert undone["objects"] == start["objects"] and undone["undo"] == 0
    assert client.post("/api/undo").status_code == 409


def test_delete_an_object_and_undo_brings_back_its_boxes(client: TestClient) -> None:
    start = client.get("/api/state").json()
    deleted = client.delete("/api/objects/2").json()
    assert [o["id"] for o in deleted["objects"]] == [1] and deleted["unsaved"]
    assert not deleted["stale"]  # object 1's boxes still come from its keyframes: no Retrack needed
    assert client.delete("/api/objects/2").status_code == 404
    restored = client.post("/api/undo").json()
    assert restored["objects"] == start["objects"] and not restored["stale"]
    client.delete("/api/objects/2")
    written = client.post("/api/save").json()["written"]
    assert read_annotations(written[0]).ids() == [1]


def test_absent_from_a_keyframe_up_to_the_next(client: TestClient, clip) -> None:
    client.post("/api/keyframes", json={"frame": 30, "box": true_box(clip, 2, 30), "id": 2})
    state = client.post("/api/absent", json={"id": 2, "frame": 10}).json()
    assert obj(state, 2)["absent"] == [[10, 29]]
    state = client.post("/api/absent", json={"id": 2, "frame": 30}).json()  # on the keyframe: it goes
    assert obj(state, 2)["keyframes"] == [0] and obj(state, 2)["absent"] == [[10, FRAMES - 1]]
    state = client.post("/api/keyframes", json={"frame": 20, "box": true_box(clip, 2, 20), "id": 2}).json()
    assert obj(state, 2)["absent"] == [[10, 19]]  # back in view from the box drawn


BAD_REQUESTS = [
    ("post", "/api/keyframes", {"frame": 1, "box": [230, 10, 20, 20], "id": 1}, 422),  # past the right edge
    ("post", "/api/keyframes", {"frame": 1, "box": [-1, 10, 20, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [500, 500, 20, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 1, 20], "id": 1}, 422),  # under 2 px
    ("post", "/api/keyframes", {"frame": FRAMES, "box": [10, 10, 20, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": -1, "box": [10, 10, 20, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": 1.5, "box": [10, 10, 20, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 20], "id": 1}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 20, 20], "id": 1, "extra": 0}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 20, 20], "id": 1, "label": "cat"}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 20, 20], "label": " "}, 422),
    ("post", "/api/keyframes", {"frame": 1, "box": [10, 10, 20, 20], "id": 9}, 404),
    ("post", "/api/keyframes", b"{not json", 422),
    ("post", "/api/absent", {"id": 9, "frame": 1}, 404),
    ("post", "/api/absent", {"id": 1, "frame": FRAMES}, 422),
    ("delete", "/api/keyframes/1/5", None, 404),
    ("delete", "/api/keyframes/9/0", None, 404),
    ("delete", "/api/keyframes/1/x", None, 422),
    ("get", f"/frames/{FRAMES}.jpg", None, 404),
    ("get", "/frames/-1.jpg", None, 404),
    ("post", "/api/undo", None, 409),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_and_change_nothing(
    client: TestClient, session: Session, boxes: Path, method: str, path: str, body, status: int
) -> None:
    before = (client.get("/api/state").json(), boxes.read_bytes())
    if isinstance(body, bytes):
        response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.request(method, path, json=body)
    assert response.status_code == status
    assert response.json()["detail"]  # a message
    assert (client.get("/api/state").json(), boxes.read_bytes()) == before


def test_edits_and_save_are_refused_while_a_retrack_runs(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_retrack(*_, progress, **__) -> RetrackResult:
        while not release.is_set():
            progress(0, 1)
            time.sleep(POLL_S)
        return RetrackResult(session.annotations(), ())

    monkeypatch.setattr(session_module, "retrack", slow_retrack)
    assert client.post("/api/retrack").status_code == 200
    try:
        assert client.post("/api/keyframes", json={"frame": 1, "box": [1, 1, 20, 20], "id": 1}).status_code == 409
        assert client.post("/api/save").status_code == 409
        assert client.post("/api/retrack").status_code == 409
        assert client.get("/frames/3.jpg").status_code == 200  # frames are still served
    finally:
        release.set()
    assert wait_for_job(client)["state"] == "done"


def test_stopping_mid_retrack_leaves_the_saved_files(
    client: TestClient, session: Session, boxes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post("/api/keyframes", json={"frame": 5, "box": [10, 10, 30, 30], "id": 1})
    client.post("/api/save")
    saved = boxes.read_bytes(), (tmp_path / "keys.csv").read_bytes()

    def endless_retrack(*_, progress, **__) -> RetrackResult:
        while True:
            progress(0, 1)
            time.sleep(POLL_S)

    monkeypatch.setattr(session_module, "retrack", endless_retrack)
    client.post("/api/keyframes", json={"frame": 6, "box": [10, 10, 30, 30], "id": 1})
    client.post("/api/retrack")
    session.close()  # what Ctrl-C does
    assert session.job_status().state == "cancelled"
    assert (boxes.read_bytes(), (tmp_path / "keys.csv").read_bytes()) == saved
    assert not any(p.name.endswith(".partial.csv") for p in tmp_path.iterdir())


# --- retrack, track, save ----------------------------------------------------------------------


def test_retrack_follows_a_correction(client: TestClient, clip) -> None:
    drawn = true_box(clip, 1, CORRECTION_FRAME)
    client.post("/api/keyframes", json={"frame": CORRECTION_FRAME, "box": drawn, "id": 1})
    assert client.post("/api/retrack").status_code == 200
    job = wait_for_job(client)
    assert job["state"] == "done" and job["message"].startswith("retracked")
    state = client.get("/api/state").json()
    first = obj(state, 1)
    assert not state["stale"] and first["boxes"][CORRECTION_FRAME] == drawn
    assert first["doubtful"] == []
    for frame in range(DRIFT[0], DRIFT[1] + 1):
        assert iou(Box(*first["boxes"][frame]), Box(*clip[1][1][frame])) > 0.5, frame


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_saved_boxes_read_back_in_every_format(clip, boxes: Path, tmp_path: Path, fmt: str) -> None:
    """Draw, retrack, save; the format's own reader finds the keyframe exactly as drawn."""
    video, _ = clip
    out, keys = tmp_path / f"out{FORMATS[fmt]}", tmp_path / "keys.csv"
    opened = open_session(
        video, boxes, out=out, fmt=fmt, keyframes=keys, tracker=FAST_TRACKER, frame_settings=FrameSettings(fill=False)
    )
    try:
        client = TestClient(create_app(opened, TOKEN), headers={"X-IBFP-Token": TOKEN})
        drawn = true_box(clip, 1, CORRECTION_FRAME)
        client.post("/api/keyframes", json={"frame": CORRECTION_FRAME, "box": drawn, "id": 1})
        client.post("/api/retrack")
        assert wait_for_job(client)["state"] == "done"
        assert client.post("/api/save").json()["written"] == [str(out), str(keys)]
        shown = opened.annotations()
    finally:
        opened.close()
    back = read_annotations(out, fmt)
    assert len(back.records) == len(shown.records) == 2 * FRAMES
    by_key = {(r.id, r.frame): r for r in back.records}
    keyframe = by_key[1, CORRECTION_FRAME]
    assert list(keyframe.box.xywh()) == pytest.approx(drawn, abs=SAME_PX)
    if fmt in KEEPS_KEYFRAME_FLAGS:
        assert keyframe.keyframe and {(r.id, r.frame) for r in back.records if r.keyframe} == {
            (1, 0),
            (2, 0),
            (1, CORRECTION_FRAME),
        }
    for r in shown.records:
        assert list(by_key[r.id, r.frame].box.xywh()) == pytest.approx(list(r.box.xywh()), abs=0.005)
    given = {(k.id, k.frame): k.box for k in load_keyframes(keys)}
    assert list(given[1, CORRECTION_FRAME].xywh()) == drawn and set(given) == {(1, 0), (2, 0), (1, CORRECTION_FRAME)}


def test_a_saved_session_opens_as_it_was(
    client: TestClient, session: Session, clip, boxes: Path, tmp_path: Path
) -> None:
    client.post("/api/keyframes", json={"frame": CORRECTION_FRAME, "box": true_box(clip, 1, CORRECTION_FRAME), "id": 1})
    client.post("/api/retrack")
    wait_for_job(client)
    client.post("/api/absent", json={"id": 2, "frame": 30})
    saved = client.post("/api/save").json()["state"]
    assert not saved["unsaved"]
    video, _ = clip
    again = open_session(video, boxes, keyframes=tmp_path / "keys.csv", frame_settings=FrameSettings(fill=False))
    try:
        view = again.view()
    finally:
        again.close()
    assert view["objects"] == saved["objects"] and not view["stale"]


def test_absent_frames_stay_empty_through_retrack(client: TestClient, clip) -> None:
    client.post("/api/absent", json={"id": 2, "frame": 30})
    client.post("/api/keyframes", json={"frame": 10, "box": true_box(clip, 2, 10), "id": 2})
    client.post("/api/retrack")
    assert wait_for_job(client)["state"] == "done"
    second = obj(client.get("/api/state").json(), 2)
    assert second["boxes"][30:] == [None] * (FRAMES - 30) and second["boxes"][29] is not None


def test_track_from_boxes_drawn_on_the_page(clip, tmp_path: Path) -> None:
    """No BOXES: draw each object's box, Track (IBFP, the default tracker), Save."""
    video, truth = clip
    out = tmp_path / "new.csv"
    opened = open_session(video, out=out, frame_settings=FrameSettings(fill=False))
    try:
        client = TestClient(create_app(opened, TOKEN), headers={"X-IBFP-Token": TOKEN})
        assert client.post("/api/track").status_code == 409  # nothing drawn yet
        for track_id in (1, 2):
            client.post("/api/keyframes", json={"frame": 0, "box": true_box(clip, track_id, 0), "label": "toy"})
        state = client.post("/api/track").json()
        assert state["can_track"] and state["job"]["kind"] == "track"
        assert wait_for_job(client)["state"] == "done"
        client.post("/api/save")
    finally:
        opened.close()
    back = read_annotations(out)
    assert back.ids() == [1, 2] and len(back.records) == 2 * FRAMES
    assert {r.label for r in back.records} == {"toy"}
    last = {r.id: r.box for r in back.records if r.frame == FRAMES - 1}
    assert all(iou(last[i], Box(*truth[i][-1])) > 0.5 for i in (1, 2))


def test_track_is_refused_on_boxes_from_a_file(client: TestClient) -> None:
    assert client.post("/api/track").status_code == 409


def test_open_checks_files_before_serving(clip, boxes: Path, tmp_path: Path) -> None:
    video, _ = clip
    with pytest.raises(IBFPError, match="--out"):
        open_session(video)
    with pytest.raises(IBFPError, match="does not exist"):
        open_session(video, boxes, out=tmp_path / "missing" / "out.csv")
    other = tmp_path / "other.mp4"
    write_two_object_clip(other, WIDTH * 2, HEIGHT * 2, 2)
    with pytest.raises(IBFPError, match="other.mp4"):
        open_session(other, boxes)


# --- the command -------------------------------------------------------------------------------


def test_without_the_ui_extra_the_command_says_what_to_install(
    clip, boxes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi now fails
    monkeypatch.delitem(sys.modules, "ibfp_cli.correct.server")
    monkeypatch.delattr(ibfp_cli.correct, "server")
    result = CliRunner().invoke(app, ["correct", str(clip[0]), str(boxes), "--no-browser"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and 'pip install "ibfp[ui]"' in errors[0], result.stderr


def test_the_command_warns_off_loopback_and_opens_the_browser(
    clip, boxes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ibfp_cli.correct import command, server

    opened: list[str] = []
    monkeypatch.setattr(server.PageServer, "run", lambda page: page._close())  # serve nothing, close at once
    monkeypatch.setattr(command, "display_problem", lambda: None)
    monkeypatch.setattr(command.webbrowser, "open", opened.append)
    out = tmp_path / "out.txt"
    arguments = ["correct", str(clip[0]), str(boxes), "--out", str(out), "--host", "0.0.0.0", "--tracker", "kcf"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    url = re.search(r"http://\S+", result.stdout).group(0)
    assert url.startswith("http://0.0.0.0:") and opened == [url]
    assert "warning: serving on 0.0.0.0" in result.stderr
    assert "mot files do not mark keyframes; give --keyframes FILE" in result.stderr
    assert f"Save writes {out}" in result.stdout and "stopped" in result.stdout
    assert not out.exists()  # nothing saved, nothing written


def test_importing_ibfp_needs_no_web_server() -> None:
    code = "import sys, ibfp_cli.cli; assert not {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_command_serves_on_loopback_and_stops_on_ctrl_c(clip, boxes: Path) -> None:
    import httpx

    command = [sys.executable, "-m", "ibfp_cli", "correct", str(clip[0]), str(boxes), "--no-browser"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        assert url.startswith("http://127.0.0.1:")
        port = int(url.split(":")[2].split("/")[0])
        assert _listening_addresses(port) in ({"127.0.0.1"}, None)
        assert httpx.get(url.split("?")[0]).status_code == 401
        assert httpx.get(url).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=JOB_TIMEOUT_S)
    assert process.returncode == 0, errors
    assert "stopped" in output


def _listening_addresses(port: int) -> set[str] | None:
    """The IPv4 addresses listening on `port` (Linux's /proc/net/tcp); None elsewhere."""
    table = Path("/proc/net/tcp")
    if not table.exists() or os.name != "posix":
        return None
    listening = "0A"
    addresses = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == listening:
            addresses.add(".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return addresses
