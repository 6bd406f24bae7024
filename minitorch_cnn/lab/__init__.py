"""``minitorch_cnn.lab``: walk a real image through a real network, one step at a time.

    import zoo
    from minitorch_cnn.lab import Stepper, sample_image
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10).eval()
    x, label = sample_image("photo")             # or "mnist", "fashion-mnist", "cifar10", a PNG/JPEG path
    st = Stepper(model, x)                       # one forward, every step recorded in execution order
    print(st)                                    # shapes, statistics, time and im2col size per step
    s = st["layer1.0.conv1"]
    s.stats(); s.im2col(); print(s.gradcheck()); s.time(); s.show(); s.filters()
    st.backward(label); st.plot_grads()

Files: ``recorder.py`` (hooks that see every leaf module and every functional op between them),
``step.py`` (one recorded step and what a student can ask of it), ``gradcheck.py`` (the sparse,
float64 finite-difference check), ``stepper.py`` (the table, backward, gradient norms),
``images.py`` (``sample_image``), ``figures.py`` (matplotlib drawings, imported only to draw).
"""
from .gradcheck import GradcheckResult, sparse_gradcheck
from .images import sample_image
from .step import Im2colView, Step
from .stepper import Stepper

__all__ = ["GradcheckResult", "Im2colView", "Step", "Stepper", "sample_image", "sparse_gradcheck"]
