"""Hand-written kernels, apart from the math: ``reference`` (plain array slicing, the readable
version), ``cpu`` (Numba, parallel) and ``cuda`` (the GPU). All share one set of function
names and signatures; ``backend.kernels(x)`` picks the module for x's device. No autograd here.
"""
