"""Pure signal processing for masterbox: numba kernels and numpy glue.

No I/O, no threads, no globals, and nothing else of ours is imported from here.
"""
