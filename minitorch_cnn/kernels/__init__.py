"""Hand-written kernels, apart from the math: ``reference`` (plain array slicing, the readable
version), ``cpu`` (Numba, parallel) and ``cuda`` (CUDA C sources launched through CuPy, or run on
the host emulator on the "cuda-emulator" device). All share one set of function names and
signatures (``cpu.CPU_ONLY`` lists the exceptions); ``device.kernels(x)`` picks the module for x's
device. No autograd here.
"""
