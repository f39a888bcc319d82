"""btob: Byzantine-tolerant authenticated total-order broadcast for Python and Trio.

The public surface lives here; implementation modules are private. The layers are sub-packages:
``btob.core`` (the sans-IO protocol cores, :class:`Member`), ``btob.runtime`` (the Trio node,
:func:`open_node`, its store and transports), ``btob.client`` (:func:`open_client`: ordering
payloads from outside the cluster, with receipts), ``btob.apps`` (replicated applications:
:class:`KVStore`), ``btob.sim`` (the deterministic simulator
:func:`simulate`, delivery logs and the property checker :func:`check`), ``btob.testing`` (the
in-memory cluster and broken members for test suites) and ``btob.cli``; ``btob.crypto`` and
``btob.faults`` are the layers below and beside them. docs/ in the repository explains the
theory, the guarantees and the protocol.
"""

from btob._errors import BtobError as BtobError
from btob._errors import ConfigError as ConfigError
from btob._errors import DeliveryNotRetained as DeliveryNotRetained
from btob._errors import LogFormatError as LogFormatError
from btob._errors import MemberCrashed as MemberCrashed
from btob._errors import StateDiverged as StateDiverged
from btob._errors import WireError as WireError
from btob._util import fixup_module_metadata
from btob.apps.kv import KVStore as KVStore
from btob.client.client import Client as Client
from btob.client.client import ClientSettings as ClientSettings
from btob.client.client import RequestFailed as RequestFailed
from btob.client.client import open_client as open_client
from btob.core.application import StateMachine as StateMachine
from btob.core.clientcore import ClientStatistics as ClientStatistics
from btob.core.clients import ClientAdmission as ClientAdmission
from btob.core.clientwire import Receipt as Receipt
from btob.core.clientwire import receipt_problem as receipt_problem
from btob.core.contract import Core as Core
from btob.core.contract import MemberStatistics as MemberStatistics
from btob.core.contract import Outgoing as Outgoing
from btob.core.delivery import Delivery as Delivery
from btob.core.delivery import MsgId as MsgId
from btob.core.dissemination import BRB_KINDS as BRB_KINDS
from btob.core.durable import DurableChanges as DurableChanges
from btob.core.durable import DurableState as DurableState
from btob.core.effects import Evidence as Evidence
from btob.core.member import BacklogFull as BacklogFull
from btob.core.member import CountersUnknown as CountersUnknown
from btob.core.member import Member as Member
from btob.core.member import PayloadTooLarge as PayloadTooLarge
from btob.core.member import RequestRefused as RequestRefused
from btob.core.quorum import Quorums as Quorums
from btob.core.settings import Settings as Settings
from btob.runtime.clientport import ClientPort as ClientPort
from btob.runtime.clientport import ClientPortSettings as ClientPortSettings
from btob.runtime.clientport import ClientPortStatistics as ClientPortStatistics
from btob.runtime.config import ClusterConfig as ClusterConfig
from btob.runtime.config import MemberAddress as MemberAddress
from btob.runtime.config import load_cluster_config as load_cluster_config
from btob.runtime.config import write_cluster_config as write_cluster_config
from btob.runtime.node import Node as Node
from btob.runtime.node import NodeStatistics as NodeStatistics
from btob.runtime.node import Transport as Transport
from btob.runtime.node import open_core_node as open_core_node
from btob.runtime.node import open_node as open_node
from btob.runtime.tcp import TcpSettings as TcpSettings
from btob.runtime.tcp import TcpTransport as TcpTransport
from btob.runtime.tcp import TransportStatistics as TransportStatistics
from btob.sim.checker import CheckReport as CheckReport
from btob.sim.checker import Violation as Violation
from btob.sim.checker import check as check
from btob.sim.checker import format_report as format_report
from btob.sim.logs import BroadcastRecord as BroadcastRecord
from btob.sim.logs import DeliveryRecord as DeliveryRecord
from btob.sim.logs import LogDir as LogDir
from btob.sim.logs import MemberInfo as MemberInfo
from btob.sim.logs import RunInfo as RunInfo
from btob.sim.logs import read_log_dir as read_log_dir
from btob.sim.logs import write_log_dir as write_log_dir
from btob.sim.simulator import SimConfig as SimConfig
from btob.sim.simulator import SimResult as SimResult
from btob.sim.simulator import ViewChangeRecord as ViewChangeRecord
from btob.sim.simulator import simulate as simulate

__all__ = [
    "RequestRefused",
    "receipt_problem",
    "Receipt",
    "ClientAdmission",
    "open_client",
    "RequestFailed",
    "ClientStatistics",
    "ClientSettings",
    "Client",
    "KVStore",
    "BRB_KINDS",
    "BacklogFull",
    "BroadcastRecord",
    "BtobError",
    "CheckReport",
    "ClientPort",
    "ClientPortSettings",
    "ClientPortStatistics",
    "ClusterConfig",
    "ConfigError",
    "CountersUnknown",
    "DeliveryNotRetained",
    "Core",
    "Delivery",
    "DurableChanges",
    "DurableState",
    "DeliveryRecord",
    "Evidence",
    "LogDir",
    "LogFormatError",
    "Member",
    "MemberCrashed",
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
    "StateDiverged",
    "StateMachine",
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

# Reprs and tracebacks name the public package, not the private module a name lives in.
fixup_module_metadata(__name__, globals())
del fixup_module_metadata
