"""btob: Byzantine-tolerant authenticated total-order broadcast for Python and Trio.

The public surface lives here; implementation modules are private. See DESIGN.md for the
architecture: pure protocol cores (:class:`Member`), the deterministic simulator
(:func:`simulate`) and the property checker (:func:`check`).
"""

from btob._brb import BRB_KINDS as BRB_KINDS
from btob._checker import CheckReport as CheckReport
from btob._checker import Violation as Violation
from btob._checker import check as check
from btob._checker import format_report as format_report
from btob._delivery import Delivery as Delivery
from btob._delivery import MsgId as MsgId
from btob._effects import Evidence as Evidence
from btob._errors import BtobError as BtobError
from btob._errors import ConfigError as ConfigError
from btob._errors import LogFormatError as LogFormatError
from btob._errors import WireError as WireError
from btob._logs import BroadcastRecord as BroadcastRecord
from btob._logs import DeliveryRecord as DeliveryRecord
from btob._logs import LogDir as LogDir
from btob._logs import MemberInfo as MemberInfo
from btob._logs import RunInfo as RunInfo
from btob._logs import read_log_dir as read_log_dir
from btob._logs import write_log_dir as write_log_dir
from btob._node import BacklogFull as BacklogFull
from btob._node import Member as Member
from btob._node import MemberStatistics as MemberStatistics
from btob._node import Outgoing as Outgoing
from btob._node import PayloadTooLarge as PayloadTooLarge
from btob._quorum import Quorums as Quorums
from btob._settings import Settings as Settings
from btob._sim import SimConfig as SimConfig
from btob._sim import SimResult as SimResult
from btob._sim import simulate as simulate

__all__ = [
    "BRB_KINDS",
    "BacklogFull",
    "BroadcastRecord",
    "BtobError",
    "CheckReport",
    "ConfigError",
    "Delivery",
    "DeliveryRecord",
    "Evidence",
    "LogDir",
    "LogFormatError",
    "Member",
    "MemberInfo",
    "MemberStatistics",
    "MsgId",
    "Outgoing",
    "PayloadTooLarge",
    "Quorums",
    "RunInfo",
    "Settings",
    "SimConfig",
    "SimResult",
    "Violation",
    "WireError",
    "check",
    "format_report",
    "read_log_dir",
    "simulate",
    "write_log_dir",
]
