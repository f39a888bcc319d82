"""``btob receipt verify``: a receipt verifies offline against cluster.toml alone; a tampered,
foreign or malformed one is refused with one line, never a traceback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
import pytest

from btob.cli.main import main
from btob.core.clients import ClientAdmission
from btob.core.clientwire import ClientRequest, Notice, Receipt, decode_client_frame, sign_request
from btob.core.member import Member
from btob.crypto import Signer, SigningKey
from btob.runtime.config import ClusterConfig, MemberAddress, write_cluster_config

from ..helpers import CLUSTER, Keys, Router

KEYS = Keys(4)
CLIENT = SigningKey.from_seed(hashlib.sha256(b"receipt client").digest())


@pytest.fixture(scope="module")
def receipt() -> Receipt:
    """A receipt member 0 made for the client's request (one of a few in the batch)."""
    def make(**kw: object) -> Member:
        return Member(clients=ClientAdmission(open=True), **kw)  # type: ignore[arg-type]

    router = Router(KEYS, member_factory=make)
    signer = Signer(CLIENT, cluster_id=CLUSTER)
    for seq in range(3):
        router.members[0].submit_request(sign_request(
            ClientRequest(signer.public_key, 5, seq, b"r%d" % seq), signer.sign), router.now)
    router.advance(1.0)
    outputs = router.members[0].take_client_outputs()
    found = decode_client_frame(outputs[-1][1], frame_bytes_max=1 << 22)
    assert isinstance(found, Receipt)
    return found


def _config_file(tmp_path: Path, cluster_id: bytes = CLUSTER) -> Path:
    path = tmp_path / "cluster.toml"
    write_cluster_config(path, ClusterConfig(
        cluster_id, KEYS.registry, tuple(MemberAddress("127.0.0.1", 7000 + i) for i in range(4)),
        clients_open=True))
    return path


def _verify(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str],
            config: Path | None = None) -> tuple[int, str, str]:
    (tmp_path / "receipt.bin").write_bytes(data)
    capsys.readouterr()
    status = main(["receipt", "verify", "--config", str(config or _config_file(tmp_path)),
                   str(tmp_path / "receipt.bin")])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_receipt_verifies_and_says_what_it_proves(tmp_path: Path, receipt: Receipt,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _verify(tmp_path, receipt.to_frame(), capsys)
    assert (status, err) == (0, "")
    assert out == (f"valid: slot {receipt.slot}, index {receipt.index}, view {receipt.view}, "
                   f"client {CLIENT.public_key().hex()}, session 5, seq 2, "
                   f"{len(receipt.certificate)} commit votes\n")


@pytest.mark.parametrize("tamper", ["slot", "vote", "path", "votes"])
def test_a_tampered_receipt_is_invalid(tmp_path: Path, receipt: Receipt, tamper: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    vote = receipt.certificate[0]
    bad = {
        "slot": attrs.evolve(receipt, slot=receipt.slot + 1),
        "vote": attrs.evolve(receipt, certificate=(
            attrs.evolve(vote, signature=bytes(64)), *receipt.certificate[1:])),
        "path": attrs.evolve(receipt, path=(bytes(32), *receipt.path)),
        "votes": attrs.evolve(receipt, certificate=receipt.certificate[:2]),
    }[tamper]
    status, out, _ = _verify(tmp_path, bad.to_frame(), capsys)
    assert status == 1 and out.startswith("invalid: ") and out.count("\n") == 1


def test_a_receipt_of_another_cluster_is_invalid(tmp_path: Path, receipt: Receipt,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _verify(tmp_path, receipt.to_frame(), capsys,
                             config=_config_file(tmp_path, b"another-cluster"))
    assert status == 1 and "signature does not verify" in out


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x93\x03\x33\x01", b"not a receipt"])
def test_a_malformed_file_is_one_line_and_exit_1(tmp_path: Path, data: bytes,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _verify(tmp_path, data, capsys)
    assert (status, err) == (1, "")
    assert out.startswith("invalid: not a receipt frame") and out.count("\n") == 1


def test_a_truncated_receipt_is_invalid(tmp_path: Path, receipt: Receipt,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _verify(tmp_path, receipt.to_frame()[:-5], capsys)
    assert status == 1 and out.startswith("invalid: ")


def test_a_notice_is_not_a_receipt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _verify(tmp_path, Notice(1, 2, "full").to_frame(), capsys)
    assert status == 1 and out == "invalid: a NOTICE, not a receipt\n"


def test_a_file_larger_than_any_receipt_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _verify(tmp_path, b"\x00" * (16 << 20), capsys)
    assert status == 1 and "more than any receipt" in out


def test_a_missing_file_is_an_operator_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    status = main(["receipt", "verify", "--config", str(_config_file(tmp_path)),
                   str(tmp_path / "nothing.bin")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "receipt file" in err and "does not exist" in err
