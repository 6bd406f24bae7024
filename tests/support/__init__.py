"""What the tests share. ``tests/`` is on ``sys.path`` (pyproject's ``pythonpath``), so a test imports
``from support.numerics import rel_err``.

    numerics      rel_err (THE relative error of the tests), inputs without ties or kinks, the worst-error register
    strategies    one hypothesis strategy per shape family (windowed conv/pool, batch norm, elementwise)
    cuda_cases    the kernel case table every tier runs (reference, Numba, the CUDA emulator, CuPy on a GPU)
    formats       writers of small files in the official dataset formats (IDX, CIFAR-10 binary and python)
    torch_twins   the PyTorch twin of every zoo model, the reference the zoo is checked against
    strict_cupy   a stand-in for CuPy as strict as CuPy, so the device boundary is tested without a GPU
"""
