"""Data: builders that write the reference on-disk format, readers, loaders and augmentations."""

