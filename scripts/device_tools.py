#!/usr/bin/env python3
"""Helpers of scripts/device_check.sh (the CUDA-graph training step), standard library only.

Each subcommand reads run folders (`curves.csv`, `summary.csv`, written by `resnet train`) and
appends one row to a results CSV; every row carries the card, the commit and the command that
produced it (from the environment: DC_CARD, DC_COMMIT, DC_COMMAND):

* ``curves OUT.csv PAIR A B [--noise-rel R] [--noise-test T]``: graph vs eager equivalence of two
  runs of the same recipe: the lr columns must be equal row by row, the training losses within
  a relative tolerance and the test errors within an absolute one (percentage points). The
  tolerance is the larger of a floor (2 %, 1 point) and 3x the noise R/T measured between two
  eager runs (cuDNN is not bitwise deterministic on the GPU). Exit status 1 when it fails.
* ``concurrency OUT.csv MODE JOBS ITERS WALL_S RUN...``: aggregate images/s of JOBS concurrent
  runs: from the wall time (start to last exit, process start-up included) and as the sum of each
  run's median interval images/s (steady state).
* ``fullrun OUT.csv RUN WALL_S RC``: the full-schedule run: iterations reached, wall time, test
  error, images/s.
* ``summary OUTDIR``: SUMMARY.md from the CSVs in OUTDIR.
"""
from __future__ import annotations

import csv
import os
import statistics
import sys
from pathlib import Path

META = ("card", "commit", "command")


def meta() -> list[str]:
    return [os.environ.get("DC_CARD", ""), os.environ.get("DC_COMMIT", ""), os.environ.get("DC_COMMAND", "")]


def append(path: Path, header: list[str], row: list) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header + list(META))
        w.writerow([fmt(v) for v in row] + meta())


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def read_curves(run: Path) -> list[dict]:
    with (run / "curves.csv").open() as f:
        return list(csv.DictReader(f))


def num(s: str | None) -> float | None:
    return float(s) if s not in (None, "") else None


def compare_curves(a: list[dict], b: list[dict]) -> dict:
    """Row-by-row differences of two curves.csv files of the same recipe."""
    rows = min(len(a), len(b))
    out = {
        "rows_a": len(a),
        "rows_b": len(b),
        "iterations_equal": [r["iteration"] for r in a] == [r["iteration"] for r in b],
        "lr_equal": all(float(x["lr"]) == float(y["lr"]) for x, y in zip(a, b)),
        "max_rel_train_loss": 0.0,
        "max_abs_train_error": 0.0,
        "max_abs_test_error": 0.0,
        "max_rel_test_loss": 0.0,
    }
    for x, y in zip(a[:rows], b[:rows]):
        la, lb = float(x["train_loss"]), float(y["train_loss"])
        out["max_rel_train_loss"] = max(out["max_rel_train_loss"], abs(la - lb) / max(abs(la), 1e-6))
        out["max_abs_train_error"] = max(
            out["max_abs_train_error"], abs(float(x["train_error"]) - float(y["train_error"]))
        )
        ta, tb = num(x["test_error"]), num(y["test_error"])
        if ta is not None and tb is not None:
            out["max_abs_test_error"] = max(out["max_abs_test_error"], abs(ta - tb))
            qa, qb = num(x["test_loss"]), num(y["test_loss"])
            out["max_rel_test_loss"] = max(out["max_rel_test_loss"], abs(qa - qb) / max(abs(qa), 1e-6))
    out["final_test_error_a"] = num(a[-1]["test_error"]) if a else None
    out["final_test_error_b"] = num(b[-1]["test_error"]) if b else None
    return out


def cmd_curves(args: list[str]) -> int:
    out, pair, a, b = Path(args[0]), args[1], Path(args[2]), Path(args[3])
    opts = dict(zip(args[4::2], args[5::2]))
    noise_rel = float(opts.get("--noise-rel", 0.0))
    noise_test = float(opts.get("--noise-test", 0.0))
    c = compare_curves(read_curves(a), read_curves(b))
    tol_rel = max(0.02, 3 * noise_rel)
    tol_test = max(1.0, 3 * noise_test)
    ok = (
        c["iterations_equal"]
        and c["lr_equal"]
        and c["rows_a"] == c["rows_b"]
        and c["max_rel_train_loss"] <= tol_rel
        and c["max_abs_test_error"] <= tol_test
    )
    header = [
        "pair", "rows", "iterations_equal", "lr_equal", "max_rel_train_loss", "max_abs_train_error",
        "max_rel_test_loss", "max_abs_test_error", "final_test_error_a", "final_test_error_b",
        "tol_rel_train_loss", "tol_abs_test_error", "verdict",
    ]
    append(out, header, [
        pair, f'{c["rows_a"]}/{c["rows_b"]}', c["iterations_equal"], c["lr_equal"],
        c["max_rel_train_loss"], c["max_abs_train_error"], c["max_rel_test_loss"],
        c["max_abs_test_error"], c["final_test_error_a"], c["final_test_error_b"], tol_rel, tol_test,
        "pass" if ok else "FAIL",
    ])
    print(f"{pair}: {'pass' if ok else 'FAIL'} (max rel train loss {c['max_rel_train_loss']:.2e}, "
          f"max test error diff {c['max_abs_test_error']:.2f} points, lr equal {c['lr_equal']})")
    # The noise baseline for the caller: "REL TEST" on the last line.
    print(f"{c['max_rel_train_loss']} {c['max_abs_test_error']}")
    return 0 if ok else 1


def median_rate(run: Path) -> float:
    rows = read_curves(run)
    rates = [float(r["images_per_s"]) for r in rows[1:]] or [float(r["images_per_s"]) for r in rows]
    return statistics.median(rates) if rates else float("nan")


def cmd_concurrency(args: list[str]) -> int:
    out, mode, jobs, iters, wall = Path(args[0]), args[1], int(args[2]), int(args[3]), float(args[4])
    runs = [Path(r) for r in args[5:]]
    finished = [r for r in runs if (r / "summary.csv").exists()]
    batch = 128
    wall_rate = len(finished) * iters * batch / wall if wall > 0 else float("nan")
    medians = [median_rate(r) for r in finished]
    header = ["mode", "jobs", "iterations", "finished", "wall_s", "aggregate_images_per_s_wall",
              "aggregate_images_per_s_steady", "per_run_median_images_per_s"]
    append(out, header, [mode, jobs, iters, len(finished), wall, wall_rate, sum(medians),
                         " ".join(f"{m:.0f}" for m in medians)])
    print(f"{mode} x{jobs}: {len(finished)}/{jobs} finished, {wall:.1f} s, aggregate "
          f"{wall_rate:.0f} images/s (wall), {sum(medians):.0f} images/s (steady)")
    return 0 if len(finished) == jobs else 1


def cmd_fullrun(args: list[str]) -> int:
    out, run, wall, rc = Path(args[0]), Path(args[1]), float(args[2]), int(args[3])
    rows = read_curves(run) if (run / "curves.csv").exists() else []
    last = rows[-1] if rows else {}
    tested = [r for r in rows if r.get("test_error")]
    reached = int(last.get("iteration", 0) or 0)
    finished = (run / "summary.csv").exists()
    header = ["finished", "iterations_reached", "wall_s", "train_elapsed_s", "images_per_s_median",
              "final_test_error", "best_test_error", "exit_code"]
    best = min((float(r["test_error"]) for r in tested), default=float("nan"))
    append(out, header, [
        finished, reached, wall, float(last.get("elapsed_s", "nan") or "nan"),
        median_rate(run) if rows else float("nan"),
        float(tested[-1]["test_error"]) if tested else float("nan"), best, rc,
    ])
    print(f"full run: {'finished' if finished else 'stopped'} at iteration {reached} after {wall:.1f} s "
          f"(exit {rc}); last test error {tested[-1]['test_error'] if tested else 'n/a'}")
    return 0


def csv_table(path: Path) -> str:
    if not path.exists():
        return f"({path.name}: not produced)\n"
    with path.open() as f:
        rows = [r[: len(r) - 3] if len(r) > 3 and path.name != "steps.csv" else r for r in csv.reader(f)]
    if not rows:
        return "(empty)\n"
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def cmd_summary(args: list[str]) -> int:
    d = Path(args[0])
    parts = ["# Device check (CUDA-graph training step)\n"]
    meta_file = d / "meta.csv"
    if meta_file.exists():
        parts.append("```\n" + meta_file.read_text() + "```\n")
    for name, title in [
        ("steps.csv", "Steps (exit code, seconds, command)"),
        ("equivalence.csv", "Graph vs eager (ResNet-20, real JPEGs, same seed)"),
        ("fullrun.csv", "Full 64k-iteration ResNet-20 schedule with the graph"),
        ("concurrency.csv", "Concurrent ResNet-20 runs on one GPU"),
    ]:
        parts.append(f"## {title}\n\n" + csv_table(d / name))
    for f in sorted(d.glob("bench_*.summary.txt")):
        parts.append(f"## {f.name}\n\n```\n{f.read_text()}```\n")
    for f in sorted(d.glob("profile/*.summary.txt")):
        parts.append(f"## {f.name}\n\n```\n{f.read_text()}```\n")
    (d / "SUMMARY.md").write_text("\n".join(parts))
    print(f"wrote {d / 'SUMMARY.md'}")
    return 0


def main(argv: list[str]) -> int:
    cmds = {"curves": cmd_curves, "concurrency": cmd_concurrency, "fullrun": cmd_fullrun,
            "summary": cmd_summary}
    if not argv or argv[0] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
