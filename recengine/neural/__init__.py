"""Neural audio embeddings without TensorFlow at run time.

- :mod:`recengine.neural.bundle`: reads TensorFlow TensorBundle checkpoints (``.index`` SSTable +
  ``.data-00000-of-00001``) into numpy arrays, with crc32c checks.
- :mod:`recengine.neural.layers`: inference-only numpy layers (conv2d with TF padding, batch norm,
  max pooling, dense) and the musicnn log-mel front end.
- :mod:`recengine.neural.musicnn`: the MTT_vgg and MSD_musicnn forward passes on converted weights.
- :mod:`recengine.neural.install`: fetches the musicnn 0.1.0 wheel with pip, converts its
  checkpoints to ``.npz`` under the models dir, and loads them back.
"""
