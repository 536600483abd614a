"""Train the shipped model in one command: all corpora, validation speakers held out inside them.

    python -m model.train --manifest ../shared/data/speech/manifest.csv --out model/specmon.tflite

Writes the int8 model, its float32 original (each with a sidecar holding the feature parameters,
the threshold chosen on the validation speakers and the SHA-256) and a training report with the run
time and peak memory. Needs the `train` extra (TensorFlow). Progress: one line per epoch on stderr.
How well the recipe does on unseen corpora is measured by `python -m model.loco` (the model card).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from model.dataset import (
    build_streams,
    load_all,
    read_manifest,
    speakers_of,
    validation_speakers,
)
from model.eval_features import EvalFeatures
from model.fit import (
    check_head_cache,
    earlier_network,
    export_with_threshold,
    fit,
    log,
    predict,
    stats_head_for,
)
from model.loco import provenance, subset
from model.recipe_args import add_recipe_arguments, recipe_from
from monitor.errors import SpecmonError
from monitor.scorer import float_model_path, sha256_of
from monitor.threads import limit_threads


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train and quantize the specmon CNN.")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="int8 .tflite to write (and -float32)")
    ap.add_argument("--report", type=Path, default=None, help="training report JSON "
                    "(default: <out folder>/reports/train_report.json)")
    add_recipe_arguments(ap)
    ap.add_argument("--network-from", type=Path, default=None, help="keep this earlier int8 "
                    "network (and its -float32 beside it); fit only the stats head and threshold")
    ap.add_argument("--network-report", type=Path, default=None, help="the training report of "
                    "--network-from (or of a head-only refit of it), carried into the new report "
                    "(its run time and memory)")
    ap.add_argument("--speakers", default=None, help="only these speakers (comma list)")
    ap.add_argument("--max-clips", type=int, default=0, help="at most this many clips per "
                    "speaker and emotion (0: all), for quick runs")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.time()
    try:
        limit_threads(args.threads)
        recipe = recipe_from(args)  # bad options fail before any decoding
        from model.augment import Augment
        from model.cnn import builder

        Augment.from_names(args.augment)
        builder(args.arch)
        clips = read_manifest(args.manifest)
        # The tree as this run found it: its own outputs land in model/ and would read as changes.
        prov = provenance(args.manifest)
        if args.speakers:
            keep = {s.strip() for s in args.speakers.split(",")}
            unknown = keep - set(speakers_of(clips))
            if unknown:
                raise SpecmonError(f"{args.manifest}: no clips for speaker(s) "
                                   f"{', '.join(sorted(unknown))}")
            clips = [c for c in clips if c.speaker in keep]
        clips = subset(clips, 0, args.max_clips)
        if args.head_cache:
            check_head_cache(args.head_cache, recipe)
        val_spk = validation_speakers(clips, seed=args.seed)
        train = [c for c in clips if c.speaker not in val_spk]
        val = [c for c in clips if c.speaker in val_spk]
        earlier = None
        if args.network_report and not args.network_from:
            raise SpecmonError("--network-report goes with --network-from")
        if args.network_from:  # checked before any decoding
            if not args.network_report:
                raise SpecmonError("--network-from needs --network-report (the report of the run "
                                   "that trained it: its validation speakers must be this run's)")
            earlier = earlier_network(args.network_from, args.network_report, val_spk, recipe)
        log(f"decoding {len(clips)} clips from {len(speakers_of(clips))} speakers "
            f"({len(val_spk)} held out for validation) ...")
        audio = load_all(clips)
        log(f"decoded in {time.time() - t0:.0f} s")
        # The validation windows' features are kept beside the head's inputs (model/eval_features.py).
        features = EvalFeatures(args.head_cache, recipe.head_prosody, recipe.head_encoder, log)
        if earlier is None:
            model, info, vws, calib = fit(train, val, audio, recipe, features=features)
            p_val = predict(model, vws.x[vws.y >= 0])
        else:
            log(f"network from {earlier.int8}: fitting the stats head and threshold only")
            model, calib = None, []
            info = {"best_epoch": earlier.fit.get("best_epoch"), "network_from": str(earlier.int8),
                    "network_training": {k: earlier.record[k] for k in (
                        "git_commit", "minutes", "peak_rss_mb", "fit", "machine") if k in earlier.record}}
            vws = features.windows(build_streams(val, audio, recipe.seed))
            p_val = earlier.validation_scores(vws)
        meta = {"trained_on": sorted({c.corpus for c in clips}), "speakers": len(speakers_of(clips)),
                "recipe": recipe.to_dict(), "best_epoch": info["best_epoch"],
                "target": "P(negative): anger, sadness, fear, disgust against neutral, calm, "
                          "happiness, surprise"}
        head, info["stats_head"], unseen = stats_head_for(train, audio, vws, p_val, recipe,
                                                               args.head_cache)
        if head:
            meta["stats_head"] = head
        if earlier is not None:
            earlier.place(args.out)
        info.update(export_with_threshold(model, calib, vws, args.out, meta, unseen))
        f32 = float_model_path(args.out)
        rep = {"recipe": recipe.to_dict(), **prov, "fit": info,
               "model_sha256": {args.out.name: sha256_of(args.out), f32.name: sha256_of(f32)},
               "minutes": round((time.time() - t0) / 60, 1),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        path = args.report or args.out.parent / "reports" / "train_report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rep, indent=2) + "\n")
        log(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) and {f32.name}: threshold "
            f"{info['threshold']}, best epoch {info['best_epoch']}, {rep['minutes']} min, peak RSS "
            f"{rep['peak_rss_mb']} MB -> {path}")
    except (SpecmonError, ValueError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
