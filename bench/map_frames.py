"""Frame times of the web page's library map in headless Chromium (Debian's chromium + chromedriver).

    .venv/bin/python bench/map_frames.py CONFIG [--frames 240]

Serves the library of CONFIG (bench/api.py makes one of 100k synthetic tracks), opens the page,
logs in, and times the map: from opening the view to all dots drawn (fetch, parse, first draw),
then frame intervals over ``--frames`` animation frames during which every frame zooms (wheel),
pans (drag) or hovers (mouse move) the canvas, so every frame redraws all points.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from recengine.engine import Engine
from recengine.web import WebSettings, start_server

#: Runs in the page: dispatches input on the canvas in every animation frame and collects the
#: intervals between frames (ms) and the time each redraw took inside its frame.
FRAME_SCRIPT = """
const [frames, done] = arguments;
const canvas = document.getElementById('map');
const r = canvas.getBoundingClientRect();
const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
const stamps = [];
let i = 0;
function step(now) {
  stamps.push(now);
  const kind = i % 3, x = cx + 80 * Math.sin(i / 9), y = cy + 60 * Math.cos(i / 7);
  if (kind === 0) canvas.dispatchEvent(new WheelEvent('wheel', {clientX: x, clientY: y,
      deltaY: (i % 60 < 30 ? -40 : 40), bubbles: true, cancelable: true}));
  else if (kind === 1) {
    canvas.dispatchEvent(new MouseEvent('mousedown', {clientX: x, clientY: y, bubbles: true}));
    canvas.dispatchEvent(new MouseEvent('mousemove', {clientX: x + 5, clientY: y + 3, bubbles: true}));
    window.dispatchEvent(new MouseEvent('mouseup', {clientX: x + 5, clientY: y + 3, bubbles: true}));
  } else canvas.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
  if (++i < frames) requestAnimationFrame(step);
  else done(stamps.slice(1).map((t, k) => t - stamps[k]));
}
requestAnimationFrame(step);
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("--frames", type=int, default=240)
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with Engine.open(args.config, entrypoints=False) as engine:
        stop = threading.Event()
        handle = start_server(engine, WebSettings.from_config(engine.config), stop)
        token = engine.config["http.token"]
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        profile = tempfile.mkdtemp(prefix="recengine-chromium-")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_script_timeout(300)
        try:
            driver.get(handle.url)
            driver.execute_async_script(
                "const done = arguments[1]; fetch('/api/v1/login', {method: 'POST', headers: "
                "{'Content-Type': 'application/json'}, body: JSON.stringify({token: arguments[0]})}).then(() => done());",
                token)
            driver.get(handle.url + "#/map")  # only the fragment changes: the page is not loaded again ...
            started = time.perf_counter()
            driver.refresh()  # ... until now, logged in
            count = drawn = None
            while time.perf_counter() - started < 300:
                summary = driver.find_element("id", "map-summary").text
                drawn = driver.find_element("id", "map").get_attribute("data-drawn")
                if summary.endswith(" tracks") and drawn not in (None, "", "0"):
                    count = int(summary.split()[0])
                    break
                time.sleep(0.02)
            first = time.perf_counter() - started
            if count is None:
                raise SystemExit(f"the map did not draw within 300 s (summary {summary!r}, drawn {drawn!r})")
            intervals = driver.execute_async_script(FRAME_SCRIPT, args.frames)
        finally:
            driver.quit()
            handle.stop()
    print(f"\nmap in headless Chromium, {count} tracks ({drawn} dots on the canvas): page open -> drawn "
          f"{first:.2f} s")
    print(f"  {len(intervals)} frames, each zooming, panning or hovering (a full redraw): "
          f"interval p50 {pct(intervals, 50):.1f} ms, p95 {pct(intervals, 95):.1f} ms, max {max(intervals):.1f} ms "
          f"({1000 / pct(intervals, 50):.0f} fps at the median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
