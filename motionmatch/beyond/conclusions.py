"""A plain-words conclusion of a comparison, generated from its numbers (nothing typed in by hand)."""
from __future__ import annotations

import numpy as np

from .compare import ROW_BEST, ROW_CENTER, ROW_NTXENT, ROW_TRIPLET, ROW_WHITEN, ROW_ZERO_SHOT, ComparisonResult


def _fmt(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "n/a"


def conclusion_lines(result: ComparisonResult, target_gain: float = 0.20, encoder_description: str = "") -> list[str]:
    """A plain-words conclusion from the numbers (markdown bullet lines); nothing typed in by hand."""
    k = result.k
    column = f"cross-domain P@{k}"
    zero, best = result.value(ROW_ZERO_SHOT, column), result.value(ROW_BEST, column)
    gain = best - zero
    same_zero, same_best = result.value(ROW_ZERO_SHOT, f"same-domain P@{k}"), result.value(ROW_BEST, f"same-domain P@{k}")
    table = result.table
    single = table.drop(index=[ROW_BEST])
    top_row = single[column].idxmax()
    lines = [f"**Encoder behind every number:** {encoder_description or result.encoder_id}", ""]
    lines.append(f"- **Baseline.** Zero-shot cosine on {result.test_table['group'].nunique()} held-out groups "
                 f"({len(result.test_table)} clips): same-domain P@{k} {_fmt(same_zero)}, cross-domain P@{k} {zero:.3f}.")
    lines.append(f"- **Best combination (chosen on validation, never on test):** {table.loc[ROW_BEST, 'chosen on validation']}: "
                 f"cross-domain P@{k} {best:.3f} [{table.loc[ROW_BEST, column + ' lo']:.3f}, "
                 f"{table.loc[ROW_BEST, column + ' hi']:.3f}], same-domain {_fmt(same_best)}; "
                 f"it adds {table.loc[ROW_BEST, 'ms/query added']:.2f} ms per query and took "
                 f"{table.loc[ROW_BEST, 'fit s']:.1f} s to fit.")
    if not np.isfinite(same_zero):
        per_cell = result.test_table.groupby(["label", "domain"])["group"].nunique()
        held = f"{per_cell.min()}" if per_cell.min() == per_cell.max() else f"{per_cell.min()}-{per_cell.max()}"
        lines.append(f"- **Same-domain is not measurable on this split:** the test side holds {held} "
                     "group(s) per (label, domain), and the query's own group never counts, so no same-domain clip is "
                     "left to find. Use more groups per class and domain (or a larger test_fraction) to measure it.")
    lines.append(f"- **Best single method on test:** {top_row} (cross-domain P@{k} {single.loc[top_row, column]:.3f}); "
                 f"the test numbers are reported, not used to choose.")
    chosen_rows = result.validation[(result.validation["row"] == ROW_BEST) & result.validation["chosen"]]
    if len(chosen_rows):
        val_value = float(chosen_rows.iloc[0][f"val {result.selection} P@{k}"])
        val_zero = float(result.validation[result.validation["row"] == ROW_ZERO_SHOT].iloc[0][f"val {result.selection} P@{k}"])
        lines.append(f"- **Validation against test.** On validation the chosen combination scored {val_value:.3f} against "
                     f"zero-shot's {val_zero:.3f} ({val_value - val_zero:+.3f}); on test the gain is {gain:+.3f}. "
                     f"It was the best of {int((result.validation['row'] == ROW_BEST).sum())} candidates on "
                     f"{result.val_table['group'].nunique()} validation groups, so its validation score is optimistic "
                     "(the winner's curse); the test number is the one to quote.")
    met = gain >= target_gain - 1e-12
    verdict = (f"- **Acceptance (+{target_gain:.2f} absolute cross-domain P@{k} over zero-shot, same encoder):** "
               f"{'MET' if met else 'NOT met'}: {zero:.3f} -> {best:.3f} ({gain:+.3f}).")
    lines.append(verdict)
    if not met:
        reasons = []
        zero_lo, zero_hi = table.loc[ROW_ZERO_SHOT, column + " lo"], table.loc[ROW_ZERO_SHOT, column + " hi"]
        best_lo = table.loc[ROW_BEST, column + " lo"]
        if best_lo <= zero_hi:
            reasons.append(f"the best method's 95% CI [{best_lo:.3f}, ...] overlaps zero-shot's [{zero_lo:.3f}, {zero_hi:.3f}]")
        head_rows = [r for r in (ROW_TRIPLET, ROW_NTXENT) if r in table.index]
        head_gain = max(table.loc[r, column] for r in head_rows) - zero if head_rows else float("nan")
        reasons.append(f"the trained heads move cross-domain P@{k} by {head_gain:+.3f} (fitted on "
                       f"{result.fit_table['group'].nunique()} groups, {len(result.fit_table)} clips)")
        calibration_gain = max(table.loc[ROW_CENTER, column], table.loc[ROW_WHITEN, column]) - zero
        reasons.append(f"calibration moves it by {calibration_gain:+.3f}")
        ceiling = table[column].max()
        reasons.append(f"no method in the table exceeds {ceiling:.3f}, i.e. {ceiling - zero:+.3f} over zero-shot, even "
                       "when judged on test")
        lines.append("  Why not, from the numbers: " + "; ".join(reasons) + ".")
    return lines
