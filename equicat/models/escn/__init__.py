"""eSCN (Passaro & Zitnick, 2023)."""

from equicat.models.escn.config import EscnConfig
from equicat.models.escn.model import Escn

__all__ = ["Escn", "EscnConfig"]
