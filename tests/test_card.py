"""The model card (model/card.py): every result in it comes from the committed reports."""

from __future__ import annotations

import json
from pathlib import Path

from model import card

REPORTS = Path(card.HERE) / "reports"


def test_the_committed_card_is_what_the_reports_render(tmp_path: Path) -> None:
    """model/MODEL_CARD.md is current: rendering it again from model/reports gives the same text,
    with the headline's figures."""
    out = tmp_path / "card.md"
    card.main(["--out", str(out)])
    text = out.read_text()
    assert text == (Path(card.HERE) / "MODEL_CARD.md").read_text(), "run `python -m model.card`"
    m = json.loads((REPORTS / "loco_specmon.json").read_text())["mean_over_corpora"]
    assert f"| {m['balanced_accuracy']:.3f} | {m['min_balanced_accuracy']:.3f} | {m['roc_auc']:.3f} |" in text


def test_a_row_not_adopted_says_what_it_changed() -> None:
    def rep(ba: float, low: float, auc: float, worse_auc: float) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": low,
                                      "roc_auc": auc},
                "conditioned_mean_over_corpora": {"roc_auc": worse_auc}}

    shipped = rep(0.63, 0.52, 0.73, 0.68)
    rows = [("shipped recipe", shipped),
            ("a wider head (not adopted: branch x)", rep(0.62, 0.50, 0.74, 0.70))]
    note = card.not_adopted_note(shipped, rows)
    assert '"a wider head"' in note and "the mean AUC by +0.010" in note
    assert "balanced accuracy by -0.010" in note and note.endswith("the mean balanced accuracy fell.")
    rows[1] = ("a narrower head (not adopted)", rep(0.64, 0.52, 0.72, 0.68))
    assert card.not_adopted_note(shipped, rows).endswith(
        "the mean AUC fell and the worse recording's AUC did not rise.")
    assert card.not_adopted_note(shipped, rows[:1]) == ""
    # rows that trained their own networks also say whether validation would have told the same
    for r, vals in ((shipped, {"a": 0.80, "b": 0.70}), (rows[1][1], {"a": 0.75, "b": 0.71})):
        r["per_corpus"] = {c: {"fit": {"val_auc": v}} for c, v in vals.items()}
    assert card.not_adopted_note(shipped, rows).endswith(
        "Its kept networks' validation AUC changed by -0.020 on average (lower in 1 of 2 folds).")
    rows[1][1]["per_corpus"]["a"]["fit"]["network_from"] = "earlier"  # the same networks: no figure
    rows[1][1]["per_corpus"]["b"]["fit"]["network_from"] = "earlier"
    assert card.not_adopted_note(shipped, rows).endswith("did not rise.")
    # ... and rows with heads, how the heads' fused validation AUC moved (a head screen on the same
    # networks: validation's verdict beside the unseen corpora's)
    for r, vals in ((shipped, {"a": 0.80, "b": 0.70}), (rows[1][1], {"a": 0.81, "b": 0.72})):
        for c, v in vals.items():
            r["per_corpus"][c]["fit"]["stats_head"] = {"val_auc_fused": v}
    assert card.not_adopted_note(shipped, rows).endswith(
        "did not rise. Its heads' fused AUC on their folds' validation speakers changed by +0.015 on "
        "average (lower in 0 of 2 folds).")


def test_a_network_alone_row_not_adopted_is_compared_with_the_network_alone() -> None:
    def rep(ba: float, auc: float, head: bool) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": 0.5,
                                      "roc_auc": auc},
                "conditioned_mean_over_corpora": {"roc_auc": auc}, "recipe": {"stats_head": head}}

    shipped = rep(0.63, 0.73, True)
    rows = [("shipped recipe", shipped), ("network alone", rep(0.59, 0.63, False)),
            ("network alone, warped (not adopted)", rep(0.60, 0.62, False))]
    note = card.not_adopted_note(shipped, rows)
    assert 'against the row "network alone"' in note and "the mean AUC by -0.010" in note
    # ... and, of the network-alone rows, with one whose threshold came by the same rule
    rows[1][1]["recipe"]["threshold_rule"] = "pooled"
    rows[2][1]["recipe"]["threshold_rule"] = "corpus_mean"
    rows.insert(2, ("network alone, rerun", {**rep(0.58, 0.64, False),
                                             "recipe": {"stats_head": False,
                                                        "threshold_rule": "corpus_mean"}}))
    note = card.not_adopted_note(shipped, rows)
    assert 'against the row "network alone, rerun"' in note and "the mean AUC by -0.020" in note


def test_a_row_that_passes_but_is_not_shipped_says_so_and_validation_says_why() -> None:
    def rep(ba: float, auc: float, worse_auc: float) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": 0.5,
                                      "roc_auc": auc},
                "conditioned_mean_over_corpora": {"roc_auc": worse_auc}}

    shipped = rep(0.63, 0.73, 0.68)
    rows = [("shipped recipe", shipped), ("a head (not shipped)", rep(0.64, 0.74, 0.69))]
    assert card.not_adopted_note(shipped, rows).endswith("it would be adopted.")
    rows[1] = ("a head (not shipped)", rep(0.64, 0.72, 0.69))
    assert card.not_adopted_note(shipped, rows).endswith("it fails: the mean AUC fell.")

    def train(form: str | None, fused: float, network: str = "n1") -> dict:
        head = {"C": 0.1, "grid": [{"C": 0.01, "val_auc_fused": 0.9, "val_auc_head": 0.9,
                                    "val_auc_fused_unseen_corpus": 0.9},
                                   {"C": 0.1, "val_auc_fused": fused, "val_auc_head": 0.7,
                                    "val_auc_fused_unseen_corpus": 0.65}]}
        if form:
            head["form"] = form
        return {"fit": {"stats_head": head}, "minutes": 19.0, "peak_rss_mb": 6000,
                "model_sha256": {"specmon.tflite": network}}

    assert card.refit_note(train(None, 0.80), None) == ""
    note = card.refit_note(train(None, 0.80), train("multinomial", 0.79))
    # the chosen C's row, not the best
    assert "0.790 against the prosody recipe's linear head's 0.800" in note
    assert note.endswith("prefers the linear head by 3 of these 3 figures, so the multinomial head "
                         "is not shipped.")
    assert card.refit_note(train(None, 0.80), train("multinomial", 0.81)).endswith(
        "prefers the multinomial head by 1 of these 3 figures.")
    # a refit of another network than the shipped one (a stale report) says nothing
    assert card.refit_note(train(None, 0.80), train("multinomial", 0.79, "n2")) == ""
    # an older report knew only a gated flag
    old = train(None, 0.79)
    old["fit"]["stats_head"]["gated"] = True
    assert "the gated head's fused AUC" in card.refit_note(train(None, 0.80), old)


def test_a_row_on_reused_networks_is_compared_with_the_row_on_the_same_networks() -> None:
    def rep(auc: float, networks: str | None) -> dict:
        fit = {"network_from": f"runs/{networks}/ased.tflite"} if networks else {}
        return {"mean_over_corpora": {"balanced_accuracy": 0.6, "min_balanced_accuracy": 0.5,
                                      "roc_auc": auc},
                "conditioned_mean_over_corpora": {"roc_auc": auc}, "recipe": {"stats_head": True},
                "per_corpus": {"ased": {"fit": fit}}}

    shipped = rep(0.73, "shipped-net")
    rows = [("shipped recipe", shipped), ("other networks, linear head", rep(0.70, "other-net")),
            ("other networks, gated head (not adopted)", rep(0.72, "other-net"))]
    note = card.not_adopted_note(shipped, rows)
    assert 'against the row "other networks, linear head"' in note and "the mean AUC by +0.020" in note
    rows[1] = ("third networks, linear head", rep(0.70, "third-net"))  # none on the same networks
    assert 'against the row' not in card.not_adopted_note(shipped, rows)
    # the run that trained the networks a row reuses (same fold networks, by hash) is its pair
    trained = rep(0.71, None)
    for r in (trained, rows[2][1]):
        r["per_corpus"]["ased"]["model_sha256"] = {"ased.tflite": "h1"}
    rows.insert(2, ("the run that trained them", trained))
    assert 'against the row "the run that trained them"' in card.not_adopted_note(shipped, rows)
    del trained["per_corpus"]["ased"]["model_sha256"], rows[3][1]["per_corpus"]["ased"]["model_sha256"]
    assert 'against the row' not in card.not_adopted_note(shipped, rows)  # no hashes: no pair


def test_the_separation_table_comes_from_the_first_report_with_fold_scores() -> None:
    def rep(bacc: dict[str, float], diag: dict | None) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": sum(bacc.values()) / len(bacc),
                                      "roc_auc": 0.7},
                "per_corpus": {c: {"int8": {"windows": {"balanced_accuracy": b}}}
                               for c, b in bacc.items()},
                **({"diagnostics": diag} if diag is not None else {})}

    # ravdess has no fold scores on disk: the threshold's cost is over the two corpora that have
    diag = {"emotion_pair_auc": {"anger": {"happiness": {"auc": 0.8, "corpora": 8},
                                           "calm": {"auc": 0.45, "corpora": 1}},
                                 "sadness": {"neutral": {"auc": 0.6, "corpora": 8}}},
            "hindsight_threshold": {"per_corpus": {"ased": {"balanced_accuracy": 0.70},
                                                   "tess": {"balanced_accuracy": 0.74}}}}
    three = {"ased": 0.66, "tess": 0.70, "ravdess": 0.50}
    assert card.separation([("shipped recipe", rep(three, None))]) == ""  # no diagnostics
    text = card.separation([("shipped recipe", rep(three, None)), ("a screen", rep(three, diag))])
    assert 'From the row "a screen"' in text and "| anger | – | 0.450 (1) | 0.800 (8) |" in text
    assert "Ranked below 0.6: anger against calm 0.450." in text  # sadness's 0.600 is not below
    assert "over 2 held-out corpora" in text
    assert "mean balanced accuracy of 0.720, against 0.680" in text and "costs 0.040" in text
    text = card.separation([("shipped recipe", rep(three, diag)), ("a screen", rep(three, diag))])
    assert text.startswith("## What it separates\nFrom the headline run:")
    # no held-out corpus with both classes: the table, without the threshold paragraph
    diag["hindsight_threshold"]["per_corpus"] = {}
    text = card.separation([("shipped recipe", rep(three, diag))])
    assert "| anger |" in text and "Threshold or ranking" not in text


def test_a_rerun_of_the_whole_headline_says_how_far_it_moved() -> None:
    def rep(ba: float, auc: dict[str, float], worse: float, commit: str = "a" * 40) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": ba - 0.1,
                                      "roc_auc": sum(auc.values()) / len(auc)},
                "conditioned_mean_over_corpora": {"roc_auc": worse}, "git_commit": commit,
                "per_corpus": {c: {"int8": {"windows": {"roc_auc": v}}} for c, v in auc.items()}}

    loco = rep(0.63, {"ased": 0.70, "tess": 0.80}, 0.68)
    assert card.headline_rerun_note(loco, [("shipped recipe", loco)]) == ""
    again = rep(0.62, {"ased": 0.74, "tess": 0.79}, 0.69, "c" * 40)
    for f in again["per_corpus"].values():
        f["git_commit"] = "b" * 40  # the folds ran at b; the report was aggregated at c
    note = card.headline_rerun_note(loco, [("shipped recipe", loco), (card.HEADLINE_RERUN_ROW, again)])
    assert "at commit `bbbbbbbbbbbb`" in note
    assert "by 0.025 on average and by up to +0.040 (ased)" in note
    assert "the mean balanced accuracy by -0.010" in note and "the mean AUC by +0.015" in note
    assert "the worse recording's AUC by +0.010" in note
    other = rep(0.62, {"nemo": 0.74}, 0.69)  # no corpus in common: nothing to say
    assert card.headline_rerun_note(loco, [("shipped recipe", loco),
                                           (card.HEADLINE_RERUN_ROW, other)]) == ""


def test_a_share_is_never_rounded_to_a_perfect_0_or_100_percent() -> None:
    assert card._pct(0.18) == "18 %" and card._pct(0.9953) == "99.5 %" and card._pct(0.002) == "0.2 %"
    assert card._pct(1.0) == "100 %" and card._pct(0.0) == "0 %" and card._pct(None) == "–"


def test_an_ablation_row_is_measured_against_the_rerun_and_leaves_the_not_ablated_list() -> None:
    def rep(ba: float, aucs: dict, sad: float, **recipe) -> dict:
        return {"mean_over_corpora": {"balanced_accuracy": ba,
                                      "roc_auc": sum(aucs.values()) / len(aucs)},
                "per_corpus": {c: {"int8": {"windows": {"roc_auc": a}}} for c, a in aucs.items()},
                "per_emotion_mean_over_corpora": {"sadness": {"called_negative": sad}},
                "recipe": {"arch": "specmon", "augment": "all", "stats_head": False, "label_smoothing": 0.05,
                           "emotion_weight": {"sadness": 2.0}, **recipe}}

    rerun = rep(0.58, {"a": 0.60, "b": 0.70}, 0.50)
    rows = [(card.RERUN_ROW, rerun)]
    before = card.ablation_note(rows)
    assert "sadness weighting" in before and "label smoothing" in before
    rows.append(("network alone, sadness not weighted (ablation)",
                 rep(0.56, {"a": 0.65, "b": 0.61}, 0.40, emotion_weight={})))
    # a row that changes something else as well is not an ablation of one part
    rows.append(("network alone, other (ablation)",
                 rep(0.5, {"a": 0.5, "b": 0.5}, 0.1, emotion_weight={}, augment="none")))
    note = card.ablation_note(rows)
    assert note.count("**Ablation") == 1 and "**Ablation, sadness weighting:**" in note
    assert "balanced accuracy by -0.020" in note and "mean AUC by -0.020" in note
    assert "from -0.090, b, to +0.050, a" in note and "sadness called negative 50 % → 40 %" in note
    left = note.split("Not ablated under LOCO")[1]
    assert "sadness weighting" not in left and "label smoothing" in left and "`--arch v1`" in left
    # a fold that stopped early and kept an earlier epoch than any of the rerun's is named
    for rep_, epochs in ((rerun, {"a": 7, "b": 9}), (rows[1][1], {"a": 1, "b": 8})):
        for c, e in epochs.items():
            rep_["per_corpus"][c]["fit"] = {"best_epoch": e}
    assert ("Folds that kept an earlier epoch than any of the rerun's (7–9): a (1); over the other "
            "corpora the mean AUC changes by -0.090.") in card.ablation_note(rows)
    # a key the rerun's report predates counts at its default: the arousal balance was always on
    rows.append(("network alone, no arousal balance (ablation)",
                 rep(0.57, {"a": 0.6, "b": 0.7}, 0.5, arousal_balance=False)))
    note = card.ablation_note(rows)
    assert "**Ablation, the happiness/surprise share of the non-negative draws:**" in note
    assert "happiness/surprise" not in note.split("Not ablated under LOCO")[1]
    # a row whose epoch is kept from a later one on is an ablation only if the rerun's folds all
    # kept an epoch from there on (the rerun would have run the same under that limit)
    late = ("network alone, no arousal balance, epoch kept from 8 on (ablation)",
            rep(0.59, {"a": 0.62, "b": 0.71}, 0.5, arousal_balance=False, min_epoch=8))
    assert late[0] not in card.ablation_note([*rows, late])
    late[1]["recipe"]["min_epoch"] = 7
    assert f'the row "{late[0]}"' in card.ablation_note([*rows, late])


def test_the_card_describes_the_heads_form_from_the_sidecar() -> None:
    """A linear head is one regression; a gated one (--head gated) is described as three, a
    multinomial one (--head multinomial) as one per emotion; a head on Whisper's states says so and
    what they cost."""
    shipped = json.loads((Path(card.HERE) / "specmon.json").read_text())
    text = card.head_text(shipped, 89.4)
    assert "then 512 numbers from Whisper base's encoder" in text and "682 coefficients" in text
    assert "Whisper's blocks are most of the cost: 89 ms a window" in text
    meta = json.loads((Path(card.HERE) / "specmon-fast.json").read_text())
    assert "Whisper" not in card.head_text(meta, 89.4) and "170 coefficients" in card.head_text(meta)
    linear = card.head_text(meta)
    assert "→ logistic\n  regression (C = " in linear and "gate" not in linear
    gated = dict(meta["stats_head"], gate={"coef": [0.0] * 170, "intercept": 0.0})
    gated["low"] = gated["gate"]
    text = card.head_text({"stats_head": gated})
    assert "three logistic regressions" in text and "high and one for low arousal" in text
    assert "three sets of 170 coefficients" in text
    multi = {k: v for k, v in meta["stats_head"].items() if k not in ("coef", "intercept")}
    multi.update(emotions={e: {"coef": [0.0] * 170, "intercept": 0.0} for e in ("anger", "calm", "neutral")},
                 negative=["anger"])
    text = card.head_text({"stats_head": multi})
    assert "softmax regression over 3 emotions" in text and "the sum over anger" in text
    assert "3 sets of 170 coefficients" in text


def test_the_whisper_head_section_sets_the_headline_beside_the_prosody_recipe_and_its_reference() -> None:
    def rep(ba: float, auc: float, worse: float, sad: float, encoder: str | None = None) -> dict:
        w = {"balanced_accuracy": ba, "roc_auc": auc}
        return {"mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": ba,
                                      "roc_auc": auc, "corpora": ["emodb"]},
                "conditioned_mean_over_corpora": {"roc_auc": worse},
                "mixed_mean_over_corpora": {"balanced_accuracy": ba},
                "per_emotion_mean_over_corpora": {"sadness": {"called_negative": sad}},
                "int8_float32_label_agreement_min": 0.99, "recipe": {"encoder": encoder},
                "git_commit": "abc", "fold_minutes_total": 40,
                "per_corpus": {"emodb": {"int8": {"windows": w}, "conditioned": {"windows": {
                    "roc_auc": worse}}, "mixed": {"windows": {"balanced_accuracy": ba}}}}}

    prosody, whisper = rep(0.74, 0.78, 0.72, 0.5), rep(0.79, 0.88, 0.82, 0.8, "whisper_block3")
    rows = [("shipped", whisper), ("prosody recipe", prosody)]
    text = card.whisper_head_section(whisper, rows, prosody, {}, {"recipe": {}, "model_sha256": {}}, None)
    assert "| emodb | 0.740 / 0.790 | 0.780 / 0.880 | 0.720 / 0.820 | 0.740 / 0.790 |" in text
    assert "sadness 50 % / 80 %." in text and "4 of the bar's 9 lines (the prosody recipe\n2)" in text
    assert "the worse recording's AUC by +0.100:\nby the rule" in text and "it is adopted" in text
    assert "On the same fold networks" not in text  # no reference run on the same networks yet
    rows.insert(2, (card.WHISPER_REFERENCE_ROW, rep(0.70, 0.80, 0.83, 0.5)))
    text = card.whisper_head_section(whisper, rows, prosody, {}, {"recipe": {}, "model_sha256": {}}, None)
    assert "| emodb | 0.740 / 0.700 / 0.790 |" in text
    assert "On the same fold networks" in text and "the worse recording's AUC by -0.010." in text
    worse = rep(0.73, 0.80, 0.70, 0.6, "whisper_block3")
    text = card.whisper_head_section(worse, [("shipped", worse)], prosody, {},
                                     {"recipe": {}, "model_sha256": {}}, None)
    assert "it fails: the mean balanced accuracy fell and the worse recording's AUC did not rise" in text


def test_reused_networks_name_their_one_commit_or_their_several() -> None:
    loco = {"per_corpus": {"emodb": {"fit": {"network_from": "x"}}, "tess": {"fit": {}}}}

    def trained(*commits: str) -> dict:
        folds = ("emodb", "tess")[:len(commits)]
        return {"fold_minutes_total": 12.5, "peak_rss_mb": 3000,
                "per_corpus": {c: {"git_commit": k} for c, k in zip(folds, commits, strict=True)}}

    one = card.trained_note(loco, trained("a" * 40, "a" * 40))
    assert "at commit `aaaaaaaaaaaa`: emodb, tess." in one
    two = card.trained_note(loco, trained("a" * 40, "b" * 40))
    assert "at commits `aaaaaaaaaaaa`: emodb; `bbbbbbbbbbbb`: tess (the commits" in two
    assert card.trained_note({"per_corpus": {"emodb": {"fit": {}}}}, trained("a" * 40)) == ""


def test_the_uncached_refit_says_whether_it_gave_the_same_head() -> None:
    def report(c: float, threshold: float, minutes: float) -> dict:
        return {"git_commit": "c" * 40, "minutes": minutes, "peak_rss_mb": 6744,
                "fit": {"threshold": threshold, "stats_head": {
                    "C": c, "inputs_seconds": 3672.8, "val_auc_fused": 0.9191}}}

    shipped = report(0.01, 0.4, 5.9)
    assert card.uncached_run(shipped, None) == ""
    same = card.uncached_run(shipped, report(0.01, 0.4, 67.0))
    assert "**67.0 min**, 61 min of them the training inputs" in same
    assert "the same C (0.01) and threshold (0.4)" in same
    other = card.uncached_run(shipped, report(0.1, 0.45, 67.0))
    assert "C 0.1 and threshold 0.45 (shipped: 0.01, 0.4)" in other


def test_the_pooling_probe_section_states_what_its_report_says() -> None:
    """The pooling probe's verdict follows its report: which row wins held out, whether the spread
    only helps inside each corpus, and the shift's cost."""
    def fs(held: float, within: float) -> dict:
        per = {"a": {"head_auc": held - 0.05, "within_auc": within}, "b": {"head_auc": held + 0.05,
                                                                        "within_auc": within}}
        return {"mean": {"head_auc_mean": held, "fused_auc_mean": held + 0.002,
                         "within_auc_mean": within, "head_auc_mean_same_corpora": held},
                "conditioned_mean": {"fused_auc_mean": held - 0.04}, "per_corpus": per}

    sets = {name: fs(0.80, 0.88) for name in card.POOLING_ROWS}
    sets["shipped head inputs + whisper block3"] = fs(0.822, 0.891)
    sets["shipped head inputs + whisper block3 mean and std"] = fs(0.805, 0.899)
    text = card.whisper_pooling_section({"feature_sets": sets, "git_commit": "0123456789abcdef"})
    assert "No other pooling beats the shipped mean held out." in text
    assert "better inside each corpus (0.899 against 0.891) but worse held out (0.805 against 0.822)" in text
    assert "costs 0.069 of AUC" in text and "0.058 above the\nheld-out figure" in text
    assert "inside a corpus the head is 0.011\nabove it" in text
    sets["shipped head inputs + whisper blocks 3 and 4"] = fs(0.830, 0.88)
    text = card.whisper_pooling_section({"feature_sets": sets, "git_commit": "0123456789abcdef"})
    assert 'The best held-out row is "blocks 3 and 4, means" (0.830 against 0.822, +0.008).' in text
    assert card.whisper_pooling_section(None) == ""


def test_a_models_record_finds_its_kfold_run_and_the_card_shows_the_shipped_ones_first(
        tmp_path: Path) -> None:
    """kfold_<name>.json beside a model's loco_<name>.json is its second view; the card shows the
    shipped recipe's when it exists, else the fast model's, saying that it is not the shipped one."""
    def write(name: str, rep: dict) -> Path:
        (tmp_path / name).write_text(json.dumps(rep))
        return tmp_path / name

    def kfold_report(ba: float) -> dict:
        per = {f"fold{i}": {"threshold": 0.5, "git_commit": "f" * 40} for i in range(1, 6)}
        return {"recipe": {"prosody": True, "seed": 0}, "per_corpus": per, "manifest_sha256": "m",
                "git_commit": "0123456789abcdef", "fold_minutes_total": 99.5,
                "mean_over_corpora": {"balanced_accuracy": ba, "min_balanced_accuracy": ba - 0.1,
                                      "roc_auc": 0.9, "f1": 0.7},
                "per_emotion_mean_over_corpora": {"sadness": {"called_negative": 0.8}}}

    model = write("m.tflite", {})
    write("m.json", {"model_id": "m"})
    train = write("train.json", {})
    loco = {"recipe": {"prosody": True}, "per_corpus": {},
            "mean_over_corpora": {"balanced_accuracy": 0.7, "roc_auc": 0.8}}
    shipped = card.ModelReports.load(model, train, write("loco_a.json", loco))
    fast = card.ModelReports.load(model, train, write("loco_b.json", loco))
    assert shipped.kfold is None and shipped.kfold_name is None
    write("kfold_b.json", kfold_report(0.77))
    fast = card.ModelReports.load(model, train, tmp_path / "loco_b.json")
    assert fast.kfold_name == "kfold_b" and fast.size_kib == 2 / 1024  # "{}"
    text = card.kfold_section(shipped, fast)
    assert "(`reports/kfold_b.json`: the prosody recipe, the fast model's; not run with" in text
    assert "balanced accuracy\n0.770" in text
    write("kfold_a.json", kfold_report(0.81))
    shipped = card.ModelReports.load(model, train, tmp_path / "loco_a.json")
    text = card.kfold_section(shipped, fast)
    assert "(`reports/kfold_a.json`):" in text and "0.810" in text
    assert "the k-fold's are +0.110 and +0.100:\nthat gap" in text
    # ... and the fast model's beside it, on the same folds (same manifest and seed)
    assert "The fast model's recipe (the prosody head), on the same folds (`reports/kfold_b.json`, " \
           "commit `0123456789ab`): balanced accuracy 0.770, AUC 0.900." in text
    assert card.kfold_provenance(fast) and card.kfold_provenance(
        card.ModelReports.load(model, train, tmp_path / "loco_a.json")).startswith(
        "\n- k-fold report `reports/kfold_a.json`: commit `0123456789ab`, 99.5 min of fold time on "
        "the fold networks of `reports/kfold_a_network_trained.json`")
    assert "fold runs by commit: `ffffffffffff`: fold1, fold2, fold3, fold4, fold5." in \
        card.kfold_provenance(shipped)
    odd = card.ModelReports.load(model, train, write("other.json", loco))
    assert odd.kfold is None
    assert card.kfold_section(odd, odd) == "" and card.kfold_provenance(odd) == ""
