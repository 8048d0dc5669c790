"""Bad init images and masks, through the whole script run (UI path), the fake ``/sdapi`` path and our routes."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile

from interstable.errors import InputImageError

ROOT = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, *, color_type: int = 2) -> bytes:
    """A PNG whose header claims ``width x height`` and whose pixel data is almost empty (a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    """A real PNG cut in the middle of its pixel data: it opens (the header is whole) but does not decode."""
    noise = Image.effect_noise((64, 64), 80).convert("RGB")
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _modes() -> dict[str, Image.Image]:
    rgba = Image.new("RGBA", (40, 30), (200, 10, 10, 0))
    rgba.paste((10, 200, 10, 255), (0, 0, 20, 30))
    palette = Image.new("P", (40, 30), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 20, 30))
    palette.info["transparency"] = 0
    gradient = Image.linear_gradient("L").resize((40, 30))
    return {
        "RGBA": rgba,
        "LA": Image.merge("LA", (gradient, gradient.point(lambda v: 255 if v > 128 else 0))),
        "P-transparency": palette,
        "I;16": Image.new("I;16", (40, 30), 40000),
        "F": Image.new("F", (40, 30), 300.5),
        "CMYK": Image.new("CMYK", (40, 30), (0, 255, 255, 0)),
        "1": Image.new("1", (40, 30), 1),
        "I": Image.new("I", (40, 30), 70000),
        "L": gradient,
    }


# --- no image, no pixels, one pixel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("init_images", [[], None, [None]], ids=["empty-list", "none", "list-of-none"])
def test_no_init_image_names_the_fix(jobs, init_images):
    with pytest.raises(InputImageError, match="needs an init image: drop one into the img2img tab"):
        jobs.run(jobs.p(init_images=init_images))
    jobs.works()


def test_api_request_without_init_images_is_refused_clearly(jobs):
    with pytest.raises(InputImageError, match="send init_images in the API request"):
        jobs.api(init_images=[])


@pytest.mark.parametrize("size", [(0, 0), (0, 64), (64, 0)], ids=["0x0", "0x64", "64x0"])
def test_image_without_pixels_names_its_size(jobs, size):
    with pytest.raises(InputImageError, match=rf"size {size[0]}x{size[1]} has no pixels; use an image of at least 1x1"):
        jobs.run(jobs.p(init_images=[Image.new("RGB", size)]))
    jobs.works()


def test_one_pixel_image_works_in_the_ui_and_the_api(jobs):
    processed = jobs.run(jobs.p(init_images=[Image.new("RGB", (1, 1), "red")], width=8, height=8))
    assert len(processed.images) == 1
    assert int(jobs.params(processed.infotexts[0])["InterStable lines"]) > 0
    response = jobs.api(Image.new("RGBA", (1, 1), (0, 0, 0, 0)))
    assert len(response["images"]) == 1


def test_one_pixel_image_works_in_the_preview(client):
    response = client.post("/interstable/v1/preview", json={"image": _b64(png_bytes(Image.new("L", (1, 1))))})
    assert response.status_code == 200, response.text
    assert response.json()["lines"] > 0


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# --- every image mode through the whole run ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(_modes()))
def test_every_mode_runs_through_the_script(jobs, mode):
    from modules import processing

    image = _modes()[mode]
    before = image.tobytes()
    jobs.host.opts.img2img_background_color = "#0000ff"
    processed = jobs.run(jobs.p(init_images=[image], width=40, height=30), line_density=0.0)
    assert len(processed.images) == len(processed.infotexts) == 1
    assert image.tobytes() == before  # the caller's image is never modified
    (lined,) = processing.calls[-1]["init_images"]
    assert (lined.mode, lined.size) == ("RGB", (40, 30))
    assert jobs.host.interrogator.calls == ["RGB"]
    if mode in ("RGBA", "P-transparency"):  # fully transparent pixels become the WebUI's background colour
        assert lined.getpixel((39, 29)) == (0, 0, 255)
        assert lined.getpixel((0, 0)) != (0, 0, 255)


@pytest.mark.parametrize(
    ("fmt", "image"),
    [
        pytest.param("PNG", _modes()["RGBA"], id="png-rgba"),
        pytest.param("PNG", _modes()["LA"], id="png-la"),
        pytest.param("PNG", _modes()["P-transparency"], id="png-p-transparency"),
        pytest.param("PNG", _modes()["I;16"], id="png-16-bit"),
        pytest.param("TIFF", _modes()["F"], id="tiff-float"),
        pytest.param("JPEG", _modes()["CMYK"], id="jpeg-cmyk"),
        pytest.param("WEBP", _modes()["RGBA"], id="webp-rgba"),
        pytest.param("GIF", _modes()["P-transparency"], id="gif"),
    ],
)
def test_every_mode_runs_through_the_api(jobs, fmt, image):
    response = jobs.api(_b64_image(image, fmt))
    assert len(response["images"]) == 1
    assert "InterStable lines" in jobs.api_infotexts(response)[0]


def _b64_image(image: Image.Image, fmt: str) -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return _b64(buf.getvalue())


# --- broken uploads ---------------------------------------------------------------------------------------------------


def test_truncated_upload_through_the_api_names_the_fix(jobs):
    with pytest.raises(InputImageError, match=r"init image 1 cannot be read .*truncated.*send the complete image"):
        jobs.api(_b64(truncated_png()))
    jobs.works()


def test_truncated_mask_through_the_api_names_the_fix(jobs):
    with pytest.raises(InputImageError, match=r"inpaint mask cannot be read .*send the complete mask"):
        jobs.api(mask=_b64(truncated_png()))
    jobs.works()


def test_truncated_upload_over_http_is_422_with_the_message(client, jobs):
    body = {"init_images": [_b64(truncated_png())], "script_name": "interstable llm r-line", "script_args": []}
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("init image 1 cannot be read (OSError: image file is truncated")


def test_non_image_through_the_api_is_the_hosts_answer_and_the_next_job_works(client, jobs):
    body = {"init_images": [_b64(b"hello, not an image")], "script_name": "interstable llm r-line", "script_args": []}
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == 500
    assert response.json()["detail"] == "Invalid encoded image"
    jobs.works()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        pytest.param(_b64(truncated_png()), "image: not a readable image", id="truncated-pixels"),
        pytest.param(_b64(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "image: not a readable image", id="pdf"),
        pytest.param(_b64(b"<!doctype html><html></html>"), "image: not a readable image", id="html"),
        pytest.param(_b64(b'{"image": "x"}'), "image: not a readable image", id="json"),
        pytest.param(_b64(b"\x89PNG\r\n\x1a\n"), "image: not a readable image", id="png-signature-only"),
        pytest.param("data:image/png;base64,", "image: not a readable image", id="data-uri-without-data"),
        pytest.param("   ", "image: no image was sent", id="blank"),
        pytest.param("=" * 64, "image: not a readable image", id="padding-only"),
    ],
)
def test_preview_refuses_broken_uploads_with_422(client, image, message):
    response = client.post("/interstable/v1/preview", json={"image": image})
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert "send a" in response.json()["detail"]  # and says what to send instead


def test_preview_refuses_a_non_string_image_with_422(client):
    response = client.post("/interstable/v1/preview", json={"image": {"data": "x"}})
    assert response.status_code == 422


# --- 16384 x 16384 ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "extra"), [("image", {}), ("mask", {"image": _b64(png_bytes(Image.new("RGB", (8, 8))))})]
)
def test_upload_over_the_size_limit_is_refused_without_decoding(client, monkeypatch, field, extra):
    real_load = ImageFile.ImageFile.load

    def no_decoding(self):
        if self.width * self.height > 16384 * 16384:
            raise AssertionError("the pixels were decoded")
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    body = {field: _b64(png_header_only(16385, 16384)), **extra}
    start = time.perf_counter()
    response = client.post("/interstable/v1/preview", json=body)
    assert time.perf_counter() - start < 2.0
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"{field}: 16385x16384 is larger than 16384x16384; scale it down"


def test_upload_at_the_size_limit_passes_the_size_check(client):
    # The header says exactly 16384x16384 (grey, 256 MiB); the data is cut short, so decoding fails after the size
    # check, and the answer is about the data, not the size (Pillow's decompression-bomb limit is not what refuses it).
    response = client.post("/interstable/v1/preview", json={"image": _b64(png_header_only(16384, 16384, color_type=0))})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "not a readable image" in detail
    assert "larger than" not in detail
    assert "DecompressionBomb" not in detail


BIG_JOB = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, "tests/fakehost")
    from PIL import Image
    from modules import processing, scripts, script_callbacks, shared
    from interstable.args import ARGS

    def peak():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    shared.reset()
    shared.data_path, shared.models_path = sys.argv[1], sys.argv[1] + "/models"
    runner = scripts.ScriptRunner(scripts.load_scripts(Path(".")), is_img2img=True)
    runner.setup_ui()
    script_callbacks.ui_settings_callback()
    (script,) = runner.selectable_scripts
    image = Image.new("RGB", (16384, 16384), (90, 120, 150))
    seen = {}

    def sample(p):  # stands in for the host's sampling: what matters is the memory used before it
        seen["extra"], seen["mode"], seen["size"] = peak() - base, p.init_images[0].mode, p.init_images[0].size
        return processing.Processed(p, [Image.new("RGB", (8, 8))], p.seed, "info", infotexts=["info"])

    processing.process_images = sample
    values = [c.value for c in script.controls]
    values[[a.key for a in ARGS].index("llm_model")] = "(none)"  # this test is about the image
    full = [c.value for c in runner.inputs[1:]]
    full[script.args_from - 1 : script.args_to - 1] = values
    p = processing.StableDiffusionProcessingImg2Img(init_images=[image], width=64, height=64, prompt="x", seed=1)
    p.scripts, p.script_args = runner, [1, *full]
    base = peak()
    processed = runner.run(p, 1, *full)
    print(json.dumps({**seen, "images": len(processed.images), "captions": shared.interrogator.calls}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_16384_square_job_copies_the_image_once(tmp_path):
    # Pillow's allocations are invisible to tracemalloc: the peak RSS of a fresh process is measured. The job needs
    # the lined copy (4 bytes a pixel) and the stroke mask (1 byte); the caption reads the original in place.
    done = subprocess.run(
        [sys.executable, "-c", BIG_JOB, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    image_bytes = 16384 * 16384 * 4
    assert result["images"] == 1
    assert (result["mode"], result["size"]) == ("RGB", [16384, 16384])
    assert result["captions"] == ["RGB"]
    assert result["extra"] <= 1.5 * image_bytes, result


# --- inpaint masks ----------------------------------------------------------------------------------------------------


def test_mask_of_another_size_is_scaled_like_the_host_does(jobs):
    from modules import processing

    mask = Image.new("L", (48, 32), 0)
    mask.paste(255, (0, 0, 24, 32))  # the left half, at half the size
    jobs.run(jobs.p(mask=mask), line_density=60.0, line_opacity=1.0)
    lined = processing.calls[-1]["init_images"][0]
    changed = ImageChops.difference(lined, jobs.p().init_images[0]).convert("L").point(lambda v: 255 if v else 0)
    assert changed.getbbox() is not None
    assert changed.crop((48, 0, 96, 64)).getbbox() is None


@pytest.mark.parametrize("mode", ["L", "1", "RGBA", "RGB"])
def test_all_black_mask_draws_no_lines_and_the_job_still_runs(jobs, mode):
    mask = Image.new(mode, (96, 64), 0)
    if mode == "RGBA":
        mask = Image.new("RGBA", (96, 64), (0, 0, 0, 255))
    processed = jobs.run(jobs.p(mask=mask), line_density=100.0)
    assert len(processed.images) == 1
    assert jobs.params(processed.infotexts[0])["InterStable lines"] == "0"


def test_preview_mask_of_another_size_names_both_sizes(client):
    body = {"image": _b64(png_bytes(Image.new("RGB", (96, 64)))), "mask": _b64(png_bytes(Image.new("L", (48, 32))))}
    response = client.post("/interstable/v1/preview", json=body)
    assert response.status_code == 422
    assert "mask: size 48x32 does not match the image size 96x64; resize the mask to the image" in response.text


def test_preview_all_black_mask_gives_no_lines(client):
    body = {"image": _b64(png_bytes(Image.new("RGB", (96, 64)))), "mask": _b64(png_bytes(Image.new("L", (96, 64))))}
    response = client.post("/interstable/v1/preview", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["lines"] == 0
