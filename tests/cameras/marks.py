"""What the test camera puts in its sound to mark the wall clock (shared by the camera script,
which runs under the system Python, and the reader in media_clock.py)."""

from __future__ import annotations

# A click at every whole second of the wall clock: CLICK_SECONDS of a tone whose pitch is
# CLICK_HZ[second % len(CLICK_HZ)], so a reader can tell which second a click marks even when
# the sound is off by more than half a second. All below 4 kHz, which G.711's 8 kHz carries.
CLICK_SECONDS = 0.020
CLICK_HZ = (500, 1000, 1500, 2000)
CLICK_AMPLITUDE = 0.5
