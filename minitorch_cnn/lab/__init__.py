"""``minitorch_cnn.lab``: walk a real image through a real network, one step at a time.

    import zoo
    from minitorch_cnn.lab import Stepper, sample_image
    model = zoo.get_model("resnet18", in_channels=3, num_classes=10).eval()
    x, label = sample_image("photo")             # or "mnist", "fashion-mnist", "cifar10", a PNG/JPEG path
    st = Stepper(model, x)                       # one forward, every step recorded in execution order
    print(st)                                    # shapes, statistics, time, conv algorithm and scratch per step
    s = st["layer1.0.conv1"]
    print(s.im2col()); print(s.gradcheck()); s.stats(); s.time(); s.show(); s.filters()
    st.backward(label); st.plot_grads()

Files: ``recorder.py`` (hooks that see every leaf module and every functional op between them),
``recorded_step.py`` (``Step``: one recorded step and what a student can ask of it; not ``zoo/step.py``,
the command line), ``conv_views.py`` (what a convolution step multiplies, for each algorithm its
``ConvPlan`` can choose), ``sampled_gradcheck.py`` (the sampled, float64 finite-difference check of one
step; ``minitorch_cnn.gradcheck`` is the library's full check it builds on), ``stepper.py`` (the table,
backward, gradient norms), ``layer_table.py`` (``zoo.summary``'s table), ``images.py``
(``sample_image``), ``figures.py`` (matplotlib drawings, imported only to draw), ``attribution.py``
(saliency, Grad-CAM, guided backprop, occlusion, the randomisation sanity check), ``html_page.py`` with
``page_facts.py`` and ``html_assets.py`` (``Stepper.to_html``: the stepper as one web page).
"""
from . import attribution
from .conv_views import Im2colView, WinogradView
from .images import sample_image
from .recorded_step import Step
from .sampled_gradcheck import GradcheckResult, sparse_gradcheck
from .stepper import Stepper

__all__ = ["GradcheckResult", "Im2colView", "Step", "Stepper", "WinogradView", "attribution", "sample_image",
           "sparse_gradcheck"]
