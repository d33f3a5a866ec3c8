"""Audio backends: ALSA (pyalsaaudio), PortAudio (sounddevice) and a simulated, clock-paced one."""
