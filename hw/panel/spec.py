"""What a panel is made of, as plain data: the parsed and checked ``[panel]`` config.

:func:`firmware.config.panel_spec` reads the config file into a :class:`PanelSpec`
(refusing unknown parameters and shared pins with a message naming the config line);
:class:`hw.panel.Panel` builds gpiozero devices from it. Keeping the spec as frozen
dataclasses means the same description builds the real panel on the box and the
simulated one in the demo and the web UI.

Pins are Broadcom (BCM) GPIO numbers, as gpiozero numbers them by default. The default
map (:data:`DEFAULT_PANEL`, also written out in ``firmware/config-template.toml`` and
``docs/panel.md``) fits a Raspberry Pi 40-pin header next to an I2S audio hat: it keeps
clear of I2S (GPIO 18-21), I2C (GPIO 2-3, often the codec's control bus) and the HAT
EEPROM pins (GPIO 0-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUTTON_ROLES = ("bypass", "preset_down", "preset_up", "learn", "capture")
CENTRE_DETENT = 0.025   # pot: travel each side of the centre that reads as the centre (a detent's feel)


def default_centre_detent(param: str | None) -> float:
    """:data:`CENTRE_DETENT` for a parameter whose centre is its neutral setting (a gain in dB
    around 0, width around 100 %, balance), 0 for everything else.

    A real potentiometer left at its centre reads a count or two either side of it, so a tone,
    trim or width knob "at zero" would be a fraction of a dB off and never bypass its stage;
    analogue consoles put a detent there for the same reason.
    """
    from dsp import schema

    p = schema.BY_ID.get(param) if param else None
    if p is None or p.curve != schema.LIN:
        return 0.0
    return CENTRE_DETENT if p.to_position(p.default) == 0.5 else 0.0


@dataclass(frozen=True)
class AdcSpec:
    """The MCP3008 the potentiometers are read through (SPI0, CE0 by default)."""

    clock: int = 11
    mosi: int = 10
    miso: int = 9
    select: int = 8

    @property
    def pins(self) -> tuple[int, ...]:
        return (self.clock, self.mosi, self.miso, self.select)

    def spi_args(self) -> dict:
        return {"clock_pin": self.clock, "mosi_pin": self.mosi, "miso_pin": self.miso, "select_pin": self.select}


@dataclass(frozen=True)
class KnobSpec:
    """One knob: a potentiometer (``channel``) or an encoder (``pins`` = A, B[, push]).

    It drives ``param`` (a schema id) or ``macro`` (a key of ``dsp.schema.MACROS``).
    ``also_set`` are fixed values written together with the knob's parameter (a knob
    mapped to an EQ band's gain can switch the band on and set its type, for example).
    """

    name: str
    kind: str                       # "pot" | "encoder"
    param: str | None = None
    macro: str | None = None
    also_set: tuple[tuple[str, object], ...] = ()
    channel: int | None = None      # pot
    pins: tuple[int, ...] = ()      # encoder: (a, b) or (a, b, push)
    detents: int = 96               # encoder: detents over the whole travel
    fine: int = 10                  # encoder: step divisor while pushed
    acceleration: float = 8.0       # encoder: maximum multiplier (1 = none)
    transitions_per_detent: int = 4
    hysteresis: int = 3             # pot: ADC counts
    pickup_window: float = 0.02     # pot: fraction of travel
    takeover: str = "pickup"        # pot: "pickup" | "jump"
    centre_detent: float = 0.0      # pot: travel each side of the centre that reads as the centre
    line: int | None = None


@dataclass(frozen=True)
class ButtonSpec:
    role: str
    pin: int
    hold: float = 1.0
    line: int | None = None


@dataclass(frozen=True)
class MeterSpec:
    """A bar graph (``pins``, ``thresholds``) or a needle (``pin``) showing ``source``."""

    name: str
    kind: str                       # "bar" | "needle"
    source: str
    pins: tuple[int, ...] = ()
    thresholds: tuple[float, ...] = ()
    peak_hold: float = 1.5
    pin: int | None = None
    scale: str = "vu"               # needle: "vu" | "linear"
    span: tuple[float, float] = (0.0, 20.0)
    line: int | None = None


@dataclass(frozen=True)
class PanelSpec:
    enabled: bool = True
    refresh_hz: float = 40.0
    adc: AdcSpec | None = field(default_factory=AdcSpec)
    knobs: tuple[KnobSpec, ...] = ()
    buttons: tuple[ButtonSpec, ...] = ()
    meters: tuple[MeterSpec, ...] = ()
    status_pin: int | None = None
    clip_pin: int | None = None
    clip_hold: float = 1.0

    def knob(self, name: str) -> KnobSpec:
        return next(k for k in self.knobs if k.name == name)

    def button(self, role: str) -> ButtonSpec | None:
        return next((b for b in self.buttons if b.role == role), None)


DEFAULT_PANEL = PanelSpec(
    adc=AdcSpec(),
    knobs=(
        KnobSpec("input", "pot", param="in.trim_db", channel=0, centre_detent=CENTRE_DETENT),
        KnobSpec("tone", "pot", param="eq.tone_db", channel=1, centre_detent=CENTRE_DETENT),
        KnobSpec("glue", "pot", macro="glue", channel=2),
        KnobSpec("width", "pot", param="st.width", channel=3, centre_detent=CENTRE_DETENT),
        KnobSpec("output", "pot", param="out.drive_db", channel=4),
    ),
    buttons=(
        ButtonSpec("bypass", 4, hold=5.0),
        ButtonSpec("preset_down", 5, hold=1.0),
        ButtonSpec("preset_up", 6, hold=2.0),
        ButtonSpec("learn", 16, hold=1.0),
        ButtonSpec("capture", 17, hold=1.0),
    ),
    meters=(
        MeterSpec("loudness", "bar", "loudness", pins=(23, 24, 25, 26), thresholds=(-6.0, -3.0, -1.0, 1.0)),
        MeterSpec("gr", "bar", "gain_reduction", pins=(7, 14, 15), thresholds=(1.0, 3.0, 6.0)),
        MeterSpec("vu", "needle", "momentary", pin=12, scale="vu"),
        MeterSpec("gr_needle", "needle", "gain_reduction", pin=13, scale="linear", span=(0.0, 20.0)),
    ),
    status_pin=22,
    clip_pin=27,
)
