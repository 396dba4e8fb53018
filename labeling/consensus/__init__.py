"""Label aggregation in pure numpy, no Django: majority vote, Dawid-Skene EM, ImageNet's
dynamic consensus, reliability-weighted adaptive voting, worker reliability and box fusion."""

from labeling.consensus.adaptive import (
    allocate,
    binary_posterior,
    binary_posteriors,
    cautious_posteriors,
    decided_prior,
    vote_accuracies,
    vote_agreement,
)
from labeling.consensus.boxes import FusedBoxes, fuse_boxes, iou
from labeling.consensus.dawid_skene import dawid_skene, one_coin_dawid_skene
from labeling.consensus.decisions import ACCEPT, CONTINUE, REJECT, REVIEW, decision_codes
from labeling.consensus.dynamic import ConfidenceTable, decide, fit_confidence_table
from labeling.consensus.majority import majority_vote
from labeling.consensus.reliability import (
    PEER_CONFIDENCE,
    em_accuracy,
    gold_accuracy,
    live_coins,
    newcomer_accuracy,
    own_confusions,
    peer_count_changes,
    peer_counts,
    spammer_score,
    worker_weights,
)
from labeling.consensus.result import AggregateResult
from labeling.consensus.votes import Gold, Votes

__all__ = [
    "ACCEPT",
    "CONTINUE",
    "PEER_CONFIDENCE",
    "REJECT",
    "REVIEW",
    "AggregateResult",
    "ConfidenceTable",
    "FusedBoxes",
    "Gold",
    "Votes",
    "allocate",
    "binary_posterior",
    "binary_posteriors",
    "cautious_posteriors",
    "dawid_skene",
    "decide",
    "decided_prior",
    "decision_codes",
    "em_accuracy",
    "fit_confidence_table",
    "fuse_boxes",
    "gold_accuracy",
    "iou",
    "live_coins",
    "majority_vote",
    "newcomer_accuracy",
    "one_coin_dawid_skene",
    "own_confusions",
    "peer_count_changes",
    "peer_counts",
    "spammer_score",
    "vote_accuracies",
    "vote_agreement",
    "worker_weights",
]
