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
from btob._config import ClusterConfig as ClusterConfig
from btob._config import MemberAddress as MemberAddress
from btob._config import load_cluster_config as load_cluster_config
from btob._config import write_cluster_config as write_cluster_config
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
from btob._runtime import Core as Core
from btob._runtime import Node as Node
from btob._runtime import NodeStatistics as NodeStatistics
from btob._runtime import Transport as Transport
from btob._runtime import open_core_node as open_core_node
from btob._runtime import open_node as open_node
from btob._settings import Settings as Settings
from btob._sim import SimConfig as SimConfig
from btob._sim import SimResult as SimResult
from btob._sim import ViewChangeRecord as ViewChangeRecord
from btob._sim import simulate as simulate
from btob._tcp import TcpSettings as TcpSettings
from btob._tcp import TcpTransport as TcpTransport
from btob._tcp import TransportStatistics as TransportStatistics

__all__ = [
    "BRB_KINDS",
    "BacklogFull",
    "BroadcastRecord",
    "BtobError",
    "CheckReport",
    "ClusterConfig",
    "ConfigError",
    "Core",
    "Delivery",
    "DeliveryRecord",
    "Evidence",
    "LogDir",
    "LogFormatError",
    "Member",
    "MemberAddress",
    "MemberInfo",
    "MemberStatistics",
    "MsgId",
    "Node",
    "NodeStatistics",
    "Outgoing",
    "PayloadTooLarge",
    "Quorums",
    "RunInfo",
    "Settings",
    "SimConfig",
    "SimResult",
    "TcpSettings",
    "TcpTransport",
    "Transport",
    "TransportStatistics",
    "ViewChangeRecord",
    "Violation",
    "WireError",
    "check",
    "format_report",
    "load_cluster_config",
    "open_core_node",
    "open_node",
    "read_log_dir",
    "simulate",
    "write_cluster_config",
    "write_log_dir",
]
