"""Hypergradient descent: a learning rate that learns itself while the network trains.

Baydin et al. (2018), "Online Learning Rate Adaptation with Hypergradient Descent", note
that the derivative of the loss with respect to the previous step's learning rate is
cheap: with ``θ_t = θ_{t-1} + Δ_{t-1}`` and ``Δ_{t-1}`` linear in ``α_{t-1}``,

    ∂f(θ_t)/∂α_{t-1} = g_t · u_{t-1},   u_{t-1} = Δ_{t-1} / α_{t-1}

so the learning rate itself can take a gradient step before each parameter update. For
plain SGD ``u_{t-1} = -g_{t-1}`` and the rule is the paper's ``α_t = α_{t-1} + β g_t·g_{t-1}``;
for Adam ``u`` is Adam's normalised direction, which gives the paper's HD-Adam. Measuring
``u`` from the actual change of the weights makes one implementation serve every Keras
optimizer, momentum and decoupled weight decay included.

Two update rules are offered:

* ``"additive"``: ``α_t = α_{t-1} - β g_t·u_{t-1}``, the paper's rule. ``β`` depends on
  the scale of the gradients, so it must be tuned per problem.
* ``"multiplicative"``: ``α_t = α_{t-1} (1 - β cos(g_t, u_{t-1}))``, the paper's
  normalised variant. It is scale-free (``β`` is the largest relative change per step),
  which is why the Keras family uses it.

Keras and TensorFlow are imported only when an optimizer is made, so importing this
module is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RULES", "HypergradientMixin", "hypergradient_optimizer"]

RULES = ("multiplicative", "additive")
#: Keras optimizers that can be wrapped, by the names the Keras family uses.
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}
_CLASSES: dict[str, type] = {}


class HypergradientMixin:
    """Adds hypergradient descent on the learning rate to a Keras 3 optimizer.

    Put it before a Keras optimizer class in the bases; :func:`hypergradient_optimizer`
    does this for the built-in optimizers. The optimizer's ``learning_rate`` must be a
    float (a schedule would fight the adaptation); it is the starting value, and the
    optimizer's ``learning_rate`` variable holds the adapted value during training.

    Args:
        hypergradient_beta: The hypergradient learning rate ``β``.
        hypergradient_rule: ``"multiplicative"`` or ``"additive"`` (see the module).
        min_learning_rate, max_learning_rate: Bounds that keep a runaway rate finite.
        *args, **kwargs: Passed to the Keras optimizer.
    """

    def __init__(
        self,
        *args: Any,
        hypergradient_beta: float = 0.02,
        hypergradient_rule: str = "multiplicative",
        min_learning_rate: float = 1e-7,
        max_learning_rate: float = 10.0,
        **kwargs: Any,
    ) -> None:
        if hypergradient_rule not in RULES:
            raise ValueError(
                f"hypergradient_rule must be one of {RULES}; got {hypergradient_rule!r}"
            )
        if not hypergradient_beta >= 0:
            raise ValueError(f"hypergradient_beta must be >= 0; got {hypergradient_beta!r}")
        super().__init__(*args, **kwargs)
        if not hasattr(self._learning_rate, "assign"):
            raise ValueError("hypergradient descent needs a float learning_rate, not a schedule")
        self.hypergradient_beta = float(hypergradient_beta)
        self.hypergradient_rule = hypergradient_rule
        self.min_learning_rate = float(min_learning_rate)
        self.max_learning_rate = float(max_learning_rate)

    def build(self, variables: list[Any]) -> None:
        if self.built:
            return
        super().build(variables)
        # u_{t-1}: how the weights moved per unit of learning rate at the last step.
        self._directions = [
            self.add_variable_from_reference(v, name="hypergradient_direction") for v in variables
        ]

    def apply(self, grads: list[Any], trainable_variables: list[Any] | None = None) -> None:
        import keras
        from keras import ops

        if trainable_variables is not None and not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        variables = (
            list(trainable_variables)
            if trainable_variables is not None
            else list(self._trainable_variables)
        )
        triples = [
            (g, v, self._directions[self._get_variable_index(v)])
            for g, v in zip(grads, variables, strict=True)
            if g is not None
        ]
        before: list[Any] = []
        if triples:
            self._adapt_learning_rate([(g, d) for g, _, d in triples])
            step_lr = ops.convert_to_tensor(self._learning_rate)
            before = [ops.copy(ops.convert_to_tensor(v)) for _, v, _ in triples]
        super().apply(grads, trainable_variables)
        for (_, v, d), old in zip(triples, before, strict=True):
            d.assign(ops.cast((ops.convert_to_tensor(v) - old) / step_lr, d.dtype))

    def _adapt_learning_rate(self, pairs: list[tuple[Any, Any]]) -> None:
        from keras import ops

        lr = ops.convert_to_tensor(self._learning_rate)
        dot = sum(ops.sum(ops.cast(g, "float32") * ops.cast(d, "float32")) for g, d in pairs)
        if self.hypergradient_rule == "additive":
            new = lr - self.hypergradient_beta * dot
        else:
            g_norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g, _ in pairs))
            d_norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(d, "float32"))) for _, d in pairs))
            cosine = dot / (g_norm * d_norm + 1e-12)
            new = lr * (1.0 - self.hypergradient_beta * cosine)
        new = ops.clip(new, self.min_learning_rate, self.max_learning_rate)
        self._learning_rate.assign(ops.where(ops.isfinite(new), new, lr))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hypergradient_beta=self.hypergradient_beta,
            hypergradient_rule=self.hypergradient_rule,
            min_learning_rate=self.min_learning_rate,
            max_learning_rate=self.max_learning_rate,
        )
        return config


def hypergradient_optimizer(name: str, learning_rate: float, **kwargs: Any) -> Any:
    """A Keras optimizer whose learning rate adapts by hypergradient descent.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        learning_rate: The starting learning rate.
        **kwargs: The optimizer's own settings, and the ``hypergradient_*`` and
            ``*_learning_rate`` arguments of :class:`HypergradientMixin`.

    Returns:
        An instance of ``Hypergradient<Optimizer>``, a subclass of the Keras optimizer.

    Example:
        >>> opt = hypergradient_optimizer("sgd", 1e-3, momentum=0.9)  # doctest: +SKIP
        >>> model.compile(optimizer=opt, loss="mse")  # doctest: +SKIP
    """
    from autotune.families.keras import import_keras

    keras = import_keras()
    try:
        base_name = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}") from None
    if base_name not in _CLASSES:
        base = getattr(keras.optimizers, base_name)
        cls = type(f"Hypergradient{base_name}", (HypergradientMixin, base), {})
        cls.__module__ = __name__
        _CLASSES[base_name] = keras.saving.register_keras_serializable(package="autotune")(cls)
    return _CLASSES[base_name](learning_rate=float(learning_rate), **kwargs)
