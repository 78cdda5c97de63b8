"""Named hardware profiles: a complete config for one target part.

A profile is a YAML file shipped with the package (``hotline/profiles/NAME.yaml``)
holding a description, the target part, where each structure lives, and a full
:class:`~hotline.config.HotlineConfig` (every section written out).  Everything
that takes a config takes a profile too (``--profile NAME`` beside
``-c/--config FILE``)::

    from hotline.profiles import load_profile
    cfg = load_profile("ecp5-85f").config

``ecp5-85f`` is the bring-up and CI profile; its config is the package's default
config (``HotlineConfig()``), and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, HotlineConfig, parse_yaml

__all__ = ["Target", "Profile", "PROFILE_DIR", "profile_names", "load_profile",
           "config_from_args", "add_config_arguments"]

#: Folder of the shipped profiles.
PROFILE_DIR = Path(__file__).with_name("profiles")


@dataclass(frozen=True)
class Target:
    """The part a profile is sized for.

    Parameters
    ----------
    vendor : str
        ``"lattice"`` or ``"xilinx"``.
    family : str
        Yosys family name: ``"ecp5"``, ``"xcup"`` (UltraScale+), ``"xcu"`` (UltraScale).
    device : str
        Part name as the vendor writes it (``"LFE5U-85F"``, ``"xcu250"``).
    package : str
        Package (``"CABGA381"``).
    speed : str
        Speed grade (``"6"``).
    clock_mhz : float
        The clock the whole accelerator must reach post-route.
    max_utilisation : float
        The largest fraction of any resource (LUT, FF, block RAM, DSP) a build may use.
    boards : tuple of str
        Boards (``hotline fpga build --board``) that carry this part.
    """

    vendor: str
    family: str
    device: str
    package: str
    speed: str
    clock_mhz: float
    max_utilisation: float = 0.8
    boards: tuple = ()

    def __post_init__(self):
        if self.vendor not in ("lattice", "xilinx"):
            raise ConfigError(f"target.vendor must be 'lattice' or 'xilinx', not {self.vendor!r}")
        if not (isinstance(self.clock_mhz, (int, float)) and 1 <= self.clock_mhz <= 1000):
            raise ConfigError(f"target.clock_mhz must be a number of MHz (1 to 1000), "
                              f"not {self.clock_mhz!r}")
        if not (isinstance(self.max_utilisation, (int, float)) and 0 < self.max_utilisation <= 1):
            raise ConfigError(f"target.max_utilisation must be in (0, 1], "
                              f"not {self.max_utilisation!r}")


@dataclass(frozen=True)
class Profile:
    """A named, complete hardware config for one target part.

    Members
    -------
    name : str
    description : str
    target : Target
    placement : dict
        Structure -> where it lives and why (``on-chip``/``card DRAM`` ...), free text.
    config : HotlineConfig
    """

    name: str
    description: str
    target: Target
    config: HotlineConfig
    placement: dict = field(default_factory=dict)


def profile_names() -> list[str]:
    """The names of the shipped profiles, sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Load the shipped profile ``name``; an unknown name is a one-line :class:`ConfigError`."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        raise ConfigError(f"unknown profile {name!r} (known: {', '.join(profile_names())})")
    return _profile_from_text(name, path.read_text())


def _profile_from_text(name: str, text: str) -> Profile:
    data = parse_yaml(text, f"profile {name!r}")
    if not isinstance(data, dict):
        raise ConfigError(f"profile {name!r} must be a mapping")
    known = {"description", "target", "placement", "config"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"profile {name!r} has unknown keys {sorted(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    for key in ("target", "config"):
        if not isinstance(data.get(key), dict):
            raise ConfigError(f"profile {name!r} needs a {key!r} mapping")
    tdata = dict(data["target"])
    tdata["boards"] = tuple(tdata.get("boards", ()))
    tdata["speed"] = str(tdata.get("speed", ""))
    try:
        target = Target(**tdata)
    except TypeError as exc:
        raise ConfigError(f"profile {name!r}: bad target: {exc}") from None
    return Profile(name=name, description=str(data.get("description", "")).strip(),
                   target=target, config=HotlineConfig.from_dict(data["config"]),
                   placement=dict(data.get("placement") or {}))


def add_config_arguments(parser, *, required: bool = False) -> None:
    """Add ``-c/--config FILE`` and ``--profile NAME`` (mutually exclusive) to ``parser``."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("-c", "--config", metavar="FILE",
                       help="YAML config file (see 'hotline config')")
    group.add_argument("--profile", metavar="NAME",
                       help=f"a shipped hardware profile: {', '.join(profile_names())}")


def config_from_args(args) -> HotlineConfig:
    """The config that ``-c``/``--profile`` name (the default config if neither)."""
    if getattr(args, "profile", None):
        return load_profile(args.profile).config
    return HotlineConfig.load(getattr(args, "config", None))
