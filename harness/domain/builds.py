"""Windows build numbers and the version thresholds the DMA rules depend on.

Sources are in docs/domain.md (section numbers in comments).

>>> release_name(22631)
'Windows 11 23H2'
>>> release_name(22635)
'Windows 11 23H2 (later build)'
>>> is_windows11(19045)
False
"""

from __future__ import annotations

#: First build with Kernel DMA Protection (Windows 10 1803) [§3.1].
KDP_FIRST_BUILD = 17134
#: Windows 10 1809: the DMAGuard CSP appears [§4.1].
DMAGUARD_CSP_BUILD = 17763
#: Windows 10 1903: DmaProperty (internal, exposed) ports protected; friendly DEVPKEY name [§3.2, §2].
EXPOSED_PORTS_BUILD = 18362
FRIENDLY_DEVPKEY_BUILD = 18362
#: Windows 11 (21H2): INF value 3 is a Windows 11 value [§1.1].
WINDOWS11_BUILD = 22000
#: Windows 11 24H2: per-device "DMA Management" keys [§1.2].
PER_DEVICE_KEY_BUILD = 26100

#: Released builds with their marketing names. Builds between entries are accepted
#: (insider and servicing builds); `release_name` names the nearest release at or below.
RELEASES: dict[int, str] = {
    17134: "Windows 10 1803",
    17763: "Windows 10 1809",
    18362: "Windows 10 1903",
    18363: "Windows 10 1909",
    19041: "Windows 10 2004",
    19042: "Windows 10 20H2",
    19043: "Windows 10 21H1",
    19044: "Windows 10 21H2",
    19045: "Windows 10 22H2",
    22000: "Windows 11 21H2",
    22621: "Windows 11 22H2",
    22631: "Windows 11 23H2",
    26100: "Windows 11 24H2",
    26200: "Windows 11 25H2",
}


class BuildError(ValueError):
    """A build number the harness cannot reason about (before Kernel DMA Protection)."""


def check_build(build: int) -> int:
    """Return `build` if Kernel DMA Protection exists on it, else raise BuildError."""
    if build < KDP_FIRST_BUILD:
        raise BuildError(
            f"build {build} predates Windows 10 1803 (17134): Kernel DMA Protection does not exist there"
        )
    return build


def is_windows11(build: int) -> bool:
    return build >= WINDOWS11_BUILD


def release_name(build: int) -> str:
    """Marketing name of the release a build belongs to ('Windows 11 23H2')."""
    check_build(build)
    best = max(b for b in RELEASES if b <= build)
    name = RELEASES[best]
    return name if best == build else f"{name} (later build)"


def short_tag(build: int) -> str:
    """Short tag used in scenario ids: 'w11-22631', 'w10-19045'."""
    return f"w{11 if is_windows11(build) else 10}-{build}"
