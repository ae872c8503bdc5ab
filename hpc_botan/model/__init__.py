"""The network (BOTAN / NT-GNN) and the import of reference weights."""
from hpc_botan.model.botan import Botan, BotanArchitecture, count_parameters

__all__ = ["Botan", "BotanArchitecture", "count_parameters"]
