"""An interpreter for data-driven scripts of the member state machine (golden transcripts).

Format. A script is a text file of cases separated by blank lines. A case is one command line,
a line ``----`` and the expected output, which runs up to the next blank line (an output never
holds a blank line; it may be empty). Lines starting with ``#`` between cases are comments.
When the expected outputs are rewritten, comments and blank lines stay as they are. Example::

    # member 1 broadcasts one payload
    submit 1 hello
    ----
    submitted 1:0=hello

Grammar (M is a member id, T and S are times in seconds)::

    cluster n=N [f=F] [brb=bracha|echo] [variant=bb|ub|uub|moving] [SETTING=VALUE ...]
    submit M PAYLOAD ...           a PAYLOAD may hold one range: p{0..9} stands for p0 ... p9
    step                           deliver the frames queued now (one round)
    run [quiet]                    deliver rounds until no frame is queued
    tick T [every=S] [quiet]       time moves to T (by steps of S); at each time every running
                                   member ticks, then the cluster runs until quiet
    drop SRC>DST [KIND-PREFIX]     SRC, DST: a member or *; matching frames are lost
    heal                           remove every drop rule
    crash M                        M stops: no input, no tick, frames to it are lost
    send-as M -> DSTS KIND FIELD=VALUE ...   queue a message validly signed by M
    queue                          the frames queued and not yet delivered
    deliveries [M ...]             what each member delivered, in order, and whether they agree
    state M ...                    view, next slot, checkpoint, evidence, drop reasons, counters

Frames travel in rounds: a round delivers, first in first out, the frames queued when it
starts; frames sent in reply wait for the next round. Time stands still within ``run``. A
member's own messages never travel (it handles them at once, invisibly). Each delivered frame
prints as one line; a sender's identical frames to consecutive destinations share a line::

    [2] 1->0,2x,3! brb.echo origin=1 counter=0 d=3fa2

``[2]`` is the round (``run`` and ``tick`` only); ``2x`` marks a destination that crashed,
``3!`` one whose link dropped the frame; ``by N`` after the kind names the signer of a frame
forwarded by someone else. Digests show as their first 4 hex digits, a batch reference as
``ORIGIN:COUNTER@DIGEST``. Lines indented by two spaces below a frame line say what its
receivers did that can be observed::

      2 delivers #0 1:0=hello next_slot=1    TO-deliveries (index, id, payload), slot progress
      2 view=1                               installed a view
      2 evidence against 3 (brb.send)        now holds two conflicting messages signed by 3

With ``quiet``, frame lines are left out: the notes carry their round number instead, and one
line sums up the frames by kind.

``send-as`` fields by kind. Payloads are comma-separated; a batch's first payload counter is
``first`` (0 by default); a ref is ``O:C`` (the batch of SEND (O, C) seen on the network, which
must be unique) or ``O:C:FIRST:P1+P2``; DSTS is ``all`` (every member but M) or a list ``1,2``::

    brb.send counter=C payloads=P,... [first=F]
    brb.echo|brb.ready|brb.fetch origin=O counter=C [payloads=P,... [first=F]]
    uub.request counter=C [payloads=P,... [first=F]]
    ord.order view=V slot=S refs=REF,...
    ord.echo|ord.ready view=V slot=S refs=REF,...
    ctl.status next_slot=S [view=V]
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import attrs

from btob import BtobError, Delivery, Member, Quorums, Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    ChunkRequest,
    Echo,
    Fetch,
    Final,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderEcho,
    OrderReady,
    Ready,
    Request,
    Send,
    Signed,
    SlotProof,
    Status,
    ViewChange,
    decode_frame,
    slot_digest,
)
from btob.core.wire import Chunk as StateChunk

from ..helpers import Keys

__all__ = ["Case", "Interpreter", "ScriptError", "ScriptMismatch", "parse_script", "run_script"]

T = TypeVar("T")

SEPARATOR = "----"
MAX_ROUNDS = 1000
"""A ``run`` that is still busy after this many rounds is an error (a livelock)."""


class ScriptError(Exception):
    """The script is malformed, or a command cannot be carried out."""


class ScriptMismatch(AssertionError):
    """A command printed something other than its expected output."""


# -- the file format ------------------------------------------------------------------------


@dataclass
class Case:
    """One command, the line it is on (1-based) and its expected output lines."""

    line: int
    command: str
    expected: list[str]


Chunk = str | Case
"""A script is a sequence of raw lines (comments, blank lines) and cases."""


def parse_script(text: str, name: str) -> list[Chunk]:
    """Split ``text`` into raw lines and cases; ``name`` is used in error messages."""
    lines = text.splitlines()
    chunks: list[Chunk] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            chunks.append(line)
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] != SEPARATOR:
            raise ScriptError(f"{name}:{i + 1}: expected a line {SEPARATOR!r} after {line!r}")
        j = i + 2
        expected: list[str] = []
        while j < len(lines) and lines[j].strip():
            expected.append(lines[j])
            j += 1
        chunks.append(Case(i + 1, line.strip(), expected))
        i = j
    return chunks


def render_script(chunks: list[Chunk], outputs: dict[int, list[str]]) -> str:
    """The script text with each case's output replaced by ``outputs[case.line]`` if given."""
    out: list[str] = []
    for k, chunk in enumerate(chunks):
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        out += [chunk.command, SEPARATOR, *outputs.get(chunk.line, chunk.expected)]
        following = chunks[k + 1] if k + 1 < len(chunks) else None
        if not (isinstance(following, str) and not following.strip()):
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def run_script(path: Path, *, rewrite: bool = False) -> list[str]:
    """Run every case of the script at ``path`` and compare outputs with the expected ones.

    Raises :class:`ScriptMismatch` (with a diff, the file and the command's line) at the first
    case whose output differs, or :class:`ScriptError` for a malformed script or command. With
    ``rewrite`` the file is rewritten with the actual outputs instead. Returns every output
    line, in order (to compare two runs).
    """
    name = str(path)
    chunks = parse_script(path.read_text(), name)
    interpreter = Interpreter()
    outputs: dict[int, list[str]] = {}
    transcript: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, str):
            continue
        try:
            actual = interpreter.execute(chunk.command)
        except ScriptError as exc:
            raise ScriptError(f"{name}:{chunk.line}: {chunk.command}: {exc}") from None
        outputs[chunk.line] = actual
        transcript += actual
        if not rewrite and actual != chunk.expected:
            diff = difflib.unified_diff(chunk.expected, actual, "expected", "actual", lineterm="")
            raise ScriptMismatch(
                f"{name}:{chunk.line}: the output of `{chunk.command}` differs "
                "(set BTOB_REWRITE_TESTDATA=1 to rewrite it):\n" + "\n".join(diff)
            )
    if rewrite:
        text = render_script(chunks, outputs)
        if text != path.read_text():
            path.write_text(text)
    return transcript


# -- rendering frames -------------------------------------------------------------------------

_SAFE = frozenset(string.ascii_letters + string.digits + "_-.")


def short(digest: bytes) -> str:
    """A digest's first 4 hex digits."""
    return digest.hex()[:4]


def fmt_payload(payload: bytes) -> str:
    """A payload as text if it is made of safe characters, else as hex."""
    if payload and all(chr(b) in _SAFE for b in payload):
        return payload.decode("ascii")
    return "0x" + payload.hex()


def fmt_batch(batch: Batch) -> str:
    payloads = ",".join(fmt_payload(p) for p in batch.payloads)
    return f"first={batch.first_counter} payloads=[{payloads}] d={short(batch.digest())}"


def fmt_ref(ref: BatchRef) -> str:
    return f"{ref.origin}:{ref.counter}@{short(ref.digest)}"


def fmt_refs(refs: tuple[BatchRef, ...]) -> str:
    return "[" + ",".join(fmt_ref(r) for r in refs) + "]"


def fmt_members(members: list[int] | tuple[int, ...]) -> str:
    return ",".join(str(m) for m in members) if members else "none"


def describe(message: Message) -> str:
    """The fields of ``message`` in one line (the kind not included)."""
    if isinstance(message, Send):
        return f"counter={message.counter} {fmt_batch(message.batch)}"
    if isinstance(message, Echo):  # also Ready and Fetch
        return f"origin={message.origin} counter={message.counter} d={short(message.digest)}"
    if isinstance(message, Final):
        votes = fmt_members([v.member for v in message.certificate])
        return (f"origin={message.origin} counter={message.counter} {fmt_batch(message.batch)}"
                f" votes={votes}")
    if isinstance(message, Request):
        return f"counter={message.counter} d={short(message.digest)}"
    if isinstance(message, Order):
        text = (f"view={message.view} slot={message.slot} refs={fmt_refs(message.refs)}"
                f" d={short(message.digest)}")
        if message.carried:
            text += f" carried={len(message.carried)}"
        return text
    if isinstance(message, OrderEcho):  # also OrderReady
        return f"view={message.view} slot={message.slot} d={short(message.digest)}"
    if isinstance(message, Status):
        return f"next_slot={message.next_slot} view={message.view}"
    if isinstance(message, SlotProof):
        cert = fmt_members([v.member for v in message.certificate])
        return (f"view={message.view} slot={message.slot} refs={fmt_refs(message.refs)}"
                f" cert={cert} batches={len(message.batches)}")
    if isinstance(message, Checkpoint):
        return f"upto={message.upto} d={short(message.digest)} state={short(message.state)}"
    if isinstance(message, ViewChange):
        checkpoint = "none" if message.checkpoint is None else \
            f"{message.checkpoint.upto}@{short(message.checkpoint.digest)}"
        prepared = "; ".join(
            f"{p.slot} v{p.view} {fmt_refs(p.refs)} by {fmt_members([v.member for v in p.votes])}"
            for p in message.prepared
        )
        return f"view={message.view} checkpoint={checkpoint} prepared=[{prepared}]"
    if isinstance(message, NewView):
        changes = [decode_frame(f).sender for f in message.view_changes]
        reproposals = "; ".join(
            f"{r.slot} {fmt_refs(r.refs) if r.refs else 'null'}" for r in message.reproposals
        )
        return (f"view={message.view} changes={fmt_members(changes)}"
                f" reproposals=[{reproposals}] excluded={fmt_members(message.excluded)}")
    if isinstance(message, LogSegment):
        settled = message.cert
        slots = " ".join(fmt_refs(refs) for refs, _ in message.entries)
        return (f"start={message.start} upto={settled.upto} d={short(settled.digest)}"
                f" cert={fmt_members([v.member for v in settled.votes])} slots=[{slots}]")
    if isinstance(message, ChunkRequest):
        return f"upto={message.upto} index={message.index}"
    if isinstance(message, StateChunk):
        return (f"upto={message.upto} index={message.index}/{message.count}"
                f" root={short(message.root)} bytes={len(message.data)}")
    raise ScriptError(f"no rendering for {type(message).__name__}")  # pragma: no cover


def describe_frame(src: int, frame: bytes) -> str:
    """``KIND [by SIGNER] FIELDS`` for a frame transmitted by ``src``."""
    signed = decode_frame(frame).parse()
    by = "" if signed.sender == src else f" by {signed.sender}"
    return f"{signed.kind}{by} {describe(signed.message)}"


# -- commands -------------------------------------------------------------------------------


@dataclass
class _Args:
    name: str
    positional: list[str]
    options: dict[str, str]

    @classmethod
    def parse(cls, command: str) -> _Args:
        name, *tokens = command.split()
        positional: list[str] = []
        options: dict[str, str] = {}
        for token in tokens:
            key, eq, value = token.partition("=")
            if eq and key and name != "submit":
                if key in options:
                    raise ScriptError(f"option {key} given twice")
                options[key] = value
            else:
                positional.append(token)
        return cls(name, positional, options)

    def take(self, key: str, default: str | None = None) -> str:
        value = self.options.pop(key, default)
        if value is None:
            raise ScriptError(f"missing {key}=")
        return value

    def take_int(self, key: str, default: int | None = None) -> int:
        return _int(self.take(key, None if default is None else str(default)), key)

    def done(self, positional: int = 0) -> None:
        """Refuse leftovers: unknown options, extra arguments."""
        if self.options:
            raise ScriptError(f"unknown option(s) {', '.join(sorted(self.options))}")
        if len(self.positional) > positional:
            raise ScriptError(f"unexpected argument(s) {' '.join(self.positional[positional:])}")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ScriptError(f"{what}: expected an integer, got {text!r}") from None


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ScriptError(f"{what}: expected a number, got {text!r}") from None


_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def _expand(word: str) -> list[str]:
    """``p{0..2}`` -> p0 p1 p2; a word without a range stands for itself."""
    match = _RANGE.search(word)
    if match is None:
        return [word]
    low, high = int(match.group(1)), int(match.group(2))
    return [word[: match.start()] + str(k) + word[match.end():] for k in range(low, high + 1)]


def _setting(name: str, text: str) -> object:
    fields = {a.name: a for a in attrs.fields(Settings)}
    if name not in fields:
        raise ScriptError(f"unknown setting or option {name}")
    default = fields[name].default
    if isinstance(default, bool):  # pragma: no cover - no boolean settings today
        return text == "true"
    if isinstance(default, int):
        return _int(text, name)
    if isinstance(default, float):
        return _float(text, name)
    return text


@dataclass
class _Rule:
    src: int | None
    dst: int | None
    prefix: str

    def matches(self, src: int, dst: int, kind: str) -> bool:
        return (self.src in (None, src) and self.dst in (None, dst)
                and kind.startswith(self.prefix))


@dataclass
class _Snapshot:
    view: int
    next_slot: int
    evidence: tuple[int, ...]


@dataclass
class _Frame:
    src: int
    dst: int
    frame: bytes
    kind: str


@dataclass
class _Counts:
    """Frames handled by one command, for ``quiet`` summaries."""

    delivered: Counter[str] = field(default_factory=Counter)
    lost: int = 0


class Interpreter:
    """Runs script commands against a cluster of :class:`btob.Member` and prints outputs."""

    def __init__(self) -> None:
        self._reset(None, [])
        self._commands: dict[str, Callable[[_Args], list[str]]] = {
            "cluster": self._cluster,
            "submit": self._submit,
            "step": self._step,
            "run": self._run,
            "tick": self._tick,
            "drop": self._drop,
            "heal": self._heal,
            "crash": self._crash,
            "send-as": self._send_as,
            "queue": self._show_queue,
            "deliveries": self._deliveries,
            "state": self._state,
        }

    def execute(self, command: str) -> list[str]:
        """Run one command line and return its output lines."""
        args = _Args.parse(command)
        handler = self._commands.get(args.name)
        if handler is None:
            raise ScriptError(f"unknown command {args.name!r}")
        if args.name != "cluster" and not self._members:
            raise ScriptError("no cluster yet: start with `cluster n=...`")
        output = handler(args)
        assert all(line.strip() and line == line.rstrip() for line in output), output
        return output

    # -- helpers --------------------------------------------------------------------------

    def _reset(self, keys: Keys | None, members: list[Member]) -> None:
        """A new cluster: every member, link, queue and record starts afresh at time 0."""
        self._keys = keys
        self._members = members
        self._crashed: set[int] = set()
        self._queue: deque[_Frame] = deque()
        self._rules: list[_Rule] = []
        self._delivered: list[list[Delivery]] = [[] for _ in members]
        self._seen: dict[tuple[int, int], list[bytes]] = {}
        self._now = 0.0

    @property
    def _n(self) -> int:
        return len(self._members)

    def _member_id(self, text: str) -> int:
        member = _int(text, "member")
        if not 0 <= member < self._n:
            raise ScriptError(f"no member {member} in a cluster of {self._n}")
        return member

    def _members_arg(self, args: _Args) -> list[int]:
        return [self._member_id(t) for t in args.positional] or list(range(self._n))

    def _snapshot(self, member: Member) -> _Snapshot:
        return _Snapshot(member.view, member.next_slot, tuple(e.member for e in member.evidence))

    def _input(self, i: int, action: Callable[[Member], T]) -> tuple[T, list[str]]:
        """Give member ``i`` one input and queue its frames; the input's result and the notes
        on what the member did."""
        member = self._members[i]
        before = self._snapshot(member)
        result = action(member)
        frames, deliveries = member.take_outputs()
        for out in frames:
            self._enqueue(i, out.destination, out.frame)
        self._delivered[i] += deliveries
        after = self._snapshot(member)
        notes: list[str] = []
        parts = [f"#{d.index} {d.msg_id}={fmt_payload(d.payload)}" for d in deliveries]
        if parts:
            parts.insert(0, "delivers")
        if after.next_slot != before.next_slot:
            parts.append(f"next_slot={after.next_slot}")
        if parts:
            notes.append(f"{i} " + " ".join(parts))
        if after.view != before.view:
            notes.append(f"{i} view={after.view}")
        for evidence in member.evidence:
            if evidence.member not in before.evidence:
                kinds = sorted({evidence.first.kind, evidence.second.kind})
                notes.append(f"{i} evidence against {evidence.member} ({'/'.join(kinds)})")
        return result, notes

    def _enqueue(self, src: int, dst: int, frame: bytes) -> None:
        signed = decode_frame(frame).parse()
        self._remember_batches(signed)
        self._queue.append(_Frame(src, dst, frame, signed.kind))

    def _remember_batches(self, signed: Signed) -> None:
        """Note the batch digest of every SEND that travels (for ``O:C`` refs)."""
        message = signed.message
        if isinstance(message, Send):
            seen = self._seen.setdefault((signed.sender, message.counter), [])
            digest = message.batch.digest()
            if digest not in seen:
                seen.append(digest)
        elif isinstance(message, Order):
            for carried in message.carried:
                self._remember_batches(decode_frame(carried).parse())

    def _receive(self, item: _Frame) -> list[str]:
        return self._input(item.dst, lambda m: m.receive(item.frame, self._now))[1]

    def _fate(self, item: _Frame) -> str:
        if item.dst in self._crashed:
            return "x"
        if any(rule.matches(item.src, item.dst, item.kind) for rule in self._rules):
            return "!"
        return ""

    def _groups(self, frames: list[_Frame]) -> list[list[_Frame]]:
        """Consecutive frames of one sender with identical bytes."""
        groups: list[list[_Frame]] = []
        for item in frames:
            last = groups[-1][0] if groups else None
            if last is not None and last.src == item.src and last.frame == item.frame:
                groups[-1].append(item)
            else:
                groups.append([item])
        return groups

    def _round(self, number: int | None, quiet: bool, counts: _Counts) -> list[str]:
        """Deliver the frames queued now; the lines describing them."""
        frames = list(self._queue)
        self._queue.clear()
        out: list[str] = []
        prefix = "" if number is None else f"[{number}] "
        for group in self._groups(frames):
            marks: list[str] = []
            notes: list[str] = []
            for item in group:
                fate = self._fate(item)
                marks.append(f"{item.dst}{fate}")
                if fate:
                    counts.lost += 1
                    continue
                counts.delivered[item.kind] += 1
                notes += self._receive(item)
            head = group[0]
            if quiet:
                out += [prefix + note for note in notes]
            else:
                out.append(f"{prefix}{head.src}->{','.join(marks)} "
                           f"{describe_frame(head.src, head.frame)}")
                out += ["  " + note for note in notes]
        return out

    def _settle(self, quiet: bool, counts: _Counts) -> list[str]:
        out: list[str] = []
        rounds = 0
        while self._queue:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise ScriptError(f"still busy after {MAX_ROUNDS} rounds")
            out += self._round(rounds, quiet, counts)
        return out

    @staticmethod
    def _summary(counts: _Counts) -> str:
        total = sum(counts.delivered.values())
        kinds = " ".join(f"{k}={c}" for k, c in sorted(counts.delivered.items()))
        return f"frames: {total} delivered, {counts.lost} lost" + (f" ({kinds})" if kinds else "")

    # -- the commands ---------------------------------------------------------------------

    def _cluster(self, args: _Args) -> list[str]:
        n = args.take_int("n")
        f = None if "f" not in args.options else args.take_int("f")
        brb = args.take("brb", "bracha")
        variant = args.take("variant", "bb")
        overrides = {key: _setting(key, value) for key, value in args.options.items()}
        args.options.clear()
        args.done()
        try:
            settings = Settings(**overrides)  # type: ignore[arg-type]
            quorums = Quorums.for_cluster(n, f)
            keys = Keys(n)
            members = [
                Member(member=i, registry=keys.registry, signing_key=keys.keys[i],
                       cluster_id=keys.cluster_id, f=f, brb=brb, variant=variant,
                       settings=settings)
                for i in range(n)
            ]
        except BtobError as exc:
            return [f"error: {type(exc).__name__}: {exc}"]
        self._reset(keys, members)
        out = [f"n={n} f={quorums.f} q={quorums.quorum} f+1={quorums.one_honest} "
               f"2f+1={quorums.deliver} brb={brb} variant={variant}"]
        if overrides:
            out.append("settings: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
        return out

    def _submit(self, args: _Args) -> list[str]:
        if not args.positional:
            raise ScriptError("usage: submit M PAYLOAD ...")
        i = self._member_id(args.positional[0])
        payloads = [p for word in args.positional[1:] for p in _expand(word)]
        if not payloads:
            raise ScriptError("usage: submit M PAYLOAD ...")
        if i in self._crashed:
            raise ScriptError(f"member {i} crashed")
        ids: list[str] = []
        notes: list[str] = []
        for text in payloads:
            try:
                msg_id, more = self._submit_one(i, text.encode())
            except BtobError as exc:
                return [*_ids_line(ids), f"error: {type(exc).__name__}: {exc}"]
            ids.append(f"{msg_id}={fmt_payload(text.encode())}")
            notes += more
        return [*_ids_line(ids), *("  " + note for note in notes)]

    def _submit_one(self, i: int, payload: bytes) -> tuple[str, list[str]]:
        msg_id, notes = self._input(i, lambda m: m.submit(payload, self._now))
        return str(msg_id), notes

    def _step(self, args: _Args) -> list[str]:
        args.done()
        out = self._round(None, False, _Counts())
        return out or ["nothing queued"]

    def _run(self, args: _Args) -> list[str]:
        quiet = _quiet(args)
        args.done()
        counts = _Counts()
        out = self._settle(quiet, counts)
        if quiet:
            out.append(self._summary(counts))
        return out or ["nothing queued"]

    def _tick(self, args: _Args) -> list[str]:
        quiet = _quiet(args)
        if len(args.positional) != 1:
            raise ScriptError("usage: tick T [every=S] [quiet]")
        target = _float(args.positional[0], "time")
        every = None if "every" not in args.options else _float(args.take("every"), "every")
        args.done(1)
        if target < self._now:
            raise ScriptError(f"time goes forward only: now is {self._now:g}")
        times = [target]
        if every is not None:
            if every <= 0:
                raise ScriptError("every= must be positive")
            start, times, k = self._now, [], 1
            while round(start + k * every, 9) < target:
                times.append(round(start + k * every, 9))
                k += 1
            times.append(target)
        counts = _Counts()
        out: list[str] = []
        for now in times:
            self._now = now
            lines: list[str] = []
            for i in range(self._n):
                if i not in self._crashed:
                    lines += ["  " + note for note in self._tick_one(i)]
            lines += self._settle(quiet, counts)
            if lines or every is None:
                out += [f"t={now:g}", *lines]
        if quiet:
            out.append(self._summary(counts))
        return out

    def _tick_one(self, i: int) -> list[str]:
        return self._input(i, lambda m: m.tick(self._now))[1]

    def _drop(self, args: _Args) -> list[str]:
        if len(args.positional) not in (1, 2):
            raise ScriptError("usage: drop SRC>DST [KIND-PREFIX]")
        src, sep, dst = args.positional[0].partition(">")
        if not sep:
            raise ScriptError("usage: drop SRC>DST [KIND-PREFIX]")
        prefix = args.positional[1] if len(args.positional) == 2 else ""
        args.done(2)
        self._rules.append(_Rule(
            None if src == "*" else self._member_id(src),
            None if dst == "*" else self._member_id(dst),
            prefix,
        ))
        return []

    def _heal(self, args: _Args) -> list[str]:
        args.done()
        self._rules.clear()
        return []

    def _crash(self, args: _Args) -> list[str]:
        if len(args.positional) != 1:
            raise ScriptError("usage: crash M")
        self._crashed.add(self._member_id(args.positional[0]))
        args.done(1)
        return []

    def _send_as(self, args: _Args) -> list[str]:
        if len(args.positional) != 4 or args.positional[1] != "->":
            raise ScriptError("usage: send-as M -> DSTS KIND FIELD=VALUE ...")
        signer = self._member_id(args.positional[0])
        dsts_text, kind = args.positional[2], args.positional[3]
        if dsts_text == "all":
            dsts = [m for m in range(self._n) if m != signer]
        else:
            dsts = [self._member_id(t) for t in dsts_text.split(",")]
        message = self._build(signer, kind, args)
        args.done(4)
        assert self._keys is not None
        frame = self._keys.sign(signer, message).to_frame()
        for dst in dsts:
            self._enqueue(signer, dst, frame)
        return [f"queued {signer}->{fmt_members(dsts)} {describe_frame(signer, frame)}"]

    def _show_queue(self, args: _Args) -> list[str]:
        args.done()
        out = []
        for group in self._groups(list(self._queue)):
            head = group[0]
            dsts = ",".join(str(item.dst) for item in group)
            out.append(f"{head.src}->{dsts} {describe_frame(head.src, head.frame)}")
        return out or ["empty"]

    def _deliveries(self, args: _Args) -> list[str]:
        members = self._members_arg(args)
        args.done(len(args.positional))
        out: list[str] = []
        for i in members:
            got = self._delivered[i]
            assert [d.index for d in got] == list(range(len(got)))
            items = [f"{d.msg_id}={fmt_payload(d.payload)}" for d in got]
            crashed = " (crashed)" if i in self._crashed else ""
            lines = [" ".join(items[k:k + 10]) for k in range(0, len(items), 10)] or ["none"]
            out.append(f"{i}{crashed}: {lines[0]}")
            out += ["   " + line for line in lines[1:]]
        if len(members) > 1:
            orders = [[(d.msg_id, d.payload) for d in self._delivered[i]] for i in members]
            longest = max(orders, key=len)
            if all(o == orders[0] for o in orders):
                out.append("agree: identical")
            elif all(o == longest[: len(o)] for o in orders):
                out.append("agree: prefixes of one order")
            else:
                out.append("agree: NO - the orders diverge")
        return out

    def _state(self, args: _Args) -> list[str]:
        members = self._members_arg(args)
        args.done(len(args.positional))
        out: list[str] = []
        for i in members:
            member = self._members[i]
            stats = member.statistics()
            crashed = " (crashed)" if i in self._crashed else ""
            out.append(f"{i}{crashed}: view={member.view} next_slot={member.next_slot} "
                       f"stable_checkpoint={stats.stable_checkpoint} "
                       f"deliveries={stats.deliveries} pending={stats.pending_payloads}")
            evidence = [
                f"{e.member} ({'/'.join(sorted({e.first.kind, e.second.kind}))})"
                for e in member.evidence
            ]
            out.append("  evidence: " + (", ".join(evidence) if evidence else "none"))
            dropped = " ".join(f"{k}={v}" for k, v in stats.dropped.items())
            out.append("  dropped: " + (dropped or "none"))
            out.append(f"  counters: view_changes_started={stats.view_changes_started} "
                       f"slots_from_proofs={stats.slots_from_proofs} "
                       f"slots_from_segments={stats.slots_from_segments}")
        return out

    # -- crafting messages for send-as ----------------------------------------------------

    def _build(self, signer: int, kind: str, args: _Args) -> Message:
        if kind == Send.KIND:
            return Send(args.take_int("counter"), _batch(args))
        if kind in (Echo.KIND, Ready.KIND, Fetch.KIND):
            cls = {Echo.KIND: Echo, Ready.KIND: Ready, Fetch.KIND: Fetch}[kind]
            origin, counter = args.take_int("origin"), args.take_int("counter")
            return cls(origin, counter, self._instance_digest(origin, counter, args))
        if kind == Request.KIND:
            counter = args.take_int("counter")
            return Request(counter, self._instance_digest(signer, counter, args))
        if kind == Order.KIND:
            view, slot = args.take_int("view"), args.take_int("slot")
            return Order(view, slot, self._refs(args.take("refs")))
        if kind in (OrderEcho.KIND, OrderReady.KIND):
            cls2 = OrderEcho if kind == OrderEcho.KIND else OrderReady
            view, slot = args.take_int("view"), args.take_int("slot")
            return cls2(view, slot, slot_digest(slot, self._refs(args.take("refs"))))
        if kind == Status.KIND:
            return Status(args.take_int("next_slot"), args.take_int("view", 0))
        raise ScriptError(f"send-as cannot craft {kind!r}")

    def _instance_digest(self, origin: int, counter: int, args: _Args) -> bytes:
        if "payloads" in args.options:
            return _batch(args).digest()
        return self._seen_digest(origin, counter)

    def _seen_digest(self, origin: int, counter: int) -> bytes:
        seen = self._seen.get((origin, counter), [])
        if len(seen) != 1:
            raise ScriptError(
                f"{len(seen)} values of batch {origin}:{counter} were seen; spell it out"
            )
        return seen[0]

    def _refs(self, text: str) -> tuple[BatchRef, ...]:
        refs: list[BatchRef] = []
        for spec in text.split(",") if text else []:
            parts = spec.split(":")
            if len(parts) == 2:
                origin, counter = _int(parts[0], "ref origin"), _int(parts[1], "ref counter")
                refs.append(BatchRef(origin, counter, self._seen_digest(origin, counter)))
            elif len(parts) == 4:
                origin, counter = _int(parts[0], "ref origin"), _int(parts[1], "ref counter")
                batch = Batch(_int(parts[2], "ref first"),
                              tuple(p.encode() for p in parts[3].split("+")))
                refs.append(BatchRef(origin, counter, batch.digest()))
            else:
                raise ScriptError(f"bad ref {spec!r}: use O:C or O:C:FIRST:P1+P2")
        return tuple(refs)


def _batch(args: _Args) -> Batch:
    payloads = tuple(p.encode() for p in args.take("payloads").split(","))
    return Batch(args.take_int("first", 0), payloads)


def _quiet(args: _Args) -> bool:
    if "quiet" in args.positional:
        args.positional.remove("quiet")
        return True
    return False


def _ids_line(ids: list[str]) -> list[str]:
    return ["submitted " + " ".join(ids)] if ids else []
