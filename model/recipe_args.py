"""The training recipe's command-line options (model.fit.Recipe), the same for `model.train` and
`model.loco`: a recipe screened under LOCO is retrained for shipping with the same flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.fit import EPOCH_AUCS, HEADS, THRESHOLD_RULES, Recipe, c_grid_arg


def add_recipe_arguments(ap: argparse.ArgumentParser) -> None:
    """The recipe's options, and the two that say how a run computes it (--head-cache, --threads)."""
    ap.add_argument("--arch", default=Recipe.arch, help="the network (model/cnn.py "
                    "ARCHITECTURES): specmon (shipped), baseline (the paper's) or a screened one")
    ap.add_argument("--epochs", type=int, default=Recipe.epochs, help="at most this many epochs; the "
                    "best on the validation speakers is kept")
    ap.add_argument("--steps", type=int, default=Recipe.steps, help="batches of 32 per epoch")
    ap.add_argument("--augment", default=Recipe.augment, help="'all', 'none' or a list of "
                    "gain,noise,channel,reverb,mask")
    ap.add_argument("--sadness-weight", type=float, default=Recipe().emotion_weight["sadness"],
                    help="how much sadness counts within the negative class's draws")
    ap.add_argument("--label-smoothing", type=float, default=Recipe.label_smoothing)
    ap.add_argument("--no-arousal-balance", action="store_true", help="draw non-negative streams by "
                    "weight alone, without giving happiness and surprise half of the draws (an "
                    "ablation row)")
    ap.add_argument("--seed", type=int, default=Recipe.seed)
    ap.add_argument("--ema", type=float, default=Recipe.ema, help="validate and keep the moving average "
                    "of the weights with this decay per batch (0: the raw weights)")
    ap.add_argument("--min-epoch", type=int, default=Recipe.min_epoch, help="choose the kept "
                    "epoch from this one on (early stopping waits for it)")
    ap.add_argument("--adversary", type=float, default=Recipe.adversary, help="train against a corpus "
                    "classifier through gradient reversal at this strength (0: none)")
    ap.add_argument("--average-from", type=int, default=Recipe.average_from, help="train every "
                    "epoch and keep the mean of the weights at the end of each epoch from this one "
                    "on, instead of the best validation epoch (0: off)")
    ap.add_argument("--emotion-task", type=float, default=Recipe.emotion_task, help="also train "
                    "the network to name the emotion (a softmax on its last hidden layer, in "
                    "training only) with this weight in the loss (0: none)")
    ap.add_argument("--mixup", type=float, default=Recipe.mixup, help="train on mixed pairs of "
                    "windows, their labels mixed alike, in proportions drawn from Beta(MIXUP, "
                    "MIXUP) (0: none)")
    ap.add_argument("--epoch-auc", default=Recipe.epoch_auc, help=f"the validation AUC that keeps an "
                    f"epoch ({' or '.join(EPOCH_AUCS)}): pooled (all validation windows together) or "
                    "corpus_mean (each validation corpus's own AUC, averaged, as LOCO averages over "
                    "corpora)")
    ap.add_argument("--no-stats-head", action="store_true", help="the network alone, without the "
                    "stats head (an ablation row)")
    ap.add_argument("--threshold-rule", choices=THRESHOLD_RULES, default=Recipe.threshold_rule,
                    help="how validation speakers pick the threshold (default %(default)s): the "
                    "best balanced accuracy averaged over their corpora, each scored by a stats "
                    "head fit without it (unseen_corpus) or by the shipped head (corpus_mean), "
                    "or over all their windows pooled")
    ap.add_argument("--no-prosody", action="store_true", help="the stats head on window "
                    "statistics only, without the window's prosody (an ablation row)")
    ap.add_argument("--encoder", default=None, help="the stats head also takes this pretrained "
                    "encoder's states: whisper_block3 (monitor/whisper_encoder.py, Whisper base's "
                    "third block; ~70 ms a window more here, live too) or voice_encoder "
                    "(monitor/voice_encoder.py, Resemblyzer's; ~15-40 ms)")
    ap.add_argument("--head", default=Recipe.head, help=f"the stats head ({', '.join(HEADS)}): "
                    "linear (one logistic regression), gated (a gate on arousal mixing one "
                    "regression for high and one for low arousal) or multinomial (a softmax "
                    "regression over the emotions, P(negative) the negative ones' sum)")
    ap.add_argument("--head-c", default=None, help="the stats head's regularizations (comma list, "
                    f"default {','.join(f'{c:g}' for c in Recipe.head_c)}); validation picks one")
    ap.add_argument("--head-cache", type=Path, default=None, help="keep the stats head's "
                    "training inputs, and the features of the validation and test windows, in "
                    "this folder and reuse them: they do not depend on the network, so every later "
                    "run on the same streams (any network, any head) skips most of a fold's work; "
                    "keyed by the audio, the options and the code")
    ap.add_argument("--threads", type=int, default=None, help="threads for the numeric "
                    "libraries (default: every core); 1 in each of two processes run side by "
                    "side, or fewer when other heavy work shares the machine")


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The Recipe the options describe (SpecmonError, one line, for a combination it refuses)."""
    return Recipe(arch=args.arch, epochs=args.epochs, steps=args.steps, augment=args.augment,
                  emotion_weight={"sadness": args.sadness_weight} if args.sadness_weight != 1 else {},
                  label_smoothing=args.label_smoothing, stats_head=not args.no_stats_head,
                  arousal_balance=not args.no_arousal_balance, prosody=not args.no_prosody,
                  encoder=args.encoder, head=args.head, threshold_rule=args.threshold_rule,
                  seed=args.seed, ema=args.ema, adversary=args.adversary,
                  emotion_task=args.emotion_task, mixup=args.mixup, epoch_auc=args.epoch_auc,
                  min_epoch=args.min_epoch, average_from=args.average_from,
                  head_c=c_grid_arg(args.head_c) if args.head_c else Recipe.head_c)
