#!/usr/bin/env bash
# COCO scoring speed, side by side on one file (issue 24): ours (`resnet eval --detections`,
# whole command and the library's scoring alone, as it reports on stderr) vs pycocotools'
# COCOeval vs faster-coco-eval's COCOeval_faster (scripts/reference/coco_eval.py --impl ...),
# alternating, ROUNDS rounds (default 3), on IMAGES images x DETS detections (default 5,000 x
# 300, generated once by scripts/bench_coco_eval_data.py into BENCH_DIR, default
# .cache/bench_coco_eval). Checks that the three give the same 12 numbers (to 1e-6), then
# prints per-round rows and the medians with ratios as Markdown; with CSV=FILE also writes the
# rows there. Installs pycocotools (setup-reference.sh) and faster-coco-eval into .venv.
# Usage: scripts/bench_coco_eval.sh            (builds target/release/resnet if needed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py=.venv/bin/python
scripts/setup-reference.sh
"$py" -c 'import faster_coco_eval' 2>/dev/null || "$py" -m pip install --quiet faster-coco-eval
[ -x target/release/resnet ] || cargo build --release
data="${BENCH_DIR:-.cache/bench_coco_eval}"
if [ ! -f "$data/bench.toml" ]; then
  "$py" scripts/bench_coco_eval_data.py --out "$data" --images "${IMAGES:-5000}" --dets "${DETS:-300}"
fi
exec "$py" - "$data" "${ROUNDS:-3}" "${CSV:-}" <<'PY'
import json, re, resource, statistics, subprocess, sys, time

data, rounds, csv_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
gt, dets = f"{data}/instances.json", f"{data}/detections.json"
py = ".venv/bin/python"
cmds = {
    "ours": ["target/release/resnet", "eval", "--detections", dets, "--config",
             f"{data}/bench.toml", "--out", f"{data}/ours"],
    "pycocotools": [py, "scripts/reference/coco_eval.py", "--gt", gt, "--results", dets],
    "faster-coco-eval": [py, "scripts/reference/coco_eval.py", "--gt", gt, "--results", dets,
                         "--impl", "faster"],
}
rows, stats = [], {}
for r in range(1, rounds + 1):
    for name, cmd in cmds.items():
        u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
        if p.returncode != 0:
            sys.exit(f"{name}: exit {p.returncode}: {p.stderr[-2000:]}")
        if name == "ours":
            m = re.search(r"in ([0-9.]+) s and .* in ([0-9.]+) s; scored in ([0-9.]+) s", p.stderr)
            inner, scoring = sum(map(float, m.groups())), float(m.group(3))
            with open(f"{data}/ours/scores.json") as f:
                stats[name] = json.load(f)["coco_stats"]
        else:
            out = json.loads(p.stdout)
            inner, scoring = out["seconds"], None
            stats[name] = out["stats"]
        rows.append((r, name, wall, cpu, inner, scoring))
        print(f"round {r} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {inner:.2f} s in-process"
              + (f", {scoring:.3f} s scoring" if scoring is not None else ""), file=sys.stderr)
for name in ("pycocotools", "faster-coco-eval"):
    diff = max(abs(a - b) for a, b in zip(stats["ours"], stats[name]))
    print(f"ours vs {name}: largest difference of the 12 numbers {diff:.2e}", file=sys.stderr)
    assert diff <= 1e-6, f"ours and {name} disagree: {stats['ours']} vs {stats[name]}"
if csv_path:
    with open(csv_path, "w") as f:
        f.write("round,impl,wall_s,cpu_s,in_process_s,scoring_s\n")
        for r, n, w, c, i, s in rows:
            f.write(f"{r},{n},{w:.4f},{c:.4f},{i:.4f},{'' if s is None else f'{s:.4f}'}\n")
def med(n, k):
    return statistics.median(row[k] for row in rows if row[1] == n)
print("| implementation | wall s (whole process) | CPU s (user+sys) | in-process wall s | pycocotools / it (wall) | pycocotools / it (CPU) |")
print("|---|---|---|---|---|---|")
for n in cmds:
    print(f"| {n} | {med(n, 2):.2f} | {med(n, 3):.2f} | {med(n, 4):.2f} "
          f"| {med('pycocotools', 2) / med(n, 2):.1f}x | {med('pycocotools', 3) / med(n, 3):.1f}x |")
sc = med("ours", 5)
print(f"| ours, the library's scoring alone (both protocols) | | | {sc:.3f} "
      f"| {med('pycocotools', 4) / sc:.0f}x (in-process) | |")
print(f"\nmedians of {rounds} round(s); faster-coco-eval / ours: {med('faster-coco-eval', 2) / med('ours', 2):.1f}x wall, "
      f"{med('faster-coco-eval', 3) / med('ours', 3):.1f}x CPU")
print(f"\nstats (ours): {' '.join(f'{s:.3f}' for s in stats['ours'])}")
PY
