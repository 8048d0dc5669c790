"""Measure the script's controls in a real WebUI in headless Chromium, and take the docs screenshots.

Run by hand (not a test; it needs Chromium, chromedriver and Selenium, none of which the test tiers install)::

    apt-get install -y chromium chromium-driver && python -m pip install selenium
    python tests/support/ui_measure.py [--shots docs] [--host a1111|forge]

It builds and starts the real host as the realhost tier does (tests/support/realhost.py, without ``--api-auth`` so the
browser needs no login), opens the img2img tab at 1500x1000, picks the script, and prints the height of the script's
block (``#script_interstable_llm_rline_controls``) in its default state and with every accordion open, per theme,
and the height of each section (accordion) in both states. With ``--shots`` it writes ``ui-default-light.png`` and
``ui-default-dark.png`` (as the page opens) and ``ui-light.png`` and ``ui-dark.png`` (every section open) into that
folder; for Forge ``ui-forge-...``. It refuses to measure a page without the host's own ``style.css`` (see
:func:`_stage`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
        if button.text.strip().lower() == "img2img":  # Forge writes "Img2img"
            button.click()
    box = driver.find_element(By.CSS_SELECTOR, "#img2img_script_container #script_list input")
    driver.execute_script("arguments[0].scrollIntoView()", box)
    box.click()
    time.sleep(0.5)
    for option in driver.find_elements(By.CSS_SELECTOR, "#img2img_script_container #script_list ul li"):
        if option.text.strip().endswith(TITLE):  # gradio 4 puts a check mark before the chosen one
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


def _host_css_rules(driver) -> int:
    """How many rules of the host's own ``style.css`` reached the page (0: it was refused, see :func:`_stage`)."""
    return int(driver.execute_script(
        "const s = [...document.styleSheets].find(s => /file=style\\.css/.test(s.href || ''));"
        "try { return s ? s.cssRules.length : 0 } catch (e) { return 0 }"
    ))  # fmt: skip


def _stage(webui: Path, root: Path) -> Path:
    """The host's tree where the browser may read it: outside any dot folder, the venv linked, big files hard-linked.

    The realhost tier builds the hosts under ``~/.cache``; gradio's ``/file=`` route refuses every path with a part
    that starts with a dot (gradio 3.41 ``routes.file``: 403), so from there the host's own ``style.css`` and
    ``script.js`` never reach the browser, and the page is not the one a user sees. A copy of the tree (27 MB for
    A1111; the checkpoints hard-linked) beside a link to the venv is.
    """
    if not any(part.startswith(".") for part in webui.parts):
        return webui
    target = root / "host" / webui.name

    def copy(source: str, destination: str) -> None:
        if Path(source).stat().st_size > 16 * 2**20:
            try:
                os.link(source, destination)
                return
            except OSError:
                pass
        shutil.copy2(source, destination)

    shutil.copytree(webui, target, symlinks=True, copy_function=copy)
    (target.parent / "venv").symlink_to(webui.parent / "venv", target_is_directory=True)
    return target


def measure(url: str, shots: Path | None, profile_root: Path, *, prefix: str = "ui-") -> dict:
    results: dict[str, dict[str, float]] = {}
    for theme in ("light", "dark"):
        driver = _driver(profile_root / theme)
        try:
            driver.get(f"{url}/?__theme={theme}")
            _pick_script(driver)
            css_rules = _host_css_rules(driver)
            if css_rules == 0:
                raise RuntimeError("the host's own style.css did not reach the page: the sizes would be wrong")
            default, default_sections = _height(driver), _sections(driver)
            if shots is not None:
                _shot(driver, shots / f"{prefix}default-{theme}.png")
            _open_all(driver)
            results[theme] = {
                "default_px": default,
                "all_open_px": _height(driver),
                "default_sections_px": default_sections,
                "all_open_sections_px": _sections(driver),
                "host_css_rules": css_rules,
            }
            if shots is not None:
                _shot(driver, shots / f"{prefix}{theme}.png")
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
    built = realhost.ensure_built(spec)
    with tempfile.TemporaryDirectory(prefix="interstable-ui-") as tmp:
        webui = _stage(built, Path(tmp))
        data_dir = Path(tmp) / "data"
        extension = realhost.make_data_dir(webui, data_dir, models=[])
        realhost.run_installer(webui, extension, log=realhost.ARTIFACTS / f"{spec.name}-ui-install.log")
        # A host with --data-dir serves files only from there (its default --gradio-allowed-path): allow its own tree,
        # as a host started in its own folder does, or gradio 4 (Forge) refuses its style.css and script.js.
        allow = ("--gradio-allowed-path", str(webui))
        host = realhost.RunningHost(webui, spec, data_dir, name="ui-measure", extra_flags=allow).start()
        try:
            prefix = "ui-forge-" if spec is realhost.FORGE else "ui-"
            print(json.dumps(measure(host.url, args.shots, Path(tmp), prefix=prefix), indent=1))
        finally:
            host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
