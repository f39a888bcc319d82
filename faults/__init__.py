"""btob's fault injection: process behaviours and network faults for the simulator."""

from faults._mix import PRESETS as PRESETS
from faults._mix import SWARM as SWARM
from faults._mix import Mix as Mix
from faults._mix import load_mixes as load_mixes
from faults._mix import swarm_mix as swarm_mix
from faults._network import Cut as Cut
from faults._network import NetSpec as NetSpec
from faults._network import Partition as Partition
from faults._network import parse_net as parse_net
from faults._spec import BEHAVIOURS as BEHAVIOURS
from faults._spec import Behaviour as Behaviour
from faults._spec import FaultSpec as FaultSpec
from faults._spec import Param as Param
from faults._spec import parse_fault as parse_fault

__all__ = [
    "BEHAVIOURS", "PRESETS", "SWARM", "Behaviour", "Cut", "FaultSpec", "Mix", "load_mixes",
    "swarm_mix", "NetSpec", "Param", "Partition", "parse_fault",
    "parse_net",
]
