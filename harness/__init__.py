"""DMA remapping lab harness: drives Windows lab machines to check PCIe drivers under Kernel DMA Protection."""

from __future__ import annotations

__version__ = "0.2.0"
