"""Combine shards of one matrix run (a CI job matrix) into one document: ``gradmatrix merge``.

Nothing is taken on trust.  Each shard is verified first (``reports.document.verify``:
verdicts from metrics, summary from records and plan).  Shards must come from one run: the
same options and the same matrix (its size and fingerprint, recorded in each shard's plan);
anything else is refused.  The merged run is complete only when the shards cover the
matrix exactly once: every shard I/N present once, every planned comparison in exactly one
shard.  Overlapping comparisons are detected: identical ones are kept once and listed,
differing ones are conflicts, listed and failing the merged run.  Differing environments
between shards are listed too.
"""

from __future__ import annotations

import itertools
import json

from gradmatrix.reports import document as documents

# the options that make two runs the same run (the shard and timings may differ)
SAME_RUN = ("candidate", "candidate_module", "matrix", "ops", "dtypes", "oracles", "seeds", "modes", "only",
            "strict_kinks")
SHOWN = 10  # missing shards named in a problem; the others are counted


def _comparable(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def _check_one_run(shards: list, names: list) -> None:
    """Raise ValueError unless the documents are shards of one run of one matrix."""
    versions = {d.get("schema_version") for d in shards}
    if versions != {documents.SCHEMA_VERSION} or {d.get("schema") for d in shards} != {documents.SCHEMA}:
        raise ValueError(f"cannot merge reports of schema versions {sorted(map(str, versions))}; "
                         f"this gradmatrix reads version {documents.SCHEMA_VERSION}")
    first = shards[0]
    for name, doc in zip(names[1:], shards[1:]):
        differ = [k for k in SAME_RUN if doc["run"].get(k) != first["run"].get(k)]
        if differ:
            raise ValueError(f"{name} is not a shard of the same run as {names[0]}: {', '.join(differ)} differ")
        if doc["plan"]["matrix"] != first["plan"]["matrix"]:
            raise ValueError(f"{name} is not a shard of the same matrix as {names[0]} "
                             f"({doc['plan']['matrix']['comparisons']} vs {first['plan']['matrix']['comparisons']} "
                             f"comparisons, different fingerprints)")


def _coverage(shards: list, names: list) -> list:
    """Why the shards do not cover their matrix exactly once (empty when they do)."""
    problems = []
    specs = [d["plan"].get("shard") for d in shards]
    counts = {s.split("/")[1] for s in specs if s}
    if None in specs and len(shards) > 1:
        problems.append(f"{', '.join(n for n, s in zip(names, specs) if s is None)} ran the whole matrix, "
                        f"merged with other runs")
    if len(counts) > 1:
        problems.append(f"shards of different splits: {', '.join(sorted(s for s in specs if s))}")
    elif counts:
        total = int(counts.pop())
        given = [int(s.split("/")[0]) for s in specs if s]
        twice = sorted({i for i in given if given.count(i) > 1})
        absent = total - len({i for i in given if i < total})  # counted, not listed: N may be large
        if twice:
            problems.append(f"shard(s) {', '.join(f'{i}/{total}' for i in twice)} given more than once")
        if absent:
            first = list(itertools.islice((i for i in range(total) if i not in given), SHOWN))
            problems.append(f"shard(s) {', '.join(f'{i}/{total}' for i in first)}"
                            f"{f' and {absent - len(first)} more' if absent > len(first) else ''} missing")
    planned = [i for d in shards for i in d["plan"]["ids"]]
    if len(planned) != len(set(planned)) and not problems:
        problems.append("the shards' plans overlap")
    matrix = shards[0]["plan"]["matrix"]
    if documents.digest(planned) != matrix["digest"] or len(set(planned)) != matrix["comparisons"]:
        problems.append(f"the shards plan {len(set(planned))} of the matrix's {matrix['comparisons']} comparisons "
                        f"or others")
    return problems


def merge(shards: list, names: list | None = None) -> dict:
    """Merge agreement documents of shards of one run.

    Args:
        shards: the documents.
        names: a label per shard (file names), for the merge section.

    Returns:
        One document with every comparison once, a summary recomputed over all of them, and
        a ``merge`` section: shards, overlaps (identical duplicates), conflicts (same id,
        different record), environment differences and problems (shards missing, given
        twice, not covering the matrix). The merged run passes only when every shard was
        complete, the shards cover the matrix exactly once, nothing conflicts and nothing
        disagrees.

    Raises:
        ValueError: no shards, documents of another schema version, or documents that are
            not shards of one run (different options or matrix).
    """
    if not shards:
        raise ValueError("nothing to merge")
    names = names or [f"shard{i}" for i in range(len(shards))]
    _check_one_run(shards, names)
    shards = [documents.verify(d) for d in shards]
    records: dict = {}
    origin: dict = {}
    overlaps, conflicts = [], []
    for name, doc in zip(names, shards):
        for record in doc["comparisons"]:
            cid = record["id"]
            if cid not in records:
                records[cid], origin[cid] = record, name
            elif _comparable(records[cid]) == _comparable(record):
                overlaps.append({"id": cid, "shards": [origin[cid], name]})
            else:
                conflicts.append({"id": cid, "shards": [origin[cid], name],
                                  "verdicts": [records[cid]["verdict"], record["verdict"]]})
    envs = [json.dumps(d["environment"], sort_keys=True) for d in shards]
    env_diffs = []
    if len(set(envs)) > 1:
        base = shards[0]["environment"]
        for name, doc in zip(names[1:], shards[1:]):
            for key in sorted(set(base) | set(doc["environment"])):
                if base.get(key) != doc["environment"].get(key):
                    env_diffs.append({"shard": name, "key": key, "first": base.get(key), "this": doc["environment"].get(key)})
    interrupted = "; ".join(f"{n}: {d['summary']['interrupted']}" for n, d in zip(names, shards) if d["summary"]["interrupted"])
    problems = _coverage(shards, names)
    problems += [f"{n}: {p}" for n, d in zip(names, shards) for p in d["summary"]["problems"]]
    incomplete = [n for n, d in zip(names, shards) if not d["summary"]["complete"]]
    if incomplete and not interrupted:
        interrupted = f"incomplete shard(s): {', '.join(incomplete)}"
    run = dict(shards[0]["run"], shards=names, shard=None)
    plan = {"ids": sorted({i for d in shards for i in d["plan"]["ids"]}), "shard": None,
            "matrix": shards[0]["plan"]["matrix"]}
    section = {"shards": names, "overlaps": overlaps, "conflicts": conflicts, "environment_differences": env_diffs,
               "problems": problems}
    merged = documents.build(list(records.values()), shards[0]["environment"], run, interrupted=interrupted,
                             plan=plan, problems=problems + ([f"{len(conflicts)} comparison(s) differ between shards"]
                                                             if conflicts else []))
    merged["duration_s"] = sum(d.get("duration_s") or 0 for d in shards)
    merged["merge"] = section
    return merged
