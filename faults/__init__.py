"""btob's fault injection: process behaviours, the fault driver that applies them in the
simulator and the Trio runtime alike, network faults and fault mixes."""

from btob._util import fixup_module_metadata
from btob.faults._adversary import STRATEGIES as STRATEGIES
from btob.faults._adversary import AdversarySpec as AdversarySpec
from btob.faults._adversary import parse_adversary as parse_adversary
from btob.faults._mix import ADVERSARY as ADVERSARY
from btob.faults._mix import CLIENTS as CLIENTS
from btob.faults._mix import PRESETS as PRESETS
from btob.faults._mix import SWARM as SWARM
from btob.faults._mix import Mix as Mix
from btob.faults._mix import adversary_mix as adversary_mix
from btob.faults._mix import client_mix as client_mix
from btob.faults._mix import load_mixes as load_mixes
from btob.faults._mix import swarm_mix as swarm_mix
from btob.faults._network import Cut as Cut
from btob.faults._network import NetSpec as NetSpec
from btob.faults._network import Partition as Partition
from btob.faults._network import parse_net as parse_net
from btob.faults._spec import BEHAVIOURS as BEHAVIOURS
from btob.faults._spec import Behaviour as Behaviour
from btob.faults._spec import FaultSpec as FaultSpec
from btob.faults._spec import Param as Param
from btob.faults._spec import parse_fault as parse_fault

__all__ = [
    "ADVERSARY", "BEHAVIOURS", "CLIENTS", "PRESETS", "STRATEGIES", "SWARM", "AdversarySpec",
    "Behaviour", "Cut", "FaultSpec", "Mix", "NetSpec", "Param", "Partition", "adversary_mix",
    "client_mix", "load_mixes", "parse_adversary", "parse_fault", "parse_net", "swarm_mix",
]

# Reprs and tracebacks name the public package, not the private module a name lives in.
fixup_module_metadata(__name__, globals())
del fixup_module_metadata
