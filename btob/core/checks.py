"""The checks an honest member makes on its inputs, by the reason it counts a refused one under.

Every input a member drops is counted in ``MemberStatistics.dropped`` under a reason, and each
reason is one check: the rule a Byzantine peer (or the network) breaks. This table names them
all with what each refuses, so that an adversarial suite can ask which checks its behaviours
exercise (``btob faults --coverage``) and a check nobody attacks is visible. A test keeps it
equal to the reasons the cores count.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CHECKS"]

CHECKS: Mapping[str, str] = {
    # the gate: every frame, before its kind's handler
    "oversized-frame": "a frame longer than frame_bytes_max",
    "malformed-frame": "a frame whose envelope does not decode",
    "own-frame-returned": "a frame signed by this member itself, sent back",
    "malformed-body": "a frame whose body does not decode for its kind",
    "late-vote-unchecked": "a vote for an instance or slot already decided (not verified)",
    "bad-signature": "a signature that does not verify for its sender, kind and cluster",
    # reliable broadcast (Bracha's double echo, Reiter's signed echo)
    "brb-bad-origin": "an instance of an origin that is not a member",
    "brb-finished": "a message for an instance already ordered",
    "brb-beyond-window": "an instance beyond the origin's brb_window",
    "brb-batch-out-of-bounds": "a SEND whose batch breaks the batch bounds",
    "brb-unexpected-kind": "a message of a kind the reliable broadcast does not take",
    "brb-echo-not-for-me": "a signed ECHO (signed echo) for an instance of another origin",
    "brb-bad-certificate": "a FINAL whose echo certificate is short, repeated or invalid",
    # direct dissemination (the UB variants)
    "ub-beyond-window": "a batch beyond the origin's window",
    "ub-batch-out-of-bounds": "a batch that breaks the batch bounds",
    "ub-unexpected-kind": "a message of a kind direct dissemination does not take",
    # ordering
    "order-unexpected-kind": "a message of a kind ordering does not take",
    "order-other-view": "an ORDER or vote of another view than the installed one",
    "order-slot-delivered": "an ORDER or vote for a slot already delivered",
    "order-beyond-window": "an ORDER or vote beyond slot_window",
    "order-not-sequencer": "an ORDER from a member that is not the view's proposer",
    "order-malformed": "an ORDER with no references, too many, or repeated ones",
    "order-bad-certificate": "a collector's forwarded prepared or commit certificate with "
                             "malformed references, too few votes or a bad signature",
    "order-batch-already-ordered": "an ORDER naming a batch that is ordered already",
    "order-bad-carried-batches": "an ORDER carrying batches that do not match its references",
    "request-not-granted": "a slot REQUEST to a proposer that does not take requests",
    "proof-malformed": "a slot proof whose parts do not fit together",
    "proof-batch-mismatch": "a slot proof whose batches are not the ones it commits",
    "proof-bad-certificate": "a slot proof whose commit certificate is short or invalid",
    # view change
    "viewchange-stale": "a VIEW-CHANGE for a view at or below the current one",
    "viewchange-beyond-window": "a VIEW-CHANGE beyond view_window",
    "viewchange-invalid": "a VIEW-CHANGE whose checkpoint or prepared certificates fail",
    "newview-stale": "a NEW-VIEW for a view at or below the installed one",
    "newview-beyond-window": "a NEW-VIEW beyond view_window",
    "newview-invalid": "a NEW-VIEW from a non-leader, built from too few or inconsistent "
                       "VIEW-CHANGEs, with re-proposals they do not justify, or bad exclusions",
    # checkpoints and catch-up
    "checkpoint-stale-or-misaligned": "a CHECKPOINT off a boundary, or at or below the "
                                      "stable one",
    "checkpoint-beyond-window": "a CHECKPOINT more than slot_window beyond this member",
    "segment-malformed": "a log segment off the boundaries, too long, or of the wrong length",
    "segment-not-needed": "a log segment this member does not need",
    "segment-bad-certificate": "a log segment whose checkpoint certificate fails",
    # state transfer
    "snapshot-offer-not-needed": "a snapshot offer at or below this member's position",
    "snapshot-offer-bad-certificate": "a snapshot offer whose certificate fails",
    "snapshot-undecodable": "a fetched state that does not decode",
    "snapshot-not-needed": "a fetched state of another position than its certificate's, or "
                           "no longer ahead",
    "snapshot-too-large": "a transfer whose chunk count exceeds snapshot_bytes_max",
    "transfer-refused": "a transfer target with an impossible chunk count, or no peer to ask",
    "transfer-all-peers-bad": "a transfer in which every peer was marked bad (marks cleared)",
    "chunk-unexpected": "a CHUNK while no transfer is under way",
    "chunk-stale": "a CHUNK of another checkpoint than the one fetched",
    "chunk-duplicate": "a CHUNK already held",
    "chunk-bad-root": "a CHUNK under another root or count than the certified one",
    "chunk-bad-proof": "a CHUNK whose data or audit path does not lead to the root",
    "chunkreq-not-held": "a CHUNK-REQUEST for a snapshot or index this member does not hold",
    "chunkreq-over-budget": "a CHUNK-REQUEST beyond the peer's transfer_serve_bytes_per_s",
}
"""Each reason a member counts a dropped input under, with what that check refuses."""
