"""Size-aware values of the clusterers' ``'auto'`` parameters.

:func:`resolve_auto` turns every ``'auto'`` parameter into a number from
the data's size (``n_samples``, ``n_features``) and ``n_clusters``; the fit
stores the result in ``resolved_params_`` and never writes it back to the
parameters. The rules (the user guide's "Choosing parameters" page has the
table and the measurements behind them):

======================  ==========================================================
parameter               ``'auto'``
======================  ==========================================================
``batch_size``          DEC's 256 from 1,024 rows; below, ``n / 8`` clipped to
                        [32, 256]: at least eight steps per epoch on small data
``hidden_layer_sizes``  (256, 256, 1024) below 20,000 rows, DEC's (500, 500, 2000)
                        from 20,000: on digits and USPS the narrower network's
                        initial labels matched DEC's (digits 0.878 against 0.884,
                        3 seeds; USPS 0.809 / 0.786 against 0.792, fp32) at a
                        third of the arithmetic (17 against 60 ms a step)
``latent_dim``          ``max(10, n_clusters)``: DEC's 10, wider for many clusters
``encoder``             ``'cnn'`` for 3-channel (colour) images, ``'mlp'`` otherwise
``pretrain``            ``'contrastive'`` for 3-channel images, ``'reconstruction'``
                        otherwise: on BloodMNIST the default fit's ACC went from
                        0.481 to 0.622 on 2,000 rows and reached 0.670 on the
                        full set (3 seeds each; KMeans 0.543)
``pretrain_epochs``     aims for 5,000 gradient steps, 15,000 with augmented
                        views, clipped to [20, 200] epochs, from 1,024 rows
                        (full 256-row batches) to [20, 600] while 600 epochs
                        stay within 5,000 steps (DeepFuzzyCMeans on USPS
                        3,000: ACC 0.719 -> 0.835, 3 seeds); contrastive
                        pretraining aims for 4,000 steps within [20, 60] epochs
                        (two strong views a row make each step dearer); stops
                        earlier when the loss plateaus or the initial partition
                        has stopped changing (``PartitionStable``)
``max_epochs``          about 30,000 sample visits (``30000 / n`` epochs), clipped
                        to [5, 100]: on the suite's sets accuracy stopped rising
                        after that many (``benchmarks/joint_length_study.py``)
``n_neighbors``         ``sqrt(n) / 2``, clipped to [3, 10]
``init_smoothing``      ``n / 20`` steps, clipped to [1, 64]: the walk must not
                        mix more than a cluster's share of a small graph
======================  ==========================================================
"""

import numpy as np

__all__ = ["resolve_auto", "resolve_encoder", "resolve_pretrain", "is_colour", "AUTO_PARAMETERS"]

#: The parameters that accept ``'auto'``.
AUTO_PARAMETERS = (
    "batch_size", "hidden_layer_sizes", "latent_dim", "encoder", "pretrain", "pretrain_epochs", "max_epochs",
    "n_neighbors", "init_smoothing",
)

#: DEC's batch size: ``'auto'`` uses it from ``4 * _FULL_BATCH`` rows, smaller batches below.
_FULL_BATCH = 256
_PRETRAIN_STEPS, _PRETRAIN_EPOCHS = 5000, (20, 200)
#: From 1,024 rows (full 256-row batches) pretraining may run up to this many
#: epochs, as long as they stay within ``_PRETRAIN_STEPS``: between about
#: 1,000 and 6,400 rows 200 epochs are only 800-5,000 steps, and the
#: embedding was still improving (DeepFuzzyCMeans, defaults, seeds 0-2, USPS
#: 3,000: initial ACC 0.70-0.71 after 140-180 epochs, 0.82-0.85 after 345-368
#: of up to 454; a 400-epoch cap stopped at 280-360 with 0.70-0.80).
#: Below 1,024 rows the 200-epoch cap stays (1,600 steps of n / 8 rows), so
#: a 1,000-row fit takes seconds.
_PRETRAIN_EPOCHS_FULL_BATCHES = 600
#: With views the autoencoder learns invariances, which takes longer: on MNIST
#: (fp32, seed 0, 'affine' views) 20 pretraining epochs (5,460 steps) left the
#: graph initialisation at ACC 0.818 and 60 (16,400 steps) at 0.972.
_PRETRAIN_STEPS_WITH_VIEWS = 15000
#: Contrastive pretraining (two strong views of every row through the
#: encoder): in scratch runs on BloodMNIST (seed 0, fixed epochs, no early
#: stop) 60 epochs of the convolutional encoder (420 steps on 2,000 rows,
#: 3,960 on the full 17,092) scored ACC 0.633 and 0.655; 200 epochs on
#: 2,000 rows gave 0.603 at three times the time.
_PRETRAIN_STEPS_CONTRASTIVE, _PRETRAIN_EPOCHS_CONTRASTIVE = 4000, (20, 60)
#: Joint training visits about this many samples. Recording ACC after every
#: joint epoch of default fits (``benchmarks/joint_length_study.py``, 2-3 seeds):
#: 300-row sets still gained up to 100 epochs, 1,000-row sets and digits
#: stopped gaining after 20-30, USPS 3,000 lost after 30 (0.713 after 10, 0.697
#: after 100) while MNIST 3,000 gained until 50 (0.725 after 10, 0.763 after 50:
#: the rule's largest cost), and full USPS scored 0.965 after 5 epochs against
#: 0.966 after 42.
_JOINT_VISITS, _JOINT_EPOCHS = 30_000, (5, 100)
#: From this many rows the network is DEC's (500, 500, 2000): the MNIST
#: figures were measured with it; below, (256, 256, 1024).
WIDE_FROM_ROWS = 20_000
_NARROW, _WIDE = (256, 256, 1024), (500, 500, 2000)


def _epochs(total, per_epoch, bounds):
    """``total`` (steps or sample visits) in epochs of ``per_epoch``, clipped to ``bounds``."""
    return int(np.clip(round(total / per_epoch), *bounds))


def is_colour(image_shape):
    """Whether ``image_shape`` describes 3-channel (colour) images."""
    return image_shape is not None and len(image_shape) == 3 and int(image_shape[0]) == 3


def resolve_pretrain(pretrain, image_shape):
    """The pretraining objective ``'auto'`` stands for (other values are returned as they are).

    >>> resolve_pretrain("auto", (3, 28, 28)), resolve_pretrain("auto", (1, 16, 16)), resolve_pretrain("both", None)
    ('contrastive', 'reconstruction', 'both')
    """
    if isinstance(pretrain, str) and pretrain == "auto":
        return "contrastive" if is_colour(image_shape) else "reconstruction"
    return pretrain


def resolve_encoder(encoder, image_shape):
    """The network ``'auto'`` stands for (other values, modules included, are returned as they are).

    >>> resolve_encoder("auto", (3, 28, 28)), resolve_encoder("auto", None), resolve_encoder("mlp", (3, 28, 28))
    ('cnn', 'mlp', 'mlp')
    """
    if isinstance(encoder, str) and encoder == "auto":
        return "cnn" if is_colour(image_shape) else "mlp"
    return encoder


def resolve_auto(params, n_samples, n_clusters, *, views=False):
    """The parameters with every ``'auto'`` replaced by its size-aware value.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params()``); ``image_shape``, if
        missing, is taken as None.
    n_samples : int
    n_clusters : int
    views : bool, default=False
        Whether training sees augmented views (the resolved ``augment`` is
        not None): pretraining then aims for three times as many steps.

    Returns
    -------
    dict
        ``{name: value}`` for every name of :data:`AUTO_PARAMETERS`.

    Examples
    --------
    >>> p = dict.fromkeys(AUTO_PARAMETERS, "auto")
    >>> r = resolve_auto(p, 1797, 10)
    >>> r["batch_size"], r["hidden_layer_sizes"], r["n_neighbors"], r["init_smoothing"]
    (256, (256, 256, 1024), 10, 64)
    >>> resolve_auto(p, 70000, 10)["batch_size"], resolve_auto(p, 300, 10)["batch_size"]
    (256, 37)
    >>> resolve_auto(p, 70000, 10)["pretrain_epochs"], resolve_auto(p, 70000, 10, views=True)["pretrain_epochs"]
    (20, 55)
    >>> r = resolve_auto({**p, "image_shape": (3, 28, 28)}, 2000, 8, views=True)
    >>> r["encoder"], r["pretrain"], r["pretrain_epochs"]
    ('cnn', 'contrastive', 60)
    """
    def pick(name, auto):
        value = params[name]
        return auto() if isinstance(value, str) and value == "auto" else value

    out = {}
    out["batch_size"] = pick("batch_size", lambda: _FULL_BATCH if n_samples >= 4 * _FULL_BATCH
                             else int(np.clip(n_samples // 8, 32, _FULL_BATCH)))
    n_batches = max(1, n_samples // out["batch_size"])
    out["hidden_layer_sizes"] = tuple(pick("hidden_layer_sizes", lambda: _WIDE if n_samples >= WIDE_FROM_ROWS else _NARROW))
    out["latent_dim"] = pick("latent_dim", lambda: max(10, int(n_clusters)))
    image_shape = params.get("image_shape")
    out["encoder"] = resolve_encoder(params["encoder"], image_shape)
    out["pretrain"] = resolve_pretrain(params["pretrain"], image_shape)
    if out["pretrain"] == "contrastive":
        steps, bounds = _PRETRAIN_STEPS_CONTRASTIVE, _PRETRAIN_EPOCHS_CONTRASTIVE
    else:
        steps, bounds = (_PRETRAIN_STEPS_WITH_VIEWS if views else _PRETRAIN_STEPS), _PRETRAIN_EPOCHS
        if out["batch_size"] >= _FULL_BATCH:  # up to 600 epochs within 5,000 steps
            longest = min(_PRETRAIN_EPOCHS_FULL_BATCHES, _PRETRAIN_STEPS // n_batches)
            bounds = (bounds[0], max(bounds[1], longest))
    out["pretrain_epochs"] = pick("pretrain_epochs", lambda: _epochs(steps, n_batches, bounds))
    out["max_epochs"] = pick("max_epochs", lambda: _epochs(_JOINT_VISITS, n_samples, _JOINT_EPOCHS))
    out["n_neighbors"] = pick("n_neighbors", lambda: int(np.clip(round(np.sqrt(n_samples) / 2), 3, 10)))
    out["init_smoothing"] = pick("init_smoothing", lambda: int(np.clip(n_samples // 20, 1, 64)))
    return out
