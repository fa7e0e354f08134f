"""Check your own implementation against every oracle, from Python.

A candidate is any module providing some of ``manual``'s functions with the same names and
signatures; it goes through exactly the path ``manual`` does.  Inside your own test suite::

    import gradmatrix

    def test_my_layers():
        gradmatrix.check("my_layers.py", ops=["affine"]).raise_for_failures()

``raise_for_failures`` raises an ``AssertionError`` that lists each failing comparison
with its worst element and the command that reproduces it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType

from gradmatrix.oracles import devices
from gradmatrix.oracles.candidate import Candidate, account, load_module
from gradmatrix.oracles.implementations import ORACLES
from gradmatrix.runner import Runner, default_plan
from gradmatrix.reports import document as documents
from gradmatrix.reports import environment
from gradmatrix.reports.compare import DISAGREE, ERROR


@dataclass
class CheckResult:
    """The outcome of checking a candidate: the agreement document and helpers to read it."""

    document: dict

    @property
    def passed(self) -> bool:
        return self.document["summary"]["passed"]

    @property
    def status(self) -> int:
        """0 all agree, 1 something disagrees, 2 the candidate could not be checked."""
        return documents.check_status(self.document)

    @property
    def failures(self) -> list:
        return [r for r in self.document["comparisons"] if r["verdict"] in (DISAGREE, ERROR)]

    def per_op(self) -> dict:
        """op -> {"verdict": "agree"/"disagree"/"error"/"incomplete", "failures": n, "worst": record or None}."""
        ops: dict = {}
        for op in self.document["run"]["candidate_ops"]:
            records = [r for r in self.document["comparisons"] if r["op"] == op]
            bad = [r for r in records if r["verdict"] in (DISAGREE, ERROR)]
            worst = max(records, key=lambda r: documents.worst_ratio(r) or 0.0, default=None)
            verdict = ERROR if any(r["verdict"] == ERROR for r in bad) else (DISAGREE if bad else "agree")
            if verdict == "agree" and not self.document["summary"]["complete"]:
                verdict = "incomplete"  # what ran agrees, but not everything ran: never a pass
            ops[op] = {"verdict": verdict, "comparisons": len(records), "failures": len(bad),
                       "worst": bad[0] if bad else worst}
        return ops

    def raise_for_failures(self, limit: int = 10) -> "CheckResult":
        """Raise an ``AssertionError`` listing the failures (at most ``limit``); else return self."""
        if self.passed:
            return self
        s = self.document["summary"]
        lines = [f"{s['disagree']} disagreeing and {s['error']} failing of {s['comparisons']} comparisons "
                 f"for candidate {self.document['run']['candidate']}:"]
        lines += [f"  {r['message']}" for r in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        raise AssertionError("\n".join(lines))


def check(module: ModuleType | str, ops=None, *, matrix: str = "default", dtypes=None, seeds=None,
          oracles=ORACLES, strict_kinks: bool = False, progress=None, modes=None, device: str = "cpu",
          matmul_precision: str = "default") -> CheckResult:
    """Check a candidate module against the oracles across the matrix.

    Args:
        module: the candidate, a module object, a dotted module name or a ``.py`` path.
        ops: ops to check (default: every op of the catalog the module provides).
        matrix, dtypes, seeds: as for ``gradmatrix run``.
        oracles: oracles to compare with (default: torch, jax, numeric).
        strict_kinks: fail on differences at kinks instead of reporting the convention.
        modes: checks, of "reverse", "jvp", "hvp" (default: all).  In "jvp" the module's
            gradients meet forward mode; in "hvp" central differences of its gradient are
            the reference the frameworks' Hessian-vector products are compared with.
        progress: optional callable ``(done, total, failures)`` called after each comparison.
        device: where the torch and JAX oracles compute: "cpu", "cuda" or "auto".
        matmul_precision: "default", "high" or "highest" for torch and JAX float32 matmuls.

    Returns:
        A CheckResult; its ``document`` is what ``agreement.json`` would hold.

    Raises:
        ImportError: the module cannot be imported.
        ValueError: it provides no op of the catalog, or an op asked for is unknown or
            not provided.
        oracles.devices.DeviceUnavailable: ``device="cuda"`` and torch sees no GPU.
    """
    target = module if isinstance(module, str) else None
    candidate = Candidate(load_module(module) if isinstance(module, str) else module)
    device = devices.resolve(device)
    runner = Runner(candidate, oracles, device=device, strict_kinks=strict_kinks, matmul_precision=matmul_precision)
    comparisons = default_plan(matrix, ops, dtypes, seeds, oracles, candidate, modes=modes)
    started = time.time()
    records, failures = [], 0
    for i, comparison in enumerate(comparisons, 1):
        kind = comparison.case.kind
        only = (f"--modes {kind} " if kind in ("jvp", "hvp") else "") + f"--only {comparison.id}"
        record = runner.run(comparison, reproduce=f"gradmatrix check {target or candidate.name} --matrix {matrix} {only}")
        failures += record["verdict"] in (DISAGREE, ERROR)
        records.append(record)
        if progress:
            progress(i, len(comparisons), failures)
    run = {"candidate": candidate.name, "candidate_module": target or candidate.name, "candidate_ops": candidate.ops,
           "matrix": matrix, "ops": list(ops) if ops else None, "dtypes": list(dtypes) if dtypes else None,
           "oracles": list(oracles), "seeds": seeds, "modes": list(modes) if modes else None, "only": None,
           "strict_kinks": strict_kinks, "device": device, "matmul_precision": matmul_precision,
           "accounting": account(candidate)}
    with devices.matmul_precision(matmul_precision):
        env = environment.collect(device, matmul_precision)
    return CheckResult(documents.build(records, env, run, expected=len(comparisons), started=started))
