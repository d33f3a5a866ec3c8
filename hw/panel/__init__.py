"""The front panel: knobs, buttons and meters through gpiozero."""
