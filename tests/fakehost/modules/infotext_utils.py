"""Fake ``modules.infotext_utils``: quote, parse and paste exactly as A1111 v1.10.1 (HOST_CONTRACT.md 2, 3.5)."""

from __future__ import annotations

import json
import re

re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)
re_imagesize = re.compile(r"^(\d+)x(\d+)$")


def quote(text):
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def parse_generation_parameters(x: str) -> dict:
    res: dict = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    for k, v in re_param.findall(lastline):
        try:
            if v[0] == '"' and v[-1] == '"':
                v = unquote(v)
            m = re_imagesize.match(v)
            if m is not None:
                res[f"{k}-1"] = m.group(1)
                res[f"{k}-2"] = m.group(2)
            else:
                res[k] = v
        except Exception:
            print(f'Error parsing "{k}: {v}"')
    if "Clip skip" not in res:
        res["Clip skip"] = "1"
    return res


def paste_values(paste_fields, infotext: str) -> list:
    """What ``connect_paste.paste_func`` sends to each component: an update dict, empty when nothing changes."""
    from modules import script_callbacks

    params = parse_generation_parameters(infotext)
    for fn in script_callbacks.callbacks["infotext_pasted"]:
        fn(infotext, params)
    res = []
    for output, key in paste_fields:
        if callable(key):
            try:
                v = key(params)
            except Exception:
                v = None
        else:
            v = params.get(key, None)
        if v is None:
            res.append({})
        elif isinstance(v, dict):
            res.append(v)
        else:
            try:
                valtype = type(output.value)
                if valtype is bool and v == "False":
                    val = False
                elif valtype is int:
                    val = float(v)
                else:
                    val = valtype(v)
                res.append({"value": val})
            except Exception:
                res.append({})
    return res


def pasted(paste_fields, infotext: str) -> dict:
    """The value each component ends up with after a paste: the browser applies the updates in order, so when a
    component is listed twice (a script's ``infotext_fields`` after the tab's own fields) the later one wins."""
    final = {}
    for (output, _key), update in zip(paste_fields, paste_values(paste_fields, infotext), strict=True):
        if "value" in update:
            final[output] = update["value"]
    return final
