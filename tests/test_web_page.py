"""The web page in headless Chromium (Debian's chromium + chromedriver, driven by selenium):
log in, search -> track -> like (the like reaches the catalog), "For you" skip, the player's
play, the map canvas, status; no console errors; screenshots kept under the pytest temp folder."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from recengine.testing import wait_for
from recengine.web import start_server
from recengine.web.settings import WebSettings

from .conftest import make_engine
from .test_web_api import TOKEN

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (scripts/setup installs them)")


@pytest.fixture(scope="module")
def site(styled_library, styled_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("webpage")
    shutil.copytree(styled_data, base / "data")
    engine = make_engine(base, [styled_library], http__port=0, http__token=TOKEN)
    stop = threading.Event()
    handle = start_server(engine, WebSettings.from_config(engine.config), stop)
    yield engine, handle.url
    handle.stop()
    engine.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def visible(driver, element_id: str):
    element = driver.find_element("id", element_id)
    return element if element.is_displayed() else None


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_search_track_like_map_player_status(site, browser, tmp_path_factory):
    engine, url = site
    driver = browser
    artefacts = tmp_path_factory.getbasetemp() / "web-artifacts"
    artefacts.mkdir(exist_ok=True)

    driver.get(url)
    wait_for(lambda: visible(driver, "login"), what="the login form")
    driver.find_element("id", "token").send_keys(TOKEN)
    driver.find_element("css selector", "#login-form button").click()
    wait_for(lambda: visible(driver, "view-search"), what="the search view after login")

    # search -> track -> like
    driver.find_element("id", "q").send_keys("tones")
    driver.find_element("css selector", "#search-form button").click()
    wait_for(lambda: len(driver.find_elements("css selector", "#search-results li")) == 5, what="5 results")
    first = driver.find_element("css selector", "#search-results li a")
    track_id = int(first.get_attribute("href").rsplit("/", 1)[1])
    first.click()
    wait_for(lambda: visible(driver, "view-track") and driver.find_elements("css selector", "#track-similar li .why"),
             what="the track page with similar tracks and reasons")
    assert "tones" in driver.find_element("id", "track-title").text
    driver.find_element("id", "track-like").click()
    wait_for(lambda: [e for e in engine.catalog.events("default") if (e.track_id, e.kind) == (track_id, "like")],
             what="the like in the catalog")
    driver.save_screenshot(str(artefacts / "track.png"))

    # the player: a 3 s track played to its end is a play, decided by the playback rules
    driver.find_element("id", "track-play").click()
    plays = wait_for(lambda: [e for e in engine.catalog.events("default") if e.kind == "play"], timeout=20,
                     what="the player's play in the catalog")
    assert plays[0].track_id == track_id and plays[0].source == "web" and plays[0].listened_s >= 1.5

    # "For you": skip the first recommendation
    driver.get(url + "#/foryou")
    wait_for(lambda: driver.find_elements("css selector", "#foryou-list li button[data-action=skip]"),
             what="recommendations with feedback buttons")
    item = driver.find_element("css selector", "#foryou-list li")
    skipped = int(item.get_attribute("data-id"))
    item.find_element("css selector", "button[data-action=skip]").click()
    wait_for(lambda: [e for e in engine.catalog.events("default") if (e.track_id, e.kind) == (skipped, "skip")],
             what="the skip in the catalog")

    # the map: every analysed track drawn on the canvas
    driver.get(url + "#/map")
    wait_for(lambda: driver.find_element("id", "map").get_attribute("data-drawn") == "15", what="15 dots drawn")
    coloured = driver.execute_script(
        "const c = document.getElementById('map'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;"
        "return n;")
    assert coloured >= 15 * 4
    driver.save_screenshot(str(artefacts / "map.png"))

    driver.get(url + "#/status")
    wait_for(lambda: "15 analysed" in driver.find_element("id", "status-list").text, what="the status view")
    assert console_errors(driver) == []
