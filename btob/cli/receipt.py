"""``btob receipt verify``: check offline, with only ``cluster.toml``, that a receipt proves
its request committed."""

from __future__ import annotations

import argparse
from pathlib import Path

from btob._errors import ConfigError, WireError
from btob.core.clientwire import Receipt, decode_client_frame, decode_request, receipt_problem
from btob.crypto import Verifier
from btob.runtime.config import ClusterConfig, load_cluster_config

__all__ = ["add_receipt_arguments", "describe_receipt", "receipt_verdict", "run_receipt"]

EXIT_VALID, EXIT_INVALID = 0, 1


def add_receipt_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``btob receipt``."""
    sub = parser.add_subparsers(dest="receipt_command", required=True, metavar="ACTION",
                                help="what to do with a receipt: verify")
    verify = sub.add_parser("verify", help="check that a receipt proves its request's slot")
    verify.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="the cluster's cluster.toml (its keys and cluster id)")
    verify.add_argument("receipt", type=Path, metavar="RECEIPT",
                        help="a file holding one RECEIPT frame, as a member sent it")


def _bound(config: ClusterConfig) -> int:
    """More bytes than any receipt of ``config`` holds: its request, and a slot's worth of
    batch references, votes and audit path, which a frame bounds."""
    return config.settings.request_bytes_max + config.settings.frame_bytes_max


def describe_receipt(receipt: Receipt, bound: int) -> str:
    """What a valid receipt says, on one line."""
    request = decode_request(receipt.request, frame_bytes_max=bound)[0]
    return (f"valid: slot {receipt.slot}, index {receipt.index}, view {receipt.view}, "
            f"client {request.client.hex()}, session {request.session}, seq {request.seq}, "
            f"{len(receipt.certificate)} commit votes")


def receipt_verdict(config: ClusterConfig, data: bytes) -> tuple[int, str]:
    """``(exit status, line)`` for the receipt frame ``data`` under ``config``."""
    bound = _bound(config)
    if len(data) > bound:
        return EXIT_INVALID, (f"invalid: {len(data)} bytes is more than any receipt of this "
                              f"cluster holds ({bound})")
    try:
        receipt = decode_client_frame(data, frame_bytes_max=bound)
    except WireError as exc:
        return EXIT_INVALID, f"invalid: not a receipt frame: {exc}"
    if not isinstance(receipt, Receipt):
        return EXIT_INVALID, "invalid: a NOTICE, not a receipt"
    verifier = Verifier(config.registry, cluster_id=config.cluster_id)
    problem = receipt_problem(receipt, quorums=config.quorums, verify_member=verifier.verify,
                              verify_client=verifier.verify_key,
                              frame_bytes_max=config.settings.request_bytes_max)
    if problem is not None:
        return EXIT_INVALID, f"invalid: {problem}"
    return EXIT_VALID, describe_receipt(receipt, bound)


def run_receipt(args: argparse.Namespace) -> int:
    """``btob receipt verify``: 0 and ``valid: ...`` if the receipt proves its request's
    slot, 1 and ``invalid: ...`` if not; a missing config or file is a :class:`ConfigError`."""
    config = load_cluster_config(args.config)
    path: Path = args.receipt
    try:
        with path.open("rb") as stream:
            data = stream.read(_bound(config) + 1)  # a bigger file is refused unread
    except FileNotFoundError:
        raise ConfigError(f"receipt file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"receipt file {path} cannot be read: {exc.strerror or exc}") from None
    status, line = receipt_verdict(config, data)
    print(line)
    return status
