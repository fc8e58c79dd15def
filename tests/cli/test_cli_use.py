"""embed, search, export, preview-augment, plot and visualize: outputs checked against the encoder
itself, pictures that open and are not blank, an HTML page checked in headless Chromium, and one
clear line (no traceback, no partial file) for each kind of bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr import PretrainConfig, load_encoder, pretrain
from simclr.cli import main
from simclr.config import apply_overrides
from simclr.data.folder import FolderImages
from simclr.data.images import center_resize, pil_to_uint8
from simclr.use.embeddings import Embeddings, embed
from simclr.use.pictures import CELL


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    cfg = PretrainConfig()
    apply_overrides(cfg, {
        "data.dataset": "synthetic", "data.limit": 64, "data.image_size": 16, "model.width_multiplier": 0.25,
        "train.batch_size": 32, "train.epochs": 2, "train.log_every": 1, "train.device": "cpu",
    }, "test")
    out = tmp_path_factory.mktemp("use") / "run"
    pretrain(cfg, out)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        (root / f"class{c}").mkdir()
        for i in range(5):
            arr = (rng.random((20, 24, 3)) * 60 + np.array(colour)).clip(0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / f"class{c}" / f"img{i}.png")
    (root / "class1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # header only
    full = (root / "class0" / "img0.png").read_bytes()
    (root / "class1" / "truncated.png").write_bytes(full[: len(full) // 2])  # header fine, decode fails
    return root


def cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def reference_embeddings(run: Path, paths: list[str]) -> torch.Tensor:
    """The encoder applied directly to the images, preprocessed as evaluation does."""
    encoder = load_encoder(run)
    x = torch.stack([pil_to_uint8(center_resize(Image.open(p).convert("RGB"), 16)) for p in paths])
    return embed(encoder, x)


def test_embed_folder_matches_the_encoder_and_skips_bad_files(run: Path, folder: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "gallery.npz"
    with pytest.warns(UserWarning) as caught:
        # fp32 (not auto): compared with the fp32 encoder to 1e-5
        code, stdout, _ = cli(["embed", "--run", str(run), "--images", str(folder), "--out", str(out),
                               "--workers", "0", "--precision", "fp32"], capsys)
    named = " ".join(str(w.message) for w in caught)
    assert "broken.png" in named and "truncated.png" in named  # skipped at decode, each named
    assert code == 0 and "10 embeddings" in stdout
    e = Embeddings.load(out)
    assert len(e) == 10 and e.dim == 128 and not any("broken" in p or "truncated" in p for p in e.paths)
    assert sorted(set(e.labels.tolist())) == [0, 1]
    torch.testing.assert_close(torch.from_numpy(e.vectors), reference_embeddings(run, e.paths), atol=1e-5, rtol=1e-5)
    assert e.model["arch"] == "resnet18" and e.model["layer"] == "h"
    # parquet holds the same
    pytest.importorskip("pyarrow")
    pq = tmp_path / "gallery.parquet"
    with pytest.warns(UserWarning):
        assert cli(["embed", "--run", str(run), "--images", str(folder), "--out", str(pq), "--workers", "0",
                    "--precision", "fp32"], capsys)[0] == 0
    p = Embeddings.load(pq)
    np.testing.assert_allclose(p.vectors, e.vectors, rtol=1e-6, atol=1e-6)
    assert p.paths == e.paths and (p.labels == e.labels).all() and p.model == e.model
    assert p.classes == e.classes == ["class0", "class1"]


def test_embed_dataset_and_layer_z(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from simclr.data.sources import load_images
    from simclr.models.weights import load_head

    out = tmp_path / "z.npz"
    code, _, _ = cli(["embed", "--run", str(run), "--dataset", "synthetic", "--limit", "20", "--layer", "z",
                      "--out", str(out), "--precision", "fp32"], capsys)
    assert code == 0
    e = Embeddings.load(out)
    images = load_images("synthetic", "train", None, 20, 0, 16)
    expected = embed(load_encoder(run), images.images, head=load_head(run))
    torch.testing.assert_close(torch.from_numpy(e.vectors), expected, atol=1e-5, rtol=1e-5)
    assert e.paths[3] == "synthetic:train:3" and (e.labels == images.labels.numpy()).all()


def test_search_finds_the_query_itself_and_writes_html(run: Path, folder: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    index = tmp_path / "g.npz"
    with pytest.warns(UserWarning):
        cli(["embed", "--run", str(run), "--images", str(folder), "--out", str(index), "--workers", "0"], capsys)
    query = folder / "class0" / "img2.png"
    page = tmp_path / "results.html"
    code, out, _ = cli(["search", "--index", str(index), "--query", str(query), "--k", "3", "--html", str(page)],
                       capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == str(query) and len(lines) == 4
    score, path, name = lines[1].split()  # each hit with its class name (issue #32: not the class id)
    assert path == str(query.resolve()) and float(score) == pytest.approx(1.0, abs=1e-4) and name == "(class0)"
    html = page.read_text()
    assert html.count("data:image/jpeg;base64,") == 4  # the query and its 3 neighbours, inlined
    assert "· class0" in html and "· 0<" not in html  # names on the page, not ids
    assert Embeddings.load(index).classes == ["class0", "class1"]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        pytest.skip("headless Chromium check: install chromium (.ci/run does)")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-images-loaded="4/4"' in proc.stdout  # every thumbnail decoded and rendered
    console_errors = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console_errors, console_errors


def test_searcher_exact_chunks_equal_brute_force_and_approx_recall() -> None:
    from simclr.use.search import Searcher

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    gallery = Embeddings(vectors, [str(i) for i in range(3000)], np.arange(3000) % 7)
    queries = rng.standard_normal((50, 32)).astype(np.float32)
    hits = Searcher(gallery, method="exact", chunk=77).search(queries, k=10)
    g = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ g.T
    expected = np.argsort(-sims, axis=1)[:, :10]
    assert (hits.indices == expected).all()
    np.testing.assert_allclose(hits.scores, np.take_along_axis(sims, expected, 1), atol=1e-5)
    pytest.importorskip("faiss")
    for ivf_from, floor in ((10**9, 0.9), (0, 0.8)):  # HNSW, then the inverted file used from 100k up
        approx = Searcher(gallery, method="approx", ivf_from=ivf_from).search(queries, k=10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.indices, expected, strict=True)])
        assert recall > floor, (ivf_from, recall)


@pytest.mark.parametrize("fmt", ["torchscript", "safetensors", "onnx"])
def test_export_matches_the_encoder(fmt: str, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
    out = tmp_path / f"enc.{ {'torchscript': 'pt', 'safetensors': 'safetensors', 'onnx': 'onnx'}[fmt] }"
    code, _, _ = cli(["export", "--run", str(run), "--format", fmt, "--out", str(out)], capsys)
    assert code == 0 and out.is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would, not mkstemp's 0600
    encoder = load_encoder(run)
    for side in (16, 24):
        x = torch.rand(3, 3, side, side, generator=torch.Generator().manual_seed(side))
        with torch.no_grad():
            want = encoder(x)
        if fmt == "torchscript":
            got = torch.jit.load(str(out))(x)
            tol = 1e-5
        elif fmt == "safetensors":
            got = load_encoder(out)(x)
            tol = 0.0  # the same weights in the same module: bit-identical
        else:
            sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            got = torch.from_numpy(sess.run(None, {"images": x.numpy()})[0])
            tol = 1e-4
        torch.testing.assert_close(got.detach(), want, atol=tol, rtol=tol)


def _variance(png: Path) -> float:
    return float(np.asarray(Image.open(png).convert("L"), dtype=np.float64).var())


def test_preview_augment_grid(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "grid.png"
    code, _, _ = cli(["preview-augment", "--images", str(folder), "--out", str(out), "--n", "3",
                      "--image-size", "32"], capsys)
    assert code == 0
    img = Image.open(out)
    cols, gap, head = 5, 4, 18
    assert img.size == (cols * CELL + (cols + 1) * gap + gap, head + 3 * (CELL + gap) + gap)
    assert _variance(out) > 100


def test_embed_of_a_folder_dataset_is_every_image(run: Path, folder: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """``embed --dataset folder --data-dir D`` embeds all of D, as ``--images D`` (it once kept 4 of every 5)."""
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert cli(["embed", "--run", str(run), "--dataset", "folder", "--data-dir", str(folder), "--out", str(a)],
               capsys)[0] == 0
    assert cli(["embed", "--run", str(run), "--images", str(folder), "--out", str(b)], capsys)[0] == 0
    ea, eb = Embeddings.load(a), Embeddings.load(b)
    # every readable image: 5 a class (broken.png and truncated.png are listed by the folder's walk, which
    # opens no file, and fail their decoding)
    assert len(ea.paths) == len(eb.paths) == 10 == len(FolderImages(folder).paths) - 2
    assert ea.paths == eb.paths


def test_preview_augment_of_a_folder_dataset(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--dataset folder --data-dir D`` previews the folder as ``--images D`` does (it once crashed:
    'FolderImages' has no 'images')."""
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    common = ["--out", "--n", "3", "--image-size", "32"]
    assert cli(["preview-augment", "--dataset", "folder", "--data-dir", str(folder), common[0], str(a),
                *common[1:]], capsys)[0] == 0
    assert cli(["preview-augment", "--images", str(folder), common[0], str(b), *common[1:]], capsys)[0] == 0
    assert Image.open(a).tobytes() == Image.open(b).tobytes()


def test_plot_and_visualize(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    code, out, _ = cli(["plot", "--run", str(run), "--out", str(tmp_path / "plots")], capsys)
    assert code == 0
    names = sorted(Path(p).name for p in out.split())
    assert names == ["align.png", "images_per_s.png", "loss.png", "lr.png", "pos_acc.png", "rank_h.png", "uniform.png"]
    for n in names:
        png = tmp_path / "plots" / n
        assert Image.open(png).size == (600, 350) and _variance(png) > 10
    pytest.importorskip("sklearn")
    m = tmp_path / "map.png"
    code, _, _ = cli(["visualize", "--run", str(run), "--dataset", "synthetic", "--max-points", "60",
                      "--out", str(m)], capsys)
    assert code == 0 and Image.open(m).size == (700, 600) and _variance(m) > 10


def test_bad_inputs_give_one_line_and_no_output(run: Path, folder: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(run / "checkpoint.pt", unfinished / "checkpoint.pt")
    out = tmp_path / "x.npz"
    code, _, err = cli(["embed", "--run", str(unfinished), "--images", str(folder), "--out", str(out)], capsys)
    assert code == 2 and "no finished encoder" in err and not out.exists()
    # an index of another dimension
    other = tmp_path / "other.npz"
    Embeddings(np.ones((4, 7), np.float32), list("abcd"), np.zeros(4),
               {"run": str(run), "layer": "h"}).save(other)
    code, _, err = cli(["search", "--index", str(other), "--query", str(folder / "class0" / "img0.png")], capsys)
    assert code == 2 and "dimension 128 but the index has 7" in err
    # an index whose recorded weights are not the run's
    forged = tmp_path / "forged.npz"
    Embeddings(np.ones((4, 128), np.float32), list("abcd"), np.zeros(4),
               {"run": str(run), "layer": "h", "weights_sha256": "0" * 16}).save(forged)
    code, _, err = cli(["search", "--index", str(forged), "--query", str(folder / "class0" / "img0.png")], capsys)
    assert code == 2 and "built by another model" in err
    # a query that is not an image, an empty folder, a missing index
    text = tmp_path / "note.txt"
    text.write_text("hello")
    good = tmp_path / "good.npz"
    with pytest.warns(UserWarning):
        cli(["embed", "--run", str(run), "--images", str(folder), "--out", str(good), "--workers", "0"], capsys)
    page = tmp_path / "p.html"
    code, _, err = cli(["search", "--index", str(good), "--query", str(text), "--html", str(page)], capsys)
    assert code == 2 and "is not an image" in err and not page.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(["search", "--index", str(good), "--query", str(empty)], capsys)
    assert code == 2 and "no readable images" in err
    code, _, err = cli(["embed", "--run", str(run), "--images", str(empty), "--out", str(out)], capsys)
    assert code == 2 and "no readable images" in err and not out.exists()
    code, _, err = cli(["search", "--index", str(tmp_path / "none.npz"), "--query", str(text)], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = cli(["export", "--run", str(unfinished), "--format", "torchscript", "--out",
                        str(tmp_path / "e.pt")], capsys)
    assert code == 2 and not (tmp_path / "e.pt").exists()
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
