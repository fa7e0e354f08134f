"""What changed between two runs (after upgrading torch or jax, say): ``gradmatrix diff``."""

from __future__ import annotations

from gradmatrix.reports.compare import DISAGREE, ERROR, PASSING, SKIPPED
from gradmatrix.reports.document import verify, worst_ratio

FAILING = (DISAGREE, ERROR)


def _max_error(record: dict) -> float | None:
    errors = [t["metrics"]["normwise_rel_err"] for t in record.get("tensors", []) if "metrics" in t]
    errors = [x for x in errors if x is not None]
    return max(errors) if errors else None


def _flatten(env: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in env.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def diff(old: dict, new: dict, factor: float = 10.0, floor: float = 1e-12) -> dict:
    """Compare two agreement documents.

    Args:
        old, new: the documents (``agreement.json`` of each run).
        factor: an error "grew" when new > factor * max(old, floor).
        floor: errors below this are treated as this, so 1e-16 -> 1e-15 does not count.

    Returns:
        ``new_discrepancies``, ``fixed``, ``grown`` (id, tensor-level max error before and
        after, the share of the allowance now used), ``missing`` (in old, not in new),
        ``added`` (ids only in new), ``lost`` (passing before, skipped now: checked by
        nothing), ``environment`` (key -> [old, new]), ``new_passed`` and ``worse`` (true
        when something new fails, an error grew, a comparison went missing or was lost to a
        skip, or the new run does not pass where the old one did).  Both documents are
        verified first (``reports.document.verify``): verdicts come from metrics.
    """
    old, new = verify(old), verify(new)
    before = {r["id"]: r for r in old["comparisons"]}
    after = {r["id"]: r for r in new["comparisons"]}
    new_bad, fixed, grown, lost = [], [], [], []
    for cid, r in sorted(after.items()):
        o = before.get(cid)
        if o is None:
            if r["verdict"] in FAILING:
                new_bad.append({"id": cid, "verdict": r["verdict"], "message": r["message"]})
            continue
        if r["verdict"] in FAILING and o["verdict"] in PASSING:
            new_bad.append({"id": cid, "verdict": r["verdict"], "message": r["message"]})
        elif o["verdict"] in FAILING and r["verdict"] in PASSING:
            fixed.append({"id": cid, "was": o["message"]})
        elif o["verdict"] in PASSING and r["verdict"] == SKIPPED:
            lost.append({"id": cid, "was": o["verdict"], "now": r["verdict"], "message": r["message"]})
        e_old, e_new = _max_error(o), _max_error(r)
        if e_old is not None and e_new is not None and e_new > factor * max(e_old, floor):
            grown.append({"id": cid, "old": e_old, "new": e_new, "factor": e_new / max(e_old, floor),
                          "of_allowed": worst_ratio(r)})
    env_old, env_new = _flatten(old["environment"]), _flatten(new["environment"])
    environment = {k: [env_old.get(k), env_new.get(k)] for k in sorted(set(env_old) | set(env_new))
                   if env_old.get(k) != env_new.get(k)}
    missing = sorted(set(before) - set(after))
    regressed = old["summary"]["passed"] and not new["summary"]["passed"]
    return {
        "new_discrepancies": new_bad,
        "fixed": fixed,
        "grown": sorted(grown, key=lambda g: -g["factor"]),
        "missing": missing,
        "added": sorted(set(after) - set(before)),
        "lost": lost,
        "environment": environment,
        "factor": factor,
        "new_passed": new["summary"]["passed"],
        "new_problems": new["summary"]["problems"],
        "worse": bool(new_bad or grown or missing or lost or regressed),
    }


def render(result: dict, limit: int = 20) -> str:
    """A plain-text account of a diff, for the terminal."""
    lines = []
    verdict = "WORSE" if result["worse"] else "not worse"
    lines.append(f"gradmatrix diff: {verdict}: {len(result['new_discrepancies'])} new discrepancies, "
                 f"{len(result['fixed'])} fixed, {len(result['grown'])} errors grew by more than {result['factor']:g}x, "
                 f"{len(result['missing'])} comparisons missing, {len(result['lost'])} lost to a skip, "
                 f"{len(result['added'])} added")
    if not result.get("new_passed", True):
        lines.append("the new run does not pass" + "".join(f"; {p}" for p in result.get("new_problems", [])))
    for title, key, fmt in (
        ("new discrepancies", "new_discrepancies", lambda x: f"{x['id']}: {x['message']}"),
        ("fixed", "fixed", lambda x: x["id"]),
        ("errors that grew", "grown", lambda x: f"{x['id']}: {x['old']:.2e} -> {x['new']:.2e} ({x['factor']:.3g}x)"),
        ("missing", "missing", str),
        ("lost to a skip (checked by nothing now)", "lost", lambda x: f"{x['id']}: {x['message']}"),
    ):
        items = result[key]
        if items:
            lines.append(f"{title}:")
            lines += [f"  {fmt(x)}" for x in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
    if result["environment"]:
        lines.append("environment:")
        lines += [f"  {k}: {a} -> {b}" for k, (a, b) in result["environment"].items()]
    return "\n".join(lines) + "\n"
