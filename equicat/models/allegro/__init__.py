"""Allegro: a strictly local equivariant potential with features on edges."""

from equicat.models.allegro.config import AllegroConfig
from equicat.models.allegro.model import Allegro

__all__ = ["Allegro", "AllegroConfig"]
