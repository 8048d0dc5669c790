"""Static assets stay in sync with the argument table and scoped to our ids."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from interstable.args import ARGS, BUTTON_TIPS, tooltips_js

ROOT = Path(__file__).resolve().parents[2]


def test_javascript_tooltips_are_generated_from_the_table():
    js = (ROOT / "javascript" / "interstable.js").read_text(encoding="utf-8")
    indented = "\n".join("  " + line if line else line for line in tooltips_js().split("\n"))
    assert indented in js
    assert len(re.findall(r'^\s+\w+: "', js, flags=re.MULTILINE)) == len(ARGS) + len(BUTTON_TIPS)


def test_javascript_defines_no_new_globals():
    js = (ROOT / "javascript" / "interstable.js").read_text(encoding="utf-8")
    top_level = [line for line in js.splitlines() if line and not line.startswith((" ", "//", "(", "}"))]
    assert top_level == []


def test_css_rules_are_scoped_to_our_ids():
    css = (ROOT / "style.css").read_text(encoding="utf-8")
    selectors = [s.strip() for s in re.findall(r"(?m)^([^/{}\s][^{]*)\{", css)]
    assert selectors
    assert all(s.startswith("#script_interstable_llm_rline_") for s in selectors)
    assert "var(--" in css


def test_metadata_ini_parses():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "metadata.ini")
    assert parser["Extension"]["Name"] == "interstable"


def test_every_button_has_a_tooltip():
    """Each button (not returned from ui()) has an elem_id suffix listed in BUTTON_TIPS."""
    webui = ROOT / "interstable" / "webui"
    source = "\n".join((webui / name).read_text(encoding="utf-8") for name in ("actions.py", "caption_download.py"))
    buttons = re.findall(r'gr\.Button\([^)]*elem_id=script\.elem_id\("(\w+)"\)', source)  # over line breaks too
    buttons += re.findall(r'_tool_button\(\w+, script\.elem_id\("(\w+)"\)\)', source)
    assert sorted([*buttons, "preset"]) == sorted(BUTTON_TIPS)  # and the preset dropdown
