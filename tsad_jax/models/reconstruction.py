"""Loss and score shared by the models that reconstruct their window point by point."""

import jax.numpy as jnp


def loss(model, params, windows, *, rng, train):
  """Mean squared reconstruction error; dropout draws from `rng`."""
  reconstruction = model.apply(
      {"params": params}, windows, train=train, rngs={"dropout": rng})
  mse = jnp.mean(jnp.square(reconstruction - windows))
  return mse, {"mse": mse}


def score(model, params, windows, *, rng):
  """Squared reconstruction error of every point and feature, (B, W, D)."""
  del rng
  reconstruction = model.apply({"params": params}, windows)
  return jnp.square(reconstruction - windows)
