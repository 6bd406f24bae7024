"""A pytest plugin that binds ``import cupy`` to the strict stand-in before any test module imports
minitorch_cnn: ``python -m pytest -p gpu_standin.standin_plugin tests/kernels/test_cuda_gpu.py`` runs the
tests written for a real GPU here (tests/gpu_standin/test_gpu_tests.py does, in a subprocess)."""
from support import strict_cupy

strict_cupy.install()
