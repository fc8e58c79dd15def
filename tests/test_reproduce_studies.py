"""The reproduction studies (benchmarks/reproduce/): their verdict rules, and one study end to end at the
smoke scale through the real command line, rendered."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "reproduce"))

import batch_size  # noqa: E402
import color_strength  # noqa: E402
import composition  # noqa: E402
import head  # noqa: E402
import loss  # noqa: E402
import temperature  # noqa: E402
import width  # noqa: E402


def result(rows: list[tuple[dict, int, dict]]) -> dict:
    return {"points": {f"{i}": {"values": v, "seed": s, "metrics": m} for i, (v, s, m) in enumerate(rows)}}


def temps(acc: dict[float, tuple[float, float]]) -> dict:
    return result([({"temperature": t}, s, {"linear": a[s]}) for t, a in acc.items() for s in (0, 1)])


def test_temperature_verdicts() -> None:
    hump = {0.05: (0.70, 0.71), 0.1: (0.75, 0.76), 0.2: (0.80, 0.81), 0.5: (0.78, 0.79), 1.0: (0.72, 0.73)}
    assert temperature.verdict(temps(hump))[0] == "holds"
    rising = {**hump, 1.0: (0.85, 0.86)}
    assert temperature.verdict(temps(rising))[0] == "does not hold"
    overlapping = {**hump, 0.5: (0.79, 0.805), 1.0: (0.70, 0.805)}  # an end's best seed reaches the best's worst
    assert temperature.verdict(temps(overlapping))[0] == "inconclusive at this scale"
    assert temperature.verdict(temps({0.1: (0.7, 0.7)}))[0] == "inconclusive at this scale"


def test_head_verdicts() -> None:
    def heads(h: dict, z: dict) -> dict:
        rows = [({"head": k}, s, {"linear": h[k][s], **({"linear_z": z[k][s]} if k in z else {})})
                for k in h for s in (0, 1)]
        return result(rows)

    h = {"none": (0.60, 0.61), "linear": (0.70, 0.71), "mlp": (0.75, 0.76)}
    assert head.verdict(heads(h, {"linear": (0.6, 0.6), "mlp": (0.6, 0.6)}))[0] == "holds"
    assert head.verdict(heads(h, {"linear": (0.8, 0.8), "mlp": (0.6, 0.6)}))[0] == "inconclusive at this scale"
    swapped = {**h, "mlp": (0.65, 0.66)}
    assert head.verdict(heads(swapped, {"linear": (0.6, 0.6), "mlp": (0.6, 0.6)}))[0] == "does not hold"


def test_colour_verdicts() -> None:
    def rows(c: dict, s: dict) -> dict:
        return result([({"strength": x}, k, {"linear": c[x][k], "supervised": s[x][k]}) for x in c for k in (0, 1)])

    flat = {0.125: (0.9, 0.9), 1.0: (0.9, 0.9)}
    assert color_strength.verdict(rows({0.125: (0.6, 0.61), 1.0: (0.7, 0.71)}, flat))[0] == "holds"
    assert color_strength.verdict(rows({0.125: (0.7, 0.71), 1.0: (0.6, 0.61)}, flat))[0] == "does not hold"
    sup_gains_more = {0.125: (0.5, 0.5), 1.0: (0.9, 0.9)}
    assert color_strength.verdict(rows({0.125: (0.6, 0.61), 1.0: (0.7, 0.71)}, sup_gains_more))[0] == "does not hold"


def test_composition_verdict_and_table() -> None:
    acc = {composition.name(ops): 0.5 for ops in composition.cells()}
    acc["crop>colour"], acc["colour>crop"] = 0.8, 0.78
    acc["crop>flip"] = 0.7
    acc["colour>blur"] = 0.6
    res = result([({"dataset": "synthetic", "ops": k}, 0, {"linear": v}) for k, v in acc.items()])
    assert composition.verdict(res)[0] == "holds"
    table = composition.table(res)
    assert "| crop | 50.0 | 70.0 | 80.0 | 50.0 | 50.0 |" in table  # the crop row: alone, then crop > each op
    assert "| colour | 78.0 | 50.0 | 50.0 | 50.0 | 60.0 |" in table  # ordered: colour > crop is its own cell
    assert "| flip | 70.0 | 50.0 |" in table  # flip > crop is crop > flip (flip commutes)
    acc["blur>colour"] = 0.95  # colour + blur: 0.6 and 0.95 pooled, median 0.775 < crop + colour's 0.79
    res = result([({"dataset": "synthetic", "ops": k}, 0, {"linear": v}) for k, v in acc.items()])
    assert composition.verdict(res)[0] == "holds"
    acc["crop>flip"] = 0.9
    res = result([({"dataset": "synthetic", "ops": k}, 0, {"linear": v}) for k, v in acc.items()])
    assert composition.verdict(res)[0] == "does not hold"
    del acc["blur>crop"]
    res = result([({"dataset": "synthetic", "ops": k}, 0, {"linear": v}) for k, v in acc.items()])
    assert composition.verdict(res)[1] == "synthetic: inconclusive at this scale (not every cell has been run)"


def test_composition_cells_run_each_pair_in_its_order() -> None:
    """A point's augment.order starts with its ops in the cell's order; one view stays the image."""
    pts = {p.values["ops"]: p for p in composition.points(argparse.Namespace(datasets=["synthetic"], seeds=[0]))}
    assert len(pts) == 1 + 5 + 16  # identity, 5 ops, ordered pairs (the 4 starting with flip are their mirror)
    for key, first in (("blur>crop", ["blur", "crop"]), ("crop>blur", ["crop", "blur"]),
                       ("grayscale>colour", ["grayscale", "color"])):
        aug = pts[key].config["augment"]
        assert aug["order"][:2] == first and sorted(aug["order"]) == sorted(composition.PIPELINE.values())
        assert aug["identity_view"] and ("--blur" in pts[key].flags) == ("blur" in key)
    fm = composition.points(argparse.Namespace(datasets=["fashion-mnist"], seeds=[0]))
    assert not any("grayscale" in p.values["ops"] for p in fm) and len(fm) == 1 + 4 + 9


def test_loss_verdict_takes_each_loss_at_its_best_setting() -> None:
    def rows(acc: dict[tuple, float]) -> dict:
        grid = [(n, sh, v) for n, setting, values, variants in loss.GRID for sh in variants for v in values]
        return result([({"loss": n, "semi_hard": sh, loss.setting_of(n): v}, 0, {"linear": acc.get((n, sh, v), 0.5)})
                       for n, sh, v in grid])

    assert loss.verdict(rows({("ntxent", False, 0.2): 0.8, ("triplet", True, 0.5): 0.7}))[0] == "holds"
    beaten = rows({("ntxent", False, 0.2): 0.8, ("ntlogistic", True, 1.0): 0.85})
    assert loss.verdict(beaten)[0] == "does not hold" and "NT-Logistic beats NT-Xent by 5.0" in loss.verdict(beaten)[1]
    assert loss.verdict(rows({("ntxent", False, 0.1): 0.8, ("triplet", False, 1.0): 0.798}))[0] == (
        "inconclusive at this scale")
    assert "NT-Logistic 85.0 (semi-hard, temperature 1)" in loss.table(beaten)
    partial = {"points": {k: p for k, p in list(beaten["points"].items())[:-1]}}
    assert loss.verdict(partial) == ("inconclusive at this scale", "not every setting has been run")


def test_batch_size_verdict() -> None:
    def rows(acc: dict) -> dict:
        return result([({"batch": b, "epochs": e}, 0, {"linear": a}) for (b, e), a in acc.items()])

    helps_short = {(64, 2): 0.6, (1024, 2): 0.7, (64, 8): 0.75, (1024, 8): 0.77}
    assert batch_size.verdict(rows(helps_short))[0] == "holds"
    too_few_steps = {(64, 2): 0.7, (1024, 2): 0.6, (64, 8): 0.75, (1024, 8): 0.74}
    assert batch_size.verdict(rows(too_few_steps))[0] == "does not hold"


def test_width_verdict() -> None:
    def rows(gaps: list[float], gains: tuple[float, ...] = (0.0, 0.01, 0.02)) -> dict:
        nets = [("resnet18", w) for w in (0.25, 0.5, 1.0)]
        return result([({"arch": a, "width": w}, 0, {"linear": 0.8 + up, "supervised": 0.8 + up + g})
                       for (a, w), g, up in zip(nets, gaps, gains, strict=True)])

    assert width.verdict(rows([0.10, 0.05, 0.02]))[0] == "holds"
    assert width.verdict(rows([0.05, 0.06, 0.07]))[0] == "does not hold"
    assert width.verdict(rows([0.10, 0.11, 0.02]))[0] == "inconclusive at this scale"
    assert "x0.25 +10.0" in width.verdict(rows([0.10, 0.05, 0.02]))[1]
    # the gap narrows only because the supervised networks get worse: SimCLR must gain too
    flat = width.verdict(rows([0.10, 0.05, 0.02], gains=(0.0, 0.0, 0.0)))
    assert flat[0] == "inconclusive at this scale" and "SimCLR does not gain at every width" in flat[1]
    # SimCLR gains, supervised falls at the largest: holds, with the caveat said
    falls = width.verdict(rows([0.10, 0.09, 0.0], gains=(0.0, 0.02, 0.08)))  # supervised 90, 91, 88
    assert falls[0] == "holds" and "the supervised networks peak at x0.5" in falls[1]
    assert "peak" not in width.verdict(rows([0.10, 0.09, 0.08], gains=(0.0, 0.02, 0.04)))[1]  # 90, 91, 92


def test_a_study_runs_and_renders(tmp_path: Path) -> None:
    """The head study at the smoke scale: 3 pretraining runs, linear eval on h and z, then the page."""
    res = tmp_path / "head-smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/reproduce/head.py"), "--scale", "smoke",
                           "--seeds", "0", "--threads", "1", "--runs", str(tmp_path / "runs"), "--results", str(res)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(res.read_text())
    assert set(data["points"]) == {"head=none_seed=0", "head=linear_seed=0", "head=mlp_seed=0"}
    mlp = data["points"]["head=mlp_seed=0"]["metrics"]
    assert set(mlp) == {"linear", "linear_z"} and all(0 <= v <= 1 for v in mlp.values())
    assert data["machine"]["cores"] and data["commits"]
    assert 0 <= data["baselines"]["smoke"]["linear_random"] <= 1  # the untrained network, evaluated once
    # the runs keep what each measurement wrote: the page's numbers are the CLI's
    run = tmp_path / "runs" / "head" / "smoke" / "head=mlp_seed=0"
    assert json.loads((run / "linear_z.json").read_text())["layer"] == "z"
    assert json.loads((run / "linear_z.json").read_text())["top1"] == mlp["linear_z"]
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks/reproduce/head.py"), "--scale", "smoke",
                            "--seeds", "0", "--runs", str(tmp_path / "runs"), "--results", str(res)],
                           capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and "3 already in" in again.stdout and "0 to run" in again.stdout  # resumes

    sys.path.insert(0, str(ROOT / "benchmarks" / "reproduce"))
    import render

    page = tmp_path / "REPRODUCTION.md"
    render.render(tmp_path, page, tmp_path / "fig", scale="smoke")
    text = page.read_text()
    assert f"| non-linear (2-layer MLP) | {100 * mlp['linear']:.1f} | {100 * mlp['linear_z']:.1f} |" in text
    assert "none (a smoke run)" in text and "not run yet" in text  # the other studies have no smoke results
    assert f"scores {100 * data['baselines']['smoke']['linear_random']:.1f} on smoke" in text
    assert (tmp_path / "fig" / "head.png").stat().st_size > 1000


@pytest.mark.parametrize("script", ["temperature", "head", "color_strength", "composition", "batch_size",
                                    "width", "loss"])
def test_every_study_lists_its_points(script: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / f"benchmarks/reproduce/{script}.py"), "--list", "--seeds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    keys = [line.split()[0] for line in proc.stdout.splitlines()]
    assert keys and len(keys) == len(set(keys))
    as_module = subprocess.run([sys.executable, "-m", f"benchmarks.reproduce.{script}", "--list", "--seeds", "0"],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert as_module.returncode == 0 and as_module.stdout == proc.stdout, as_module.stderr  # python -m runs it too


def test_a_changed_point_is_pretrained_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run directory is reused only when it was made with the point's settings: a point whose config
    changed (or a run from before the settings were stored) is pretrained again, not measured on an old
    encoder. The command line is faked: it records each call and writes what the real one writes."""
    import study

    calls: list[str] = []

    def fake_cli(self: study.Runner, args: list[str], log: Path) -> None:
        calls.append(args[0])
        if args[0] == "pretrain":
            run = Path(args[args.index("--out") + 1])
            run.mkdir(parents=True)
            (run / "encoder.pt").write_text("weights")
            (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 4.0}) + "\n")
        else:
            Path(args[args.index("--out") + 1]).write_text(json.dumps({"top1": 0.5}))

    monkeypatch.setattr(study.Runner, "_cli", fake_cli)
    args = argparse.Namespace(scale="smoke", results=str(tmp_path / "r.json"), runs=str(tmp_path / "runs"),
                              fresh=False, redo=False, jobs=1, threads=1)
    runner = study.Runner(head.STUDY, args)
    point = study.Point({"ops": "crop"}, 0, config={"augment": {"identity_view": False}})
    runner._run_point(point)
    assert calls == ["pretrain", "linear-eval"]
    runner._run_point(point)  # the same settings: the run is reused
    assert calls == ["pretrain", "linear-eval", "linear-eval"]
    changed = study.Point({"ops": "crop"}, 0, config={"augment": {"identity_view": True}})  # the same key
    assert changed.key == point.key
    runner._run_point(changed)
    assert calls[3:] == ["pretrain", "linear-eval"]
    (tmp_path / "runs" / "head" / "smoke" / f"{point.key}.point.json").unlink()  # a run from before the stamps
    runner._run_point(changed)
    assert calls[5:] == ["pretrain", "linear-eval"]
    record = runner._run_point(changed)
    assert calls[7:] == ["linear-eval"] and record["machine"] == study.machine()
