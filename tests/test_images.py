"""Images in the runtime: decoding and normalisation from the ONNX metadata (`runtime/images.py`),
`Predictor` and `snnzoo predict`/`info` on image files, the size policy, modes, bad images."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from snnzoo.cli import cli
from snnzoo.runtime import Predictor
from snnzoo.runtime.images import ImageFileError, ImageSpec, load_image
from snnzoo.zoo.models import CIFAR10_MEAN, CIFAR10_STD
from snnzoo.zoo.training.data import to_input

from conftest import SAMPLES

SPEC = ImageSpec((3, 32, 32), 1 / 255, tuple(CIFAR10_MEAN), tuple(CIFAR10_STD))
N_PNG, N_JPEG = 12, 4


def torch_input(pixels: np.ndarray, spec: dict) -> torch.Tensor:
    """What training feeds the net: uint8 ``[B, H, W, C]`` → ``to_input`` (``zoo/training/data.py``)."""
    return to_input(torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2), spec, torch.device("cpu"))


def invoke(*args) -> object:
    return CliRunner().invoke(cli, [*map(str, args)])


@pytest.fixture(scope="module")
def cifar_files(cifar10_test_images, tmp_path_factory) -> tuple[list[str], np.ndarray]:
    """Test images 0–11 as PNG (lossless) and 12–15 as JPEG (q90), with the pixels each file
    decodes to (Pillow, RGB)."""
    d = tmp_path_factory.mktemp("cifar")
    files = []
    for i, img in enumerate(cifar10_test_images[:N_PNG + N_JPEG]):
        f = d / (f"test_{i:03d}.png" if i < N_PNG else f"test_{i:03d}.jpg")
        Image.fromarray(img).save(f, **({} if i < N_PNG else {"quality": 90}))
        files.append(str(f))
    with_pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    np.testing.assert_array_equal(with_pixels[:N_PNG], cifar10_test_images[:N_PNG])
    return files, with_pixels


def scores_of(predictions) -> np.ndarray:
    out = []
    for r in predictions:
        assert r.ok, (r.file, r.error)
        s = np.zeros(10, np.float32)
        for lab, _, score in r.topk:
            s[lab] = score
        out.append(s)
    return np.stack(out)


# ---- normalisation and the model's output ---------------------------------------------------
def test_normalisation_equals_training_bit_for_bit(cifar10_test_images):
    spec = {"kind": "image", "scale": 1 / 255, "mean": CIFAR10_MEAN, "std": CIFAR10_STD}
    ours = SPEC.normalize(cifar10_test_images[:64])
    assert ours.dtype == np.float32 and ours.shape == (64, 3, 32, 32)
    np.testing.assert_array_equal(ours, torch_input(cifar10_test_images[:64], spec).numpy())


def test_predict_files_equal_the_model_on_the_same_pixels(image_model, cifar_files):
    net, path = image_model
    files, pixels = cifar_files
    pred = Predictor(path, top_k=10, batch_size=5)  # batches across files
    assert pred.info.image == ImageSpec.from_input(net.config["input"]["shape"], net.config["input"])
    got = scores_of(pred.predict_files(files))
    x = torch_input(pixels, net.config["input"])
    # the same graph on the training pipeline's input: equal to the last bit
    ref_ort = pred.predict_frames(x.numpy())
    np.testing.assert_allclose(got, ref_ort, rtol=0, atol=5e-7)  # Prediction rounds to 6 decimals
    np.testing.assert_array_equal(pred.predict_images(pixels), ref_ort)
    np.testing.assert_array_equal(pred.predict_images(pixels[0]), ref_ort[0])
    # the torch model: equal up to rare threshold-edge spike flips (export/verify.py's tolerance)
    with torch.no_grad():
        ref = net(x).numpy()
    votes = 2 * 10  # T · neurons per class
    dv = np.abs(np.rint(got * votes) - np.rint(ref * votes))
    assert dv.max() <= 2 and dv.sum() / (dv.size * votes) <= 5e-3, dv
    assert got.std() > 0.05 and len(set(got.argmax(1))) > 1  # a net that answers, not a constant


def test_torch_backend_reads_the_same_input(image_model, cifar_files, tmp_path):
    """``--backend torch`` on a checkpoint folder feeds the torch net the same normalised pixels."""
    from safetensors.torch import save_file

    from snnzoo.zoo.pretrained import load_folder

    net, _ = image_model
    files, pixels = cifar_files
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, str(ckpt / "model.safetensors"))
    (ckpt / "config.json").write_text(json.dumps(net.config))
    pred = Predictor(ckpt, backend="torch", device="cpu", top_k=10, batch_size=len(files))
    got = scores_of(pred.predict_files(files))
    with torch.no_grad():
        ref = load_folder(ckpt).eval()(torch_input(pixels, net.config["input"])).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=5e-7)


def test_cli_json_on_images_imports_no_torch(image_model, cifar_files, tmp_path):
    _, path = image_model
    files, _ = cifar_files
    code = ("import sys\n"
            "from snnzoo.cli import main\n"
            f"sys.argv = ['snnzoo', 'predict', '--model', {str(path)!r}, '--format', 'json', *{files!r}]\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as e:\n"
            "    code = e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('snnzoo.zoo', 'snnzoo.export')))\n"
            "print(repr(bad), file=sys.stderr)\n"
            "sys.exit(code)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "[]"
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    ref = {r.file: r for r in Predictor(path, top_k=3).predict_files(files)}
    assert [r["file"] for r in rows] == files
    for row in rows:
        r = ref[row["file"]]
        assert row["events"] is None and (row["label"], row["class"], row["score"]) == (r.label, r.cls, r.score)
        assert row["topk"] == [{"label": lab, "class": c, "score": s} for lab, c, s in r.topk]


# ---- size policy ----------------------------------------------------------------------------
def test_wrong_size_is_refused_with_one_line_and_the_others_predicted(image_model, cifar_files, tmp_path):
    _, path = image_model
    files, _ = cifar_files
    big = tmp_path / "photo.jpg"
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(big)
    r = invoke("predict", "--model", path, files[0], big, files[1])
    assert r.exit_code == 1
    assert r.stderr == (f"snnzoo: error: {big}: JPEG image is 4000×3000 (W×H); cifar10_compact takes 32×32 "
                        "images (resize it, or pass --resize to scale and centre-crop)\n")
    assert len(r.stdout.splitlines()) == 3 and files[0] in r.stdout and files[1] in r.stdout
    r = invoke("predict", "--model", path, "--resize", "--format", "json", big)
    assert r.exit_code == 0 and json.loads(r.stdout)["events"] is None


def test_resize_covers_then_centre_crops(cifar10_test_images, tmp_path):
    a, b, c = cifar10_test_images[:3]
    strip = tmp_path / "strip.png"  # 96×32: covering 32×32 needs no scaling; the centre is b
    Image.fromarray(np.concatenate([a, b, c], axis=1)).save(strip)
    np.testing.assert_array_equal(load_image(strip, SPEC, resize=True), SPEC.normalize(b))
    tall = tmp_path / "tall.png"  # 40×120 of one colour → 32×96 → centre 32×32, the same colour
    Image.new("RGB", (40, 120), (10, 128, 250)).save(tall)
    flat = SPEC.normalize(np.full((32, 32, 3), (10, 128, 250), np.float32))
    np.testing.assert_allclose(load_image(tall, SPEC, resize=True), flat, atol=1e-4)
    with pytest.raises(ImageFileError, match=r"PNG image is 40×120 \(W×H\); the model takes 32×32"):
        load_image(tall, SPEC)
    scaled = tmp_path / "scaled.png"  # 64×64 = b upsampled 2×: shrinking it back stays close to b
    Image.fromarray(b).resize((64, 64), Image.Resampling.NEAREST).save(scaled)
    err = np.abs(load_image(scaled, SPEC, resize=True) - SPEC.normalize(b)) * np.float32(CIFAR10_STD)[:, None, None]
    assert err.mean() < 0.02, err.mean()  # < 5 of 255 grey levels on average (measured: 1.8)


def test_exif_orientation_is_applied(cifar10_test_images, tmp_path):
    b = cifar10_test_images[1]
    f = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    stored = Image.fromarray(b).transpose(Image.Transpose.ROTATE_90)
    stored.save(f, exif=exif, quality=100)
    upright = np.asarray(Image.open(f).convert("RGB").transpose(Image.Transpose.ROTATE_270))
    np.testing.assert_array_equal(load_image(f, SPEC), SPEC.normalize(upright))


# ---- modes ----------------------------------------------------------------------------------
def png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_modes(cifar10_test_images, tmp_path):
    img = cifar10_test_images[5]
    grey = np.asarray(Image.fromarray(img).convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey.png")  # grey is replicated into R, G, B
    np.testing.assert_array_equal(load_image(tmp_path / "grey.png", SPEC), SPEC.normalize(np.repeat(grey[..., None], 3, -1)))
    luma = ImageSpec((1, 32, 32), 1 / 255, (0.5,), (0.25,))  # a 1-channel model takes Pillow's luma
    Image.fromarray(img).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png", luma), luma.normalize(grey[..., None]))

    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    Image.fromarray(np.dstack([img, alpha])).save(tmp_path / "rgba.png")
    want = SPEC.normalize(img) * (alpha / np.float32(255))[None]  # composited onto the mean: α · x
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png", SPEC), want, atol=1e-5)
    assert np.all(load_image(tmp_path / "rgba.png", SPEC)[:, :, 0] == 0)  # transparent → mean → 0
    Image.fromarray(np.dstack([img, np.full((32, 32), 255, np.uint8)])).save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(load_image(tmp_path / "opaque.png", SPEC), SPEC.normalize(img))

    pal = Image.fromarray(img).quantize(16)
    pal.save(tmp_path / "palette.png")
    np.testing.assert_array_equal(load_image(tmp_path / "palette.png", SPEC), SPEC.normalize(np.asarray(pal.convert("RGB"))))
    pal.save(tmp_path / "palette_t.png", transparency=int(np.asarray(pal)[0, 0]))
    hole = np.asarray(pal) == np.asarray(pal)[0, 0]
    x = load_image(tmp_path / "palette_t.png", SPEC)
    assert np.all(x[:, hole] == 0) and np.array_equal(x[:, ~hole], SPEC.normalize(np.asarray(pal.convert("RGB")))[:, ~hole])

    v16 = np.minimum(img.astype(np.uint32) * 257 + np.arange(32)[:, None, None] * 7, 65535).astype(np.uint16)
    Image.fromarray(v16[..., 0]).save(tmp_path / "grey16.png")  # I;16: exactly v / 257
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    exact = np.repeat((v16[..., :1] / np.float32(257)).astype(np.float32), 3, -1)
    np.testing.assert_array_equal(load_image(tmp_path / "grey16.png", SPEC), SPEC.normalize(exact))
    rgb16 = load_image(png16(tmp_path / "rgb16.png", v16), SPEC)  # Pillow keeps the high byte
    px = rgb16 * np.float32(CIFAR10_STD)[:, None, None] * 255 + np.float32(CIFAR10_MEAN)[:, None, None] * 255
    assert np.abs(px - np.moveaxis(v16 / 257.0, -1, 0)).max() <= 1.0 + 1e-3

    Image.fromarray(img.astype(np.int32)[..., 0] * 1000).save(tmp_path / "int32.tif")
    with pytest.raises(ImageFileError, match="32-bit integer pixels"):
        load_image(tmp_path / "int32.tif", SPEC)


# ---- bad input ------------------------------------------------------------------------------
def test_bad_images_are_one_line_each(image_model, cifar_files, tmp_path):
    _, path = image_model
    files, _ = cifar_files
    good = Path(files[0]).read_bytes()
    bad = {"truncated": tmp_path / "truncated.png", "noise": tmp_path / "noise.jpg",
           "empty": tmp_path / "empty.png", "corrupt": tmp_path / "corrupt.png", "missing": tmp_path / "missing.png"}
    bad["truncated"].write_bytes(good[:len(good) // 2])
    bad["noise"].write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    bad["empty"].write_bytes(b"")
    broken = bytearray(good)
    broken[good.index(b"IDAT") + 20] ^= 0xFF
    bad["corrupt"].write_bytes(bytes(broken))
    reasons = {"truncated": "corrupt PNG image (image file is truncated",
               "noise": "not an image (no image format recognised; content starts with",
               "empty": "empty file (0 bytes)", "corrupt": "corrupt PNG image (",
               "missing": "no such file"}
    r = invoke("predict", "--model", path, files[0], *bad.values(), files[1])
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = r.stderr.splitlines()
    assert len(errors) == len(bad) and len(r.stdout.splitlines()) == 3
    for line, (key, f) in zip(errors, bad.items()):
        assert line.startswith(f"snnzoo: error: {f}: {reasons[key]}"), line
    with pytest.raises(ImageFileError, match="is a directory, not an image file"):
        load_image(tmp_path, SPEC)  # (the CLI searches a folder instead)


def test_events_and_images_mixed(image_model, runtime_env, cifar_files, tmp_path):
    _, image_onnx = image_model
    files, _ = cifar_files
    r = invoke("predict", "--model", image_onnx, "--format", "json", files[0], SAMPLES[0])
    assert r.exit_code == 1 and [json.loads(line)["file"] for line in r.stdout.splitlines()] == [files[0]]
    assert r.stderr == f"snnzoo: error: {SAMPLES[0]}: an event file (npy), not an image; cifar10_compact takes images\n"
    r = invoke("predict", "--model", runtime_env.onnx, "--format", "json", files[0], SAMPLES[0])
    assert r.exit_code == 1 and [json.loads(line)["file"] for line in r.stdout.splitlines()] == [str(SAMPLES[0])]
    assert r.stderr == (f"snnzoo: error: {files[0]}: a PNG image (32×32, RGB), not an event file; "
                        "nmnist_compact takes event streams\n")
    folder = Path(files[0]).parent  # folders are searched for the model's kind of file
    r = invoke("predict", "--model", image_onnx, folder)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1 + N_PNG + N_JPEG
    r = invoke("predict", "--model", runtime_env.onnx, folder)
    assert r.exit_code == 1 and "no event files" in r.stderr
    r = invoke("predict", "--model", image_onnx, SAMPLES[0].parent)
    assert r.exit_code == 1 and "no image files (.bmp, .gif, .jpeg, .jpg" in r.stderr
    with pytest.raises(ValueError, match="takes event streams, not images"):
        Predictor(runtime_env.onnx).predict_images(np.zeros((32, 32, 3), np.uint8))
    r = invoke("bench", "--model", image_onnx, "--seconds", "0.1")
    assert r.exit_code == 1 and r.stderr == ("snnzoo: error: cifar10_compact is an image model; bench "
                                             "measures event-stream models\n")


def test_info_on_an_image_says_what_it_is(cifar_files):
    files, _ = cifar_files
    r = invoke("info", files[0], files[-1], SAMPLES[0])
    assert r.exit_code == 1 and len(r.stdout.splitlines()) == 1
    assert r.stderr.splitlines() == [
        f"snnzoo: error: {files[0]}: a PNG image (32×32, RGB), not an event file (images are classified "
        "by `snnzoo predict --model <image model>`)",
        f"snnzoo: error: {files[-1]}: a JPEG image (32×32, RGB), not an event file (images are classified "
        "by `snnzoo predict --model <image model>`)"]
