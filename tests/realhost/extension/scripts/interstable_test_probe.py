"""A test extension for the realhost tier: an AlwaysVisible script that reports what the sampler really gets.

In ``process_batch`` (after the host's ``p.init``, so ``p.nmask`` exists, HOST_CONTRACT.md 11.3) it writes into the
call's infotext the latent mask the sampler re-renders (``p.nmask``: one 0/1 digit per latent cell, rows joined,
its width) and the inpaint fields the call ran with. Off unless the API enables it through ``alwayson_scripts``.
"""

import modules.scripts as scripts  # noqa: PLR0402 (the host's own idiom: never import Script by name)
from modules import script_callbacks


class InterStableTestProbe(scripts.Script):
    def title(self):
        return "InterStable test probe"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr

        return [gr.Checkbox(False, label="Write the latent mask and inpaint fields into the infotext")]

    def process_batch(self, p, enabled=False, *args, **kwargs):
        if not enabled:
            return
        params = p.extra_generation_params
        nmask = getattr(p, "nmask", None)
        if nmask is not None:
            cells = (nmask[0] > 0.5).int().cpu().tolist()
            params["Probe latent width"] = len(cells[0])  # not "WxH": the host's parser splits those into -1/-2
            params["Probe latent mask"] = "".join(str(v) for row in cells for v in row)
        params["Probe inpainting fill"] = getattr(p, "inpainting_fill", None)
        params["Probe mask blur x"] = getattr(p, "mask_blur_x", None)
        params["Probe mask blur y"] = getattr(p, "mask_blur_y", None)
        params["Probe only masked"] = bool(getattr(p, "inpaint_full_res", False))


def _events(demo):
    """``(fn, input ids, output ids, trigger ids)`` of every event of ``demo``, in gradio 3 (A1111: ``fns`` and
    ``dependencies`` are parallel lists of functions and dicts of ids) and gradio 4 (Forge: ``fns`` is a dict of
    BlockFunctions holding the components themselves)."""
    if hasattr(demo, "dependencies"):
        for fn, dependency in zip(demo.fns, demo.dependencies, strict=True):
            targets = [t[0] if isinstance(t, (list, tuple)) else t for t in dependency.get("targets") or []]
            yield fn.fn, list(dependency["inputs"]), list(dependency["outputs"]), targets
        return
    for block_fn in demo.fns.values():
        ids = [[c._id for c in block_fn.inputs], [c._id for c in block_fn.outputs]]
        yield block_fn.fn, ids[0], ids[1], [t[0] for t in block_fn.targets]


def _paste_route(demo, app):
    """``POST /interstable-test/v1/paste`` {"tab", "infotext"}: what the tab's prompt box holds after the host's own
    paste function ran on ``infotext`` (the browser applies the updates in order, so the last one for a box wins),
    and ``fields``: the value the paste sets on each of our script's controls (by elem_id; absent: left alone)."""
    if demo is None:
        return
    from fastapi import Body

    def paste(tab: str = Body(...), infotext: str = Body(...)):
        prompt_ids = [i for i, block in demo.blocks.items() if getattr(block, "elem_id", None) == f"{tab}_prompt"]
        for fn, _inputs, outputs, _targets in _events(demo):
            if getattr(fn, "__name__", "") != "paste_func" or prompt_ids[0] not in outputs:
                continue
            value, fields = None, {}
            for output, update in zip(outputs, fn(infotext), strict=True):
                if not (isinstance(update, dict) and "value" in update):
                    continue
                if output == prompt_ids[0]:
                    value = update["value"]
                elem_id = getattr(demo.blocks.get(output), "elem_id", None) or ""
                if elem_id.startswith("script_interstable"):
                    fields[elem_id] = update["value"]
            return {"prompt": value, "fields": fields}
        return {"prompt": None, "fields": {}, "error": f"no paste function writes {tab}_prompt"}

    def wiring():
        """For each event of a component whose elem_id starts with ``script_interstable``: the elem_ids (or block
        types) of its inputs and outputs."""

        def name(block_id):
            block = demo.blocks.get(block_id)
            classes = getattr(block, "elem_classes", None) or []
            if "logical_image_background" in classes:  # Forge's canvas image (its elem_id is a fresh uuid)
                return "logical_image_background"
            return getattr(block, "elem_id", None) or type(block).__name__

        events = []
        for _fn, inputs, outputs, targets in _events(demo):
            for block_id in targets:
                trigger = name(block_id)
                if str(trigger).startswith("script_interstable") or trigger == "generation_info_img2img":
                    events.append({"trigger": trigger, "inputs": [name(i) for i in inputs],
                                   "outputs": [name(o) for o in outputs]})  # fmt: skip
        return {"events": events}

    app.add_api_route("/interstable-test/v1/paste", paste, methods=["POST"])
    app.add_api_route("/interstable-test/v1/wiring", wiring, methods=["GET"])


script_callbacks.on_app_started(_paste_route)
