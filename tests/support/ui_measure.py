"""Measure the script's controls in a real WebUI in headless Chromium, and take the docs screenshots.

Run by hand (not a test; it needs Chromium, chromedriver and Selenium, none of which the test tiers install)::

    apt-get install -y chromium chromium-driver && python -m pip install selenium
    python tests/support/ui_measure.py [--shots docs] [--host a1111|forge]

It builds and starts the real host as the realhost tier does (tests/support/realhost.py, without ``--api-auth`` so the
browser needs no login), opens the img2img tab at 1500x1000, picks the script, and prints the height of the script's
block (``#script_interstable_llm_rline_controls``) in its default state and with every accordion open, per theme,
and the height of each section (accordion) in both states. With ``--shots`` it writes ``ui-default-light.png`` and
``ui-default-dark.png`` (as the page opens) and ``ui-light.png`` and ``ui-dark.png`` (every section open) into that
folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import realhost

BLOCK = "#script_interstable_llm_rline_controls"
SECTIONS = ("lines", "caption", "prompt", "advanced", "preview")
"""The accordions, by the ``<name>_section`` part of their elem_id (``interstable.webui.ui`` and ``actions``)."""
TITLE = "InterStable LLM R-Line"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1000",
    "--hide-scrollbars",
)


def _driver(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_window_size(1500, 1000)
    return driver


def _wait(driver, script: str, timeout: float = 300) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(script)


def _pick_script(driver) -> None:
    from selenium.webdriver.common.by import By

    _wait(driver, "return document.querySelector('#tab_img2img')")
    for button in driver.find_elements(By.CSS_SELECTOR, "#tabs > .tab-nav button"):
        if button.text.strip() == "img2img":
            button.click()
    box = driver.find_element(By.CSS_SELECTOR, "#img2img_script_container #script_list input")
    driver.execute_script("arguments[0].scrollIntoView()", box)
    box.click()
    time.sleep(0.5)
    for option in driver.find_elements(By.CSS_SELECTOR, "#img2img_script_container #script_list ul li"):
        if option.text.strip() == TITLE:
            option.click()
            break
    _wait(driver, f"const b = document.querySelector('{BLOCK}'); return b && b.offsetParent !== null")
    time.sleep(1.5)


def _height(driver) -> float:
    return float(driver.execute_script(f"return document.querySelector('{BLOCK}').getBoundingClientRect().height"))


def _sections(driver) -> dict[str, float]:
    return {
        name: round(float(driver.execute_script(
            f"const s = document.querySelector('#script_interstable_llm_rline_{name}_section');"
            "return s ? s.getBoundingClientRect().height : -1"
        )), 1)
        for name in SECTIONS
    }  # fmt: skip


def _open_all(driver) -> None:
    for _ in range(6):
        closed = driver.execute_script(
            f"const b = document.querySelector('{BLOCK}');"
            "const heads = [...b.querySelectorAll('.label-wrap')].filter(h => !h.classList.contains('open')"
            " && h.offsetParent !== null);"
            "heads.forEach(h => h.click()); return heads.length;"
        )
        if not closed:
            return
        time.sleep(0.8)


def _shot(driver, path: Path) -> None:
    element = driver.execute_script(f"return document.querySelector('{BLOCK}')")
    driver.execute_script("arguments[0].scrollIntoView()", element)
    height = int(_height(driver)) + 300
    driver.set_window_size(1500, max(1000, height))
    time.sleep(1.0)
    element.screenshot(str(path))
    driver.set_window_size(1500, 1000)


def measure(url: str, shots: Path | None, profile_root: Path) -> dict:
    results: dict[str, dict[str, float]] = {}
    for theme in ("light", "dark"):
        driver = _driver(profile_root / theme)
        try:
            driver.get(f"{url}/?__theme={theme}")
            _pick_script(driver)
            default, default_sections = _height(driver), _sections(driver)
            if shots is not None:
                _shot(driver, shots / f"ui-default-{theme}.png")
            _open_all(driver)
            results[theme] = {
                "default_px": default,
                "all_open_px": _height(driver),
                "default_sections_px": default_sections,
                "all_open_sections_px": _sections(driver),
            }
            if shots is not None:
                _shot(driver, shots / f"ui-{theme}.png")
        finally:
            driver.quit()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shots", type=Path, help="write ui-default-{light,dark}.png and ui-{light,dark}.png into this folder"
    )
    parser.add_argument("--host", choices=("a1111", "forge"), default="a1111")
    parser.add_argument("--url", help="measure a WebUI that is already running (started without --api-auth)")
    args = parser.parse_args()
    if args.url:
        with tempfile.TemporaryDirectory(prefix="interstable-ui-") as tmp:
            print(json.dumps(measure(args.url.rstrip("/"), args.shots, Path(tmp)), indent=1))
        return 0
    spec = realhost.FORGE if args.host == "forge" else realhost.A1111
    webui = realhost.ensure_built(spec)
    with tempfile.TemporaryDirectory(prefix="interstable-ui-") as tmp:
        data_dir = Path(tmp) / "data"
        extension = realhost.make_data_dir(webui, data_dir, models=[])
        realhost.run_installer(webui, extension, log=realhost.ARTIFACTS / f"{spec.name}-ui-install.log")
        host = realhost.RunningHost(webui, spec, data_dir, name="ui-measure").start()
        try:
            print(json.dumps(measure(host.url, args.shots, Path(tmp)), indent=1))
        finally:
            host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
