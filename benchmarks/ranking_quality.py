"""Ranking quality: nDCG@10 and interest coverage@5 on a hand-labelled set (issues 5, 14).

    .venv/bin/python benchmarks/ranking_quality.py [--json] [--check] [--data PATH]

The set is ``benchmarks/data/ranking_eval.json``: reader profiles over the 188
shipped sample papers (``digest/papers/data/sample_papers.json``), each with the
interests a reader would type, whether they are ``paraphrased`` (written without
the words the relevant papers use) and graded judgements (3 exactly what they
want, 2 clearly relevant, 1 marginally relevant, unlisted 0). How it was built
is in the file's ``description``.

Every system ranks all papers for every profile; the table gives nDCG@10 per
profile, then the mean over all profiles, over the paraphrased ones, over the
rest, over the tuning part and over the held-out part. ``--json`` prints the
same numbers as JSON.

Held out: every third profile of the file (the 3rd, 6th, 9th ...: index % 3 ==
2, fixed by position, see :func:`held_out`). No parameter in
``config/ranking.toml`` may be tuned on them; their figures are reported apart
as the honest estimate. (The parameters chosen before issue 14 were chosen on
the whole set, these profiles included.)

Readers of several interests (issue 14): a reader built from 2 or 3 labelled
profiles whose judged papers do not overlap at all (unrelated topics), each
profile's interests written as one interest (its commas dropped), the interests
joined by commas as a reader types them. 30 of them, deterministic: 10 pairs and
10 triples from the tuning part, 5 pairs and 5 triples from the held-out part,
evenly spaced over the combinations in order (:func:`mixed_readers`). Their
judgements are the union of their profiles' (disjoint). Interest coverage@5 is
the share of a reader's interests (each with at least one paper graded 2 or
more that day, which every profile has) served by at least one paper graded 2
or more in the top 5; "all served" is the share of readers whose every interest
is. They get nDCG@10 too.

Systems are functions from a profile to canonical ids, best first. The
baseline is plain TF-IDF (scikit-learn defaults plus English stop words, fitted
on title + abstract of the papers; cosine similarity to the interests text).
The project's rankers are added in ``digest_rankers()``.

``--check`` validates the set and, for every paraphrased profile, lists the
content words of its interests that also occur in the titles of its grade-3
papers (exactly, or sharing a five-letter prefix), so that a reader of the file
can see the paraphrases do not lean on the papers' own words.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVAL_SET = ROOT / "benchmarks/data/ranking_eval.json"
PAPERS = ROOT / "digest/papers/data/sample_papers.json"
K = 10
COVERAGE_K = 5
# A paper this grade or above serves an interest.
SERVES = 2

Paper = dict[str, Any]
Profile = dict[str, Any]
System = Callable[[Profile], list[str]]


def load_papers(path: Path = PAPERS) -> list[Paper]:
    papers: list[Paper] = json.loads(path.read_text(encoding="utf-8"))["papers"]
    return papers


def load_profiles(path: Path = EVAL_SET) -> list[Profile]:
    profiles: list[Profile] = json.loads(path.read_text(encoding="utf-8"))["profiles"]
    return profiles


def held_out(index: int) -> bool:
    """Every third profile of the file, by position: never used to tune a parameter."""
    return index % 3 == 2


def _one_interest(text: str) -> str:
    """A profile's interests as one interest (its separators dropped)."""
    return " ".join(re.sub(r"[,;\n]", " ", text).split())


def mixed_readers(profiles: Sequence[Profile]) -> list[Profile]:
    """Readers of 2-3 unrelated interests built from the labelled profiles (see the
    module docstring): 10 pairs + 10 triples from the tuning part, 5 + 5 held out."""
    import itertools

    judged = [set(p["judgements"]) for p in profiles]

    def unrelated(combo: tuple[int, ...]) -> bool:
        return all(not judged[a] & judged[b] for a, b in itertools.combinations(combo, 2))

    readers: list[Profile] = []
    for is_held_out, per_size in ((False, 10), (True, 5)):
        part = [i for i in range(len(profiles)) if held_out(i) is is_held_out]
        for size in (2, 3):
            combos = [c for c in itertools.combinations(part, size) if unrelated(c)]
            step = len(combos) / per_size
            for n in range(min(per_size, len(combos))):
                members = [profiles[i] for i in combos[int(n * step)]]
                readers.append(
                    {
                        "name": "+".join(m["name"] for m in members),
                        "interests": ", ".join(_one_interest(m["interests"]) for m in members),
                        "paraphrased": any(m["paraphrased"] for m in members),
                        "held_out": is_held_out,
                        "judgements": {
                            pid: g for m in members for pid, g in m["judgements"].items()
                        },
                        "parts": [
                            [pid for pid, g in m["judgements"].items() if g >= SERVES]
                            for m in members
                        ],
                    }
                )
    return readers


def coverage_at_k(ranked: Sequence[str], parts: Sequence[Sequence[str]], k: int) -> float:
    """Share of the interests (each a list of the papers that serve it; those with
    none are not counted) served by at least one paper in the top k."""
    top = set(ranked[:k])
    present = [set(p) for p in parts if p]
    if not present:
        return 1.0
    return sum(bool(p & top) for p in present) / len(present)


# --- metric --------------------------------------------------------------------


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains in rank order (rank 1 discounted by log2(2))."""
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], judgements: Mapping[str, int], k: int = K) -> float:
    """nDCG@k with gain 2^grade - 1 and a log2 discount.

    The ideal DCG is that of the k best judged papers of the profile; a ranking
    shorter than k simply gains nothing at the missing ranks. Checked against
    scikit-learn, which takes the gains themselves as ``y_true``:

    >>> from sklearn.metrics import ndcg_score
    >>> judged = {"a": 3, "b": 2, "c": 1, "d": 2}
    >>> ranked = ["c", "x", "b", "a", "y", "d"]
    >>> ours = ndcg_at_k(ranked, judged, k=4)
    >>> docs = ranked + ["z"]
    >>> y_true = [[2 ** judged.get(d, 0) - 1 for d in docs]]
    >>> y_score = [[len(docs) - i for i in range(len(docs))]]
    >>> theirs = float(ndcg_score(y_true, y_score, k=4))
    >>> round(ours, 12) == round(theirs, 12), round(ours, 4)
    (True, 0.5095)
    """
    ideal = dcg(sorted((2.0**g - 1 for g in judgements.values()), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([2.0 ** judgements.get(pid, 0) - 1 for pid in ranked[:k]]) / ideal


def _check_metric_against_sklearn() -> None:
    """The docstring example plus a tie-free random case, against sklearn.metrics.ndcg_score."""
    import doctest

    import numpy as np
    from sklearn.metrics import ndcg_score

    finder = doctest.DocTestFinder()
    for test in finder.find(ndcg_at_k, "ndcg_at_k", globs={"ndcg_at_k": ndcg_at_k}):
        assert doctest.DocTestRunner().run(test).failed == 0

    rng = np.random.default_rng(5)
    ids = [f"p{i}" for i in range(40)]
    grades = rng.integers(0, 4, size=len(ids))
    judged = {pid: int(g) for pid, g in zip(ids, grades, strict=True) if g > 0}
    scores = rng.permutation(len(ids)).astype(float)
    ranked = [ids[i] for i in np.argsort(-scores)]
    for k in (1, 5, 10, 40):
        theirs = float(ndcg_score([2.0**grades - 1], [scores], k=k))
        assert math.isclose(ndcg_at_k(ranked, judged, k), theirs, abs_tol=1e-12), k


# --- systems -------------------------------------------------------------------


def tfidf_baseline(papers: Sequence[Paper]) -> System:
    """Plain TF-IDF: default TfidfVectorizer with English stop words over title + abstract."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    ids = [p["canonical_id"] for p in papers]
    vectorizer = TfidfVectorizer(stop_words="english")
    matrix = vectorizer.fit_transform([f"{p['title']} {p['abstract']}" for p in papers])

    def rank(profile: Profile) -> list[str]:
        scores = cosine_similarity(vectorizer.transform([profile["interests"]]), matrix)[0]
        # Stable: papers with equal scores (all the zeros) keep the file's order.
        order = sorted(range(len(ids)), key=lambda i: -scores[i])
        return [ids[i] for i in order]

    return rank


def digest_rankers(papers: Sequence[Paper]) -> dict[str, System]:
    """The project's rankers over the same papers, each as it selects a digest's top 10.

    ``digest`` is the whole selection (relevance blended with trending from the
    seeds' upvotes, the relevance threshold, near-duplicates removed), lexical
    alone and with semantic matching when the ``semantic`` extra is installed;
    ``relevance only`` drops the trending blend and the threshold, to show what
    the blend costs on a judgement of pure relevance.
    """
    from datetime import UTC, datetime

    from config.ranking import load_ranking_config
    from digest.papers.models import Paper as PaperRow
    from digest.ranking.candidates import Candidates
    from digest.ranking.profiles import Profile as ReaderProfile
    from digest.ranking.semantic import load_embedder
    from digest.ranking.trending import Trend

    now = datetime(2026, 11, 23, tzinfo=UTC)
    rows = [
        PaperRow(
            id=i,
            canonical_id=p["canonical_id"],
            title=p["title"],
            abstract=p["abstract"],
            authors=[],
            categories=[],
            first_seen_at=now,
        )
        for i, p in enumerate(papers)
    ]
    trends = [
        Trend(upvotes=p["upvotes"], gained=None) if p.get("upvotes") is not None else Trend()
        for p in papers
    ]
    config = load_ranking_config()
    pure = config.model_copy(
        update={
            "selection": config.selection.model_copy(
                update={"relevance_weight": 1.0, "trending_weight": 0.0, "min_relevance": 0.0}
            )
        }
    )
    embedder = load_embedder("auto")
    systems: dict[str, System] = {}
    variants = [("lexical", None)] + ([("semantic", embedder)] if embedder else [])
    for mode, model in variants:
        vectors = (
            model.embed([f"{r.title}. {r.abstract}" for r in rows]) if model is not None else None
        )
        for label, chosen in (("", config), (" relevance only", pure)):
            candidates = Candidates.build(rows, trends, now=now, config=chosen, vectors=vectors)
            systems[f"digest {mode}{label}"] = _digest_system(candidates, model, ReaderProfile)
    return systems


def _digest_system(candidates: Any, embedder: Any, profile_type: Any) -> System:
    from digest.ranking.selection import select_for

    def rank(profile: Profile) -> list[str]:
        reader = profile_type(interests=profile["interests"], limit=K)
        choices = select_for(candidates, [reader], embedder=embedder).of(0)
        return [candidates.papers[c.position].canonical_id for c in choices]

    return rank


def all_systems(papers: Sequence[Paper]) -> dict[str, System]:
    return {"tfidf-baseline": tfidf_baseline(papers), **digest_rankers(papers)}


# --- evaluation ----------------------------------------------------------------


def evaluate(
    profiles: Sequence[Profile], systems: Mapping[str, System], k: int = K
) -> dict[str, Any]:
    rows = []
    for index, profile in enumerate(profiles):
        scores = {
            name: ndcg_at_k(system(profile), profile["judgements"], k)
            for name, system in systems.items()
        }
        rows.append(
            {
                "profile": profile["name"],
                "paraphrased": profile["paraphrased"],
                "held_out": held_out(index),
                "relevant": sum(g >= 2 for g in profile["judgements"].values()),
                "ndcg": scores,
            }
        )
    groups = {
        "all": rows,
        "paraphrased": [r for r in rows if r["paraphrased"]],
        "not paraphrased": [r for r in rows if not r["paraphrased"]],
        "tuning": [r for r in rows if not r["held_out"]],
        "held out": [r for r in rows if r["held_out"]],
    }
    means = {
        group: {name: fmean(r["ndcg"][name] for r in members) for name in systems}
        for group, members in groups.items()
        if members
    }
    mixed = []
    for reader in mixed_readers(profiles):
        ranked = {name: system(reader) for name, system in systems.items()}
        mixed.append(
            {
                "reader": reader["name"],
                "interests": reader["interests"],
                "held_out": reader["held_out"],
                "ndcg": {n: ndcg_at_k(r, reader["judgements"], k) for n, r in ranked.items()},
                "coverage": {
                    n: coverage_at_k(r, reader["parts"], COVERAGE_K) for n, r in ranked.items()
                },
            }
        )
    mixed_groups = {
        "tuning": [m for m in mixed if not m["held_out"]],
        "held out": [m for m in mixed if m["held_out"]],
    }
    mixed_means = {
        group: {
            name: {
                "ndcg": fmean(m["ndcg"][name] for m in members),
                "coverage": fmean(m["coverage"][name] for m in members),
                "all_served": fmean(m["coverage"][name] == 1.0 for m in members),
            }
            for name in systems
        }
        for group, members in mixed_groups.items()
        if members
    }
    return {
        "metric": f"nDCG@{k}, gain 2^grade-1, log2 discount; interest coverage@{COVERAGE_K}",
        "profiles": rows,
        "counts": {group: len(members) for group, members in groups.items()},
        "mean": means,
        "mixed_readers": mixed,
        "mixed_counts": {group: len(members) for group, members in mixed_groups.items()},
        "mixed_mean": mixed_means,
    }


def print_table(result: dict[str, Any]) -> None:
    names = list(result["mean"]["all"])
    width = max(len(r["profile"]) for r in result["profiles"]) + 2
    cols = [max(len(n), 6) + 2 for n in names]
    print(result["metric"])
    header = f"{'profile':<{width}}{'para':>5}{'held':>5}{'rel':>5}" + "".join(
        f"{n:>{c}}" for n, c in zip(names, cols, strict=True)
    )
    print(header)
    print("-" * len(header))
    for r in result["profiles"]:
        cells = "".join(f"{r['ndcg'][n]:>{c}.3f}" for n, c in zip(names, cols, strict=True))
        flag = "yes" if r["paraphrased"] else ""
        held = "yes" if r["held_out"] else ""
        print(f"{r['profile']:<{width}}{flag:>5}{held:>5}{r['relevant']:>5}{cells}")
    print("-" * len(header))
    for group, means in result["mean"].items():
        label = f"nDCG@10, {group} ({result['counts'][group]})"
        cells = "".join(f"{means[n]:>{c}.3f}" for n, c in zip(names, cols, strict=True))
        print(f"{label:<{width + 15}}{cells}")
    print()
    print(f"Readers of 2-3 unrelated interests: coverage@{COVERAGE_K} per reader")
    rwidth = max(len(m["reader"]) for m in result["mixed_readers"]) + 2
    print(
        f"{'reader':<{rwidth}}{'held':>5}"
        + "".join(f"{n:>{c}}" for n, c in zip(names, cols, strict=True))
    )
    for m in result["mixed_readers"]:
        held = "yes" if m["held_out"] else ""
        cells = "".join(f"{m['coverage'][n]:>{c}.2f}" for n, c in zip(names, cols, strict=True))
        print(f"{m['reader']:<{rwidth}}{held:>5}{cells}")
    lines = [
        ("nDCG@10 all", result["mean"]["all"]),
        ("nDCG@10 paraphrased", result["mean"]["paraphrased"]),
        ("nDCG@10 tuning", result["mean"]["tuning"]),
        ("nDCG@10 held out", result["mean"]["held out"]),
    ]
    for group, means in result["mixed_mean"].items():
        count = result["mixed_counts"][group]
        lines += [
            (f"mixed {group} ({count}) nDCG@10", {n: v["ndcg"] for n, v in means.items()}),
            (f"mixed {group} coverage@{COVERAGE_K}", {n: v["coverage"] for n, v in means.items()}),
            (f"mixed {group} all served", {n: v["all_served"] for n, v in means.items()}),
        ]
    label_width = max(len(label) for label, _ in lines) + 2
    print()
    print(
        f"{'summary':<{label_width}}"
        + "".join(f"{n:>{c}}" for n, c in zip(names, cols, strict=True))
    )
    for label, values in lines:
        cells = "".join(f"{values[n]:>{c}.3f}" for n, c in zip(names, cols, strict=True))
        print(f"{label:<{label_width}}{cells}")


# --- --check ---------------------------------------------------------------------

WORD = re.compile(r"[a-z][a-z0-9]*")


def content_words(text: str) -> list[str]:
    """Lower-cased words of a text minus scikit-learn's English stop words, in order, once."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    seen: dict[str, None] = {}
    for word in WORD.findall(text.lower()):
        if word not in ENGLISH_STOP_WORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)


def _same_word(a: str, b: str) -> bool:
    """Equal, or (both at least five letters long) sharing their first five letters."""
    return a == b or (len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5])


def overlap(profile: Profile, texts: Mapping[str, str]) -> dict[str, list[str]]:
    """Interest words found in the texts of the grade-3 papers: word -> matching text words."""
    top = [texts[pid] for pid, g in profile["judgements"].items() if g == 3]
    text_words = {w for t in top for w in content_words(t)}
    found: dict[str, list[str]] = {}
    for word in content_words(profile["interests"]):
        matches = sorted(w for w in text_words if _same_word(word, w))
        if matches:
            found[word] = matches
    return found


def _overlap_line(profile: Profile, found: Mapping[str, list[str]]) -> str:
    shown = ", ".join(w if m == [w] else f"{w}->{'/'.join(m)}" for w, m in found.items())
    total = len(content_words(profile["interests"]))
    return f"  {profile['name']:<30} {len(found)}/{total}  {shown or '-'}"


def validate(profiles: Sequence[Profile], papers: Sequence[Paper]) -> list[str]:
    """Problems with the set's shape: unknown ids, bad grades, too few relevant papers."""
    known = {p["canonical_id"] for p in papers}
    problems = []
    names = [p["name"] for p in profiles]
    if len(set(names)) != len(names):
        problems.append("profile names are not unique")
    if len(profiles) < 16 or sum(p["paraphrased"] for p in profiles) < 7:
        problems.append("need at least 16 profiles, 7 of them paraphrased")
    for p in profiles:
        for field, kind in (
            ("name", str),
            ("interests", str),
            ("note", str),
            ("paraphrased", bool),
        ):
            if not isinstance(p.get(field), kind):
                problems.append(f"{p.get('name')}: {field} missing or not {kind.__name__}")
        unknown = [pid for pid in p["judgements"] if pid not in known]
        if unknown:
            problems.append(f"{p['name']}: unknown ids {unknown}")
        if any(g not in (1, 2, 3) for g in p["judgements"].values()):
            problems.append(f"{p['name']}: grades must be 1, 2 or 3")
        if sum(g >= 2 for g in p["judgements"].values()) < 4:
            problems.append(f"{p['name']}: fewer than 4 papers graded 2 or more")
    return problems


def check(profiles: Sequence[Profile], papers: Sequence[Paper]) -> int:
    _check_metric_against_sklearn()
    print("nDCG@k agrees with sklearn.metrics.ndcg_score")
    problems = validate(profiles, papers)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    judged = sum(len(p["judgements"]) for p in profiles)
    print(
        f"{len(profiles)} profiles ({sum(p['paraphrased'] for p in profiles)} paraphrased), "
        f"{judged} judgements over {len(papers)} papers"
    )
    titles = {p["canonical_id"]: p["title"] for p in papers}
    abstracts = {p["canonical_id"]: p["abstract"] for p in papers}
    print("\nContent words of the interests that also occur in the titles of the profile's")
    print("grade-3 papers (exact, or a shared five-letter prefix shown as word->title word):")
    for group, wanted in (("paraphrased", True), ("not paraphrased, for contrast", False)):
        print(f"\n{group}:")
        for p in (p for p in profiles if p["paraphrased"] is wanted):
            print(_overlap_line(p, overlap(p, titles)))
    print("\nParaphrased profiles, for information: the same words in those papers' abstracts:")
    for p in (p for p in profiles if p["paraphrased"]):
        print(_overlap_line(p, overlap(p, abstracts)))
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help="validate the set, show title overlap")
    parser.add_argument("--data", type=Path, default=EVAL_SET, help="evaluation set (JSON)")
    args = parser.parse_args()
    papers = load_papers()
    profiles = load_profiles(args.data)
    if args.check:
        sys.exit(check(profiles, papers))
    problems = validate(profiles, papers)
    if problems:
        sys.exit("evaluation set is invalid (see --check):\n" + "\n".join(problems))
    result = evaluate(profiles, all_systems(papers))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
