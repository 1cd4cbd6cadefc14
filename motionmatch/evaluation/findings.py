"""The evaluation suite behind notebook 05 and ``motionmatch evaluate``.

It runs every protocol of :mod:`motionmatch.evaluation.retrieval` on one embeddings table and returns
the tables a findings report shows; :func:`write_findings` saves them as CSV and JSON.
Nothing here computes a metric itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from . import diagnostics, retrieval
from .coverage import no_person_note, no_person_table, rankable
from ..errors import ParameterError
from ..validation import check_choice

HEADLINE_METRICS = ("P@10", "mAP", "HitRate@1", "HitRate@5", "HitRate@10", "nDCG@10")
PROTOCOL_CHOICES = ("all", "leave-one-out", "domains", "train-test")
DOMAIN_KINDS = ("same-domain", "cross-domain")
# the original notes' P@10 for V-JEPA 2 on UCF101, shown next to this run's (they are claims under test, not results)
NOTES_P10 = {"same-domain": 0.65, "cross-domain": 0.25}


@dataclass
class Findings:
    """Everything the evaluation report shows, computed once."""

    encoder_id: str
    n_clips: int
    n_videos: int
    headline: pd.DataFrame  # one row per (protocol, exclusion): mean and 95% CI per metric
    exclusion: pd.DataFrame | None = None  # leave-one-out with exclude none / video / group
    domains: pd.DataFrame | None = None  # every (query domain, gallery domain) pair
    per_class: pd.DataFrame | None = None  # leave-one-out, group excluded, by label
    train_test: dict[str, retrieval.RetrievalResult] = field(default_factory=dict)  # clip / video level
    scores: dict[str, Any] | None = None  # score_statistics
    confusion: pd.DataFrame | None = None
    confused_examples: pd.DataFrame | None = None
    hubness: dict[str, Any] | None = None
    pooled_domains: dict[str, retrieval.RetrievalResult] = field(default_factory=dict)  # same- / cross-domain, pooled
    no_person: pd.DataFrame | None = None  # clips with coverage 0, left out of every ranking (pose channel)

    @property
    def n_no_person(self) -> int:
        """Clips left out because the encoder saw no person in them (coverage 0)."""
        return 0 if self.no_person is None else len(self.no_person)

    @property
    def notes(self) -> list[str]:
        """Plain-words notes every report of these findings shows (the clips left out)."""
        note = no_person_note(self.n_no_person, self.n_clips)
        return [note] if note else []

    def leakage(self, metric: str = "P@10") -> float:
        """Near-duplicate leakage: leave-one-out ``metric`` excluding only the query's video minus excluding its group."""
        if self.exclusion is None:
            raise ParameterError("leakage needs the leave-one-out protocols; run_findings(protocol='all' or 'leave-one-out')")
        return float(self.exclusion.loc["video", metric] - self.exclusion.loc["group", metric])

    def domain_comparison(self, metric: str = "P@10") -> pd.DataFrame:
        """Same-domain against cross-domain ``metric`` pooled over queries (group excluded): the mean, its 95% CI,
        mAP and the number of queries per row, and the notes' value when ``metric`` is P@10 (notebook 04)."""
        if not self.pooled_domains:
            raise ParameterError("the domain comparison needs a table with more than one domain and "
                                 "run_findings(protocol='all' or 'domains')")
        rows = {}
        for kind in DOMAIN_KINDS:
            summary = self.pooled_domains[kind].summary.loc["all"]
            if metric not in summary:
                raise ParameterError(f"no metric {metric!r}; available: {self.pooled_domains[kind].metrics}")
            rows[kind] = {metric: summary[metric], "95% CI low": summary[f"{metric}_lo"],
                          "95% CI high": summary[f"{metric}_hi"], "mAP": summary["mAP"],
                          "queries": int(summary["n_queries"])}
            if metric == "P@10":
                rows[kind]["notes' value"] = NOTES_P10[kind]
        return pd.DataFrame(rows).T


@dataclass(frozen=True)
class BandShares:
    """The notes' claim that "most scores sit at 0.95-0.98", as two shares of :func:`score_statistics`' output."""

    low: float
    high: float
    all_pairs: float  # share of every allowed pair's cosine in [low, high]
    top_k: int
    top: float  # share of each query's top-k cosines in [low, high]


def band_shares(stats: dict[str, Any]) -> BandShares:
    """The in-band shares of :func:`motionmatch.evaluation.diagnostics.score_statistics`' output, whatever band and
    top-k it was computed with (its keys name both: ``frac_in_095_098``, ``top10_frac_in_095_098``)."""
    lo, hi = stats["band"]
    band_key = next(k for k in stats if k.startswith("frac_in_"))
    top_key = next(k for k in stats if k.startswith("top") and "_frac_in_" in k)
    return BandShares(float(lo), float(hi), float(stats[band_key]), int(top_key[len("top"):top_key.index("_")]),
                      float(stats[top_key]))


def score_values(stats: dict[str, Any]) -> dict[str, float]:
    """The scalar score statistics a report records, under names that do not depend on the band:
    relevant / irrelevant mean, gap, AUC, overlap, ``frac_in_band`` and ``top<k>_frac_in_band``."""
    shares = band_shares(stats)
    values = {name: float(stats[name]) for name in ("relevant_mean", "irrelevant_mean", "gap", "auc", "overlap")}
    return {**values, "frac_in_band": shares.all_pairs, f"top{shares.top_k}_frac_in_band": shares.top}


def score_summary(stats: dict[str, Any]) -> pd.DataFrame:
    """The score-statistics table notebooks 04 and 05 show, from :func:`motionmatch.evaluation.diagnostics.score_statistics`."""
    shares = band_shares(stats)
    lo, hi = shares.low, shares.high
    return pd.Series({
        "relevant pairs: mean cosine": stats["relevant_mean"], "irrelevant pairs: mean cosine": stats["irrelevant_mean"],
        "gap (relevant - irrelevant)": stats["gap"], "ROC AUC (relevant vs irrelevant)": stats["auc"],
        "histogram overlap (1 = identical)": stats["overlap"],
        f"share of all pair scores in [{lo:.2f}, {hi:.2f}]": shares.all_pairs,
        f"share of top-{shares.top_k} scores in [{lo:.2f}, {hi:.2f}]": shares.top,
    }, name="value").to_frame()


def _headline_row(name: str, exclude: str, summary: pd.DataFrame | pd.Series) -> dict:
    row = summary.iloc[0] if isinstance(summary, pd.DataFrame) else summary
    out = {"protocol": name, "exclude": exclude, "queries": int(row["n_queries"])}
    for metric in HEADLINE_METRICS:
        if metric in row:
            out[metric] = row[metric]
            out[f"{metric} 95% CI"] = f"[{row[f'{metric}_lo']:.3f}, {row[f'{metric}_hi']:.3f}]"
    return out


def run_findings(table: pd.DataFrame, protocol: str = "all", n_boot: int = 1000, seed: int = 0,
                 progress: bool = True) -> Findings:
    """Run the chosen protocols (``all`` = every one the table supports).

    Clips with coverage 0 (the pose channel saw no person) are left out first (:mod:`.coverage`), as queries and
    in the gallery; :attr:`Findings.no_person` lists them and :attr:`Findings.notes` says so."""
    check_choice(protocol, "protocol", PROTOCOL_CHOICES)
    if len(table) == 0:
        raise ParameterError("the embeddings table is empty — extract embeddings first")
    n_clips, n_videos = len(table), table["video_path"].nunique()
    table, left_out = rankable(table)
    encoders = sorted(set(table["encoder_id"])) if "encoder_id" in table else ["unknown"]
    if len(encoders) != 1:
        raise ParameterError(f"the table mixes encoders {encoders}; evaluate one encoder at a time")
    has_split = "split" in table and {"train", "test"} <= set(table["split"].astype(str))
    steps = []
    if protocol in ("all", "leave-one-out"):
        steps += ["exclusion", "per_class", "scores", "confusion", "hubness"]
    if protocol in ("all", "domains") and table["domain"].nunique() > 1:
        steps += ["domains"]
    if protocol == "train-test" and not has_split:
        raise ParameterError("protocol train-test needs a split column with 'train' and 'test' "
                             "(load the dataset with its official split files)")
    if protocol in ("all", "train-test") and has_split:
        steps += ["train_test"]

    found = Findings(encoder_id=encoders[0], n_clips=n_clips, n_videos=n_videos,
                     headline=pd.DataFrame(), no_person=no_person_table(left_out) if len(left_out) else None)
    rows = []
    for step in tqdm(steps, desc="evaluate", disable=not progress):
        if step == "exclusion":
            found.exclusion = retrieval.exclusion_comparison(table, n_boot=n_boot, seed=seed)
            rows += [_headline_row("leave-one-out", ex, found.exclusion.loc[[ex]]) for ex in found.exclusion.index]
        elif step == "per_class":
            found.per_class = retrieval.per_class(retrieval.leave_one_out(table, "group", n_boot=n_boot, seed=seed),
                                                 n_boot=n_boot, seed=seed)
        elif step == "scores":
            found.scores = diagnostics.score_statistics(table, exclude="group", seed=seed)
        elif step == "confusion":
            found.confusion = diagnostics.confusion_top1(table, exclude="group")
            found.confused_examples = diagnostics.confused_examples(table, n=5, exclude="group")
        elif step == "hubness":
            found.hubness = diagnostics.hubness(table, k=10, exclude="group")
        elif step == "domains":
            found.domains = retrieval.same_vs_cross_domain(table, exclude="group", n_boot=n_boot, seed=seed)
            for kind in DOMAIN_KINDS:
                result = retrieval.evaluate_retrieval(table, protocol=kind, exclude="group", n_boot=n_boot, seed=seed)
                found.pooled_domains[kind] = result
                rows.append(_headline_row(kind, "group", result.summary))
        elif step == "train_test":
            for level in ("clip", "video"):
                result = retrieval.train_test_retrieval(table, level=level, n_boot=n_boot, seed=seed)
                found.train_test[level] = result
                rows.append(_headline_row(f"train-test ({level} level)", "video", result.summary))
    found.headline = pd.DataFrame(rows)
    return found


def write_findings(found: Findings, out_dir: str | Path) -> list[Path]:
    """CSV per table and one JSON with everything; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    found.headline.to_csv(out / "headline.csv", index=False)
    written.append(out / "headline.csv")
    for name in ("exclusion", "domains", "per_class", "confusion", "confused_examples", "no_person"):
        frame = getattr(found, name)
        if frame is not None:
            frame.to_csv(out / f"{name}.csv")
            written.append(out / f"{name}.csv")
    if found.hubness is not None:
        found.hubness["hubs"].to_csv(out / "hubs.csv", index=False)
        written.append(out / "hubs.csv")
    for level, result in found.train_test.items():
        written += retrieval.write_results(result, out, name=f"train_test_{level}")
    summary = {
        "encoder_id": found.encoder_id, "n_clips": found.n_clips, "n_videos": found.n_videos,
        "n_no_person": found.n_no_person, "notes": found.notes,
        "headline": retrieval.results_to_json(found.headline),
        "score_statistics": retrieval.results_to_json(found.scores) if found.scores else None,
        "hubness": retrieval.results_to_json(found.hubness) if found.hubness else None,
    }
    (out / "findings.json").write_text(json.dumps(summary, indent=2))
    written.append(out / "findings.json")
    return written


def evaluate(embeddings_dir: str | Path = "", protocol: str = "all", n_boot: int = 1000, seed: int = 0,
             out_dir: str | Path = "") -> Findings:
    """Every retrieval protocol the run in ``embeddings_dir`` supports (config's folder when empty), with 95%
    bootstrap CIs, written to ``out_dir`` (config's ``evaluation_dir`` when empty); ``motionmatch evaluate``."""
    from .. import config
    from ..table import load_embeddings

    found = run_findings(load_embeddings(config.setting("embeddings_dir", embeddings_dir)), protocol=protocol,
                         n_boot=n_boot, seed=seed)
    write_findings(found, config.setting("evaluation_dir", out_dir))
    return found


def format_headline(found: Findings) -> str:
    """The headline table as fixed-width text for the terminal."""
    columns = ["protocol", "exclude", "queries"] + [c for m in ("P@10", "mAP", "HitRate@1", "HitRate@5")
                                                     for c in (m, f"{m} 95% CI") if c in found.headline]
    text = found.headline[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}")
    return "\n".join([text, *(f"note: {note}" for note in found.notes)])


__all__ = ["HEADLINE_METRICS", "PROTOCOL_CHOICES", "DOMAIN_KINDS", "NOTES_P10", "Findings", "BandShares", "band_shares",
           "score_values", "score_summary", "run_findings", "write_findings", "evaluate", "format_headline"]
