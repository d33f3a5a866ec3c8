"""The front panel: knobs, buttons and meters through gpiozero.

* :mod:`hw.panel.encoder`: rotary encoders that never lose or reverse a detent, with
  velocity acceleration and push-for-fine (:class:`RotaryKnob`).
* :mod:`hw.panel.pot`: potentiometers on an MCP3008 with hysteresis and pick-up
  (:class:`PotKnob`).
* :mod:`hw.panel.buttons`: short and long presses (:class:`PanelButton`).
* :mod:`hw.panel.meters`: LED bar graphs with peak hold, a PWM needle with VU ballistics,
  the clip LED and the status LED.
* :mod:`hw.panel.panel`: :class:`Panel` (all devices of a :class:`PanelSpec`) and
  :class:`PanelLoop` (the pot poll + meter refresh thread).
* :mod:`hw.panel.simulated`: :class:`SimulatedPanel` on mock pins, for the demo, the web
  UI's virtual panel and the tests.

Nothing here knows about the box's state; :mod:`firmware.panel_controller` maps the panel
onto the parameter schema through :class:`firmware.control.Control`.
"""

from hw.panel.buttons import PanelButton
from hw.panel.encoder import Accelerator, QuadratureDecoder, RotaryKnob
from hw.panel.meters import ClipLED, PeakHoldBarGraph, StatusLED, VUBallistics, VUNeedle
from hw.panel.panel import SOURCES, MeterContext, Panel, PanelLoop
from hw.panel.pot import PotKnob
from hw.panel.simulated import MockMCP3008, SimulatedPanel
from hw.panel.spec import BUTTON_ROLES, DEFAULT_PANEL, AdcSpec, ButtonSpec, KnobSpec, MeterSpec, PanelSpec

__all__ = [
    "Accelerator", "AdcSpec", "BUTTON_ROLES", "ButtonSpec", "ClipLED", "DEFAULT_PANEL", "KnobSpec", "MeterContext",
    "MeterSpec", "MockMCP3008", "Panel", "PanelButton", "PanelLoop", "PanelSpec", "PeakHoldBarGraph", "PotKnob",
    "QuadratureDecoder", "RotaryKnob", "SOURCES", "SimulatedPanel", "StatusLED", "VUBallistics", "VUNeedle",
]
