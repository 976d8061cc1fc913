"""Run the zoo: one CSV row per (design, n, p, rep, method), appended as it comes.

Seeds: every (design, p, rep) draws from ``SeedSequence([seed_base, crc32(design),
p, rep])``, spawned into the data's seed (same design for every n: common random
numbers over n) and the methods' ``random_state`` (the same for every method). A
fresh set of seeds is one ``--seed-base`` away; a rerun with the same seed base skips
the rows already in the CSV.
"""

from __future__ import annotations

import csv
import time
import traceback
import warnings
import zlib
from pathlib import Path

import numpy as np

from .designs import DESIGNS
from .methods import METHODS, prepare_y, recommended_class

__all__ = ["FIELDS", "unit_seeds", "unit_data", "plan", "run_unit", "run", "load_rows"]

FIELDS = (
    "design", "n", "p", "rep", "method", "distance", "seconds", "n_iter", "status",
    "estimator", "seed_base", "method_seed", "holdout",
)


def unit_seeds(design: str, p: int, rep: int, seed_base: int):
    """(data SeedSequence, method seed int) of one repetition of a design at p."""
    ss = np.random.SeedSequence([seed_base, zlib.crc32(design.encode()), p, rep])
    data_ss, method_ss = ss.spawn(2)
    return data_ss, int(method_ss.generate_state(1)[0])


def unit_data(design: str, n: int, p: int, rep: int, seed_base: int):
    """X, Y, B of one repetition (the data every method of that row saw)."""
    data_ss, _ = unit_seeds(design, p, rep, seed_base)
    return DESIGNS[design](n, p, data_ss)


def plan(designs, sizes: str, reps: int, sweep_reps: int, quick_size=None):
    """Units (design, n, p, rep), repetition outermost so a partial run is even."""
    units = []
    for rep in range(max(reps, sweep_reps)):
        for d in designs:
            if quick_size is not None:
                todo = [quick_size]
            else:
                todo = ([d.main] if sizes in ("main", "all") and rep < reps else [])
                if sizes in ("sweep", "all") and rep < sweep_reps:
                    todo += list(d.sweep)
            units += [(d.name, n, p, rep) for n, p in todo]
    return units


def _fit_one(name, method, design, X, Y, B, r, seed):
    from steinlatent.metrics import subspace_distance

    row = {"method": name, "distance": "", "seconds": "", "n_iter": "", "estimator": ""}
    why = method.reason_not_applicable(design)
    if why is not None:
        return {**row, "status": f"skipped: {why}"}
    try:
        est = method.factory(r, seed, design)
        row["estimator"] = type(est).__name__
        Yfit = prepare_y(Y, method, design)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, Yfit)
        secs = time.perf_counter() - t0
        dist = subspace_distance(np.asarray(est.components_).T, B)
    except Exception as exc:  # a method that raises is a failed fit, recorded and counted
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return {**row, "status": f"failed: {msg}"}
    if not np.isfinite(dist):
        return {**row, "seconds": f"{secs:.4g}", "status": "failed: non-finite estimate"}
    return {**row, "distance": f"{dist:.6g}", "seconds": f"{secs:.4g}",
            "n_iter": getattr(est, "n_iter_", ""), "status": "ok"}


def run_unit(design_name, n, p, rep, seed_base, methods):
    """Fit every (name, Method) of ``methods`` on one repetition; returns the rows."""
    design = DESIGNS[design_name]
    data_ss, seed = unit_seeds(design_name, p, rep, seed_base)
    try:
        X, Y, B = design(n, p, data_ss)
    except Exception:
        raise RuntimeError(f"design {design_name} (n={n}, p={p}, rep={rep}) failed:\n"
                           + traceback.format_exc()) from None
    base = {"design": design_name, "n": n, "p": p, "rep": rep, "seed_base": seed_base,
            "method_seed": seed, "holdout": int(design.holdout)}
    return [{**base, **_fit_one(name, m, design, X, Y, B, design.r, seed)}
            for name, m in methods]


def load_rows(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _done_keys(rows):
    return {(r["design"], int(r["n"]), int(r["p"]), int(r["rep"]), r["method"],
             int(r["seed_base"])) for r in rows}


def run(units, method_names, out: Path, *, seed_base: int, jobs: int = 1,
        log=print, command: str = "") -> Path:
    """Fit the methods on every unit not done yet; rows go to ``out/zoo_runs.csv``.

    Returns the CSV path. Ctrl-C stops the run and keeps the rows written so far.
    ``command`` (the command line) is appended to ``out/zoo_commands.txt`` at the end
    with the units run and the minutes taken, so the summary can say which commands
    produced the rows.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "zoo_runs.csv"
    done = _done_keys(load_rows(path))
    work = []
    for d, n, p, rep in units:
        names = [m for m in method_names if (d, n, p, rep, m, seed_base) not in done]
        if names:
            work.append((d, n, p, rep, [(m, METHODS[m]) for m in names]))
    log(f"{len(units)} units, {len(units) - len(work)} already done, {len(work)} to run "
        f"({jobs} worker(s)); recommended = {recommended_class().__name__}; rows -> {path}")
    if not work:
        return path
    new_file = not path.exists() or path.stat().st_size == 0
    t_start = time.perf_counter()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        if jobs == 1:
            results = (run_unit(d, n, p, rep, seed_base, ms) for d, n, p, rep, ms in work)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                delayed(run_unit)(d, n, p, rep, seed_base, ms) for d, n, p, rep, ms in work
            )
        k = 0
        try:
            for k, rows in enumerate(results, 1):
                writer.writerows(rows)
                fh.flush()
                elapsed = time.perf_counter() - t_start
                eta = elapsed / k * (len(work) - k)
                r0 = rows[0]
                cells = ", ".join(
                    f"{r['method']} {float(r['distance']):.3f}" if r["status"] == "ok"
                    else f"{r['method']} {r['status'].split(':')[0]}" for r in rows)
                log(f"[{k}/{len(work)} {elapsed / 60:.1f} min, eta {eta / 60:.1f} min] "
                    f"{r0['design']} n={r0['n']} p={r0['p']} rep {r0['rep']}: {cells}")
        except KeyboardInterrupt:
            log("Interrupted: the rows written so far are kept; rerun to continue.")
    if command:
        minutes = (time.perf_counter() - t_start) / 60
        with (out / "zoo_commands.txt").open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d')}  {k} of {len(work)} units in "
                     f"{minutes:.1f} min  {command}\n")
    return path
