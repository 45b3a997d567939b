"""Training: crop cache, feature cache, pair sampling, labels, losses and the training loop."""
