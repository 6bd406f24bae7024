"""GoogLeNet's training loss: the main classifier plus its two auxiliary classifiers.

The paper (Section 5) adds the auxiliary losses "with a discount weight (0.3)":

    loss = main + 0.3 * (aux1 + aux2)                      main_weight=1.0, aux_weight=0.3 (default)

The course slides weight the final classifier 0.7 instead of 1:

    loss = 0.7 * main + 0.3 * (aux1 + aux2)                main_weight=0.7, aux_weight=0.3
"""
from minitorch_cnn import functional as F


def googlenet_loss(output, target, aux_weight=0.3, main_weight=1.0, criterion=F.cross_entropy):
    """One scalar loss from GoogLeNet's output.

    ``output`` is the training-mode tuple ``(logits, aux1, aux2)``, or plain logits (eval mode, or
    ``aux_logits=False``); for plain logits the result is just ``criterion(logits, target)``, unweighted,
    so validation losses are comparable with any other model's.
    """
    if not isinstance(output, (tuple, list)):
        return criterion(output, target)
    logits, *aux = output
    loss = criterion(logits, target)
    if main_weight != 1.0:
        loss = main_weight * loss
    for a in aux:
        loss = loss + aux_weight * criterion(a, target)
    return loss
