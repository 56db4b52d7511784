"""One run: the worker process it trains in, training, data, augmentation, weights, devices."""
