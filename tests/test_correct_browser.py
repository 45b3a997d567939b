"""`ibfp correct` end to end in headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium): the page shows both boxes and timelines, a box dragged onto its object
becomes a keyframe, Retrack and Save write it with the retracked boxes.

`IBFP_SCREENSHOT=docs/correct.png python -m pytest tests/test_correct_browser.py` also writes
the README's screenshot of the page.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from ibfp_cli.annotate.keyframes import load_keyframes
from ibfp_cli.boxes import Box, iou
from ibfp_cli.correct.frames import FrameSettings
from ibfp_cli.correct.sample import sample_annotations, write_two_object_clip
from ibfp_cli.correct.session import TrackerChoice, open_session
from ibfp_cli.formats import read_annotations, write_annotations

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Chromium and its driver: apt-get install chromium chromium-driver (.ci/run does)",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
pytest.importorskip("fastapi", reason="needs the ui extra (fastapi, uvicorn)")

from selenium.webdriver.chrome.service import Service  # noqa: E402  (after the skips)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ibfp_cli.correct.server import PageServer  # noqa: E402

WIDTH, HEIGHT, FRAMES = 480, 360, 48
DRIFT = (15, 28)
SHIFT_PX = 40
CORRECTION_FRAME = 20
WINDOW = (1280, 800)
"""The browser window: a laptop screen."""
WAIT_S = 60
DRAG_STEPS = 8
"""The drag is sent as this many pointer moves, as a hand would move."""
SCREENSHOT_ENV = "IBFP_SCREENSHOT"
SCREENSHOT_BITS = 5
"""Bits kept per colour channel in the README's screenshot: 32 levels, no banding to see on the
frame's gradients (a 256-colour palette showed bands or, dithered, speckles at the same size)."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, np.ndarray]]:
    video = tmp_path_factory.mktemp("correct_browser") / "two.mp4"
    return video, write_two_object_clip(video, WIDTH, HEIGHT, FRAMES, noise=0.0)


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


@pytest.fixture
def page(clip, tmp_path: Path):
    video, truth = clip
    boxes = tmp_path / "boxes.csv"
    write_annotations(boxes, sample_annotations(video.name, WIDTH, truth, DRIFT, SHIFT_PX))
    session = open_session(
        video, boxes, keyframes=tmp_path / "keys.csv", tracker=TrackerChoice("kcf"), frame_settings=FrameSettings()
    )
    server = PageServer(session)
    server.start()
    yield server
    server.stop()


def wait(driver, condition, what: str):
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def test_drag_retrack_save(driver, page: PageServer, clip) -> None:
    video, truth = clip
    assert page.url.startswith("http://127.0.0.1:")
    driver.get(page.url)
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "the page loads")

    # Both boxes on the frame, and one timeline per object with something drawn on it.
    assert len(driver.find_elements(By.CSS_SELECTOR, "#overlay g.box")) == 2
    canvases = driver.find_elements(By.CSS_SELECTOR, "#tracks .track-row canvas")
    assert len(canvases) == 2
    drawn = (
        "const c = arguments[0]; return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v > 0);"
    )
    assert all(driver.execute_script(drawn, canvas) for canvas in canvases)
    wait(driver, lambda d: d.execute_script("return document.querySelector('#frame').naturalWidth") == WIDTH, "frame")

    # To the doubtful run, then to the correction frame; object 1's box there is off target.
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("]")
    body.send_keys(*[Keys.ARROW_RIGHT] * (CORRECTION_FRAME - DRIFT[0]))
    wait(
        driver, lambda d: d.find_element(By.ID, "stage").get_attribute("data-shown-frame") == str(CORRECTION_FRAME), ""
    )
    box = driver.find_element(By.CSS_SELECTOR, '#overlay g.box[data-id="1"] .hit')
    box.click()  # select object 1
    if os.environ.get(SCREENSHOT_ENV):
        _screenshot(driver, Path(os.environ[SCREENSHOT_ENV]))

    # Drag it onto the object.
    box = driver.find_element(By.CSS_SELECTOR, '#overlay g.box[data-id="1"] .hit')
    scale = box.rect["width"] / truth[1][CORRECTION_FRAME][2]
    shown = page.session.view()["objects"][0]["boxes"][CORRECTION_FRAME]
    dx = round((truth[1][CORRECTION_FRAME][0] - shown[0]) * scale)  # whole screen pixels, as a mouse moves
    drag = ActionChains(driver).move_to_element(box).click_and_hold()
    for step in range(DRAG_STEPS):
        drag.move_by_offset(dx * (step + 1) // DRAG_STEPS - dx * step // DRAG_STEPS, 0)
    drag.release().perform()
    wait(driver, lambda _: CORRECTION_FRAME in page.session.view()["objects"][0]["keyframes"], "the keyframe is set")
    keyframe = page.session.view()["objects"][0]["boxes"][CORRECTION_FRAME]
    assert keyframe[0] == pytest.approx(shown[0] + dx / scale, abs=1)  # snapped to whole video pixels
    assert keyframe[1:] == shown[1:]

    driver.find_element(By.ID, "retrack").click()
    wait(driver, lambda d: d.find_element(By.ID, "job").get_attribute("data-state") == "done", "the retrack ends")
    assert not page.session.stale

    driver.find_element(By.ID, "save").click()
    wait(driver, lambda d: d.find_element(By.ID, "status").text.startswith("saved"), "the save ends")

    saved = {(r.id, r.frame): r for r in read_annotations(page.session.targets.boxes).records}
    assert saved[1, CORRECTION_FRAME].keyframe and list(saved[1, CORRECTION_FRAME].box.xywh()) == keyframe
    for frame in range(DRIFT[0], DRIFT[1] + 1):  # the doubtful run, retracked from the new keyframe
        assert iou(saved[1, frame].box, Box(*truth[1][frame])) > 0.5, frame
        assert not saved[1, frame].keyframe or frame == CORRECTION_FRAME
    keys = {(k.id, k.frame): k.box for k in load_keyframes(page.session.targets.keyframes)}
    assert list(keys[1, CORRECTION_FRAME].xywh()) == keyframe
    assert len(driver.find_elements(By.CSS_SELECTOR, "#overlay g.box")) == 2


def test_first_boxes_drawn_on_the_page_then_track(driver, clip, tmp_path: Path) -> None:
    """No BOXES: drag a box around each object on frame 0, Track, Save."""
    video, truth = clip
    out = tmp_path / "new.csv"
    server = PageServer(open_session(video, out=out, tracker=TrackerChoice("kcf")))
    server.start()
    try:
        driver.get(server.url)
        wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "the page loads")
        wait(driver, lambda d: d.find_element(By.ID, "stage").get_attribute("data-shown-frame") == "0", "frame 0")
        overlay = driver.find_element(By.ID, "overlay")
        scale = overlay.rect["width"] / WIDTH
        for track_id in (1, 2):
            x, y, w, h = truth[track_id][0]
            left, top = round(x * scale - overlay.rect["width"] / 2), round(y * scale - overlay.rect["height"] / 2)
            drag = ActionChains(driver).move_to_element_with_offset(overlay, left, top).click_and_hold()
            for _ in range(DRAG_STEPS):
                drag.move_by_offset(*(round(v * scale / DRAG_STEPS) for v in (w, h)))
            drag.release().perform()
            wait(driver, lambda _, n=track_id: len(server.session.view()["objects"]) == n, f"object {track_id}")
        driver.find_element(By.ID, "track").click()
        wait(driver, lambda d: d.find_element(By.ID, "job").get_attribute("data-state") == "done", "tracking ends")
        driver.find_element(By.ID, "save").click()
        wait(driver, lambda d: d.find_element(By.ID, "status").text.startswith("saved"), "the save ends")
    finally:
        server.stop()
    back = read_annotations(out)
    assert back.ids() == [1, 2] and len(back.records) == 2 * FRAMES
    first = {r.id: r.box for r in back.records if r.frame == 0}
    for track_id in (1, 2):
        assert list(first[track_id].xywh()) == pytest.approx(list(truth[track_id][0]), abs=DRAG_STEPS / scale + 1)


def test_a_page_without_the_token_is_refused(driver, page: PageServer) -> None:
    driver.delete_all_cookies()
    driver.get(page.url.split("?")[0])
    assert "token" in driver.find_element(By.TAG_NAME, "body").text


def _screenshot(driver, path: Path) -> None:
    """The page as it is, each colour channel cut to SCREENSHOT_BITS bits (Pillow) to keep the
    PNG small: about 120 KB where the full-colour one is 300 KB, gradients still smooth."""
    from PIL import Image, ImageOps

    time.sleep(0.5)  # let the selection's outline and handles paint
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    ImageOps.posterize(image, SCREENSHOT_BITS).save(path, optimize=True)
